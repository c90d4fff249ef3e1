// Package transport hands rendered messages to a mail server. The delivery module
// renders once, stores the bytes, and sends exactly those bytes, so what the API
// shows as the raw message is what the server received.
//
// Mail is not messages: one transaction carries every recipient still pending, and
// each recipient has its own fate (Result). A failure of the transaction as a whole
// is a *ServerError saying whose problem it is: the server's (KindOutage), the
// configuration's (KindConfiguration, naming the key to fix) or the message's
// (KindMessage).
package transport

import (
	"context"
	"strings"

	"github.com/mailroom/mailroom/modules/delivery/internal/render"
)

// Transport is what the delivery module sends through; SMTP sends for real and a
// capture transport keeps messages in the process for development and tests.
// Every method is safe for concurrent use.
type Transport interface {
	// Send runs one mail transaction handing msg.Raw, byte for byte, to the server,
	// with msg.EnvelopeFrom as the envelope sender and every address of
	// msg.Recipients (the recipients still pending) as envelope recipients. It
	// returns each recipient's outcome, in msg.Recipients' order, or an error when
	// no recipient's fate was decided: a *ServerError (see Kind), or an error
	// wrapping ctx's error when ctx was cancelled (the caller is shutting down;
	// errors.Is(err, context.Canceled) tells). Cancelling ctx aborts promptly,
	// except that once the whole message is written the server's verdict is
	// awaited anyway (see SMTP.Send).
	Send(ctx context.Context, msg render.Message) (Result, error)

	// Probe connects and runs the session set-up as configured (greeting, EHLO,
	// STARTTLS, AUTH), then MAIL FROM:<> (a server requiring a login says so only
	// there) and QUIT, which sends nothing. It returns nil when the server would
	// take mail, or the *ServerError a Send would meet before any recipient (or
	// the cancellation error): `mailroom smtp-check`, the start-up check and the
	// outage prober use it.
	Probe(ctx context.Context) error

	// Close releases what the transport holds (idle connections). Sends still in
	// flight finish; Send and Probe must not be called after Close.
	Close() error
}

// Verdict is one recipient's fate in a transaction.
type Verdict int

// The verdicts. The zero Verdict is none of them: an outcome always has one.
const (
	// Delivered: the server accepted the message for the recipient (250 to the end
	// of data). Its reply is in RecipientResult.Detail.
	Delivered Verdict = iota + 1
	// Deferred: the recipient was refused for now (a 4xx reply), or the connection
	// was lost before the server decided. A later transaction may succeed, with the
	// same message and Message-ID.
	Deferred
	// Bounced: the server refused the recipient for good (a 5xx reply). Trying
	// again cannot succeed.
	Bounced
)

// String returns "delivered", "deferred" or "bounced".
func (v Verdict) String() string {
	switch v {
	case Delivered:
		return "delivered"
	case Deferred:
		return "deferred"
	case Bounced:
		return "bounced"
	default:
		return "unknown"
	}
}

// Stages of a transaction, the values of RecipientResult.Stage: which reply
// decided the recipient's fate.
const (
	// StageMail is the reply to MAIL FROM, which applies to every recipient.
	StageMail = "mail"
	// StageRcpt is the reply to the recipient's own RCPT TO (or the connection lost
	// while the recipients were being given).
	StageRcpt = "rcpt"
	// StageData is the reply to the DATA command or to the end of data, which
	// applies to every recipient accepted at RCPT TO (or the connection lost
	// during DATA).
	StageData = "data"
)

// RecipientResult is one recipient's outcome of a transaction.
type RecipientResult struct {
	// Address is the recipient, as in render.Message.Recipients.
	Address string
	// Verdict is the recipient's fate.
	Verdict Verdict
	// Stage is the step that decided it: StageMail, StageRcpt or StageData.
	Stage string
	// Code is the SMTP reply code, 0 when the server gave none (connection lost).
	Code int
	// Enhanced is the reply's enhanced status code ("5.1.1"), "" when it has none.
	Enhanced string
	// Detail is the server's reply on one line, code included ("550 5.1.1 No such
	// user"), or what happened when it gave none ("connection lost at RCPT TO:
	// EOF"). It is the remote server's text: treat it as untrusted.
	Detail string
}

// Result is the outcome of one transaction for each of its recipients.
type Result struct {
	// Recipients has one entry per address of render.Message.Recipients, in the
	// same order, each with a Verdict.
	Recipients []RecipientResult
}

// IsMailboxHardBounce reports whether r says the mailbox itself does not exist or
// cannot take mail, so that sending to the address again is pointless and it
// belongs on the suppression list. The rule: r was bounced at RCPT TO, and its
// enhanced status code is of the 5.1.x "addressing" family (5.1.1 no such user,
// 5.1.2 bad domain, 5.1.3 bad address syntax, 5.1.6 mailbox moved, ...), or, when
// the reply has no enhanced code, its code is 550 (mailbox unavailable), 551 (user
// not local) or 553 (mailbox name not allowed). A refusal for policy, spam or
// size (5.7.x, 5.2.x, 554 ...), a refusal of the sender (StageMail) or of the
// message (StageData) says nothing about the mailbox, and is not a hard bounce.
func IsMailboxHardBounce(r RecipientResult) bool {
	if r.Verdict != Bounced || r.Stage != StageRcpt {
		return false
	}
	if r.Enhanced != "" {
		return strings.HasPrefix(r.Enhanced, "5.1.")
	}
	switch r.Code {
	case 550, 551, 553:
		return true
	default:
		return false
	}
}
