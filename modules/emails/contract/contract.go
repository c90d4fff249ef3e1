// Package contract holds what other modules and other services may know of the
// emails module: the lifecycle events it publishes on topics.lifecycle, one message
// per event, each a JSON Event of schema version SchemaVersion. The same events are
// what GET /api/events pages and what the webhooks module POSTs. It imports only the
// standard library.
package contract

import (
	_ "embed" // EventSchemaV1
	"slices"
	"time"
)

// SchemaVersion is the version of Event's JSON schema; a consumer reads it from the
// event's "version" (and the message metadata SchemaVersionKey) and refuses versions
// it does not know. Adding an optional field keeps the version; renaming, removing
// or changing the meaning of one makes a new version.
const SchemaVersion = 1

// SchemaVersionKey is the message metadata key that carries the schema version of a
// message on topics.lifecycle, so a consumer can route by version before decoding.
const SchemaVersionKey = "schema_version"

// EventTypeKey is the message metadata key that carries the event's type, the same
// key as the other modules' events use.
const EventTypeKey = "event_type"

// Event types: every change in an email's life that a client hears of.
const (
	// EventAccepted: the API accepted the email (for every email, first).
	EventAccepted = "email.accepted"
	// EventScheduled: the email waits for its send_at, given at acceptance or by a
	// later PATCH; Data.SendAt says until when.
	EventScheduled = "email.scheduled"
	// EventCancelled: a scheduled email was cancelled; it is final and never sent.
	EventCancelled = "email.cancelled"
	// EventDelivered: the mail server accepted the email for Data.Recipient.
	EventDelivered = "email.delivered"
	// EventDeferred: the mail server refused Data.Recipient for now (4xx); it is
	// tried again.
	EventDeferred = "email.deferred"
	// EventBounced: the mail server refused Data.Recipient for good (5xx).
	EventBounced = "email.bounced"
	// EventSuppressed: Data.Recipient is on the suppression list and was not sent to.
	EventSuppressed = "email.suppressed"
	// EventSent: the email is final and at least one recipient got it.
	EventSent = "email.sent"
	// EventDeadLettered: the email reached nobody it still had to reach and is
	// parked in the dead letters until an operator replays or discards it.
	EventDeadLettered = "email.dead_lettered"
	// EventReplayed: an operator sent the email again from the dead letters.
	EventReplayed = "email.replayed"
)

// EventTypes lists every event type, in the order of an email's life, for
// validation of filters and webhook subscriptions.
var EventTypes = []string{
	EventAccepted, EventScheduled, EventCancelled, EventDelivered, EventDeferred, EventBounced,
	EventSuppressed, EventSent, EventDeadLettered, EventReplayed,
}

// KnownEventType tells whether t is one of EventTypes.
func KnownEventType(t string) bool { return slices.Contains(EventTypes, t) }

// Event is one change in an email's life. Its ID is stable: the feed, every webhook
// try and replay, and the topics.lifecycle message carry the same one, so a
// receiver that has seen an ID can drop a repeat.
type Event struct {
	// ID is the event's id, a UUIDv7 (it sorts by creation time).
	ID string `json:"id"`
	// Type is one of EventTypes.
	Type string `json:"type"`
	// Version is SchemaVersion when the event was written.
	Version int `json:"version"`
	// Timestamp is when the change happened, UTC with millisecond precision.
	Timestamp time.Time `json:"timestamp"`
	// Data is what the event is about.
	Data EventData `json:"data"`
}

// SchemaVersion implements broker.Versioned: an event carries the version it was
// written with, under SchemaVersionKey.
func (e Event) SchemaVersion() int { return e.Version }

// EventData is what an event is about: the email, and the recipient where the
// event is about one.
type EventData struct {
	// EmailID is the id of the email, as POST /api/emails answered it.
	EmailID string `json:"email_id"`
	// Recipient is the address the event is about, for the per-recipient types
	// (delivered, deferred, bounced, suppressed); empty otherwise.
	Recipient string `json:"recipient,omitempty"`
	// Detail says more in one line: the mail server's reply for a recipient, why
	// an email was dead-lettered, which replay it is. May be empty.
	Detail string `json:"detail,omitempty"`
	// SendAt is when a scheduled email will be sent (EventScheduled only).
	SendAt *time.Time `json:"send_at,omitempty"`
	// Tags are the email's tags, [] for none.
	Tags []string `json:"tags"`
	// Metadata is the email's metadata, {} for none.
	Metadata map[string]string `json:"metadata"`
}

// EventSchemaV1 is the JSON Schema (draft 2020-12) of an Event of version 1, the
// one published for other services: what they validate topics.lifecycle's messages
// and the webhooks' bodies against. Its file sits beside this one.
//
//go:embed event.v1.schema.json
var EventSchemaV1 []byte
