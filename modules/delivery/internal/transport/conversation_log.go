package transport

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/textproto"
	"regexp"
	"time"

	gmlog "github.com/wneessen/go-mail/log"
)

// The messages of the debug lines an SMTP conversation writes, one per step that
// matters (docs/logs.md lists them with their fields). A send's lines carry the
// attributes its context names (logging.ContextWith: the email id and correlation
// id), and never a message body or a password.
const (
	logConnected = "smtp connected"         // host, port, took
	logReused    = "smtp connection reused" // host, port, idle
	logTLS       = "smtp tls"               // tls (none, starttls, tls), version, cipher
	logAuth      = "smtp auth accepted"     // mechanism
	logMailFrom  = "smtp mail from"         // from, code, enhanced, reply
	logRcpt      = "smtp rcpt"              // rcpt, verdict, code, enhanced, reply
	logData      = "smtp data"              // verdict, code, enhanced, reply, queue_id, bytes, recipients
	logKept      = "smtp connection kept"   // idle for the next send
	logQuit      = "smtp quit"              // code, reply (or error)
	logDropped   = "smtp connection dropped"
	logFailed    = "smtp failed" // step, code, enhanced, reply (or error)
)

// discardLog writes nothing: the logger of a transport given none.
var discardLog = slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError + 1}))

// lastReply keeps the server's latest reply as go-mail's client reads it: go-mail
// returns the text of a refusal (a *textproto.Error) but not of an acceptance (the
// 250 to RCPT TO), which the conversation's lines show too. It is the client's
// debug logger, and keeps only what the client logs of replies; what the client
// sends (its AUTH line included) is ignored, and nothing is written anywhere.
type lastReply struct {
	code int
	text string
}

func (r *lastReply) Debugf(l gmlog.Log) {
	if l.Direction != gmlog.DirServerToClient || len(l.Messages) != 2 {
		return
	}
	r.code, _ = l.Messages[0].(int)
	r.text, _ = l.Messages[1].(string)
}

func (*lastReply) Infof(gmlog.Log)  {}
func (*lastReply) Warnf(gmlog.Log)  {}
func (*lastReply) Errorf(gmlog.Log) {}

// take returns the reply read since the last take, as a reply, or nil when none was
// read (the command was never written).
func (r *lastReply) take() *textproto.Error {
	if r.code == 0 {
		return nil
	}
	reply := &textproto.Error{Code: r.code, Msg: r.text}
	*r = lastReply{}
	return reply
}

// debug reports whether c's logger writes debug lines, so that a line's fields are
// worked out only when it is written.
func (c *conn) debug() bool { return c.log.Enabled(context.Background(), slog.LevelDebug) }

// logTLSState writes which TLS the session uses: mode is none, starttls or tls, and
// state is nil for none.
func (c *conn) logTLSState(mode string, state *tls.ConnectionState) {
	if !c.debug() {
		return
	}
	if state == nil {
		c.log.Debug(logTLS, "tls", mode)
		return
	}
	c.log.Debug(logTLS, "tls", mode, "version", tls.VersionName(state.Version), "cipher", tls.CipherSuiteName(state.CipherSuite))
}

// logReply writes msg with the reply r (the code, its enhanced status code and the
// text on one line) and args.
func (c *conn) logReply(msg string, r *textproto.Error, args ...any) {
	if !c.debug() {
		return
	}
	if r != nil {
		args = append(args, "code", r.Code, "enhanced", enhancedCode(r), "reply", oneLine(r.Msg))
	}
	c.log.Debug(msg, args...)
}

// logFailed writes that the conversation failed at step: with the server's reply
// when it gave one, or what happened instead, and args.
func (c *conn) logFailed(step string, err error, args ...any) {
	if !c.debug() {
		return
	}
	args = append([]any{"step", step}, args...)
	if r := replyOf(err); r != nil {
		c.logReply(logFailed, r, args...)
		return
	}
	c.log.Debug(logFailed, append(args, "error", oneLine(shortCause(err).Error()))...)
}

// since is how long ago start was, rounded for a person to read.
func since(start time.Time) string { return time.Since(start).Round(time.Microsecond).String() }

// queueIDPattern finds the id a server gives the message it queued, in the common
// replies to the end of data: Postfix's "2.0.0 Ok: queued as 4B2C1D2E3F", Exim's
// "OK id=1uXyZa-000abc-12", and "queued as <id>" or "id=<id>" generally.
var queueIDPattern = regexp.MustCompile(`(?i)(?:queued as|\bid=)\s*<?([A-Za-z0-9][A-Za-z0-9._@-]*[A-Za-z0-9])>?`)

// queueID returns the queue id in a reply's text, or "" when it names none.
func queueID(text string) string {
	if m := queueIDPattern.FindStringSubmatch(text); m != nil {
		return m[1]
	}
	return ""
}
