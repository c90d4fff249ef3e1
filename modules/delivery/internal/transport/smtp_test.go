package transport_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/modules/delivery/internal/render"
	"github.com/mailroom/mailroom/modules/delivery/internal/transport"
	"github.com/mailroom/mailroom/platform/testkit/smtptest"
)

// waitTimeout bounds every wait on the test server; it is a failure deadline,
// never a way to synchronise.
const waitTimeout = 10 * time.Second

// message renders a realistic message: Korean text, lines starting with dots
// (dot-stuffing must be undone exactly) and a multipart body.
func message(t testing.TB, id string, to []string, bcc ...string) render.Message {
	t.Helper()
	m, err := render.Render(contract.SendEmail{
		EmailID: id,
		From:    "Team <team@example.com>",
		To:      to,
		Bcc:     bcc,
		Subject: "안녕하세요",
		Text:    "first line\n.\n..two dots\n안녕하세요\n",
		HTML:    "<p>안녕하세요</p>",
	}, render.Options{Now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }})
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return m
}

func config(srv *smtptest.Server) transport.SMTPConfig {
	return transport.SMTPConfig{
		Host:           srv.Host(),
		Port:           srv.Port(),
		TLS:            transport.TLSNone,
		DialTimeout:    5 * time.Second,
		CommandTimeout: 5 * time.Second,
	}
}

func newSMTP(t *testing.T, cfg transport.SMTPConfig) *transport.SMTP {
	t.Helper()
	tr := transport.NewSMTP(cfg)
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

func TestSMTPSendsTheExactBytes(t *testing.T) {
	cases := []struct {
		name string
		opts []smtptest.Option
		cfg  func(*transport.SMTPConfig, *smtptest.Server)
		tls  bool
	}{
		{name: "over plain TCP", cfg: func(*transport.SMTPConfig, *smtptest.Server) {}},
		{
			name: "after STARTTLS with a self-signed certificate the config trusts",
			opts: []smtptest.Option{smtptest.WithTLS()},
			cfg: func(c *transport.SMTPConfig, s *smtptest.Server) {
				c.TLS, c.TLSConfig = transport.TLSStartTLS, s.ClientTLSConfig()
			},
			tls: true,
		},
		{
			name: "over implicit TLS",
			opts: []smtptest.Option{smtptest.WithImplicitTLS()},
			cfg: func(c *transport.SMTPConfig, s *smtptest.Server) {
				c.TLS, c.TLSConfig = transport.TLSImplicit, s.ClientTLSConfig()
			},
			tls: true,
		},
		{
			name: "with AUTH PLAIN to a loopback host",
			opts: []smtptest.Option{smtptest.WithAuth("user", "secret")},
			cfg: func(c *transport.SMTPConfig, _ *smtptest.Server) {
				c.Username, c.Password = "user", "secret"
			},
		},
		{
			name: "with AUTH PLAIN after STARTTLS",
			opts: []smtptest.Option{smtptest.WithTLS(), smtptest.WithAuth("user", "secret")},
			cfg: func(c *transport.SMTPConfig, s *smtptest.Server) {
				c.TLS, c.TLSConfig = transport.TLSStartTLS, s.ClientTLSConfig()
				c.Username, c.Password = "user", "secret"
			},
			tls: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := smtptest.Start(t, tc.opts...)
			cfg := config(srv)
			tc.cfg(&cfg, srv)
			tr := newSMTP(t, cfg)
			msg := message(t, "exact-1", []string{"a@example.com", "b@example.com"}, "hidden@example.com")

			reply, err := tr.Send(context.Background(), msg)
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if !strings.HasPrefix(reply, "250 ") {
				t.Errorf("reply = %q, want the server's 250 reply", reply)
			}
			got := srv.Messages()
			if len(got) != 1 {
				t.Fatalf("server received %d messages", len(got))
			}
			if !bytes.Equal(got[0].Data, msg.Raw) {
				t.Errorf("server received\n%q\nwant\n%q", got[0].Data, msg.Raw)
			}
			if got[0].From != "team@example.com" || !slices.Equal(got[0].To, msg.Recipients) {
				t.Errorf("envelope %q -> %q, want team@example.com -> %q", got[0].From, got[0].To, msg.Recipients)
			}
			if got[0].TLS != tc.tls {
				t.Errorf("TLS = %v, want %v", got[0].TLS, tc.tls)
			}
		})
	}
}

