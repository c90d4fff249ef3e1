package broker

import (
	"errors"

	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
)

// permanentError marks an error that no retry can fix: the message goes to the
// dead-letter topic after this one try.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as one that retrying cannot fix (a 5xx SMTP reply, an
// undecodable payload, a panic). The router's poison-queue middleware sends the
// message to the dead-letter topic instead of retrying it.
func Permanent(err error) error {
	if err == nil || IsPermanent(err) {
		return err
	}
	return permanentError{err: err}
}

// IsPermanent reports whether err, or any error it wraps, was marked Permanent.
// Panics recovered by the router count as permanent: the same payload would panic again.
func IsPermanent(err error) bool {
	var p permanentError
	if errors.As(err, &p) {
		return true
	}
	var panicked middleware.RecoveredPanicError
	return errors.As(err, &panicked)
}
