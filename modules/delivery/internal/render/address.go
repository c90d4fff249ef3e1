package render

import (
	"net/mail"
	"strings"
)

// Limits from RFC 5321 section 4.5.3.1.
const (
	maxLocalLen   = 64
	maxDomainLen  = 253
	maxAddressLen = 254
	maxLabelLen   = 63
)

// parseAddress parses one address as a client wrote it ("a@b" or "Name <a@b>") and
// returns it with its domain lower-cased. The bare address must be plain
// local@domain syntax: net/mail accepts quoted local parts such as
// `"a@x> ORCPT=b@y"@z` and drops the quotes, which written into RCPT TO would
// smuggle SMTP parameters (go-mail #495), so only a dot-atom local part and a
// hostname domain get through.
func parseAddress(field, s string) (*mail.Address, error) {
	if reason := headerValueProblem(s); reason != "" {
		return nil, invalid(field, reason)
	}
	if strings.TrimSpace(s) == "" {
		return nil, invalid(field, "empty address")
	}
	parsed, err := mail.ParseAddress(s)
	if err != nil {
		return nil, invalid(field, "not an email address")
	}
	// The display name may hold encoded words that decode to anything.
	if reason := headerValueProblem(parsed.Name); reason != "" {
		return nil, invalid(field, "display name "+reason)
	}
	addr, reason := plainAddress(parsed.Address)
	if reason != "" {
		return nil, invalid(field, reason)
	}
	return &mail.Address{Name: parsed.Name, Address: addr}, nil
}

// plainAddress checks that addr is local@domain with a dot-atom local part and a
// hostname domain, and returns it with the domain lower-cased; on failure it returns
// the reason instead.
func plainAddress(addr string) (string, string) {
	if len(addr) > maxAddressLen {
		return "", "address longer than 254 characters"
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return "", "not an email address"
	}
	local, domain := addr[:at], addr[at+1:]
	if len(local) > maxLocalLen || !isDotAtom(local) {
		return "", "local part is not plain dot-atom syntax"
	}
	if !isHostname(domain) {
		return "", "domain is not a plain host name"
	}
	return local + "@" + strings.ToLower(domain), ""
}

// isDotAtom reports whether s is RFC 5322 dot-atom-text: atext runs joined by
// single dots. It holds no space, quote, angle bracket, "@" or control character.
func isDotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '.' && !isAtext(s[i]) {
			return false
		}
	}
	return true
}

// isAtext reports whether b is an RFC 5322 atext character (ASCII only: Mailroom
// does not speak SMTPUTF8).
func isAtext(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", b) >= 0
}

// isHostname reports whether s is an ASCII host name: dot-separated labels of
// letters, digits and inner hyphens. Address literals ([1.2.3.4]) are refused.
func isHostname(s string) bool {
	if s == "" || len(s) > maxDomainLen {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > maxLabelLen || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// domainOf returns the part of a plain address after its "@".
func domainOf(addr string) string {
	return addr[strings.LastIndexByte(addr, '@')+1:]
}
