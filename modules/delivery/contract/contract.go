// Package contract holds what other modules may know of the delivery module: the
// command it consumes, the events and dead letters it publishes, and the one place
// that builds a SendEmail and names its messages. It imports nothing but the standard
// library so that any module can depend on it.
package contract

import (
	"fmt"
	"net/mail"
	"strings"
	"time"
)

// Recipient types: which header, if any, names the recipient.
const (
	// TypeTo is a recipient of the To header.
	TypeTo = "to"
	// TypeCc is a recipient of the Cc header.
	TypeCc = "cc"
	// TypeBcc is a blind recipient: in the envelope only, never in a header.
	TypeBcc = "bcc"
)

// Recipient statuses: where one recipient of an email stands.
const (
	// RecipientPending has not been tried yet in this replay.
	RecipientPending = "pending"
	// RecipientDelivered was accepted by the mail server: final.
	RecipientDelivered = "delivered"
	// RecipientDeferred was refused for now (a 4xx reply); it is tried again with
	// the email's next try.
	RecipientDeferred = "deferred"
	// RecipientBounced was refused for good (a 5xx reply): final.
	RecipientBounced = "bounced"
	// RecipientSuppressed is on the suppression list and got no SMTP command: final.
	RecipientSuppressed = "suppressed"
	// RecipientFailed was still deferred when the retries ran out: final, and its
	// email is in the dead letters.
	RecipientFailed = "failed"
)

// Email statuses after a try, as EmailAttempted.Status reports them.
const (
	// StatusRetrying is an email with deferred recipients, tried again at
	// EmailAttempted.NextAttemptAt.
	StatusRetrying = "retrying"
	// StatusSent is final: every recipient is final and at least one was delivered.
	StatusSent = "sent"
	// StatusDead is final: every recipient is final and none was delivered; a
	// DeadLetter went to topics.dead_letter.
	StatusDead = "dead"
)

// Email is an email as delivery needs it: everything to render it, and who sent it.
// The emails module fills it once, on acceptance; every try and replay carries it
// unchanged, so delivery never reads another module's tables.
type Email struct {
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
	// CreatedAt is when the API accepted the email; it stays the same on every
	// try and replay.
	CreatedAt time.Time `json:"created_at"`
	// OwnerKeyID is the API key that sent the email; delivery shows the rendered
	// message to that key (and admins) only.
	OwnerKeyID string `json:"owner_key_id,omitempty"`
	// Attachments are the files the message carries, in the client's order, with
	// their content: the SendEmail is the only place the content travels (the
	// emails module stores their metadata only). Those with a ContentID go inline,
	// beside the HTML body. Empty for none.
	Attachments []Attachment `json:"attachments,omitempty"`
	// Headers are the client's own header fields, name to value (one line, UTF-8;
	// the renderer encodes and folds it), written sorted by name. No name is one
	// ReservedHeader refuses. Empty for none.
	Headers map[string]string `json:"headers,omitempty"`
	// OriginInstance is the instance id of the Mailroom that accepted the email.
	// Instances have a database each and all read the dead-letter topic; only the
	// origin holds the email, so only it parks the email's dead letter. It is empty
	// in commands from versions before it existed, and every instance parks those.
	// It is a field, not message metadata, so it travels with every try and replay
	// without anyone copying it by hand.
	OriginInstance string `json:"origin_instance,omitempty"`
}

// Attachment is one file of an email, as the client sent it once its base64 was
// decoded.
type Attachment struct {
	// Filename is the file's name as the reader sees it: UTF-8, one line, at most
	// 255 bytes, never empty. The renderer encodes it (RFC 2231 and RFC 2047).
	Filename string `json:"filename"`
	// ContentType is the file's media type with its parameters, e.g.
	// "application/pdf"; the emails module fills it from the filename when the
	// client gave none, so it is never empty.
	ContentType string `json:"content_type"`
	// Content is the file's bytes (base64 in JSON, as encoding/json writes a
	// []byte).
	Content []byte `json:"content"`
	// ContentID, when set, makes the file an inline part of the HTML body
	// (Content-ID: <ContentID>, referred to as cid:ContentID); letters, digits and
	// "._@-" only. Empty for an ordinary attachment.
	ContentID string `json:"content_id,omitempty"`
}

