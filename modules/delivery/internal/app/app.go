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
	StatusRetrying = "retrying"
	StatusSent     = "sent"
	StatusDead     = "dead"
)

// Error classes, as recorded with dead letters.
const (
	ClassPermanent = "permanent"
	ClassExhausted = "transient_exhausted"
	ClassPoison    = "poison"
)

// State is what delivery remembers of one email.
type State struct {
	EmailID       string
	Replay        int
	Attempts      int
	Status        string
	LastError     string
	LastReply     string
	ErrorClass    string
	FirstFailedAt *time.Time
	LastFailedAt  *time.Time
}

// Outcome is the result of one attempt, recorded in one transaction together with
// the events (and the retry) it causes.
type Outcome struct {
	State   State
	Message render.Message
	// OwnerKeyID is the API key that sent the email, stored with the message.
	OwnerKeyID string
	// Events are published on topics.events, keyed by the email id.
	Events []Event
	// Retry, when set, is the SendEmail of the next attempt, due at RetryAt.
	Retry   *contract.SendEmail
	RetryAt time.Time
}

// Event is one event to publish; Type goes into the metadata.
type Event struct {
	Type    string
	Payload any
}

// Store keeps delivery state. Declared here, where it is used.
type Store interface {
	Load(ctx context.Context, emailID string) (State, bool, error)
	Record(ctx context.Context, o Outcome, correlationID string) error
	// Raw returns the rendered message and the API key that sent the email.
	Raw(ctx context.Context, emailID string) (raw []byte, ownerKeyID string, err error)
}

// Transport hands a rendered message to a mail server (or captures it).
type Transport interface {
	Send(ctx context.Context, msg render.Message) (reply string, err error)
}

// RetryPolicy is Spring's @RetryableTopic backoff: MaxAttempts counts the first try;
// the wait after attempt n is Initial*Multiplier^(n-1), at most Max.
type RetryPolicy struct {
	MaxAttempts int
	Initial     time.Duration
	Multiplier  float64
	Max         time.Duration
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
