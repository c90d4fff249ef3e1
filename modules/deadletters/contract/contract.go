// Package contract holds the events the deadletters module publishes on
// topics.events, and the metadata keys a handler sets on a message it sends to the
// dead-letter topic (delivery does). It imports only the standard library.
package contract

import "time"

// Event types, set in the message metadata under EventTypeKey.
const (
	EventEmailDeadLettered = "deadletters.EmailDeadLettered"
	EventEmailReplayed     = "deadletters.EmailReplayed"
	EventEmailDiscarded    = "deadletters.EmailDiscarded"
)

// EventTypeKey is the metadata key naming the event type of a message on topics.events.
const EventTypeKey = "event_type"

// EmailDeadLettered says that an email will not be tried again until an operator
// replays it.
type EmailDeadLettered struct {
	EmailID  string    `json:"email_id"`
	Reason   string    `json:"reason"`
	Attempts int       `json:"attempts"`
	Replay   int       `json:"replay"`
	At       time.Time `json:"at"`
}

// EmailReplayed says that an operator sent a dead letter again, from a fresh attempt
// count.
type EmailReplayed struct {
	EmailID string    `json:"email_id"`
	Replay  int       `json:"replay"`
	At      time.Time `json:"at"`
}

// EmailDiscarded says that an operator threw a dead letter away; the email stays dead.
type EmailDiscarded struct {
	EmailID string    `json:"email_id"`
	At      time.Time `json:"at"`
}

// Metadata keys a failing handler sets on a message before the poison-queue
// middleware moves it to topics.dead_letter, in the spirit of Spring Kafka's
// kafka_dlt-* headers. The middleware adds reason_poisoned, topic_poisoned,
// handler_poisoned and subscriber_poisoned itself.
const (
	MetaOriginalTopic     = "dlt_original_topic"
	MetaOriginalPartition = "dlt_original_partition"
	MetaOriginalOffset    = "dlt_original_offset"
	MetaConsumerGroup     = "dlt_consumer_group"
	MetaEmailID           = "dlt_email_id"
	MetaAttempts          = "dlt_attempts"
	MetaReplay            = "dlt_replay"
	MetaErrorClass        = "dlt_error_class"
	MetaErrorMessage      = "dlt_error_message"
	MetaSMTPReply         = "dlt_smtp_reply"
	MetaFirstFailureAt    = "dlt_first_failure_at"
	MetaLastFailureAt     = "dlt_last_failure_at"
)
