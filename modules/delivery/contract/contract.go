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
	// EmailID is the emails module's id of the email (a UUIDv7); it keys every
	// delivery row and event, and goes into the Message-ID. Never empty: a command
	// without it is poison.
	EmailID string `json:"email_id"`
	// CorrelationID is the X-Request-ID of the API request that accepted the email,
	// carried into logs and events; empty in commands from before it existed.
	CorrelationID string `json:"correlation_id,omitempty"`
	// From is the sender as the API validated it, "a@b.example" or
	// `"Name" <a@b.example>`; empty means smtp.from, applied at render time.
	From string `json:"from"`
	// To is the To header's recipients, canonical like From; the API requires at
	// least one.
	To []string `json:"to"`
	// Cc is the Cc header's recipients, canonical like From; empty for none.
	Cc []string `json:"cc,omitempty"`
	// Bcc is the blind recipients: they go into the envelope only, never into a
	// header. Empty for none.
	Bcc []string `json:"bcc,omitempty"`
	// ReplyTo is the Reply-To address, canonical like From; empty means no header.
	ReplyTo string `json:"reply_to,omitempty"`
	// Subject is the Subject header, unencoded UTF-8 on one line; the renderer
	// encodes it.
	Subject string `json:"subject"`
	// Text is the plain-text body, UTF-8; empty for none, and then HTML is set (the
	// API refuses an email with neither).
	Text string `json:"text,omitempty"`
	// HTML is the HTML body, UTF-8; empty for none. With Text too, the message is
	// multipart/alternative.
	HTML string `json:"html,omitempty"`
	// Tags are the client's labels, copied from the email; delivery neither renders
	// nor reads them. Empty when the client gave none.
	Tags []string `json:"tags,omitempty"`
	// Metadata is the client's key/value pairs, copied like Tags and likewise
	// unused by delivery. Empty when the client gave none.
	Metadata map[string]string `json:"metadata,omitempty"`
	// CreatedAt is when the API accepted the email; delivery does not use it, and
	// it stays the same on every retry and replay.
	CreatedAt time.Time `json:"created_at"`
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
	// EventEmailSent carries an EmailSent; the email is done.
	EventEmailSent = "delivery.EmailSent"
	// EventEmailAttemptFailed carries an EmailAttemptFailed, published for every
	// failed try, the last one before the dead letters included.
	EventEmailAttemptFailed = "delivery.EmailAttemptFailed"
	// EventEmailRetryScheduled carries an EmailRetryScheduled, published with the
	// EmailAttemptFailed of a transient failure that has attempts left.
	EventEmailRetryScheduled = "delivery.EmailRetryScheduled"
)

// EventTypeKey is the metadata key naming the event type of a message on topics.events.
const EventTypeKey = "event_type"

// EmailSent says that the transport accepted the email.
type EmailSent struct {
	// EmailID is the id of the email that was sent.
	EmailID string `json:"email_id"`
	// Attempt is the 1-based try that succeeded, counted within its replay.
	Attempt int `json:"attempt"`
	// Reply is the server's acceptance reply, code included ("250 2.0.0 OK: queued";
	// "250 captured" from the capture transport); empty if the server gave none.
	Reply string `json:"reply,omitempty"`
	// At is when the transport returned the acceptance.
	At time.Time `json:"at"`
}

// EmailAttemptFailed says that one try failed; Permanent tells whether another try
// could ever succeed.
type EmailAttemptFailed struct {
	// EmailID is the id of the email whose try failed.
	EmailID string `json:"email_id"`
	// Attempt is the 1-based try that failed, counted within its replay.
	Attempt int `json:"attempt"`
	// Error is the failure as text, never empty: a render error, or the transport's
	// ("smtp: rcpt bob@example.com: 550 5.1.1 No such user").
	Error string `json:"error"`
	// Permanent is true when no later try can succeed (a 5xx reply, a bad envelope,
	// an unrenderable email); the email then goes to the dead letters.
	Permanent bool `json:"permanent"`
	// At is when the failure was recorded.
	At time.Time `json:"at"`
}

// EmailRetryScheduled says when the next try of a transiently failed email is due.
type EmailRetryScheduled struct {
	// EmailID is the id of the email to be tried again.
	EmailID string `json:"email_id"`
	// NextAttempt is the 1-based number of the coming try (the failed one plus 1).
	NextAttempt int `json:"next_attempt"`
	// NextAttemptAt is when the outbox publishes that try: the failure's time plus
	// the retry policy's delay for the failed attempt.
	NextAttemptAt time.Time `json:"next_attempt_at"`
	// LastError is the error of the failed try, as in its EmailAttemptFailed.
	LastError string `json:"last_error"`
	// At is when the retry was scheduled (the failure's time); zero in events
	// published before it existed.
	At time.Time `json:"at"`
}
