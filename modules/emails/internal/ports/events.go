package ports

import (
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	delivery "github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/modules/emails/internal/app"
)

// Events consumes topics.events and applies each event to its email.
type Events struct {
	Apply app.ApplyEvent
}

// Handle is the Watermill handler.
func (h Events) Handle(msg *message.Message) error {
	// delivery's and deadletters' contracts name the same key (each is stdlib-only).
	typ := msg.Metadata.Get(delivery.EventTypeKey)
	correlationID := middleware.MessageCorrelationID(msg)
	if err := h.Apply.Handle(msg.Context(), typ, msg.UUID, correlationID, msg.Payload); err != nil {
		return fmt.Errorf("apply event %s (%s): %w", typ, msg.UUID, err)
	}
	return nil
}
