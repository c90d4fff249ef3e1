// Package contract holds what other modules may know of the delivery module: the
// command it consumes and the events it publishes. It imports nothing but the
// standard library so that any module can depend on it.
package contract

import "time"

// SendEmail asks the delivery module to send one email. It travels on topics.send and
// carries everything needed to render the message, so delivery never reads another
// module's tables. The same email is sent again (a retry or a replay) by publishing
// a copy with a higher Attempt or Replay.
type SendEmail struct {
	EmailID       string            `json:"email_id"`
	CorrelationID string            `json:"correlation_id,omitempty"`
	From          string            `json:"from"`
	To            []string          `json:"to"`
	Cc            []string          `json:"cc,omitempty"`
	Bcc           []string          `json:"bcc,omitempty"`
	ReplyTo       string            `json:"reply_to,omitempty"`
	Subject       string            `json:"subject"`
	Text          string            `json:"text,omitempty"`
	HTML          string            `json:"html,omitempty"`
	Tags          []string          `json:"tags,omitempty"`
	Metadata      map[string]string `json:"metadata,omitempty"`
	CreatedAt     time.Time         `json:"created_at"`
	// OwnerKeyID is the API key that sent the email; delivery shows the rendered
	// message to that key (and admins) only.
	OwnerKeyID string `json:"owner_key_id,omitempty"`
	// OriginInstance is the instance id of the Mailroom that accepted the email.
	// Instances have a database each and all read the dead-letter topic; only the
	// origin holds the email, so only it parks the email's dead letter. It is empty
	// in commands from versions before it existed, and every instance parks those.
	//
	// It is a field, not message metadata: the command is rebuilt from its payload
	// for every retry (by delivery) and every replay (by deadletters), so a field
	// travels with each copy without either module knowing of it, where metadata
	// would have to be copied by hand wherever a new message is made (and a copy
	// forgotten would park that email's dead letter in every instance again). The
	// dead-letter topic carries the payload unchanged, so it reaches deadletters.
	OriginInstance string `json:"origin_instance,omitempty"`
	// Attempt is the 1-based try this message stands for; a redelivered message
	// whose attempt was already recorded is acknowledged without sending again.
	Attempt int `json:"attempt"`
	// Replay counts operator replays from the dead letters; each one starts a fresh
	// attempt count.
	Replay int `json:"replay"`
}

// Event types published by delivery on topics.events, set in the message metadata
// under EventTypeKey.
const (
	EventEmailSent           = "delivery.EmailSent"
	EventEmailAttemptFailed  = "delivery.EmailAttemptFailed"
	EventEmailRetryScheduled = "delivery.EmailRetryScheduled"
)

// EventTypeKey is the metadata key naming the event type of a message on topics.events.
const EventTypeKey = "event_type"

// EmailSent says that the transport accepted the email.
type EmailSent struct {
	EmailID string    `json:"email_id"`
	Attempt int       `json:"attempt"`
	Reply   string    `json:"reply,omitempty"`
	At      time.Time `json:"at"`
}

// EmailAttemptFailed says that one try failed; Permanent tells whether another try
// could ever succeed.
type EmailAttemptFailed struct {
	EmailID   string    `json:"email_id"`
	Attempt   int       `json:"attempt"`
	Error     string    `json:"error"`
	Permanent bool      `json:"permanent"`
	At        time.Time `json:"at"`
}

// EmailRetryScheduled says when the next try of a transiently failed email is due.
type EmailRetryScheduled struct {
	EmailID       string    `json:"email_id"`
	NextAttempt   int       `json:"next_attempt"`
	NextAttemptAt time.Time `json:"next_attempt_at"`
	LastError     string    `json:"last_error"`
	// At is when the retry was scheduled (the failure's time); zero in events
	// published before it existed.
	At time.Time `json:"at"`
}
