package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/modules/delivery/internal/render"
	"github.com/mailroom/mailroom/modules/delivery/internal/transport"
	"github.com/mailroom/mailroom/platform/logging"
)

// SendEmail tries an email once: one SMTP transaction for every recipient the
// command carries that is not suppressed. Each recipient gets its own outcome
// (delivered, bounced, deferred, or failed once its retries ran out), recorded
// idempotently with the event that reports it; the deferred ones are carried by the
// next try, an outbox row due later, so a backing-off email never holds up its lane
// and its retry survives a restart. An email that ends with a failed recipient, or
// with nobody delivered, leaves a dead letter in the same transaction.
//
// A send that meets an outage or a configuration error decides nothing: it burns no
// attempt, closes the Gate, and waits there with every other lane until the server
// answers, then tries again.
type SendEmail struct {
	Store     Store
	Transport Transport
	Gate      *ServerGate
	// Render renders the message; its Now dates it.
	Render render.Options
	Retry  RetryPolicy
	Now    func() time.Time
	Log    *slog.Logger
	// Unrecorded remembers outcomes the store failed to record; nil forgets them,
	// and a redelivery then sends again.
	Unrecorded *Unrecorded
	// ListReady is closed once delivery's copy of the suppression list holds the
	// whole list (on Kafka, once its consumer has read the topic as far as it went
	// at start); every try waits for it, so a worker that starts with an empty
	// copy sends nothing to a suppressed address while it learns the list. Nil:
	// no wait.
	ListReady <-chan struct{}
}

// Source says where a command was read, for the dead letter it may cause.
type Source struct {
	// Topic and ConsumerGroup name the topic and the group that read the command.
	Topic, ConsumerGroup string
	// Partition and Offset locate it on Kafka; nil on the Go-channel broker.
	Partition, Offset *int64
}

// ErrInterrupted wraps the error of a try that shutdown interrupted: the command is
// redelivered and tried again, never counted.
var ErrInterrupted = errors.New("send interrupted")

// ErrOutcomeNotPublished wraps the error of a try that is recorded but whose
// messages (its event, its retry, its dead letter) are not all in the broker yet
// (it refuses writes, or the relay lags): the command is not acknowledged, so that
// its offset is never committed while what its try produced is on this disk only.
// Its redelivery, recognised as recorded, waits for them again
// (Store.AwaitOutcome) instead of sending.
var ErrOutcomeNotPublished = errors.New("what the try produced is not yet published to the broker")

// OutcomeNotPublishedLog is the message of the warning logged when a try is recorded
// but what it produced is not in the broker after the store's wait
// (ErrOutcomeNotPublished).
const OutcomeNotPublishedLog = "email tried, but what its try produced is not in the broker yet; the SendEmail is not acknowledged until it is"

// Handle tries cmd once. It returns nil once the try is recorded (or was recorded
// before: a redelivery) and, where the store waits for it (on Kafka), what the try
// produced is in the broker; and an error when the command must be delivered
// again: the database refused the record, shutdown interrupted the send
// (ErrInterrupted), or what the try produced is not in the broker yet
// (ErrOutcomeNotPublished).
func (h SendEmail) Handle(ctx context.Context, cmd contract.SendEmail, src Source) error {
	if len(cmd.Recipients) == 0 {
		// A command from before recipients had outcomes of their own: it stands
		// for the whole email.
		cmd.Recipients = contract.EnvelopeOf(cmd.Email)
	}
	log := h.Log.With(logging.KeyEmailID, cmd.EmailID, logging.KeyCorrelationID, cmd.CorrelationID,
		"attempt", cmd.Attempt, "replay", cmd.Replay)
	if err := h.waitForTheList(ctx); err != nil {
		return err
	}
	if done, err := h.recordedBefore(ctx, cmd, log); err != nil {
		return err
	} else if done {
		// Acknowledged only once what the recorded try produced is in the broker:
		// this redelivery may come while it still waits in the outbox.
		return h.Store.AwaitOutcome(ctx, cmd)
	}
	key := attemptKey{cmd.EmailID, cmd.Replay, cmd.Attempt}
	if out, ok := h.Unrecorded.lookup(key); ok {
		// An earlier delivery of this command sent the email and could not record
		// it: record it now rather than send a second copy.
		return h.record(ctx, key, cmd, out, log)
	}
	t, err := h.try(ctx, cmd, log)
	if errors.Is(err, ErrGateShut) {
		// Shutdown came while the mail server was down: nothing was tried. The
		// command goes back to the outbox, to be published again at the next
		// start, and this copy is acknowledged.
		if err := h.Store.Requeue(context.WithoutCancel(ctx), cmd); err != nil {
			return fmt.Errorf("hand %s back to the outbox: %w", cmd.EmailID, err)
		}
		log.Info("shutdown while the mail server was unavailable; the email waits in the outbox for the next start")
		return nil
	}
	if err != nil {
		return err
	}
	return h.record(ctx, key, cmd, h.outcome(cmd, src, t), log)
}

