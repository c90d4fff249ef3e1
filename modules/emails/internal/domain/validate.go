package domain

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mailroom/mailroom/platform/apperr"
)

// Limits of a new email.
const (
	// MaxRecipients bounds to, cc and bcc together.
	MaxRecipients = 50
	// MaxSubjectLen counts characters, not bytes; the number is RFC 5322's line limit.
	MaxSubjectLen = 998
	// MaxTags bounds the tags as sent, duplicates included.
	MaxTags = 10
	// MaxTagLen is a tag's length in bytes (tags are ASCII).
	MaxTagLen = 64
	// MaxMetadataKeys bounds how many keys the metadata may have.
	MaxMetadataKeys = 20
	// MaxMetadataKey is a metadata key's length in bytes (keys use the tag syntax).
	MaxMetadataKey = 64
	// MaxMetadataValue is a metadata value's length in bytes (UTF-8, one line).
	MaxMetadataValue = 512
	// MaxAddressLen bounds the bare address in bytes (RFC 5321's 256-octet path
	// less its angle brackets); the input, display name included, may be twice that.
	MaxAddressLen = 254
	// MaxLocalPartLen is RFC 5321's limit on the part before the @, in bytes.
	MaxLocalPartLen = 64
	// MaxScheduleAhead is how far ahead send_at may be: "a year", leap years included.
	MaxScheduleAhead = 366 * 24 * time.Hour
)

// plainAddress is the allow-list of address syntax: a dot-atom local part and a
// hostname. Quoted local parts, comments and source routes, which net/mail accepts,
// never reach an SMTP command (go-mail #495: `"a@x> ORCPT=b@y"@z`). A one-label
// host name is allowed, as the renderer allows it: the default smtp.from is
// mailroom@localhost.
var plainAddress = regexp.MustCompile(`^[A-Za-z0-9!#$%&'*+/=?^_` + "`" + `{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_` + "`" + `{|}~-]+)*@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)

var tagSyntax = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]*$`)

// Draft is an email as a client asked for it, before validation.
type Draft struct {
	// From is an address with an optional display name; blank means the default
	// From (smtp.from).
	From string
	// To is addresses as sent; it needs at least one.
	To []string
	// Cc is addresses as sent; with To and Bcc, at most MaxRecipients in all.
	Cc []string
	// Bcc is addresses as sent, for the envelope only.
	Bcc []string
	// ReplyTo is an address, or "" for none.
	ReplyTo string
	// Subject is required: one line, no control characters.
	Subject string
	// Text is the plain-text body; it or HTML must not be empty.
	Text string
	// HTML is the HTML body; it or Text must not be empty.
	HTML string
	// Tags are labels as sent, repeats allowed (Validate drops them).
	Tags []string
	// Metadata is key/value pairs; keys use the tag syntax.
	Metadata map[string]string
	// SendAt is send_at as sent: an RFC 3339 time, or "" to send at once.
	SendAt string
	// Attachments are the files as sent, content in base64 (ValidateAttachments).
	// Tagged omitempty, as Headers, so a draft without them fingerprints as before
	// they existed (the Idempotency-Key request hash).
	Attachments []AttachmentDraft `json:",omitempty"`
	// Headers are custom header fields as sent (ValidateHeaders).
	Headers map[string]string `json:",omitempty"`
}

// Valid is a Draft that passed validation, with addresses normalised.
type Valid struct {
	// From and ReplyTo are canonical (`"Name" <a@b.example>` or the bare address);
	// ReplyTo is "" when there is none.
	From, ReplyTo string
	// FromAddress is From's bare local@domain address, the one a key's sender
	// restriction is checked against.
	FromAddress string
	// To, Cc and Bcc are canonical, in the draft's order (repeats are kept).
	To, Cc, Bcc []string
	// Subject, Text and HTML are the draft's, unchanged.
	Subject    string
	Text, HTML string
	// Tags are the draft's without repeats, in first-seen order; nil when none.
	Tags []string
	// Metadata is the draft's map itself, checked but not copied.
	Metadata map[string]string
	// SendAt is the send_at instant in UTC; nil when absent or not in the future,
	// which means send at once.
	SendAt *time.Time
}

