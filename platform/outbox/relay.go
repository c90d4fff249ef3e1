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
	// Workers is how many publishes run at once. On Go channels it equals the lanes
	// of the send topic, so every lane has a publisher; on Kafka, the partitions.
	Workers int
	// BatchSize is the most due rows the relay reads and plans in one go.
	BatchSize int
	// RunSize is the most rows one Publish call carries: large on Kafka, where a
	// batch costs one round trip; 1 on Go channels, where each message waits for its
	// handler and small units keep every lane busy to the end.
	RunSize int
	// PollInterval is how often the relay looks for due rows when nothing woke it.
	PollInterval time.Duration
}

// Relay publishes outbox rows and deletes them once the broker accepted them.
//
// One dispatcher reads due rows in (due time, id) order and hands them to Workers
// publishers in units of up to RunSize rows with distinct partition keys. A key with
// a row in flight gets no other unit until that row is done, so rows of one key are
// published in order, one after the other, while different keys go in parallel on
// whichever publisher is free: no worker idles while another has a backlog.
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
	if cfg.RunSize < 1 {
		cfg.RunSize = 32
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

type row struct {
	id    int64
	key   string
	topic string
	msg   *message.Message
}

// unit is what one Publish call carries: rows of one topic with distinct keys.
type unit []row

type unitDone struct {
	unit unit
	err  error
}

// Run publishes until ctx is done. It starts only once ready is closed (the routers
// are running): on Go channels a message published before its subscriber exists is
// dropped. On return every publish in flight has finished; what was not published
// stays in the outbox.
func (r *Relay) Run(ctx context.Context, ready <-chan struct{}) error {
	select {
	case <-ready:
	case <-ctx.Done():
		return nil
	}
	wake := r.box.subscribe()
	units := make(chan unit)
	done := make(chan unitDone, r.cfg.Workers)
	var wg sync.WaitGroup
	for i := 0; i < r.cfg.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range units {
				done <- unitDone{unit: u, err: r.publish(u)}
			}
		}()
	}
	defer func() {
		close(units)
		wg.Wait()
	}()

	var (
		plan     = newPlan()
		pending  []unit // planned, not yet handed to a worker
		inFlight int
		backoff  time.Duration
		paused   bool // after a failure, until the timer fires
		fetch    = true
		timer    = time.NewTimer(0)
	)
	defer timer.Stop()
	resetTimer := func(d time.Duration) {
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(d)
	}
	for {
		if fetch && !paused && len(pending) < r.cfg.Workers {
			fetch = false
			next, err := r.planDue(ctx, plan, &pending)
			switch {
			case err != nil && ctx.Err() == nil:
				r.log.Warn("outbox relay: cannot read due rows", "error", err)
				resetTimer(r.cfg.PollInterval)
			case !next.IsZero():
				resetTimer(min(r.cfg.PollInterval, max(time.Until(next), time.Millisecond)))
			default:
				resetTimer(r.cfg.PollInterval)
			}
		}
		var (
			send chan unit
			head unit
		)
		if len(pending) > 0 && !paused {
			send, head = units, pending[0]
		}
		select {
		case <-ctx.Done():
			for ; inFlight > 0; inFlight-- {
				plan.release((<-done).unit)
			}
			return nil
		case send <- head:
			pending = pending[1:]
			inFlight++
		case d := <-done:
			inFlight--
			plan.release(d.unit)
			if d.err != nil {
				backoff = min(max(2*backoff, 100*time.Millisecond), 5*time.Second)
				r.log.Warn("outbox relay: publish failed, will retry", "retry_in", backoff, "error", d.err)
				// Drop the plan: the failed rows come first again after the pause.
				for _, u := range pending {
					plan.release(u)
				}
				pending, paused = nil, true
				resetTimer(backoff)
				continue
			}
			backoff = 0
			fetch = true
		case <-wake:
			fetch = true
		case <-timer.C:
			paused, fetch = false, true
		}
	}
}

// plan remembers which rows and keys are planned or in flight.
type plan struct {
	ids  map[int64]bool
	keys map[string]bool
}

func newPlan() *plan { return &plan{ids: map[int64]bool{}, keys: map[string]bool{}} }

func (p *plan) release(u unit) {
	for _, rw := range u {
		delete(p.ids, rw.id)
		delete(p.keys, rw.key)
	}
}

// planDue reads due rows and appends units of those not yet planned to pending. A
// row whose key is taken (planned, in flight, or held back by an earlier row of the
// same key in this read) waits. It returns when the next row falls due, when none is
// due now.
func (r *Relay) planDue(ctx context.Context, p *plan, pending *[]unit) (time.Time, error) {
	now := time.Now().UnixMilli()
	rows, err := r.due(ctx, now, len(p.ids)+r.cfg.BatchSize)
	if err != nil {
		return time.Time{}, err
	}
	held := map[string]bool{}
	var cur unit
	flush := func() {
		if len(cur) > 0 {
			*pending = append(*pending, cur)
			cur = nil
		}
	}
	planned := 0
	for _, rw := range rows {
		if p.ids[rw.id] {
			continue
		}
		if p.keys[rw.key] || held[rw.key] {
			held[rw.key] = true
			continue
		}
		if len(cur) > 0 && (cur[0].topic != rw.topic || len(cur) == r.cfg.RunSize) {
			flush()
		}
		p.ids[rw.id], p.keys[rw.key] = true, true
		held[rw.key] = true
		cur = append(cur, rw)
		planned++
	}
	flush()
	if planned > 0 || len(rows) > 0 {
		return time.Time{}, nil
	}
	return r.nextDue(ctx, now)
}

// publish publishes one unit and deletes its rows once the broker accepted them.
func (r *Relay) publish(u unit) error {
	msgs := make([]*message.Message, len(u))
	for i, rw := range u {
		msgs[i] = rw.msg
	}
	at := time.Now()
	if err := r.pub.Publish(u[0].topic, msgs...); err != nil {
		return fmt.Errorf("publish %s: %w", u[0].topic, err)
	}
	return r.markPublished(context.Background(), u[0].topic, u, at)
}

func (r *Relay) due(ctx context.Context, now int64, limit int) ([]row, error) {
	q, err := r.db.Read.QueryContext(ctx,
		`SELECT id, uuid, topic, partition_key, payload, metadata FROM outbox
		 WHERE available_at <= ? ORDER BY available_at, id LIMIT ?`, now, limit)
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
		if err := q.Scan(&rw.id, &uuid, &rw.topic, &rw.key, &payload, &metadata); err != nil {
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

func (r *Relay) nextDue(ctx context.Context, now int64) (time.Time, error) {
	var next sql.NullInt64
	err := r.db.Read.QueryRowContext(ctx, `SELECT MIN(available_at) FROM outbox WHERE available_at > ?`, now).Scan(&next)
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
