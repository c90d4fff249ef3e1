package render

import (
	"encoding/base64"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/mailroom/mailroom/modules/delivery/contract"
)

// headerValueProblem says why s cannot go into a header, or returns "". CR and LF
// would start a new header line (golang/go#21159) and NUL is not allowed anywhere in
// a message; the header charset is UTF-8, so invalid UTF-8 is refused too.
func headerValueProblem(s string) string {
	if strings.ContainsAny(s, "\r\n\x00") {
		return "contains CR, LF or NUL"
	}
	if !utf8.ValidString(s) {
		return "not valid UTF-8"
	}
	return ""
}

// maxPlainWord is the longest space-free run of a plain ASCII subject written as is:
// "Subject: " plus the word then still fits the recommended 78-character line.
const maxPlainWord = 66

// subjectValue returns the subject to hand to go-mail's SetGenHeader. go-mail
// (through the mime package) encodes a value only when it holds a byte outside
// printable ASCII and tab, and writes everything else verbatim; some such subjects
// would then not arrive unchanged, so those are encoded here first:
//   - text that looks like an encoded word ("=?...") would be decoded by the reader;
//   - leading, trailing or repeated white space and tabs are trimmed or collapsed by
//     header unfolding;
//   - a word too long to fold makes an over-long line.
//
// An encoded word is plain ASCII, so go-mail then writes it unchanged.
func subjectValue(s string) string {
	if mimeEncodes(s) {
		return s // go-mail Q-encodes the whole value
	}
	if strings.Contains(s, "=?") || strings.Contains(s, "  ") || strings.Contains(s, "\t") ||
		strings.HasPrefix(s, " ") || strings.HasSuffix(s, " ") {
		return encodeWords(s)
	}
	for word := range strings.SplitSeq(s, " ") {
		if len(word) > maxPlainWord {
			return encodeWords(s)
		}
	}
	return s
}

// mimeEncodes reports whether mime.WordEncoder.Encode, which go-mail applies to
// header values, would encode s: it does when s holds a byte other than tab
// outside printable ASCII.
func mimeEncodes(s string) bool {
	for i := 0; i < len(s); i++ {
		if (s[i] < ' ' && s[i] != '\t') || s[i] > '~' {
			return true
		}
	}
	return false
}

// encodedWordPayload is the number of bytes base64-encoded per RFC 2047 encoded
// word: "=?UTF-8?B?" + 60 characters + "?=" is 72, under the 75-character limit.
const encodedWordPayload = 45

// encodeWords encodes all of s as RFC 2047 "B" encoded words split on rune
// boundaries and separated by spaces, where a header may be folded. The mime
// package's encoders leave text that needs no encoding unchanged, which is exactly
// what this must not do.
func encodeWords(s string) string {
	var b strings.Builder
	for len(s) > 0 {
		n := min(len(s), encodedWordPayload)
		for n < len(s) && n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		if n == 0 { // not UTF-8 after all: split anywhere rather than loop
			n = min(len(s), encodedWordPayload)
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("=?UTF-8?B?")
		b.WriteString(base64.StdEncoding.EncodeToString([]byte(s[:n])))
		b.WriteString("?=")
		s = s[n:]
	}
	return b.String()
}

// checkHeaders refuses a custom header that is not an RFC 5322 field name, that
// contract.ReservedHeader keeps for the message's own fields and mail servers, or
// whose value cannot go into a header (headerValueProblem).
func checkHeaders(headers map[string]string) error {
	names := slices.Sorted(maps.Keys(headers)) // the same command fails the same way
	for _, name := range names {
		value := headers[name]
		if !fieldName(name) {
			return invalid("headers", "a name that is not a header field name")
		}
		if contract.ReservedHeader(name) {
			return invalid("headers."+name, "reserved for the message's own fields")
		}
		if reason := headerValueProblem(value); reason != "" {
			return invalid("headers."+name, reason)
		}
	}
	return nil
}

// fieldName reports whether s is an RFC 5322 field name: printable ASCII but ':'.
func fieldName(s string) bool {
	if s == "" || len(s) > 76 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 || s[i] == ':' {
			return false
		}
	}
	return true
}
