package transport

import (
	"context"
	"errors"
	"io"
	"net/textproto"
	"strings"

	"github.com/wneessen/go-mail/smtp"

	"github.com/mailroom/mailroom/modules/delivery/internal/render"
)

// dataChunk is how much message data is written per deadline extension, so a slow
// but moving link gets CommandTimeout per chunk rather than for the whole message.
const dataChunk = 64 << 10

// deliver runs one mail transaction on c: RSET first when the connection was used
// before, then MAIL FROM, one RCPT TO per recipient, DATA and the message.
//
// Recipients: the first RCPT refused ends the transaction. A 5xx refusal is
// permanent for the whole message, whose error names the recipient, so the email is
// dead-lettered with a clear reason rather than sent to only some of its
// recipients; a 4xx makes the whole message transient. Either way no recipient
// receives it and the caller discards the connection (QUIT aborts the transaction).
//
// redial reports a failure before any RCPT on a reused connection that turned out
// broken (an I/O error or 421): nothing was attempted, and a fresh connection may
// well succeed.
func (c *conn) deliver(ctx context.Context, msg render.Message, reused bool) (reply string, redial bool, err error) {
	stop := context.AfterFunc(ctx, func() { _ = c.raw.Close() })
	defer stop()

	if reused {
		c.deadline()
		if err := c.client.Reset(); err != nil {
			return "", broken(err), classify(ctx, "rset", err)
		}
	}
	c.deadline()
	if err := c.client.Mail("<" + msg.EnvelopeFrom + ">"); err != nil {
		return "", reused && broken(err), classify(ctx, "mail from "+msg.EnvelopeFrom, err)
	}
	for _, rcpt := range msg.Recipients {
		c.deadline()
		if err := c.client.Rcpt("<" + rcpt + ">"); err != nil {
			return "", false, classify(ctx, "rcpt "+rcpt, err)
		}
	}
	c.deadline()
	w, err := c.client.Data()
	if err != nil {
		return "", false, classify(ctx, "data", err)
	}
	for off := 0; off < len(msg.Raw); off += dataChunk {
		c.deadline()
		if _, err := w.Write(msg.Raw[off:min(off+dataChunk, len(msg.Raw))]); err != nil {
			return "", false, classify(ctx, "data", err)
		}
	}

	// From here on the server may accept the message at any moment. Abandoning it
	// now would make the retry a likely duplicate, so cancellation stops applying:
	// the verdict is awaited for at most CommandTimeout.
	if !stop() {
		return "", false, classify(ctx, "data", context.Cause(ctx))
	}
	c.deadline()
	if err := w.Close(); err != nil {
		return "", false, classify(context.Background(), "end of data", err)
	}
	return acceptReply(w), false, nil
}

// broken reports whether err means the connection is unusable rather than that the
// server refused something: an I/O error, or 421 (closing the channel).
func broken(err error) bool {
	var reply *textproto.Error
	if errors.As(err, &reply) {
		return reply.Code == 421
	}
	return true
}

// acceptReply returns the server's reply to the end of data, e.g.
// "250 2.0.0 Ok: queued as 4B2C1", or "250 OK" when go-mail cannot tell.
func acceptReply(w io.WriteCloser) string {
	if dc, ok := w.(*smtp.DataCloser); ok {
		if text := dc.ServerResponse(); text != "" {
			return "250 " + strings.ReplaceAll(text, "\n", " ")
		}
	}
	return "250 OK"
}