// waitForTheList waits until ListReady is closed; shutdown ends the wait with
// ErrInterrupted (the command is redelivered, never counted).
func (h SendEmail) waitForTheList(ctx context.Context) error {
	if h.ListReady == nil {
		return nil
	}
	select {
	case <-h.ListReady:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for the suppression list: %w: %w", ErrInterrupted, ctx.Err())
	}
}

// recordedBefore reports whether cmd's try is recorded already: a redelivery, or a
// command older than what this instance recorded.
func (h SendEmail) recordedBefore(ctx context.Context, cmd contract.SendEmail, log *slog.Logger) (bool, error) {
	st, found, err := h.Store.Load(ctx, cmd.EmailID)
	if err != nil {
		return false, fmt.Errorf("load delivery state of %s: %w", cmd.EmailID, err)
	}
	if !found || cmd.Replay > st.Replay {
		return false, nil
	}
	if cmd.Replay < st.Replay || cmd.Attempt <= st.Attempts || st.Final() {
		log.Debug("try already recorded; acknowledging a redelivery", "recorded_attempt", st.Attempts, "recorded_status", st.Status)
		return true, nil
	}
	return false, nil
}

// tried is what one try did, before it is turned into an Outcome.
type tried struct {
	// first is when the replay's first try began; at when this one ended.
	first, at time.Time
	// states are the recipients this try carried or skipped, with their new state.
	states []contract.RecipientState
	// replies are the server's replies to the recipients it answered, by address,
	// and hardBounces the results that put an address on the suppression list.
	replies     map[string]string
	hardBounces []transport.RecipientResult
	// message is the rendered message; err a failure of the whole try (render).
	message render.Message
	err     error
}

// try skips the suppressed recipients, renders the email for the others and sends
// it, waiting at the gate through outages.
func (h SendEmail) try(ctx context.Context, cmd contract.SendEmail, log *slog.Logger) (tried, error) {
	t := tried{first: cmd.FirstAttemptAt, replies: map[string]string{}}
	if t.first.IsZero() {
		t.first = h.Now()
	}
	send, err := h.skipSuppressed(ctx, cmd, &t)
	if err != nil {
		return t, err
	}
	if len(send) > 0 {
		one := cmd
		one.Recipients = send
		t.message, t.err = render.Render(one, h.Render)
		var results []transport.RecipientResult
		if t.err == nil {
			// The transport's lines about this send (its SMTP conversation) name the email.
			sendCtx := logging.ContextWith(ctx, logging.KeyEmailID, cmd.EmailID, logging.KeyCorrelationID, cmd.CorrelationID,
				"attempt", cmd.Attempt)
			results, t.err = h.deliver(sendCtx, t.message, t.first, log)
			if errors.Is(t.err, ErrInterrupted) || errors.Is(t.err, ErrGateShut) {
				return t, t.err
			}
		}
		t.at = h.Now()
		t.states = append(t.states, h.judge(cmd, send, results, &t)...)
	}
	if t.at.IsZero() {
		t.at = h.Now()
	}
	return t, nil
}

