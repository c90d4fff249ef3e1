package broker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"testing"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
)

// TestAPartitionCountSaysInOneLineWhatBecameOfItsTopic: the lines `mailroom kafka
// grow-partitions` prints, one per topic.
func TestAPartitionCountSaysInOneLineWhatBecameOfItsTopic(t *testing.T) {
	cases := []struct {
		c     PartitionCount
		line  string
		short bool
	}{
		{PartitionCount{Topic: "email.send", Had: 3, Has: 6, Want: 6}, "email.send: 3 → 6", false},
		{PartitionCount{Topic: "email.events", Had: 6, Has: 6, Want: 6}, "email.events: already 6", false},
		{PartitionCount{Topic: "email.lifecycle", Had: 0, Has: 6, Want: 6}, "email.lifecycle: created with 6", false},
		{PartitionCount{Topic: "email.send.dlt", Had: 8, Has: 8, Want: 6},
			"email.send.dlt: 8, more than topics.partitions (6); left as it is (Kafka cannot take partitions away)", false},
		{PartitionCount{Topic: "email.send", Had: 3, Has: 3, Want: 6}, "email.send: 3, fewer than topics.partitions (6)", true},
	}
	for _, tc := range cases {
		if got := tc.c.String(); got != tc.line {
			t.Errorf("%+v: %q, want %q", tc.c, got, tc.line)
		}
		if got := tc.c.Short(); got != tc.short {
			t.Errorf("%+v: Short() = %v, want %v", tc.c, got, tc.short)
		}
	}
}

// TestCountsOfKeepTheSpecsOrderAndTellCreatedTopicsApart: a topic created just now
// had nothing and has what its spec asked; an existing one has what Kafka says,
// fewer or more than its spec.
func TestCountsOfKeepTheSpecsOrderAndTellCreatedTopicsApart(t *testing.T) {
	specs := []TopicSpec{{Name: "send", Partitions: 6}, {Name: "dlt", Partitions: 6}, {Name: "events", Partitions: 6}, {Name: "lifecycle", Partitions: 6}}
	got := countsOf(specs, map[string]int{"send": 3, "dlt": 9, "events": 6}, []string{"lifecycle"})
	want := []PartitionCount{
		{Topic: "send", Had: 3, Has: 3, Want: 6},
		{Topic: "dlt", Had: 9, Has: 9, Want: 6},
		{Topic: "events", Had: 6, Has: 6, Want: 6},
		{Topic: "lifecycle", Had: 0, Has: 6, Want: 6},
	}
	if !slices.Equal(got, want) {
		t.Errorf("countsOf = %+v\nwant %+v", got, want)
	}
}

// TestServeWarnsOnceAboutEachTopicWithFewerPartitionsThanConfigured: the warning
// names the topic, both counts and the command that grows it; topics with as many
// partitions or more are no news.
func TestServeWarnsOnceAboutEachTopicWithFewerPartitionsThanConfigured(t *testing.T) {
	var warned []string
	c := newKafkaConn(nil, nil, watermill.NopLogger{}, func(msg string, f watermill.LogFields) {
		warned = append(warned, fmt.Sprintf("%s topic=%v partitions=%v topics.partitions=%v grow_with=%v",
			msg, f["topic"], f["partitions"], f["topics.partitions"], f["grow_with"]))
	})
	c.warnShort([]PartitionCount{
		{Topic: "email.send", Had: 3, Has: 3, Want: 6},
		{Topic: "email.events", Had: 6, Has: 6, Want: 6},
		{Topic: "email.send.dlt", Had: 9, Has: 9, Want: 6},
		{Topic: "email.lifecycle", Had: 2, Has: 2, Want: 6},
	})
	const msg = "Kafka topic has fewer partitions than topics.partitions; mail runs on those it has until it is grown"
	want := []string{
		msg + " topic=email.send partitions=3 topics.partitions=6 grow_with=mailroom kafka grow-partitions",
		msg + " topic=email.lifecycle partitions=2 topics.partitions=6 grow_with=mailroom kafka grow-partitions",
	}
	if !slices.Equal(warned, want) {
		t.Errorf("warnings:\n%q\nwant\n%q", warned, want)
	}
}

// TestWarningsGoToTheWarnLogAtWarnLevelOrElseToWatermillsErrors: Watermill's
// logger has no warning level, so WithWarnLog gives the broker one; without it a
// warning is an error there rather than nothing.
func TestWarningsGoToTheWarnLogAtWarnLevelOrElseToWatermillsErrors(t *testing.T) {
	var buf bytes.Buffer
	warn := options{warnLog: slog.New(slog.NewJSONHandler(&buf, nil))}.warner(watermill.NopLogger{})
	warn("short topic", watermill.LogFields{"topic": "email.send", "partitions": 3})
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("log line %q: %v", buf.String(), err)
	}
	if rec["level"] != "WARN" || rec["msg"] != "short topic" || rec["topic"] != "email.send" || rec["partitions"] != 3.0 {
		t.Errorf("logged %v, want a WARN record with the message and its fields", rec)
	}

	var errs []string
	options{}.warner(errorRecorder{&errs})("short topic", watermill.LogFields{"topic": "email.send"})
	if !slices.Equal(errs, []string{"short topic"}) {
		t.Errorf("without WithWarnLog, Watermill's logger got errors %q, want the warning", errs)
	}
}

// errorRecorder is a Watermill logger that keeps the messages of its errors.
type errorRecorder struct{ msgs *[]string }

func (r errorRecorder) Error(msg string, _ error, _ watermill.LogFields) {
	*r.msgs = append(*r.msgs, msg)
}
func (errorRecorder) Info(string, watermill.LogFields)                   {}
func (errorRecorder) Debug(string, watermill.LogFields)                  {}
func (errorRecorder) Trace(string, watermill.LogFields)                  {}
func (r errorRecorder) With(watermill.LogFields) watermill.LoggerAdapter { return r }

// TestDoublingThePartitionsMovesAboutHalfTheKeysEachToItsPartitionPlusThree: what
// docs/kafka.md says growing does to keys, checked on the producer's own partitioner
// (Sarama's hash partitioner: FNV-1a of the key, modulo the partitions). From 3 to
// 6 a key stays on its partition p or moves to p+3, and about half move.
func TestDoublingThePartitionsMovesAboutHalfTheKeysEachToItsPartitionPlusThree(t *testing.T) {
	partitioner := ProducerConfig().Producer.Partitioner("email.send")
	const keys = 2000
	moved := 0
	for i := range keys {
		key := sarama.StringEncoder(fmt.Sprintf("0198f3c1-%04x-7abc-8def-%012d", i, i*7919))
		on3, err3 := partitioner.Partition(&sarama.ProducerMessage{Key: key}, 3)
		on6, err6 := partitioner.Partition(&sarama.ProducerMessage{Key: key}, 6)
		if err3 != nil || err6 != nil {
			t.Fatalf("partition %s: %v %v", key, err3, err6)
		}
		switch on6 {
		case on3:
		case on3 + 3:
			moved++
		default:
			t.Fatalf("key %s: partition %d of 3 became %d of 6", key, on3, on6)
		}
	}
	if moved < keys*4/10 || moved > keys*6/10 {
		t.Errorf("%d of %d keys moved, want about half", moved, keys)
	}
}