func TestSMTPClassifiesRecipientFailures(t *testing.T) {
	cases := []struct {
		name          string
		fail          map[string]int
		wantPermanent bool
		wantCode      int
		wantNamed     string
	}{
		{"a 451 on RCPT is transient", map[string]int{"a@example.com": 451}, false, 451, "a@example.com"},
		{"a 452 on RCPT is transient", map[string]int{"a@example.com": 452}, false, 452, "a@example.com"},
		{"a 421 on RCPT is transient", map[string]int{"a@example.com": 421}, false, 421, "a@example.com"},
		{"a 550 on RCPT is permanent", map[string]int{"a@example.com": 550}, true, 550, "a@example.com"},
		{"a 553 on RCPT is permanent", map[string]int{"a@example.com": 553}, true, 553, "a@example.com"},
		{
			"a 550 on one recipient of several fails the whole message permanently",
			map[string]int{"b@example.com": 550}, true, 550, "b@example.com",
		},
		{
			"a 451 on one recipient of several fails the whole message transiently",
			map[string]int{"b@example.com": 451}, false, 451, "b@example.com",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := smtptest.Start(t)
			for addr, code := range tc.fail {
				srv.FailRecipient(addr, code, -1)
			}
			tr := newSMTP(t, config(srv))
			msg := message(t, "rcpt-1", []string{"a@example.com", "b@example.com", "c@example.com"})

			_, err := tr.Send(context.Background(), msg)
			var se *transport.SendError
			if !errors.As(err, &se) {
				t.Fatalf("error %v (%T) is not a *SendError", err, err)
			}
			if se.Permanent != tc.wantPermanent || transport.IsPermanent(err) != tc.wantPermanent {
				t.Errorf("permanent = %v, want %v (%v)", se.Permanent, tc.wantPermanent, err)
			}
			if se.Code != tc.wantCode || !strings.HasPrefix(se.Reply, fmt.Sprint(tc.wantCode)) {
				t.Errorf("code %d reply %q, want %d", se.Code, se.Reply, tc.wantCode)
			}
			if !strings.Contains(err.Error(), "rcpt "+tc.wantNamed) {
				t.Errorf("error %q does not name recipient %s", err, tc.wantNamed)
			}
			if srv.Count() != 0 {
				t.Errorf("server accepted %d messages; no recipient may get a partly refused message", srv.Count())
			}
			if srv.Attempts("c@example.com") != 0 {
				t.Errorf("recipients after the refused one were still tried")
			}
		})
	}
}

func TestSMTPRecoversAfterTransientRecipientFailure(t *testing.T) {
	srv := smtptest.Start(t)
	srv.FailRecipient("a@example.com", 451, 1)
	tr := newSMTP(t, config(srv))
	msg := message(t, "retry-1", []string{"a@example.com"})

	if _, err := tr.Send(context.Background(), msg); err == nil || transport.IsPermanent(err) {
		t.Fatalf("first send: err = %v, want a transient error", err)
	}
	if _, err := tr.Send(context.Background(), msg); err != nil {
		t.Fatalf("second send: %v", err)
	}
	if got := srv.MessagesTo("a@example.com"); len(got) != 1 || !bytes.Equal(got[0].Data, msg.Raw) {
		t.Fatalf("server received %d messages", len(got))
	}
}

