package render_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"unicode"
)

// received is a rendered message as a receiving mail client sees it: parsed with
// the standard library only, encoded words and transfer encodings undone.
type received struct {
	header  mail.Header
	from    *mail.Address
	to, cc  []*mail.Address
	replyTo []*mail.Address
	subject string
	// parts maps a body content type (text/plain, text/html) to its decoded text.
	parts map[string]string
	// order lists the part content types as they appear.
	order     []string
	multipart bool
	boundary  string
}

// allowedHeaders are the only header names a rendered message may carry.
var allowedHeaders = map[string]bool{
	"From": true, "To": true, "Cc": true, "Reply-To": true, "Subject": true,
	"Date": true, "Message-Id": true, "Mime-Version": true, "Content-Type": true,
	"Content-Transfer-Encoding": true, "X-Mailroom-Email-Id": true,
}

// parseReceived parses raw the way an independent reader would and checks its
// structure: header names from allowedHeaders, each at most once, and text/*
// UTF-8 bodies.
func parseReceived(raw []byte) (*received, error) {
	if !bytes.HasSuffix(raw, []byte("\r\n")) {
		return nil, fmt.Errorf("message does not end in CRLF")
	}
	if bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\n")) ||
		bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\r")) {
		return nil, fmt.Errorf("bare CR or LF in message")
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("read message: %w", err)
	}
	r := &received{header: msg.Header, parts: map[string]string{}}
	for name, values := range msg.Header {
		if !allowedHeaders[name] {
			return nil, fmt.Errorf("unexpected header %q", name)
		}
		if len(values) != 1 {
			return nil, fmt.Errorf("header %q appears %d times", name, len(values))
		}
	}

	fromList, err := msg.Header.AddressList("From")
	if err != nil || len(fromList) != 1 {
		return nil, fmt.Errorf("from %q: %v", msg.Header.Get("From"), err)
	}
	r.from = fromList[0]
	for _, h := range []struct {
		name string
		dst  *[]*mail.Address
	}{{"To", &r.to}, {"Cc", &r.cc}, {"Reply-To", &r.replyTo}} {
		if msg.Header.Get(h.name) == "" {
			continue
		}
		if *h.dst, err = msg.Header.AddressList(h.name); err != nil {
			return nil, fmt.Errorf("%s %q: %w", h.name, msg.Header.Get(h.name), err)
		}
	}
	// Names as a mail reader shows them, which must not break a line or hide in one.
	for _, list := range [][]*mail.Address{{r.from}, r.to, r.cc, r.replyTo} {
		for _, a := range list {
			shown := readName(a.Name)
			if strings.ContainsFunc(shown, breaksALine) {
				return nil, fmt.Errorf("display name %q reads as %q, with a line break or control character", a.Name, shown)
			}
			a.Name = shown
		}
	}
	dec := new(mime.WordDecoder)
	if r.subject, err = dec.DecodeHeader(msg.Header.Get("Subject")); err != nil {
		return nil, fmt.Errorf("subject: %w", err)
	}

	mediaType, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		return nil, fmt.Errorf("content-type: %w", err)
	}
	if mediaType != "multipart/alternative" {
		return r, r.addPart(mediaType, params, msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
	}
	r.multipart, r.boundary = true, params["boundary"]
	mr := multipart.NewReader(msg.Body, r.boundary)
	for {
		// NextRawPart leaves the transfer encoding for us to undo and check.
		p, err := mr.NextRawPart()
		if err == io.EOF {
			return r, nil
		}
		if err != nil {
			return nil, fmt.Errorf("next part: %w", err)
		}
		pt, pp, err := mime.ParseMediaType(p.Header.Get("Content-Type"))
		if err != nil {
			return nil, fmt.Errorf("part content-type: %w", err)
		}
		if err := r.addPart(pt, pp, p.Header.Get("Content-Transfer-Encoding"), p); err != nil {
			return nil, err
		}
	}
}

// addPart decodes one body part and records it under its media type.
func (r *received) addPart(mediaType string, params map[string]string, cte string, body io.Reader) error {
	if !strings.EqualFold(params["charset"], "utf-8") {
		return fmt.Errorf("%s charset %q", mediaType, params["charset"])
	}
	var dec io.Reader
	switch strings.ToLower(cte) {
	case "quoted-printable":
		dec = quotedprintable.NewReader(body)
	case "base64":
		dec = base64.NewDecoder(base64.StdEncoding, body)
	default:
		return fmt.Errorf("%s transfer encoding %q", mediaType, cte)
	}
	text, err := io.ReadAll(dec)
	if err != nil {
		return fmt.Errorf("decode %s: %w", mediaType, err)
	}
	if _, dup := r.parts[mediaType]; dup {
		return fmt.Errorf("two %s parts", mediaType)
	}
	r.parts[mediaType] = string(text)
	r.order = append(r.order, mediaType)
	return nil
}

// readerDecoder decodes encoded words in any charset, byte for byte, as a lenient
// mail reader might.
var readerDecoder = mime.WordDecoder{CharsetReader: func(_ string, r io.Reader) (io.Reader, error) { return r, nil }}

// readName is a display name as net/mail parsed it, as a mail reader shows it: many
// readers decode encoded words inside a quoted string too, which net/mail leaves.
func readName(name string) string {
	if shown, err := readerDecoder.DecodeHeader(name); err == nil {
		return shown
	}
	return name
}

// breaksALine reports whether r is a control character other than TAB, or U+2028 or
// U+2029: one that breaks a header line, or hides in it.
func breaksALine(r rune) bool {
	return r != '\t' && unicode.IsControl(r) || r == '\u2028' || r == '\u2029'
}

// readAddress parses an address as the email asked for it, with its display name
// as a mail reader shows it (readName).
func readAddress(s string) (*mail.Address, error) {
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, err
	}
	a.Name = readName(a.Name)
	return a, nil
}

// bare returns the addresses of list without their names.
func bare(list []*mail.Address) []string {
	var out []string
	for _, a := range list {
		out = append(out, a.Address)
	}
	return out
}

// crlf turns the line endings of s into CRLF, as rendering does to bodies.
func crlf(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.ReplaceAll(s, "\n", "\r\n")
}
