package app

import (
	"context"
	"strconv"
	"strings"

	"github.com/mailroom/mailroom/platform/apperr"
)

// MaxPageSize is the largest page of letters.
const MaxPageSize = 500

// Manage is what an operator does with letters, from the API or the CLI.
type Manage struct{ Store Store }

// List returns one page of letters, newest first, and the next cursor or 0.
func (h Manage) List(ctx context.Context, f Filter) ([]Letter, int64, error) {
	if f.Status == "" {
		f.Status = StatusParked
	}
	switch f.Status {
	case StatusParked, StatusReplayed, StatusDiscarded, "all":
	default:
		return nil, 0, apperr.Invalid("status", "must be parked, replayed, discarded or all")
	}
	if f.Limit == 0 {
		f.Limit = 50
	}
	if f.Limit < 1 || f.Limit > MaxPageSize {
		return nil, 0, apperr.Invalid("limit", "must be between 1 and %d", MaxPageSize)
	}
	want := f.Limit
	f.Limit++
	items, err := h.Store.List(ctx, f)
	if err != nil {
		return nil, 0, err
	}
	var next int64
	if len(items) > want {
		items = items[:want]
		next = items[want-1].ID
	}
	return items, next, nil
}

// Replay sends a parked letter again; ref is its email id or its LetterKey. It
// returns the email id.
func (h Manage) Replay(ctx context.Context, ref string) (string, error) {
	ids, err := h.Store.Replay(ctx, []string{ref})
	if err != nil {
		return "", err
	}
	if len(ids) == 0 {
		return "", apperr.NotFound("parked dead letter", ref)
	}
	return ids[0], nil
}

// ReplayMatching replays every parked letter the filter selects and returns how many.
func (h Manage) ReplayMatching(ctx context.Context, f Filter) (int, error) {
	f.Status = StatusParked
	total := 0
	for {
		f.Limit = MaxPageSize
		items, err := h.Store.List(ctx, f)
		if err != nil {
			return total, err
		}
		if len(items) == 0 {
			return total, nil
		}
		ids := make([]string, 0, len(items))
		for _, l := range items {
			if l.EmailID != "" {
				ids = append(ids, l.EmailID)
			}
		}
		replayed, err := h.Store.Replay(ctx, ids)
		total += len(replayed)
		if err != nil {
			return total, err
		}
		f.Cursor = items[len(items)-1].ID
	}
}

// Discard throws a parked letter away (ref: its email id or its LetterKey); the
// email stays dead.
func (h Manage) Discard(ctx context.Context, ref string) error {
	return h.Store.Discard(ctx, ref)
}

// letterKeyPrefix starts a letter's own key; an email id (a UUID) never does.
const letterKeyPrefix = "letter-"

// LetterKey names a letter by itself rather than by its email, for the API and the
// CLI: a poison message has no email id, and is discarded by this key.
func LetterKey(l Letter) string { return letterKeyPrefix + strconv.FormatInt(l.ID, 10) }

// ParseLetterKey returns the letter id a LetterKey names; ok is false for anything
// else (an email id).
func ParseLetterKey(ref string) (int64, bool) {
	rest, found := strings.CutPrefix(ref, letterKeyPrefix)
	if !found {
		return 0, false
	}
	id, err := strconv.ParseInt(rest, 10, 64)
	return id, err == nil && id > 0
}
