package contract

import "strings"

// Limits from RFC 5321 section 4.5.3.1.
const (
	maxLocalLen   = 64
	maxDomainLen  = 253
	maxAddressLen = 254
	maxLabelLen   = 63
)

// PlainAddress checks that addr is local@domain with a dot-atom local part and a
// host name domain, as an envelope recipient must be, and returns it with the domain
// lower-cased; on failure it returns "" and the reason instead ("not an email
// address", "local part is not plain dot-atom syntax", ...). It is the one rule of
// the addresses delivery sends to (RCPT TO): net/mail accepts quoted local parts
// such as `"a@x> ORCPT=b@y"@z` and drops the quotes, which written into RCPT TO
// would smuggle SMTP parameters (go-mail #495), so only a dot-atom local part and a
// host name get through. The suppression list takes operators' addresses by it.
func PlainAddress(addr string) (string, string) {
	if len(addr) > maxAddressLen {
		return "", "address longer than 254 characters"
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return "", "not an email address"
	}
	local, domain := addr[:at], addr[at+1:]
	if len(local) > maxLocalLen || !IsDotAtom(local) {
		return "", "local part is not plain dot-atom syntax"
	}
	if !IsHostname(domain) {
		return "", "domain is not a plain host name"
	}
	return local + "@" + strings.ToLower(domain), ""
}

// IsDotAtom reports whether s is RFC 5322 dot-atom-text: atext runs joined by
// single dots. It holds no space, quote, angle bracket, "@" or control character.
func IsDotAtom(s string) bool {
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

// IsHostname reports whether s is an ASCII host name: dot-separated labels of
// letters, digits and inner hyphens, at most 253 characters. Address literals
// ([1.2.3.4]) are refused.
func IsHostname(s string) bool {
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
