package domain

import (
	"time"

	"github.com/mailroom/mailroom/modules/emails/contract"
)

// lifecycleTypes maps each timeline entry type a client hears of to its lifecycle
// event type. The others (published, attempt_failed, retry_scheduled, failed,
// discarded) are Mailroom's bookkeeping: a failed recipient, for one, is heard of
// as the email's email.dead_lettered.
var lifecycleTypes = map[string]string{
	EventAccepted:     contract.EventAccepted,
	EventScheduled:    contract.EventScheduled,
	EventCancelled:    contract.EventCancelled,
	EventDelivered:    contract.EventDelivered,
	EventDeferred:     contract.EventDeferred,
	EventBounced:      contract.EventBounced,
	EventSuppressed:   contract.EventSuppressed,
	EventSent:         contract.EventSent,
	EventDeadLettered: contract.EventDeadLettered,
	EventReplayed:     contract.EventReplayed,
}

// LifecycleType is the lifecycle event type of a timeline entry type, and whether
// entries of that type are lifecycle events at all.
func LifecycleType(entryType string) (string, bool) {
	t, ok := lifecycleTypes[entryType]
	return t, ok
}

// EntryType is the timeline entry type of a lifecycle event type, and whether it
// is one: the feed filters the timeline by it.
func EntryType(lifecycleType string) (string, bool) {
	for entry, t := range lifecycleTypes {
		if t == lifecycleType {
			return entry, true
		}
	}
	return "", false
}

// ScheduledDetail is the detail of a "scheduled" entry: the time the email will be
// sent, which its lifecycle event carries as data.send_at (ScheduledFor).
func ScheduledDetail(sendAt time.Time) string {
	return sendAt.UTC().Format(time.RFC3339Nano)
}

// ScheduledFor reads the time back from a "scheduled" entry's detail; nil when the
// detail is not one.
func ScheduledFor(detail string) *time.Time {
	t, err := time.Parse(time.RFC3339Nano, detail)
	if err != nil {
		return nil
	}
	return &t
}
