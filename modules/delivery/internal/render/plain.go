package render

// PlainAddress checks that s is a bare address of plain local@domain syntax, as an
// envelope recipient must be, and returns it with its domain lower-cased. The error
// names field. It is how the suppression list takes addresses from operators.
func PlainAddress(field, s string) (string, error) {
	if reason := headerValueProblem(s); reason != "" {
		return "", invalid(field, reason)
	}
	addr, reason := plainAddress(s)
	if reason != "" {
		return "", invalid(field, reason)
	}
	return addr, nil
}
