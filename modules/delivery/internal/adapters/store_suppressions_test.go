package adapters

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mailroom/mailroom/migrations"
	"github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/modules/delivery/internal/app"
	"github.com/mailroom/mailroom/platform/outbox"
	"github.com/mailroom/mailroom/platform/sqlite"
)

// On Kafka the suppression a hard bounce decides is part of the try's outcome: a
// worker lost with its disk before its record reached topics.suppressions would
// take the suppression with it, so Record returns only once the record is
// published. An address on the list already gets no record, and nothing waits for
// one.
func TestRecordReturnsOnlyOnceTheHardBouncesSuppressionRecordIsPublished(t *testing.T) {
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
	store := Store{DB: db, Outbox: box, SendTopic: "send", EventsTopic: "events", DeadLetterTopic: "dlt",
		SuppressionsTopic: "suppressions", PublishWait: time.Minute}
	pub := &heldPublisher{held: "suppressions", entered: make(chan string, 1), release: make(chan struct{})}
	relay := outbox.NewRelay(db, box, pub, outbox.RelayConfig{Workers: 1, PollInterval: time.Minute}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	runCtx, stop := context.WithCancel(ctx)
	relayDone := make(chan struct{})
	ready := make(chan struct{})
	close(ready)
	go func() { defer close(relayDone); _ = relay.Run(runCtx, ready) }()
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(pub.release) }) }
	t.Cleanup(func() { release(); stop(); <-relayDone })

	outcome := func(id string) (contract.SendEmail, app.Outcome) {
		try := contract.FirstTry(contract.Email{EmailID: id, From: "a@example.com", To: []string{"Gone@example.com"}, Subject: "s", Text: "t"})
		bounced := contract.RecipientState{Recipient: try.Recipients[0], Status: contract.RecipientBounced, Attempts: 1, Detail: "550 no"}
		return try, app.Outcome{Try: try, State: app.State{EmailID: id, Attempts: 1, Status: contract.StatusDead},
			Attempted: contract.EmailAttempted{EmailID: id, Attempt: 1, Status: contract.StatusDead, Recipients: []contract.RecipientState{bounced}, At: time.Now()},
			Suppress: []app.Suppression{{Address: app.SuppressionKey(bounced.Address), Reason: app.ReasonHardBounce, Detail: bounced.Detail,
				EmailID: id, Source: app.SourceBounce, CreatedAt: time.Now()}}}
	}
	try, o := outcome("e1")
	recorded := make(chan error, 1)
	go func() { recorded <- store.Record(ctx, o, "") }()
	select {
	case uuid := <-pub.entered:
		if uuid != try.SuppressedUUID("gone@example.com") {
			t.Fatalf("held %s, want the suppression record %s", uuid, try.SuppressedUUID("gone@example.com"))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the relay never published the suppression record")
	}
	select {
	case err := <-recorded:
		t.Fatalf("Record returned (%v) while the suppression record was not yet published", err)
	default:
	}
	release()
	if err := <-recorded; err != nil {
		t.Fatalf("Record: %v", err)
	}

	// A second bounce of the address: on the list already, no second record.
	_, again := outcome("e2")
	if err := store.Record(ctx, again, ""); err != nil {
		t.Fatalf("Record of a second bounce: %v", err)
	}
	if got := pub.published(); !slices.Contains(got, try.SuppressedUUID("gone@example.com")) || len(got) != 3 {
		t.Errorf("published %v, want both events and one suppression record", got)
	}
}