// Validate checks d against the contract's rules and returns the first problem as an
// apperr naming the field. defaultFrom fills an empty From.
func Validate(d Draft, defaultFrom string, now time.Time) (Valid, error) {
	var v Valid
	var err error
	from := d.From
	if strings.TrimSpace(from) == "" {
		from = defaultFrom
	}
	if v.From, v.FromAddress, err = parseAddress("from", from, true); err != nil {
		return v, err
	}
	if len(d.To) == 0 {
		return v, apperr.Invalid("to", "at least one recipient is required")
	}
	if n := len(d.To) + len(d.Cc) + len(d.Bcc); n > MaxRecipients {
		return v, apperr.Invalid("to", "%d recipients in to, cc and bcc; at most %d", n, MaxRecipients)
	}
	if v.To, err = parseList("to", d.To); err != nil {
		return v, err
	}
	if v.Cc, err = parseList("cc", d.Cc); err != nil {
		return v, err
	}
	if v.Bcc, err = parseList("bcc", d.Bcc); err != nil {
		return v, err
	}
	if d.ReplyTo != "" {
		if v.ReplyTo, err = ParseAddress("reply_to", d.ReplyTo, true); err != nil {
			return v, err
		}
	}
	if strings.TrimSpace(d.Subject) == "" {
		return v, apperr.Invalid("subject", "is required")
	}
	if err := headerSafe("subject", d.Subject); err != nil {
		return v, err
	}
	if r, bad := firstLineHazard(d.Subject); bad {
		return v, apperr.Invalid("subject", "must not contain %s", describeHazard(r))
	}
	if utf8.RuneCountInString(d.Subject) > MaxSubjectLen {
		return v, apperr.Invalid("subject", "longer than %d characters", MaxSubjectLen)
	}
	v.Subject = d.Subject
	if d.Text == "" && d.HTML == "" {
		return v, apperr.Invalid("text", "text or html is required")
	}
	if err := bodySafe("text", d.Text); err != nil {
		return v, err
	}
	if err := bodySafe("html", d.HTML); err != nil {
		return v, err
	}
	v.Text, v.HTML = d.Text, d.HTML
	if len(d.Tags) > MaxTags {
		return v, apperr.Invalid("tags", "%d tags; at most %d", len(d.Tags), MaxTags)
	}
	seen := map[string]bool{}
	for i, t := range d.Tags {
		field := fmt.Sprintf("tags[%d]", i)
		if len(t) > MaxTagLen || !tagSyntax.MatchString(t) {
			return v, apperr.Invalid(field, "must be 1 to %d letters, digits, '_', '.', ':' or '-'", MaxTagLen)
		}
		if !seen[t] {
			seen[t] = true
			v.Tags = append(v.Tags, t)
		}
	}
	if len(d.Metadata) > MaxMetadataKeys {
		return v, apperr.Invalid("metadata", "%d keys; at most %d", len(d.Metadata), MaxMetadataKeys)
	}
	for k, val := range d.Metadata {
		field := "metadata." + k
		if k == "" || len(k) > MaxMetadataKey || !tagSyntax.MatchString(k) {
			return v, apperr.Invalid("metadata", "key %q must be 1 to %d letters, digits, '_', '.', ':' or '-'", truncate(k, MaxMetadataKey), MaxMetadataKey)
		}
		if len(val) > MaxMetadataValue {
			return v, apperr.Invalid(field, "longer than %d bytes", MaxMetadataValue)
		}
		if err := headerSafe(field, val); err != nil {
			return v, err
		}
	}
	v.Metadata = d.Metadata
	if d.SendAt != "" {
		var err error
		if v.SendAt, err = ScheduleAt(d.SendAt, now); err != nil {
			return v, err
		}
	}
	return v, nil
}

// ScheduleAt reads a send_at at now, by the one rule of how far ahead an email may
// wait, for acceptance and reschedule alike: an RFC 3339 time at most
// MaxScheduleAhead ahead, or an apperr naming send_at. It returns the time in UTC
// when it lies ahead, and nil when it is now or past (at acceptance: send at once).
func ScheduleAt(s string, now time.Time) (*time.Time, error) {
	t, err := ParseSendAt(s)
	if err != nil {
		return nil, apperr.Invalid("send_at", "not an RFC 3339 time such as 2026-12-01T09:00:00Z")
	}
	if t.Sub(now) > MaxScheduleAhead {
		return nil, apperr.Invalid("send_at", "more than a year ahead")
	}
	if !t.After(now) {
		return nil, nil
	}
	t = t.UTC()
	return &t, nil
}

