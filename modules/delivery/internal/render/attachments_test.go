package render_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"slices"
	"strings"
	"testing"

	"github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/modules/delivery/internal/render"
)

// entity is one MIME entity of a parsed message, as an independent reader sees it.
type entity struct {
	mediaType string
	params    map[string]string
	header    textproto.MIMEHeader
	children  []*entity
	content   []byte // decoded, for a leaf
}

// parseEntity reads a MIME entity with net/mail's and mime/multipart's parsers,
// decoding base64 and quoted-printable leaves.
func parseEntity(t *testing.T, header textproto.MIMEHeader, body io.Reader) *entity {
	t.Helper()
	e := &entity{header: header}
	var err error
	e.mediaType, e.params, err = mime.ParseMediaType(header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("Content-Type %q: %v", header.Get("Content-Type"), err)
	}
	if strings.HasPrefix(e.mediaType, "multipart/") {
		r := multipart.NewReader(body, e.params["boundary"])
		for {
			p, err := r.NextRawPart()
			if errors.Is(err, io.EOF) {
				return e
			}
			if err != nil {
				t.Fatalf("%s: next part: %v", e.mediaType, err)
			}
			e.children = append(e.children, parseEntity(t, p.Header, p))
		}
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	switch header.Get("Content-Transfer-Encoding") {
	case "base64":
		for _, line := range strings.Split(string(raw), "\r\n") {
			if len(line) > 76 {
				t.Errorf("a base64 line of %d characters in a %s part", len(line), e.mediaType)
			}
		}
		e.content, err = io.ReadAll(base64.NewDecoder(base64.StdEncoding, bytes.NewReader(raw)))
	default:
		e.content, err = io.ReadAll(quotedprintable.NewReader(bytes.NewReader(raw)))
	}
	if err != nil {
		t.Fatalf("decode a %s part: %v", e.mediaType, err)
	}
	return e
}

func parseMessage(t *testing.T, raw []byte) (*mail.Message, *entity) {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("read message: %v", err)
	}
	return msg, parseEntity(t, textproto.MIMEHeader(msg.Header), msg.Body)
}

// filename is an attachment's name as a reader decodes it: Content-Disposition's
// filename (RFC 2231 decoded by mime.ParseMediaType), and Content-Type's name
// (an RFC 2047 encoded word) for readers that look there; both must agree.
func (e *entity) filename(t *testing.T) string {
	t.Helper()
	_, params, err := mime.ParseMediaType(e.header.Get("Content-Disposition"))
	if err != nil {
		t.Fatalf("Content-Disposition %q: %v", e.header.Get("Content-Disposition"), err)
	}
	name, err := new(mime.WordDecoder).DecodeHeader(e.params["name"])
	if err != nil {
		t.Fatalf("name %q: %v", e.params["name"], err)
	}
	if name != params["filename"] {
		t.Errorf("Content-Type's name %q and Content-Disposition's filename %q differ", name, params["filename"])
	}
	return params["filename"]
}

func (e *entity) disposition() string {
	d, _, _ := mime.ParseMediaType(e.header.Get("Content-Disposition"))
	return d
}

