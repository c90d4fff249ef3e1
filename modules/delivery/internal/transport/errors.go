package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"strings"
)

// Kind says whose problem a failed transaction is, which decides what the caller
// does with it.
type Kind int

// The kinds of *ServerError. The zero Kind is none of them.
const (
	// KindOutage: the mail server cannot be reached or will not work for now
	// (connection refused or timed out, a TLS handshake failure that is not a
	// certificate verification failure, a 4xx greeting, 421 at any step, a
	// connection lost before any RCPT TO reply). It is not the email's fault: the
	// caller burns no attempt, pauses delivery and probes until the server answers.
	KindOutage Kind = iota + 1
	// KindConfiguration: Mailroom's settings do not fit the server (STARTTLS
	// required and not offered, a certificate that does not verify, credentials
	// refused or missing, a refused EHLO name ...). ServerError.Key names the
	// setting to fix. The caller pauses delivery as for an outage, and logs it once.
	KindConfiguration
	// KindMessage: the message can never be sent as it is (an envelope address that
	// would inject SMTP, bytes the DATA encoding would change). No server was
	// contacted.
	KindMessage
)

// String returns "outage", "configuration" or "message".
func (k Kind) String() string {
	switch k {
	case KindOutage:
		return "outage"
	case KindConfiguration:
		return "configuration"
	case KindMessage:
		return "message"
	default:
		return "unknown"
	}
}

// ServerError is a failure of a transaction, or of a probe, as a whole: no
// recipient's fate was decided, and every recipient is to be tried again once the
// cause is gone (or, for KindMessage, never). Send and Probe return it.
type ServerError struct {
	// Kind says whose problem it is.
	Kind Kind
	// Key is, for KindConfiguration, the setting to fix: "smtp.tls",
	// "smtp.username", "smtp.password", "smtp.host", "smtp.helo_name" (or
	// "smtp.port", "smtp.timeout" for a config that Validate refuses). "" otherwise.
	Key string
	// Step is where the session failed: "connect", "tls handshake", "greeting",
	// "ehlo", "starttls", "auth", "rset", "mail from", "rcpt" or "data"; "" for
	// KindMessage and for Validate's errors.
	Step string
	// Addr is the server's "host:port", "" when no server was involved.
	Addr string
	// Code is the server's reply code, 0 when the failure was not a reply.
	Code int
	// Reply is the server's reply on one line, code included ("535 5.7.8
	// Authentication failed"), or "".
	Reply string
	// Err says what happened, in words a person can act on, and wraps the cause
	// (the *textproto.Error of a reply, a net.Error, a *tls.CertificateVerificationError
	// ...) for errors.Is and errors.As.
	Err error
}

// Error returns one line a person can act on, starting with the key to fix for a
// configuration error and with "outage: " or "message: " otherwise, e.g.
//
//	smtp.tls: 127.0.0.1:2525 does not offer STARTTLS (set smtp.tls to none or tls, or enable STARTTLS on the server)
//	smtp.password: 127.0.0.1:2525 refused the username and password: 535 5.7.8 Authentication failed
//	outage: connect 127.0.0.1:2525: connection refused
func (e *ServerError) Error() string {
	prefix := e.Kind.String()
	if e.Kind == KindConfiguration && e.Key != "" {
		prefix = e.Key
	}
	var text string
	switch {
	case e.Err != nil:
		text = e.Err.Error()
	case e.Reply != "":
		text = strings.TrimSpace(e.Step + " " + e.Addr + ": " + e.Reply)
	default:
		text = strings.TrimSpace(e.Step + " " + e.Addr + " failed")
	}
	return oneLine(prefix + ": " + text)
}

// Unwrap returns Err.
func (e *ServerError) Unwrap() error { return e.Err }

// AsServerError returns the *ServerError in err's chain, if any.
func AsServerError(err error) (*ServerError, bool) {
	var se *ServerError
	ok := errors.As(err, &se)
	return se, ok
}

