package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailroom/mailroom/platform/testkit/cputime"
)

// BenchmarkGroupCommit measures the writer alone: 32 goroutines each run Tx after
// Tx, each writing what an accepted email writes (a 1 KB email row with an indexed
// status, a tag row and a 1 KB outbox row with an indexed due time), with nothing
// else competing for the CPU. It reports transactions per second.
func BenchmarkGroupCommit(b *testing.B) {
	const clients, perIteration = 32, 4000
	db := openDB(b)
	for _, q := range []string{
		`CREATE TABLE emails (id TEXT PRIMARY KEY, status TEXT NOT NULL, text_body TEXT NOT NULL, created_at INTEGER NOT NULL)`,
		`CREATE INDEX emails_status ON emails (status, id)`,
		`CREATE TABLE tags (email_id TEXT NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (tag, email_id)) WITHOUT ROWID`,
		`CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, uuid TEXT NOT NULL, payload BLOB NOT NULL, available_at INTEGER NOT NULL)`,
		`CREATE INDEX outbox_due ON outbox (available_at, id)`,
	} {
		exec(b, db.Write, q)
	}
	body := strings.Repeat("lorem ipsum ", 85)
	var seq atomic.Int64
	job := func(ctx context.Context) error {
		id := fmt.Sprintf("%020d", seq.Add(1))
		now := time.Now().UnixMilli()
		return db.Tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO emails (id, status, text_body, created_at) VALUES (?, 'queued', ?, ?)`, id, body, now); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO tags (email_id, tag) VALUES (?, 'bench')`, id); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO outbox (uuid, payload, available_at) VALUES (?, ?, ?)`, id+"/1", []byte(body), now)
			return err
		})
	}
	var total, cpu time.Duration
	for b.Loop() {
		cpu0 := cputime.Process(b)
		var next atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range clients {
			wg.Go(func() {
				for next.Add(1) <= perIteration {
					if err := job(context.Background()); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		total += time.Since(start)
		cpu += cputime.Process(b) - cpu0
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(b.N*perIteration)/total.Seconds(), "tx/s")
	// CPU per transaction says more than tx/s on a machine shared with other work.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*perIteration), "cpu_us/tx")
}