func binaryFile() []byte {
	b := make([]byte, 3000)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

func TestAttachmentsMakeTheMessageMultipartMixedWithTheBodyFirst(t *testing.T) {
	bin := binaryFile()
	e := email(func(e *contract.SendEmail) {
		e.HTML = "<p>hello</p>"
		e.Attachments = []contract.Attachment{
			{Filename: "data.bin", ContentType: "application/octet-stream", Content: bin},
			{Filename: "보고서 2026.pdf", ContentType: "application/pdf", Content: []byte("%PDF-1.7 korean")},
			{Filename: `a "quoted"; name.txt`, ContentType: "text/plain; charset=utf-8", Content: []byte("line\r\n")},
		}
	})
	m, err := render.Render(e, options())
	if err != nil {
		t.Fatal(err)
	}
	_, top := parseMessage(t, m.Raw)
	if top.mediaType != "multipart/mixed" || len(top.children) != 4 {
		t.Fatalf("top entity %s with %d parts, want multipart/mixed with the body and 3 files", top.mediaType, len(top.children))
	}
	body := top.children[0]
	if body.mediaType != "multipart/alternative" || len(body.children) != 2 ||
		string(body.children[0].content) != "plain body" || string(body.children[1].content) != "<p>hello</p>" {
		t.Fatalf("first part %s, want the text and HTML as multipart/alternative", body.mediaType)
	}
	for i, want := range e.Attachments {
		got := top.children[i+1]
		if got.disposition() != "attachment" || got.mediaType != strings.Split(want.ContentType, ";")[0] {
			t.Errorf("file %d: %s, disposition %q", i, got.mediaType, got.disposition())
		}
		if name := got.filename(t); name != want.Filename {
			t.Errorf("file %d is named %q, want %q", i, name, want.Filename)
		}
		if !bytes.Equal(got.content, want.Content) {
			t.Errorf("file %d: %d bytes arrived, not the %d sent", i, len(got.content), len(want.Content))
		}
	}
	if !strings.Contains(string(m.Raw), "filename*=utf-8''%EB%B3%B4%EA%B3%A0%EC%84%9C%202026.pdf") {
		t.Errorf("the Korean filename is not written per RFC 2231:\n%s", m.Raw)
	}
	again, err := render.Render(e, options())
	if err != nil || !bytes.Equal(again.Raw, m.Raw) {
		t.Errorf("the same email rendered to other bytes the second time (%v)", err)
	}
}

func TestInlineAttachmentsSitInMultipartRelatedWithTheHTML(t *testing.T) {
	logo := binaryFile()[:500]
	e := email(func(e *contract.SendEmail) {
		e.Text = ""
		e.HTML = `<img src="cid:logo@example">`
		e.Attachments = []contract.Attachment{
			{Filename: "logo.png", ContentType: "image/png", Content: logo, ContentID: "logo@example"},
			{Filename: "terms.pdf", ContentType: "application/pdf", Content: []byte("terms")},
		}
	})
	m, err := render.Render(e, options())
	if err != nil {
		t.Fatal(err)
	}
	_, top := parseMessage(t, m.Raw)
	if top.mediaType != "multipart/mixed" || len(top.children) != 2 {
		t.Fatalf("top entity %s with %d parts", top.mediaType, len(top.children))
	}
	related := top.children[0]
	if related.mediaType != "multipart/related" || related.params["type"] != "text/html" || len(related.children) != 2 {
		t.Fatalf("first part %s %v with %d parts, want multipart/related of type text/html with 2", related.mediaType, related.params, len(related.children))
	}
	if html := related.children[0]; html.mediaType != "text/html" || string(html.content) != e.HTML {
		t.Errorf("the related part's root is %s %q, want the HTML", html.mediaType, html.content)
	}
	img := related.children[1]
	if img.header.Get("Content-Id") != "<logo@example>" || img.disposition() != "inline" || !bytes.Equal(img.content, logo) {
		t.Errorf("inline part: Content-ID %q, disposition %q, %d bytes", img.header.Get("Content-Id"), img.disposition(), len(img.content))
	}
	if pdf := top.children[1]; pdf.disposition() != "attachment" || pdf.filename(t) != "terms.pdf" {
		t.Errorf("second part: %s %q", pdf.disposition(), pdf.filename(t))
	}
}

func TestOnlyInlineAttachmentsMakeTheMessageMultipartRelated(t *testing.T) {
	e := email(func(e *contract.SendEmail) {
		e.HTML = `<img src="cid:a">`
		e.Attachments = []contract.Attachment{{Filename: "a.gif", ContentType: "image/gif", Content: []byte("GIF89a"), ContentID: "a"}}
	})
	m, err := render.Render(e, options())
	if err != nil {
		t.Fatal(err)
	}
	_, top := parseMessage(t, m.Raw)
	if top.mediaType != "multipart/related" || top.params["type"] != "multipart/alternative" || len(top.children) != 2 ||
		top.children[0].mediaType != "multipart/alternative" {
		t.Fatalf("top entity %s %v, want multipart/related around the text and HTML", top.mediaType, top.params)
	}
}

func TestCustomHeadersAreWrittenSortedByNameAndEncoded(t *testing.T) {
	e := email(func(e *contract.SendEmail) {
		e.Headers = map[string]string{
			"X-Entity-Ref-ID":       "ref-42",
			"List-Unsubscribe":      "<mailto:unsubscribe@example.com>, <https://example.com/unsubscribe?id=42>",
			"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
			"X-Korean":              "안녕하세요 세계, 긴 값이 접혀서 여러 줄에 걸쳐 쓰여도 같은 값으로 읽혀야 합니다",
		}
	})
	m, err := render.Render(e, options())
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := parseMessage(t, m.Raw)
	for name, want := range e.Headers {
		got, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get(name))
		if err != nil || got != want {
			t.Errorf("%s arrived as %q (%v), want %q", name, got, err, want)
		}
	}
	head, _, _ := bytes.Cut(m.Raw, []byte("\r\n\r\n"))
	for _, line := range strings.Split(string(head), "\r\n") {
		if len(line) > 78 {
			t.Errorf("header line of %d characters: %q", len(line), line)
		}
	}
	if a, b := strings.Index(string(head), "\r\nList-Unsubscribe:"), strings.Index(string(head), "\r\nX-Entity-Ref-ID:"); a < 0 || b < a {
		t.Errorf("custom headers not sorted by name:\n%s", head)
	}
}

