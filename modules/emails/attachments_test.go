package emails_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/http"
	"net/mail"
	"net/textproto"
	"strings"
	"testing"

	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/platform/testkit/smtptest"
)

// receivedPart is one leaf of a received message: its media type, the multipart it
// sits in, its header and its decoded content.
type receivedPart struct {
	mediaType string
	parent    string
	header    textproto.MIMEHeader
	content   []byte
}

// leaves parses a received message the way a mail reader does (net/mail,
// mime/multipart) and returns its leaf parts, content decoded, in order.
func leaves(t *testing.T, raw []byte) (mail.Header, []receivedPart) {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("read message: %v", err)
	}
	var out []receivedPart
	var walk func(h textproto.MIMEHeader, body io.Reader, parent string)
	walk = func(h textproto.MIMEHeader, body io.Reader, parent string) {
		mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
		if err != nil {
			t.Fatalf("Content-Type %q: %v", h.Get("Content-Type"), err)
		}
		if strings.HasPrefix(mt, "multipart/") {
			r := multipart.NewReader(body, params["boundary"])
			for {
				p, err := r.NextRawPart()
				if errors.Is(err, io.EOF) {
					return
				}
				if err != nil {
					t.Fatalf("%s: %v", mt, err)
				}
				walk(p.Header, p, mt)
			}
		}
		var dec io.Reader = body
		switch h.Get("Content-Transfer-Encoding") {
		case "base64":
			dec = base64.NewDecoder(base64.StdEncoding, body)
		case "quoted-printable":
			dec = quotedprintable.NewReader(body)
		}
		content, err := io.ReadAll(dec)
		if err != nil {
			t.Fatalf("decode %s: %v", mt, err)
		}
		out = append(out, receivedPart{mediaType: mt, parent: parent, header: h, content: content})
	}
	walk(textproto.MIMEHeader(msg.Header), msg.Body, "")
	return msg.Header, out
}

// filename decodes an attachment's name as readers do: RFC 2231 through
// mime.ParseMediaType, and an RFC 2047 word through mime.WordDecoder.
func (p receivedPart) filename(t *testing.T) string {
	t.Helper()
	_, params, err := mime.ParseMediaType(p.header.Get("Content-Disposition"))
	if err != nil {
		t.Fatalf("Content-Disposition %q: %v", p.header.Get("Content-Disposition"), err)
	}
	name, err := new(mime.WordDecoder).DecodeHeader(params["filename"])
	if err != nil {
		t.Fatalf("filename %q: %v", params["filename"], err)
	}
	return name
}

type attachmentInfo struct {
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	ContentID   string `json:"content_id"`
}

func TestAttachmentsArriveByteForByteWithTheirNames(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t)
	in := startWithBody(t, 1<<20, srv)
	binary := make([]byte, 70_000)
	for i := range binary {
		binary[i] = byte(i*31 + i/256)
	}
	logo := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
	files := []struct {
		name, ctype, cid string
		content          []byte
	}{
		{"보고서 2026.pdf", "", "", []byte("%PDF-1.7\n보고서\n%%EOF")},
		{"data.bin", "application/octet-stream", "", binary},
		{"logo.png", "image/png", "logo", logo},
	}
	var atts []map[string]any
	for _, f := range files {
		a := map[string]any{"filename": f.name, "content": base64.StdEncoding.EncodeToString(f.content)}
		if f.ctype != "" {
			a["content_type"] = f.ctype
		}
		if f.cid != "" {
			a["content_id"] = f.cid
		}
		atts = append(atts, a)
	}
	id := in.Send(t, body(map[string]any{
		"to": []string{"files@example.com"}, "html": `<p><img src="cid:logo"></p>`, "attachments": atts,
		"headers": map[string]string{"List-Unsubscribe": "<mailto:unsubscribe@example.com>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
			"X-Entity-Ref-ID": "ref-7"},
	}))
	in.WaitForStatus(t, id, "sent", wait)
	got := srv.MessagesTo("files@example.com")
	if len(got) != 1 {
		t.Fatalf("%d messages to files@example.com, want 1", len(got))
	}
	header, parts := leaves(t, got[0].Data)
	if v := header.Get("List-Unsubscribe"); v != "<mailto:unsubscribe@example.com>" {
		t.Errorf("List-Unsubscribe arrived as %q", v)
	}
	if v := header.Get("X-Entity-Ref-ID"); v != "ref-7" {
		t.Errorf("X-Entity-Ref-ID arrived as %q", v)
	}
	byName := map[string]receivedPart{}
	for _, p := range parts {
		if p.header.Get("Content-Disposition") != "" {
			byName[p.filename(t)] = p
		}
	}
	for _, f := range files {
		p, ok := byName[f.name]
		if !ok {
			t.Errorf("no part named %q arrived (parts: %v)", f.name, parts)
			continue
		}
		if !bytes.Equal(p.content, f.content) {
			t.Errorf("%q: %d bytes arrived, not the %d sent", f.name, len(p.content), len(f.content))
		}
	}
	if p := byName["보고서 2026.pdf"]; p.mediaType != "application/pdf" {
		t.Errorf("the PDF sent without a content_type arrived as %s, want the type its extension names", p.mediaType)
	}
	if p := byName["logo.png"]; p.parent != "multipart/related" || p.header.Get("Content-Id") != "<logo>" {
		t.Errorf("the inline logo sits in %s with Content-ID %q, want multipart/related and <logo>", p.parent, p.header.Get("Content-Id"))
	}
	var htmlParent string
	for _, p := range parts {
		if p.mediaType == "text/html" {
			htmlParent = p.parent
		}
	}
	if htmlParent != "multipart/alternative" && htmlParent != "multipart/related" {
		t.Errorf("the HTML sits in %q, not beside the inline logo", htmlParent)
	}

	r := in.Do(t, http.MethodGet, "/api/emails/"+id, nil)
	var detail struct {
		Attachments []attachmentInfo `json:"attachments"`
	}
	r.JSON(t, &detail)
	want := []attachmentInfo{
		{"보고서 2026.pdf", "application/pdf", int64(len(files[0].content)), ""},
		{"data.bin", "application/octet-stream", int64(len(binary)), ""},
		{"logo.png", "image/png", int64(len(logo)), "logo"},
	}
	if len(detail.Attachments) != len(want) {
		t.Fatalf("GET shows attachments %+v, want %+v", detail.Attachments, want)
	}
	for i := range want {
		if detail.Attachments[i] != want[i] {
			t.Errorf("GET shows attachment %d as %+v, want %+v", i, detail.Attachments[i], want[i])
		}
	}
	if strings.Contains(string(r.Body), base64.StdEncoding.EncodeToString(binary[:300])) {
		t.Error("GET shows an attachment's content")
	}
}

