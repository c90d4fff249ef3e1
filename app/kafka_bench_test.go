//go:build kafka

package app_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/app/internal/e2e"
	"github.com/mailroom/mailroom/migrations"
	"github.com/mailroom/mailroom/platform/broker"
	"github.com/mailroom/mailroom/platform/config"
	"github.com/mailroom/mailroom/platform/outbox"
	"github.com/mailroom/mailroom/platform/sqlite"
	"github.com/mailroom/mailroom/platform/testkit/cputime"
)

// The Kafka benchmarks run against the node in KAFKA_TEST_BROKERS; `make bench-kafka`
// starts one, runs
//
//	go test -tags kafka -run '^$' -bench Kafka -benchtime 5x ./app/
//
// and stops it (and passes the node's pid in KAFKA_TEST_BROKER_PIDS). They report
// figures and assert nothing but that everything was delivered.

const (
	relayBenchMessages = 20000
	relayBenchPayload  = 1000 // bytes, about a SendEmail command
	relayBenchRun      = 32   // rows per Publish call: the relay's default RunSize, used on Kafka
	floorDeleteEvery   = 50 * time.Millisecond
)

// BenchmarkKafkaRelayThroughput measures messages/s through the outbox relay into a
// real Kafka with Mailroom's producer (acks=all, idempotent, zstd): N outbox rows
// are committed, then a Relay with one worker per partition publishes them through
// the Kafka broker's publisher until every row is out (published and deleted). The
// baseline in the same run is a raw Sarama SyncProducer with the same configuration
// sending the same records (same marshaler, keys, headers, payloads) with
// SendMessages in batches of the relay's size from as many goroutines.
// x_raw = relay/raw (target >= 0.8). A third path in each round, floorRun, is the
// least any SQLite outbox relay must do: x_raw_floor = floor/raw is the most x_raw
// can be on this machine, and x_floor = relay/floor how near Mailroom's relay is.
func BenchmarkKafkaRelayThroughput(b *testing.B) {
	cfg := kafkaConfig(b)
	brk, err := broker.New(cfg, watermill.NopLogger{})
	if err != nil {
		b.Fatalf("broker: %v", err)
	}
	defer brk.Close()
	rawTopic := cfg.Topics.Send + ".raw"
	if err := broker.ProvisionTopics(cfg.Kafka.Brokers, []broker.TopicSpec{{Name: rawTopic,
		Partitions: cfg.Topics.Partitions, ReplicationFactor: 1, MinInsyncReplicas: 1}}); err != nil {
		b.Fatalf("raw topic: %v", err)
	}
	producer, err := sarama.NewSyncProducer(cfg.Kafka.Brokers, broker.ProducerConfig())
	if err != nil {
		b.Fatalf("raw producer: %v", err)
	}
	defer producer.Close()
	workers := cfg.Topics.Partitions

	// Warm both paths (JIT on the broker, connections, producer ids) with a full
	// round each before timing: with 2,000 messages, the first timed relay run on a
	// fresh node came out at about 0.45x and the next ones at 0.6-0.7x.
	_, _, _ = relayRun(b, cfg, brk.Publisher(), newRelayMessages(relayBenchMessages), workers)
	rawRun(b, producer, rawTopic, newRelayMessages(relayBenchMessages), workers)
	_, _, _ = floorRun(b, cfg, producer, rawTopic, newRelayMessages(relayBenchMessages), workers)

	var (
		relayTime, rawTime, floorTime          time.Duration
		relayCPU, rawCPU, floorCPU             time.Duration
		relayMachine, rawMachine, floorMachine time.Duration
	)
	timed := &timedPublisher{Publisher: brk.Publisher()}
	b.ResetTimer()
	for b.Loop() {
		wall, cpu, machine := relayRun(b, cfg, timed, newRelayMessages(relayBenchMessages), workers)
		relayTime, relayCPU, relayMachine = relayTime+wall, relayCPU+cpu, relayMachine+machine
		cpu0, machine0 := cputime.Process(b), machineBusy()
		rawTime += rawRun(b, producer, rawTopic, newRelayMessages(relayBenchMessages), workers)
		rawCPU += cputime.Process(b) - cpu0
		rawMachine += machineBusy() - machine0
		wall, cpu, machine = floorRun(b, cfg, producer, rawTopic, newRelayMessages(relayBenchMessages), workers)
		floorTime, floorCPU, floorMachine = floorTime+wall, floorCPU+cpu, floorMachine+machine
	}
	relayRate := float64(b.N*relayBenchMessages) / relayTime.Seconds()
	rawRate := float64(b.N*relayBenchMessages) / rawTime.Seconds()
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(relayRate, "relay_msgs/s")
	b.ReportMetric(rawRate, "raw_sarama_msgs/s")
	b.ReportMetric(relayRate/rawRate, "x_raw")
	// The least any SQLite outbox relay must do (see floorRun), beside the same raw
	// producer: x_raw_floor is the most x_raw can be on this machine.
	floorRate := float64(b.N*relayBenchMessages) / floorTime.Seconds()
	b.ReportMetric(floorRate, "floor_msgs/s")
	b.ReportMetric(floorRate/rawRate, "x_raw_floor")
	b.ReportMetric(relayRate/floorRate, "x_floor")
	// CPU this process spent per message (the broker's is not counted): on a small
	// machine shared with the broker, the relay's own work is what the broker lacks.
	perMsg := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(b.N*relayBenchMessages) }
	b.ReportMetric(perMsg(relayCPU), "relay_cpu_us/msg")
	b.ReportMetric(perMsg(rawCPU), "raw_cpu_us/msg")
	b.ReportMetric(perMsg(floorCPU), "floor_cpu_us/msg")
	// CPU the whole machine spent per message: this process, the broker, and the
	// kernel's writeback of the relay's SQLite writes. Both runs leave the cores
	// about equally idle (waiting on round trips), so x_raw follows the ratio of
	// these two figures.
	if rawMachine > 0 {
		b.ReportMetric(perMsg(relayMachine), "relay_machine_cpu_us/msg")
		b.ReportMetric(perMsg(rawMachine), "raw_machine_cpu_us/msg")
		b.ReportMetric(perMsg(floorMachine), "floor_machine_cpu_us/msg")
	}
	// The share of the relay's publisher time spent inside Publish (waiting for
	// Kafka); the rest is the relay's own work: reading, planning, deleting rows.
	b.ReportMetric(time.Duration(timed.busy.Load()).Seconds()/(float64(workers)*relayTime.Seconds()), "publish_share")
}

