package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strings"

	"github.com/wneessen/go-mail/smtp"

	"github.com/mailroom/mailroom/modules/delivery/internal/render"
)

// dataChunk is how much message data is written per deadline extension, so a slow
// but moving link gets CommandTimeout per chunk rather than for the whole message.
const dataChunk = 64 << 10

// afterward says what a transaction left its session fit for.
type afterward int

const (
	// reusable: the session is in step with the server and may carry the next
	// transaction (which starts with RSET).
	reusable afterward = iota
	// quit: the session is in step but done with (421, 530): QUIT, then close.
	quit
	// broken: the connection is lost or out of step: close without a word.
	broken
)

// attempt is what one transaction on one connection came to: a Result, or an error
// (a *ServerError or the cancellation error) and no Result.
type attempt struct {
	result Result
	err    error
	// redial reports a reused connection that turned out broken before any RCPT
	// TO (an I/O error or 421 at RSET or MAIL FROM): nothing was asked of the
	// server, and a fresh connection may well succeed.
	redial bool
	then   afterward
}

// transaction is one mail transaction in progress: each recipient's outcome as the
// replies come in.
type transaction struct {
	c   *conn
	msg render.Message
	// results holds one entry per msg.Recipients; Verdict 0 means not decided yet.
	results []RecipientResult
	// accepted lists the indexes of the recipients accepted at RCPT TO.
	accepted []int
}

// deliver runs one mail transaction on c for every recipient of msg: RSET first when
// the connection was used before, then MAIL FROM, one RCPT TO per recipient, and
// DATA with the message when at least one recipient was accepted.
//
// Each recipient gets its own verdict: a RCPT TO refusal decides that recipient
// only (4xx Deferred, 5xx Bounced); MAIL FROM's refusal decides every recipient,
// and the reply to DATA or to the end of data every recipient accepted. A lost
// connection after the first RCPT TO reply defers every recipient not decided yet.
// 421 anywhere, or a failure before any RCPT TO reply, is an outage: no recipient
// is decided, so every one is asked again later.
func (c *conn) deliver(ctx context.Context, msg render.Message, reused bool) attempt {
	stop := context.AfterFunc(ctx, func() { _ = c.raw.Close() })
	defer stop()

	t := &transaction{c: c, msg: msg, results: make([]RecipientResult, len(msg.Recipients))}
	for i, addr := range msg.Recipients {
		t.results[i].Address = addr
	}
	if reused {
		c.deadline()
		if err := c.client.Reset(); err != nil {
			a := t.outage(ctx, "rset", err)
			a.redial = IsOutage(a.err)
			return a
		}
	}
	c.deadline()
	c.reply = lastReply{}
	if err := c.client.Mail("<" + msg.EnvelopeFrom + ">"); err != nil {
		a := t.mailRefused(ctx, err)
		a.redial = reused && IsOutage(a.err)
		return a
	}
	c.logReply(logMailFrom, c.reply.take(), "from", msg.EnvelopeFrom)
	if a, done := t.giveRecipients(ctx); done {
		return a
	}
	if len(t.accepted) == 0 {
		return t.decided(reusable) // nothing to send; RSET starts the next transaction
	}
	return t.sendData(ctx, stop)
}

// mailRefused handles a failed MAIL FROM: a refusal decides every recipient, 530
// says the server wants a login the configuration does not give, and 421 or an I/O
// error is an outage.
func (t *transaction) mailRefused(ctx context.Context, err error) attempt {
	r := replyOf(err)
	switch {
	case r == nil || r.Code == 421:
		return t.outage(ctx, "mail from", err)
	case r.Code == 530:
		t.c.logFailed("mail from", err)
		return attempt{err: t.c.authRequired(r), then: quit}
	case isRefusal(r.Code):
		for i := range t.results {
			t.decide(i, StageMail, r)
		}
		t.c.logReply(logMailFrom, r, "from", t.msg.EnvelopeFrom, "verdict", t.results[0].Verdict.String())
		return t.decided(reusable)
	default:
		return t.outage(ctx, "mail from", err) // an unexpected reply: out of step
	}
}

