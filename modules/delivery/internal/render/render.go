// Package render turns a SendEmail command into the exact RFC 5322 bytes handed to
// the transport. Those bytes are stored and served by the API as the raw message, so
// rendering is deterministic (apart from the Date header, taken from an injectable
// clock) and refuses anything that could make a header or a recipient the request
// did not ask for.
package render

import (
	"bytes"
	"fmt"
	"net/mail"
	"strconv"
	"time"
	"unicode/utf8"

	gomail "github.com/wneessen/go-mail"

	"github.com/mailroom/mailroom/modules/delivery/contract"
)

// HeaderEmailID names the header carrying the Mailroom email id, so that a message
// found in a mailbox or a bounce can be traced back to its email.
const HeaderEmailID = "X-Mailroom-Email-ID"

// maxEmailIDLen bounds the email id, which goes into two headers.
const maxEmailIDLen = 128

// Options holds what rendering needs beyond the email itself.
type Options struct {
	// DefaultFrom is the From address used when the email has none (smtp.from).
	DefaultFrom string
	// Now gives the Date header; nil means time.Now. Tests inject a fixed clock.
	Now func() time.Time
}

// Message is a rendered email: the bytes to send and the envelope to send them with.
type Message struct {
	// Raw is the complete message, CRLF line endings, ending in CRLF. The transport
	// sends exactly these bytes, and the API shows them as the raw message.
	Raw []byte
	// EnvelopeFrom is the bare From address, for MAIL FROM.
	EnvelopeFrom string
	// Recipients are the bare addresses of the recipients the try carries (each
	// one named by To, Cc or Bcc), domains lower-cased, for RCPT TO. Bcc
	// addresses appear only here, never in Raw.
	Recipients []string
	// MessageID is the Message-ID header value, angle brackets included:
	// "<{email_id}@{from domain}>". It is the same on every attempt and replay so a
	// receiver can drop a duplicate.
	MessageID string
}

// Render builds the message for e. Every error it returns is an *Error (permanent,
// matching ErrInvalid) except a failure inside go-mail, which would be a bug.
func Render(e contract.SendEmail, opts Options) (Message, error) {
	env, err := prepare(e, opts)
	if err != nil {
		return Message{}, err
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}

	msgOpts := []gomail.MsgOption{
		gomail.WithNoDefaultUserAgent(),
		gomail.WithCharset(gomail.CharsetUTF8),
		gomail.WithEncoding(gomail.EncodingQP),
	}
	if env.text != "" && env.html != "" {
		msgOpts = append(msgOpts, gomail.WithBoundary(boundaryFor(e.EmailID, env.text, env.html)))
	}
	m := gomail.NewMsg(msgOpts...)

	m.SetAddrHeaderFromMailAddress(gomail.HeaderFrom, env.from)
	// go-mail writes an empty "To:" line for a header set to no address.
	if len(env.to) > 0 {
		m.SetAddrHeaderFromMailAddress(gomail.HeaderTo, env.to...)
	}
	if len(env.cc) > 0 {
		m.SetAddrHeaderFromMailAddress(gomail.HeaderCc, env.cc...)
	}
	if env.replyTo != nil {
		m.SetAddrHeaderFromMailAddress(gomail.HeaderReplyTo, env.replyTo)
	}
	m.Subject(subjectValue(e.Subject))
	m.SetDateWithValue(now())
	m.SetMessageIDWithValue(env.messageID)
	m.SetGenHeader(gomail.Header(HeaderEmailID), e.EmailID)
	// Custom headers: go-mail writes every generic header sorted by name, encodes a
	// value that is not ASCII (Q encoding) and folds long ones at spaces.
	for name, value := range e.Headers {
		m.SetGenHeader(gomail.Header(name), value)
	}

	singleQP := false
	switch {
	case env.text != "" && env.html != "":
		m.SetBodyString(gomail.TypeTextPlain, env.text, gomail.WithPartEncoding(bodyEncoding(env.text)))
		m.AddAlternativeString(gomail.TypeTextHTML, env.html, gomail.WithPartEncoding(bodyEncoding(env.html)))
	case env.html != "":
		enc := bodyEncoding(env.html)
		singleQP = enc == gomail.EncodingQP
		m.SetBodyString(gomail.TypeTextHTML, env.html, gomail.WithPartEncoding(enc))
	default: // text only, or an empty text body if the API let neither through
		enc := bodyEncoding(env.text)
		singleQP = enc == gomail.EncodingQP
		m.SetBodyString(gomail.TypeTextPlain, env.text, gomail.WithPartEncoding(enc))
	}

	var buf bytes.Buffer
	if _, err := m.WriteTo(&buf); err != nil {
		return Message{}, fmt.Errorf("render email %s: write message: %w", e.EmailID, err)
	}
	if len(e.Attachments) > 0 {
		raw, err := withAttachments(buf.Bytes(), e.EmailID, e.Attachments)
		if err != nil {
			return Message{}, err
		}
		buf.Reset()
		buf.Write(raw) // ends with the closing boundary's CRLF
	}
	// SMTP's end of data makes the last line end in CRLF whatever we send, so the
	// stored bytes must already end so to be what the server receives. A
	// quoted-printable body is closed with a soft line break, which decodes to
	// nothing, rather than a hard one that would add a newline to the text.
	if !bytes.HasSuffix(buf.Bytes(), []byte("\r\n")) {
		if singleQP {
			buf.WriteString("=")
		}
		buf.WriteString("\r\n")
	}

	return Message{
		Raw:          buf.Bytes(),
		EnvelopeFrom: env.from.Address,
		Recipients:   env.recipients,
		MessageID:    "<" + env.messageID + ">",
	}, nil
}

