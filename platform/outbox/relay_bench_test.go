package outbox_test

import (
	"context"
	"database/sql"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/mailroom/mailroom/platform/broker"
	"github.com/mailroom/mailroom/platform/outbox"
	"github.com/mailroom/mailroom/platform/testkit/cputime"
)

const (
	ownWorkRows    = 20000
	ownWorkPayload = 1000 // bytes, about a SendEmail command
	ownWorkBatch   = 256  // rows per read: the relay's default outbox.batch_size
)

// nullPublisher accepts every message at once.
type nullPublisher struct{}

func (nullPublisher) Publish(string, ...*message.Message) error { return nil }
func (nullPublisher) Close() error                              { return nil }

// BenchmarkRelayOwnWork measures the CPU the relay spends per message on its own
// work (reading rows, building messages, deleting them in durable transactions)
// with a publisher that accepts at once: the part of the Kafka relay benchmark's
// gap to raw Sarama that is the relay's, measured without a broker. The baseline in
// the same run is SQLite alone doing the least the relay must: read the same rows
// ownWorkBatch at a time in due order, and delete each batch by id range in one
// transaction. x_sqlite = relay CPU / baseline CPU per message.
func BenchmarkRelayOwnWork(b *testing.B) {
	var relayCPU, rawCPU time.Duration
	for b.Loop() {
		b.StopTimer()
		e := filledEnv(b)
		b.StartTimer()
		relayCPU += relayDrain(b, e)
		b.StopTimer()
		e = filledEnv(b)
		b.StartTimer()
		rawCPU += rawDrain(b, e)
	}
	perMsg := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(b.N*ownWorkRows) }
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(perMsg(relayCPU), "relay_cpu_us/msg")
	b.ReportMetric(perMsg(rawCPU), "sqlite_cpu_us/msg")
	b.ReportMetric(float64(relayCPU)/float64(rawCPU), "x_sqlite")
}

// filledEnv is a fresh outbox holding ownWorkRows rows shaped like SendEmail
// commands, written straight on the writer connection (so that a profile tells the
// fill's commits from the relay's) and checkpointed, so no setup I/O is left over.
func filledEnv(b *testing.B) *testEnv {
	e := newEnv(b)
	payload := []byte(strings.Repeat("x", ownWorkPayload))
	for chunk := range slices.Chunk(make([]int, ownWorkRows), 1000) {
		tx, err := e.db.Write.Begin()
		if err != nil {
			b.Fatal(err)
		}
		for range chunk {
			m := message.NewMessage(watermill.NewUUID(), payload)
			m.Metadata.Set(broker.PartitionKeyKey, m.UUID)
			m.Metadata.Set("event_type", "SendEmail")
			if err := e.box.Add(context.Background(), tx, "email.send", m, time.Time{}); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := e.db.Write.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		b.Fatal(err)
	}
	return e
}

// relayDrain runs a relay over e until every row is published and deleted and
// returns the CPU time that took.
func relayDrain(b *testing.B, e *testEnv) time.Duration {
	relay := outbox.NewRelay(e.db, e.box, nullPublisher{}, outbox.RelayConfig{Workers: 3, BatchSize: ownWorkBatch, PollInterval: time.Second},
		slog.New(slog.DiscardHandler))
	var published atomic.Int64
	done := make(chan struct{})
	var once sync.Once
	relay.OnPublished(func(_ context.Context, _ *sql.Tx, _ string, ms []*message.Message, _ time.Time) error {
		if published.Add(int64(len(ms))) >= ownWorkRows {
			once.Do(func() { close(done) })
		}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	cpu0 := cputime.Process(b)
	go func() { defer close(stopped); _ = relay.Run(ctx, closedChan()) }()
	<-done
	cpu := cputime.Process(b) - cpu0
	cancel()
	<-stopped
	return cpu
}

// rawDrain reads e's rows ownWorkBatch at a time in due order and deletes each
// batch by id range in one transaction, and returns the CPU time that took.
func rawDrain(b *testing.B, e *testEnv) time.Duration {
	ctx := context.Background()
	cpu0 := cputime.Process(b)
	for {
		rows, err := e.db.Read.QueryContext(ctx, `SELECT id, available_at, uuid, topic, partition_key, payload, metadata
			FROM outbox WHERE available_at <= ? ORDER BY available_at, id LIMIT ?`, time.Now().UnixMilli(), ownWorkBatch)
		if err != nil {
			b.Fatal(err)
		}
		var first, last int64
		n := 0
		for rows.Next() {
			var (
				id, at           int64
				uuid, topic, key string
				payload          []byte
				metadata         string
			)
			if err := rows.Scan(&id, &at, &uuid, &topic, &key, &payload, &metadata); err != nil {
				b.Fatal(err)
			}
			if n == 0 {
				first = id
			}
			last = id
			n++
		}
		if err := rows.Err(); err != nil {
			b.Fatal(err)
		}
		rows.Close()
		if n == 0 {
			return cputime.Process(b) - cpu0
		}
		err = e.db.Tx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE id BETWEEN ? AND ?`, first, last)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