func parseList(field string, in []string) ([]string, error) {
	out := make([]string, 0, len(in))
	for i, a := range in {
		addr, err := ParseAddress(fmt.Sprintf("%s[%d]", field, i), a, true)
		if err != nil {
			return nil, err
		}
		out = append(out, addr)
	}
	return out, nil
}

// ParseAddress parses one address ("Name <a@b.example>" or "a@b.example") and returns
// it in canonical form. The address part must be plain syntax with a local part of
// at most 64 octets (RFC 5321), and no part of the input may hold CR, LF or NUL.
// The display name is stored with its encoded words decoded, quoted or not, and is
// checked once decoded (decodeName).
func ParseAddress(field, s string, allowName bool) (string, error) {
	canonical, _, err := parseAddress(field, s, allowName)
	return canonical, err
}

// parseAddress is ParseAddress that also returns the bare address.
func parseAddress(field, s string, allowName bool) (canonical, bare string, err error) {
	if err := headerSafe(field, s); err != nil {
		return "", "", err
	}
	if len(s) > 2*MaxAddressLen {
		return "", "", apperr.Invalid(field, "too long")
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return "", "", apperr.Invalid(field, "not an email address")
	}
	if len(a.Address) > MaxAddressLen || !plainAddress.MatchString(a.Address) ||
		strings.LastIndexByte(a.Address, '@') > MaxLocalPartLen {
		return "", "", apperr.Invalid(field, "not a plain email address (local@domain)")
	}
	name, err := decodeName(field, a.Name)
	if err != nil {
		return "", "", err
	}
	if name == "" || !allowName {
		return a.Address, a.Address, nil
	}
	return FormatAddress(name, a.Address), a.Address, nil
}

// decodeName decodes the RFC 2047 encoded words of a display name as net/mail
// parsed it and checks the result, which is what a mail reader shows and what is
// stored. net/mail decodes the encoded words of an unquoted name but leaves those
// inside a quoted string, which mail readers decode all the same: unchecked,
// `"=?utf-8?q?=0D=0ABcc:_x@y?=" <a@x.com>` went onto the wire verbatim and a reader
// saw a line break and a Bcc header in it. The decoded name may hold no CR, LF or
// NUL, no other control character (a quoted name cannot hold one, so
// "=?utf-8?q?=01?=" would be stored as a name that does not parse back), and no "=?"
// (a reader would decode it again, to something nobody checked: an encoded word
// that decodes to an encoded word, or one that does not decode at all).
//
// Both forms are checked, as parsed and once decoded: decoding only ever replaces
// encoded words, but a base64 word ignores the line breaks inside it.
func decodeName(field, name string) (string, error) {
	decoded := name
	if strings.Contains(name, "=?") {
		var err error
		decoded, err = nameDecoder.DecodeHeader(name)
		var charset unknownCharset
		if errors.As(err, &charset) {
			return "", apperr.Invalid(field, "display name has an encoded word in charset %q; use UTF-8, ISO-8859-1 or US-ASCII",
				apperr.Clip(string(charset)))
		}
		if err != nil {
			return "", apperr.Invalid(field, "display name has an encoded word that does not decode")
		}
	}
	for _, n := range []string{name, decoded} {
		if err := headerSafe(field, n); err != nil {
			return "", apperr.Invalid(field, "display name, once decoded, must be UTF-8 without CR, LF or NUL")
		}
		if r, bad := firstLineHazard(n); bad {
			return "", apperr.Invalid(field, "display name, once decoded, must not contain %s", describeHazard(r))
		}
	}
	if strings.Contains(decoded, "=?") {
		return "", apperr.Invalid(field, `display name, once decoded, must not contain "=?": an encoded word that does not decode, or text a mail reader would decode again`)
	}
	return decoded, nil
}

// nameDecoder decodes encoded words in the charsets the mime package knows (UTF-8,
// ISO-8859-1 and US-ASCII, as net/mail does for an unquoted name) and refuses any
// other with unknownCharset, so that a name in another charset is refused by name
// rather than stored as bytes nobody decoded.
var nameDecoder = mime.WordDecoder{CharsetReader: func(charset string, _ io.Reader) (io.Reader, error) {
	return nil, unknownCharset(charset)
}}

// unknownCharset is the charset of an encoded word that nameDecoder does not decode.
type unknownCharset string

func (c unknownCharset) Error() string { return fmt.Sprintf("charset %q is not decoded", string(c)) }

