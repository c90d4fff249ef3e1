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
	m, err := render.Render(contract.FirstTry(contract.Email{
		EmailID: id,
		From:    "Team <team@example.com>",
		To:      to,
		Bcc:     bcc,
		Subject: "안녕하세요",
		Text:    "first line\n.\n..two dots\n안녕하세요\n",
		HTML:    "<p>안녕하세요</p>",
	}), render.Options{Now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }})
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
	tr := transport.NewSMTP(cfg, nil)
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// send sends msg and wants a Result: no transaction-wide error, and one outcome per
// recipient, in order.
func send(t *testing.T, tr transport.Transport, msg render.Message) transport.Result {
	t.Helper()
	res, err := tr.Send(context.Background(), msg)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if len(res.Recipients) != len(msg.Recipients) {
		t.Fatalf("Send returned %d outcomes for %d recipients: %+v", len(res.Recipients), len(msg.Recipients), res)
	}
	for i, r := range res.Recipients {
		if r.Address != msg.Recipients[i] {
			t.Fatalf("outcome %d is for %q, want %q (msg.Recipients' order)", i, r.Address, msg.Recipients[i])
		}
	}
	return res
}

// wantDelivered fails unless every recipient of res was delivered with the
// server's 250 reply.
func wantDelivered(t *testing.T, res transport.Result) {
	t.Helper()
	for _, r := range res.Recipients {
		if r.Verdict != transport.Delivered || r.Stage != transport.StageData || r.Code != 250 || !strings.HasPrefix(r.Detail, "250 ") {
			t.Errorf("%s: %+v, want delivered with the server's 250 reply", r.Address, r)
		}
	}
}

