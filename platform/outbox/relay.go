package outbox

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
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
	at    int64 // available_at: with id, the row's place in due order
	key   string
	topic string
	msg   *message.Message
}

// unit is what one Publish call carries: rows of one topic with distinct keys.
type unit []row

// published is a unit the broker accepted, waiting for its rows to be deleted.
type published struct {
	unit unit
	at   time.Time // when its publish began, for the hooks
}

type unitDone struct {
	published
	err error
}

type deleteDone struct {
	batch []published
	err   error
}

// Run publishes until ctx is done. It starts only once ready is closed (the routers
// are running): on Go channels a message published before its subscriber exists is
// dropped. On return every publish in flight has finished and every published row
// is deleted (or, if the database refused, left to be published again); what was
// not published stays in the outbox.
//
// Publishing and deleting overlap: a worker takes its next unit as soon as the
// broker accepted the last one, while one deleter removes published rows (and runs
// the hooks) in the background, many units per transaction. A published row and its
// key stay planned until the row is deleted, so it is never read and published
// twice, and the key's next row follows only once the hooks have recorded this one:
// what a consumer does with the next message is never recorded before this one's
// "published".
func (r *Relay) Run(ctx context.Context, ready <-chan struct{}) error {
	select {
	case <-ready:
	case <-ctx.Done():
		return nil
	}
	wake := r.box.subscribe()
	// Buffered, so a worker finds its next unit even while the dispatcher reads.
	units := make(chan unit, r.cfg.Workers)
	done := make(chan unitDone, r.cfg.Workers)
	var wg sync.WaitGroup
	for i := 0; i < r.cfg.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range units {
				if ctx.Err() != nil {
					// Shutting down: a unit not started is not started.
					done <- unitDone{published: published{unit: u}, err: ctx.Err()}
					continue
				}
				at := time.Now()
				done <- unitDone{published: published{unit: u, at: at}, err: r.publish(u)}
			}
		}()
	}
	deletes := make(chan []published)
	deleted := make(chan deleteDone, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for batch := range deletes {
			deleted <- deleteDone{batch: batch, err: r.markPublished(context.Background(), batch)}
		}
	}()
	defer func() {
		close(units)
		close(deletes)
		wg.Wait()
	}()

	var (
		plan     = newPlan()
		pending  []unit      // planned, not yet handed to a worker
		toDelete []published // published, not yet handed to the deleter
		inFlight int
		deleting bool // the deleter has a batch
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
	finishDelete := func(d deleteDone) {
		deleting = false
		for _, p := range d.batch {
			plan.release(p.unit)
		}
		if d.err != nil {
			// The rows stay in the outbox, behind the sweep, and are published
			// again: a duplicate, never a loss.
			plan.sweeping = false
			r.log.Warn("outbox relay: cannot delete published rows, they will be published again", "error", d.err)
		}
	}
	// shutdown lets what is in flight finish and deletes what was published.
	shutdown := func() {
		// Units no worker has taken yet are not started: they stay in the outbox.
	drain:
		for {
			select {
			case u := <-units:
				inFlight--
				plan.release(u)
			default:
				break drain
			}
		}
		for ; inFlight > 0; inFlight-- {
			d := <-done
			if d.err == nil {
				toDelete = append(toDelete, d.published)
			}
		}
		if deleting {
			finishDelete(<-deleted)
		}
		if len(toDelete) > 0 {
			deletes <- toDelete
			finishDelete(<-deleted)
		}
	}
	for {
		if ctx.Err() != nil {
			shutdown()
			return nil
		}
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
			send    chan unit
			head    unit
			del     chan []published
			delHead []published
		)
		if len(pending) > 0 && !paused {
			send, head = units, pending[0]
		}
		if len(toDelete) > 0 && !deleting {
			del, delHead = deletes, toDelete
		}
		select {
		case <-ctx.Done():
			shutdown()
			return nil
		case send <- head:
			pending = pending[1:]
			inFlight++
		case del <- delHead:
			toDelete, deleting = nil, true
		case d := <-deleted:
			finishDelete(d)
			fetch = true
		case d := <-done:
			inFlight--
			if d.err != nil && ctx.Err() != nil {
				plan.release(d.unit) // not started: shutting down
				continue
			}
			if d.err != nil {
				plan.release(d.unit)
				backoff = min(max(2*backoff, 100*time.Millisecond), 5*time.Second)
				r.log.Warn("outbox relay: publish failed, will retry", "retry_in", backoff, "error", d.err)
				// Drop the plan: the failed rows come first again after the pause.
				for _, u := range pending {
					plan.release(u)
				}
				plan.sweeping = false // the released rows are behind the cursor
				pending, paused = nil, true
				resetTimer(backoff)
				continue
			}
			toDelete = append(toDelete, d.published)
			backoff = 0
			fetch = true
		case <-wake:
			fetch = true
		case <-timer.C:
			paused, fetch = false, true
		}
	}
}