func TestAnEmailWithoutAttachmentsShowsAnEmptyList(t *testing.T) {
	t.Parallel()
	in := startWithBody(t, 1<<20, nil)
	r := in.Do(t, http.MethodGet, "/api/emails/"+in.Send(t, body(nil)), nil)
	if !strings.Contains(string(r.Body), `"attachments":[]`) {
		t.Errorf("GET of an email without attachments: %s, want \"attachments\":[]", r.Body)
	}
}

func TestBadAttachmentsAndHeadersAreRefusedNamingTheField(t *testing.T) {
	t.Parallel()
	cfg := apptest.Config(t)
	cfg.HTTP.MaxBodyBytes = 1 << 20
	cfg.Limits.MaxAttachments = 2
	cfg.Limits.MaxAttachmentBytes = 1000
	in := apptest.Start(t, cfg)
	file := func(name, content string) map[string]any {
		return map[string]any{"filename": name, "content": base64.StdEncoding.EncodeToString([]byte(content))}
	}
	withFile := func(f map[string]any) map[string]any {
		return body(map[string]any{"attachments": []map[string]any{file("ok.txt", "ok"), f}})
	}
	headers := func(h map[string]string) map[string]any { return body(map[string]any{"headers": h}) }
	tests := []struct {
		name, field, says string
		body              map[string]any
	}{
		{"a filename with CR LF", "attachments[1].filename", "CR, LF or NUL", withFile(file("a\r\nBcc: x@evil.example", "x"))},
		{"a filename with LF", "attachments[1].filename", "CR, LF or NUL", withFile(file("a\nb.txt", "x"))},
		{"a filename with NUL", "attachments[1].filename", "CR, LF or NUL", withFile(file("a\x00.txt", "x"))},
		{"a filename with a tab", "attachments[1].filename", "control", withFile(file("a\tb.txt", "x"))},
		{"a filename with a right-to-left override", "attachments[1].filename", "bidirectional", withFile(file("invoice \u202egnp.exe", "x"))},
		{"no filename", "attachments[1].filename", "required", withFile(file("", "x"))},
		{"a filename of 256 bytes", "attachments[1].filename", "255", withFile(file(strings.Repeat("a", 252)+".txt", "x"))},
		{"content that is not base64", "attachments[1].content", "base64", withFile(map[string]any{"filename": "a.txt", "content": "not base64!"})},
		{"empty content", "attachments[1].content", "empty", withFile(file("a.txt", ""))},
		{"a content type that is not one", "attachments[1].content_type", "media type",
			withFile(map[string]any{"filename": "a.txt", "content": "eA==", "content_type": "text"})},
		{"a multipart content type", "attachments[1].content_type", "multipart/mixed",
			withFile(map[string]any{"filename": "a.txt", "content": "eA==", "content_type": "multipart/mixed; boundary=x"})},
		{"a content id with a space", "attachments[0].content_id", "letters",
			body(map[string]any{"html": "<p>x</p>", "attachments": []map[string]any{{"filename": "a.png", "content": "eA==", "content_id": "a b"}}})},
		{"an inline file without html", "attachments[0].content_id", "html",
			body(map[string]any{"attachments": []map[string]any{{"filename": "a.png", "content": "eA==", "content_id": "a"}}})},
		{"more files than limits.max_attachments", "attachments", "limits.max_attachments",
			body(map[string]any{"attachments": []map[string]any{file("a", "x"), file("b", "x"), file("c", "x")}})},
		{"more bytes than limits.max_attachment_bytes", "attachments", "limits.max_attachment_bytes",
			body(map[string]any{"attachments": []map[string]any{file("a", strings.Repeat("x", 600)), file("b", strings.Repeat("x", 401))}})},
		{"a Bcc header", "headers.Bcc", "not by a client", headers(map[string]string{"Bcc": "x@evil.example"})},
		{"a content-type header in lower case", "headers.content-type", "not by a client", headers(map[string]string{"content-type": "text/html"})},
		{"a Received header", "headers.Received", "not by a client", headers(map[string]string{"Received": "from evil"})},
		{"a Resent-From header", "headers.Resent-From", "not by a client", headers(map[string]string{"Resent-From": "x@evil.example"})},
		{"a header value with CR LF", "headers.X-A", "CR, LF or NUL", headers(map[string]string{"X-A": "a\r\nBcc: x@evil.example"})},
		{"a header name with a colon", "headers", "header name", headers(map[string]string{"X-A:": "a"})},
		{"a header name with a space", "headers", "header name", headers(map[string]string{"X A": "a"})},
		{"one header twice in different case", "headers.x-a", "same header", headers(map[string]string{"X-A": "a", "x-a": "b"})},
		{"a header line over 998 bytes", "headers.X-A", "998", headers(map[string]string{"X-A": strings.Repeat("a", 995)})},
		{"51 headers", "headers", "at most 50", headers(manyHeaders(51))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := in.Do(t, http.MethodPost, "/api/emails", tc.body)
			b := decodeError(t, r)
			if r.Status != http.StatusBadRequest || b.Error.Code != "invalid_field" || field(b) != tc.field ||
				!strings.Contains(b.Error.Message, tc.says) {
				t.Errorf("%d %s, want 400 invalid_field naming %s and saying %q", r.Status, r.Body, tc.field, tc.says)
			}
		})
	}
	ok := in.Do(t, http.MethodPost, "/api/emails", body(map[string]any{
		"attachments": []map[string]any{file("a", strings.Repeat("x", 600)), file("b", strings.Repeat("x", 400))},
		"headers":     map[string]string{"In-Reply-To": "<a@example.com>", "References": "<a@example.com>", "X-A": strings.Repeat("a", 993)},
	}))
	if ok.Status != http.StatusAccepted {
		t.Errorf("files of exactly limits.max_attachment_bytes and a 998-byte header line: %d %s, want 202", ok.Status, ok.Body)
	}
}

