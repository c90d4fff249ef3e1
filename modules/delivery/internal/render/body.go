package render

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"unicode/utf8"

	gomail "github.com/wneessen/go-mail"
)

// canonicalNewlines turns every line ending (CRLF, lone LF, lone CR) into CRLF, the
// canonical form of text/* content (RFC 2046 section 4.1.1). Quoted-printable would
// do this anyway and base64 would not, so doing it first makes both encodings decode
// to the same text.
func canonicalNewlines(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.ReplaceAll(s, "\n", "\r\n")
}

// bodyEncoding picks the transfer encoding of a body part: quoted-printable keeps
// mostly-ASCII text readable, but costs three bytes per non-ASCII byte, so text that
// is more than a quarter non-ASCII (Korean, say) goes as base64. Either way the
// message stays 7-bit and needs no 8BITMIME.
func bodyEncoding(s string) gomail.Encoding {
	nonASCII := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			nonASCII++
		}
	}
	if nonASCII*4 > len(s) {
		return gomail.EncodingB64
	}
	return gomail.EncodingQP
}

// boundaryFor derives the multipart boundary from the email id, so that the same
// email renders to the same bytes on every attempt (go-mail would otherwise draw a
// random one). The boundary must not occur in any part; encoded parts contain it only
// if the input did (base64 has no "-", quoted-printable only adds "="), so a counter
// is mixed in until it does not.
func boundaryFor(emailID string, parts ...string) string {
	for n := 0; ; n++ {
		sum := sha256.Sum256([]byte("mailroom-boundary\x00" + emailID + "\x00" + strconv.Itoa(n)))
		b := "mailroom-" + hex.EncodeToString(sum[:16])
		clash := false
		for _, p := range parts {
			if strings.Contains(p, b) {
				clash = true
				break
			}
		}
		if !clash {
			return b
		}
	}
}
