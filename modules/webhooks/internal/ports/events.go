package ports

import (
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/mailroom/mailroom/modules/emails/contract"
	"github.com/mailroom/mailroom/modules/webhooks/internal/app"
)

// Lifecycle consumes topics.lifecycle: one contract.Event per message.
type Lifecycle struct{ FanOut app.FanOut }

// Handle is the Watermill handler. It returns once the event's deliveries are
// committed, so the message is acknowledged only then; an error redelivers it.
func (h Lifecycle) Handle(msg *message.Message) error {
	return h.FanOut.Handle(msg.Context(), msg.Metadata.Get(contract.EventTypeKey), msg.Payload)
}
