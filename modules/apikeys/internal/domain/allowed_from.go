package domain

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// MaxAllowedFrom bounds how many senders one key may be restricted to.
const MaxAllowedFrom = 50

// senderDomain is a hostname as a From address may end with: labels of letters,
// digits and inner hyphens, separated by dots (one label allowed, as in
// mailroom@localhost).
var senderDomain = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)

// senderLocal is the dot-atom local part the emails module accepts in a From.
var senderLocal = regexp.MustCompile(`^[a-z0-9!#$%&'*+/=?^_` + "`" + `{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_` + "`" + `{|}~-]+)*$`)

// CheckAllowedFrom validates the senders a key is restricted to and returns them in
// the form auth.Principal.MaySendAs matches against: lower case, repeats dropped,
// in first-seen order; nil when there are none (the key may send as anyone). An
// entry with an "@" is an address (local@domain, no display name), any other a
// domain. The error names the index of the first bad entry.
func CheckAllowedFrom(entries []string) ([]string, error) {
	if len(entries) > MaxAllowedFrom {
		return nil, fmt.Errorf("%d senders; at most %d", len(entries), MaxAllowedFrom)
	}
	var out []string
	for i, e := range entries {
		norm := strings.ToLower(e)
		if err := checkSender(norm); err != nil {
			return nil, AllowedFromError{Index: i, Err: err}
		}
		if !slices.Contains(out, norm) {
			out = append(out, norm)
		}
	}
	return out, nil
}

// AllowedFromError is a bad entry of an allowed-from list, by index.
type AllowedFromError struct {
	Index int
	Err   error
}

func (e AllowedFromError) Error() string { return e.Err.Error() }

func checkSender(s string) error {
	local, domain, isAddress := strings.Cut(s, "@")
	if !isAddress {
		domain = s
	}
	if len(s) > 254 {
		return fmt.Errorf("longer than 254 characters")
	}
	if isAddress && (local == "" || len(local) > 64 || !senderLocal.MatchString(local)) {
		return fmt.Errorf("must be a domain (example.com) or a plain address (team@example.com)")
	}
	if !senderDomain.MatchString(domain) {
		return fmt.Errorf("must be a domain (example.com) or a plain address (team@example.com)")
	}
	return nil
}
