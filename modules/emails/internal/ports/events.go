package ports

import (
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	dlt "github.com/mailroom/mailroom/modules/deadletters/contract"
	delivery "github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/modules/emails/internal/app"
	"github.com/mailroom/mailroom/platform/broker"
)

// Events consumes topics.events and applies each event to its email.
type Events struct {
	Apply app.ApplyEvent
}

// readsVersion is the newest schema version of each event type this build reads,
// from the contract that defines it.
var readsVersion = map[string]int{
	delivery.EventEmailAttempted: delivery.SchemaVersion,
	dlt.EventEmailDeadLettered:   dlt.SchemaVersion,
	dlt.EventEmailReplayed:       dlt.SchemaVersion,
	dlt.EventEmailDiscarded:      dlt.SchemaVersion,
}

// Handle is the Watermill handler. An event of a schema version this build does
// not read is not applied and not acknowledged: it stays on the topic, retried,
// until an upgraded instance reads it (an older reading would be a wrong status).
func (h Events) Handle(msg *message.Message) error {
	// delivery's and deadletters' contracts name the same key (each is stdlib-only).
	typ := msg.Metadata.Get(delivery.EventTypeKey)
	if reads, ok := readsVersion[typ]; ok {
		if err := broker.CheckSchemaVersion(msg, reads); err != nil {
			return fmt.Errorf("event %s (%s): %w", typ, msg.UUID, err)
		}
	}
	correlationID := middleware.MessageCorrelationID(msg)
	if err := h.Apply.Handle(msg.Context(), typ, msg.UUID, correlationID, msg.Payload); err != nil {
		return fmt.Errorf("apply event %s (%s): %w", typ, msg.UUID, err)
	}
	return nil
}