func TestSMTPFailsTransientlyWhenTheServerIsUnreachable(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, srv *smtptest.Server, cfg *transport.SMTPConfig)
	}{
		{
			name: "connection refused",
			setup: func(t *testing.T, srv *smtptest.Server, _ *transport.SMTPConfig) {
				if err := srv.RefuseConnections(true); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "the connection drops in the middle of DATA",
			setup: func(_ *testing.T, srv *smtptest.Server, _ *transport.SMTPConfig) {
				srv.DropDuringData(1)
			},
		},
		{
			name: "STARTTLS is required but not offered",
			setup: func(_ *testing.T, _ *smtptest.Server, cfg *transport.SMTPConfig) {
				cfg.TLS = transport.TLSStartTLS
			},
		},
		{
			name: "implicit TLS meets a plain-text server",
			setup: func(_ *testing.T, _ *smtptest.Server, cfg *transport.SMTPConfig) {
				cfg.TLS = transport.TLSImplicit
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := smtptest.Start(t)
			cfg := config(srv)
			tc.setup(t, srv, &cfg)
			tr := newSMTP(t, cfg)

			_, err := tr.Send(context.Background(), message(t, "down-1", []string{"a@example.com"}))
			var se *transport.SendError
			if !errors.As(err, &se) || se.Permanent || transport.IsPermanent(err) {
				t.Fatalf("err = %v, want a transient *SendError", err)
			}
			if se.Code != 0 {
				t.Errorf("code = %d, want 0 for a failure without a reply", se.Code)
			}
			if srv.Count() != 0 {
				t.Errorf("server accepted %d messages", srv.Count())
			}
		})
	}
}

func TestSMTPStartTLSRejectsAnUntrustedCertificate(t *testing.T) {
	srv := smtptest.Start(t, smtptest.WithTLS())
	cfg := config(srv)
	cfg.TLS = transport.TLSStartTLS // system roots: the self-signed certificate fails
	tr := newSMTP(t, cfg)

	_, err := tr.Send(context.Background(), message(t, "tls-1", []string{"a@example.com"}))
	if err == nil || transport.IsPermanent(err) {
		t.Fatalf("err = %v, want a transient error", err)
	}
	if srv.Count() != 0 {
		t.Errorf("server accepted %d messages over an unverified connection", srv.Count())
	}
}

func TestSMTPAuthFailures(t *testing.T) {
	cases := []struct {
		name      string
		user      string
		pass      string
		wantCode  int
		wantInErr string
	}{
		{"a wrong password is refused permanently with 535", "user", "wrong", 535, "auth"},
		{"no credentials meet 530 at MAIL FROM", "", "", 530, "mail from"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := smtptest.Start(t, smtptest.WithAuth("user", "secret"))
			cfg := config(srv)
			cfg.Username, cfg.Password = tc.user, tc.pass
			tr := newSMTP(t, cfg)

			_, err := tr.Send(context.Background(), message(t, "auth-1", []string{"a@example.com"}))
			var se *transport.SendError
			if !errors.As(err, &se) || se.Code != tc.wantCode || !se.Permanent {
				t.Fatalf("err = %v, want a permanent %d", err, tc.wantCode)
			}
			if !strings.Contains(err.Error(), tc.wantInErr) {
				t.Errorf("error %q does not name the step %q", err, tc.wantInErr)
			}
		})
	}
}

func TestSMTPAuthOverPlainTCPToANonLoopbackName(t *testing.T) {
	cases := []struct {
		name      string
		allow     bool
		wantError bool
	}{
		{"the password is not sent in clear to a host not named as loopback", false, true},
		{"AllowInsecureAuth sends it anyway", true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := smtptest.Start(t, smtptest.WithAuth("user", "secret"))
			cfg := config(srv)
			// The same loopback address, written so that it does not count as
			// loopback by name, as a remote server's would not.
			cfg.Host = "::ffff:" + srv.Host()
			cfg.Username, cfg.Password, cfg.AllowInsecureAuth = "user", "secret", tc.allow
			probe := listen(t)
			if c, err := net.Dial("tcp", net.JoinHostPort(cfg.Host, fmt.Sprint(portOf(probe)))); err != nil {
				t.Fatalf("the test needs IPv4-mapped IPv6 addresses on loopback: %v", err)
			} else {
				_ = c.Close()
			}
			tr := newSMTP(t, cfg)
			_, err := tr.Send(context.Background(), message(t, "auth-2", []string{"a@example.com"}))
			if tc.wantError {
				if err == nil || transport.IsPermanent(err) || !strings.Contains(err.Error(), "auth") {
					t.Fatalf("err = %v, want a transient auth error", err)
				}
				if srv.Count() != 0 {
					t.Errorf("server accepted %d messages", srv.Count())
				}
				return
			}
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
		})
	}
}

