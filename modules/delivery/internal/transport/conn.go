package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/textproto"
	"slices"
	"strings"
	"time"

	"github.com/wneessen/go-mail/smtp"
)

// quitTimeout bounds the polite QUIT sent before closing a connection.
const quitTimeout = 2 * time.Second

// conn is one SMTP session, greeted, secured and authenticated as configured.
// Only one send uses it at a time.
type conn struct {
	// raw is the TCP connection under any TLS. Deadlines are set, and
	// cancellation closes it, here, which reaches through TLS and go-mail's
	// client.
	raw        net.Conn
	client     *smtp.Client
	addr       string // the server's host:port, for errors
	username   string // who AUTH logged in as, "" when it did not
	cmdTimeout time.Duration
	idleSince  time.Time
	// log writes the conversation's debug lines: the transport's logger with the
	// attributes of the send using the connection (see SMTP.sendLog), or without
	// any while it is idle. reply is the server's latest reply, for those lines.
	log   *slog.Logger
	reply lastReply
}

// Failures of the session set-up that are not a reply from the server: the server
// lacks what the configuration requires.
var (
	errNoStartTLS  = errors.New("server does not offer STARTTLS")
	errNoAuthPlain = errors.New("server does not offer AUTH PLAIN")
)

// dial connects and runs the session set-up: greeting, EHLO, STARTTLS or implicit
// TLS, and AUTH, writing each step's debug line to log. It returns a *ServerError
// saying whose problem a failure is (see setupError), or the cancellation error
// when ctx is done, which closes the connection and aborts.
func dial(ctx context.Context, cfg SMTPConfig, tlsConfig *tls.Config, log *slog.Logger) (*conn, error) {
	addr := cfg.addr()
	d := net.Dialer{Timeout: cfg.DialTimeout}
	began := time.Now()
	raw, err := d.DialContext(ctx, "tcp", addr)
	c := &conn{raw: raw, addr: addr, cmdTimeout: cfg.CommandTimeout, log: log}
	if err != nil {
		c.logFailed("connect", err)
		if ctx.Err() != nil {
			return nil, canceledError(ctx, "connect", addr)
		}
		return nil, connectError(cfg, err)
	}
	if c.debug() {
		c.log.Debug(logConnected, "host", cfg.Host, "port", cfg.Port, "took", since(began))
	}
	stop := context.AfterFunc(ctx, func() { _ = raw.Close() })
	step, err := c.setup(cfg, tlsConfig)
	if err != nil {
		stop()
		c.logFailed(step, err)
		c.close(inStep(err))
		if ctx.Err() != nil && replyOf(err) == nil {
			return nil, canceledError(ctx, step, addr)
		}
		return nil, setupError(cfg, tlsConfig.ServerName, step, err)
	}
	if !stop() { // cancelled meanwhile: the connection is closed already
		return nil, canceledError(ctx, "connect", addr)
	}
	return c, nil
}

// setup runs the session set-up on c.raw and returns the step that failed.
func (c *conn) setup(cfg SMTPConfig, tlsConfig *tls.Config) (string, error) {
	var nc net.Conn = c.raw
	c.deadline()
	if cfg.TLS == TLSImplicit {
		tc := tls.Client(c.raw, tlsConfig)
		if err := tc.Handshake(); err != nil {
			return "tls handshake", err
		}
		nc = tc
		state := tc.ConnectionState()
		c.logTLSState(TLSImplicit, &state)
	}
	client, err := smtp.NewClient(nc, cfg.Host)
	if err != nil {
		return "greeting", err
	}
	c.client = client
	// Render allows ASCII addresses only, so never ask for SMTPUTF8.
	client.SkipSMTPUTF8(true)
	// go-mail's debug log, kept to c.reply and written nowhere: the text of the
	// replies it does not return (see lastReply).
	client.SetLogger(&c.reply)
	client.SetDebugLog(true)

	c.deadline()
	if err := client.Hello(cfg.LocalName); err != nil {
		return "ehlo", ehloError(err)
	}
	if cfg.TLS == TLSStartTLS {
		if ok, _ := client.Extension("STARTTLS"); !ok {
			return "starttls", errNoStartTLS
		}
		c.deadline()
		if err := client.StartTLS(tlsConfig); err != nil {
			return "starttls", err
		}
		state, _ := client.TLSConnectionState()
		c.logTLSState(TLSStartTLS, &state)
	}
	if cfg.TLS == TLSNone {
		c.logTLSState(TLSNone, nil)
	}
	if cfg.Username != "" {
		ok, mechs := client.Extension("AUTH")
		if !ok || !slices.Contains(strings.Fields(strings.ToUpper(mechs)), "PLAIN") {
			return "auth", errNoAuthPlain
		}
		c.deadline()
		auth := smtp.PlainAuth("", cfg.Username, cfg.Password, cfg.Host, cfg.AllowInsecureAuth)
		if err := client.Auth(auth); err != nil {
			return "auth", err
		}
		c.username = cfg.Username
		c.logReply(logAuth, c.reply.take(), "mechanism", "PLAIN")
	}
	return "", nil
}

