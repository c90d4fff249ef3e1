package transport

import (
	"context"

	"github.com/mailroom/mailroom/modules/delivery/internal/render"
)

// Capture is the embedded default transport: it sends nothing. The rendered message
// is stored with every attempt anyway (GET /api/emails/{id}/raw shows it), so a new
// user sees real output without a mail server.
type Capture struct{}

// Send accepts every message.
func (Capture) Send(context.Context, render.Message) (string, error) { return "250 captured", nil }

// Close has nothing to close.
func (Capture) Close() error { return nil }
