package app

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	dlt "github.com/mailroom/mailroom/modules/deadletters/contract"
	delivery "github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/platform/logging"
)

// Arrival is a message of topics.dead_letter, as the ports read it.
type Arrival struct {
	// UUID is the message's id.
	UUID string
	// DeadLetter is delivery's typed dead letter; nil for a poison message.
	DeadLetter *delivery.DeadLetter
	// Payload is the message body as received.
	Payload []byte
	// Metadata is the message's metadata, kept with the letter.
	Metadata map[string]string
	// CorrelationID is the message's correlation id.
	CorrelationID string
	// Poison is what the poison queue and the failing handler said of a poison
	// message; unused for a typed dead letter.
	Poison Poison
}

// Poison is what is known of a message the router's poison queue moved to the
// dead letters.
type Poison struct {
	// EmailID is the email the payload names, "" when it names none readably.
	EmailID string
	// Reason is the handler's error; ErrorClass is poison (or "" when unknown).
	Reason, ErrorClass string
	// Topic, ConsumerGroup and Handler say where it failed.
	Topic, ConsumerGroup, Handler string
	// Partition and Offset locate it on Kafka; nil on Go channels.
	Partition, Offset *int64
	// FailedAt is when it was refused; nil when the message did not say.
	FailedAt *time.Time
}

// Park stores each letter of topics.dead_letter that belongs to this instance.
type Park struct {
	Store Store
	// InstanceID is this instance's id, matched against each email's origin.
	InstanceID string
	Now        func() time.Time
	Log        *slog.Logger
}

// Handle parks a; parking twice is a no-op. A letter whose email names another
// instance as its origin is not stored: that instance accepted the email, holds it
// in its own database, and parks the letter itself (every instance reads the whole
// dead-letter topic). One with no origin (from a version before origins, or a poison
// message) is stored, as no instance could otherwise claim it.
func (h Park) Handle(ctx context.Context, a Arrival) error {
	l, origin := h.letterOf(a)
	log := h.Log.With(logging.KeyEmailID, l.EmailID, logging.KeyCorrelationID, a.CorrelationID, "message_uuid", a.UUID)
	if origin != "" && origin != h.InstanceID {
		log.DebugContext(ctx, "dead letter of an email another instance accepted; left to it", "origin_instance", origin)
		return nil
	}
	var event any
	if l.EmailID != "" {
		event = dlt.EmailDeadLettered{EmailID: l.EmailID, Reason: l.Reason, Attempts: l.Attempts, Replay: l.Replay, At: l.CreatedAt}
	}
	parked, err := h.Store.Park(ctx, l, event)
	if err != nil {
		return fmt.Errorf("park dead letter %s: %w", a.UUID, err)
	}
	if parked {
		log.InfoContext(ctx, "dead letter parked", "reason", l.Reason, "error_class", l.ErrorClass, "attempts", l.Attempts)
	}
	return nil
}

// letterOf builds the letter of a, and returns the instance its email names as
// its origin ("" when none).
func (h Park) letterOf(a Arrival) (Letter, string) {
	l := Letter{Status: StatusParked, Payload: a.Payload, Metadata: a.Metadata, CorrelationID: a.CorrelationID, CreatedAt: h.Now()}
	var origin string
	if dl := a.DeadLetter; dl != nil {
		first, last := dl.FirstAttemptAt, dl.LastAttemptAt
		l.Kind, l.EmailID, l.Replay, l.Reason, l.ErrorClass = KindDeadLetter, dl.Send.EmailID, dl.Send.Replay, dl.Reason, dl.ErrorClass
		l.Attempts, l.SMTPReply, l.Subject, l.Recipients = dl.Send.Attempt, dl.SMTPReply, dl.Send.Subject, dl.Undelivered
		l.OriginalTopic, l.OriginalPartition, l.OriginalOffset = dl.OriginalTopic, dl.OriginalPartition, dl.OriginalOffset
		l.ConsumerGroup, l.Handler, l.FirstFailedAt, l.LastFailedAt = dl.ConsumerGroup, "delivery.send_email", &first, &last
		origin = dl.Send.OriginInstance
	} else {
		p := a.Poison
		l.Kind, l.EmailID, l.Reason, l.ErrorClass = KindMessage, p.EmailID, p.Reason, p.ErrorClass
		l.OriginalTopic, l.OriginalPartition, l.OriginalOffset = p.Topic, p.Partition, p.Offset
		l.ConsumerGroup, l.Handler, l.LastFailedAt = p.ConsumerGroup, p.Handler, p.FailedAt
		// A SendEmail dead-lettered by an older version, or one whose handler
		// panicked: its payload says which email, replay and origin.
		var cmd delivery.SendEmail
		if json.Unmarshal(a.Payload, &cmd) == nil && cmd.EmailID != "" {
			l.EmailID, l.Replay, l.Subject, origin = cmd.EmailID, cmd.Replay, cmd.Subject, cmd.OriginInstance
		}
	}
	if l.ErrorClass == "" {
		l.ErrorClass = "unknown"
	}
	l.DedupeKey = fmt.Sprintf("%s/r%d", l.EmailID, l.Replay)
	if l.EmailID == "" {
		l.DedupeKey = "message/" + a.UUID
	}
	return l, origin
}
