package adapters

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/mailroom/mailroom/modules/emails/contract"
	"github.com/mailroom/mailroom/modules/emails/internal/app"
	"github.com/mailroom/mailroom/modules/emails/internal/domain"
	"github.com/mailroom/mailroom/platform/apperr"
	"github.com/mailroom/mailroom/platform/outbox"
	"github.com/mailroom/mailroom/platform/sqlite"
)

// emailFacts is what every lifecycle event of an email repeats from the email: its
// tags and metadata, which never change after acceptance, and the correlation id
// its messages carry.
type emailFacts struct {
	tags          []string
	metadata      map[string]string
	correlationID string
}

// decode reads the tags and metadata columns.
func (f *emailFacts) decode(tags, metadata string) error {
	if err := json.Unmarshal([]byte(tags), &f.tags); err != nil {
		return fmt.Errorf("decode tags: %w", err)
	}
	if err := json.Unmarshal([]byte(metadata), &f.metadata); err != nil {
		return fmt.Errorf("decode metadata: %w", err)
	}
	return nil
}

// tellsOfLifecycle tells whether ch has an entry that is a lifecycle event: only
// then does its email's facts need decoding.
func tellsOfLifecycle(ch app.Change) bool {
	for _, en := range ch.Entries {
		if _, ok := domain.LifecycleType(en.Type); ok {
			return true
		}
	}
	return false
}

// lifecycleEvent is the one place a lifecycle event is built from a timeline entry:
// the message on topics.lifecycle and the feed's item are the same.
func lifecycleEvent(eventID, emailID string, en app.Entry, at time.Time, facts emailFacts) contract.Event {
	typ, _ := domain.LifecycleType(en.Type)
	ev := contract.Event{ID: eventID, Type: typ, Version: contract.SchemaVersion, Timestamp: at.UTC().Truncate(time.Millisecond),
		Data: contract.EventData{EmailID: emailID, Recipient: en.Recipient, Detail: en.Detail, Tags: facts.tags, Metadata: facts.metadata}}
	if en.Type == domain.EventScheduled {
		ev.Data.SendAt = domain.ScheduledFor(en.Detail)
		ev.Data.Detail = ""
	}
	if ev.Data.Tags == nil {
		ev.Data.Tags = []string{}
	}
	if ev.Data.Metadata == nil {
		ev.Data.Metadata = map[string]string{}
	}
	return ev
}

// publishLifecycle queues ev on topics.lifecycle in tx, keyed by its email so that
// an email's events keep their order.
func (r *Repository) publishLifecycle(ctx context.Context, tx *sql.Tx, ev contract.Event, correlationID string) error {
	msg, err := outbox.NewMessage(ev.ID, ev.Data.EmailID, correlationID, ev)
	if err != nil {
		return err
	}
	msg.Metadata.Set(contract.EventTypeKey, ev.Type)
	return r.box.Add(ctx, tx, r.lifecycleTopic, msg, time.Time{})
}

// acceptedDetail is the detail of an email's "accepted" entry.
func acceptedDetail(e domain.Email) string {
	if e.SendAt != nil {
		return "scheduled for " + e.SendAt.UTC().Format(time.RFC3339)
	}
	return "queued"
}

// Events implements app.Repository: the lifecycle events after f.After in the
// order they were recorded (the timeline's rowid grows in commit order, so a
// cursor never skips an event committed later).
func (r *Repository) Events(ctx context.Context, f app.EventFilter) ([]app.FeedItem, error) {
	where := []string{"ev.event_id IS NOT NULL", "ev.id > ?"}
	args := []any{f.After}
	if f.EntryType != "" {
		where = append(where, "ev.type = ?")
		args = append(args, f.EntryType)
	}
	if f.EmailID != "" {
		where = append(where, "ev.email_id = ?")
		args = append(args, f.EmailID)
	}
	if f.APIKeyID != "" {
		where = append(where, "e.api_key_id = ?")
		args = append(args, f.APIKeyID)
	}
	args = append(args, f.Limit)
	items, err := sqlite.Query(ctx, r.db, scanFeedItem,
		`SELECT ev.id, ev.event_id, ev.email_id, ev.type, ev.at, ev.detail, ev.recipient, e.tags, e.metadata
		 FROM emails_events ev JOIN emails_emails e ON e.id = ev.email_id
		 WHERE `+strings.Join(where, " AND ")+` ORDER BY ev.id LIMIT ?`, args...)
	if err != nil {
		return nil, apperr.Unavailable("cannot read the events", err)
	}
	return items, nil
}

func scanFeedItem(s sqlite.Scanner) (app.FeedItem, error) {
	var (
		item             app.FeedItem
		eventID, emailID string
		en               app.Entry
		at               int64
		tags, meta       string
		facts            emailFacts
	)
	if err := s.Scan(&item.Cursor, &eventID, &emailID, &en.Type, &at, &en.Detail, &en.Recipient, &tags, &meta); err != nil {
		return item, err
	}
	if err := facts.decode(tags, meta); err != nil {
		return item, fmt.Errorf("email %s: %w", emailID, err)
	}
	item.Event = lifecycleEvent(eventID, emailID, en, time.UnixMilli(at), facts)
	return item, nil
}
