package ports

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	dlt "github.com/mailroom/mailroom/modules/deadletters/contract"
	"github.com/mailroom/mailroom/modules/deadletters/internal/app"
	delivery "github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/platform/broker"
)

// Letters consumes topics.dead_letter: delivery's typed dead letters, and messages
// the router's poison queue moved there.
type Letters struct{ Park app.Park }

// Handle is the Watermill handler; its errors are never permanent (a dead letter of
// a dead letter would go nowhere): a message it cannot store is redelivered.
func (h Letters) Handle(msg *message.Message) error {
	a := app.Arrival{UUID: msg.UUID, Payload: msg.Payload, Metadata: msg.Metadata,
		CorrelationID: middleware.MessageCorrelationID(msg)}
	if msg.Metadata.Get(delivery.EventTypeKey) == delivery.EventDeadLetter {
		// A newer dead letter than this build reads waits on the topic for an
		// upgraded instance: parked as a misread older one, its replay could be wrong.
		if err := broker.CheckSchemaVersion(msg, delivery.SchemaVersion); err != nil {
			return fmt.Errorf("dead letter %s: %w", msg.UUID, err)
		}
		var dl delivery.DeadLetter
		if err := json.Unmarshal(msg.Payload, &dl); err == nil && dl.Send.EmailID != "" {
			a.DeadLetter = &dl
		}
	}
	if a.DeadLetter == nil {
		a.Poison = poisonOf(msg)
	}
	if err := h.Park.Handle(msg.Context(), a); err != nil {
		return fmt.Errorf("dead letter %s: %w", msg.UUID, err)
	}
	return nil
}

// poisonOf reads what the failing handler (dlt.Meta*) and the poison queue
// middleware (reason_poisoned, topic_poisoned, handler_poisoned) said of a message.
func poisonOf(msg *message.Message) app.Poison {
	m := msg.Metadata
	p := app.Poison{
		EmailID: m.Get(dlt.MetaEmailID), Reason: m.Get(dlt.MetaErrorMessage), ErrorClass: m.Get(dlt.MetaErrorClass),
		Topic: m.Get(dlt.MetaOriginalTopic), ConsumerGroup: m.Get(dlt.MetaConsumerGroup), Handler: m.Get(middleware.PoisonedHandlerKey),
		Partition: parseInt(m.Get(dlt.MetaOriginalPartition)), Offset: parseInt(m.Get(dlt.MetaOriginalOffset)),
		FailedAt: parseTime(m.Get(dlt.MetaLastFailureAt)),
	}
	if p.Reason == "" {
		p.Reason = m.Get(middleware.ReasonForPoisonedKey)
	}
	if p.Topic == "" {
		p.Topic = m.Get(middleware.PoisonedTopicKey)
	}
	return p
}

func parseInt(s string) *int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return nil
	}
	return &n
}

func parseTime(s string) *time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil
	}
	return &t
}