// ReservedHeader reports whether a client may not set the header field name (any
// case) as a custom header: the renderer writes it from the email's own fields
// (From, To, Subject, Message-ID, MIME and Content-* fields...), or mail servers
// add it on the way (Received, Return-Path, DKIM-Signature, Resent-*,
// Authentication-Results, ARC-*), or it is Mailroom's own (X-Mailroom-*). A
// custom one of those would contradict the message or forge its trace. Both the
// API (which refuses it, naming it) and the renderer (which refuses the command)
// ask here, so the list is kept once. List-Unsubscribe, List-Unsubscribe-Post,
// In-Reply-To, References and X-* fields are not reserved.
func ReservedHeader(name string) bool {
	n := strings.ToLower(name)
	if _, ok := reservedHeaders[n]; ok {
		return true
	}
	for _, prefix := range []string{"content-", "resent-", "arc-", "x-mailroom-"} {
		if strings.HasPrefix(n, prefix) {
			return true
		}
	}
	return false
}

// reservedHeaders are ReservedHeader's whole names, lower-cased.
var reservedHeaders = map[string]struct{}{
	"from": {}, "to": {}, "cc": {}, "bcc": {}, "subject": {}, "date": {}, "message-id": {},
	"reply-to": {}, "sender": {}, "return-path": {}, "received": {}, "mime-version": {},
	"dkim-signature": {}, "authentication-results": {},
}

// Recipient is one envelope recipient of an email.
type Recipient struct {
	// Address is the bare address, its domain lower-cased: what RCPT TO names, and
	// how every module tells one recipient of an email from another.
	Address string `json:"address"`
	// Type is TypeTo, TypeCc or TypeBcc: the first list that names the address.
	Type string `json:"type"`
}

// RecipientState is where one recipient stands after a try.
type RecipientState struct {
	Recipient
	// Status is one of the Recipient* statuses other than RecipientPending.
	Status string `json:"status"`
	// Attempts is how many tries of the current replay carried the recipient (a
	// suppressed one is carried by none).
	Attempts int `json:"attempts"`
	// Detail is the server's last reply about the recipient, code included ("550
	// 5.1.1 No such user"), or why there was none (the suppression's reason, a
	// lost connection, a message that cannot be rendered).
	Detail string `json:"detail"`
}

// SendEmail asks the delivery module to try an email: one SMTP transaction for the
// recipients it carries. It travels on topics.send. Build one only with FirstTry,
// NextTry or Replayed: they keep the id scheme, the attempt counting and the
// recipients each try carries in this one place.
type SendEmail struct {
	Email
	// Recipients are the recipients this try carries: every recipient of the email
	// on the first try, those still deferred on a later try, those not delivered on
	// a replay. Delivery never sends to an address that is not in To, Cc or Bcc.
	Recipients []Recipient `json:"recipients"`
	// Settled are the recipients that earlier tries of this replay made final
	// (delivered, bounced, suppressed), so that whichever instance makes the last
	// try knows whether anyone got the email, and what a dead letter lists. Empty
	// on the first try of a replay.
	Settled []RecipientState `json:"settled,omitempty"`
	// Attempt is the 1-based try this message stands for, counted within its
	// replay; a redelivered message whose attempt was already recorded is
	// acknowledged without sending again.
	Attempt int `json:"attempt"`
	// Replay counts operator replays from the dead letters; each one starts a
	// fresh attempt count.
	Replay int `json:"replay"`
	// FirstAttemptAt is when the first try of this replay began; zero on that
	// first try. retry.max_age counts from it.
	FirstAttemptAt time.Time `json:"first_attempt_at,omitzero"`
}

// FirstTry is the SendEmail of an email's first try, carrying every recipient.
func FirstTry(e Email) SendEmail {
	return SendEmail{Email: e, Recipients: EnvelopeOf(e), Attempt: 1}
}

// NextTry is the SendEmail of the try after c, carrying the recipients c left
// deferred. settled are the recipients c (or an earlier try) made final, and
// firstAttemptAt is when the replay's first try began.
func (c SendEmail) NextTry(deferred []Recipient, settled []RecipientState, firstAttemptAt time.Time) SendEmail {
	next := c
	next.Recipients, next.Settled = deferred, settled
	next.Attempt, next.FirstAttemptAt = c.Attempt+1, firstAttemptAt
	return next
}

// Replayed is the SendEmail of an operator's replay number replay of the email c
// last tried, carrying the recipients that were not delivered. It starts a fresh
// attempt count and keeps the Message-ID.
func (c SendEmail) Replayed(replay int, undelivered []Recipient) SendEmail {
	return SendEmail{Email: c.Email, Recipients: undelivered, Attempt: 1, Replay: replay}
}

// MessageUUID is the id of the message carrying c: "{email_id}/r{replay}/a{attempt}",
// the same for every copy of one try, so that the outbox, the broker and the
// consumers see a redelivery as the same message.
func (c SendEmail) MessageUUID() string {
	return fmt.Sprintf("%s/r%d/a%d", c.EmailID, c.Replay, c.Attempt)
}

