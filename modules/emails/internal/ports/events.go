package ports

import (
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"

	dlt "github.com/mailroom/mailroom/modules/deadletters/contract"
	delivery "github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/modules/emails/internal/app"
)

// Events consumes topics.events and applies each event to its email.
type Events struct {
	Apply app.ApplyEvent
}

// Handle is the Watermill handler.
func (h Events) Handle(msg *message.Message) error {
	typ := msg.Metadata.Get(delivery.EventTypeKey)
	if typ == "" {
		typ = msg.Metadata.Get(dlt.EventTypeKey)
	}
	if err := h.Apply.Handle(msg.Context(), typ, msg.UUID, msg.Payload); err != nil {
		return fmt.Errorf("apply event %s (%s): %w", typ, msg.UUID, err)
	}
	return nil
}
