// Package app holds the deadletters module's use cases: park a dead letter, list
// and read them, replay or discard one, and replay many by a filter. It takes plain
// values: the ports adapt Watermill messages and HTTP requests to it.
package app

import (
	"context"
	"time"

	delivery "github.com/mailroom/mailroom/modules/delivery/contract"
)

// Application is the table of contents of the deadletters module: every use case.
type Application struct {
	// Park stores the letters of topics.dead_letter (the handler).
	Park Park
	// Manage is what an operator does with letters, from the API or the CLI.
	Manage Manage
}

// Letter statuses.
const (
	// StatusParked is a letter waiting for an operator; only parked letters can be
	// replayed or discarded.
	StatusParked = "parked"
	// StatusReplayed is a letter sent again; if that fails too, a new letter (with
	// the next replay number) is parked.
	StatusReplayed = "replayed"
	// StatusDiscarded is a letter an operator threw away; its email stays as it is.
	StatusDiscarded = "discarded"
)

// Letter kinds: what the stored payload is.
const (
	// KindDeadLetter is delivery's typed dead letter (delivery.DeadLetter).
	KindDeadLetter = "dead_letter"
	// KindMessage is a message the router's poison queue moved to the topic: a
	// payload delivery could not read, or a SendEmail dead-lettered by a version
	// before typed dead letters.
	KindMessage = "message"
)

// Letter is one message that reached the dead-letter topic.
type Letter struct {
	// ID is the row id, increasing; pages and LetterKey use it. 0 before parking.
	ID int64
	// Kind is KindDeadLetter or KindMessage.
	Kind string
	// EmailID is the failed email's id; "" for a poison message that names none.
	EmailID string
	// Replay is the replay that failed: 0 for the original send.
	Replay int
	// Status is StatusParked, StatusReplayed or StatusDiscarded.
	Status string
	// Reason is why, as text, shown to operators and matched by
	// Filter.ReasonContains.
	Reason string
	// ErrorClass is permanent, transient_exhausted or poison, or "unknown" when the
	// failing handler set none.
	ErrorClass string
	// Attempts is how many tries that replay made; 0 when unknown or poison.
	Attempts int
	// SMTPReply is the mail server's last reply, code included; "" when it gave none.
	SMTPReply string
	// Subject is the email's subject, "" when the letter does not say.
	Subject string
	// Recipients are the email's recipients that were not delivered, with their
	// last state: a replay sends to them. Empty for a poison message.
	Recipients []delivery.RecipientState
	// OriginalTopic is the topic the failed message was consumed from.
	OriginalTopic string
	// OriginalPartition is the Kafka partition the message came from; nil on the
	// Go-channel broker.
	OriginalPartition *int64
	// OriginalOffset is the message's offset in that partition; nil on Go channels.
	OriginalOffset *int64
	// ConsumerGroup is the consumer group of the failing handler.
	ConsumerGroup string
	// Handler is the Watermill handler that failed, e.g. "delivery.send_email".
	Handler string
	// FirstFailedAt is when that replay's first try began; nil when the message
	// did not say (a poison message).
	FirstFailedAt *time.Time
	// LastFailedAt is when its last try ended (a poison message: when it was
	// refused); nil when the message did not say.
	LastFailedAt *time.Time
	// CreatedAt is when this instance parked the letter (the API's dead_lettered_at).
	CreatedAt time.Time
	// ResolvedAt is when the letter was replayed or discarded; nil while parked.
	ResolvedAt *time.Time
	// Payload is the message body as received: a delivery.DeadLetter, or for
	// KindMessage whatever the poisoned message held.
	Payload []byte
	// Metadata is all of the message's metadata, the correlation id included.
	Metadata map[string]string
	// CorrelationID is the X-Request-Id of the request that sent the email, for
	// the events about the letter.
	CorrelationID string
	// DedupeKey is "{email_id}/r{replay}", or "message/{uuid}" without an email id;
	// it makes parking the same failure twice a no-op.
	DedupeKey string
}

// Filter selects letters.
type Filter struct {
	// Status is parked by default; "all" means any.
	Status string
	// ReasonContains keeps letters whose Reason contains it, ignoring case; "" keeps all.
	ReasonContains string
	// Since (inclusive) and Until (exclusive) bound CreatedAt; nil leaves that side open.
	Since, Until *time.Time
	// Limit is the most letters to return: 1 to MaxPageSize, 0 meaning 50 in Manage.List.
	Limit int
	// Cursor is the id of the last letter of the previous page.
	Cursor int64
	// IncludeTotal asks Manage.List for the number of all the letters that match,
	// whatever the cursor: the preview of a replay by filter.
	IncludeTotal bool
}

// Resolution is an operator's decision on a parked letter: replayed (with the
// SendEmail to queue) or discarded, and the event that tells the email's owner.
type Resolution struct {
	// Letter is the letter resolved.
	Letter Letter
	// Status is StatusReplayed or StatusDiscarded.
	Status string
	// At is when the operator decided.
	At time.Time
	// Send is the SendEmail a replay queues; nil for a discard.
	Send *delivery.SendEmail
	// EventType and Event are the event published about the email; EventType is ""
	// for a letter with no email (a poison message).
	EventType string
	Event     any
}

// Store keeps letters and writes the messages a resolution causes to the outbox in
// the same transaction. Declared here, where it is used.
type Store interface {
	// Park stores a letter, and the event that it was parked, in one transaction;
	// it returns false when the letter was already stored.
	Park(ctx context.Context, l Letter, event any) (bool, error)
	// List returns up to f.Limit letters matching f, newest first, with ids below
	// f.Cursor when it is set; f.Status is a status or "all", never "".
	List(ctx context.Context, f Filter) ([]Letter, error)
	// Count returns how many letters match f, ignoring its cursor and limit.
	Count(ctx context.Context, f Filter) (int, error)
	// Find returns the letter ref names, whatever its status: its LetterKey, or an
	// email id (that email's latest letter). false when there is none.
	Find(ctx context.Context, ref string) (Letter, bool, error)
	// Resolve applies each resolution whose letter is still parked, with its
	// outbox messages, in one transaction, and returns those it applied.
	Resolve(ctx context.Context, rs []Resolution) ([]Resolution, error)
}