// giveRecipients sends RCPT TO for every recipient, deciding the refused ones and
// noting the accepted ones. done reports that the transaction ended on the way:
// then a holds its outcome.
func (t *transaction) giveRecipients(ctx context.Context) (a attempt, done bool) {
	for i, rcpt := range t.msg.Recipients {
		t.c.deadline()
		t.c.reply = lastReply{}
		err := t.c.client.Rcpt("<" + rcpt + ">")
		if err == nil {
			t.accepted = append(t.accepted, i)
			t.c.logReply(logRcpt, t.c.reply.take(), "rcpt", rcpt, "verdict", "accepted")
			continue
		}
		r := replyOf(err)
		switch {
		case r != nil && r.Code == 421:
			return t.outage(ctx, "rcpt", err), true
		case r != nil && isRefusal(r.Code):
			t.decide(i, StageRcpt, r)
			t.c.logReply(logRcpt, r, "rcpt", rcpt, "verdict", t.results[i].Verdict.String())
		case i == 0: // no RCPT TO reply yet: nothing is known of any recipient
			return t.outage(ctx, "rcpt", err), true
		default:
			return t.lost(ctx, StageRcpt, "at RCPT TO", err), true
		}
	}
	return attempt{}, false
}

// sendData sends DATA and the message, and applies the server's verdict to the
// accepted recipients. stop detaches the cancellation of ctx from the connection.
func (t *transaction) sendData(ctx context.Context, stop func() bool) attempt {
	c := t.c
	c.deadline()
	w, err := c.client.Data()
	if err != nil {
		return t.dataRefused(ctx, "at DATA", err)
	}
	raw := t.msg.Raw
	for off := 0; off < len(raw); off += dataChunk {
		c.deadline()
		if _, err := w.Write(raw[off:min(off+dataChunk, len(raw))]); err != nil {
			return t.lost(ctx, StageData, "while sending the message", err)
		}
	}

	// From here on the server may accept the message at any moment. Abandoning it
	// now would make the retry a likely duplicate, so cancellation stops applying:
	// the verdict is awaited for at most CommandTimeout.
	if !stop() {
		return attempt{err: canceledError(ctx, "data", c.addr), then: broken}
	}
	c.deadline()
	if err := w.Close(); err != nil {
		// A connection lost here is SMTP's duplicate window: the server may have
		// queued the message without our hearing it. The recipients are deferred
		// and a retry sends the same Message-ID, which lets receivers drop a repeat.
		return t.dataRefused(context.Background(), "after the whole message was written, awaiting the server's reply", err)
	}
	accept := acceptReply(w)
	for _, i := range t.accepted {
		t.decide(i, StageData, accept)
	}
	t.logData(accept)
	return t.decided(reusable)
}

// dataRefused handles a failed DATA command or end of data, where says which: a
// refusal decides every accepted recipient, 421 is an outage, and a lost
// connection defers them.
func (t *transaction) dataRefused(ctx context.Context, where string, err error) attempt {
	r := replyOf(err)
	switch {
	case r != nil && r.Code == 421:
		return t.outage(ctx, "data", err)
	case r != nil && isRefusal(r.Code):
		for _, i := range t.accepted {
			t.decide(i, StageData, r)
		}
		t.logData(r)
		return t.decided(reusable)
	default:
		return t.lost(ctx, StageData, where, err)
	}
}

// outage ends the transaction with no recipient decided: the cancellation error
// when ctx is done and err is not a reply (cancelling closes the connection), an
// outage otherwise.
func (t *transaction) outage(ctx context.Context, step string, err error) attempt {
	t.c.logFailed(step, err)
	if replyOf(err) == nil && ctx.Err() != nil {
		return attempt{err: canceledError(ctx, step, t.c.addr), then: broken}
	}
	then := broken
	if replyOf(err) != nil {
		then = quit
	}
	return attempt{err: outageError(t.c.addr, step, err), then: then}
}

