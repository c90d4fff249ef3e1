package app

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	dlt "github.com/mailroom/mailroom/modules/deadletters/contract"
	delivery "github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/platform/logging"
)

// Park stores each message of topics.dead_letter that belongs to this instance as a
// letter.
type Park struct {
	Store Store
	// InstanceID is this instance's id, matched against each SendEmail's origin.
	InstanceID string
	Now        func() time.Time
	Log        *slog.Logger
}

// Handle is the Watermill handler; storing twice is a no-op. A dead letter whose
// SendEmail names another instance as its origin is acknowledged and not stored:
// that instance accepted the email, holds it in its own database, and parks the
// letter itself (every instance reads the whole dead-letter topic). A message with
// no origin (from a version before origins, or not a SendEmail at all: a poison
// message) is stored, as it always was: no instance could otherwise claim it.
func (h Park) Handle(msg *message.Message) error {
	var cmd delivery.SendEmail
	decoded := json.Unmarshal(msg.Payload, &cmd) == nil
	if decoded && cmd.OriginInstance != "" && cmd.OriginInstance != h.InstanceID {
		h.Log.DebugContext(msg.Context(), "dead letter of an email another instance accepted; left to it",
			logging.KeyEmailID, cmd.EmailID, logging.KeyCorrelationID, middleware.MessageCorrelationID(msg),
			"origin_instance", cmd.OriginInstance, "message_uuid", msg.UUID)
		return nil
	}
	m := msg.Metadata
	l := Letter{
		EmailID:       m.Get(dlt.MetaEmailID),
		Status:        StatusParked,
		Reason:        m.Get(dlt.MetaErrorMessage),
		ErrorClass:    m.Get(dlt.MetaErrorClass),
		SMTPReply:     m.Get(dlt.MetaSMTPReply),
		OriginalTopic: m.Get(dlt.MetaOriginalTopic),
		ConsumerGroup: m.Get(dlt.MetaConsumerGroup),
		Handler:       m.Get(middleware.PoisonedHandlerKey),
		Payload:       msg.Payload,
		Metadata:      m,
		CreatedAt:     h.Now(),
	}
	if l.Reason == "" {
		l.Reason = m.Get(middleware.ReasonForPoisonedKey)
	}
	if l.OriginalTopic == "" {
		l.OriginalTopic = m.Get(middleware.PoisonedTopicKey)
	}
	if l.ErrorClass == "" {
		l.ErrorClass = "unknown"
	}
	l.Attempts, _ = strconv.Atoi(m.Get(dlt.MetaAttempts))
	l.Replay, _ = strconv.Atoi(m.Get(dlt.MetaReplay))
	l.OriginalPartition = parseInt(m.Get(dlt.MetaOriginalPartition))
	l.OriginalOffset = parseInt(m.Get(dlt.MetaOriginalOffset))
	l.FirstFailedAt = parseTime(m.Get(dlt.MetaFirstFailureAt))
	l.LastFailedAt = parseTime(m.Get(dlt.MetaLastFailureAt))
	if l.EmailID == "" && decoded {
		// A handler that set no metadata: take the payload's word.
		l.EmailID, l.Replay = cmd.EmailID, cmd.Replay
	}
	l.DedupeKey = fmt.Sprintf("%s/r%d", l.EmailID, l.Replay)
	if l.EmailID == "" {
		l.DedupeKey = "message/" + msg.UUID
	}
	parked, err := h.Store.Park(msg.Context(), l)
	if err != nil {
		return fmt.Errorf("park dead letter %s: %w", msg.UUID, err)
	}
	if parked {
		h.Log.InfoContext(msg.Context(), "dead letter parked", logging.KeyEmailID, l.EmailID,
			logging.KeyCorrelationID, middleware.MessageCorrelationID(msg), "reason", l.Reason,
			"error_class", l.ErrorClass, "attempts", l.Attempts, "message_uuid", msg.UUID)
	}
	return nil
}

func parseInt(s string) *int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return nil
	}
	return &n
}

func parseTime(s string) *time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil
	}
	return &t
}