// plan remembers which rows are planned, in flight or awaiting deletion, which keys
// are planned or in flight, and how far the current sweep through the due rows got.
type plan struct {
	ids  map[int64]bool
	keys map[string]bool
	// A sweep reads due rows forward from a cursor, so rows planned earlier (still in
	// the outbox until deleted) are not read again on every read. held keeps the keys
	// of rows the sweep passed without planning: their later rows must wait too, and
	// once such a key is free the sweep starts over to pick its row up.
	sweeping bool
	cursorAt int64
	cursorID int64
	held     map[string]bool
	began    time.Time // when the sweep started over last
}

func newPlan() *plan {
	return &plan{ids: map[int64]bool{}, keys: map[string]bool{}, held: map[string]bool{}}
}

// release forgets u: it was deleted, or it was not published (then the caller
// makes the sweep start over, as its rows are behind the cursor).
func (p *plan) release(u unit) {
	p.releaseKeys(u)
	p.releaseRows(u)
}

// releaseKeys frees u's keys.
func (p *plan) releaseKeys(u unit) {
	for _, rw := range u {
		delete(p.keys, rw.key)
		if p.held[rw.key] {
			p.sweeping = false // the key's next row is behind the cursor
		}
	}
}

// releaseRows forgets u's rows once they are deleted.
func (p *plan) releaseRows(u unit) {
	for _, rw := range u {
		delete(p.ids, rw.id)
	}
}

// planDue reads due rows and appends units of those not yet planned to pending. A
// row whose key is taken (planned, in flight, or held back by an earlier row of the
// same key) waits. It returns when the next row falls due, when none is due now.
//
// Reads continue the current sweep from its cursor. The sweep starts over from the
// first due row when it reached the end of the due rows, when a held key or a failed
// row was released, and at least every PollInterval, which also picks up a row that
// became visible behind the cursor (committed late, or due late).
func (r *Relay) planDue(ctx context.Context, p *plan, pending *[]unit) (time.Time, error) {
	now := time.Now()
	if p.sweeping && now.Sub(p.began) >= r.cfg.PollInterval {
		p.sweeping = false
	}
	if !p.sweeping {
		clear(p.held)
		p.began = now
	}
	rows, read, err := r.due(ctx, now.UnixMilli(), r.cfg.BatchSize, p)
	if err != nil {
		p.sweeping = false
		return time.Time{}, err
	}
	var cur unit
	flush := func() {
		if len(cur) > 0 {
			*pending = append(*pending, cur)
			cur = nil
		}
	}
	for _, rw := range rows {
		if p.keys[rw.key] || p.held[rw.key] {
			p.held[rw.key] = true
			continue
		}
		if len(cur) > 0 && (cur[0].topic != rw.topic || len(cur) == r.cfg.RunSize) {
			flush()
		}
		p.ids[rw.id], p.keys[rw.key] = true, true
		cur = append(cur, rw)
	}
	flush()
	// A short read reached the end: the next read starts over.
	p.sweeping = read == r.cfg.BatchSize
	if len(rows) > 0 || len(p.ids) > 0 {
		return time.Time{}, nil
	}
	return r.nextDue(ctx, now.UnixMilli())
}

// publish publishes one unit.
func (r *Relay) publish(u unit) error {
	msgs := make([]*message.Message, len(u))
	for i, rw := range u {
		msgs[i] = rw.msg
	}
	if err := r.pub.Publish(u[0].topic, msgs...); err != nil {
		return fmt.Errorf("publish %s: %w", u[0].topic, err)
	}
	return nil
}

