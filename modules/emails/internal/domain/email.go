// Package domain holds what an email is to the emails module: its fields, its
// statuses and the rules a new one must pass.
package domain

import (
	"time"

	delivery "github.com/mailroom/mailroom/modules/delivery/contract"
)

// Status is where an email stands in its life.
type Status string

// The statuses of the API contract. Once an email is published, its status follows
// from its recipients' (StatusOf).
const (
	// StatusScheduled is an email accepted with a future send_at, waiting in the
	// outbox until then.
	StatusScheduled Status = "scheduled"
	// StatusQueued is an email whose SendEmail is due or published, with no
	// recipient deferred: accepted for now, published after a schedule, or replayed.
	StatusQueued Status = "queued"
	// StatusRetrying is an email with a deferred recipient; the next try is due at
	// NextAttemptAt.
	StatusRetrying Status = "retrying"
	// StatusSent is an email whose recipients are all final with at least one
	// delivered. Some may have bounced, be suppressed or have failed: the email's
	// recipients say, and a failed one also puts it in the dead letters.
	StatusSent Status = "sent"
	// StatusDead is an email whose recipients are all final with none delivered; it
	// is in the dead letters, and only a replay brings it back.
	StatusDead Status = "dead"
	// StatusCancelled is a scheduled email a client cancelled before its send_at:
	// its SendEmail was taken out of the outbox, so it is never sent. Final.
	StatusCancelled Status = "cancelled"
)

// Statuses lists every status, for validation and metrics.
var Statuses = []Status{StatusScheduled, StatusQueued, StatusRetrying, StatusSent, StatusDead, StatusCancelled}

// Recipient statuses: delivery decides them, and its contract names them.
const (
	RecipientPending    = delivery.RecipientPending
	RecipientDelivered  = delivery.RecipientDelivered
	RecipientDeferred   = delivery.RecipientDeferred
	RecipientBounced    = delivery.RecipientBounced
	RecipientSuppressed = delivery.RecipientSuppressed
	RecipientFailed     = delivery.RecipientFailed
)

// Timeline event types of the API contract, plus discarded (a dead letter an
// operator threw away) and one per recipient outcome.
const (
	// EventAccepted is never stored: it is derived from the email's created_at and
	// always heads the timeline.
	EventAccepted = "accepted"
	// EventPublished is recorded by the outbox relay when the SendEmail leaves it;
	// it moves a scheduled email to queued.
	EventPublished = "published"
	// EventAttemptFailed is a try that failed as a whole (the email cannot be
	// rendered), its detail "attempt n: error".
	EventAttemptFailed = "attempt_failed"
	// EventDelivered, EventDeferred, EventBounced, EventSuppressed and EventFailed
	// record one recipient's outcome of a try; the detail starts with the address.
	EventDelivered  = "delivered"
	EventDeferred   = "deferred"
	EventBounced    = "bounced"
	EventSuppressed = "suppressed"
	EventFailed     = "failed"
	// EventRetryScheduled says when the deferred recipients are tried next.
	EventRetryScheduled = "retry_scheduled"
	// EventSent says that every recipient is final and at least one was delivered.
	EventSent = "sent"
	// EventDeadLettered records that the email's letter was parked in the dead
	// letters; its detail is why.
	EventDeadLettered = "dead_lettered"
	// EventReplayed records an operator's replay of the recipients not delivered.
	EventReplayed = "replayed"
	// EventDiscarded records an operator's discard of the email's dead letter.
	EventDiscarded = "discarded"
	// EventScheduled records that the email waits for its send_at: at acceptance
	// with a future send_at, and at each reschedule; the detail is the time.
	EventScheduled = "scheduled"
	// EventCancelled records that a scheduled email was cancelled: final.
	EventCancelled = "cancelled"
)

// Outcome sums up an email's recipients, so that an email sent to some of them only
// is never mistaken for a complete success: its status is sent, its outcome
// partial.
type Outcome string

