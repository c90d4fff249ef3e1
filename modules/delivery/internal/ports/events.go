package ports

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	dlt "github.com/mailroom/mailroom/modules/deadletters/contract"
	"github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/modules/delivery/internal/app"
	"github.com/mailroom/mailroom/platform/broker"
)

// Commands consumes topics.send: it reads each SendEmail and hands it to the
// SendEmail use case. A payload it cannot read is poison: it goes to the dead
// letters through the router's poison queue, with metadata saying where it came from.
type Commands struct {
	Send          app.SendEmail
	SendTopic     string
	ConsumerGroup string
	Now           func() time.Time
}

// Handle is the Watermill handler. A nil return acknowledges the message; a
// broker.Permanent error (poison) sends it to the dead letters; any other error
// nacks it for redelivery (a database outage, or shutdown).
func (h Commands) Handle(msg *message.Message) error {
	cmd, err := readCommand(msg)
	if err != nil {
		h.markPoison(msg, cmd.EmailID, err)
		return broker.Permanent(fmt.Errorf("poison SendEmail %s: %w", msg.UUID, err))
	}
	src := app.Source{Topic: h.SendTopic, ConsumerGroup: h.ConsumerGroup}
	if o, ok := broker.OriginOf(msg.Context()); ok {
		part := int64(o.Partition)
		src.Partition, src.Offset = &part, &o.Offset
	}
	return h.Send.Handle(msg.Context(), cmd, src)
}

// readCommand reads msg's SendEmail. A schema version this build does not read is
// refused like a payload it cannot read: the command goes to the dead letters,
// parked under its email when the payload names one, for an operator to replay
// once the workers are upgraded; it is never sent as a misread older version.
func readCommand(msg *message.Message) (contract.SendEmail, error) {
	var cmd contract.SendEmail
	decodeErr := json.Unmarshal(msg.Payload, &cmd)
	if decodeErr == nil && (cmd.EmailID == "" || cmd.Attempt < 1) {
		decodeErr = errors.New("email_id and attempt are required")
	}
	if err := broker.CheckSchemaVersion(msg, contract.SchemaVersion); err != nil {
		return cmd, err
	}
	return cmd, decodeErr
}

// markPoison sets the metadata the poison queue carries to the dead letters.
func (h Commands) markPoison(msg *message.Message, emailID string, cause error) {
	m := msg.Metadata
	m.Set(dlt.MetaOriginalTopic, h.SendTopic)
	m.Set(dlt.MetaConsumerGroup, h.ConsumerGroup)
	if o, ok := broker.OriginOf(msg.Context()); ok {
		m.Set(dlt.MetaOriginalPartition, strconv.FormatInt(int64(o.Partition), 10))
		m.Set(dlt.MetaOriginalOffset, strconv.FormatInt(o.Offset, 10))
	}
	if emailID != "" {
		m.Set(dlt.MetaEmailID, emailID)
	}
	m.Set(dlt.MetaErrorClass, contract.ClassPoison)
	m.Set(dlt.MetaErrorMessage, cause.Error())
	m.Set(dlt.MetaLastFailureAt, h.Now().UTC().Format(time.RFC3339Nano))
}
