package adapters

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/mailroom/mailroom/migrations"
	"github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/modules/delivery/internal/app"
	"github.com/mailroom/mailroom/platform/outbox"
	"github.com/mailroom/mailroom/platform/sqlite"
)

// heldPublisher publishes at once, except to held, whose publishes wait until
// release is closed; entered receives the uuid of each held message it holds.
type heldPublisher struct {
	held    string
	entered chan string
	release chan struct{}
	mu      sync.Mutex
	done    []string
}

func (p *heldPublisher) Publish(topic string, msgs ...*message.Message) error {
	if topic == p.held {
		for _, m := range msgs {
			p.entered <- m.UUID
		}
		<-p.release
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range msgs {
		p.done = append(p.done, m.UUID)
	}
	return nil
}

func (p *heldPublisher) Close() error { return nil }

func (p *heldPublisher) published() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.done...)
}

// On Kafka a try's SendEmail is acknowledged when Record returns: Record must not
// return before every message the outcome caused is in the broker, the dead letter
// as well as the event, or a worker lost with its disk right after would take the
// email's end with it.
func TestRecordReturnsOnlyOnceEveryMessageOfTheOutcomeIsPublished(t *testing.T) {
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "delivery.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := context.Background()
	if err := sqlite.Migrate(ctx, db, sqlite.MigrationSet{Name: "platform", FS: migrations.For("platform")},
		sqlite.MigrationSet{Name: "delivery", FS: migrations.For("delivery")}); err != nil {
		t.Fatal(err)
	}
	box := outbox.New()
	store := Store{DB: db, Outbox: box, SendTopic: "send", EventsTopic: "events", DeadLetterTopic: "dlt", PublishWait: time.Minute}
	pub := &heldPublisher{held: "dlt", entered: make(chan string, 1), release: make(chan struct{})}
	relay := outbox.NewRelay(db, box, pub, outbox.RelayConfig{Workers: 1, PollInterval: time.Minute}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	runCtx, stop := context.WithCancel(ctx)
	relayDone := make(chan struct{})
	ready := make(chan struct{})
	close(ready)
	go func() { defer close(relayDone); _ = relay.Run(runCtx, ready) }()
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(pub.release) }) }
	t.Cleanup(func() { release(); stop(); <-relayDone })

	try := contract.FirstTry(contract.Email{EmailID: "e1", From: "a@example.com", To: []string{"gone@example.com"}, Subject: "s", Text: "t"})
	bounced := contract.RecipientState{Recipient: try.Recipients[0], Status: contract.RecipientBounced, Attempts: 1, Detail: "550 no"}
	o := app.Outcome{Try: try, State: app.State{EmailID: "e1", Attempts: 1, Status: contract.StatusDead},
		Attempted:  contract.EmailAttempted{EmailID: "e1", Attempt: 1, Status: contract.StatusDead, Recipients: []contract.RecipientState{bounced}, At: time.Now()},
		DeadLetter: &contract.DeadLetter{Send: try, Undelivered: []contract.RecipientState{bounced}, Reason: "550", ErrorClass: contract.ClassPermanent}}
	recorded := make(chan error, 1)
	go func() { recorded <- store.Record(ctx, o, "") }()

	select {
	case uuid := <-pub.entered:
		if uuid != try.DeadLetterUUID() {
			t.Fatalf("held %s, want the dead letter %s", uuid, try.DeadLetterUUID())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the relay never published the dead letter")
	}
	// The dead letter is inside Publish and held there: Record cannot have returned.
	select {
	case err := <-recorded:
		t.Fatalf("Record returned (%v) while the dead letter was not yet published", err)
	default:
	}
	release()
	select {
	case err := <-recorded:
		if err != nil {
			t.Fatalf("Record: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Record did not return after every message was published")
	}
	if got := pub.published(); len(got) != 2 {
		t.Errorf("published %v, want the event and the dead letter", got)
	}
}