// wantServerError fails unless err is a *ServerError of kind (and, for
// KindConfiguration, naming key) whose Error() is one line starting with its
// prefix, and returns it.
func wantServerError(t *testing.T, err error, kind transport.Kind, key string) *transport.ServerError {
	t.Helper()
	se, ok := transport.AsServerError(err)
	if !ok {
		t.Fatalf("err = %v (%T), want a *ServerError of kind %v", err, err, kind)
	}
	if se.Kind != kind || se.Key != key {
		t.Fatalf("err = %v: kind %v key %q, want kind %v key %q", err, se.Kind, se.Key, kind, key)
	}
	prefix := kind.String() + ": "
	if kind == transport.KindConfiguration {
		prefix = key + ": "
	}
	if msg := err.Error(); !strings.HasPrefix(msg, prefix) || strings.ContainsAny(msg, "\r\n") {
		t.Errorf("Error() = %q, want one line starting with %q", msg, prefix)
	}
	if errors.Is(err, context.Canceled) {
		t.Errorf("err = %v matches context.Canceled, which the caller takes for a shutdown", err)
	}
	return se
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

			res := send(t, tr, msg)
			wantDelivered(t, res)
			if r := res.Recipients[0]; r.Detail != "250 2.0.0 OK: queued" || r.Enhanced != "2.0.0" {
				t.Errorf("outcome %+v, want the detail and enhanced code of go-smtp's acceptance", r)
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

func TestSMTPRecoversAfterTransientRecipientFailure(t *testing.T) {
	srv := smtptest.Start(t)
	srv.FailRecipient("a@example.com", 451, 1)
	tr := newSMTP(t, config(srv))
	msg := message(t, "retry-1", []string{"a@example.com"})

	if r := send(t, tr, msg).Recipients[0]; r.Verdict != transport.Deferred || r.Code != 451 {
		t.Fatalf("first send: %+v, want deferred with 451", r)
	}
	wantDelivered(t, send(t, tr, msg))
	if got := srv.MessagesTo("a@example.com"); len(got) != 1 || !bytes.Equal(got[0].Data, msg.Raw) {
		t.Fatalf("server received %d messages", len(got))
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
				wantDelivered(t, send(t, tr, msg))
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

func TestSMTPRedialsOnceWhenAnIdleConnectionBroke(t *testing.T) {
	srv := smtptest.Start(t)
	proxy := startProxy(t, srv.Addr())
	cfg := config(srv)
	cfg.Port = proxy.port()
	tr := newSMTP(t, cfg)

	wantDelivered(t, send(t, tr, message(t, "redial-1", []string{"a@example.com"})))
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
			res, err := tr.Send(context.Background(), message(t, fmt.Sprintf("pool-%d", i), []string{fmt.Sprintf("p%d@example.com", i)}))
			if err == nil && res.Recipients[0].Verdict != transport.Delivered {
				err = fmt.Errorf("not delivered: %+v", res)
			}
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
				if _, isServerError := transport.AsServerError(err); !errors.Is(err, context.Canceled) || isServerError {
					t.Fatalf("err = %v, want an error wrapping context.Canceled and no *ServerError", err)
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
	se := wantServerError(t, err, transport.KindOutage, "")
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || se.Step != "mail from" {
		t.Fatalf("err = %v (step %q), want a timeout at MAIL FROM", err, se.Step)
	}
}

func TestSMTPAwaitsTheVerdictWhenCancelledAfterTheData(t *testing.T) {
	srv := startBlockingDataServer(t)
	tr := newSMTP(t, transport.SMTPConfig{Host: "127.0.0.1", Port: srv.port(), TLS: transport.TLSNone})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	done := make(chan error, 1)
	go func() {
		res, err := tr.Send(ctx, message(t, "late-1", []string{"a@example.com"}))
		if err == nil && res.Recipients[0].Verdict != transport.Delivered {
			err = fmt.Errorf("not delivered: %+v", res)
		}
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
			res, err := tr.Send(context.Background(), tc.msg(good))
			wantServerError(t, err, transport.KindMessage, "")
			if len(res.Recipients) != 0 {
				t.Errorf("outcomes %+v with a message-wide error", res.Recipients)
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
				res, err := tr.Send(context.Background(), message(t, fmt.Sprintf("c%d-%d", g, i), []string{to}))
				if err == nil && res.Recipients[0].Verdict != transport.Delivered {
					err = fmt.Errorf("not delivered: %+v", res)
				}
				if err != nil {
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
	tr := transport.NewSMTP(config(srv), nil)
	wantDelivered(t, send(t, tr, message(t, "close-1", []string{"a@example.com"})))
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := tr.Send(context.Background(), message(t, "close-2", []string{"a@example.com"}))
	if _, isServerError := transport.AsServerError(err); !errors.Is(err, transport.ErrClosed) || isServerError {
		t.Fatalf("send after Close: err = %v, want ErrClosed and no *ServerError", err)
	}
	if err := tr.Probe(context.Background()); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("probe after Close: err = %v, want ErrClosed", err)
	}
}

func TestSMTPConfigValidate(t *testing.T) {
	cases := []struct {
		name    string
		cfg     transport.SMTPConfig
		wantKey string // "" when valid
	}{
		{"a host and port with the default TLS mode is valid", transport.SMTPConfig{Host: "mx", Port: 25}, ""},
		{"every TLS mode is valid", transport.SMTPConfig{Host: "mx", Port: 465, TLS: transport.TLSImplicit}, ""},
		{"an EHLO domain is valid", transport.SMTPConfig{Host: "mx", Port: 25, LocalName: "mail-1.example.com"}, ""},
		{"an EHLO address literal is valid", transport.SMTPConfig{Host: "mx", Port: 25, LocalName: "[192.0.2.1]"}, ""},
		{"an EHLO IPv6 address literal is valid", transport.SMTPConfig{Host: "mx", Port: 25, LocalName: "[IPv6:2001:db8::1]"}, ""},
		{"an empty host is invalid", transport.SMTPConfig{Port: 25}, "smtp.host"},
		{"port 0 is invalid", transport.SMTPConfig{Host: "mx"}, "smtp.port"},
		{"an unknown TLS mode is invalid", transport.SMTPConfig{Host: "mx", Port: 25, TLS: "ssl"}, "smtp.tls"},
		{"a negative timeout is invalid", transport.SMTPConfig{Host: "mx", Port: 25, CommandTimeout: -1}, "smtp.timeout"},
		{"an EHLO name with an underscore is invalid", transport.SMTPConfig{Host: "mx", Port: 25, LocalName: "my_host"}, "smtp.helo_name"},
		{"an EHLO name with a line break is invalid", transport.SMTPConfig{Host: "mx", Port: 25, LocalName: "a\r\nRSET"}, "smtp.helo_name"},
		{"an EHLO address literal that is no address is invalid", transport.SMTPConfig{Host: "mx", Port: 25, LocalName: "[mx]"}, "smtp.helo_name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantKey == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			wantServerError(t, err, transport.KindConfiguration, tc.wantKey)
		})
	}
}

func TestSMTPSendAndProbeReturnValidatesError(t *testing.T) {
	tr := newSMTP(t, transport.SMTPConfig{Host: "mx", Port: 25, TLS: "ssl"})
	_, err := tr.Send(context.Background(), message(t, "invalid-1", []string{"a@example.com"}))
	wantServerError(t, err, transport.KindConfiguration, "smtp.tls")
	wantServerError(t, tr.Probe(context.Background()), transport.KindConfiguration, "smtp.tls")
}

// sendAfterCut sends one message to b@example.com once the proxy cut the pooled
// connections, and wants the server to have received it intact.
func sendAfterCut(t *testing.T, tr *transport.SMTP, srv *smtptest.Server, id string) {
	t.Helper()
	msg := message(t, id, []string{"b@example.com"})
	wantDelivered(t, send(t, tr, msg))
	if got := srv.MessagesTo("b@example.com"); len(got) != 1 || !bytes.Equal(got[0].Data, msg.Raw) {
		t.Fatalf("server received %+v", got)
	}
}
