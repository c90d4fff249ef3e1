package render

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/textproto"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"github.com/mailroom/mailroom/modules/delivery/contract"
)

// maxFilenameLen bounds an attachment's filename in bytes, as the API does.
const maxFilenameLen = 255

// contentIDSyntax is what a Content-ID may hold, as the API allows it.
var contentIDSyntax = regexp.MustCompile(`^[A-Za-z0-9._@-]{1,128}$`)

// checkAttachments refuses an attachment whose name, type or id could not be
// written safely into its part's header: the API refuses them all, but a command
// may come from elsewhere (a replay of an old letter, another producer).
func checkAttachments(atts []contract.Attachment, hasHTML bool) error {
	for i, a := range atts {
		field := "attachments[" + strconv.Itoa(i) + "]"
		if a.Filename == "" || len(a.Filename) > maxFilenameLen {
			return invalid(field+".filename", "must be 1 to 255 bytes")
		}
		if reason := headerValueProblem(a.Filename); reason != "" {
			return invalid(field+".filename", reason)
		}
		if strings.IndexFunc(a.Filename, unicode.IsControl) >= 0 {
			return invalid(field+".filename", "contains a control character")
		}
		if mt, _, err := mime.ParseMediaType(a.ContentType); err != nil || !strings.Contains(mt, "/") ||
			strings.HasPrefix(mt, "multipart/") || strings.HasPrefix(mt, "message/") {
			return invalid(field+".content_type", "not a media type a base64 part can have")
		}
		if a.ContentID != "" && !contentIDSyntax.MatchString(a.ContentID) {
			return invalid(field+".content_id", "must be 1 to 128 letters, digits, '.', '_', '@' or '-'")
		}
		if a.ContentID != "" && !hasHTML {
			return invalid(field+".content_id", "an inline attachment needs an html body")
		}
	}
	return nil
}

// part is one MIME entity: its header fields (values as written, folding
// included) and its body.
type part struct {
	header textproto.MIMEHeader
	body   []byte
}

// withAttachments returns raw, the message go-mail wrote without attachments, with
// atts added. The body go-mail wrote (text, HTML, or both as
// multipart/alternative) becomes the first part: of a multipart/related holding the
// inline attachments (those with a ContentID) after it, so the HTML finds them by
// cid:, and that (or the body itself) of a multipart/mixed holding the other
// attachments after it. The message's own header fields stay in front; only its
// Content-* fields move to the part they describe.
//
// go-mail can nest multiparts, but with one boundary for all of them when it is
// given one (and the nested parts then do not parse) or random ones (and the same
// email renders differently on every try), so the nesting is written here with
// mime/multipart and boundaries derived from the email id (boundaryFor).
func withAttachments(raw []byte, emailID string, atts []contract.Attachment) ([]byte, error) {
	head, body, ok := bytes.Cut(raw, []byte("\r\n\r\n"))
	if !ok {
		return nil, fmt.Errorf("render email %s: go-mail wrote no end of header", emailID)
	}
	message, entity := splitContentFields(head)
	root := part{header: entity, body: body}
	var inline, files []contract.Attachment
	for _, a := range atts {
		if a.ContentID != "" {
			inline = append(inline, a)
		} else {
			files = append(files, a)
		}
	}
	var err error
	if len(inline) > 0 {
		rootType, _, _ := mime.ParseMediaType(unfold(entity.Get("Content-Type")))
		if root, err = multipartOf("related", emailID, map[string]string{"type": rootType}, root, inline); err != nil {
			return nil, err
		}
	}
	if len(files) > 0 {
		if root, err = multipartOf("mixed", emailID, map[string]string{}, root, files); err != nil {
			return nil, err
		}
	}
	var out bytes.Buffer
	out.Grow(len(message) + len(root.body) + 256)
	out.Write(message)
	out.WriteString("\r\n")
	for _, name := range []string{"Content-Type", "Content-Transfer-Encoding"} {
		for _, v := range root.header[name] {
			out.WriteString(name + ": " + v + "\r\n")
		}
	}
	out.WriteString("\r\n")
	out.Write(root.body)
	return out.Bytes(), nil
}

// splitContentFields splits a header block (CRLF between lines, none at the end)
// into the message's fields, as written, and its Content-* fields, keyed by their
// names with their values as written (continuation lines included).
func splitContentFields(head []byte) (message []byte, content textproto.MIMEHeader) {
	content = textproto.MIMEHeader{}
	var kept [][]byte
	inContent := false
	var name string
	for _, line := range bytes.Split(head, []byte("\r\n")) {
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') { // continues the field above
			if inContent {
				vs := content[name]
				vs[len(vs)-1] += "\r\n" + string(line)
			} else {
				kept = append(kept, line)
			}
			continue
		}
		n, v, _ := strings.Cut(string(line), ":")
		inContent = strings.HasPrefix(strings.ToLower(n), "content-")
		if inContent {
			name = textproto.CanonicalMIMEHeaderKey(n)
			content[name] = append(content[name], strings.TrimPrefix(v, " "))
			continue
		}
		kept = append(kept, line)
	}
	return bytes.Join(kept, []byte("\r\n")), content
}