// IsOutage reports whether err is a *ServerError of KindOutage: the server's
// problem, to wait out without burning an attempt.
func IsOutage(err error) bool {
	se, ok := AsServerError(err)
	return ok && se.Kind == KindOutage
}

// ErrClosed is the cause of a Send or Probe after Close.
var ErrClosed = errors.New("transport closed")

// outageError builds the KindOutage error for a failure at step: a reply (421, a
// 4xx greeting ...) or an I/O error.
func outageError(addr, step string, err error) *ServerError {
	se := &ServerError{Kind: KindOutage, Step: step, Addr: addr}
	if r := replyOf(err); r != nil {
		se.Code, se.Reply = r.Code, replyLine(r)
		se.Err = fmt.Errorf("%s %s: %w", step, addr, said(r))
		return se
	}
	se.Err = fmt.Errorf("%s %s: %w", step, addr, shortCause(err))
	return se
}

// configError builds the KindConfiguration error naming key. format and args say
// what is wrong and how to fix it; reply, if not nil, is the server's reply that
// showed it.
func configError(key, addr, step string, reply *textproto.Error, format string, args ...any) *ServerError {
	se := &ServerError{Kind: KindConfiguration, Key: key, Step: step, Addr: addr, Err: fmt.Errorf(format, args...)}
	if reply != nil {
		se.Code, se.Reply = reply.Code, replyLine(reply)
	}
	return se
}

// messageError builds the KindMessage error for a message that cannot be sent as
// it is.
func messageError(format string, args ...any) *ServerError {
	return &ServerError{Kind: KindMessage, Err: fmt.Errorf(format, args...)}
}

// canceledError is the error of a send or probe abandoned because ctx is done: none
// of the kinds, and errors.Is(err, context.Canceled) (or DeadlineExceeded) holds,
// along with errors.Is for a cancellation cause.
func canceledError(ctx context.Context, step, addr string) error {
	err, cause := ctx.Err(), context.Cause(ctx)
	if cause != nil && cause != err {
		return fmt.Errorf("smtp: %s %s abandoned: %w (%w)", step, addr, err, cause)
	}
	return fmt.Errorf("smtp: %s %s abandoned: %w", step, addr, err)
}

// replyOf returns the server's reply that err carries, or nil when err is not a
// reply (an I/O error, a timeout, a TLS failure).
func replyOf(err error) *textproto.Error {
	var r *textproto.Error
	if errors.As(err, &r) {
		return r
	}
	return nil
}

// replyError shows a server's reply as the server wrote it, on one line
// (textproto.Error quotes the text), and unwraps to it.
type replyError struct{ reply *textproto.Error }

func (e replyError) Error() string { return replyLine(e.reply) }
func (e replyError) Unwrap() error { return e.reply }

// said wraps r for a message: "535 5.7.8 Authentication failed".
func said(r *textproto.Error) error { return replyError{r} }

// replyLine returns r on one line, code included: "550 5.1.1 No such user".
func replyLine(r *textproto.Error) string {
	return oneLine(fmt.Sprintf("%d %s", r.Code, r.Msg))
}

// shortCause drops the "read tcp 127.0.0.1:4242->127.0.0.1:25: " that Go's
// network errors carry, so a message says "connection refused" or "i/o timeout"
// once; what remains still answers errors.Is (syscall.ECONNREFUSED,
// os.ErrDeadlineExceeded) and net.Error's Timeout.
func shortCause(err error) error {
	var op *net.OpError
	if !errors.As(err, &op) || op != err || op.Err == nil {
		return err
	}
	var sys *os.SyscallError
	if errors.As(op.Err, &sys) && sys == op.Err {
		return sys.Err
	}
	return op.Err
}

// oneLine replaces every control character (line breaks from a multi-line reply
// included) with a space, so a remote server's text cannot break a log line.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
