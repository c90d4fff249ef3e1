package adapters_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/mailroom/mailroom/migrations"
	"github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/modules/delivery/internal/adapters"
	"github.com/mailroom/mailroom/modules/delivery/internal/app"
	"github.com/mailroom/mailroom/platform/logging"
	"github.com/mailroom/mailroom/platform/outbox"
	"github.com/mailroom/mailroom/platform/sqlite"
)

// gatedPublisher is a broker that takes nothing of topic held ("": of any topic)
// until its gate is opened: it says when the relay first tries to publish there,
// and records what it took.
type gatedPublisher struct {
	held     string
	gate     chan struct{}
	entered  chan struct{} // closed at the first Publish
	once     sync.Once
	openOnce sync.Once
	mu       sync.Mutex
	took     []string // uuids, once accepted
}

// open lets the publisher take what the relay publishes, from now on.
func (p *gatedPublisher) open() { p.openOnce.Do(func() { close(p.gate) }) }

func newGatedPublisher() *gatedPublisher {
	return &gatedPublisher{gate: make(chan struct{}), entered: make(chan struct{})}
}

func (p *gatedPublisher) Publish(topic string, msgs ...*message.Message) error {
	if p.held == "" || topic == p.held {
		p.once.Do(func() { close(p.entered) })
		<-p.gate
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range msgs {
		p.took = append(p.took, m.UUID)
	}
	return nil
}

func (p *gatedPublisher) Close() error { return nil }

func (p *gatedPublisher) taken() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.took)
}

// storeWithRelay is a Store on a fresh database whose outbox relay publishes to pub,
// opened when the test ends so that the relay can stop.
func storeWithRelay(t *testing.T, pub *gatedPublisher, wait time.Duration) adapters.Store {
	t.Helper()
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "delivery.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	for _, owner := range []string{"platform", "delivery"} {
		if err := sqlite.Migrate(context.Background(), db, sqlite.MigrationSet{Name: owner, FS: migrations.For(owner)}); err != nil {
			t.Fatalf("migrate %s: %v", owner, err)
		}
	}
	box := outbox.New()
	relay := outbox.NewRelay(db, box, pub, outbox.RelayConfig{PollInterval: 50 * time.Millisecond}, logging.Discard())
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	close(ready)
	var wg sync.WaitGroup
	wg.Go(func() { _ = relay.Run(ctx, ready) })
	t.Cleanup(func() { cancel(); pub.open(); wg.Wait() })
	return adapters.Store{DB: db, Outbox: box, SendTopic: "send", EventsTopic: "events", DeadLetterTopic: "dead", PublishWait: wait}
}

// recordInBackground runs store.Record(o) in a goroutine: returned says whether it
// has returned, and done receives its error.
func recordInBackground(store adapters.Store, o app.Outcome) (returned *atomic.Bool, done <-chan error) {
	returned = new(atomic.Bool)
	errs := make(chan error, 1)
	go func() {
		err := store.Record(context.Background(), o, "")
		returned.Store(true)
		errs <- err
	}()
	return returned, errs
}

// deadOutcome is the outcome of a first try whose one recipient bounced: its event
// and its dead letter go to the outbox.
func deadOutcome() app.Outcome {
	try := contract.FirstTry(contract.Email{EmailID: "e1", To: []string{"b@example.com"}})
	return app.Outcome{
		Try:        try,
		State:      app.State{EmailID: "e1", Attempts: 1, Status: contract.StatusDead},
		Attempted:  contract.EmailAttempted{EmailID: "e1", Attempt: 1, Status: contract.StatusDead},
		DeadLetter: &contract.DeadLetter{Send: try, Reason: "550 no such user"},
	}
}

// TestRecordWithAPublishWaitReturnsOnlyOnceTheRelayPublishedTheTrysEventAndDeadLetter:
// on Kafka the SendEmail is acknowledged, and its offset committed, when Record
// returns, so Record must not return while the try's event (the outcome the
// accepting instance waits for) or its dead letter is still on this disk only: a
// worker lost then would lose them with its data directory. The broker here takes
// the event and holds the dead letter.
func TestRecordWithAPublishWaitReturnsOnlyOnceTheRelayPublishedTheTrysEventAndDeadLetter(t *testing.T) {
	pub := newGatedPublisher()
	pub.held = "dead"
	store := storeWithRelay(t, pub, time.Minute)
	o := deadOutcome()

	returned, done := recordInBackground(store, o)
	<-pub.entered // the relay holds the dead letter; the broker has not taken it
	if returned.Load() {
		t.Fatal("Record returned before the broker took the dead letter")
	}
	if took := pub.taken(); !slices.Equal(took, []string{o.Try.AttemptedUUID()}) {
		t.Fatalf("the broker took %v before the dead letter, want the event", took)
	}
	pub.open()
	if err := <-done; err != nil {
		t.Fatalf("Record: %v", err)
	}
	if took := pub.taken(); !slices.Contains(took, o.Try.DeadLetterUUID()) {
		t.Errorf("Record returned before %s was published (the broker took %v)", o.Try.DeadLetterUUID(), took)
	}
}

// TestRecordWithoutAPublishWaitReturnsAtOnce: on Go channels (no wait) one process
// and one disk hold everything, and Record does not wait for the relay.
func TestRecordWithoutAPublishWaitReturnsAtOnce(t *testing.T) {
	pub := newGatedPublisher()
	store := storeWithRelay(t, pub, 0)
	if err := store.Record(context.Background(), deadOutcome(), ""); err != nil {
		t.Fatalf("Record: %v", err)
	}
	if took := pub.taken(); len(took) != 0 {
		t.Fatalf("the broker took %v, although it takes nothing until the test lets it", took)
	}
}

// TestRecordGivesUpWaitingAfterThePublishWait: with Kafka unreachable the relay
// cannot publish, and Record returns once the wait is over, saying so
// (app.ErrOutcomeNotPublished: the SendEmail is not acknowledged), the try
// recorded and its messages still in the outbox.
func TestRecordGivesUpWaitingAfterThePublishWait(t *testing.T) {
	pub := newGatedPublisher()
	const wait = 200 * time.Millisecond
	store := storeWithRelay(t, pub, wait)
	start := time.Now()
	if err := store.Record(context.Background(), deadOutcome(), ""); !errors.Is(err, app.ErrOutcomeNotPublished) {
		t.Fatalf("Record: %v, want app.ErrOutcomeNotPublished", err)
	}
	if took := time.Since(start); took < wait {
		t.Errorf("Record returned after %v, before its wait of %v, with nothing published", took, wait)
	}
	var rows int
	if err := store.DB.Read.QueryRow(`SELECT COUNT(*) FROM outbox`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 2 {
		t.Errorf("%d outbox rows after Record, want the event and the dead letter", rows)
	}
}
