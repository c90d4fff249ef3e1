package app

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/mailroom/mailroom/modules/emails/contract"
)

// FanOut turns one lifecycle event into one pending delivery per enabled endpoint
// subscribed to its type, stored with the event in one transaction.
type FanOut struct {
	Store Store
	Now   func() time.Time
	Log   *slog.Logger
	// Wake tells the sender that deliveries are due; nil for none.
	Wake func()
}

// Handle stores the deliveries of the event whose JSON (a contract.Event) is
// payload. A payload that is not such an event, or of a schema version this
// module does not know, is logged and dropped: no retry would make it readable.
// An error means nothing was stored and the message must come again.
func (f FanOut) Handle(ctx context.Context, eventType string, payload []byte) error {
	// Most events have no subscriber: the type the message names says so before
	// the payload is decoded or the database's writer taken. (A message without
	// it is decoded and checked as a whole.)
	if eventType != "" {
		if subscribed, err := f.Store.Subscribed(ctx, eventType); err != nil || !subscribed {
			return err
		}
	}
	var ev contract.Event
	if err := json.Unmarshal(payload, &ev); err != nil || ev.ID == "" || ev.Type == "" {
		f.Log.Warn("lifecycle event unreadable; not sent to webhooks", "error", err, "payload_bytes", len(payload))
		return nil
	}
	if ev.Version != contract.SchemaVersion {
		f.Log.Warn("lifecycle event of an unknown schema version; not sent to webhooks",
			"event_id", ev.ID, "version", ev.Version, "known", contract.SchemaVersion)
		return nil
	}
	n, err := f.Store.FanOut(ctx, Event{ID: ev.ID, Type: ev.Type, Payload: payload}, f.Now().UTC())
	if err != nil {
		return fmt.Errorf("fan event %s out to webhooks: %w", ev.ID, err)
	}
	if n > 0 && f.Wake != nil {
		f.Wake()
	}
	return nil
}