// skipSuppressed returns the recipients of cmd that are not on the suppression list,
// and adds the others to t as suppressed: they get no SMTP command at all.
func (h SendEmail) skipSuppressed(ctx context.Context, cmd contract.SendEmail, t *tried) ([]contract.Recipient, error) {
	addrs := make([]string, len(cmd.Recipients))
	for i, r := range cmd.Recipients {
		addrs[i] = r.Address
	}
	found, err := h.Store.Suppressed(ctx, addrs)
	if err != nil {
		return nil, fmt.Errorf("read the suppression list: %w", err)
	}
	send := make([]contract.Recipient, 0, len(cmd.Recipients))
	for _, r := range cmd.Recipients {
		s, ok := found[SuppressionKey(r.Address)]
		if !ok {
			send = append(send, r)
			continue
		}
		t.states = append(t.states, contract.RecipientState{Recipient: r, Status: contract.RecipientSuppressed,
			Attempts: cmd.Attempt - 1, Detail: "on the suppression list: " + s.Reason})
	}
	return send, nil
}

// deliver sends msg, waiting at the gate while the server is down or misconfigured:
// such a failure burns no attempt. Once the replay's first try is retry.max_age old,
// an outage fails the try instead (its recipients are then failed or deferred like
// any others). It returns ErrInterrupted when ctx ends first.
func (h SendEmail) deliver(ctx context.Context, msg render.Message, first time.Time, log *slog.Logger) ([]transport.RecipientResult, error) {
	for {
		if err := h.Gate.Wait(ctx); errors.Is(err, ErrGateShut) {
			return nil, err
		} else if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInterrupted, err)
		}
		res, err := h.Transport.Send(ctx, msg)
		if err == nil {
			h.Gate.Succeeded()
			return res.Recipients, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: %w", ErrInterrupted, context.Cause(ctx))
		}
		if se, ok := transport.AsServerError(err); ok && se.Kind == transport.KindMessage {
			return nil, err
		}
		if h.Retry.MaxAge > 0 && h.Now().Sub(first) >= h.Retry.MaxAge {
			return nil, fmt.Errorf("still failing after retry.max_age (%s): %w", h.Retry.MaxAge, err)
		}
		log.Debug("send waits for the mail server", "error", err)
		h.Gate.Pause(err)
	}
}

// judge gives each recipient of send its new state from the transport's results,
// or from t.err when the whole try failed.
func (h SendEmail) judge(cmd contract.SendEmail, send []contract.Recipient, results []transport.RecipientResult, t *tried) []contract.RecipientState {
	byAddr := make(map[string]transport.RecipientResult, len(results))
	for _, r := range results {
		byAddr[r.Address] = r
	}
	giveUp := h.Retry.GivesUp(cmd.Attempt, t.first, t.at)
	states := make([]contract.RecipientState, 0, len(send))
	for _, rc := range send {
		st := contract.RecipientState{Recipient: rc, Attempts: cmd.Attempt}
		r, ok := byAddr[rc.Address]
		switch {
		case t.err != nil:
			st.Status, st.Detail = contract.RecipientFailed, t.err.Error()
			if !giveUp && !isPermanent(t.err) {
				st.Status = contract.RecipientDeferred
			}
		case !ok:
			st.Status, st.Detail = contract.RecipientDeferred, "no answer from the transport"
		case r.Verdict == transport.Delivered:
			st.Status, st.Detail = contract.RecipientDelivered, r.Detail
		case r.Verdict == transport.Bounced:
			st.Status, st.Detail = contract.RecipientBounced, r.Detail
			if transport.IsMailboxHardBounce(r) {
				t.hardBounces = append(t.hardBounces, r)
			}
		default:
			st.Status, st.Detail = contract.RecipientDeferred, r.Detail
		}
		if ok && r.Code != 0 {
			t.replies[rc.Address] = r.Detail
		}
		if st.Status == contract.RecipientDeferred && giveUp {
			st.Status = contract.RecipientFailed
			st.Detail = fmt.Sprintf("retries ran out after %s: %s", plural(cmd.Attempt, "attempt"), st.Detail)
		}
		states = append(states, st)
	}
	return states
}

