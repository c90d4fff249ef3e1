package render

import (
	"fmt"
	"io"
	"mime"
	"net/mail"
	"strings"
	"unicode"

	"github.com/mailroom/mailroom/modules/delivery/contract"
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
	name, reason := decodeName(parsed.Name)
	if reason != "" {
		return nil, invalid(field, "display name "+reason)
	}
	addr, reason := plainAddress(parsed.Address)
	if reason != "" {
		return nil, invalid(field, reason)
	}
	return &mail.Address{Name: name, Address: addr}, nil
}

// decodeName returns a display name as net/mail parsed it with the encoded words
// it left inside a quoted string decoded too, as mail readers decode them, so that
// the name is written encoded (mail.Address.String) and read as it is checked here;
// on failure it returns the reason instead. Written verbatim,
// `"=?utf-8?q?=0D=0ABcc:_x@y?=" <a@x.com>` would show a reader a line break and a
// Bcc header. Both forms may hold no CR, LF, NUL or other control character (a base64
// word ignores the line breaks inside it), and the decoded name no "=?": an encoded
// word that does not decode, or text a reader would decode a second time. The
// emails module stores names decoded by the same rule; this is defence in depth.
func decodeName(name string) (string, string) {
	decoded := name
	if strings.Contains(name, "=?") {
		var err error
		if decoded, err = nameDecoder.DecodeHeader(name); err != nil {
			return "", "has an encoded word in a charset other than UTF-8, ISO-8859-1 or US-ASCII"
		}
	}
	for _, n := range []string{name, decoded} {
		if reason := headerValueProblem(n); reason != "" {
			return "", reason + " once decoded"
		}
		if strings.ContainsFunc(n, isLineControl) {
			return "", "contains a control character or line separator once decoded"
		}
	}
	if strings.Contains(decoded, "=?") {
		return "", `contains "=?" once decoded`
	}
	return decoded, ""
}

// nameDecoder decodes encoded words in the charsets the mime package knows (UTF-8,
// ISO-8859-1 and US-ASCII, as net/mail does) and fails on any other.
var nameDecoder = mime.WordDecoder{CharsetReader: func(charset string, _ io.Reader) (io.Reader, error) {
	return nil, fmt.Errorf("charset %q is not decoded", charset)
}}

// isLineControl reports whether r may not be in a display name: a control character
// other than TAB (C0, DEL, C1 such as U+0085 NEXT LINE), or U+2028 LINE SEPARATOR or
// U+2029 PARAGRAPH SEPARATOR, which break a header line or hide in it.
func isLineControl(r rune) bool {
	return r != '\t' && unicode.IsControl(r) || r == '\u2028' || r == '\u2029'
}

// plainAddress checks that addr is local@domain with a dot-atom local part and a
// hostname domain, and returns it with the domain lower-cased; on failure it returns
// the reason instead. The rule is the contract's (contract.PlainAddress), which the
// suppression list applies to operators' addresses too.
func plainAddress(addr string) (string, string) { return contract.PlainAddress(addr) }

// isDotAtom reports whether s is RFC 5322 dot-atom-text (contract.IsDotAtom).
func isDotAtom(s string) bool { return contract.IsDotAtom(s) }

// IsHostname reports whether s is an ASCII host name (contract.IsHostname): the one
// rule of host names for addresses' domains and for the name Mailroom gives itself
// in EHLO.
func IsHostname(s string) bool { return contract.IsHostname(s) }

// domainOf returns the part of a plain address after its "@".
func domainOf(addr string) string {
	return addr[strings.LastIndexByte(addr, '@')+1:]
}
