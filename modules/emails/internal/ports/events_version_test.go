package ports

import (
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	dlt "github.com/mailroom/mailroom/modules/deadletters/contract"
	delivery "github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/platform/broker"
)

// An event of a schema version this build does not read is refused before it is
// applied (Events has no ApplyEvent here: reaching it would panic), so it stays on
// the topic for an upgraded instance instead of being read as an older version.
func TestAnEventOfANewerSchemaVersionIsRefusedBeforeItIsApplied(t *testing.T) {
	for _, typ := range []string{delivery.EventEmailAttempted, dlt.EventEmailDeadLettered, dlt.EventEmailReplayed, dlt.EventEmailDiscarded} {
		msg := message.NewMessage("e1/r0/a1/attempted", []byte(`{"email_id":"e1"}`))
		msg.Metadata.Set(delivery.EventTypeKey, typ)
		msg.Metadata.Set(broker.SchemaVersionKey, "2")
		err := Events{}.Handle(msg)
		if err == nil || !strings.Contains(err.Error(), "schema_version 2 is newer than this instance reads (up to 1)") {
			t.Errorf("%s of version 2: %v; want it refused, naming the versions", typ, err)
		}
	}
}
