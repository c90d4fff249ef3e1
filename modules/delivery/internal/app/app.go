// Package app holds the delivery module's use cases: send an email, and show what
// was sent.
package app

import (
	"context"
	"time"

	"github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/modules/delivery/internal/render"
)

// Status of an email in delivery.
const (
	// StatusRetrying is an email whose last try failed transiently; its next try is
	// an outbox row due later.
	StatusRetrying = "retrying"
	// StatusSent is final: any later copy of the command is acknowledged unsent.
	StatusSent = "sent"
	// StatusDead is an email handed to the dead letters; a replay (a command with a
	// higher Replay) sends it again.
	StatusDead = "dead"
)

// Error classes, as recorded with dead letters.
const (
	// ClassPermanent is a try that can never succeed (a 5xx reply, an unrenderable
	// email).
	ClassPermanent = "permanent"
	// ClassExhausted is transient failures that used up RetryPolicy.MaxAttempts.
	ClassExhausted = "transient_exhausted"
	// ClassPoison is a command that could not be read (bad JSON, no email_id, an
	// attempt below 1); nothing was sent.
	ClassPoison = "poison"
)

// State is what delivery remembers of one email.
type State struct {
	// EmailID is the email this state is about.
	EmailID string
	// Replay is the replay the state describes; a command with a higher one starts
	// a fresh state.
	Replay int
	// Attempts is the last attempt recorded in that replay (1-based); an older or
	// equal one is not sent again.
	Attempts int
	// Status is StatusRetrying, StatusSent or StatusDead.
	Status string
	// LastError is the latest failure's text in this replay; "" until a try fails,
	// and kept after a later success.
	LastError string
	// LastReply is the server's latest reply (the acceptance once sent); "" when
	// it gave none.
	LastReply string
	// ErrorClass is a Class* constant once the email is dead, "" before.
	ErrorClass string
	// FirstFailedAt is the first failed try of this replay; nil until one fails.
	FirstFailedAt *time.Time
	// LastFailedAt is the latest failed try of this replay; nil until one fails.
	LastFailedAt *time.Time
}

// Outcome is the result of one attempt, recorded in one transaction together with
// the events (and the retry) it causes.
type Outcome struct {
	// State replaces the email's stored state.
	State State
	// Message is the rendered message, stored for the raw-message API; one with no
	// Raw (a render failure) leaves the stored one as it was.
	Message render.Message
	// OwnerKeyID is the API key that sent the email, stored with the message.
	OwnerKeyID string
	// Events are published on topics.events, keyed by the email id.
	Events []Event
	// Retry, when set, is the SendEmail of the next attempt, due at RetryAt.
	Retry *contract.SendEmail
	// RetryAt is when the outbox publishes Retry; zero when Retry is nil.
	RetryAt time.Time
}

// Event is one event to publish; Type goes into the metadata.
type Event struct {
	// Type is one of contract's Event* constants.
	Type string
	// Payload is the matching contract struct, sent as JSON.
	Payload any
}

// Store keeps delivery state. Declared here, where it is used.
type Store interface {
	// Load returns the email's state; false, with no error, when delivery has
	// recorded nothing of it yet.
	Load(ctx context.Context, emailID string) (State, bool, error)
	// Record stores o in one transaction: state, message, events and retry, the
	// messages carrying correlationID. On error nothing is recorded.
	Record(ctx context.Context, o Outcome, correlationID string) error
	// Raw returns the rendered message and the API key that sent the email.
	Raw(ctx context.Context, emailID string) (raw []byte, ownerKeyID string, err error)
}

// Transport hands a rendered message to a mail server (or captures it).
type Transport interface {
	// Send hands msg to the server and returns its acceptance reply; on error,
	// SendEmail.IsPermanent tells whether a later try could succeed.
	Send(ctx context.Context, msg render.Message) (reply string, err error)
}

// RetryPolicy is Spring's @RetryableTopic backoff: MaxAttempts counts the first try;
// the wait after attempt n is Initial*Multiplier^(n-1), at most Max.
type RetryPolicy struct {
	// MaxAttempts is the tries per replay, the first included (retry.max_attempts).
	MaxAttempts int
	// Initial is the wait after the first failed try (retry.initial_interval).
	Initial time.Duration
	// Multiplier grows each later wait; at least 1 (retry.multiplier).
	Multiplier float64
	// Max caps every wait (retry.max_interval).
	Max time.Duration
}

// Delay is the wait after the given failed attempt (1-based).
func (p RetryPolicy) Delay(attempt int) time.Duration {
	d := float64(p.Initial)
	for i := 1; i < attempt; i++ {
		d *= p.Multiplier
		if d >= float64(p.Max) {
			return p.Max
		}
	}
	return min(time.Duration(d), p.Max)
}
