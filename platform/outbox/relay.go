package outbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/mailroom/mailroom/platform/sqlite"
)

// PublishedHook runs inside the transaction that deletes published rows, so a module
// can record that its messages left the outbox (the emails timeline's "published").
// at is when the publish began: with a publisher that blocks until the subscriber
// acks (Go channels), the hook runs only after the consumer finished, so the hook's
// own clock would date "published" after what the consumer did.
type PublishedHook func(ctx context.Context, tx *sql.Tx, topic string, msgs []*message.Message, at time.Time) error

// RelayConfig tunes the relay.
type RelayConfig struct {
	// Workers is how many publishers run at once. Rows are split among them by the
	// hash of their partition key, so per-key order holds; on Go channels it equals
	// the lanes of the send topic, so worker i feeds lane i and never waits on another.
	Workers int
	// BatchSize is the most rows a worker publishes in one go.
	BatchSize int
	// PollInterval is how often a worker looks for due rows when nothing woke it.
	PollInterval time.Duration
}

// Relay publishes outbox rows and deletes them once the broker accepted them.
type Relay struct {
	db     *sqlite.DB
	box    *Outbox
	pub    message.Publisher
	cfg    RelayConfig
	log    *slog.Logger
	hookMu sync.RWMutex
	hooks  []PublishedHook
}

// NewRelay builds a relay publishing box's rows from db through pub.
func NewRelay(db *sqlite.DB, box *Outbox, pub message.Publisher, cfg RelayConfig, log *slog.Logger) *Relay {
	if cfg.Workers < 1 {
		cfg.Workers = 1
	}
	if cfg.BatchSize < 1 {
		cfg.BatchSize = 256
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	return &Relay{db: db, box: box, pub: pub, cfg: cfg, log: log}
}

// OnPublished registers hook; register before Run.
func (r *Relay) OnPublished(hook PublishedHook) {
	r.hookMu.Lock()
	defer r.hookMu.Unlock()
	r.hooks = append(r.hooks, hook)
}

// Run publishes until ctx is done. It starts only once ready is closed (the routers
// are running): on Go channels a message published before its subscriber exists is
// dropped. On return every publish in flight has finished.
func (r *Relay) Run(ctx context.Context, ready <-chan struct{}) error {
	select {
	case <-ready:
	case <-ctx.Done():
		return nil
	}
	var wg sync.WaitGroup
	for i := 0; i < r.cfg.Workers; i++ {
		wake := r.box.subscribe()
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.work(ctx, i, wake)
		}()
	}
	wg.Wait()
	return nil
}

