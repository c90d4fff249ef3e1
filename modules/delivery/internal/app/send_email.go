package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	dlt "github.com/mailroom/mailroom/modules/deadletters/contract"
	"github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/modules/delivery/internal/render"
	"github.com/mailroom/mailroom/platform/broker"
	"github.com/mailroom/mailroom/platform/logging"
)

// SendEmail handles one SendEmail command: it sends the email once, records the
// outcome idempotently, and decides what comes next: nothing (sent), a retry due
// later (a transient failure with attempts left), or the dead letters (a permanent
// failure, attempts exhausted, or a payload that cannot be read).
//
// Retries are not waited for here: the next attempt is an outbox row due at a later
// time, so a backing-off email never holds up the lane or partition it came from,
// and a scheduled retry survives a restart.
type SendEmail struct {
	Store       Store
	Transport   Transport
	Render      render.Options
	Retry       RetryPolicy
	IsPermanent func(error) bool
	// ReplyOf is the mail server's reply in a Transport error, "" if none.
	ReplyOf func(error) string
	// SendTopic and ConsumerGroup are recorded with dead letters.
	SendTopic     string
	ConsumerGroup string
	Now           func() time.Time
	Log           *slog.Logger
	// Unrecorded remembers sends the store failed to record; nil forgets them, and
	// a redelivery then sends again.
	Unrecorded *Unrecorded
}

// Unrecorded remembers, in memory, emails the transport handed over whose record
// the store then refused (a full disk, a read-only database). A redelivery of the
// same attempt retries the record instead of sending again: without it, each
// redelivery during a database outage would send one more copy. Memory is enough:
// it is lost only with the process, the one window where the contract allows a
// second copy. It is safe for concurrent use.
type Unrecorded struct {
	mu   sync.Mutex
	sent map[attemptKey]Outcome
}

type attemptKey struct {
	emailID         string
	replay, attempt int
}

// NewUnrecorded returns an empty Unrecorded.
func NewUnrecorded() *Unrecorded { return &Unrecorded{sent: map[attemptKey]Outcome{}} }

func (u *Unrecorded) remember(k attemptKey, o Outcome) {
	if u == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.sent[k] = o
}

func (u *Unrecorded) lookup(k attemptKey) (Outcome, bool) {
	if u == nil {
		return Outcome{}, false
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	o, ok := u.sent[k]
	return o, ok
}

func (u *Unrecorded) forget(k attemptKey) {
	if u == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.sent, k)
}

// Handle is the Watermill handler. A nil return acknowledges the message; a
// broker.Permanent error sends it to the dead letters; any other error nacks it for
// redelivery (a database outage, or shutdown).
func (h SendEmail) Handle(msg *message.Message) error {
	ctx := msg.Context()
	var cmd contract.SendEmail
	if err := json.Unmarshal(msg.Payload, &cmd); err != nil || cmd.EmailID == "" || cmd.Attempt < 1 {
		if err == nil {
			err = errors.New("email_id and attempt are required")
		}
		h.markDead(msg, cmd, State{ErrorClass: ClassPoison, LastError: err.Error()})
		return broker.Permanent(fmt.Errorf("poison SendEmail %s: %w", msg.UUID, err))
	}
	log := h.Log.With(logging.KeyEmailID, cmd.EmailID, logging.KeyCorrelationID, cmd.CorrelationID,
		"attempt", cmd.Attempt, "replay", cmd.Replay)

	st, found, err := h.Store.Load(ctx, cmd.EmailID)
	if err != nil {
		return fmt.Errorf("load delivery state of %s: %w", cmd.EmailID, err)
	}
	if found {
		switch {
		case st.Status == StatusSent:
			log.Debug("already sent; acknowledging a redelivery")
			return nil
		case cmd.Replay < st.Replay || (cmd.Replay == st.Replay && cmd.Attempt < st.Attempts):
			log.Debug("stale attempt; acknowledging")
			return nil
		case cmd.Replay == st.Replay && cmd.Attempt == st.Attempts && st.Status == StatusDead:
			// Recorded dead, but the move to the dead letters may not have happened
			// (a crash in between): do it again; the dead letters are idempotent.
			h.markDead(msg, cmd, st)
			return broker.Permanent(fmt.Errorf("email %s: %s", cmd.EmailID, st.LastError))
		case cmd.Replay == st.Replay && cmd.Attempt == st.Attempts:
			log.Debug("attempt already recorded; its retry is scheduled")
			return nil
		}
	}
	if !found || cmd.Replay > st.Replay {
		st = State{EmailID: cmd.EmailID, Replay: cmd.Replay}
	}
	key := attemptKey{cmd.EmailID, cmd.Replay, cmd.Attempt}
	if out, ok := h.Unrecorded.lookup(key); ok {
		// An earlier delivery of this message sent the email and could not record
		// it: record it now rather than send a second copy.
		if err := h.Store.Record(context.WithoutCancel(ctx), out, cmd.CorrelationID); err != nil {
			return fmt.Errorf("record sent %s (sent by an earlier delivery): %w", cmd.EmailID, err)
		}
		h.Unrecorded.forget(key)
		log.Info("email sent", "reply", out.State.LastReply, "recorded_late", true)
		return nil
	}

	now := h.Now()
	rendered, err := render.Render(cmd, render.Options{DefaultFrom: h.Render.DefaultFrom, Now: func() time.Time { return now }})
	if err != nil {
		return h.fail(ctx, msg, cmd, st, rendered, err, true, log)
	}
	reply, err := h.Transport.Send(ctx, rendered)
	if err != nil && ctx.Err() != nil {
		// Shutdown, not failure: the message is redelivered and tried again.
		return fmt.Errorf("send %s interrupted: %w", cmd.EmailID, ctx.Err())
	}
	if err != nil {
		return h.fail(ctx, msg, cmd, st, rendered, err, h.IsPermanent(err), log)
	}
	st.Attempts, st.Status, st.LastReply = cmd.Attempt, StatusSent, reply
	out := Outcome{State: st, Message: rendered, OwnerKeyID: cmd.OwnerKeyID, Events: []Event{{contract.EventEmailSent,
		contract.EmailSent{EmailID: cmd.EmailID, Attempt: cmd.Attempt, Reply: reply, At: h.Now()}}}}
	if err := h.Store.Record(context.WithoutCancel(ctx), out, cmd.CorrelationID); err != nil {
		// The server has the email. A redelivery to this process records it from
		// memory; only if the process dies first is it sent again (the one
		// duplicate the contract allows), under the same Message-ID.
		h.Unrecorded.remember(key, out)
		return fmt.Errorf("record sent %s: %w", cmd.EmailID, err)
	}
	log.Info("email sent", "reply", reply)
	return nil
}

