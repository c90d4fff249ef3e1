// Package app holds the deadletters module's use cases: park a dead letter, list
// them, replay or discard one, and replay many by a filter.
package app

import (
	"context"
	"time"
)

// Letter statuses.
const (
	// StatusParked is a letter waiting for an operator; only parked letters can be
	// replayed or discarded.
	StatusParked = "parked"
	// StatusReplayed is a letter sent again; if that fails too, a new letter (with
	// the next replay number) is parked.
	StatusReplayed = "replayed"
	// StatusDiscarded is a letter an operator threw away; its email stays dead.
	StatusDiscarded = "discarded"
)

// Letter is one message that reached the dead-letter topic.
type Letter struct {
	// ID is the row id, increasing; pages and LetterKey use it. 0 before parking.
	ID int64
	// EmailID is the failed email's id; "" for a poison message that names none.
	EmailID string
	// Replay is the replay that failed: 0 for the original send.
	Replay int
	// Status is StatusParked, StatusReplayed or StatusDiscarded.
	Status string
	// Reason is the last error as text, shown to operators and matched by
	// Filter.ReasonContains.
	Reason string
	// ErrorClass is permanent, transient_exhausted or poison, or "unknown" when the
	// failing handler set none.
	ErrorClass string
	// Attempts is how many tries that replay made; 0 when unknown or poison.
	Attempts int
	// SMTPReply is the mail server's last reply, code included; "" when it gave none.
	SMTPReply string
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
	// FirstFailedAt is that replay's first failed try; nil when the message did
	// not say (a poison message).
	FirstFailedAt *time.Time
	// LastFailedAt is that replay's last failed try; nil when the message did not say.
	LastFailedAt *time.Time
	// CreatedAt is when this instance parked the letter (the API's dead_lettered_at).
	CreatedAt time.Time
	// ResolvedAt is when the letter was replayed or discarded; nil while parked.
	ResolvedAt *time.Time
	// Payload is the message body as received: the SendEmail JSON a replay is
	// rebuilt from (a poison message's may not parse, and cannot be replayed).
	Payload []byte
	// Metadata is all of the message's metadata, the correlation id included.
	Metadata map[string]string
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
}

// Store keeps letters and writes the messages a replay or discard causes to the
// outbox in the same transaction. Declared here, where it is used.
type Store interface {
	// Park stores a letter; it returns false when it was already stored.
	Park(ctx context.Context, l Letter) (bool, error)
	// List returns up to f.Limit letters matching f, newest first, with ids below
	// f.Cursor when it is set; f.Status is a status or "all", never "".
	List(ctx context.Context, f Filter) ([]Letter, error)
	// Replay re-sends the parked letters refs name (email ids or LetterKeys) from a
	// fresh attempt count and returns the email ids of those it replayed.
	Replay(ctx context.Context, refs []string) ([]string, error)
	// Discard marks the parked letter ref names (an email id or a LetterKey)
	// discarded.
	Discard(ctx context.Context, ref string) error
}
