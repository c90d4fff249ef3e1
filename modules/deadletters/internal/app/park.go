package app

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	dlt "github.com/mailroom/mailroom/modules/deadletters/contract"
	delivery "github.com/mailroom/mailroom/modules/delivery/contract"
)

// Park stores each message of topics.dead_letter as a letter.
type Park struct {
	Store Store
	Now   func() time.Time
}

// Handle is the Watermill handler; storing twice is a no-op.
func (h Park) Handle(msg *message.Message) error {
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
	if l.EmailID == "" {
		// A handler that set no metadata: try the payload.
		var cmd delivery.SendEmail
		if json.Unmarshal(msg.Payload, &cmd) == nil {
			l.EmailID, l.Replay = cmd.EmailID, cmd.Replay
		}
	}
	l.DedupeKey = fmt.Sprintf("%s/r%d", l.EmailID, l.Replay)
	if l.EmailID == "" {
		l.DedupeKey = "message/" + msg.UUID
	}
	if _, err := h.Store.Park(msg.Context(), l); err != nil {
		return fmt.Errorf("park dead letter %s: %w", msg.UUID, err)
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