// AttemptedUUID is the id of the EmailAttempted reporting c's try, and
// DeadLetterUUID that of the DeadLetter it may leave: one each per try, so a try
// handled twice reports once.
func (c SendEmail) AttemptedUUID() string { return c.MessageUUID() + "/attempted" }

// DeadLetterUUID: see AttemptedUUID.
func (c SendEmail) DeadLetterUUID() string { return c.MessageUUID() + "/dead-letter" }

// SuppressedUUID is the id of the record on topics.suppressions that c's try
// writes for address, a recipient it found a hard bounce: one per try and
// address, so that a redelivered try finds it in the outbox.
func (c SendEmail) SuppressedUUID(address string) string {
	return c.MessageUUID() + "/suppressed/" + strings.ToLower(address)
}

// EnvelopeOf lists the envelope recipients of e: the bare addresses of To, Cc and
// Bcc in that order, domains lower-cased, each address once with the type of the
// first list naming it. It is the one definition of who an email's recipients are:
// the emails module lists them, delivery sends to them, and events name them so.
// An entry that does not parse as an address is listed as written; rendering then
// refuses it.
func EnvelopeOf(e Email) []Recipient {
	var out []Recipient
	seen := make(map[string]bool)
	for _, list := range []struct {
		typ   string
		addrs []string
	}{{TypeTo, e.To}, {TypeCc, e.Cc}, {TypeBcc, e.Bcc}} {
		for _, s := range list.addrs {
			addr := BareAddress(s)
			if !seen[addr] {
				seen[addr] = true
				out = append(out, Recipient{Address: addr, Type: list.typ})
			}
		}
	}
	return out
}

// BareAddress returns the address of s ("Name <a@B.example>" or "a@B.example") with
// its domain lower-cased ("a@b.example"): how recipients are compared and named.
// Text that does not parse as an address is returned as written.
func BareAddress(s string) string {
	a, err := mail.ParseAddress(s)
	if err != nil {
		return s
	}
	at := strings.LastIndexByte(a.Address, '@')
	if at < 0 {
		return a.Address
	}
	return a.Address[:at+1] + strings.ToLower(a.Address[at+1:])
}

// Event types published by delivery on topics.events, set in the message metadata
// under EventTypeKey.
const (
	// EventEmailAttempted carries an EmailAttempted: what one try decided.
	EventEmailAttempted = "delivery.EmailAttempted"
)

// EventTypeKey is the metadata key naming the type of a message on topics.events
// and topics.dead_letter.
const EventTypeKey = "event_type"

// EmailAttempted says what one try of an email decided for each recipient it
// carried, and where the email stands after it. A try that decided nothing (the
// mail server was unreachable or misconfigured, or shutdown interrupted it) is not
// reported: it did not count as a try.
type EmailAttempted struct {
	// EmailID is the id of the email that was tried.
	EmailID string `json:"email_id"`
	// Replay and Attempt name the try (see SendEmail). They also order an
	// email's reports, which Kafka may hand over out of order (after a partition
	// grow, a rebalance, a retry forwarded twice): the emails module never lets a
	// report of an earlier try (an earlier replay, or a lower attempt of the same
	// replay) replace what a later one reported. An event with Attempt 0 names no
	// try and is applied as it comes.
	Replay  int `json:"replay"`
	Attempt int `json:"attempt"`
	// Recipients are the recipients the try carried, and those it skipped as
	// suppressed, each with its new state.
	Recipients []RecipientState `json:"recipients"`
	// Status is StatusRetrying, StatusSent or StatusDead: where the email stands.
	Status string `json:"status"`
	// NextAttemptAt is when the deferred recipients are tried again; nil unless
	// Status is StatusRetrying.
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
	// Error is a failure of the try as a whole (the email cannot be rendered), ""
	// when each recipient got a verdict of its own.
	Error string `json:"error,omitempty"`
	// At is when the try ended.
	At time.Time `json:"at"`
	// Message is the message this try rendered and handed to the mail server, so
	// that the instance that accepted the email (which reads this event) can show
	// it at GET /api/emails/{id}/raw whichever instance sent it. It is nil when
	// the try rendered nothing (every recipient it carried is suppressed, or the
	// email cannot be rendered), and in events from versions before it existed:
	// the emails module then keeps the message it has, if any. Each try renders
	// the email anew (its Date header changes), so each rendering try carries
	// one. It makes the event as large as the message: attachments (at most 16
	// MiB decoded, limits.max_attachment_bytes; 10 MiB by default) travel in it
	// base64-encoded twice (in the message, then in JSON), about 18 MiB of event
	// for the default limit. The producer sends records up to 32 MiB
	// (broker.MaxMessageBytes), so a message over MaxCarriedMessageBytes is not
	// carried.
	Message *RenderedMessage `json:"message,omitempty"`
}

