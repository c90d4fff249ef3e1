package adapters_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/modules/delivery/internal/app"
)

// bouncedOutcome is the outcome of email id's first try whose one recipient,
// Gone@example.com, bounced hard: its event, and its suppression, go to the outbox.
func bouncedOutcome(id string) app.Outcome {
	try := contract.FirstTry(contract.Email{EmailID: id, To: []string{"Gone@example.com"}})
	return app.Outcome{
		Try:       try,
		State:     app.State{EmailID: id, Attempts: 1, Status: contract.StatusDead},
		Attempted: contract.EmailAttempted{EmailID: id, Attempt: 1, Status: contract.StatusDead},
		Suppress: []app.Suppression{{Address: app.SuppressionKey("Gone@example.com"), Reason: app.ReasonHardBounce,
			Detail: "550 no such user", EmailID: id, Source: app.SourceBounce, CreatedAt: time.Now()}},
	}
}

// TestRecordWithAPublishWaitReturnsOnlyOnceTheHardBouncesSuppressionRecordIsPublished:
// the suppression a hard bounce decides is part of the try's outcome. On Kafka a
// worker lost with its disk before the record reached topics.suppressions would
// take the suppression with it, so Record returns only once the broker took it. An
// address on the list already gets no second record, and nothing waits for one.
func TestRecordWithAPublishWaitReturnsOnlyOnceTheHardBouncesSuppressionRecordIsPublished(t *testing.T) {
	pub := newGatedPublisher()
	pub.held = "suppressions"
	store := storeWithRelay(t, pub, time.Minute)
	store.SuppressionsTopic = "suppressions"
	o := bouncedOutcome("e1")
	record := o.Try.SuppressedUUID("gone@example.com")

	returned, done := recordInBackground(store, o)
	<-pub.entered // the relay holds the suppression record; the broker has not taken it
	if returned.Load() {
		t.Fatal("Record returned before the broker took the suppression record")
	}
	pub.open()
	if err := <-done; err != nil {
		t.Fatalf("Record: %v", err)
	}
	if took := pub.taken(); !slices.Contains(took, record) {
		t.Fatalf("Record returned before %s was published (the broker took %v)", record, took)
	}

	again := bouncedOutcome("e2")
	if err := store.Record(context.Background(), again, ""); err != nil {
		t.Fatalf("Record of a second bounce of the address: %v", err)
	}
	if took := pub.taken(); slices.Contains(took, again.Try.SuppressedUUID("gone@example.com")) {
		t.Errorf("the broker took %v: a second record for an address on the list already", took)
	}
}