func TestSMTPReusesConnections(t *testing.T) {
	cases := []struct {
		name      string
		maxIdle   int
		wantConns int
	}{
		{"two sends share one connection by default", 0, 1},
		{"two sends dial twice when reuse is disabled", -1, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := smtptest.Start(t, smtptest.WithAuth("user", "secret"))
			cfg := config(srv)
			cfg.Username, cfg.Password = "user", "secret"
			cfg.MaxIdleConns = tc.maxIdle
			tr := newSMTP(t, cfg)

			for i, to := range []string{"a@example.com", "b@example.com"} {
				msg := message(t, fmt.Sprintf("reuse-%d", i), []string{to})
				if _, err := tr.Send(context.Background(), msg); err != nil {
					t.Fatalf("send %d: %v", i, err)
				}
				if got := srv.MessagesTo(to); len(got) != 1 || !bytes.Equal(got[0].Data, msg.Raw) || !slices.Equal(got[0].To, []string{to}) {
					t.Fatalf("send %d: server received %+v", i, got)
				}
			}
			if got := srv.Connections(); got != tc.wantConns {
				t.Errorf("connections = %d, want %d", got, tc.wantConns)
			}
		})
	}
}

func TestSMTPConnectionIsUsableAfterARefusedMessageOnANewConnection(t *testing.T) {
	srv := smtptest.Start(t)
	srv.FailRecipient("bad@example.com", 550, -1)
	tr := newSMTP(t, config(srv))

	if _, err := tr.Send(context.Background(), message(t, "mix-1", []string{"bad@example.com"})); !transport.IsPermanent(err) {
		t.Fatalf("err = %v, want permanent", err)
	}
	good := message(t, "mix-2", []string{"good@example.com"})
	if _, err := tr.Send(context.Background(), good); err != nil {
		t.Fatalf("send after a refusal: %v", err)
	}
	if got := srv.MessagesTo("good@example.com"); len(got) != 1 || !slices.Equal(got[0].To, []string{"good@example.com"}) {
		t.Fatalf("server received %+v", got)
	}
}

func TestSMTPRedialsOnceWhenAnIdleConnectionBroke(t *testing.T) {
	srv := smtptest.Start(t)
	proxy := startProxy(t, srv.Addr())
	cfg := config(srv)
	cfg.Port = proxy.port()
	tr := newSMTP(t, cfg)

	if _, err := tr.Send(context.Background(), message(t, "redial-1", []string{"a@example.com"})); err != nil {
		t.Fatalf("first send: %v", err)
	}
	proxy.cut() // the idle connection is now dead, as after a server restart
	sendAfterCut(t, tr, srv, "redial-2")
	if got := srv.Connections(); got != 2 {
		t.Errorf("connections = %d, want 2", got)
	}
}

