package ports

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/mailroom/mailroom/modules/suppressions/contract"
	"github.com/mailroom/mailroom/modules/suppressions/internal/app"
	"github.com/mailroom/mailroom/platform/broker"
	"github.com/mailroom/mailroom/platform/logging"
	"github.com/mailroom/mailroom/platform/outbox"
)

// appliedStore records what Apply was given; the rest of app.Store is unused here.
type appliedStore struct {
	app.Store
	applied []contract.Changed
}

func (s *appliedStore) Apply(_ context.Context, c contract.Changed) error {
	s.applied = append(s.applied, c)
	return nil
}

// TestARecordOfANewerSchemaVersionIsLeftUnacknowledgedAndABrokenOneSkipped: the
// consumer applies a record of version 1 (or with no version, from before
// versions); it refuses one of version 2 with an error, so the list waits on it
// until the instance is upgraded; and it acknowledges, without applying, a record
// of version 1 it cannot decode, which no later version would read better.
func TestARecordOfANewerSchemaVersionIsLeftUnacknowledgedAndABrokenOneSkipped(t *testing.T) {
	store := &appliedStore{}
	h := Changes{Apply: app.Apply{Store: store}, Log: logging.Discard()}
	ok, err := outbox.NewMessage("m1", "a@x.com", "", contract.Suppressed("a@x.com", "x", "", "", contract.SourceOperator, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if got := ok.Metadata.Get(broker.SchemaVersionKey); got != "1" {
		t.Fatalf("a record's schema_version is %q, want 1", got)
	}
	if err := h.Handle(ok); err != nil || len(store.applied) != 1 {
		t.Fatalf("a record of version 1: %v, applied %d; want it applied", err, len(store.applied))
	}
	unversioned := message.NewMessage("m0", []byte(`{"address":"b@x.com","state":"removed","at":"2026-12-06T01:00:00Z"}`))
	if err := h.Handle(unversioned); err != nil || len(store.applied) != 2 {
		t.Errorf("a record without a version: %v, applied %d; want it read as version 1", err, len(store.applied))
	}
	newer := message.NewMessage("m2", ok.Payload)
	newer.Metadata.Set(broker.SchemaVersionKey, "2")
	if err := h.Handle(newer); err == nil || len(store.applied) != 2 {
		t.Errorf("a record of version 2: %v, applied %d; want an error and nothing applied", err, len(store.applied))
	}
	broken := message.NewMessage("m3", []byte(`{"address":"c@x.com","state":"paused"}`))
	broken.Metadata.Set(broker.SchemaVersionKey, "1")
	if err := h.Handle(broken); err != nil || len(store.applied) != 2 {
		t.Errorf("a broken record of version 1: %v, applied %d; want it acknowledged and not applied", err, len(store.applied))
	}
}