// isPermanent reports whether a failure of the whole try will happen again on every
// try: a message that cannot be rendered, or that the transport refuses to send.
func isPermanent(err error) bool {
	se, ok := transport.AsServerError(err)
	return errors.Is(err, render.ErrInvalid) || ok && se.Kind == transport.KindMessage
}

// outcome turns what the try did into what is recorded: the state, the event, and
// the next try or, once every recipient is final, the dead letter when one is due.
func (h SendEmail) outcome(cmd contract.SendEmail, src Source, t tried) Outcome {
	var deferred []contract.Recipient
	settled := append([]contract.RecipientState(nil), cmd.Settled...)
	for _, st := range t.states {
		if st.Status == contract.RecipientDeferred {
			deferred = append(deferred, st.Recipient)
		} else {
			settled = append(settled, st)
		}
	}
	ev := contract.EmailAttempted{EmailID: cmd.EmailID, Replay: cmd.Replay, Attempt: cmd.Attempt,
		Recipients: t.states, At: t.at}
	if t.err != nil {
		ev.Error = t.err.Error()
	}
	ev.Message = h.carried(cmd, t.message)
	out := Outcome{Try: cmd, Suppress: h.suppressionsOf(cmd, t)}
	switch {
	case len(deferred) > 0:
		next := cmd.NextTry(deferred, settled, t.first)
		at := t.at.Add(h.Retry.Jittered(cmd.Attempt))
		ev.Status, ev.NextAttemptAt = contract.StatusRetrying, &at
		out.Retry, out.RetryAt = &next, at
	case anyDelivered(settled):
		ev.Status = contract.StatusSent
	default:
		ev.Status = contract.StatusDead
	}
	if ev.Status != contract.StatusRetrying && deadLettered(settled) {
		out.DeadLetter = deadLetterOf(cmd, src, settled, t)
	}
	out.State = State{EmailID: cmd.EmailID, Replay: cmd.Replay, Attempts: cmd.Attempt, Status: ev.Status}
	out.Attempted = ev
	return out
}

// carried is the rendered message the try's event carries to the instance that
// accepted the email: nil when the try rendered none, or when the message is too
// large for the event (contract.MaxCarriedMessageBytes), which is logged.
func (h SendEmail) carried(cmd contract.SendEmail, m render.Message) *contract.RenderedMessage {
	if len(m.Raw) == 0 {
		return nil
	}
	if len(m.Raw) > contract.MaxCarriedMessageBytes {
		h.Log.Warn("rendered message too large to carry in its event; GET /api/emails/{id}/raw will not show it",
			logging.KeyEmailID, cmd.EmailID, "bytes", len(m.Raw), "max_bytes", contract.MaxCarriedMessageBytes)
		return nil
	}
	return &contract.RenderedMessage{MessageID: m.MessageID, Raw: m.Raw}
}

// suppressionsOf lists the hard bounces of t as suppressions to add.
func (h SendEmail) suppressionsOf(cmd contract.SendEmail, t tried) []Suppression {
	var out []Suppression
	for _, r := range t.hardBounces {
		out = append(out, Suppression{Address: SuppressionKey(r.Address), Reason: ReasonHardBounce, Detail: r.Detail,
			EmailID: cmd.EmailID, Source: SourceBounce, CreatedAt: t.at})
	}
	return out
}

// deadLettered reports whether an email whose recipients are all final, as settled,
// goes to the dead letters: when a recipient's retries ran out, or nobody got it.
func deadLettered(settled []contract.RecipientState) bool {
	for _, st := range settled {
		if st.Status == contract.RecipientFailed {
			return true
		}
	}
	return !anyDelivered(settled)
}

// anyDelivered reports whether one of states is delivered.
func anyDelivered(states []contract.RecipientState) bool {
	for _, s := range states {
		if s.Status == contract.RecipientDelivered {
			return true
		}
	}
	return false
}

