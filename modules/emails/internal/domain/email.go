// Package domain holds what an email is to the emails module: its fields, its
// statuses and the rules a new one must pass.
package domain

import "time"

// Status is where an email stands in its life.
type Status string

// The statuses of the API contract.
const (
	// StatusScheduled is an email accepted with a future send_at, waiting in the
	// outbox until then.
	StatusScheduled Status = "scheduled"
	// StatusQueued is an email whose SendEmail is due or published: accepted for
	// now, published after a schedule, or replayed.
	StatusQueued Status = "queued"
	// StatusRetrying is an email whose last try failed transiently; the next is due
	// at NextAttemptAt.
	StatusRetrying Status = "retrying"
	// StatusSent is final: the server accepted the email and no event moves it.
	StatusSent Status = "sent"
	// StatusDead is an email in the dead letters; only a replay brings it back.
	StatusDead Status = "dead"
)

// Statuses lists every status, for validation and metrics.
var Statuses = []Status{StatusScheduled, StatusQueued, StatusRetrying, StatusSent, StatusDead}

// Timeline event types of the API contract (plus discarded, for dead letters an
// operator threw away).
const (
	// EventAccepted is never stored: it is derived from the email's created_at and
	// always heads the timeline.
	EventAccepted = "accepted"
	// EventPublished is recorded by the outbox relay when the SendEmail leaves it;
	// it moves a scheduled email to queued.
	EventPublished = "published"
	// EventAttemptFailed is one failed try, its detail "attempt n: error"; it
	// changes no status.
	EventAttemptFailed = "attempt_failed"
	// EventRetryScheduled moves the email to retrying, unless it is sent or dead.
	EventRetryScheduled = "retry_scheduled"
	// EventSent moves the email to sent for good; its detail is the server's reply.
	EventSent = "sent"
	// EventDeadLettered moves the email to dead; its detail counts the attempts.
	EventDeadLettered = "dead_lettered"
	// EventReplayed moves a dead email back to queued and resets its attempts.
	EventReplayed = "replayed"
	// EventDiscarded records an operator's discard; the email stays dead.
	EventDiscarded = "discarded"
)

// Email is one accepted email.
type Email struct {
	// ID is a UUIDv7 made on acceptance; being time-ordered, it sorts and pages
	// the list newest first.
	ID string
	// Status is where the email stands now, moved only as Transition allows.
	Status Status
	// From is the canonical sender; smtp.from when the client named none.
	From string
	// To is the canonical To recipients, in the client's order; at least one.
	To []string
	// Cc is the canonical Cc recipients; empty for none.
	Cc []string
	// Bcc is the canonical blind recipients; the API never shows them.
	Bcc []string
	// ReplyTo is the canonical Reply-To address, "" for none.
	ReplyTo string
	// Subject is the subject line as the client gave it (one line, UTF-8).
	Subject string
	// Text is the plain-text body; "" when only HTML was given.
	Text string
	// HTML is the HTML body; "" when only Text was given.
	HTML string
	// Tags are the client's labels, deduplicated (at most MaxTags); the list can
	// be filtered by one.
	Tags []string
	// Metadata is the client's key/value pairs (at most MaxMetadataKeys), kept and
	// shown back, never interpreted.
	Metadata map[string]string
	// Attempts is the highest try delivery reported for the current replay; 0
	// before the first try and after a replay.
	Attempts int
	// LastError is the last failure's text; "" once sent, after a replay, or
	// before any failure.
	LastError string
	// NextAttemptAt is when the scheduled retry is due; nil unless retrying.
	NextAttemptAt *time.Time
	// CorrelationID is the X-Request-ID of the request that accepted the email,
	// for tracing it through logs and events.
	CorrelationID string
	// CreatedAt is when the email was accepted (stored in milliseconds, UTC); it
	// is also the timeline's "accepted" entry.
	CreatedAt time.Time
	// UpdatedAt is the time of the last applied event (that event's own time,
	// not when it was applied), or CreatedAt.
	UpdatedAt time.Time
	// SentAt is when the server accepted the email; nil until sent.
	SentAt *time.Time
	// SendAt is the requested send time, UTC; nil when the email was to go at once.
	SendAt *time.Time
	// Events is the timeline, oldest first, led by "accepted"; only Get fills it,
	// List leaves it nil.
	Events []Event

	// APIKeyID is the key that sent the email ("" before keys existed): a send-scope
	// key reads only the emails it sent.
	APIKeyID string
}

// Event is one entry of an email's timeline.
type Event struct {
	// Type is one of the Event* constants.
	Type string
	// At is when it happened (the producer's time, not when it was recorded).
	At time.Time
	// Detail is a human-readable note, e.g. "attempt 2: smtp: ..." or the
	// server's reply; it may be "".
	Detail string
}

// Transition returns the status after an event of the given type, or ok=false when
// the event does not change the status (or may not: a sent email stays sent, and only
// a replay brings a dead one back).
func Transition(from Status, event string) (to Status, ok bool) {
	if from == StatusSent {
		return from, false
	}
	switch event {
	case EventPublished:
		if from == StatusScheduled {
			return StatusQueued, true
		}
	case EventRetryScheduled:
		if from != StatusDead {
			return StatusRetrying, true
		}
	case EventSent:
		return StatusSent, true
	case EventDeadLettered:
		return StatusDead, true
	case EventReplayed:
		if from == StatusDead {
			return StatusQueued, true
		}
	}
	return from, false
}
