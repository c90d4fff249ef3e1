// Package domain holds what an email is to the emails module: its fields, its
// statuses and the rules a new one must pass.
package domain

import "time"

// Status is where an email stands in its life.
type Status string

// The statuses of the API contract.
const (
	StatusScheduled Status = "scheduled"
	StatusQueued    Status = "queued"
	StatusRetrying  Status = "retrying"
	StatusSent      Status = "sent"
	StatusDead      Status = "dead"
)

// Statuses lists every status, for validation and metrics.
var Statuses = []Status{StatusScheduled, StatusQueued, StatusRetrying, StatusSent, StatusDead}

// Timeline event types of the API contract (plus discarded, for dead letters an
// operator threw away).
const (
	EventAccepted       = "accepted"
	EventPublished      = "published"
	EventAttemptFailed  = "attempt_failed"
	EventRetryScheduled = "retry_scheduled"
	EventSent           = "sent"
	EventDeadLettered   = "dead_lettered"
	EventReplayed       = "replayed"
	EventDiscarded      = "discarded"
)

// Email is one accepted email.
type Email struct {
	ID            string
	Status        Status
	From          string
	To            []string
	Cc            []string
	Bcc           []string
	ReplyTo       string
	Subject       string
	Text          string
	HTML          string
	Tags          []string
	Metadata      map[string]string
	Attempts      int
	LastError     string
	NextAttemptAt *time.Time
	CorrelationID string
	CreatedAt     time.Time
	UpdatedAt     time.Time
	SentAt        *time.Time
	SendAt        *time.Time
	Events        []Event

	// APIKeyID is the key that sent the email ("" before keys existed): a send-scope
	// key reads only the emails it sent.
	APIKeyID string
}

// Event is one entry of an email's timeline.
type Event struct {
	Type   string
	At     time.Time
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
