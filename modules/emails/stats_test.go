package emails_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/mailroom/mailroom/app"
	"github.com/mailroom/mailroom/app/apptest"
	delivery "github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/modules/emails"
	"github.com/mailroom/mailroom/platform/logging"
	"github.com/mailroom/mailroom/platform/outbox"
)

// statsOf collects what the module reports for GET /api/stats, by part.
func statsOf(t *testing.T, m *emails.Module) map[string]json.RawMessage {
	t.Helper()
	parts := map[string]json.RawMessage{}
	m.Stats(context.Background(), func(part string, value any, err error) {
		if err != nil {
			t.Fatalf("part %s: %v", part, err)
		}
		b, err := json.Marshal(value)
		if err != nil {
			t.Fatal(err)
		}
		parts[part] = b
	})
	return parts
}

// seriesTotals sums each series of the "series" part.
func seriesTotals(t *testing.T, raw json.RawMessage) map[string]int64 {
	t.Helper()
	var s struct {
		IntervalSeconds int                `json:"interval_seconds"`
		Counts          map[string][]int64 `json:"counts"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	if s.IntervalSeconds != 1 {
		t.Errorf("interval_seconds %d, want 1", s.IntervalSeconds)
	}
	totals := map[string]int64{}
	for name, counts := range s.Counts {
		if len(counts) != 300 {
			t.Errorf("series %s has %d counts, want 300 (five minutes)", name, len(counts))
		}
		for _, n := range counts {
			totals[name] += n
		}
	}
	return totals
}

// An event the broker delivers twice (at least once, by design) is applied once,
// and so counted once: the per-second counts follow what the database committed,
// not what the broker handed over.
func TestAnEventDeliveredTwiceIsCountedOncePerRecipient(t *testing.T) {
	cfg := apptest.Config(t)
	db := apptest.Database(t, cfg)
	m := emails.New(app.EmailsConfig(cfg, "test"), db, outbox.New(), logging.Discard(), nil)
	pub := apptest.RunHandlers(t, cfg, m.RegisterHandlers)
	insertEmail(t, db, "0198-stats", "queued", time.Now())

	payload, err := json.Marshal(delivery.EmailAttempted{EmailID: "0198-stats", Attempt: 1, Status: delivery.StatusRetrying,
		Recipients: []delivery.RecipientState{
			{Recipient: delivery.Recipient{Address: "b@example.com", Type: delivery.TypeTo}, Status: delivery.RecipientDeferred, Attempts: 1, Detail: "451 later"},
			{Recipient: delivery.Recipient{Address: "c@example.com", Type: delivery.TypeTo}, Status: delivery.RecipientDeferred, Attempts: 1, Detail: "451 later"},
			{Recipient: delivery.Recipient{Address: "d@example.com", Type: delivery.TypeTo}, Status: delivery.RecipientBounced, Attempts: 1, Detail: "550 no"},
		}, At: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		msg := message.NewMessage("0198-stats/r0/a1/attempted", payload)
		msg.Metadata.Set(delivery.EventTypeKey, delivery.EventEmailAttempted)
		apptest.Publish(t, pub, cfg.Topics.Events, msg) // returns once applied
	}

	parts := statsOf(t, m)
	totals := seriesTotals(t, parts["series"])
	for name, want := range map[string]int64{"accepted": 0, "sent": 0, "deferred": 2, "bounced": 1, "dead_lettered": 0} {
		if got, ok := totals[name]; !ok || got != want {
			t.Errorf("%s counted %d (present %v), want %d", name, got, ok, want)
		}
	}
	var byStatus map[string]int
	if err := json.Unmarshal(parts["emails"], &byStatus); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"scheduled": 0, "queued": 0, "retrying": 1, "sent": 0, "dead": 0, "cancelled": 0}
	if len(byStatus) != len(want) {
		t.Errorf("emails by status %v, want every status: %v", byStatus, want)
	}
	for s, n := range want {
		if byStatus[s] != n {
			t.Errorf("emails %s: %d, want %d (all: %v)", s, byStatus[s], n, byStatus)
		}
	}
}