// TestSMTPDropsEveryIdleConnectionWhenOneBroke: a server restart breaks every pooled
// connection at once. The send that finds the first broken one must not spend its
// one redial on the next broken one (it did: three attempts of one email, each
// "rset: EOF", and the email was dead while the server was up).
func TestSMTPDropsEveryIdleConnectionWhenOneBroke(t *testing.T) {
	const pooled = 4
	// Each reply waits long enough that the sends overlap even on a loaded machine.
	srv := smtptest.Start(t, smtptest.WithReplyDelay(time.Second))
	proxy := startProxy(t, srv.Addr())
	cfg := config(srv)
	cfg.Port = proxy.port()
	cfg.MaxIdleConns = pooled
	tr := newSMTP(t, cfg)

	// Sends in flight at once each dial a connection, and all are pooled after.
	var wg sync.WaitGroup
	errs := make(chan error, pooled)
	for i := range pooled {
		wg.Go(func() {
			_, err := tr.Send(context.Background(), message(t, fmt.Sprintf("pool-%d", i), []string{fmt.Sprintf("p%d@example.com", i)}))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("filling the pool: %v", err)
		}
	}
	if got := srv.Connections(); got != pooled {
		t.Fatalf("%d connections after %d overlapping sends, want %d: the sends did not overlap", got, pooled, pooled)
	}

	proxy.cut() // every pooled connection is now dead, as after a server restart
	sendAfterCut(t, tr, srv, "after-restart")
	if got := srv.Connections(); got != pooled+1 {
		t.Errorf("connections = %d, want %d: one fresh dial after the break", got, pooled+1)
	}
}

func TestSMTPCancellationAbortsPromptly(t *testing.T) {
	cases := []struct {
		name string
		// greet tells the hanging server to greet and answer EHLO before it hangs
		// on the next command, instead of never greeting.
		greet bool
	}{
		{"while waiting for the greeting", false},
		{"while waiting for a reply to MAIL FROM", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hung := startHungServer(t, tc.greet)
			tr := newSMTP(t, transport.SMTPConfig{
				Host: "127.0.0.1", Port: hung.port(), TLS: transport.TLSNone,
				CommandTimeout: time.Hour, DialTimeout: time.Hour,
			})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()

			done := make(chan error, 1)
			go func() {
				_, err := tr.Send(ctx, message(t, "cancel-1", []string{"a@example.com"}))
				done <- err
			}()
			select {
			case <-hung.stuck:
			case <-time.After(waitTimeout):
				t.Fatal("the client never reached the hanging step")
			}
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) || transport.IsPermanent(err) {
					t.Fatalf("err = %v, want a transient error wrapping context.Canceled", err)
				}
			case <-time.After(waitTimeout):
				t.Fatal("Send did not return after cancellation")
			}
		})
	}
}

func TestSMTPCommandTimeoutEndsAHungSession(t *testing.T) {
	hung := startHungServer(t, true)
	tr := newSMTP(t, transport.SMTPConfig{
		Host: "127.0.0.1", Port: hung.port(), TLS: transport.TLSNone,
		CommandTimeout: 100 * time.Millisecond,
	})
	_, err := tr.Send(context.Background(), message(t, "timeout-1", []string{"a@example.com"}))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || transport.IsPermanent(err) {
		t.Fatalf("err = %v, want a transient timeout", err)
	}
}

func TestSMTPAwaitsTheVerdictWhenCancelledAfterTheData(t *testing.T) {
	srv := startBlockingDataServer(t)
	tr := newSMTP(t, transport.SMTPConfig{Host: "127.0.0.1", Port: srv.port(), TLS: transport.TLSNone})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	done := make(chan error, 1)
	go func() {
		_, err := tr.Send(ctx, message(t, "late-1", []string{"a@example.com"}))
		done <- err
	}()
	select {
	case <-srv.gotData: // the whole message including the final dot has arrived
	case <-time.After(waitTimeout):
		t.Fatal("the server never received the data")
	}
	cancel()
	srv.answer()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Send = %v, want the server's acceptance despite the late cancellation", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Send did not return")
	}
}

func TestSMTPRefusesAMessageItCannotSendExactly(t *testing.T) {
	good := message(t, "bad-1", []string{"a@example.com"})
	cases := []struct {
		name string
		msg  func(m render.Message) render.Message
	}{
		{"a recipient smuggling an SMTP parameter", func(m render.Message) render.Message {
			m.Recipients = []string{"a@x> ORCPT=rfc822;b@example.com"}
			return m
		}},
		{"a recipient with a line break", func(m render.Message) render.Message {
			m.Recipients = []string{"a@example.com\r\nDATA"}
			return m
		}},
		{"an envelope sender with a space", func(m render.Message) render.Message {
			m.EnvelopeFrom = "a b@example.com"
			return m
		}},
		{"no recipients", func(m render.Message) render.Message { m.Recipients = nil; return m }},
		{"a bare LF in the raw message", func(m render.Message) render.Message {
			m.Raw = []byte("Subject: x\n\r\nbody\r\n")
			return m
		}},
		{"a raw message not ending in CRLF", func(m render.Message) render.Message {
			m.Raw = []byte("Subject: x\r\n\r\nbody")
			return m
		}},
	}
	for _, tc := range cases {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			srv := smtptest.Start(t)
			tr := newSMTP(t, config(srv))
			_, err := tr.Send(context.Background(), tc.msg(good))
			if !transport.IsPermanent(err) {
				t.Fatalf("err = %v, want permanent", err)
			}
			if srv.Connections() != 0 {
				t.Errorf("the transport connected (%d) for a message it must refuse", srv.Connections())
			}
		})
	}
}