// envelopeRecipients returns the addresses of the recipients a try carries, for RCPT
// TO: each must be one that To, Cc or Bcc names (named, by parsed address), so a
// command can never send to anyone the email does not name, and each goes once.
func envelopeRecipients(carried []contract.Recipient, named map[string]bool) ([]string, error) {
	if len(carried) == 0 {
		return nil, invalid("recipients", "no recipient")
	}
	out := make([]string, 0, len(carried))
	seen := make(map[string]bool, len(carried))
	for i, r := range carried {
		if !named[r.Address] {
			return nil, invalid("recipients["+strconv.Itoa(i)+"]", "not an address of to, cc or bcc")
		}
		if !seen[r.Address] {
			seen[r.Address] = true
			out = append(out, r.Address)
		}
	}
	return out, nil
}

// envelope is a validated, normalised SendEmail.
type envelope struct {
	from       *mail.Address
	to, cc     []*mail.Address
	replyTo    *mail.Address
	recipients []string
	messageID  string // without angle brackets
	text, html string // canonical newlines
}

// prepare validates every field of e that reaches a header or an SMTP command and
// normalises addresses and bodies.
func prepare(e contract.SendEmail, opts Options) (envelope, error) {
	var env envelope
	if len(e.EmailID) > maxEmailIDLen || !isDotAtom(e.EmailID) {
		return env, invalid("email_id", "must be 1 to 128 letters, digits or dot-atom symbols")
	}

	from, field := e.From, "from"
	if from == "" {
		from, field = opts.DefaultFrom, "smtp.from"
	}
	var err error
	if env.from, err = parseAddress(field, from); err != nil {
		return env, err
	}
	env.messageID = e.EmailID + "@" + domainOf(env.from.Address)

	named := make(map[string]bool)
	for _, list := range []struct {
		name  string
		addrs []string
		dst   *[]*mail.Address
	}{{"to", e.To, &env.to}, {"cc", e.Cc, &env.cc}, {"bcc", e.Bcc, nil}} {
		for i, s := range list.addrs {
			a, err := parseAddress(list.name+"["+strconv.Itoa(i)+"]", s)
			if err != nil {
				return env, err
			}
			if list.dst != nil {
				*list.dst = append(*list.dst, a)
			}
			named[a.Address] = true
		}
	}
	if env.recipients, err = envelopeRecipients(e.Recipients, named); err != nil {
		return env, err
	}

	if e.ReplyTo != "" {
		if env.replyTo, err = parseAddress("reply_to", e.ReplyTo); err != nil {
			return env, err
		}
	}
	if reason := headerValueProblem(e.Subject); reason != "" {
		return env, invalid("subject", reason)
	}
	for _, body := range []struct{ field, s string }{{"text", e.Text}, {"html", e.HTML}} {
		if !utf8.ValidString(body.s) {
			return env, invalid(body.field, "not valid UTF-8")
		}
	}
	env.text, env.html = canonicalNewlines(e.Text), canonicalNewlines(e.HTML)
	if err := checkHeaders(e.Headers); err != nil {
		return env, err
	}
	if err := checkAttachments(e.Attachments, e.HTML != ""); err != nil {
		return env, err
	}
	return env, nil
}
