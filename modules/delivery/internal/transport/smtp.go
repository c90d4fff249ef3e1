package transport

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mailroom/mailroom/modules/delivery/internal/render"
	"github.com/mailroom/mailroom/platform/logging"
)

// SMTP is the Transport that sends to a mail server, on github.com/wneessen/go-mail's
// smtp client (a maintained net/smtp fork that also returns the server's final
// reply). It keeps a few authenticated connections open between sends.
//
// At debug level it logs one line per step of each conversation that matters
// (connect, TLS, MAIL FROM, each RCPT TO, DATA, QUIT, a failure: see
// conversation_log.go), never a message body or a password.
type SMTP struct {
	cfg       SMTPConfig
	tlsConfig *tls.Config
	log       *slog.Logger

	mu     sync.Mutex
	idle   []*conn // most recently used last
	closed bool
}

var _ Transport = (*SMTP)(nil)

// NewSMTP returns an SMTP transport for cfg, with defaults for its zero fields,
// writing its conversations' debug lines to log (nil: nowhere). A Send's lines
// carry the attributes its context names (logging.ContextWith: the email id and
// correlation id). It does not connect: the first Send or Probe does. Check cfg
// with Validate first; an invalid configuration makes every Send and Probe return
// Validate's error.
func NewSMTP(cfg SMTPConfig, log *slog.Logger) *SMTP {
	cfg = cfg.withDefaults()
	if log == nil {
		log = discardLog
	}
	return &SMTP{cfg: cfg, tlsConfig: cfg.tlsConfig(), log: log}
}

// Send delivers msg to every one of its recipients in one transaction, over an
// idle connection or a new one; see Transport.Send and conn.deliver for what decides
// each recipient's fate. A message checkMessage refuses is a KindMessage error,
// sent nowhere.
//
// A reused connection that turns out broken before any recipient was given is
// replaced by a fresh one, once; the other idle connections are dropped with it,
// as whatever broke one (a server restart, a network change) most likely broke
// them all.
//
// Cancelling ctx closes the connection and returns an error wrapping ctx's error
// (none of the kinds), except after the whole message was written: then the
// server's verdict is awaited (at most CommandTimeout), because giving up while
// it may be accepting the message would make the retry a likely duplicate.
func (s *SMTP) Send(ctx context.Context, msg render.Message) (Result, error) {
	if err := checkMessage(msg); err != nil {
		return Result{}, err
	}
	if err := s.cfg.Validate(); err != nil {
		return Result{}, err
	}
	log := s.sendLog(ctx)
	for tries := 0; ; tries++ {
		if ctx.Err() != nil {
			return Result{}, canceledError(ctx, "send", s.cfg.addr())
		}
		c, reused, err := s.acquire(ctx, log)
		if err != nil {
			return Result{}, err
		}
		a := c.deliver(ctx, msg, reused)
		s.finish(c, a.then)
		if a.redial && tries == 0 && ctx.Err() == nil {
			s.dropIdle()
			continue
		}
		return a.result, a.err
	}
}

// Probe connects afresh, runs the session set-up as configured, opens a
// transaction with MAIL FROM:<> (see conn.probeMail) and says QUIT, which aborts
// it; see Transport.Probe. It does not touch the idle connections.
func (s *SMTP) Probe(ctx context.Context) error {
	if err := s.cfg.Validate(); err != nil {
		return err
	}
	if s.isClosed() {
		return fmt.Errorf("smtp: probe: %w", ErrClosed)
	}
	c, err := dial(ctx, s.cfg, s.tlsConfig, s.log)
	if err != nil {
		return err
	}
	err = c.probeMail(ctx)
	c.close(err == nil || replyOf(err) != nil)
	return err
}

// Close closes the idle connections; connections of sends in flight are closed when
// those sends end.
func (s *SMTP) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.dropIdle()
	return nil
}

func (s *SMTP) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// dropIdle closes every idle connection, so the next acquire dials.
func (s *SMTP) dropIdle() {
	s.mu.Lock()
	idle := s.idle
	s.idle = nil
	s.mu.Unlock()
	for _, c := range idle {
		c.close(true)
	}
}

// sendLog is the logger of a send with ctx: the transport's, with the attributes
// ctx names (the email's), when it writes debug lines at all.
func (s *SMTP) sendLog(ctx context.Context) *slog.Logger {
	if !s.log.Enabled(ctx, slog.LevelDebug) {
		return s.log
	}
	return logging.FromContext(ctx, s.log)
}

// acquire returns the most recently used idle connection that is not too old,
// closing older ones, or dials a new one, for a send logging to log. reused tells
// which.
func (s *SMTP) acquire(ctx context.Context, log *slog.Logger) (c *conn, reused bool, err error) {
	var stale []*conn
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, false, fmt.Errorf("smtp: send: %w", ErrClosed)
	}
	now := time.Now()
	for len(s.idle) > 0 && c == nil {
		last := s.idle[len(s.idle)-1]
		s.idle = s.idle[:len(s.idle)-1]
		if last.ready(now, s.cfg.IdleTimeout) {
			c = last
		} else {
			stale = append(stale, last)
		}
	}
	s.mu.Unlock()
	for _, old := range stale {
		old.close(true)
	}
	if c != nil {
		c.log = log
		if c.debug() {
			c.log.Debug(logReused, "host", s.cfg.Host, "port", s.cfg.Port, "idle", since(c.idleSince))
		}
		return c, true, nil
	}
	c, err = dial(ctx, s.cfg, s.tlsConfig, log)
	return c, false, err
}

// finish disposes of c after a transaction as it left it: kept for the next send
// when reusable, closed (politely when still in step) otherwise.
func (s *SMTP) finish(c *conn, then afterward) {
	switch then {
	case reusable:
		s.release(c)
	case quit:
		c.close(true)
	default:
		c.close(false)
	}
}

// release keeps c for the next send, or closes it when the pool is full, disabled
// or closed.
func (s *SMTP) release(c *conn) {
	c.idleSince = time.Now()
	sendLog := c.log
	c.log = s.log // idle, it belongs to no send
	s.mu.Lock()
	kept := !s.closed && len(s.idle) < s.cfg.MaxIdleConns
	if kept {
		s.idle = append(s.idle, c)
	}
	s.mu.Unlock()
	if kept { // c is another send's to take now: only sendLog is used
		sendLog.Debug(logKept, "host", s.cfg.Host, "port", s.cfg.Port)
		return
	}
	c.log = sendLog
	c.close(true)
}