func TestSMTPSendsConcurrently(t *testing.T) {
	srv := smtptest.Start(t)
	cfg := config(srv)
	cfg.MaxIdleConns = 2
	tr := newSMTP(t, cfg)

	const senders, each = 6, 5
	var wg sync.WaitGroup
	errs := make(chan error, senders*each)
	for g := range senders {
		wg.Go(func() {
			for i := range each {
				to := fmt.Sprintf("r%d-%d@example.com", g, i)
				if _, err := tr.Send(context.Background(), message(t, fmt.Sprintf("c%d-%d", g, i), []string{to})); err != nil {
					errs <- fmt.Errorf("%s: %w", to, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if srv.Count() != senders*each {
		t.Errorf("server accepted %d messages, want %d", srv.Count(), senders*each)
	}
	if srv.Connections() > senders*each {
		t.Errorf("connections = %d", srv.Connections())
	}
}

func TestSMTPAfterClose(t *testing.T) {
	srv := smtptest.Start(t)
	tr := transport.NewSMTP(config(srv))
	if _, err := tr.Send(context.Background(), message(t, "close-1", []string{"a@example.com"})); err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Send(context.Background(), message(t, "close-2", []string{"a@example.com"})); err == nil || transport.IsPermanent(err) {
		t.Fatalf("send after Close: err = %v, want a transient error", err)
	}
}

func TestSMTPConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		cfg  transport.SMTPConfig
		ok   bool
	}{
		{"a host and port with the default TLS mode is valid", transport.SMTPConfig{Host: "mx", Port: 25}, true},
		{"every TLS mode is valid", transport.SMTPConfig{Host: "mx", Port: 465, TLS: transport.TLSImplicit}, true},
		{"an empty host is invalid", transport.SMTPConfig{Port: 25}, false},
		{"port 0 is invalid", transport.SMTPConfig{Host: "mx"}, false},
		{"an unknown TLS mode is invalid", transport.SMTPConfig{Host: "mx", Port: 25, TLS: "ssl"}, false},
		{"a negative timeout is invalid", transport.SMTPConfig{Host: "mx", Port: 25, CommandTimeout: -1}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok %v", err, tc.ok)
			}
		})
	}
}

func TestIsPermanent(t *testing.T) {
	_, renderErr := render.Render(contract.SendEmail{EmailID: "x", To: []string{"a@example.com"}}, render.Options{})
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"nil is not permanent", nil, false},
		{"a plain error is not permanent", errors.New("boom"), false},
		{"a cancelled context is not permanent", context.Canceled, false},
		{"a transient SendError is not permanent", &transport.SendError{Code: 451}, false},
		{"a permanent SendError is permanent", &transport.SendError{Permanent: true, Code: 550}, true},
		{"a wrapped permanent SendError is permanent", fmt.Errorf("send: %w", &transport.SendError{Permanent: true}), true},
		{"a render error is permanent", renderErr, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := transport.IsPermanent(tc.err); got != tc.want {
				t.Fatalf("IsPermanent(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// sendAfterCut sends one message to b@example.com once the proxy cut the pooled
// connections, and wants the server to have received it intact.
func sendAfterCut(t *testing.T, tr *transport.SMTP, srv *smtptest.Server, id string) {
	t.Helper()
	msg := message(t, id, []string{"b@example.com"})
	if _, err := tr.Send(context.Background(), msg); err != nil {
		t.Fatalf("send after the pooled connections broke: %v", err)
	}
	if got := srv.MessagesTo("b@example.com"); len(got) != 1 || !bytes.Equal(got[0].Data, msg.Raw) {
		t.Fatalf("server received %+v", got)
	}
}
