package ports

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/mail"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	delivery "github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/modules/emails/internal/domain"
	"github.com/mailroom/mailroom/platform/apperr"
	"github.com/mailroom/mailroom/platform/httpserver"
)

// fuzzNow is the clock of FuzzDecodeRequest, so send_at checks do not drift.
var fuzzNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// fuzzDefaultFrom is smtp.from's default.
const fuzzDefaultFrom = "Mailroom <mailroom@localhost>"

// FuzzDecodeRequest feeds any body to what POST /api/emails does before storing: the
// strict decoder into the request shape, then validation (attachments and custom
// headers included). Neither may panic; every
// refusal is a client error naming its field; and whatever is accepted is safe to
// put into headers and SMTP commands: no CR, LF or NUL in any header-bound field
// (once encoded words are decoded), valid UTF-8, plain local@domain addresses, and
// only keys that name a request field exactly.
func FuzzDecodeRequest(f *testing.F) {
	for _, seed := range []string{
		`{"to":["a@example.com"],"subject":"Hello","text":"hi"}`,
		`{"from":"Team <team@example.com>","to":["a@example.com"],"cc":["b@example.com"],"bcc":["c@example.com"],
		  "reply_to":"help@example.com","subject":"안녕하세요","text":"plain","html":"<p>x</p>",
		  "tags":["welcome"],"metadata":{"user_id":"42"},"send_at":"2026-12-01T09:00:00Z"}`,
		`{"to":["\"a@x> ORCPT=b@y\"@z"],"subject":"s","text":"t"}`,
		`{"to":["a@example.com"],"To":["evil@example.com"],"subject":"s","text":"t"}`,
		`{"to":["a@example.com"],"subject":"s\r\nBcc: evil@example.com","text":"t"}`,
		`{"from":"=?utf-8?b?YQ0KQmNjOiBldmlsQGV4YW1wbGUuY29t?= <a@example.com>","to":["a@example.com"],"subject":"s","text":"t"}`,
		`{"from":"\"=?utf-8?q?Caf=C3=A9?=\" <a@example.com>","to":["\"=?ISO-8859-1?Q?Andr=E9?= Pirard\" <b@example.com>"],"subject":"s","text":"t"}`,
		`{"to":["a@example.com"],"subject":"s","text":"t","metadata":{"k\u0000":"v","v":"\u000d"}}`,
		`{"to":["a@example.com"],"subject":"s\u0085\u2028","text":"t","metadata":{"a":null,"b":""}}`,
		`{"to":["a@example.com",1],"subject":"s","text":"t","send_at":"2026-12-01t09:00:00z"}`,
		`{"from":"\"=?utf-8?q?T=E2=80=AE?=\" <a@example.com>","to":["a@example.com"],"subject":"invoice \u202egnp.exe\u200b","text":"t"}`,
		`{"to":["a@example.com"],"subject":"s","html":"<img src=cid:a>","attachments":[{"filename":"보고서 2026.pdf","content":"eA=="},
		  {"filename":"a.png","content":"eA==","content_type":"image/png","content_id":"a"}],"headers":{"List-Unsubscribe":"<mailto:u@x.example>"}}`,
		`{"to":["a@example.com"],"subject":"s","text":"t","attachments":[{"filename":"a\r\nBcc: x@y","content":"eA=="}],"headers":{"bcc":"x@y","X-A":"a\nb"}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req sendRequest
		if err := httpserver.Unmarshal(body, &req); err != nil {
			e, ok := apperr.As(err)
			if !ok || (e.Code != apperr.CodeInvalidJSON && e.Code != apperr.CodeInvalidField) || e.Message == "" {
				t.Fatalf("decode refused %q with %v (%T), want invalid_json or invalid_field with a message", body, err, err)
			}
			return
		}
		v, err := domain.Validate(req.draft(), fuzzDefaultFrom, fuzzNow)
		if err != nil {
			e, ok := apperr.As(err)
			if !ok || e.Code != apperr.CodeInvalidField || e.Field == "" || !strings.HasPrefix(e.Message, e.Field+": ") {
				t.Fatalf("validation refused %q with %v, want invalid_field naming its field", body, err)
			}
			return
		}

		atts, err := domain.ValidateAttachments(req.draft().Attachments, domain.AttachmentLimits{MaxAttachments: 10, MaxBytes: 1 << 20}, v.HTML != "")
		if err == nil {
			_, err = domain.ValidateHeaders(req.Headers)
		}
		if err != nil {
			e, ok := apperr.As(err)
			if !ok || e.Code != apperr.CodeInvalidField || e.Field == "" || !strings.HasPrefix(e.Message, e.Field+": ") {
				t.Fatalf("validation refused %q with %v, want invalid_field naming its field", body, err)
			}
			return
		}

		checkExactKeys(t, body)
		headerBound := map[string]string{"subject": v.Subject}
		for i, a := range atts {
			headerBound["attachments["+strconv.Itoa(i)+"].filename"] = a.Filename
			headerBound["attachments["+strconv.Itoa(i)+"].content_type"] = a.ContentType
			if strings.ContainsFunc(a.Filename, unseen) || strings.ContainsRune(a.Filename, '\t') {
				t.Fatalf("accepted a filename with a control, bidi or zero-width character: %q", a.Filename)
			}
		}
		for name, val := range req.Headers {
			headerBound["headers."+name] = val
			if delivery.ReservedHeader(name) || strings.ContainsAny(name, ": \t") {
				t.Fatalf("accepted the header name %q", name)
			}
		}
		for i, tag := range v.Tags {
			headerBound["tags["+strconv.Itoa(i)+"]"] = tag
		}
		for k, val := range v.Metadata {
			headerBound["metadata key "+k] = k
			headerBound["metadata."+k] = val
		}
		for name, s := range headerBound {
			if strings.ContainsAny(s, "\r\n\x00") || !utf8.ValidString(s) {
				t.Fatalf("accepted %s = %q: CR, LF, NUL or invalid UTF-8 in a header-bound field", name, s)
			}
		}
		checkAddress(t, "from", v.From)
		if v.ReplyTo != "" {
			checkAddress(t, "reply_to", v.ReplyTo)
		}
		if len(v.To) == 0 || len(v.To)+len(v.Cc)+len(v.Bcc) > domain.MaxRecipients {
			t.Fatalf("accepted %d to, %d cc, %d bcc", len(v.To), len(v.Cc), len(v.Bcc))
		}
		for list, addrs := range map[string][]string{"to": v.To, "cc": v.Cc, "bcc": v.Bcc} {
			for i, a := range addrs {
				checkAddress(t, list+"["+strconv.Itoa(i)+"]", a)
			}
		}
		if strings.ContainsFunc(v.Subject, unseen) {
			t.Fatalf("accepted a subject with a control, bidi or zero-width character: %q", v.Subject)
		}
		for k, val := range req.Metadata {
			if val == "" && bytes.Contains(body, []byte("null")) {
				// A null metadata value must be refused, not stored as "": only an
				// empty string may become one.
				var raw struct{ Metadata map[string]*string }
				if err := json.Unmarshal(body, &raw); err == nil && raw.Metadata[k] == nil {
					t.Fatalf("accepted metadata.%s = null as %q", k, val)
				}
			}
		}
		if strings.TrimSpace(v.Subject) == "" || (v.Text == "" && v.HTML == "") {
			t.Fatalf("accepted an email without a subject or a body: %+v", v)
		}
		for name, s := range map[string]string{"text": v.Text, "html": v.HTML} {
			if strings.ContainsRune(s, 0) || !utf8.ValidString(s) {
				t.Fatalf("accepted %s with NUL or invalid UTF-8: %q", name, s)
			}
		}
	})
}

// unseen is what a subject or display name may not hold, written out here apart
// from the code it checks: control characters but TAB, the line and paragraph
// separators, the bidi controls and the zero-width characters.
func unseen(r rune) bool {
	return r != '\t' && unicode.IsControl(r) || r == '\u2028' || r == '\u2029' ||
		strings.ContainsRune("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c\u200b\u200c\u200d\u2060\ufeff", r)
}

// checkAddress asserts that an accepted address, as stored, parses back to itself
// with a plain local@domain address and a display name free of line breaks even
// after its encoded words are decoded.
func checkAddress(t *testing.T, field, s string) {
	t.Helper()
	if strings.ContainsAny(s, "\r\n\x00") || !utf8.ValidString(s) {
		t.Fatalf("accepted %s = %q with CR, LF, NUL or invalid UTF-8", field, s)
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		t.Fatalf("accepted %s = %q does not parse back: %v", field, s, err)
	}
	if strings.ContainsAny(a.Name, "\r\n\x00") || !utf8.ValidString(a.Name) {
		t.Fatalf("accepted %s = %q has display name %q with CR, LF, NUL or invalid UTF-8", field, s, a.Name)
	}
	if strings.ContainsFunc(a.Name, unseen) {
		t.Fatalf("accepted %s = %q has display name %q with a control, bidi or zero-width character", field, s, a.Name)
	}
	// A mail reader decodes encoded words inside a quoted name too, which net/mail
	// does not; stored names are decoded already, so decoding must change nothing.
	if read, err := readerDecoder.DecodeHeader(a.Name); err != nil || read != a.Name {
		t.Fatalf("accepted %s = %q has display name %q, which a mail reader decodes to %q (%v)", field, s, a.Name, read, err)
	}
	if !plainForSMTP(a.Address) {
		t.Fatalf("accepted %s = %q has address %q, which is not plain local@domain", field, s, a.Address)
	}
	again, err := domain.ParseAddress(field, s, true)
	if err != nil || again != s {
		t.Fatalf("accepted %s = %q is not canonical: parses to %q (%v)", field, s, again, err)
	}
}

// readerDecoder decodes encoded words in any charset, byte for byte, as a lenient
// mail reader might.
var readerDecoder = mime.WordDecoder{CharsetReader: func(_ string, r io.Reader) (io.Reader, error) { return r, nil }}

// plainForSMTP is an independent check that addr can be written into MAIL FROM or
// RCPT TO as is, as the delivery renderer requires: a dot-atom local part of at most
// 64 octets, one "@", and an ASCII host name, nothing that ends the path or starts
// a parameter or a new command.
func plainForSMTP(addr string) bool {
	at := strings.IndexByte(addr, '@')
	if at <= 0 || at > 64 || at != strings.LastIndexByte(addr, '@') || len(addr) > 254 {
		return false
	}
	local, host := addr[:at], addr[at+1:]
	if strings.HasPrefix(local, ".") || strings.HasSuffix(local, ".") || strings.Contains(local, "..") {
		return false
	}
	for i := 0; i < len(local); i++ {
		c := local[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),:;<>@[\]`, c) >= 0 {
			return false
		}
	}
	if host == "" {
		return false
	}
	for label := range strings.SplitSeq(host, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
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

// requestKeys are the JSON names of sendRequest's fields.
var requestKeys = map[string]bool{"from": true, "to": true, "cc": true, "bcc": true, "reply_to": true, "subject": true,
	"text": true, "html": true, "tags": true, "metadata": true, "send_at": true, "attachments": true, "headers": true}

// checkExactKeys asserts that an accepted body names only request fields, spelled
// exactly, each once: what a case-sensitive reader of the same body (a proxy, a log
// search, an audit) sees is what was stored.
func checkExactKeys(t *testing.T, body []byte) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("accepted a body that does not start with an object: %q", body)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("accepted a body a plain decoder cannot read: %v", err)
		}
		key, _ := tok.(string)
		if !requestKeys[key] || seen[key] {
			t.Fatalf("accepted a body with the key %q (unknown, not exact, or repeated): %q", key, body)
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatalf("accepted a body a plain decoder cannot read: %v", err)
		}
	}
}
