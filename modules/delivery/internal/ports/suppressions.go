// Package ports exposes the delivery module: its command handler on the broker, the
// consumer that keeps its copy of the suppression list, and the mail server's state
// as metrics. The rendered message is the emails module's to show (GET
// /api/emails/{id}/raw): it travels back to the instance that accepted the email in
// the try's event. Delivery serves no HTTP route: the suppression list's API is the
// suppressions module's.
package ports

import (
	"fmt"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/mailroom/mailroom/modules/delivery/internal/app"
	suppressions "github.com/mailroom/mailroom/modules/suppressions/contract"
	"github.com/mailroom/mailroom/platform/broker"
)

// SuppressionChanges is the consumer of topics.suppressions: it applies each record
// to delivery's copy of the list.
type SuppressionChanges struct {
	Copy app.SuppressionCopy
	Log  *slog.Logger
}

// Handle applies one record. A record of a schema version newer than this build
// reads is refused, unacknowledged, so that the copy stops on it (the later ones
// wait behind it) until the worker is upgraded, rather than misread it or move
// past it for good. A record of a version it reads that it cannot decode (broken,
// written by no Mailroom) is logged at error and acknowledged: nobody will read it
// better. A store that fails returns the error, so the message is delivered again.
func (h SuppressionChanges) Handle(msg *message.Message) error {
	if err := broker.CheckSchemaVersion(msg, suppressions.SchemaVersion); err != nil {
		h.Log.Error("suppression record of a newer schema version; the copy of the list waits on it until this worker is upgraded",
			"message_uuid", msg.UUID, "error", err)
		return fmt.Errorf("suppression record %s: %w", msg.UUID, err)
	}
	change, err := suppressions.Decode(msg.Payload)
	if err != nil {
		h.Log.Error("suppression record skipped: it cannot be read", "message_uuid", msg.UUID, "error", err)
		return nil
	}
	return h.Copy.Apply(msg.Context(), change)
}
