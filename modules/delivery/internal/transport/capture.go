package transport

import (
	"context"

	"github.com/mailroom/mailroom/modules/delivery/internal/render"
)

// Capture is the embedded default transport: it sends nothing. The rendered message
// still goes back to the emails module in every try's event (GET
// /api/emails/{id}/raw shows it), so a new user sees real output without a mail
// server.
type Capture struct{}

var _ Transport = Capture{}

// Send reports every recipient Delivered with the reply "250 captured".
func (Capture) Send(_ context.Context, msg render.Message) (Result, error) {
	res := Result{Recipients: make([]RecipientResult, len(msg.Recipients))}
	for i, addr := range msg.Recipients {
		res.Recipients[i] = RecipientResult{
			Address: addr, Verdict: Delivered, Stage: StageData, Code: 250, Detail: "250 captured",
		}
	}
	return res, nil
}

// Probe always succeeds: there is no server to reach.
func (Capture) Probe(context.Context) error { return nil }

// Close has nothing to close.
func (Capture) Close() error { return nil }