func TestReservedHeadersAndUnsafeAttachmentsAreNotRendered(t *testing.T) {
	cases := []struct {
		name   string
		modify func(*contract.SendEmail)
		field  string
	}{
		{"a Bcc header", func(e *contract.SendEmail) { e.Headers = map[string]string{"Bcc": "x@evil.example"} }, "headers.Bcc"},
		{"a content-type header in lower case", func(e *contract.SendEmail) { e.Headers = map[string]string{"content-type": "text/html"} }, "headers.content-type"},
		{"a header value with CR LF", func(e *contract.SendEmail) { e.Headers = map[string]string{"X-A": "a\r\nBcc: x@evil.example"} }, "headers.X-A"},
		{"a header name with a colon", func(e *contract.SendEmail) { e.Headers = map[string]string{"X-A:": "a"} }, "headers"},
		{"a filename with CR LF", func(e *contract.SendEmail) {
			e.Attachments = []contract.Attachment{{Filename: "a\r\nBcc: x.txt", ContentType: "text/plain", Content: []byte("x")}}
		}, "attachments[0].filename"},
		{"an inline file without HTML", func(e *contract.SendEmail) {
			e.Attachments = []contract.Attachment{{Filename: "a.png", ContentType: "image/png", Content: []byte("x"), ContentID: "a"}}
		}, "attachments[0].content_id"},
		{"a multipart content type", func(e *contract.SendEmail) {
			e.Attachments = []contract.Attachment{{Filename: "a", ContentType: "multipart/mixed; boundary=x", Content: []byte("x")}}
		}, "attachments[0].content_type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render.Render(email(tc.modify), options())
			var re *render.Error
			if !errors.As(err, &re) || re.Field != tc.field {
				t.Errorf("Render = %v, want an invalid %s", err, tc.field)
			}
		})
	}
}

// FuzzRenderAttachmentsAndHeaders checks, for any attachment and custom header,
// that Render does not panic, refuses only with a permanent render error, and that
// what it renders parses back to what was asked: the file's name and bytes, the
// header's value, and no header line the input did not name (a CR LF in a name or
// value smuggling one in).
func FuzzRenderAttachmentsAndHeaders(f *testing.F) {
	f.Add("보고서 2026.pdf", "application/pdf", "", "X-Entity-Ref-ID", "ref-1", []byte("%PDF"))
	f.Add("logo.png", "image/png", "logo@x", "List-Unsubscribe", "<mailto:u@example.com>", []byte{0, 1, 2, 255})
	f.Add("a\r\nBcc: x@y", "text/plain", "", "X-A", "a\r\nBcc: x@y", []byte("x"))
	f.Add(`q"uo;ted\.txt`, "text/plain; charset=utf-8", "", "x-a", "값 =?UTF-8?B?QQ==?=", []byte(""))
	f.Fuzz(func(t *testing.T, filename, ctype, cid, name, value string, content []byte) {
		e := email(func(e *contract.SendEmail) {
			e.HTML = "<p>x</p>"
			e.Attachments = []contract.Attachment{{Filename: filename, ContentType: ctype, ContentID: cid, Content: content}}
			e.Headers = map[string]string{name: value}
		})
		m, err := render.Render(e, options())
		if err != nil {
			if !errors.Is(err, render.ErrInvalid) {
				t.Fatalf("error is not a permanent render error: %v", err)
			}
			return
		}
		msg, top := parseMessage(t, m.Raw)
		got, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get(name))
		if err != nil || strings.TrimSpace(got) != strings.TrimSpace(value) {
			t.Fatalf("header %q arrived as %q (%v), want %q", name, got, err, value)
		}
		for key := range msg.Header {
			if !strings.EqualFold(key, name) && !slices.Contains([]string{"Date", "From", "To", "Subject", "Message-Id",
				"Mime-Version", "Content-Type", render.HeaderEmailID}, textproto.CanonicalMIMEHeaderKey(key)) &&
				!strings.EqualFold(key, render.HeaderEmailID) {
				t.Fatalf("a header %q that was not asked for", key)
			}
		}
		var file *entity
		var walk func(*entity)
		walk = func(n *entity) {
			for _, c := range n.children {
				walk(c)
			}
			if n.header.Get("Content-Disposition") != "" {
				file = n
			}
		}
		walk(top)
		if file == nil {
			t.Fatalf("no attachment part in\n%s", m.Raw)
		}
		if got := file.filename(t); got != filename {
			t.Fatalf("the file arrived named %q, want %q", got, filename)
		}
		if !bytes.Equal(file.content, content) {
			t.Fatalf("the file's %d bytes arrived as %d others", len(content), len(file.content))
		}
	})
}