// The outcomes of an email, by its recipients.
const (
	// OutcomePending is an email with a recipient not final yet.
	OutcomePending Outcome = "pending"
	// OutcomeComplete is an email delivered to every recipient.
	OutcomeComplete Outcome = "complete"
	// OutcomePartial is an email delivered to some recipients and not to others
	// (bounced, suppressed or failed); its status is sent.
	OutcomePartial Outcome = "partial"
	// OutcomeNone is an email delivered to no recipient; its status is dead.
	OutcomeNone Outcome = "none"
)

// OutcomeOf sums up rs; "" when there are none on record (an email accepted before
// recipients had outcomes of their own).
func OutcomeOf(rs []Recipient) Outcome {
	if len(rs) == 0 {
		return ""
	}
	delivered := 0
	for _, r := range rs {
		if !r.Final() {
			return OutcomePending
		}
		if r.Status == RecipientDelivered {
			delivered++
		}
	}
	switch delivered {
	case len(rs):
		return OutcomeComplete
	case 0:
		return OutcomeNone
	default:
		return OutcomePartial
	}
}

// Recipient is one envelope recipient of an email and where it stands.
type Recipient struct {
	// Address is the bare address, its domain lower-cased.
	Address string
	// Type is to, cc or bcc: the first list naming the address.
	Type string
	// Status is one of the Recipient* statuses.
	Status string
	// Attempts is how many tries of the current replay carried the recipient.
	Attempts int
	// Detail is the server's last reply about the recipient, or why there was none.
	Detail string
	// UpdatedAt is when the recipient's state last changed (the try's time).
	UpdatedAt time.Time
	// Try is the try whose report set Status (see Apply): a report of an earlier
	// try leaves the recipient as it is. A replay's fresh start is its replay
	// with Attempt 0; acceptance is the zero Try.
	Try Try
}

// Final reports whether the recipient's fate in this replay is decided.
func (r Recipient) Final() bool {
	return r.Status != RecipientPending && r.Status != RecipientDeferred
}

// StatusOf is the status of an email with these recipients, now that current is its
// status and inDeadLetters says whether its letter is parked: retrying while a
// recipient is deferred; sent once all are final and one was delivered; dead once
// all are final, none was delivered and the letter is parked (until then it keeps
// current: "dead" promises a letter to replay); queued (or still scheduled) while
// the rest wait for their first try. An email with no recipients on record
// (accepted before recipients had outcomes of their own) keeps current, or is dead
// once in the dead letters.
func StatusOf(current Status, rs []Recipient, inDeadLetters bool) Status {
	var pending, deferred, delivered int
	for _, r := range rs {
		switch r.Status {
		case RecipientPending:
			pending++
		case RecipientDeferred:
			deferred++
		case RecipientDelivered:
			delivered++
		}
	}
	switch {
	case len(rs) == 0 && inDeadLetters:
		return StatusDead
	case len(rs) == 0:
		return current
	case deferred > 0:
		return StatusRetrying
	case pending > 0 && current == StatusScheduled:
		return StatusScheduled
	case pending > 0:
		return StatusQueued
	case delivered > 0:
		return StatusSent
	case inDeadLetters:
		return StatusDead
	default:
		return current
	}
}

// Email is one accepted email.
type Email struct {
	// ID is a UUIDv7 made on acceptance; being time-ordered, it sorts and pages
	// the list newest first.
	ID string
	// Status is where the email stands now (see StatusOf).
	Status Status
	// Outcome sums up its recipients (see OutcomeOf); "" for an email accepted
	// before recipients had outcomes of their own.
	Outcome Outcome
	// From is the canonical sender; smtp.from when the client named none.
	From string
	// To is the canonical To recipients, in the client's order; at least one.
	To []string
	// Cc is the canonical Cc recipients; empty for none.
	Cc []string
	// Bcc is the canonical blind recipients: never in a header of the message;
	// the API shows them only among an email's recipients (GET /api/emails/{id}).
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
	// Attachments are the email's files: on acceptance with their content, which
	// goes into the SendEmail only; read back (Get), with their metadata alone
	// (Content nil). Empty for none.
	Attachments []Attachment
	// Headers are the client's custom header fields; they travel in the SendEmail
	// and are not stored. Empty for none.
	Headers map[string]string
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
	// Recipients are the email's envelope recipients in to, cc, bcc order, each
	// with its own outcome; only Get fills them, List leaves them nil.
	Recipients []Recipient
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