// fail records a failed attempt and either schedules the next one or sends the
// message to the dead letters.
func (h SendEmail) fail(ctx context.Context, msg *message.Message, cmd contract.SendEmail, st State,
	rendered render.Message, sendErr error, permanent bool, log *slog.Logger) error {
	now := h.Now()
	st.Attempts = cmd.Attempt
	st.LastError = sendErr.Error()
	if h.ReplyOf != nil {
		st.LastReply = h.ReplyOf(sendErr)
	}
	if st.FirstFailedAt == nil {
		st.FirstFailedAt = &now
	}
	st.LastFailedAt = &now
	failed := Event{contract.EventEmailAttemptFailed, contract.EmailAttemptFailed{
		EmailID: cmd.EmailID, Attempt: cmd.Attempt, Error: sendErr.Error(), Permanent: permanent, At: now}}
	out := Outcome{State: st, Message: rendered, OwnerKeyID: cmd.OwnerKeyID, Events: []Event{failed}}

	if !permanent && cmd.Attempt < h.Retry.MaxAttempts {
		next := cmd
		next.Attempt = cmd.Attempt + 1
		at := now.Add(h.Retry.Delay(cmd.Attempt))
		out.State.Status = StatusRetrying
		out.Retry, out.RetryAt = &next, at
		out.Events = append(out.Events, Event{contract.EventEmailRetryScheduled, contract.EmailRetryScheduled{
			EmailID: cmd.EmailID, NextAttempt: next.Attempt, NextAttemptAt: at, LastError: sendErr.Error(), At: now}})
		if err := h.Store.Record(context.WithoutCancel(ctx), out, cmd.CorrelationID); err != nil {
			return fmt.Errorf("record retry of %s: %w", cmd.EmailID, err)
		}
		log.Warn("attempt failed; retry scheduled", "error", sendErr, "next_attempt_at", at)
		return nil
	}
	out.State.Status = StatusDead
	out.State.ErrorClass = ClassPermanent
	if !permanent {
		out.State.ErrorClass = ClassExhausted
	}
	if err := h.Store.Record(context.WithoutCancel(ctx), out, cmd.CorrelationID); err != nil {
		return fmt.Errorf("record failure of %s: %w", cmd.EmailID, err)
	}
	log.Warn("email failed for good; moving to the dead letters", "error", sendErr, "class", out.State.ErrorClass)
	h.markDead(msg, cmd, out.State)
	return broker.Permanent(fmt.Errorf("email %s: %w", cmd.EmailID, sendErr))
}

// markDead sets the dead-letter metadata the poison-queue middleware carries over.
func (h SendEmail) markDead(msg *message.Message, cmd contract.SendEmail, st State) {
	m := msg.Metadata
	m.Set(dlt.MetaOriginalTopic, h.SendTopic)
	m.Set(dlt.MetaConsumerGroup, h.ConsumerGroup)
	if p, ok := partitionOf(msg); ok {
		m.Set(dlt.MetaOriginalPartition, strconv.FormatInt(int64(p.partition), 10))
		m.Set(dlt.MetaOriginalOffset, strconv.FormatInt(p.offset, 10))
	}
	m.Set(dlt.MetaEmailID, cmd.EmailID)
	m.Set(dlt.MetaAttempts, strconv.Itoa(st.Attempts))
	m.Set(dlt.MetaReplay, strconv.Itoa(cmd.Replay))
	m.Set(dlt.MetaErrorClass, st.ErrorClass)
	m.Set(dlt.MetaErrorMessage, st.LastError)
	m.Set(dlt.MetaSMTPReply, st.LastReply)
	if st.FirstFailedAt != nil {
		m.Set(dlt.MetaFirstFailureAt, st.FirstFailedAt.UTC().Format(time.RFC3339Nano))
	}
	last := h.Now()
	if st.LastFailedAt != nil {
		last = *st.LastFailedAt
	}
	m.Set(dlt.MetaLastFailureAt, last.UTC().Format(time.RFC3339Nano))
}
