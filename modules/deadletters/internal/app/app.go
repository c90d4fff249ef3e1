// Package app holds the deadletters module's use cases: park a dead letter, list
// them, replay or discard one, and replay many by a filter.
package app

import (
	"context"
	"time"
)

// Letter statuses.
const (
	StatusParked    = "parked"
	StatusReplayed  = "replayed"
	StatusDiscarded = "discarded"
)

// Letter is one message that reached the dead-letter topic.
type Letter struct {
	ID                int64
	EmailID           string
	Replay            int
	Status            string
	Reason            string
	ErrorClass        string
	Attempts          int
	SMTPReply         string
	OriginalTopic     string
	OriginalPartition *int64
	OriginalOffset    *int64
	ConsumerGroup     string
	Handler           string
	FirstFailedAt     *time.Time
	LastFailedAt      *time.Time
	CreatedAt         time.Time
	ResolvedAt        *time.Time
	Payload           []byte
	Metadata          map[string]string
	DedupeKey         string
}

// Filter selects letters.
type Filter struct {
	// Status is parked by default; "all" means any.
	Status         string
	ReasonContains string
	Since, Until   *time.Time
	Limit          int
	// Cursor is the id of the last letter of the previous page.
	Cursor int64
}

// Store keeps letters and writes the messages a replay or discard causes to the
// outbox in the same transaction. Declared here, where it is used.
type Store interface {
	// Park stores a letter; it returns false when it was already stored.
	Park(ctx context.Context, l Letter) (bool, error)
	List(ctx context.Context, f Filter) ([]Letter, error)
	// Replay re-sends the parked letters refs name (email ids or LetterKeys) from a
	// fresh attempt count and returns the email ids of those it replayed.
	Replay(ctx context.Context, refs []string) ([]string, error)
	// Discard marks the parked letter ref names (an email id or a LetterKey)
	// discarded.
	Discard(ctx context.Context, ref string) error
}
