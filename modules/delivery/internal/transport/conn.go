package transport

import (
	"context"
	"crypto/tls"
	"errors"
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
	cmdTimeout time.Duration
	idleSince  time.Time
}

// errNoStartTLS is returned when starttls is required and not offered.
var errNoStartTLS = errors.New("server does not offer STARTTLS")

// dial connects and runs the session setup: greeting, EHLO, STARTTLS or implicit
// TLS, and AUTH. Cancelling ctx closes the connection and aborts.
func dial(ctx context.Context, cfg SMTPConfig, tlsConfig *tls.Config) (*conn, error) {
	d := net.Dialer{Timeout: cfg.DialTimeout}
	raw, err := d.DialContext(ctx, "tcp", cfg.addr())
	if err != nil {
		return nil, classify(ctx, "connect "+cfg.addr(), err)
	}
	stop := context.AfterFunc(ctx, func() { _ = raw.Close() })
	c := &conn{raw: raw, cmdTimeout: cfg.CommandTimeout}
	step, err := c.setup(cfg, tlsConfig)
	if err != nil {
		stop()
		c.close(err)
		return nil, classify(ctx, step, err)
	}
	if !stop() { // cancelled meanwhile: the connection is closed already
		return nil, transient("connect %s: %w", cfg.addr(), context.Cause(ctx))
	}
	return c, nil
}

// setup runs the session setup on c.raw and returns the step that failed.
func (c *conn) setup(cfg SMTPConfig, tlsConfig *tls.Config) (string, error) {
	var nc net.Conn = c.raw
	c.deadline()
	if cfg.TLS == TLSImplicit {
		tc := tls.Client(c.raw, tlsConfig)
		if err := tc.Handshake(); err != nil {
			return "tls handshake", err
		}
		nc = tc
	}
	client, err := smtp.NewClient(nc, cfg.Host)
	if err != nil {
		return "greeting", err
	}
	c.client = client
	// Render allows ASCII addresses only, so never ask for SMTPUTF8.
	client.SkipSMTPUTF8(true)

	c.deadline()
	if err := client.Hello(cfg.LocalName); err != nil {
		return "ehlo", err
	}
	if cfg.TLS == TLSStartTLS {
		if ok, _ := client.Extension("STARTTLS"); !ok {
			return "starttls", errNoStartTLS
		}
		c.deadline()
		if err := client.StartTLS(tlsConfig); err != nil {
			return "starttls", err
		}
	}
	if cfg.Username != "" {
		ok, mechs := client.Extension("AUTH")
		if !ok || !slices.Contains(strings.Fields(strings.ToUpper(mechs)), "PLAIN") {
			return "auth", errors.New("server does not offer AUTH PLAIN")
		}
		c.deadline()
		auth := smtp.PlainAuth("", cfg.Username, cfg.Password, cfg.Host, cfg.AllowInsecureAuth)
		if err := client.Auth(auth); err != nil {
			return "auth", err
		}
	}
	return "", nil
}

// deadline gives the next command cmdTimeout to complete.
func (c *conn) deadline() {
	_ = c.raw.SetDeadline(time.Now().Add(c.cmdTimeout))
}

// close ends the session after failure cause (nil after success): politely with
// QUIT when the server is still in step with us, which aborts any open
// transaction, and then closes the connection whatever happens.
func (c *conn) close(cause error) {
	var reply *textproto.Error
	if c.client != nil && (cause == nil || errors.As(cause, &reply)) {
		_ = c.raw.SetDeadline(time.Now().Add(min(quitTimeout, c.cmdTimeout)))
		_ = c.client.Quit()
	}
	_ = c.raw.Close()
}

// ready reports whether the connection may still be used: not idle for longer
// than idleTimeout.
func (c *conn) ready(now time.Time, idleTimeout time.Duration) bool {
	return now.Sub(c.idleSince) < idleTimeout
}
