package app

import (
	"context"
	"strconv"

	"github.com/mailroom/mailroom/modules/emails/contract"
	"github.com/mailroom/mailroom/modules/emails/internal/domain"
	"github.com/mailroom/mailroom/platform/apperr"
	"github.com/mailroom/mailroom/platform/auth"
)

// MaxEventPage is the largest page of the event feed.
const MaxEventPage = 500

// EventFilter selects lifecycle events for the feed.
type EventFilter struct {
	// After is the cursor of the last event already read; 0 starts at the oldest.
	After int64
	// EntryType keeps only events of that timeline entry type; "" keeps all.
	EntryType string
	// EmailID keeps only the events of that email; "" keeps all.
	EmailID string
	// APIKeyID, when set, keeps only the events of emails that key sent.
	APIKeyID string
	// Limit is how many events to read.
	Limit int
}

// FeedItem is one event of the feed with its place in it.
type FeedItem struct {
	// Cursor is the event's place in the feed: the next page starts after it.
	Cursor int64
	// Event is the lifecycle event, exactly as topics.lifecycle carries it.
	Event contract.Event
}

// EventPage is one page of the feed.
type EventPage struct {
	// Events are the page's events, oldest first.
	Events []contract.Event
	// Next is the cursor to ask for the next page with: the last event's, or the
	// one asked with when the page is empty, so a client polling the feed keeps its
	// place either way.
	Next string
}

// EventQuery is the feed's question as a client asked it: a type and a cursor as
// strings, checked by ListEvents.
type EventQuery struct {
	After   string
	Type    string
	EmailID string
	Limit   int
}

// ListEvents pages through the lifecycle events, oldest first, for services that
// would rather pull than receive webhooks.
type ListEvents struct{ Repo Repository }

// Handle returns one page of the events q asks for. A send-scope key sees only the
// events of the emails it sent.
func (h ListEvents) Handle(ctx context.Context, q EventQuery, by auth.Principal) (EventPage, error) {
	f := EventFilter{EmailID: q.EmailID, Limit: q.Limit}
	if !by.SeesEverything() {
		if by.KeyID == "" {
			return EventPage{}, auth.Unauthorized("missing API key")
		}
		f.APIKeyID = by.KeyID
	}
	if q.After != "" {
		n, err := strconv.ParseInt(q.After, 10, 64)
		if err != nil || n < 0 || strconv.FormatInt(n, 10) != q.After {
			return EventPage{}, apperr.Invalid("after", "not a cursor from next_cursor")
		}
		f.After = n
	}
	if q.Type != "" {
		t, ok := domain.EntryType(q.Type)
		if !ok {
			return EventPage{}, apperr.Invalid("type", "must be one of the event types (email.accepted, email.delivered, ...)")
		}
		f.EntryType = t
	}
	if f.Limit == 0 {
		f.Limit = 100
	}
	items, err := h.Repo.Events(ctx, f)
	if err != nil {
		return EventPage{}, err
	}
	page := EventPage{Events: make([]contract.Event, 0, len(items)), Next: strconv.FormatInt(f.After, 10)}
	for _, it := range items {
		page.Events = append(page.Events, it.Event)
		page.Next = strconv.FormatInt(it.Cursor, 10)
	}
	return page, nil
}
