package outbox

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
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
	// Workers is how many publishes of one topic run at once; each topic has
	// publishers of its own. On Go channels it equals the lanes of the send topic,
	// so every lane has a publisher; on Kafka, the partitions.
	Workers int
	// BatchSize is the most due rows the relay reads and plans in one go.
	BatchSize int
	// RunSize is the most rows one Publish call carries: large on Kafka, where a
	// batch costs one round trip; 1 on Go channels, where each message waits for its
	// handler and small units keep every lane busy to the end.
	RunSize int
	// PollInterval is how often the relay looks for due rows when nothing woke it.
	// It is also how long a topic's publishes may go without one returning before
	// the relay reads past that topic's rows for other topics' (see Relay).
	PollInterval time.Duration
}

// Relay publishes outbox rows and deletes them once the broker accepted them.
//
// Three kinds of part do the work (Watermill's Router splits a handler the same
// way). One dispatcher reads due rows in (due time, id) order, plans them into units
// of up to RunSize rows of one topic with distinct partition keys, and hands each
// unit to the lane of its topic. Each lane has up to Workers publishers of its own,
// which publish its units. One deleter deletes published rows and runs the
// PublishedHooks.
//
// A key with a row planned or in flight, on any topic, gets no other unit until that
// row is deleted, so rows of one key are published in order, one after the other,
// while different keys go in parallel on whichever publisher of their topic is free:
// no publisher idles while another of its topic has a backlog.
//
// Topics never wait for each other. On Go channels a Publish returns only once the
// subscriber acknowledged, so a handler that waits (delivery, during an SMTP outage)
// blocks every publisher of its topic; the other topics' rows still go out on their
// own lanes. A lane whose publishes have not returned for a PollInterval stops
// holding up the reads: the dispatcher reads past its rows (keeping their keys
// back) to reach the other topics'. A publish that fails pauses only its own lane,
// for a backoff: a broker that is down fails every lane's next publish anyway, while
// one topic the broker refuses says nothing about the others.
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

// Run publishes until ctx is done. It starts only once ready is closed (the routers
// are running): on Go channels a message published before its subscriber exists is
// dropped. On return every publish in flight has finished and every published row
// is deleted (or, if the database refused, left to be published again); what was
// not published stays in the outbox.
//
// Publishing and deleting overlap: a publisher takes its next unit as soon as the
// broker accepted the last one, while the deleter removes published rows (and runs
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
	d := newDispatcher(ctx, r)
	defer d.stop()
	d.run()
	return nil
}

// row is one outbox row read for publishing.
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