func (r *Relay) work(ctx context.Context, worker int, wake <-chan struct{}) {
	backoff := time.Duration(0)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		n, next, err := r.publishDue(ctx, worker)
		wait := r.cfg.PollInterval
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil:
			backoff = min(max(2*backoff, 100*time.Millisecond), 5*time.Second)
			wait = backoff
			r.log.Warn("outbox relay: publish failed, will retry", "worker", worker, "retry_in", backoff, "error", err)
		case n > 0:
			backoff = 0
			continue // more may be due at once
		case !next.IsZero():
			wait = min(wait, max(time.Until(next), time.Millisecond))
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-wake:
			if backoff > 0 {
				// The broker failed recently: a commit is no reason to hammer it.
				select {
				case <-ctx.Done():
					return
				case <-timer.C:
				}
			}
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// maxRun is the most rows one Publish call carries. Between calls the relay checks
// for shutdown; on Go channels each message waits for its handler, so this bounds
// how long a stop waits for the relay.
const maxRun = 32

type row struct {
	id    int64
	topic string
	msg   *message.Message
}

// publishDue publishes one batch of this worker's due rows. It returns how many it
// published and, when none were due, when the next row of this worker falls due.
func (r *Relay) publishDue(ctx context.Context, worker int) (int, time.Time, error) {
	now := time.Now().UnixMilli()
	rows, err := r.due(ctx, worker, now)
	if err != nil || len(rows) == 0 {
		if err == nil {
			next, nerr := r.nextDue(ctx, worker, now)
			return 0, next, nerr
		}
		return 0, time.Time{}, err
	}
	published := 0
	for start := 0; start < len(rows); {
		if start > 0 && ctx.Err() != nil {
			// Shutting down: what is not yet published stays in the outbox.
			return published, time.Time{}, nil
		}
		end := start + 1
		for end < len(rows) && end-start < maxRun && rows[end].topic == rows[start].topic {
			end++
		}
		run := rows[start:end]
		msgs := make([]*message.Message, len(run))
		for i, row := range run {
			msgs[i] = row.msg
		}
		at := time.Now()
		if err := r.pub.Publish(run[0].topic, msgs...); err != nil {
			return published, time.Time{}, fmt.Errorf("publish %s: %w", run[0].topic, err)
		}
		if err := r.markPublished(context.WithoutCancel(ctx), run[0].topic, run, at); err != nil {
			return published, time.Time{}, err
		}
		published += len(run)
		start = end
	}
	return published, time.Time{}, nil
}

func (r *Relay) due(ctx context.Context, worker int, now int64) ([]row, error) {
	q, err := r.db.Read.QueryContext(ctx,
		`SELECT id, uuid, topic, payload, metadata FROM outbox
		 WHERE available_at <= ? AND key_hash % ? = ?
		 ORDER BY available_at, id LIMIT ?`,
		now, r.cfg.Workers, worker, r.cfg.BatchSize)
	if err != nil {
		return nil, fmt.Errorf("outbox: select due rows: %w", err)
	}
	defer q.Close()
	var rows []row
	for q.Next() {
		var (
			rw       row
			uuid     string
			payload  []byte
			metadata string
		)
		if err := q.Scan(&rw.id, &uuid, &rw.topic, &payload, &metadata); err != nil {
			return nil, fmt.Errorf("outbox: scan row: %w", err)
		}
		rw.msg = message.NewMessage(uuid, payload)
		if err := json.Unmarshal([]byte(metadata), &rw.msg.Metadata); err != nil {
			return nil, fmt.Errorf("outbox: row %d metadata: %w", rw.id, err)
		}
		rows = append(rows, rw)
	}
	return rows, q.Err()
}

func (r *Relay) nextDue(ctx context.Context, worker int, now int64) (time.Time, error) {
	var next sql.NullInt64
	err := r.db.Read.QueryRowContext(ctx,
		`SELECT MIN(available_at) FROM outbox WHERE available_at > ? AND key_hash % ? = ?`,
		now, r.cfg.Workers, worker).Scan(&next)
	if err != nil {
		return time.Time{}, fmt.Errorf("outbox: next due row: %w", err)
	}
	if !next.Valid {
		return time.Time{}, nil
	}
	return time.UnixMilli(next.Int64), nil
}

func (r *Relay) markPublished(ctx context.Context, topic string, rows []row, at time.Time) error {
	ids := make([]string, len(rows))
	args := make([]any, len(rows))
	msgs := make([]*message.Message, len(rows))
	for i, rw := range rows {
		ids[i] = "?"
		args[i] = rw.id
		msgs[i] = rw.msg
	}
	r.hookMu.RLock()
	hooks := r.hooks
	r.hookMu.RUnlock()
	err := r.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE id IN (`+strings.Join(ids, ",")+`)`, args...); err != nil {
			return fmt.Errorf("delete published rows: %w", err)
		}
		for _, hook := range hooks {
			if err := hook(ctx, tx, topic, msgs, at); err != nil {
				return fmt.Errorf("published hook: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("outbox: mark %d rows published: %w", len(rows), err)
	}
	return nil
}

// Stats is the size of the outbox, for metrics and readiness.
type Stats struct {
	Pending      int
	OldestAge    time.Duration
	DuePending   int
	OldestDueAge time.Duration
}

// ReadStats reads the backlog: all rows, and those already due.
func ReadStats(ctx context.Context, db *sqlite.DB) (Stats, error) {
	var (
		s           Stats
		oldest      sql.NullInt64
		oldestDue   sql.NullInt64
		now         = time.Now().UnixMilli()
		pending, dp int
	)
	err := db.Read.QueryRowContext(ctx,
		`SELECT COUNT(*), MIN(created_at),
		        COALESCE(SUM(available_at <= ?), 0), MIN(CASE WHEN available_at <= ? THEN available_at END)
		 FROM outbox`, now, now).Scan(&pending, &oldest, &dp, &oldestDue)
	if err != nil {
		return s, fmt.Errorf("outbox stats: %w", err)
	}
	s.Pending, s.DuePending = pending, dp
	if oldest.Valid {
		s.OldestAge = time.Duration(now-oldest.Int64) * time.Millisecond
	}
	if oldestDue.Valid {
		s.OldestDueAge = time.Duration(now-oldestDue.Int64) * time.Millisecond
	}
	return s, nil
}
