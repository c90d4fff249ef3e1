package ports

import (
	"errors"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/mailroom/mailroom/modules/suppressions/contract"
	"github.com/mailroom/mailroom/modules/suppressions/internal/app"
)

// Changes is the consumer of topics.suppressions: it applies each record to the
// module's table.
type Changes struct {
	Apply app.Apply
	Log   *slog.Logger
}

// Handle applies one record. A record it cannot read (not JSON, invalid, or of a
// newer schema version) is logged at error and acknowledged: on a compacted topic
// that every instance reads, parking it would park it once per instance, and the
// address keeps its state until a record this version reads arrives. A store that
// fails returns the error, so the message is delivered again.
func (c Changes) Handle(msg *message.Message) error {
	change, err := contract.Decode(msg.Payload)
	if err != nil {
		c.Log.Error("suppression record skipped", "message_uuid", msg.UUID,
			"newer_version", errors.Is(err, contract.ErrNewerVersion), "error", err)
		return nil
	}
	return c.Apply.Handle(msg.Context(), change)
}
