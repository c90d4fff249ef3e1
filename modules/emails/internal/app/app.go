// Package app holds the emails module's use cases: accept an email, read it, search
// the list, cancel or reschedule a scheduled one, and apply the events other
// modules publish about it.
package app

import (
	"context"
	"time"

	delivery "github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/modules/emails/internal/domain"
)

// Accepted is the answer to an accepted email.
type Accepted struct {
	// ID is the email's id (a UUIDv7), the one in Location.
	ID string
	// Status is queued, or scheduled when send_at lies ahead.
	Status domain.Status
	// Replayed is true when an Idempotency-Key matched an earlier request.
	Replayed bool
}

// NewEmail is an email ready to be stored with its outbox message.
type NewEmail struct {
	// Email is the validated email with its id, status and times set.
	Email domain.Email
	// IdempotencyKey is the request's Idempotency-Key, prefixed with the API key's
	// id so that two clients never share one; "" when the request had none.
	IdempotencyKey string
	// RequestHash fingerprints the request body by its meaning, so a repeat with the
	// same key and another body is told apart (409).
	RequestHash string
	// Quota is the sending key's daily quota, checked and counted (against
	// Email.APIKeyID and the UTC day of Email.CreatedAt) in the transaction that
	// stores the email; a replayed Idempotency-Key counts nothing. The zero Quota
	// (or no APIKeyID) checks nothing and counts nothing.
	Quota domain.Quota
}

// ListFilter selects emails for the list endpoint. Every filter set must hold; an
// empty one keeps all.
type ListFilter struct {
	// Status keeps only emails in that status.
	Status domain.Status
	// Tag keeps only emails carrying that tag.
	Tag string
	// Recipient keeps only emails with that address among their to, cc and bcc
	// recipients, compared as they are stored: bare, the domain lower-cased (the
	// local part as written). Emails accepted before recipients were stored one by
	// one are not found by it.
	Recipient string
	// Subject keeps only emails whose subject contains it, ASCII letters matched
	// in either case (at most MaxSubjectFilter characters).
	Subject string
	// CreatedAfter and CreatedBefore keep only emails created at or after the one
	// and strictly before the other (a half-open range, so that consecutive ranges
	// neither overlap nor leave a gap); zero leaves that side open.
	CreatedAfter, CreatedBefore time.Time
	// Limit is the page size, 1 to MaxPageSize; 0 means the default.
	Limit int
	// Cursor is the id of the last email of the previous page.
	Cursor string
	// IncludeTotal asks for the number of all the emails that match, whatever the
	// cursor.
	IncludeTotal bool
	// APIKeyID, when set, keeps only the emails that key sent.
	APIKeyID string
}

// Page is one page of the list.
type Page struct {
	// Items are the page's emails, newest first.
	Items []domain.Email
	// NextCursor is the cursor of the next page, "" on the last.
	NextCursor string
	// Total is the number of emails matching the filter, ignoring the cursor; nil
	// unless asked for (ListFilter.IncludeTotal).
	Total *int
}

