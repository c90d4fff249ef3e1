package ports

import (
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	delivery "github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/platform/broker"
)

// A dead letter of a schema version this build does not read is refused before it
// is parked (Letters has no Park here: reaching it would panic): parked as a misread
// older one, its replay could send the wrong thing. It stays on the topic.
func TestADeadLetterOfANewerSchemaVersionIsRefusedBeforeItIsParked(t *testing.T) {
	msg := message.NewMessage("e1/r0/a3/dead-letter", []byte(`{"send":{"email_id":"e1"}}`))
	msg.Metadata.Set(delivery.EventTypeKey, delivery.EventDeadLetter)
	msg.Metadata.Set(broker.SchemaVersionKey, "2")
	err := Letters{}.Handle(msg)
	if err == nil || !strings.Contains(err.Error(), "schema_version 2 is newer than this instance reads (up to 1)") {
		t.Errorf("a dead letter of version 2: %v; want it refused, naming the versions", err)
	}
}
