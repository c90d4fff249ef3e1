// Package ports exposes the delivery module: its command handler on the broker, the
// consumer that keeps its copy of the suppression list, and the mail server's state
// as metrics. The rendered message is the emails module's to show (GET
// /api/emails/{id}/raw): it travels back to the instance that accepted the email in
// the try's event. Delivery serves no HTTP route: the suppression list's API is the
// suppressions module's.
package ports

import (
	"errors"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/mailroom/mailroom/modules/delivery/internal/app"
	suppressions "github.com/mailroom/mailroom/modules/suppressions/contract"
)

// SuppressionChanges is the consumer of topics.suppressions: it applies each record
// to delivery's copy of the list.
type SuppressionChanges struct {
	Copy app.SuppressionCopy
	Log  *slog.Logger
}

// Handle applies one record. A record it cannot read (not JSON, invalid, or of a
// newer schema version) is logged at error and acknowledged: every instance reads
// the topic, and parking it would park it once per instance; the address keeps its
// state until a record this version reads arrives. A store that fails returns the
// error, so the message is delivered again.
func (h SuppressionChanges) Handle(msg *message.Message) error {
	change, err := suppressions.Decode(msg.Payload)
	if err != nil {
		h.Log.Error("suppression record skipped", "message_uuid", msg.UUID,
			"newer_version", errors.Is(err, suppressions.ErrNewerVersion), "error", err)
		return nil
	}
	return h.Copy.Apply(msg.Context(), change)
}