// Repository stores emails. Declared here, where it is used; the SQLite adapter
// implements it.
type Repository interface {
	// Accept stores the email and its outbox message in one transaction and returns
	// once it is committed (the timeline's "accepted" is the email's created_at). An
	// email over e.Quota is not stored: the error is domain.Quota.Admit's.
	Accept(ctx context.Context, e NewEmail) (Accepted, error)
	// Get returns the email with its timeline, or an apperr not_found when this
	// database has no such id; it does not check who may see it.
	Get(ctx context.Context, id string) (domain.Email, error)
	// List returns up to f.Limit emails matching f, newest first and older than
	// f.Cursor when set, without their timelines.
	List(ctx context.Context, f ListFilter) ([]domain.Email, error)
	// Count returns how many emails match f, ignoring its cursor and limit.
	Count(ctx context.Context, f ListFilter) (int, error)
	// Apply records an event on an email's timeline and moves its status; sourceID
	// makes it idempotent. It says which of the three things it did.
	Apply(ctx context.Context, ch Change) (ApplyResult, error)
	// Events returns up to f.Limit lifecycle events matching f, in the order they
	// were recorded, after f.After.
	Events(ctx context.Context, f EventFilter) ([]FeedItem, error)
	// RawMessage returns the email's rendered message and the API key that sent
	// the email, or an apperr not_found when this database has no such email or
	// no try rendered it yet; it does not check who may see it.
	RawMessage(ctx context.Context, id string) (raw []byte, apiKeyID string, err error)
	// ChangeSchedule applies ch, a cancel (ch.Cancelled) or a reschedule
	// (ch.SendAt), to a scheduled email, in one transaction: it checks that the
	// email is scheduled, withdraws or moves its SendEmail in the outbox, and
	// records ch, provided the SendEmail falls due later than SendingMargin from
	// now (checked inside the transaction). It returns the status it found and
	// whether it changed the email; it writes nothing when it did not. An unknown
	// id is an apperr not_found.
	ChangeSchedule(ctx context.Context, ch Change) (domain.Status, bool, error)
}

// SendingMargin is how long before its send_at a scheduled email can still be
// cancelled or moved. The outbox relay reads a row once it is due and deletes it
// only after publishing it, so a row it has read cannot be called back. A row due
// later than the end of the transaction that takes it back was never read: the
// check runs inside that transaction, and a second is far longer than one takes,
// even waiting behind the database's group commit.
const SendingMargin = time.Second

// ApplyResult is what Repository.Apply did with a change. The handler needs to know
// an unknown email from an applied change: with several instances on one Kafka
// cluster each one reads every event, and most are about other instances' emails.
type ApplyResult int

const (
	// Applied means the change is on the email's timeline now.
	Applied ApplyResult = iota
	// AppliedBefore means the change's SourceID was applied already (a redelivery):
	// nothing changed.
	AppliedBefore
	// UnknownEmail means no email with that id is in this database: another instance
	// accepted it (each instance has its own database), or the event is bogus.
	// Nothing changed.
	UnknownEmail
)

// Change is one event about an email, as applied to its record.
type Change struct {
	// EmailID is the email the event is about.
	EmailID string
	// SourceID is the event message's id: a redelivered event is applied once.
	SourceID string
	// At is when it happened; zero means when it is applied.
	At time.Time
	// Entries are the timeline entries the event adds, in order.
	Entries []Entry
	// Report is what the event says of the email's delivery (a try's outcome, a
	// parked letter, a replay), applied by the order rule (domain.Apply): never an
	// earlier try's state in place of a later one. The zero Report changes nothing.
	Report domain.Report
	// Published moves a scheduled email to queued: its SendEmail left the outbox.
	Published bool
	// Cancelled moves a scheduled email to cancelled, which is final: no later
	// change (its SendEmail's "published", should it have left after all) moves
	// it again.
	Cancelled bool
	// SendAt, when set, is a scheduled email's new send_at (a reschedule).
	SendAt *time.Time
	// LastError, when set, replaces the email's last error ("" clears it), provided
	// Report speaks for the email as a whole (domain.Applied.Current).
	LastError *string
	// NextAttemptAt, when set, is when a retrying email is tried next, provided
	// Report speaks for the email as a whole.
	NextAttemptAt *time.Time
	// Message, when set, is the message a try rendered and sent: it replaces the
	// email's stored one unless that one is from a later try (At). Nil keeps what
	// is stored: a try that rendered nothing, or an event from a version before
	// events carried it.
	Message *delivery.RenderedMessage
}

// Entry is one timeline entry a change adds. An entry of a type a client hears of
// (domain.LifecycleType) is also a lifecycle event: it gets an event id and is
// published on topics.lifecycle with the change.
type Entry struct {
	// Type is the timeline event type (domain.Event*).
	Type string
	// Detail is the entry's text, e.g. "451 4.7.1 try later".
	Detail string
	// Recipient is the address a per-recipient entry is about; "" for the others.
	Recipient string
}