// deadLetterOf builds the dead letter of an email whose last try was cmd.
func deadLetterOf(cmd contract.SendEmail, src Source, settled []contract.RecipientState, t tried) *contract.DeadLetter {
	dl := &contract.DeadLetter{Send: cmd, ErrorClass: contract.ClassPermanent, FirstAttemptAt: t.first, LastAttemptAt: t.at,
		OriginalTopic: src.Topic, OriginalPartition: src.Partition, OriginalOffset: src.Offset, ConsumerGroup: src.ConsumerGroup}
	for _, st := range settled {
		if st.Status == contract.RecipientDelivered {
			continue
		}
		dl.Undelivered = append(dl.Undelivered, st)
		if st.Status == contract.RecipientFailed {
			dl.ErrorClass = contract.ClassExhausted
		}
		if reply, ok := t.replies[st.Address]; ok && dl.SMTPReply == "" {
			dl.SMTPReply = reply
		}
	}
	dl.Reason = reasonOf(dl.Undelivered, len(settled))
	return dl
}

// maxReasonRecipients bounds how many recipients a dead letter's reason names.
const maxReasonRecipients = 3

// reasonOf says in one line which recipients were not delivered and why:
// "1 of 3 recipients not delivered: b@x.example failed: retries ran out after 3
// attempts: 451 4.3.0 Try later".
func reasonOf(undelivered []contract.RecipientState, total int) string {
	parts := make([]string, 0, maxReasonRecipients+1)
	for i, st := range undelivered {
		if i == maxReasonRecipients {
			parts = append(parts, fmt.Sprintf("and %d more", len(undelivered)-i))
			break
		}
		parts = append(parts, st.Address+" "+st.Status+": "+st.Detail)
	}
	return fmt.Sprintf("%d of %s not delivered: %s", len(undelivered), plural(total, "recipient"), strings.Join(parts, "; "))
}

// plural writes n and noun, adding an "s" unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// record stores out; when the store refuses it, Unrecorded keeps it for the
// redelivery, so a recipient the server accepted is not sent a second copy.
func (h SendEmail) record(ctx context.Context, key attemptKey, cmd contract.SendEmail, out Outcome, log *slog.Logger) error {
	if err := h.Store.Record(context.WithoutCancel(ctx), out, cmd.CorrelationID); errors.Is(err, ErrOutcomeNotPublished) {
		// Recorded: a redelivery finds it so, and waits for its messages again.
		h.Unrecorded.forget(key)
		h.logOutcome(out, log)
		log.Warn(OutcomeNotPublishedLog, "err", err)
		return fmt.Errorf("try %d of %s: %w", cmd.Attempt, cmd.EmailID, err)
	} else if err != nil {
		h.Unrecorded.remember(key, out)
		return fmt.Errorf("record try %d of %s: %w", cmd.Attempt, cmd.EmailID, err)
	}
	h.Unrecorded.forget(key)
	h.logOutcome(out, log)
	return nil
}

// logOutcome writes one line per recorded try: info when the email is sent or its
// recipients are waiting for their next try, warn when it went to the dead letters.
func (h SendEmail) logOutcome(out Outcome, log *slog.Logger) {
	counts := map[string]int{}
	for _, st := range out.Attempted.Recipients {
		counts[st.Status]++
	}
	args := []any{"status", out.Attempted.Status, "delivered", counts[contract.RecipientDelivered],
		"deferred", counts[contract.RecipientDeferred], "bounced", counts[contract.RecipientBounced],
		"suppressed", counts[contract.RecipientSuppressed], "failed", counts[contract.RecipientFailed]}
	switch {
	case out.DeadLetter != nil:
		log.Warn("email tried; moving it to the dead letters", append(args, "reason", out.DeadLetter.Reason)...)
	case out.Retry != nil:
		log.Info("email tried; deferred recipients are tried again later", append(args, "next_attempt_at", out.RetryAt)...)
	default:
		log.Info("email tried", args...)
	}
}
