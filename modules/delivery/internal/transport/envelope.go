package transport

import (
	"bytes"

	"github.com/mailroom/mailroom/modules/delivery/internal/render"
)

// checkMessage refuses a message that cannot be sent exactly as stored: render
// guarantees all of this, and checking again here keeps a bug or another producer
// of render.Message from injecting SMTP commands or parameters, or from sending
// bytes other than the stored ones.
func checkMessage(msg render.Message) error {
	if !plainPath(msg.EnvelopeFrom) {
		return messageError("invalid envelope sender %q", msg.EnvelopeFrom)
	}
	if len(msg.Recipients) == 0 {
		return messageError("no recipients")
	}
	for _, r := range msg.Recipients {
		if !plainPath(r) {
			return messageError("invalid recipient %q", r)
		}
	}
	// The DATA encoding turns a bare LF into CRLF, and the end of data makes the
	// last line end in CRLF: either would change the bytes the server receives.
	raw := msg.Raw
	if len(raw) == 0 || !bytes.HasSuffix(raw, []byte("\r\n")) {
		return messageError("raw message does not end in CRLF")
	}
	for i, b := range raw {
		if b == '\n' && (i == 0 || raw[i-1] != '\r') || b == '\r' && (i+1 == len(raw) || raw[i+1] != '\n') {
			return messageError("raw message has a bare CR or LF at byte %d", i)
		}
	}
	return nil
}

// plainPath reports whether addr can go between the angle brackets of MAIL FROM or
// RCPT TO: printable ASCII with one "@" in the middle and nothing that ends the
// path or starts a parameter.
func plainPath(addr string) bool {
	at := -1
	for i := 0; i < len(addr); i++ {
		switch b := addr[i]; {
		case b <= ' ' || b >= 0x7f || b == '<' || b == '>' || b == '"' || b == '\\':
			return false
		case b == '@':
			if at >= 0 {
				return false
			}
			at = i
		}
	}
	return at > 0 && at < len(addr)-1
}
