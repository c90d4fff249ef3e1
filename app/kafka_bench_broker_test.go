//go:build kafka

package app_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/mailroom/mailroom/platform/broker"
)

// The Kafka broker's own CPU time, for the figures that say what Mailroom costs
// the broker per email beside what a raw Sarama client costs it for the same
// records.

// brokerCPU is the CPU time the Kafka brokers' processes, named by
// KAFKA_TEST_BROKER_PIDS (comma-separated; `make bench-kafka` sets it from
// `scripts/kafka.sh pids`), have used so far: the sum over their threads of the
// time each ran, in nanoseconds (/proc/<pid>/task/<tid>/schedstat), where
// /proc/<pid>/stat counts in 10 ms ticks, too coarse for a raw pair's fraction of
// a second. A thread that ended meanwhile drops out of the sum; a broker's threads
// live as long as it does. ok is false when the variable is unset.
func brokerCPU(b *testing.B) (cpu time.Duration, ok bool) {
	b.Helper()
	pids := os.Getenv("KAFKA_TEST_BROKER_PIDS")
	if pids == "" {
		return 0, false
	}
	for pid := range strings.SplitSeq(pids, ",") {
		tasks, err := filepath.Glob("/proc/" + strings.TrimSpace(pid) + "/task/*/schedstat")
		if err != nil || len(tasks) == 0 {
			b.Fatalf("broker CPU time (KAFKA_TEST_BROKER_PIDS=%s): no threads of %s (%v)", pids, pid, err)
		}
		for _, task := range tasks {
			data, err := os.ReadFile(task)
			if err != nil {
				continue // the thread ended
			}
			// schedstat: time on the CPU (ns), time waiting to run (ns), timeslices.
			ran, err := strconv.ParseInt(strings.Fields(string(data))[0], 10, 64)
			if err != nil {
				b.Fatalf("broker CPU time: %s: %v", task, err)
			}
			cpu += time.Duration(ran)
		}
	}
	return cpu, true
}

// kafkaRecord is a record as it lies on Kafka: what a producer needs to put the
// same bytes there again.
type kafkaRecord struct {
	key, value []byte
	headers    []sarama.RecordHeader
}

// readTopic reads every record of topic up to each partition's high-water mark.
func readTopic(b *testing.B, brokers []string, topic string) []kafkaRecord {
	b.Helper()
	client, err := sarama.NewClient(brokers, broker.ConsumerConfig())
	if err != nil {
		b.Fatalf("read %s: %v", topic, err)
	}
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		b.Fatalf("read %s: %v", topic, err)
	}
	defer consumer.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		b.Fatalf("read %s: %v", topic, err)
	}
	var records []kafkaRecord
	for _, p := range parts {
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			b.Fatalf("read %s: %v", topic, err)
		}
		if end == 0 {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			b.Fatalf("read %s/%d: %v", topic, p, err)
		}
		for offset := int64(-1); offset < end-1; {
			select {
			case m := <-pc.Messages():
				r := kafkaRecord{key: m.Key, value: m.Value}
				for _, h := range m.Headers {
					r.headers = append(r.headers, *h)
				}
				records, offset = append(records, r), m.Offset
			case <-time.After(time.Minute):
				b.Fatalf("read %s/%d: at offset %d of %d after a minute", topic, p, offset, end)
			}
		}
		_ = pc.Close()
	}
	return records
}

