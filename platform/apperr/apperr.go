// Package apperr is the one error type that crosses from use cases to the HTTP API.
// A use case says what went wrong (a Code) and the HTTP layer maps codes to statuses
// in one table, so no handler invents its own error shape.
package apperr

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Code classifies an error for the client. Codes are part of the API.
type Code string

// The codes the API answers with.
const (
	// CodeInvalidField (400) is a value that breaks a rule; Error.Field names it
	// when one is at fault.
	CodeInvalidField Code = "invalid_field"
	// CodeInvalidJSON (400) is a body that is not one well-formed JSON object.
	CodeInvalidJSON Code = "invalid_json"
	// CodeNotFound (404) is a missing route or resource, or one the caller may not see.
	CodeNotFound Code = "not_found"
	// CodeConflict (409) is a request at odds with the stored state, such as an
	// Idempotency-Key reused with another body.
	CodeConflict Code = "conflict"
	// CodeUnauthorized (401) is a missing or unknown API key.
	CodeUnauthorized Code = "unauthorized"
	// CodeForbidden (403) is a key whose scope does not allow the route.
	CodeForbidden Code = "forbidden"
	// CodeTooLarge (413) is a body over http.max_body_bytes.
	CodeTooLarge Code = "body_too_large"
	// CodeUnsupportedMedia (415) is a Content-Type, charset or Content-Encoding
	// other than JSON in UTF-8, unencoded.
	CodeUnsupportedMedia Code = "unsupported_media_type"
	// CodeRateLimited (429) is a key over auth.rate_limit.
	CodeRateLimited Code = "rate_limited"
	// CodeQuotaExceeded (429) is a key over its daily quota of emails or bytes
	// (auth.quota_emails_per_day, auth.quota_bytes_per_day); the message says when
	// the quota resets and Error.RetryAfter how long until then.
	CodeQuotaExceeded Code = "quota_exceeded"
	// CodeInsufficientStorage (507) is new data refused because the database's disk
	// is under its reserve (db.min_free_bytes); it passes once space is freed.
	CodeInsufficientStorage Code = "insufficient_storage"
	// CodeUnavailable (503) is a dependency that cannot serve now; retrying later
	// may succeed.
	CodeUnavailable Code = "unavailable"
	// CodeMethodNotAllowed (405) is a known path asked with the wrong method.
	CodeMethodNotAllowed Code = "method_not_allowed"
	// CodeNotImplemented (501) is a method Mailroom does not know at all.
	CodeNotImplemented Code = "not_implemented"
	// CodeInternal (500) is a bug or an unexpected error; its cause is logged only.
	CodeInternal Code = "internal"
)

// Error is an error with a client-facing code, message and, for validation errors,
// the field at fault. Err keeps the cause for logs; it is never shown to clients.
type Error struct {
	// Code picks the HTTP status and the body's code.
	Code Code
	// Message is shown to the client as is, so it must not leak internals.
	Message string
	// Field is the path of the offending field or header ("to[0]",
	// "Idempotency-Key"); "" when no one field is at fault.
	Field string
	// Err is the cause, for logs only; nil when there is none.
	Err error
	// RetryAfter, when positive, is sent as Retry-After (whole seconds, rounded up):
	// how long until the request may succeed.
	RetryAfter time.Duration
}

// Error returns "code: message", and ": cause" when Err is set, for logs; clients
// see only Code, Message and Field.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Unwrap returns Err, so errors.Is and errors.As see the cause (a context
// cancellation, a database error) behind the client-facing error.
func (e *Error) Unwrap() error { return e.Err }

// New builds an Error with a formatted message.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid reports a bad field; the message starts with the field's path, as in
// "to[0]: not an email address".
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: CodeInvalidField, Field: field, Message: field + ": " + fmt.Sprintf(format, args...)}
}

// Under returns err as the error of one element of a list, at path ("[3]"): an
// *Error in err's chain comes back as a copy whose Field is path joined with its
// own ("[3].to[0]", or "[3]" when it named none) and whose message, which starts
// with the field when Invalid made it, names the new path instead. Any other error
// is returned as it is. This is the one place an element's errors are prefixed, so
// that a batch names the field of the item at fault just as a single request does.
func Under(err error, path string) error {
	e, ok := As(err)
	if !ok {
		return err
	}
	c := *e
	switch {
	case e.Field == "":
		c.Field, c.Message = path, path+": "+e.Message
	default:
		c.Field = path + "." + e.Field
		if rest, ok := strings.CutPrefix(e.Message, e.Field+": "); ok {
			c.Message = c.Field + ": " + rest
		} else {
			c.Message = path + ": " + e.Message
		}
	}
	return &c
}

// NotFound reports a missing resource. The id comes from the client and is echoed
// capped (Clip): a 5000-character path segment should not come back whole.
func NotFound(what, id string) *Error {
	return &Error{Code: CodeNotFound, Message: fmt.Sprintf("%s %q not found", what, Clip(id))}
}

// MaxEchoed is how many characters of a client's value a message repeats.
const MaxEchoed = 64

// Clip returns s cut to its first MaxEchoed characters, with "…" when it was longer,
// for repeating a client's value in a message without repeating all of it. It counts
// characters, not bytes, so the cut never splits one.
func Clip(s string) string {
	n := 0
	for i := range s {
		if n == MaxEchoed {
			return s[:i] + "…"
		}
		n++
	}
	return s
}

// Unavailable reports that a dependency (the database, the broker) cannot serve now;
// cause is logged, never shown.
func Unavailable(message string, cause error) *Error {
	return &Error{Code: CodeUnavailable, Message: message, Err: cause}
}

// As returns the *Error in err's chain, if any.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
