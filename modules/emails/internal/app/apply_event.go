package app

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	dlt "github.com/mailroom/mailroom/modules/deadletters/contract"
	delivery "github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/modules/emails/internal/domain"
	"github.com/mailroom/mailroom/platform/logging"
)

// ApplyEvent keeps an email's status and timeline up to date from the events the
// delivery and deadletters modules publish.
type ApplyEvent struct {
	Repo Repository
	Log  *slog.Logger
}

// Handle applies one event; eventType is its metadata event_type, sourceID the
// message id, which makes a redelivered event a no-op, and correlationID that of the
// request that sent the email, for the logs. Unknown event types are
// ignored so that new producers do not break old consumers. An event about an email
// this database does not hold is acknowledged and dropped, logged at debug only: on
// Kafka every instance reads every event (a consumer group per instance), so most of
// them are about emails other instances accepted, and each of those instances
// applies its own.
func (h ApplyEvent) Handle(ctx context.Context, eventType, sourceID, correlationID string, payload []byte) error {
	ch, ok, err := changeOf(eventType, payload)
	if err != nil || !ok {
		return err
	}
	ch.SourceID = sourceID
	res, err := h.Repo.Apply(ctx, ch)
	if err != nil {
		return err
	}
	if res == UnknownEmail {
		h.Log.DebugContext(ctx, "event about an email this instance did not accept; ignored",
			logging.KeyEmailID, ch.EmailID, logging.KeyCorrelationID, correlationID, "event_type", eventType, "source_id", sourceID)
	}
	return nil
}

func changeOf(eventType string, payload []byte) (Change, bool, error) {
	decode := func(v any) error {
		if err := json.Unmarshal(payload, v); err != nil {
			return fmt.Errorf("decode %s: %w", eventType, err)
		}
		return nil
	}
	switch eventType {
	case delivery.EventEmailSent:
		var e delivery.EmailSent
		if err := decode(&e); err != nil {
			return Change{}, false, err
		}
		at, noError := e.At, ""
		// last_error is the current state: a sent email has none (its failed
		// attempts stay in the timeline).
		return Change{EmailID: e.EmailID, Type: domain.EventSent, At: e.At, Detail: e.Reply,
			Attempts: &e.Attempt, SentAt: &at, LastError: &noError}, true, nil
	case delivery.EventEmailAttemptFailed:
		var e delivery.EmailAttemptFailed
		if err := decode(&e); err != nil {
			return Change{}, false, err
		}
		detail := fmt.Sprintf("attempt %d: %s", e.Attempt, e.Error)
		return Change{EmailID: e.EmailID, Type: domain.EventAttemptFailed, At: e.At, Detail: detail,
			Attempts: &e.Attempt, LastError: &e.Error}, true, nil
	case delivery.EventEmailRetryScheduled:
		var e delivery.EmailRetryScheduled
		if err := decode(&e); err != nil {
			return Change{}, false, err
		}
		next := e.NextAttemptAt
		detail := fmt.Sprintf("attempt %d at %s", e.NextAttempt, next.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
		return Change{EmailID: e.EmailID, Type: domain.EventRetryScheduled, At: e.At, Detail: detail,
			NextAttemptAt: &next}, true, nil
	case dlt.EventEmailDeadLettered:
		var e dlt.EmailDeadLettered
		if err := decode(&e); err != nil {
			return Change{}, false, err
		}
		detail := fmt.Sprintf("after %d attempts: %s", e.Attempts, e.Reason)
		return Change{EmailID: e.EmailID, Type: domain.EventDeadLettered, At: e.At, Detail: detail,
			LastError: &e.Reason}, true, nil
	case dlt.EventEmailReplayed:
		var e dlt.EmailReplayed
		if err := decode(&e); err != nil {
			return Change{}, false, err
		}
		return Change{EmailID: e.EmailID, Type: domain.EventReplayed, At: e.At,
			Detail: fmt.Sprintf("replay %d", e.Replay), ResetAttempts: true}, true, nil
	case dlt.EventEmailDiscarded:
		var e dlt.EmailDiscarded
		if err := decode(&e); err != nil {
			return Change{}, false, err
		}
		return Change{EmailID: e.EmailID, Type: domain.EventDiscarded, At: e.At, Detail: "discarded by an operator"}, true, nil
	}
	return Change{}, false, nil
}