// timedPublisher adds up the time spent in Publish.
type timedPublisher struct {
	message.Publisher
	busy atomic.Int64 // nanoseconds
}

// Publish publishes through the wrapped publisher and counts the time it took.
func (p *timedPublisher) Publish(topic string, msgs ...*message.Message) error {
	start := time.Now()
	err := p.Publisher.Publish(topic, msgs...)
	p.busy.Add(int64(time.Since(start)))
	return err
}

// newRelayMessages builds n messages shaped like SendEmail commands: a ~1 KB
// payload, keyed by their own id.
func newRelayMessages(n int) []*message.Message {
	payload := []byte(strings.Repeat("x", relayBenchPayload))
	msgs := make([]*message.Message, n)
	for i := range msgs {
		m := message.NewMessage(watermill.NewUUID(), payload)
		m.Metadata.Set(broker.PartitionKeyKey, m.UUID)
		m.Metadata.Set("event_type", "SendEmail")
		msgs[i] = m
	}
	return msgs
}

// filledOutbox commits msgs to the outbox of a fresh database and checkpoints it, so
// that no setup I/O is left for the timed drain to pay. Call it with the timer
// stopped.
func filledOutbox(b *testing.B, topic string, msgs []*message.Message) (*sqlite.DB, *outbox.Outbox) {
	b.Helper()
	db, err := sqlite.Open(filepath.Join(b.TempDir(), "relay.db"))
	if err != nil {
		b.Fatalf("open db: %v", err)
	}
	ctx := context.Background()
	if err := sqlite.Migrate(ctx, db, sqlite.MigrationSet{Name: "platform", FS: migrations.For("platform")}); err != nil {
		b.Fatalf("migrate: %v", err)
	}
	box := outbox.New()
	for chunk := range slices.Chunk(msgs, 1000) {
		err := db.Tx(ctx, func(tx *sql.Tx) error {
			for _, m := range chunk {
				if err := box.Add(ctx, tx, topic, m, time.Time{}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatalf("fill outbox: %v", err)
		}
	}
	// Settle the fill's writes before the clock starts: its WAL would otherwise be
	// checkpointed by the first delete, charging setup I/O to the drain.
	if _, err := db.Write.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		b.Fatalf("checkpoint: %v", err)
	}
	return db, box
}

// relayRun commits msgs to a fresh outbox (untimed), then times a Relay publishing
// them through pub until all are out; it returns the time, the process CPU time and
// the machine's CPU time (see machineBusy) that took.
func relayRun(b *testing.B, cfg *config.Config, pub message.Publisher, msgs []*message.Message, workers int) (wall, cpu, machine time.Duration) {
	b.Helper()
	b.StopTimer()
	db, box := filledOutbox(b, cfg.Topics.Send, msgs)
	defer db.Close()
	ctx := context.Background()
	// As app.New configures it on Kafka: a publisher per partition, the default
	// RunSize (relayBenchRun rows per Publish).
	relay := outbox.NewRelay(db, box, pub, outbox.RelayConfig{Workers: workers, BatchSize: cfg.Outbox.BatchSize, PollInterval: time.Second},
		slog.New(slog.DiscardHandler))
	var published atomic.Int64
	done := make(chan struct{})
	var once sync.Once
	relay.OnPublished(func(_ context.Context, _ *sql.Tx, _ string, ms []*message.Message, _ time.Time) error {
		if published.Add(int64(len(ms))) >= int64(len(msgs)) {
			once.Do(func() { close(done) })
		}
		return nil
	})
	runCtx, cancel := context.WithCancel(ctx)
	ready := make(chan struct{})
	close(ready)
	relayDone := make(chan struct{})
	b.StartTimer()
	cpu0, machine0 := cputime.Process(b), machineBusy()
	start := time.Now()
	go func() {
		defer close(relayDone)
		_ = relay.Run(runCtx, ready)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("relay published %d of %d in 5 minutes", published.Load(), len(msgs))
	}
	wall = time.Since(start)
	cpu, machine = cputime.Process(b)-cpu0, machineBusy()-machine0
	b.StopTimer()
	cancel()
	<-relayDone
	if s, err := outbox.ReadStats(ctx, db); err != nil || s.Pending != 0 {
		b.Fatalf("outbox after the relay: %+v %v", s, err)
	}
	b.StartTimer()
	return wall, cpu, machine
}

// floorRun commits msgs to a fresh outbox (untimed), then times the least any outbox
// relay must do to publish them, with none of what makes Mailroom's relay correct:
// one reader takes rows outbox.batch_size at a time in id order (no due times, no
// per-key planning, metadata not decoded but set as raw sets it) and cuts them into
// runs of relayBenchRun, `workers` goroutines send each run with the raw producer
// as rawRun does, and one deleter removes the sent runs by id range in one durable
// transaction every floorDeleteEvery. No relay that reads its rows back from SQLite
// and deletes them durably can beat it, so floor/raw bounds what x_raw can reach on
// this machine. It returns the time, the process CPU time and the machine's CPU time.
func floorRun(b *testing.B, cfg *config.Config, producer sarama.SyncProducer, topic string, msgs []*message.Message, workers int) (wall, cpu, machine time.Duration) {
	b.Helper()
	b.StopTimer()
	db, _ := filledOutbox(b, cfg.Topics.Send, msgs)
	defer db.Close()
	b.StartTimer()
	ctx := context.Background()
	marshaler := broker.PartitionMarshaler
	type run struct {
		batch       []*sarama.ProducerMessage
		first, last int64
	}
	runs := make(chan run, workers)
	sent := make(chan run, workers)
	errs := make(chan error, len(msgs)+1)

	cpu0, machine0 := cputime.Process(b), machineBusy()
	start := time.Now()
	// read reads the next outbox.batch_size rows after *after, cuts them into runs of
	// relayBenchRun and queues each for the senders; it returns how many it read.
	read := func(after *int64) (int, error) {
		rows, err := db.Read.QueryContext(ctx, `SELECT id, uuid, partition_key, payload
			FROM outbox WHERE id > ? ORDER BY id LIMIT ?`, *after, cfg.Outbox.BatchSize)
		if err != nil {
			return 0, err
		}
		defer rows.Close()
		var r run
		n := 0
		for rows.Next() {
			var uuid, key string
			var payload []byte
			if err := rows.Scan(after, &uuid, &key, &payload); err != nil {
				return n, err
			}
			m := message.NewMessage(uuid, payload)
			m.Metadata.Set(broker.PartitionKeyKey, key)
			m.Metadata.Set("event_type", "SendEmail")
			pm, err := marshaler.Marshal(topic, m)
			if err != nil {
				return n, err
			}
			if len(r.batch) == 0 {
				r = run{batch: make([]*sarama.ProducerMessage, 0, relayBenchRun), first: *after}
			}
			r.batch, r.last = append(r.batch, pm), *after
			if n++; len(r.batch) == relayBenchRun {
				runs <- r
				r = run{}
			}
		}
		if len(r.batch) > 0 {
			runs <- r
		}
		return n, rows.Err()
	}
	go func() { // the reader
		defer close(runs)
		var after int64
		for {
			n, err := read(&after)
			if err != nil {
				errs <- err
				return
			}
			if n < cfg.Outbox.BatchSize {
				return
			}
		}
	}()
	var senders sync.WaitGroup
	for range workers {
		senders.Go(func() {
			for r := range runs {
				if err := producer.SendMessages(r.batch); err != nil {
					errs <- err
					continue // keep draining, so the reader never blocks
				}
				sent <- r
			}
		})
	}
	go func() { senders.Wait(); close(sent) }()
	// The deleter: every floorDeleteEvery, one transaction deletes all that was sent
	// meanwhile, as few commits as a relay could make while keeping what a crash
	// would publish again to a moment's worth.
	deleted := 0
	var group []run
	flush := func() {
		err := db.Tx(ctx, func(tx *sql.Tx) error {
			for _, r := range group {
				if _, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE id BETWEEN ? AND ?`, r.first, r.last); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatalf("floor delete: %v", err)
		}
		for _, r := range group {
			deleted += len(r.batch)
		}
		group = group[:0]
	}
	tick := time.NewTicker(floorDeleteEvery)
	defer tick.Stop()
	for open := true; open; {
		select {
		case r, ok := <-sent:
			if open = ok; ok {
				group = append(group, r)
			}
		case <-tick.C:
			flush()
		}
	}
	flush()
	wall = time.Since(start)
	cpu, machine = cputime.Process(b)-cpu0, machineBusy()-machine0
	select {
	case err := <-errs:
		b.Fatalf("floor: %v", err)
	default:
	}
	if deleted != len(msgs) {
		b.Fatalf("floor: %d of %d rows published and deleted", deleted, len(msgs))
	}
	return wall, cpu, machine
}

// machineBusy is the CPU time every process on the machine has used so far (user,
// nice, system, irq and softirq in /proc/stat, in USER_HZ = 100 ticks a second), or
// 0 where there is no /proc/stat.
func machineBusy() time.Duration {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	var user, nice, system, idle, iowait, irq, softirq int64
	if _, err := fmt.Sscanf(string(data), "cpu %d %d %d %d %d %d %d", &user, &nice, &system, &idle, &iowait, &irq, &softirq); err != nil {
		return 0
	}
	return time.Duration(user+nice+system+irq+softirq) * (time.Second / 100)
}

// rawRun times a raw SyncProducer sending msgs in batches of relayBenchRun from
// `workers` goroutines, each batch marshaled just before it is sent, as the broker's
// publisher does.
func rawRun(b *testing.B, producer sarama.SyncProducer, topic string, msgs []*message.Message, workers int) time.Duration {
	b.Helper()
	marshaler := broker.PartitionMarshaler
	shares := make([][]*message.Message, workers)
	for i, m := range msgs {
		shares[i%workers] = append(shares[i%workers], m)
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			for run := range slices.Chunk(shares[w], relayBenchRun) {
				batch := make([]*sarama.ProducerMessage, len(run))
				for i, m := range run {
					pm, err := marshaler.Marshal(topic, m)
					if err != nil {
						errs[w] = err
						return
					}
					batch[i] = pm
				}
				if err := producer.SendMessages(batch); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	for _, err := range errs {
		if err != nil {
			b.Fatalf("raw SendMessages: %v", err)
		}
	}
	return elapsed
}

// Sizes of BenchmarkKafkaDeliveryLanes' batches: about 5 s each at 20 emails/s (one
// send in flight, 50 ms apiece) and at 16 times that.
const (
	kafkaLanesOneBatch  = 100
	kafkaLanesManyBatch = 1600
)

// kafkaLanesRates keeps BenchmarkKafkaDeliveryLanes' emails/s per lane count, so
// that lanes-16 can report its ratio to lanes-1.
var kafkaLanesRates sync.Map // int -> float64

// BenchmarkKafkaDeliveryLanes is BenchmarkDeliveryLanes on Kafka (topics.partitions
// 3): delivery throughput through an SMTP server that takes 50 ms to answer each
// DATA, with delivery.concurrency 1 and 16. lanes-16 reports x_lanes1, its speed-up
// over lanes-1 (target >= 12), when both ran. Where each partition is one lane
// whatever delivery.concurrency says (before issue 13), both have about 3 sends in
// flight and x_lanes1 is about 1.
//
// Sub-benchmarks are lanes-N, not lanes=N as on Go channels: the name goes into the
// topics' names (kafkaConfig), where Kafka refuses '='.
func BenchmarkKafkaDeliveryLanes(b *testing.B) {
	deliveryLanes(b, kafkaConfig, "lanes-%d", [2]int{kafkaLanesOneBatch, kafkaLanesManyBatch}, &kafkaLanesRates)
}

// BenchmarkKafkaEndToEndCapture measures emails/s from the first POST to the last
// `sent` on the capture transport, as BenchmarkEndToEndCapture does, on Go channels
// and on Kafka in the same run, with acceptance-to-sent latency on each.
// x_gochannel = kafka/gochannel (target >= 0.8).
//
// It also reports CPU per 1000 emails: this process's on each kind (the app, and the
// benchmark's HTTP clients and /metrics probe), and, when KAFKA_TEST_BROKER_PIDS
// names the brokers, the brokers' during the Kafka run (broker_cpu_ms_per_1000_emails)
// beside a raw Sarama producer and consumer pair putting the same records on Kafka
// again and reading them (rawBrokerPair): x_raw_broker_cpu = mailroom/raw (target
// <= 2). Per email Mailroom puts a SendEmail on topics.send and an EmailAttempted on
// topics.events, each read by a group of its own.
//
// The raw pair is given every record at once and packs thousands into a request,
// which a service delivering each email as it is accepted cannot; the broker's CPU
// follows requests more than records. So the same run also measures a paced raw
// pipeline (pacedRawPipeline): the same records produced at the rate the Kafka run
// accepted its emails (kafka_accept_emails/s), each event produced as its send
// record is read and each send marked once its event is acknowledged, with
// Mailroom's producer and consumer settings and nothing else around them.
// paced_raw_broker_cpu_ms_per_1000 is what that costs the broker; x_paced_raw =
// mailroom/paced is how Mailroom compares with it, and x_raw_paced = paced/raw is
// how far from the bulk pair a design that passes each record on as it comes lands.
//
// Measured on 2 shared cores (-benchtime 1x, warm node): Mailroom 147-219 ms per
// 1000 emails, the raw pair 21-23, the paced pipeline 204-237 (about 110 produce
// requests per 1000 emails): x_raw_paced 9-11, x_paced_raw 0.7-0.9. Mailroom's
// records, coming in bursts from a busy process, share requests more than the paced
// pipeline's smooth stream from a light client does.
//
// The broker's span is the Kafka run's busy period, from the first POST until every
// email reads `sent`: the relay's produce requests, the fetches of all three of the
// app's consumer groups (delivery's, the emails module's, the dead-letter one's,
// idle but long-polling every 100 ms), their heartbeats and offset commits, and the
// app's topic checks. The app's start, its groups' joins (one email goes through
// before the clock) and its shutdown fall outside.
func BenchmarkKafkaEndToEndCapture(b *testing.B) {
	kinds := []struct {
		name   string
		config func(testing.TB) *config.Config
	}{
		{config.BrokerGoChannel, apptest.Config},
		{config.BrokerKafka, kafkaConfig},
	}
	_, brokerKnown := brokerCPU(b)
	if !brokerKnown {
		b.Log("KAFKA_TEST_BROKER_PIDS is unset: no broker CPU figures (`make bench-kafka` sets it)")
	}
	rates := map[string]float64{}
	cpu := map[string]time.Duration{}
	var brokerTime, rawBrokerTime, pacedBrokerTime time.Duration
	var acceptRates float64 // the Kafka runs' emails/s accepted, summed
	var pacedRequests int64
	var rawEmails, sendBytes, eventBytes int
	b.ResetTimer()
	for b.Loop() {
		for _, k := range kinds {
			cfg := k.config(b)
			run := endToEndOnce(b, cfg, "e2e-"+k.name)
			rates[k.name] += run.rate
			cpu[k.name] += run.cpu
			b.ReportMetric(ms(run.p50), k.name+"_p50_ms")
			b.ReportMetric(ms(run.p99), k.name+"_p99_ms")
			if k.name != config.BrokerKafka || !brokerKnown {
				continue
			}
			brokerTime += run.brokerCPU
			b.StopTimer()
			send, events := readTopic(b, cfg.Kafka.Brokers, cfg.Topics.Send), readTopic(b, cfg.Kafka.Brokers, cfg.Topics.Events)
			b.StartTimer()
			rawBrokerTime += rawBrokerPair(b, cfg.Kafka.Brokers, cfg.Topics.Send, cfg.Topics.Partitions, send, events)
			cpu, requests := pacedRawPipeline(b, cfg.Kafka.Brokers, cfg.Topics.Send, cfg.Topics.Partitions, send, events, run.acceptRate)
			pacedBrokerTime, pacedRequests = pacedBrokerTime+cpu, pacedRequests+requests
			acceptRates += run.acceptRate
			rawEmails += len(send)
			sendBytes, eventBytes = sendBytes+valueBytes(send), eventBytes+valueBytes(events)
		}
	}
	b.ReportMetric(0, "ns/op")
	for name, r := range rates {
		b.ReportMetric(r/float64(b.N), name+"_emails/s")
	}
	b.ReportMetric(rates[config.BrokerKafka]/rates[config.BrokerGoChannel], "x_gochannel")
	per1000 := func(d time.Duration, emails int) float64 { return ms(d) * 1000 / float64(emails) }
	for name, d := range cpu {
		b.ReportMetric(per1000(d, b.N*endToEndBatch), name+"_cpu_ms_per_1000_emails")
	}
	if brokerKnown {
		mailroom, raw := per1000(brokerTime, b.N*endToEndBatch), per1000(rawBrokerTime, rawEmails)
		b.ReportMetric(mailroom, "broker_cpu_ms_per_1000_emails")
		b.ReportMetric(raw, "raw_broker_cpu_ms_per_1000")
		b.ReportMetric(mailroom/raw, "x_raw_broker_cpu")
		// The paced raw pipeline (pacedRawPipeline): the same records at the same
		// pace, passed on as they come, with nothing of Mailroom around them.
		b.ReportMetric(acceptRates/float64(b.N), "kafka_accept_emails/s")
		paced := per1000(pacedBrokerTime, rawEmails)
		b.ReportMetric(paced, "paced_raw_broker_cpu_ms_per_1000")
		b.ReportMetric(mailroom/paced, "x_paced_raw")
		b.ReportMetric(paced/raw, "x_raw_paced")
		// Its producer's requests per 1000 emails, which its broker CPU follows.
		b.ReportMetric(float64(pacedRequests)*1000/float64(rawEmails), "paced_raw_requests_per_1000")
		// The mean value sizes of the records the raw pair sent again.
		b.ReportMetric(float64(sendBytes)/float64(rawEmails), "send_record_bytes")
		b.ReportMetric(float64(eventBytes)/float64(rawEmails), "event_record_bytes")
	}
}

// valueBytes is the total size of records' values.
func valueBytes(records []kafkaRecord) int {
	n := 0
	for _, r := range records {
		n += len(r.value)
	}
	return n
}

// endToEndRun is what endToEndOnce measured.
type endToEndRun struct {
	rate     float64 // emails/s, first created_at to last sent_at
	p50, p99 time.Duration
	// cpu is this process's CPU time from the first POST until every email read
	// `sent`, and brokerCPU the brokers' (see brokerCPU; 0 when they are unknown).
	cpu, brokerCPU time.Duration
	// acceptRate is emails/s the app accepted: the batch over the span of its
	// POSTs, the pace at which pacedRawPipeline produces the same records again.
	acceptRate float64
}

// endToEndOnce starts an app on cfg, sends one email through it (so that its
// consumers have joined before the clock starts), posts endToEndBatch emails from
// benchClients clients and waits until all are sent; it returns emails/s (first
// created_at to last sent_at), the p50 and p99 latency from acceptance to sent and
// the CPU times spent meanwhile, and the rate it accepted the emails at.
func endToEndOnce(b *testing.B, cfg *config.Config, tag string) endToEndRun {
	b.Helper()
	in := apptest.Start(b, cfg)
	defer in.Stop(b)
	client := e2e.NewHTTPClient(b)
	b.StopTimer()
	sendOneThrough(b, client, in.URL)
	b.StartTimer()
	cpu0 := cputime.Process(b)
	broker0, _ := brokerCPU(b)
	posting, err := runClients(endToEndBatch, benchClients, postOp(client, in.URL, tag))
	if err != nil {
		b.Fatalf("post: %v", err)
	}
	waitForMetric(b, in.URL, `mailroom_emails{status="sent"}`, 1+endToEndBatch, 5*time.Minute)
	broker1, _ := brokerCPU(b)
	run := endToEndRun{cpu: cputime.Process(b) - cpu0, brokerCPU: broker1 - broker0,
		acceptRate: endToEndBatch / posting.Seconds()}
	b.StopTimer()
	defer b.StartTimer()
	items, err := e2e.ListAll(context.Background(), client, in.URL, "tag="+tag, 100)
	if err != nil || len(items) != endToEndBatch {
		b.Fatalf("list %s: %d items, %v", tag, len(items), err)
	}
	first, last, latencies := sentTimes(b, items)
	slices.Sort(latencies)
	run.rate = float64(len(items)) / last.Sub(first).Seconds()
	run.p50, run.p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
	return run
}