// probeMail opens a transaction with the null sender, MAIL FROM:<>, which shows
// what the set-up alone cannot: a server that wants a login (530) or is closing
// (421). Any other reply means the session works (a sender's refusal is a matter
// for each message), and QUIT aborts the transaction.
func (c *conn) probeMail(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { _ = c.raw.Close() })
	defer stop()
	c.deadline()
	c.reply = lastReply{}
	err := c.client.Mail("<>")
	r := replyOf(err)
	if err == nil {
		r = c.reply.take()
	}
	if r != nil {
		c.logReply(logMailFrom, r, "from", "<>") // the null sender
	} else {
		c.logFailed("mail from", err)
	}
	switch {
	case err == nil:
		return nil
	case r == nil && ctx.Err() != nil:
		return canceledError(ctx, "mail from", c.addr)
	case r == nil || r.Code == 421:
		return outageError(c.addr, "mail from", err)
	case r.Code == 530:
		return c.authRequired(r)
	default:
		return nil
	}
}

// authRequired is the configuration error for 530 to MAIL FROM: the server wants
// a login, or TLS first, as some say with 530 too.
func (c *conn) authRequired(r *textproto.Error) *ServerError {
	switch {
	case strings.Contains(strings.ToUpper(r.Msg), "TLS"):
		return configError("smtp.tls", c.addr, "mail from", r,
			"%s requires TLS before mail: %w (set smtp.tls to starttls or tls)", c.addr, said(r))
	case c.username != "":
		return configError("smtp.username", c.addr, "mail from", r,
			"%s requires authentication although AUTH as %q succeeded: %w (check smtp.username)", c.addr, c.username, said(r))
	default:
		return configError("smtp.username", c.addr, "mail from", r,
			"%s requires authentication: %w (set smtp.username and smtp.password)", c.addr, said(r))
	}
}

// ehloError returns EHLO's error from go-mail's "EHLO/HELO exchange failed" (it
// tries HELO after a refused EHLO, and joins both errors when both fail): the
// reply to EHLO is the one that says what is wrong.
func ehloError(err error) error {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		if errs := joined.Unwrap(); len(errs) > 0 && errs[0] != nil {
			return errs[0]
		}
	}
	return err
}

// inStep reports whether a set-up failure left the session in step with the
// server, so that a QUIT is in order: the server answered, or lacked what we
// require.
func inStep(err error) bool {
	return replyOf(err) != nil || errors.Is(err, errNoStartTLS) || errors.Is(err, errNoAuthPlain)
}

// deadline gives the next command cmdTimeout to complete.
func (c *conn) deadline() {
	_ = c.raw.SetDeadline(time.Now().Add(c.cmdTimeout))
}

// close ends the session: politely with QUIT when quit is set (the server is
// still in step with us; QUIT aborts any open transaction), and then closes the
// connection whatever happens.
func (c *conn) close(quit bool) {
	if quit && c.client != nil {
		_ = c.raw.SetDeadline(time.Now().Add(min(quitTimeout, c.cmdTimeout)))
		c.reply = lastReply{}
		if err := c.client.Quit(); err != nil {
			c.logFailed("quit", err)
		} else {
			c.logReply(logQuit, c.reply.take())
		}
	} else if c.debug() {
		c.log.Debug(logDropped, "host", c.addr)
	}
	_ = c.raw.Close()
}

// ready reports whether the connection may still be used: not idle for longer
// than idleTimeout.
func (c *conn) ready(now time.Time, idleTimeout time.Duration) bool {
	return now.Sub(c.idleSince) < idleTimeout
}
