//go:build kafka

package app_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/mailroom/mailroom/app"
	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/platform/broker"
	"github.com/mailroom/mailroom/platform/testkit/smtptest"
	"github.com/mailroom/mailroom/platform/testkit/wait"
)

// TestKafkaServeOnTopicsWithFewerPartitionsWarnsAndDeliversOnSixOnceGrown: Mailroom
// started with topics.partitions 6 on topics made with 3 warns once about each
// topic (naming it, both counts and the command), runs on the 3 it has, and once
// `mailroom kafka grow-partitions` (app.GrowPartitions) has grown them while it
// runs, its producer puts mail on the new partitions and its consumers read them:
// every email accepted is sent, those on partitions 3 to 5 included.
func TestKafkaServeOnTopicsWithFewerPartitionsWarnsAndDeliversOnSixOnceGrown(t *testing.T) {
	srv := smtptest.Start(t)
	cfg := kafkaConfig(t)
	apptest.UseSMTP(cfg, srv)
	var topics []string // send, dead letters, events, lifecycle, then the retry tiers
	for _, spec := range broker.TopicSpecs(cfg) {
		if !spec.Compact { // the suppression list keeps its one partition
			topics = append(topics, spec.Name)
		}
	}
	if err := broker.ProvisionTopics(cfg.Kafka.Brokers, broker.TopicSpecs(cfg)); err != nil { // 3 partitions
		t.Fatalf("provision with 3 partitions: %v", err)
	}

	cfg.Topics.Partitions = 6
	var log lockedBuffer
	in := apptest.Start(t, cfg, app.WithLogger(slog.New(slog.NewJSONHandler(&log, nil))))
	checkShortTopicWarnings(t, log.String(), topics, 3, 6)
	ids := []string{in.Send(t, apptest.NewEmail("before@example.com"))}
	in.WaitForStatus(t, ids[0], "sent", time.Minute)

	counts, err := app.GrowPartitions(cfg)
	if err != nil {
		t.Fatalf("grow partitions: %v", err)
	}
	var lines []string
	for _, c := range counts {
		lines = append(lines, c.String())
	}
	var want []string
	for _, topic := range topics {
		want = append(want, topic+": 3 → 6")
	}
	want = append(want, cfg.Topics.Suppressions+": already 1")
	if !slices.Equal(lines, want) {
		t.Fatalf("grow-partitions said %q, want %q", lines, want)
	}

	// The producer hashes keys over 6 partitions from its next metadata refresh
	// (10 s): send an email a tick until one lands on a new partition.
	client, err := sarama.NewClient(cfg.Kafka.Brokers, sarama.NewConfig())
	if err != nil {
		t.Fatalf("kafka client: %v", err)
	}
	defer client.Close()
	onNew := func() int64 {
		var n int64
		for p := int32(3); p < 6; p++ {
			off, err := client.GetOffset(cfg.Topics.Send, p, sarama.OffsetNewest)
			if err != nil {
				t.Fatalf("offset of %s/%d: %v", cfg.Topics.Send, p, err)
			}
			n += off
		}
		return n
	}
	wait.Until(t, time.Minute, 250*time.Millisecond, func() bool {
		ids = append(ids, in.Send(t, apptest.NewEmail(fmt.Sprintf("after%d@example.com", len(ids)))))
		return onNew() > 0
	}, func() string { return "no SendEmail on partitions 3 to 5 of " + cfg.Topics.Send })
	for _, id := range ids {
		in.WaitForStatus(t, id, "sent", time.Minute)
	}
	t.Logf("%d emails sent; records on the new partitions: %d", len(ids), onNew())
	if got := strings.Count(log.String(), "fewer partitions than topics.partitions"); got != len(topics) {
		t.Errorf("%d warnings about short topics in the whole run, want one per topic (%d)", got, len(topics))
	}
}

// checkShortTopicWarnings fails the test unless the JSON log holds exactly one
// warning for each topic, saying it has have partitions, topics.partitions is want
// and what grows it.
func checkShortTopicWarnings(t *testing.T, log string, topics []string, have, want int) {
	t.Helper()
	warned := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) != nil || rec["level"] != "WARN" ||
			!strings.Contains(fmt.Sprint(rec["msg"]), "fewer partitions than topics.partitions") {
			continue
		}
		if rec["partitions"] != float64(have) || rec["topics.partitions"] != float64(want) || rec["grow_with"] != "mailroom kafka grow-partitions" {
			t.Errorf("warning %v: want partitions %d, topics.partitions %d and the command", rec, have, want)
		}
		warned[fmt.Sprint(rec["topic"])]++
	}
	for _, topic := range topics {
		if warned[topic] != 1 {
			t.Errorf("%d warnings about %s, want 1; log:\n%s", warned[topic], topic, log)
		}
	}
}

// lockedBuffer is a bytes.Buffer the app's goroutines may log to at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
