// Package contract holds the events the deadletters module publishes on
// topics.events, and the metadata keys a handler sets on a message it cannot read
// before the router's poison queue moves it to topics.dead_letter. It imports only
// the standard library.
package contract

import "time"

// Event types, set in the message metadata under EventTypeKey.
const (
	// EventEmailDeadLettered carries an EmailDeadLettered, published once per email
	// and replay when its letter is first parked (a poison message with no email id
	// publishes nothing).
	EventEmailDeadLettered = "deadletters.EmailDeadLettered"
	// EventEmailReplayed carries an EmailReplayed, published in the transaction that
	// queues the replayed SendEmail.
	EventEmailReplayed = "deadletters.EmailReplayed"
	// EventEmailDiscarded carries an EmailDiscarded.
	EventEmailDiscarded = "deadletters.EmailDiscarded"
)

// EventTypeKey is the metadata key naming the event type of a message on topics.events.
// It is the same key as delivery's, so consumers read one key for both modules.
const EventTypeKey = "event_type"

// EmailDeadLettered says that an email is parked in the dead letters until an
// operator replays or discards it.
type EmailDeadLettered struct {
	// EmailID is the id of the email whose letter was parked; never empty.
	EmailID string `json:"email_id"`
	// Reason is why, in one line naming the recipients that were not delivered; it
	// becomes the email's last_error.
	Reason string `json:"reason"`
	// Attempts is how many tries this replay made before giving up; 0 for a
	// command that could not be read.
	Attempts int `json:"attempts"`
	// Replay is the replay that failed: 0 for the original send, n after n replays.
	Replay int `json:"replay"`
	// At is when this instance parked the letter, not when the last try failed.
	At time.Time `json:"at"`
}

// EmailReplayed says that an operator sent a dead letter again, from a fresh attempt
// count, to the recipients that were not delivered.
type EmailReplayed struct {
	// EmailID is the id of the replayed email.
	EmailID string `json:"email_id"`
	// Replay is the new replay number (1 for the first replay), which the queued
	// SendEmail carries with Attempt 1.
	Replay int `json:"replay"`
	// Recipients are the addresses the replay sends to again; empty in events from
	// before recipients had outcomes of their own, which replayed the whole email.
	Recipients []string `json:"recipients,omitempty"`
	// At is when the operator replayed the letter.
	At time.Time `json:"at"`
}

// EmailDiscarded says that an operator threw a dead letter away; the email stays as
// it is.
type EmailDiscarded struct {
	// EmailID is the id of the discarded email; letters without one publish no event.
	EmailID string `json:"email_id"`
	// At is when the operator discarded the letter.
	At time.Time `json:"at"`
}

// Metadata keys a handler sets on a message it cannot read (a poison message) before
// the router's poison-queue middleware moves it to topics.dead_letter, in the
// spirit of Spring Kafka's kafka_dlt-* headers. The middleware adds reason_poisoned,
// topic_poisoned, handler_poisoned and subscriber_poisoned itself. Emails that fail
// do not go this way: delivery writes a typed dead letter through the outbox.
const (
	// MetaOriginalTopic is the topic the failed message was consumed from; when
	// absent, the middleware's topic_poisoned is used.
	MetaOriginalTopic = "dlt_original_topic"
	// MetaOriginalPartition is the Kafka partition the message came from, in
	// decimal; absent on the Go-channel broker.
	MetaOriginalPartition = "dlt_original_partition"
	// MetaOriginalOffset is the message's offset in that partition, in decimal;
	// absent on the Go-channel broker.
	MetaOriginalOffset = "dlt_original_offset"
	// MetaConsumerGroup is the consumer group of the failing handler.
	MetaConsumerGroup = "dlt_consumer_group"
	// MetaEmailID is the email's id when the payload names one readably; parking
	// reads email_id from the payload when it is absent.
	MetaEmailID = "dlt_email_id"
	// MetaErrorClass is why the message is dead (poison); parked as "unknown" when
	// absent.
	MetaErrorClass = "dlt_error_class"
	// MetaErrorMessage is the error as text; when empty, the middleware's
	// reason_poisoned is used.
	MetaErrorMessage = "dlt_error_message"
	// MetaLastFailureAt is when the message was refused, RFC 3339 with nanoseconds,
	// in UTC.
	MetaLastFailureAt = "dlt_last_failure_at"
)