// multipartOf writes a multipart/subtype entity: first, then each attachment, with
// a boundary that occurs in none of them.
func multipartOf(subtype, emailID string, params map[string]string, first part, atts []contract.Attachment) (part, error) {
	avoid := []string{string(first.body)}
	for _, a := range atts {
		avoid = append(avoid, a.Filename)
	}
	boundary := boundaryFor(emailID+"/"+subtype, avoid...)
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	if err := w.SetBoundary(boundary); err != nil {
		return part{}, fmt.Errorf("render email %s: boundary: %w", emailID, err)
	}
	pw, err := w.CreatePart(first.header)
	if err != nil {
		return part{}, fmt.Errorf("render email %s: %w", emailID, err)
	}
	pw.Write(first.body) // a bytes.Buffer: cannot fail
	for _, a := range atts {
		h, err := attachmentHeader(a)
		if err != nil {
			return part{}, fmt.Errorf("render email %s: %w", emailID, err)
		}
		pw, err := w.CreatePart(h)
		if err != nil {
			return part{}, fmt.Errorf("render email %s: %w", emailID, err)
		}
		writeBase64Lines(pw, a.Content)
	}
	if err := w.Close(); err != nil {
		return part{}, fmt.Errorf("render email %s: %w", emailID, err)
	}
	params["boundary"] = boundary
	ctype := mime.FormatMediaType("multipart/"+subtype, params)
	return part{header: textproto.MIMEHeader{"Content-Type": {foldParams(ctype)}}, body: b.Bytes()}, nil
}

// attachmentHeader is the header of an attachment's part. The filename goes twice,
// as mail readers expect: RFC 2231 in Content-Disposition's filename
// (the filename* form, UTF-8 percent-encoded, when it is not ASCII, as
// mime.FormatMediaType writes it),
// and an RFC 2047 encoded word in Content-Type's name, which readers that predate
// RFC 2231 (and Gmail and Outlook today) read instead.
func attachmentHeader(a contract.Attachment) (textproto.MIMEHeader, error) {
	mt, params, err := mime.ParseMediaType(a.ContentType)
	if err != nil { // checkAttachments refused it already
		return nil, fmt.Errorf("attachment %q: content type: %w", a.Filename, err)
	}
	params["name"] = mime.BEncoding.Encode("UTF-8", a.Filename)
	disposition := "attachment"
	if a.ContentID != "" {
		disposition = "inline"
	}
	ctype := mime.FormatMediaType(mt, params)
	cdisp := mime.FormatMediaType(disposition, map[string]string{"filename": a.Filename})
	if ctype == "" || cdisp == "" {
		return nil, fmt.Errorf("attachment %q: its type or name cannot be written", a.Filename)
	}
	h := textproto.MIMEHeader{
		"Content-Type":              {foldParams(ctype)},
		"Content-Disposition":       {foldParams(cdisp)},
		"Content-Transfer-Encoding": {"base64"},
	}
	if a.ContentID != "" {
		h["Content-ID"] = []string{"<" + a.ContentID + ">"}
	}
	return h, nil
}

// base64Line is the length of a base64 line, RFC 2045's limit.
const base64Line = 76

// writeBase64Lines writes b in base64, 76 characters a line, CRLF between lines.
func writeBase64Lines(w io.Writer, b []byte) {
	enc := make([]byte, base64.StdEncoding.EncodedLen(len(b)))
	base64.StdEncoding.Encode(enc, b)
	out := make([]byte, 0, len(enc)+len(enc)/base64Line*2)
	for len(enc) > base64Line {
		out = append(out, enc[:base64Line]...)
		out = append(out, '\r', '\n')
		enc = enc[base64Line:]
	}
	out = append(out, enc...)
	w.Write(out) // into a multipart part of a bytes.Buffer: cannot fail
}

// foldParams folds a media type with parameters before each parameter ("a/b;
// name=x" becomes "a/b;\r\n name=x"), outside quoted strings only, so the
// header's lines stay short and unfold to the same value.
func foldParams(s string) string {
	var b strings.Builder
	quoted, escaped := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case escaped:
			escaped = false
		case quoted && c == '\\':
			escaped = true
		case c == '"':
			quoted = !quoted
		case !quoted && c == ';' && i+1 < len(s) && s[i+1] == ' ':
			b.WriteString(";\r\n")
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// unfold removes the line breaks of a folded header value.
func unfold(s string) string { return strings.ReplaceAll(s, "\r\n", "") }