// due reads up to limit due rows in (due time, id) order, past the sweep's cursor
// while it sweeps, from the first due row otherwise, and returns those not yet
// planned and how many it read; it moves the cursor to the last row read. Starting
// over, SQLite leaves the planned rows out itself, so a published row waiting for
// its delete costs no read.
func (r *Relay) due(ctx context.Context, now int64, limit int, p *plan) ([]row, int, error) {
	const cols = `SELECT id, available_at, uuid, topic, partition_key, payload, metadata FROM outbox `
	var (
		q   *sql.Rows
		err error
	)
	if p.sweeping {
		q, err = r.db.Read.QueryContext(ctx, cols+
			`WHERE available_at <= ? AND (available_at, id) > (?, ?)
			 ORDER BY available_at, id LIMIT ?`, now, p.cursorAt, p.cursorID, limit)
	} else {
		// Never null: NOT IN a set holding NULL matches nothing.
		planned, jerr := json.Marshal(slices.AppendSeq(make([]int64, 0, len(p.ids)), maps.Keys(p.ids)))
		if jerr != nil {
			return nil, 0, fmt.Errorf("outbox: encode planned ids: %w", jerr)
		}
		q, err = r.db.Read.QueryContext(ctx, cols+
			`WHERE available_at <= ? AND id NOT IN (SELECT value FROM json_each(?))
			 ORDER BY available_at, id LIMIT ?`, now, string(planned), limit)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("outbox: select due rows: %w", err)
	}
	defer q.Close()
	var (
		rows []row
		read int
	)
	for q.Next() {
		var (
			rw                      row
			uuid, payload, metadata sql.RawBytes
		)
		if err := q.Scan(&rw.id, &rw.at, &uuid, &rw.topic, &rw.key, &payload, &metadata); err != nil {
			return nil, 0, fmt.Errorf("outbox: scan row: %w", err)
		}
		read++
		p.cursorAt, p.cursorID = rw.at, rw.id
		if p.ids[rw.id] {
			continue // planned in an earlier sweep that got further
		}
		rw.msg = message.NewMessage(string(uuid), bytes.Clone(payload))
		if err := decodeMetadata(metadata, rw.msg.Metadata); err != nil {
			return nil, 0, fmt.Errorf("outbox: row %d metadata: %w", rw.id, err)
		}
		rows = append(rows, rw)
	}
	return rows, read, q.Err()
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

// markPublished deletes the rows of batch and runs the hooks for each unit, in one
// transaction.
func (r *Relay) markPublished(ctx context.Context, batch []published) error {
	r.hookMu.RLock()
	hooks := r.hooks
	r.hookMu.RUnlock()
	var ids []int64
	for _, p := range batch {
		for _, rw := range p.unit {
			ids = append(ids, rw.id)
		}
	}
	slices.Sort(ids)
	runs := consecutiveRuns(ids)
	err := r.db.Tx(ctx, func(tx *sql.Tx) error {
		for _, run := range runs {
			if _, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE id BETWEEN ? AND ?`, run[0], run[1]); err != nil {
				return fmt.Errorf("delete published rows: %w", err)
			}
		}
		for _, p := range batch {
			msgs := make([]*message.Message, len(p.unit))
			for i, rw := range p.unit {
				msgs[i] = rw.msg
			}
			for _, hook := range hooks {
				if err := hook(ctx, tx, p.unit[0].topic, msgs, p.at); err != nil {
					return fmt.Errorf("published hook: %w", err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("outbox: mark %d rows published: %w", len(ids), err)
	}
	return nil
}

// consecutiveRuns splits sorted, distinct ids into runs of consecutive integers,
// each as its first and last id: a relay batch is mostly one or a few such runs, and
// one ranged DELETE walks a run's rows in one statement, where a list of ids seeks
// each. A run holds exactly the batch's ids, never a row between them.
func consecutiveRuns(ids []int64) [][2]int64 {
	var runs [][2]int64
	for _, id := range ids {
		if n := len(runs); n > 0 && runs[n-1][1] == id-1 {
			runs[n-1][1] = id
			continue
		}
		runs = append(runs, [2]int64{id, id})
	}
	return runs
}

// Stats is the size of the outbox, for the metrics (mailroom_outbox_*).
type Stats struct {
	// Pending counts every row not yet published, due now or later.
	Pending int
	// DuePending counts the rows due now: the relay's backlog.
	DuePending int
	// OldestDueAge is how long the oldest due row has waited (0 with none): a
	// stuck relay shows here first.
	OldestDueAge time.Duration
}

// ReadStats reads the backlog: all rows, and those already due.
func ReadStats(ctx context.Context, db *sqlite.DB) (Stats, error) {
	var (
		s           Stats
		oldestDue   sql.NullInt64
		now         = time.Now().UnixMilli()
		pending, dp int
	)
	err := db.Read.QueryRowContext(ctx,
		`SELECT COUNT(*), COALESCE(SUM(available_at <= ?), 0), MIN(CASE WHEN available_at <= ? THEN available_at END)
		 FROM outbox`, now, now).Scan(&pending, &dp, &oldestDue)
	if err != nil {
		return s, fmt.Errorf("outbox stats: %w", err)
	}
	s.Pending, s.DuePending = pending, dp
	if oldestDue.Valid {
		s.OldestDueAge = time.Duration(now-oldestDue.Int64) * time.Millisecond
	}
	return s, nil
}
