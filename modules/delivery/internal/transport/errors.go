package transport

import (
	"context"
	"errors"
	"fmt"
	"net/textproto"
)

// SendError is the error every Transport returns from Send. It carries the
// classification the retry logic needs and, when the server answered, its reply so
// the email's timeline can show why it failed.
type SendError struct {
	// Permanent is true when the same message can never succeed: the server
	// answered 5xx, or the message itself cannot be sent (a bad envelope). Anything
	// else, including 4xx replies, timeouts, refused or reset connections and TLS
	// failures, is transient.
	Permanent bool
	// Code is the SMTP reply code of the failure, 0 when there was no reply.
	Code int
	// Reply is the server's reply, code included ("550 5.1.1 No such user"), or "".
	Reply string
	// Err says what failed, wrapped with the step: "rcpt bob@example.com: 550 ...".
	Err error
}

// Error returns "smtp: " and the wrapped error, e.g.
// "smtp: rcpt bob@example.com: 550 5.1.1 No such user".
func (e *SendError) Error() string {
	if e.Err == nil {
		return "smtp: send failed"
	}
	return "smtp: " + e.Err.Error()
}

// Unwrap returns Err, so errors.Is(err, context.Canceled) and the like work.
func (e *SendError) Unwrap() error { return e.Err }

// ReplyOf returns the server's reply carried by a *SendError in err's chain, code
// included ("550 5.1.1 No such user"), or "" when the server gave none (a refused
// connection, a timeout): dead letters show it apart from the whole error.
func ReplyOf(err error) string {
	var se *SendError
	if errors.As(err, &se) {
		return se.Reply
	}
	return ""
}

// IsPermanent reports whether err says that sending the same message again cannot
// succeed. It honours a *SendError anywhere in the chain, and otherwise any error
// with a `Permanent() bool` method, such as render.Error, so the caller can
// classify render and transport failures with one call. Any other error, nil
// included, is not permanent.
func IsPermanent(err error) bool {
	var se *SendError
	if errors.As(err, &se) {
		return se.Permanent
	}
	var p interface{ Permanent() bool }
	if errors.As(err, &p) {
		return p.Permanent()
	}
	return false
}

// classify turns an error from step into a *SendError. A reply from the server
// decides by its code; otherwise a cancelled ctx is named as the cause, since the
// I/O error it provoked ("use of closed network connection") says nothing.
func classify(ctx context.Context, step string, err error) *SendError {
	var se *SendError
	if errors.As(err, &se) {
		return se
	}
	var reply *textproto.Error
	if errors.As(err, &reply) {
		return &SendError{
			Permanent: reply.Code >= 500 && reply.Code <= 599,
			Code:      reply.Code,
			Reply:     fmt.Sprintf("%d %s", reply.Code, reply.Msg),
			Err:       fmt.Errorf("%s: %w", step, err),
		}
	}
	if ctx.Err() != nil {
		return &SendError{Err: fmt.Errorf("%s: %w", step, context.Cause(ctx))}
	}
	return &SendError{Err: fmt.Errorf("%s: %w", step, err)}
}

// permanent builds the error for a message that cannot be sent as it is.
func permanent(format string, args ...any) *SendError {
	return &SendError{Permanent: true, Err: fmt.Errorf(format, args...)}
}

// transient builds the error for a failure that a later try may not meet.
func transient(format string, args ...any) *SendError {
	return &SendError{Err: fmt.Errorf(format, args...)}
}