// lost ends the transaction after the connection failed, timed out or answered out
// of step once recipients were given: every recipient not decided yet is Deferred
// at stage, with what happened where as its Detail ("connection lost at RCPT TO:
// EOF", "timed out after the whole message was written, awaiting the server's
// reply: i/o timeout"); those already refused keep their refusal. A cancelled ctx
// makes it the cancellation error instead.
func (t *transaction) lost(ctx context.Context, stage, where string, err error) attempt {
	t.c.logFailed(stage, err, "at", where)
	r := replyOf(err)
	if r == nil && ctx.Err() != nil {
		return attempt{err: canceledError(ctx, stage, t.c.addr), then: broken}
	}
	happened := "connection lost"
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		happened = "timed out"
	}
	code, detail := 0, fmt.Sprintf("%s %s: %v", happened, where, shortCause(err))
	if r != nil {
		code, detail = r.Code, fmt.Sprintf("unexpected reply %s: %s", where, replyLine(r))
	}
	for i := range t.results {
		if t.results[i].Verdict == 0 {
			t.results[i] = RecipientResult{
				Address: t.results[i].Address, Verdict: Deferred, Stage: stage,
				Code: code, Detail: oneLine(detail),
			}
		}
	}
	return attempt{result: Result{Recipients: t.results}, then: broken}
}

// decide gives recipient i the verdict of reply r at stage: 2xx Delivered, 4xx
// Deferred, 5xx Bounced.
func (t *transaction) decide(i int, stage string, r *textproto.Error) {
	verdict := Delivered
	switch r.Code / 100 {
	case 4:
		verdict = Deferred
	case 5:
		verdict = Bounced
	}
	t.results[i] = RecipientResult{
		Address: t.results[i].Address, Verdict: verdict, Stage: stage,
		Code: r.Code, Enhanced: enhancedCode(r), Detail: replyLine(r),
	}
}

// logData writes the server's reply r to the DATA command or the end of data, and
// the verdict it gave the accepted recipients.
func (t *transaction) logData(r *textproto.Error) {
	if !t.c.debug() {
		return
	}
	verdict := t.results[t.accepted[0]].Verdict.String()
	args := []any{"verdict", verdict, "recipients", len(t.accepted), "bytes", len(t.msg.Raw)}
	if id := queueID(r.Msg); id != "" {
		args = append(args, "queue_id", id)
	}
	t.c.logReply(logData, r, args...)
}

// decided ends the transaction with every recipient decided.
func (t *transaction) decided(then afterward) attempt {
	return attempt{result: Result{Recipients: t.results}, then: then}
}

// isRefusal reports whether code refuses (4xx, 5xx) rather than being out of step.
func isRefusal(code int) bool { return code >= 400 && code <= 599 }

// enhancedCode returns the RFC 3463 enhanced status code that starts r's text
// ("5.1.1"), or "" when there is none or its class does not match the reply code.
func enhancedCode(r *textproto.Error) string {
	first, _, _ := strings.Cut(strings.TrimSpace(r.Msg), " ")
	parts := strings.Split(first, ".")
	if len(parts) != 3 || parts[0] != fmt.Sprint(r.Code/100) {
		return ""
	}
	for _, p := range parts[1:] {
		if len(p) < 1 || len(p) > 3 || strings.Trim(p, "0123456789") != "" {
			return ""
		}
	}
	return first
}

// acceptReply returns the server's reply to the end of data as a reply, e.g.
// 250 "2.0.0 Ok: queued as 4B2C1", or 250 "OK" when go-mail cannot tell.
func acceptReply(w io.WriteCloser) *textproto.Error {
	if dc, ok := w.(*smtp.DataCloser); ok {
		if text := dc.ServerResponse(); text != "" {
			return &textproto.Error{Code: 250, Msg: text}
		}
	}
	return &textproto.Error{Code: 250, Msg: "OK"}
}
