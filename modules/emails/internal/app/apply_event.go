package app

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"

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
	case delivery.EventEmailAttempted:
		var e delivery.EmailAttempted
		if err := decode(&e); err != nil {
			return Change{}, false, err
		}
		return attemptedChange(e), true, nil
	case dlt.EventEmailDeadLettered:
		var e dlt.EmailDeadLettered
		if err := decode(&e); err != nil {
			return Change{}, false, err
		}
		detail := fmt.Sprintf("after %s: %s", plural(e.Attempts, "attempt"), e.Reason)
		// Every version wrote the replay that failed (0 for the original send), so
		// a parked letter is always ordered.
		rep := domain.Report{Try: domain.Try{Replay: e.Replay, Attempt: e.Attempts}, Ordered: true, DeadLettered: true}
		return Change{EmailID: e.EmailID, At: e.At, Entries: []Entry{{Type: domain.EventDeadLettered, Detail: detail}},
			LastError: &e.Reason, Report: rep}, true, nil
	case dlt.EventEmailReplayed:
		var e dlt.EmailReplayed
		if err := decode(&e); err != nil {
			return Change{}, false, err
		}
		detail := fmt.Sprintf("replay %d", e.Replay)
		if len(e.Recipients) > 0 {
			detail += " to " + strings.Join(e.Recipients, ", ")
		}
		rep := domain.Report{Try: domain.Try{Replay: e.Replay}, Ordered: e.Replay >= 1, Replay: true, Replayed: e.Recipients}
		return Change{EmailID: e.EmailID, At: e.At, Entries: []Entry{{Type: domain.EventReplayed, Detail: detail}},
			Report: rep}, true, nil
	case dlt.EventEmailDiscarded:
		var e dlt.EmailDiscarded
		if err := decode(&e); err != nil {
			return Change{}, false, err
		}
		return Change{EmailID: e.EmailID, At: e.At, Entries: []Entry{{Type: domain.EventDiscarded, Detail: "discarded by an operator"}}}, true, nil
	}
	return Change{}, false, nil
}

// attemptedChange is what one try reported: each recipient's new state and a
// timeline entry for it, then the email's: its next try, or that it was sent. The
// try's replay and attempt order it among the others (domain.Apply); an event
// without an attempt (none of Mailroom's versions wrote one so) is applied as it
// comes.
func attemptedChange(e delivery.EmailAttempted) Change {
	ch := Change{EmailID: e.EmailID, At: e.At, Message: e.Message,
		Report: domain.Report{Try: domain.Try{Replay: e.Replay, Attempt: e.Attempt}, Ordered: e.Attempt >= 1}}
	if e.Error != "" {
		ch.Entries = append(ch.Entries, Entry{Type: domain.EventAttemptFailed, Detail: fmt.Sprintf("attempt %d: %s", e.Attempt, e.Error)})
	}
	lastError := ""
	for _, r := range e.Recipients {
		ch.Report.Recipients = append(ch.Report.Recipients, domain.Recipient{Address: r.Address, Type: r.Type, Status: r.Status,
			Attempts: r.Attempts, Detail: r.Detail, UpdatedAt: e.At})
		ch.Entries = append(ch.Entries, Entry{Type: recipientEntry[r.Status], Detail: r.Detail, Recipient: r.Address})
		if r.Status != delivery.RecipientDelivered && lastError == "" {
			lastError = r.Address + ": " + r.Detail
		}
	}
	ch.LastError = &lastError
	switch e.Status {
	case delivery.StatusRetrying:
		if e.NextAttemptAt != nil {
			next := *e.NextAttemptAt
			ch.NextAttemptAt = &next
			ch.Entries = append(ch.Entries, Entry{Type: domain.EventRetryScheduled,
				Detail: fmt.Sprintf("attempt %d at %s", e.Attempt+1, next.UTC().Format("2006-01-02T15:04:05.000Z07:00"))})
		}
	case delivery.StatusSent:
		ch.Entries = append(ch.Entries, Entry{Type: domain.EventSent, Detail: sentDetail(e.Recipients)})
	}
	return ch
}

// recipientEntry is the timeline entry of each recipient status a try reports.
var recipientEntry = map[string]string{
	delivery.RecipientDelivered:  domain.EventDelivered,
	delivery.RecipientDeferred:   domain.EventDeferred,
	delivery.RecipientBounced:    domain.EventBounced,
	delivery.RecipientSuppressed: domain.EventSuppressed,
	delivery.RecipientFailed:     domain.EventFailed,
}

// sentDetail is the detail of the "sent" entry: the last acceptance reply of the
// try that made the email final.
func sentDetail(rs []delivery.RecipientState) string {
	for i := len(rs) - 1; i >= 0; i-- {
		if rs[i].Status == delivery.RecipientDelivered {
			return rs[i].Detail
		}
	}
	return "every recipient is final"
}

// plural writes n and noun, adding an "s" unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