// FormatAddress writes a display name and address as `"Name" <local@domain>`, UTF-8
// unencoded (the renderer encodes headers), quoting the name so it parses back the same.
func FormatAddress(name, addr string) string {
	if name == "" {
		return addr
	}
	return `"` + quoteName.Replace(name) + `" <` + addr + `>`
}

// quoteName escapes a display name for FormatAddress. Built once: a Replacer builds
// a lookup table of about 6 KB on first use, and one made per call did so for every
// named address, 43% of the bytes POST /api/emails allocated.
var quoteName = strings.NewReplacer(`\`, `\\`, `"`, `\"`)

// headerSafe refuses CR, LF and NUL, which would inject headers or SMTP commands,
// and invalid UTF-8.
func headerSafe(field, s string) error {
	if strings.ContainsAny(s, "\r\n\x00") {
		return apperr.Invalid(field, "must not contain CR, LF or NUL")
	}
	if !utf8.ValidString(s) {
		return apperr.Invalid(field, "not valid UTF-8")
	}
	return nil
}

// isLineControl reports whether r may not be in a subject or a display name: a
// control character other than TAB (C0, DEL, C1 such as U+0085 NEXT LINE), U+2028
// LINE SEPARATOR or U+2029 PARAGRAPH SEPARATOR, or an invisible character
// (isInvisible). Each is one line of header text; these break it or hide in it
// where a reader of the header or a log line does not see them.
func isLineControl(r rune) bool {
	return r != '\t' && unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || isInvisible(r)
}

// isInvisible reports whether r is a bidirectional control or a zero-width
// character: drawn as nothing, they change what a reader sees without showing they
// are there. A right-to-left override makes "invoice \u202egnp.exe" read as
// "invoice exe.png"; a zero-width space makes "paypal" and "pay\u200bpal" look
// alike. The bidi controls are the embeddings and overrides U+202A-U+202E, the
// isolates U+2066-U+2069, the marks U+200E, U+200F and U+061C; the zero-width
// characters are U+200B-U+200D, U+2060 WORD JOINER and U+FEFF (a byte order mark
// inside text).
func isInvisible(r rune) bool {
	switch {
	case r >= '\u202a' && r <= '\u202e', r >= '\u2066' && r <= '\u2069', r >= '\u200b' && r <= '\u200f':
		return true
	}
	return r == '\u061c' || r == '\u2060' || r == '\ufeff'
}

// firstLineHazard returns the first rune of s that isLineControl refuses.
func firstLineHazard(s string) (rune, bool) {
	for _, r := range s {
		if isLineControl(r) {
			return r, true
		}
	}
	return 0, false
}

// describeHazard names a refused rune for a client, by code point (the character
// itself would be as invisible in the message as it was in the field).
func describeHazard(r rune) string {
	switch {
	case isInvisible(r) && (r >= '\u200b' && r <= '\u200d' || r == '\u2060' || r == '\ufeff'):
		return fmt.Sprintf("zero-width characters (found U+%04X)", r)
	case isInvisible(r):
		return fmt.Sprintf("bidirectional control characters (found U+%04X)", r)
	case r == '\u2028' || r == '\u2029':
		return fmt.Sprintf("line or paragraph separators (found U+%04X)", r)
	}
	return fmt.Sprintf("control characters (found U+%04X)", r)
}

// bodySafe refuses NUL and invalid UTF-8 in a body; line breaks are fine there.
func bodySafe(field, s string) error {
	if strings.ContainsRune(s, 0) {
		return apperr.Invalid(field, "must not contain NUL")
	}
	if !utf8.ValidString(s) {
		return apperr.Invalid(field, "not valid UTF-8")
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// ParseSendAt parses a send_at: an RFC 3339 date-time, whose "T" and "Z" RFC 3339
// allows in lower case too (section 5.6). time.Parse takes them in upper case only,
// so they are raised first; no other letter is valid in the form anyway.
func ParseSendAt(s string) (time.Time, error) {
	if len(s) > 10 && (s[10] == 't' || s[len(s)-1] == 'z') {
		b := []byte(s)
		if b[10] == 't' {
			b[10] = 'T'
		}
		if b[len(b)-1] == 'z' {
			b[len(b)-1] = 'Z'
		}
		s = string(b)
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return t, fmt.Errorf("parse send_at: %w", err)
	}
	return t, nil
}
