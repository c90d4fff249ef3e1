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
func readTopic(tb testing.TB, brokers []string, topic string) []kafkaRecord {
	tb.Helper()
	client, err := sarama.NewClient(brokers, broker.ConsumerConfig())
	if err != nil {
		tb.Fatalf("read %s: %v", topic, err)
	}
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		tb.Fatalf("read %s: %v", topic, err)
	}
	defer consumer.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		tb.Fatalf("read %s: %v", topic, err)
	}
	var records []kafkaRecord
	for _, p := range parts {
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			tb.Fatalf("read %s: %v", topic, err)
		}
		if end == 0 {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			tb.Fatalf("read %s/%d: %v", topic, p, err)
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
				tb.Fatalf("read %s/%d: at offset %d of %d after a minute", topic, p, offset, end)
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
	sendReader := startMarkingGroup(b, ctx, brokers, sendTopic, len(send), nil)
	eventsReader := startMarkingGroup(b, ctx, brokers, eventsTopic, len(events), nil)
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

// pacedRawPipeline is what Mailroom's records cost the broker when passed on as
// they come by a design that, like Mailroom, delivers each email as it is accepted
// and commits only what it finished, with nothing of Mailroom around it.
// rawBrokerPair, given every record at once, packs thousands into each request, and
// the broker's CPU follows requests more than records; a service accepting emails
// one POST at a time cannot wait for thousands. So this pipeline does only what
// that promise forces:
//
//   - send and events go again, byte for byte, to two fresh topics named after
//     name with `partitions` partitions each, through ONE AsyncProducer with
//     Mailroom's ProducerConfig as it is (acks=all, idempotent, zstd, the
//     broker.ProducerLinger linger);
//   - the send records are produced at rate a second (the rate the Mailroom run
//     accepted its emails), released by a ticker as they fall due, not at once;
//   - a group with Mailroom's ConsumerConfig reads the send topic and, for each
//     record, produces the event record of the same key through that producer,
//     as delivery records one attempt per send, and marks the send record only
//     once the broker acknowledged its event;
//   - a group reads the events topic and marks every event, as the emails
//     module's group does.
//
// It returns the brokers' CPU time from the first send record produced until both
// groups have marked every record, and the requests the producer made meanwhile
// (nearly all of them produce requests): the broker's CPU follows them. As in
// rawBrokerPair, creating the topics, joining the groups and opening the producer
// fall before the span.
func pacedRawPipeline(b *testing.B, brokers []string, name string, partitions int, send, events []kafkaRecord, rate float64) (cpu time.Duration, requests int64) {
	b.Helper()
	sendTopic, eventsTopic := name+".paced-send", name+".paced-events"
	if err := broker.ProvisionTopics(brokers, []broker.TopicSpec{
		{Name: sendTopic, Partitions: partitions, ReplicationFactor: 1, MinInsyncReplicas: 1},
		{Name: eventsTopic, Partitions: partitions, ReplicationFactor: 1, MinInsyncReplicas: 1},
	}); err != nil {
		b.Fatalf("paced pipeline topics: %v", err)
	}
	eventOf := eventsBySendKey(b, send, events)
	pcfg := broker.ProducerConfig()
	producer, err := sarama.NewAsyncProducer(brokers, pcfg)
	if err != nil {
		b.Fatalf("paced pipeline producer: %v", err)
	}
	// Sarama's meter of every request its client sent.
	sent := func() int64 { return pcfg.MetricRegistry.Get("request-rate").(interface{ Count() int64 }).Count() }
	routeAcks(producer)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// relay produces m's event and yields once the broker acknowledged it.
	relay := func(m *sarama.ConsumerMessage) <-chan error {
		acked := make(chan error, 1)
		pm := producerMessage(eventsTopic, eventOf.take(m.Key))
		pm.Metadata = func(err error) { acked <- err }
		producer.Input() <- pm
		return acked
	}
	sendReader := startMarkingGroup(b, ctx, brokers, sendTopic, len(send), relay)
	// The relaying group stops before the producer closes: producing into a closed
	// producer panics.
	defer func() {
		cancel()
		<-sendReader.stopped
		_ = producer.Close()
	}()
	eventsReader := startMarkingGroup(b, ctx, brokers, eventsTopic, len(send), nil)
	for _, g := range []*markingGroup{sendReader, eventsReader} {
		g.waitJoined(b)
	}

	cpu0, _ := brokerCPU(b)
	requests0 := sent()
	stop, paced := make(chan struct{}), make(chan struct{})
	defer func() { close(stop); <-paced }()
	go func() {
		defer close(paced)
		pace(stop, producer, sendTopic, send, rate, func(err error) {
			if err != nil {
				sendReader.fail(fmt.Errorf("produce to %s: %w", sendTopic, err))
			}
		})
	}()
	sendReader.waitMarked(b)
	eventsReader.waitMarked(b)
	cpu1, _ := brokerCPU(b)
	return cpu1 - cpu0, sent() - requests0
}

// paceTick is how often pace releases the records that fell due: well under the
// producer's 5 ms linger, so the pace is as smooth as the producer can tell.
const paceTick = time.Millisecond

// pace produces records to topic at rate a second from now on: the first at once,
// and at every paceTick those that fell due meanwhile, so a late tick catches up
// instead of slowing the pace. acked is told each record's outcome. It returns
// once all are handed to the producer or stop closes.
func pace(stop <-chan struct{}, producer sarama.AsyncProducer, topic string, records []kafkaRecord, rate float64, acked func(error)) {
	tick := time.NewTicker(paceTick)
	defer tick.Stop()
	start := time.Now()
	for next := 0; next < len(records); {
		due := min(len(records), 1+int(time.Since(start).Seconds()*rate))
		for ; next < due; next++ {
			pm := producerMessage(topic, records[next])
			pm.Metadata = acked
			select {
			case producer.Input() <- pm:
			case <-stop:
				return
			}
		}
		select {
		case <-tick.C:
		case <-stop:
			return
		}
	}
}

// routeAcks hands each outcome of producer to the func(error) in its message's
// Metadata: nil once the broker acknowledged it, the error when producing failed.
// It runs until the producer is closed.
func routeAcks(producer sarama.AsyncProducer) {
	go func() {
		successes, failures := producer.Successes(), producer.Errors()
		for successes != nil || failures != nil {
			select {
			case m, ok := <-successes:
				if !ok {
					successes = nil
					continue
				}
				m.Metadata.(func(error))(nil)
			case e, ok := <-failures:
				if !ok {
					failures = nil
					continue
				}
				e.Msg.Metadata.(func(error))(e.Err)
			}
		}
	}()
}

// recordsByKey hands out records by key, each once, for a relay to find the event
// record of each send record it reads (Mailroom keys both by the email's id).
type recordsByKey struct {
	mu    sync.Mutex
	byKey map[string][]kafkaRecord
}

// eventsBySendKey indexes events by key and fails the benchmark unless every send
// record has an event record of its key to be relayed as.
func eventsBySendKey(b *testing.B, send, events []kafkaRecord) *recordsByKey {
	b.Helper()
	r := &recordsByKey{byKey: map[string][]kafkaRecord{}}
	for _, e := range events {
		r.byKey[string(e.key)] = append(r.byKey[string(e.key)], e)
	}
	need := map[string]int{}
	for _, s := range send {
		if need[string(s.key)]++; need[string(s.key)] > len(r.byKey[string(s.key)]) {
			b.Fatalf("paced pipeline: send record of key %q has no event record of that key (%d send, %d event records)",
				s.key, len(send), len(events))
		}
	}
	return r
}

// take hands out the next record of key; eventsBySendKey made sure there is one.
func (r *recordsByKey) take(key []byte) kafkaRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	records := r.byKey[string(key)]
	r.byKey[string(key)] = records[1:]
	return records[0]
}

