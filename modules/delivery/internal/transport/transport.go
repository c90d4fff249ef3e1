// Package transport hands rendered messages to a mail server. The delivery module
// renders once, stores the bytes, and sends exactly those bytes, so what the API
// shows as the raw message is what the server received.
package transport

import (
	"context"

	"github.com/mailroom/mailroom/modules/delivery/internal/render"
)

// Transport is what the delivery module sends through; SMTP sends for real and a
// capture transport keeps messages in the process for development and tests.
type Transport interface {
	// Send hands msg.Raw, byte for byte, to the server with msg.EnvelopeFrom as the
	// envelope sender and msg.Recipients as the envelope recipients, and returns the
	// server's acceptance reply (e.g. "250 2.0.0 OK: queued").
	//
	// On failure the server did not confirm acceptance, and IsPermanent(err) tells
	// whether trying the same message again could ever succeed: a permanent error
	// should dead-letter the email, a transient one schedule a retry. (A connection
	// lost after the whole message was sent leaves the server's verdict unknown:
	// that transient error is SMTP's duplicate window, which the stable Message-ID
	// lets receivers close.) Cancelling ctx
	// aborts the send promptly with a transient error, except that once the whole
	// message is written the server's verdict is awaited anyway (see SMTP.Send).
	// Send is safe for concurrent use.
	Send(ctx context.Context, msg render.Message) (reply string, err error)

	// Close releases what the transport holds (idle connections). Sends still in
	// flight finish; Send must not be called after Close.
	Close() error
}
