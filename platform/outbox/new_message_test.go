package outbox_test

import (
	"testing"

	"github.com/mailroom/mailroom/platform/broker"
	"github.com/mailroom/mailroom/platform/outbox"
)

type versionedPayload struct{ N int }

func (versionedPayload) SchemaVersion() int { return 3 }

func TestNewMessageCarriesTheSchemaVersionOfAVersionedPayloadOnly(t *testing.T) {
	msg, err := outbox.NewMessage("m1", "k1", "c1", versionedPayload{N: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := msg.Metadata.Get(broker.SchemaVersionKey); got != "3" {
		t.Errorf("a versioned payload's message has schema_version %q, want 3", got)
	}
	plain, err := outbox.NewMessage("m2", "k1", "", struct{ N int }{1})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := plain.Metadata[broker.SchemaVersionKey]; ok {
		t.Errorf("an unversioned payload's message has schema_version %q, want none", plain.Metadata.Get(broker.SchemaVersionKey))
	}
}