// markingGroup is a Sarama consumer group reading one topic that marks every
// record it is given and tells when it has joined and when it has marked want.
//
// With forward set, it is also a relay: each record is handed to forward as it
// comes, without waiting for the ones before it, and marked only once the work
// forward started for it (and for every record before it on its partition) is
// done, as Mailroom's delivery commits only what it has finished.
type markingGroup struct {
	topic           string
	want            int64
	forward         func(*sarama.ConsumerMessage) <-chan error
	marked          atomic.Int64
	joined, done    chan struct{}
	joinOnce, once  sync.Once
	consumeFailures chan error
	stopped         chan struct{}
}

// forwardWindow is how many records of one partition a forwarding markingGroup
// may have handed on and not yet marked: far more than a paced run keeps in
// flight, so the window never slows it.
const forwardWindow = 1024

// startMarkingGroup starts a group of its own reading topic until ctx ends, with
// forward as markingGroup describes it (nil: mark each record as it comes); it
// is closed when the benchmark ends.
func startMarkingGroup(b *testing.B, ctx context.Context, brokers []string, topic string, want int,
	forward func(*sarama.ConsumerMessage) <-chan error) *markingGroup {
	b.Helper()
	group, err := sarama.NewConsumerGroup(brokers, topic+".group", broker.ConsumerConfig())
	if err != nil {
		b.Fatalf("consumer group of %s: %v", topic, err)
	}
	g := &markingGroup{topic: topic, want: int64(want), forward: forward, joined: make(chan struct{}),
		done: make(chan struct{}), consumeFailures: make(chan error, 1), stopped: make(chan struct{})}
	go func() {
		defer close(g.stopped)
		for ctx.Err() == nil {
			if err := group.Consume(ctx, []string{topic}, g); err != nil && ctx.Err() == nil {
				g.fail(fmt.Errorf("consume %s: %w", topic, err))
				return
			}
		}
	}()
	b.Cleanup(func() {
		<-g.stopped
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

// ConsumeClaim marks every record of the claim, after forwarding it when forward
// is set.
func (g *markingGroup) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	if g.forward != nil {
		g.forwardClaim(s, c)
		return nil
	}
	for m := range c.Messages() {
		g.mark(s, m)
	}
	return nil
}

// forwardClaim hands each record of the claim to forward as it comes and, on a
// goroutine of its own, marks the records in offset order as their work is done.
// It returns once the claim or the session ends and the marker has stopped.
func (g *markingGroup) forwardClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) {
	type pending struct {
		m    *sarama.ConsumerMessage
		done <-chan error
	}
	queue, markerStopped := make(chan pending, forwardWindow), make(chan struct{})
	go func() {
		defer close(markerStopped)
		for p := range queue {
			select {
			case err := <-p.done:
				if err != nil {
					g.fail(fmt.Errorf("forward %s/%d@%d: %w", p.m.Topic, p.m.Partition, p.m.Offset, err))
					return
				}
				g.mark(s, p.m)
			case <-s.Context().Done():
				return
			}
		}
	}()
	defer func() { close(queue); <-markerStopped }()
	for m := range c.Messages() {
		select {
		case queue <- pending{m, g.forward(m)}:
		case <-s.Context().Done():
			return
		case <-markerStopped: // forwarding failed
			return
		}
	}
}

// mark marks m and tells when want records have been marked.
func (g *markingGroup) mark(s sarama.ConsumerGroupSession, m *sarama.ConsumerMessage) {
	s.MarkMessage(m, "")
	if g.marked.Add(1) == g.want {
		g.once.Do(func() { close(g.done) })
	}
}

// fail reports err to whoever waits on the group; only the first is kept.
func (g *markingGroup) fail(err error) {
	select {
	case g.consumeFailures <- err:
	default:
	}
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
		b.Fatalf("group of %s: %v", g.topic, err)
	case <-time.After(time.Minute):
		b.Fatalf("group of %s did not %s in a minute (%d of %d marked)", g.topic, what, g.marked.Load(), g.want)
	}
}
