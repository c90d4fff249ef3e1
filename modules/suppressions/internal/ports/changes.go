package ports

import (
	"fmt"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/mailroom/mailroom/modules/suppressions/contract"
	"github.com/mailroom/mailroom/modules/suppressions/internal/app"
	"github.com/mailroom/mailroom/platform/broker"
)

// Changes is the consumer of topics.suppressions: it applies each record to the
// module's table.
type Changes struct {
	Apply app.Apply
	Log   *slog.Logger
}

// Handle applies one record. A record of a schema version newer than this build
// reads is refused, unacknowledged, so that the table stops on it (the later ones
// wait behind it) until the instance is upgraded, rather than misread it or move
// past it for good. A record of a version it reads that it cannot decode (broken,
// written by no Mailroom) is logged at error and acknowledged: nobody will read it
// better. A store that fails returns the error, so the message is delivered again.
func (c Changes) Handle(msg *message.Message) error {
	if err := broker.CheckSchemaVersion(msg, contract.SchemaVersion); err != nil {
		c.Log.Error("suppression record of a newer schema version; the list waits on it until this instance is upgraded",
			"message_uuid", msg.UUID, "error", err)
		return fmt.Errorf("suppression record %s: %w", msg.UUID, err)
	}
	change, err := contract.Decode(msg.Payload)
	if err != nil {
		c.Log.Error("suppression record skipped: it cannot be read", "message_uuid", msg.UUID, "error", err)
		return nil
	}
	return c.Apply.Handle(msg.Context(), change)
}