// rawBrokerPair is the baseline of what Mailroom's records cost the broker: a raw
// Sarama producer and consumer pair doing the broker's work of the same records,
// with none of Mailroom around them. It puts send and events again, byte for byte
// (keys, values, headers), on two fresh topics named after name with `partitions`
// partitions each, send[i] and events[i] one after the other, through one
// AsyncProducer with Mailroom's ProducerConfig (acks=all, idempotent, zstd; no linger, which a producer given everything at once has no use for) fed as
// fast as it takes; a ConsumerGroup with Mailroom's ConsumerConfig reads each topic
// and marks every record, as delivery's group reads topics.send and the emails
// module's reads topics.events.
//
// It returns the brokers' CPU time from the first record produced until both groups
// have marked every record: the produce and fetch requests, the consumers' long-poll
// fetches and heartbeats meanwhile, and the offset commits made in that span (every
// 100 ms). Creating the topics, joining the groups and opening the producer come
// before the span, and so do not count; nor does the last commit, made after it.
func rawBrokerPair(b *testing.B, brokers []string, name string, partitions int, send, events []kafkaRecord) time.Duration {
	b.Helper()
	sendTopic, eventsTopic := name+".raw-send", name+".raw-events"
	if err := broker.ProvisionTopics(brokers, []broker.TopicSpec{
		{Name: sendTopic, Partitions: partitions, ReplicationFactor: 1, MinInsyncReplicas: 1},
		{Name: eventsTopic, Partitions: partitions, ReplicationFactor: 1, MinInsyncReplicas: 1},
	}); err != nil {
		b.Fatalf("raw pair topics: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sendReader := startMarkingGroup(b, ctx, brokers, sendTopic, len(send))
	eventsReader := startMarkingGroup(b, ctx, brokers, eventsTopic, len(events))
	// Mailroom's producer settings but for the linger: fed everything at once, the
	// raw producer fills its requests without waiting.
	pcfg := broker.ProducerConfig()
	pcfg.Producer.Flush.Frequency = 0
	producer, err := sarama.NewAsyncProducer(brokers, pcfg)
	if err != nil {
		b.Fatalf("raw pair producer: %v", err)
	}
	for _, g := range []*markingGroup{sendReader, eventsReader} {
		g.waitJoined(b)
	}

	cpu0, _ := brokerCPU(b)
	// The feeder stops early if the benchmark fails; the producer is closed once
	// nothing more can be fed to it.
	stop, fed := make(chan struct{}), make(chan struct{})
	defer func() { close(stop); <-fed; _ = producer.Close() }()
	go func() {
		defer close(fed)
		feed := func(topic string, records []kafkaRecord, i int) bool {
			if i >= len(records) {
				return true
			}
			select {
			case producer.Input() <- producerMessage(topic, records[i]):
				return true
			case <-stop:
				return false
			}
		}
		for i := range max(len(send), len(events)) {
			if !feed(sendTopic, send, i) || !feed(eventsTopic, events, i) {
				return
			}
		}
	}()
	for range len(send) + len(events) {
		select {
		case <-producer.Successes():
		case err := <-producer.Errors():
			b.Fatalf("raw pair produce: %v", err)
		}
	}
	sendReader.waitMarked(b)
	eventsReader.waitMarked(b)
	cpu1, _ := brokerCPU(b)
	return cpu1 - cpu0
}

// producerMessage is r for topic, as a Sarama producer takes it.
func producerMessage(topic string, r kafkaRecord) *sarama.ProducerMessage {
	return &sarama.ProducerMessage{Topic: topic, Key: sarama.ByteEncoder(r.key),
		Value: sarama.ByteEncoder(r.value), Headers: r.headers}
}

// markingGroup is a Sarama consumer group reading one topic that marks every
// record it is given and tells when it has joined and when it has marked want.
type markingGroup struct {
	want            int64
	marked          atomic.Int64
	joined, done    chan struct{}
	joinOnce, once  sync.Once
	consumeFailures chan error
}

// startMarkingGroup starts a group of its own reading topic until ctx ends; it is
// closed when the benchmark ends.
func startMarkingGroup(b *testing.B, ctx context.Context, brokers []string, topic string, want int) *markingGroup {
	b.Helper()
	group, err := sarama.NewConsumerGroup(brokers, topic+".group", broker.ConsumerConfig())
	if err != nil {
		b.Fatalf("raw pair consumer group: %v", err)
	}
	g := &markingGroup{want: int64(want), joined: make(chan struct{}), done: make(chan struct{}),
		consumeFailures: make(chan error, 1)}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for ctx.Err() == nil {
			if err := group.Consume(ctx, []string{topic}, g); err != nil && ctx.Err() == nil {
				g.consumeFailures <- fmt.Errorf("consume %s: %w", topic, err)
				return
			}
		}
	}()
	b.Cleanup(func() {
		<-stopped
		_ = group.Close()
	})
	return g
}

// Setup tells that the group has joined and holds its partitions.
func (g *markingGroup) Setup(sarama.ConsumerGroupSession) error {
	g.joinOnce.Do(func() { close(g.joined) })
	return nil
}

// Cleanup does nothing: the marks are committed by Sarama's auto-commit.
func (g *markingGroup) Cleanup(sarama.ConsumerGroupSession) error { return nil }

// ConsumeClaim marks every record of the claim.
func (g *markingGroup) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		s.MarkMessage(m, "")
		if g.marked.Add(1) == g.want {
			g.once.Do(func() { close(g.done) })
		}
	}
	return nil
}

func (g *markingGroup) waitJoined(b *testing.B) { b.Helper(); g.wait(b, g.joined, "join") }
func (g *markingGroup) waitMarked(b *testing.B) { b.Helper(); g.wait(b, g.done, "mark every record") }

// wait waits for ch to close, failing the benchmark if consuming fails or ch is
// still open after a minute.
func (g *markingGroup) wait(b *testing.B, ch chan struct{}, what string) {
	b.Helper()
	select {
	case <-ch:
	case err := <-g.consumeFailures:
		b.Fatalf("raw pair: %v", err)
	case <-time.After(time.Minute):
		b.Fatalf("raw pair consumer did not %s in a minute (%d of %d marked)", what, g.marked.Load(), g.want)
	}
}
