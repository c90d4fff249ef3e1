// Package app holds the delivery module's use cases: try an email, keep the mail
// server's gate, and keep a copy of the suppression list. It takes plain
// values: the ports adapt Watermill messages and HTTP requests to it.
package app

import (
	"context"
	"time"

	"github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/modules/delivery/internal/render"
	"github.com/mailroom/mailroom/modules/delivery/internal/transport"
)

// Application is the table of contents of the delivery module: every use case.
type Application struct {
	// SendEmail tries an email once (the handler of topics.send).
	SendEmail SendEmail
	// Gate holds every send while the mail server is unreachable or misconfigured.
	Gate *ServerGate
	// Suppressions keeps delivery's copy of the suppression list in step with
	// topics.suppressions.
	Suppressions SuppressionCopy
}

// State is what delivery remembers of one email in this instance: which try it
// recorded last, so that a redelivered command is acknowledged without a second send.
type State struct {
	// EmailID is the email this state is about.
	EmailID string
	// Replay is the replay the state describes; a command with a higher one starts
	// a fresh state.
	Replay int
	// Attempts is the last try recorded in that replay (1-based); an older or equal
	// one is not sent again.
	Attempts int
	// Status is contract.StatusRetrying, StatusSent or StatusDead.
	Status string
}

// Final reports whether the replay the state describes is over.
func (s State) Final() bool {
	return s.Status == contract.StatusSent || s.Status == contract.StatusDead
}

// Outcome is the result of one try, recorded in one transaction together with what it
// causes: the event, the next try, the dead letter and new suppressions.
type Outcome struct {
	// Try is the command tried: the messages the outcome causes are named after it.
	Try contract.SendEmail
	// State replaces the email's stored state.
	State State
	// Attempted is the event reporting the try; it carries the rendered message
	// (contract.EmailAttempted.Message) to the instance that accepted the email,
	// which shows it at GET /api/emails/{id}/raw. Delivery keeps no copy.
	Attempted contract.EmailAttempted
	// Retry, when set, is the SendEmail of the next try, due at RetryAt.
	Retry   *contract.SendEmail
	RetryAt time.Time
	// DeadLetter, when set, goes to topics.dead_letter.
	DeadLetter *contract.DeadLetter
	// Suppress are hard bounces to add to the suppression list (an address already
	// on it keeps its entry); each one added goes onto topics.suppressions through
	// the outbox, in the same transaction.
	Suppress []Suppression
}

// Store keeps delivery's state and writes what an outcome causes to the outbox in
// the same transaction. Declared here, where it is used.
type Store interface {
	// Load returns the email's state; false, with no error, when delivery has
	// recorded nothing of it yet.
	Load(ctx context.Context, emailID string) (State, bool, error)
	// Record stores o in one transaction, the messages it causes carrying
	// correlationID, and, where the store waits for it, returns once they are in
	// the broker. On an error wrapping ErrOutcomeNotPublished o is recorded and
	// its messages are not all published yet; on any other error nothing is
	// recorded.
	Record(ctx context.Context, o Outcome, correlationID string) error
	// Requeue writes cmd to the outbox again, due now, for a try that did not
	// happen (shutdown came first).
	Requeue(ctx context.Context, cmd contract.SendEmail) error
	// AwaitOutcome returns once the messages cmd's recorded try produced (its
	// event, its retry, its dead letter) have left this database's outbox for the
	// broker, at once when none waits there (they were published long ago, or the
	// store does not wait: Go channels). It returns an error wrapping
	// ErrOutcomeNotPublished when one is still only in the outbox after the
	// store's wait: cmd must not be acknowledged then.
	AwaitOutcome(ctx context.Context, cmd contract.SendEmail) error
	// SuppressionStore is the suppression list.
	SuppressionStore
}

// Transport hands a rendered message to a mail server (or captures it).
type Transport interface {
	// Send runs one mail transaction for msg.Recipients and returns each one's
	// outcome, or a *transport.ServerError when no recipient's fate was decided.
	Send(ctx context.Context, msg render.Message) (transport.Result, error)
}
