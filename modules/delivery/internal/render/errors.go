package render

import "errors"

// ErrInvalid matches, through errors.Is, every error Render returns because of the
// email itself. It lets a caller tell "this email can never be rendered" apart from
// anything else without knowing the Error type.
var ErrInvalid = errors.New("invalid email")

// Error reports a field of the email that cannot be rendered safely. Rendering is a
// pure function of its input, so the same email fails the same way on every retry:
// the error is permanent and the email should be dead-lettered with this reason.
type Error struct {
	// Field names the offending input in the API's terms, e.g. "to[1]" or "subject".
	Field string
	// Reason says what is wrong with it, without echoing the value.
	Reason string
}

// Error returns "render: <field>: <reason>".
func (e *Error) Error() string {
	return "render: " + e.Field + ": " + e.Reason
}

// Is makes errors.Is(err, ErrInvalid) true for every *Error.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

func invalid(field, reason string) error {
	return &Error{Field: field, Reason: reason}
}