// MaxCarriedMessageBytes is the largest rendered message an EmailAttempted
// carries: 22 MiB, base64 about 29.3 MiB, which leaves the rest of the event room
// within one Kafka record (32 MiB, broker.MaxMessageBytes, checked before
// compression). A larger message (attachments near the 16 MiB that
// limits.max_attachment_bytes allows at most, with large bodies) is sent but not
// carried, and GET /api/emails/{id}/raw answers 404 for it; the default 10 MiB of
// attachments render to about 14 MiB and are always carried.
const MaxCarriedMessageBytes = 22 << 20

// RenderedMessage is a message as delivery handed it to the mail server.
type RenderedMessage struct {
	// MessageID is its Message-ID header value, angle brackets included; the same
	// on every try and replay of an email.
	MessageID string `json:"message_id"`
	// Raw is the message exactly as sent, CRLF line endings, ending in CRLF
	// (base64 in JSON, as encoding/json writes a []byte).
	Raw []byte `json:"raw"`
}

// EventDeadLetter is the event type (metadata EventTypeKey) of a DeadLetter on
// topics.dead_letter. A message there without it is poison: a payload delivery
// could not read, moved there by the router's poison queue with its own metadata.
const EventDeadLetter = "delivery.DeadLetter"

// Error classes of a DeadLetter: why the email is there.
const (
	// ClassPermanent is an email no recipient of which will ever get it as it is:
	// every one bounced or is suppressed, or the email cannot be rendered.
	ClassPermanent = "permanent"
	// ClassExhausted is an email with recipients still deferred when the retries ran
	// out (RecipientFailed).
	ClassExhausted = "transient_exhausted"
	// ClassPoison is a command that could not be read; nothing was sent.
	ClassPoison = "poison"
)

// DeadLetter is what delivery writes to topics.dead_letter, in the transaction that
// records the try that made it, when an email ends with a recipient whose retries ran
// out or with no recipient delivered. The deadletters module parks it; a replay
// sends Send again to the Undelivered recipients.
type DeadLetter struct {
	// Send is the try that ended the email: it carries the email, and a replay is
	// built from it (SendEmail.Replayed).
	Send SendEmail `json:"send"`
	// Undelivered are the email's recipients that were not delivered in this
	// replay (failed, bounced, suppressed), with their last state.
	Undelivered []RecipientState `json:"undelivered"`
	// Reason says in one line why the email is here, naming the recipients.
	Reason string `json:"reason"`
	// ErrorClass is ClassPermanent or ClassExhausted.
	ErrorClass string `json:"error_class"`
	// SMTPReply is the server's last reply among the undelivered recipients, ""
	// when it gave none.
	SMTPReply string `json:"smtp_reply,omitempty"`
	// FirstAttemptAt is when the replay's first try began; LastAttemptAt when the
	// last one ended.
	FirstAttemptAt time.Time `json:"first_attempt_at"`
	LastAttemptAt  time.Time `json:"last_attempt_at"`
	// OriginalTopic, OriginalPartition and OriginalOffset say where the last try's
	// command was read (partition and offset on Kafka only), and ConsumerGroup by
	// whom, in the spirit of Spring Kafka's kafka_dlt-* headers.
	OriginalTopic     string `json:"original_topic"`
	OriginalPartition *int64 `json:"original_partition,omitempty"`
	OriginalOffset    *int64 `json:"original_offset,omitempty"`
	ConsumerGroup     string `json:"consumer_group"`
}

// OriginInstanceKey is the metadata key (a Kafka record header) of an
// EmailAttempted or DeadLetter naming the instance that accepted the email (its
// Email.OriginInstance); absent when the email carries none. Every API instance
// reads every event, and only the one that accepted the email keeps it: the
// header lets the others drop an event without decoding it, rendered message and
// all.
const OriginInstanceKey = "origin_instance"

// RetryDueAtKey is the metadata key (a Kafka record header) of a SendEmail waiting
// in a retry topic (`<topics.send>.retry.<tier>`): when it is due, in RFC 3339 with
// nanoseconds. The delivery module's forwarder of the tier publishes it back to
// topics.send, without this key, once that time has come. A SendEmail on
// topics.send never carries it.
const RetryDueAtKey = "retry_due_at"