func manyHeaders(n int) map[string]string {
	out := map[string]string{}
	for i := range n {
		out["X-H"+strings.Repeat("x", i)] = "v"
	}
	return out
}

// TestAnEmailWithAttachmentsAtTheDefaultLimitIsAcceptedAndRendered: the default
// http.max_body_bytes holds an email with limits.max_attachment_bytes of
// attachments (10 MiB, about 14 MB of base64), which is stored, rendered and sent
// (the capture transport); one byte more is a 400 naming the limit, not a 413.
func TestAnEmailWithAttachmentsAtTheDefaultLimitIsAcceptedAndRendered(t *testing.T) {
	t.Parallel()
	cfg := apptest.Config(t)
	in := apptest.Start(t, cfg)
	limit := cfg.Limits.MaxAttachmentBytes
	file := func(n int64) map[string]any {
		return map[string]any{"filename": "big.bin", "content": base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xA5}, int(n)))}
	}
	text := strings.Repeat("lorem ipsum ", 80_000) // with the attachment, most of the body limit
	id := in.Send(t, body(map[string]any{"text": text, "attachments": []map[string]any{file(limit)}}))
	in.WaitForStatus(t, id, "sent", 2*wait)
	r := in.Do(t, http.MethodGet, "/api/emails/"+id+"/raw", nil)
	if r.Status != http.StatusOK || len(r.Body) < int(limit) {
		t.Fatalf("GET raw: %d, %d bytes for an email with %d bytes of attachments", r.Status, len(r.Body), limit)
	}
	over := in.Do(t, http.MethodPost, "/api/emails", body(map[string]any{"attachments": []map[string]any{file(limit + 1)}}))
	if b := decodeError(t, over); over.Status != http.StatusBadRequest || field(b) != "attachments" || !strings.Contains(b.Error.Message, "limits.max_attachment_bytes") {
		t.Errorf("one byte over limits.max_attachment_bytes: %d %s, want 400 naming attachments and the limit", over.Status, over.Body)
	}
}
