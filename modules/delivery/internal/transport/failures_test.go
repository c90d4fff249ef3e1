package transport_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailroom/mailroom/modules/delivery/internal/transport"
	"github.com/mailroom/mailroom/platform/testkit/smtptest"
)

// failureCase is a server, a configuration and what every Send and Probe meets.
type failureCase struct {
	name  string
	opts  []smtptest.Option
	setup func(t *testing.T, srv *smtptest.Server, cfg *transport.SMTPConfig)
	// key is the config key a KindConfiguration error names.
	key string
	// step is the ServerError's Step; code its reply code (0 for none).
	step string
	code int
	// contains is text Error() must contain.
	contains string
}

// wantNoMail fails if srv accepted any message.
func wantNoMail(t *testing.T, srv *smtptest.Server) {
	t.Helper()
	if n := srv.Count(); n != 0 {
		t.Errorf("server accepted %d messages", n)
	}
}

// runFailure sends one message and probes with tc's server and configuration, and
// wants the same *ServerError of kind from both, with no outcomes.
func runFailure(t *testing.T, tc failureCase, kind transport.Kind) {
	srv := smtptest.Start(t, tc.opts...)
	cfg := config(srv)
	cfg.CommandTimeout = 2 * time.Second
	if tc.setup != nil {
		tc.setup(t, srv, &cfg)
	}
	tr := newSMTP(t, cfg)

	res, err := tr.Send(context.Background(), message(t, "fail-1", []string{"a@example.com", "b@example.com"}))
	se := wantServerError(t, err, kind, tc.key)
	if len(res.Recipients) != 0 {
		t.Errorf("outcomes %+v with a transaction-wide error: every recipient must be asked again", res.Recipients)
	}
	if se.Step != tc.step || se.Code != tc.code {
		t.Errorf("err = %v: step %q code %d, want step %q code %d", err, se.Step, se.Code, tc.step, tc.code)
	}
	if !strings.Contains(err.Error(), tc.contains) {
		t.Errorf("Error() = %q, want it to contain %q", err, tc.contains)
	}
	if se.Addr != net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port)) {
		t.Errorf("Addr = %q, want the server's host:port", se.Addr)
	}
	wantNoMail(t, srv)

	probeErr := tr.Probe(context.Background())
	if tc.step == "rcpt" || tc.step == "data" {
		if probeErr != nil { // the set-up works; only a transaction meets the failure
			t.Errorf("Probe = %v, want nil: the session set-up works", probeErr)
		}
		return
	}
	pe := wantServerError(t, probeErr, kind, tc.key)
	if pe.Step != se.Step || pe.Code != se.Code {
		t.Errorf("Probe = %v, want the error Send met: %v", probeErr, err)
	}
}

func TestOutagesDecideNoRecipient(t *testing.T) {
	cases := []failureCase{
		{
			name: "a refused connection",
			setup: func(t *testing.T, srv *smtptest.Server, _ *transport.SMTPConfig) {
				if err := srv.RefuseConnections(true); err != nil {
					t.Fatal(err)
				}
			},
			step: "connect", contains: "connection refused",
		},
		{
			name: "a connect that times out",
			setup: func(_ *testing.T, _ *smtptest.Server, cfg *transport.SMTPConfig) {
				cfg.DialTimeout = time.Nanosecond // over before the connect: a deterministic timeout
			},
			step: "connect", contains: "i/o timeout",
		},
		{
			name: "a greeting that never comes",
			setup: func(t *testing.T, _ *smtptest.Server, cfg *transport.SMTPConfig) {
				cfg.Port, cfg.CommandTimeout = startHungServer(t, false).port(), 50*time.Millisecond
			},
			step: "greeting", contains: "i/o timeout",
		},
		{
			name:  "a 421 greeting",
			setup: failAt(smtptest.StepGreeting, 421),
			step:  "greeting", code: 421, contains: "421 4.4.2",
		},
		{
			name:  "a 450 greeting",
			setup: failAt(smtptest.StepGreeting, 450),
			step:  "greeting", code: 450, contains: "450 4.2.1",
		},
		{
			name:  "a connection dropped instead of the greeting",
			setup: dropAt(smtptest.StepGreeting),
			step:  "greeting", contains: "EOF",
		},
		{
			name: "a connection dropped before the implicit TLS handshake ends",
			opts: []smtptest.Option{smtptest.WithImplicitTLS()},
			setup: func(t *testing.T, srv *smtptest.Server, cfg *transport.SMTPConfig) {
				implicitTLS(srv, cfg)
				dropAt(smtptest.StepGreeting)(t, srv, cfg)
			},
			// EOF or a reset, as the kernel delivers the close: either is the outage.
			step: "tls handshake", contains: "outage: tls handshake",
		},
		{
			name:  "a 421 to EHLO",
			setup: failAt(smtptest.StepHello, 421),
			step:  "ehlo", code: 421, contains: "421 4.4.2",
		},
		{
			name:  "a connection dropped at EHLO",
			setup: dropAt(smtptest.StepHello),
			step:  "ehlo", contains: "EOF",
		},
		{
			name:  "a 454 to AUTH",
			opts:  []smtptest.Option{smtptest.WithAuth("user", "secret")},
			setup: withLogin(failAt(smtptest.StepAuth, 454)),
			step:  "auth", code: 454, contains: "454 4.7.0",
		},
		{
			name:  "a connection dropped at AUTH",
			opts:  []smtptest.Option{smtptest.WithAuth("user", "secret")},
			setup: withLogin(dropAt(smtptest.StepAuth)),
			step:  "auth", contains: "EOF",
		},
		{
			name:  "a 421 to MAIL FROM",
			setup: failAt(smtptest.StepMail, 421),
			step:  "mail from", code: 421, contains: "421 4.4.2",
		},
		{
			name:  "a connection dropped at MAIL FROM",
			setup: dropAt(smtptest.StepMail),
			step:  "mail from", contains: "EOF",
		},
		{
			name:  "a 421 to the first RCPT TO",
			setup: failAt(smtptest.StepRcpt, 421),
			step:  "rcpt", code: 421, contains: "421 4.4.2",
		},
		{
			name: "a 421 to a RCPT TO after another recipient was accepted",
			setup: func(_ *testing.T, srv *smtptest.Server, _ *transport.SMTPConfig) {
				srv.FailRecipient("b@example.com", 421, -1)
			},
			step: "rcpt", code: 421, contains: "421 4.4.2",
		},
		{
			name:  "a connection dropped before any RCPT TO reply",
			setup: dropAt(smtptest.StepRcpt),
			step:  "rcpt", contains: "EOF",
		},
		{
			name:  "a 421 to the end of data",
			setup: failAt(smtptest.StepData, 421),
			step:  "data", code: 421, contains: "421 4.4.2",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runFailure(t, tc, transport.KindOutage) })
	}
}

func TestConfigurationErrorsNameTheKeyToFix(t *testing.T) {
	cases := []failureCase{
		{
			name:  "STARTTLS required and not offered",
			setup: func(_ *testing.T, _ *smtptest.Server, cfg *transport.SMTPConfig) { cfg.TLS = transport.TLSStartTLS },
			key:   "smtp.tls", step: "starttls", contains: "does not offer STARTTLS (set smtp.tls to none or tls, or enable STARTTLS on the server)",
		},
		{
			name: "a STARTTLS certificate this machine does not trust",
			opts: []smtptest.Option{smtptest.WithTLS()},
			setup: func(_ *testing.T, _ *smtptest.Server, cfg *transport.SMTPConfig) {
				cfg.TLS = transport.TLSStartTLS // system roots: the self-signed certificate fails
			},
			key: "smtp.tls", step: "starttls", contains: `does not verify for the host name "127.0.0.1"`,
		},
		{
			name: "an implicit TLS certificate for another name",
			opts: []smtptest.Option{smtptest.WithImplicitTLS()},
			setup: func(_ *testing.T, srv *smtptest.Server, cfg *transport.SMTPConfig) {
				implicitTLS(srv, cfg)
				cfg.TLSConfig.ServerName = "mx.example.com" // trusted, but not for this name
			},
			key: "smtp.tls", step: "tls handshake", contains: `does not verify for the host name "mx.example.com"`,
		},
		{
			name:  "implicit TLS against a server speaking plain SMTP",
			setup: func(_ *testing.T, _ *smtptest.Server, cfg *transport.SMTPConfig) { cfg.TLS = transport.TLSImplicit },
			key:   "smtp.tls", step: "tls handshake", contains: "does not speak TLS from the first byte",
		},
		{
			name:  "a 554 greeting",
			setup: failAt(smtptest.StepGreeting, 554),
			key:   "smtp.host", step: "greeting", code: 554, contains: "refuses this client: 554 5.7.1",
		},
		{
			name:  "a 550 to EHLO and HELO",
			setup: failAt(smtptest.StepHello, 550),
			key:   "smtp.helo_name", step: "ehlo", code: 550, contains: "refused EHLO ",
		},
		{
			name: "a wrong password",
			opts: []smtptest.Option{smtptest.WithAuth("user", "secret")},
			setup: func(_ *testing.T, _ *smtptest.Server, cfg *transport.SMTPConfig) {
				cfg.Username, cfg.Password = "user", "wrong"
			},
			key: "smtp.password", step: "auth", code: 535, contains: "refused the username and password: 535 5.7.8 Authentication failed",
		},
		{
			name:  "a 538 to AUTH",
			opts:  []smtptest.Option{smtptest.WithAuth("user", "secret")},
			setup: withLogin(failAt(smtptest.StepAuth, 538)),
			key:   "smtp.password", step: "auth", code: 538, contains: "refused the username and password: 538 ",
		},
		{
			name:  "another 5xx to AUTH",
			opts:  []smtptest.Option{smtptest.WithAuth("user", "secret")},
			setup: withLogin(failAt(smtptest.StepAuth, 504)),
			key:   "smtp.username", step: "auth", code: 504, contains: `refused to log in as "user": 504 `,
		},
		{
			name: "a username for a server without AUTH",
			setup: func(_ *testing.T, _ *smtptest.Server, cfg *transport.SMTPConfig) {
				cfg.Username, cfg.Password = "user", "secret"
			},
			key: "smtp.username", step: "auth", contains: "does not offer AUTH PLAIN over plain TCP",
		},
		{
			name: "no username for a server that requires AUTH",
			opts: []smtptest.Option{smtptest.WithAuth("user", "secret")},
			key:  "smtp.username", step: "mail from", code: 530, contains: "requires authentication: 530 5.7.0 Authentication required (set smtp.username and smtp.password)",
		},
		{
			name: "a 530 asking for STARTTLS first",
			setup: func(_ *testing.T, srv *smtptest.Server, _ *transport.SMTPConfig) {
				srv.FailAtWithReply(smtptest.StepMail, 530, -1, "Must issue a STARTTLS command first")
			},
			key: "smtp.tls", step: "mail from", code: 530, contains: "requires TLS before mail: 530 5.7.0 Must issue a STARTTLS command first (set smtp.tls to starttls or tls)",
		},
		{
			name:  "a 530 although AUTH succeeded",
			opts:  []smtptest.Option{smtptest.WithAuth("user", "secret")},
			setup: withLogin(failAt(smtptest.StepMail, 530)),
			key:   "smtp.username", step: "mail from", code: 530, contains: `requires authentication although AUTH as "user" succeeded: 530 `,
		},
		{
			name: "a password that would cross plain TCP to a host not named as loopback",
			opts: []smtptest.Option{smtptest.WithAuth("user", "secret")},
			setup: func(t *testing.T, srv *smtptest.Server, cfg *transport.SMTPConfig) {
				// The same loopback address, written so that it does not count as
				// loopback by name, as a remote server's would not.
				cfg.Host = ipv4MappedLoopback(t, srv)
				cfg.Username, cfg.Password = "user", "secret"
			},
			key: "smtp.tls", step: "auth", contains: "refusing to send the password to ",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runFailure(t, tc, transport.KindConfiguration) })
	}
}

func TestAuthOverPlainTCPToANonLoopbackNameWhenAllowed(t *testing.T) {
	srv := smtptest.Start(t, smtptest.WithAuth("user", "secret"))
	cfg := config(srv)
	cfg.Host = ipv4MappedLoopback(t, srv)
	cfg.Username, cfg.Password, cfg.AllowInsecureAuth = "user", "secret", true
	tr := newSMTP(t, cfg)
	wantDelivered(t, send(t, tr, message(t, "auth-2", []string{"a@example.com"})))
}

func TestServerErrorsReadAsOneActionableLine(t *testing.T) {
	t.Run("STARTTLS not offered", func(t *testing.T) {
		srv := smtptest.Start(t)
		cfg := config(srv)
		cfg.TLS = transport.TLSStartTLS
		want := "smtp.tls: " + srv.Addr() + " does not offer STARTTLS (set smtp.tls to none or tls, or enable STARTTLS on the server)"
		if err := newSMTP(t, cfg).Probe(context.Background()); err == nil || err.Error() != want {
			t.Fatalf("Probe = %v\nwant      %s", err, want)
		}
	})
	t.Run("a wrong password", func(t *testing.T) {
		srv := smtptest.Start(t, smtptest.WithAuth("user", "secret"))
		cfg := config(srv)
		cfg.Username, cfg.Password = "user", "wrong"
		want := "smtp.password: " + srv.Addr() + " refused the username and password: 535 5.7.8 Authentication failed"
		if err := newSMTP(t, cfg).Probe(context.Background()); err == nil || err.Error() != want {
			t.Fatalf("Probe = %v\nwant      %s", err, want)
		}
	})
	t.Run("a refused connection", func(t *testing.T) {
		srv := smtptest.Start(t)
		if err := srv.RefuseConnections(true); err != nil {
			t.Fatal(err)
		}
		want := "outage: connect " + srv.Addr() + ": connection refused"
		if err := newSMTP(t, config(srv)).Probe(context.Background()); err == nil || err.Error() != want {
			t.Fatalf("Probe = %v\nwant      %s", err, want)
		}
	})
}

func TestProbeSucceedsOnAHealthyServerWithoutSendingMail(t *testing.T) {
	cases := []struct {
		name string
		opts []smtptest.Option
		cfg  func(*transport.SMTPConfig, *smtptest.Server)
	}{
		{"over plain TCP", nil, func(*transport.SMTPConfig, *smtptest.Server) {}},
		{"with STARTTLS", []smtptest.Option{smtptest.WithTLS()}, func(c *transport.SMTPConfig, s *smtptest.Server) {
			c.TLS, c.TLSConfig = transport.TLSStartTLS, s.ClientTLSConfig()
		}},
		{"over implicit TLS", []smtptest.Option{smtptest.WithImplicitTLS()}, implicitTLSConfig},
		{"with AUTH", []smtptest.Option{smtptest.WithAuth("user", "secret")}, func(c *transport.SMTPConfig, _ *smtptest.Server) {
			c.Username, c.Password = "user", "secret"
		}},
		{"with STARTTLS and AUTH", []smtptest.Option{smtptest.WithTLS(), smtptest.WithAuth("user", "secret")}, func(c *transport.SMTPConfig, s *smtptest.Server) {
			c.TLS, c.TLSConfig = transport.TLSStartTLS, s.ClientTLSConfig()
			c.Username, c.Password = "user", "secret"
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := smtptest.Start(t, tc.opts...)
			cfg := config(srv)
			tc.cfg(&cfg, srv)
			tr := newSMTP(t, cfg)
			if err := tr.Probe(context.Background()); err != nil {
				t.Fatalf("Probe = %v, want nil", err)
			}
			if srv.Connections() != 1 || len(srv.Hellos()) == 0 {
				t.Errorf("connections %d, hellos %q: the probe did not reach EHLO", srv.Connections(), srv.Hellos())
			}
			wantNoMail(t, srv)
		})
	}
}

func TestProbeAbandonedByCancellationIsNoServerError(t *testing.T) {
	hung := startHungServer(t, false)
	tr := newSMTP(t, transport.SMTPConfig{Host: "127.0.0.1", Port: hung.port(), TLS: transport.TLSNone, CommandTimeout: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Probe(ctx) }()
	select {
	case <-hung.stuck:
	case <-time.After(waitTimeout):
		t.Fatal("the probe never reached the greeting")
	}
	cancel()
	select {
	case err := <-done:
		if _, isServerError := transport.AsServerError(err); !errors.Is(err, context.Canceled) || isServerError {
			t.Fatalf("Probe = %v, want an error wrapping context.Canceled and no *ServerError", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Probe did not return after cancellation")
	}
}

func TestEHLOSaysTheConfiguredNameOrElseTheHostName(t *testing.T) {
	srv := smtptest.Start(t)
	cfg := config(srv)
	cfg.LocalName = "mail.example.com"
	if err := newSMTP(t, cfg).Probe(context.Background()); err != nil {
		t.Fatal(err)
	}
	cfg.LocalName = ""
	if err := newSMTP(t, cfg).Probe(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{"mail.example.com", transport.DefaultLocalName()}
	if got := srv.Hellos(); !slices.Equal(got, want) {
		t.Fatalf("EHLO names %q, want %q", got, want)
	}
}

func TestDefaultLocalNameIsTheHostNameWhenItIsAValidEHLODomain(t *testing.T) {
	name := transport.DefaultLocalName()
	host, err := os.Hostname()
	host = strings.TrimSuffix(host, ".")
	valid := (transport.SMTPConfig{Host: "mx", Port: 25, LocalName: host}).Validate() == nil
	switch {
	case err == nil && host != "" && valid:
		if name != host {
			t.Fatalf("DefaultLocalName() = %q, want the host name %q", name, host)
		}
	default:
		if name != transport.FallbackLocalName {
			t.Fatalf("DefaultLocalName() = %q with host name %q (%v), want %q", name, host, err, transport.FallbackLocalName)
		}
	}
}

func TestServerErrorHelpersSeeThroughWrapping(t *testing.T) {
	outage := &transport.ServerError{Kind: transport.KindOutage, Step: "connect", Addr: "mx:25", Err: errors.New("connect mx:25: connection refused")}
	config := &transport.ServerError{Kind: transport.KindConfiguration, Key: "smtp.tls", Err: errors.New("mx:25 does not offer STARTTLS")}
	wrapped := fmt.Errorf("deliver: %w", outage)
	if !transport.IsOutage(wrapped) || transport.IsOutage(config) {
		t.Errorf("IsOutage wrong for a wrapped outage or a configuration error")
	}
	if se, ok := transport.AsServerError(wrapped); !ok || se != outage {
		t.Errorf("AsServerError(wrapped) = %v, %v", se, ok)
	}
	if transport.IsOutage(context.Canceled) || transport.IsOutage(nil) {
		t.Errorf("IsOutage is true for an error that is no *ServerError")
	}
	if got := config.Error(); got != "smtp.tls: mx:25 does not offer STARTTLS" {
		t.Errorf("Error() = %q", got)
	}
	bare := &transport.ServerError{Kind: transport.KindOutage, Step: "rcpt", Addr: "mx:25", Reply: "421 4.4.2 bye\r\nnow"}
	if got := bare.Error(); got != "outage: rcpt mx:25: 421 4.4.2 bye  now" {
		t.Errorf("Error() without Err = %q, want one line from Step, Addr and Reply", got)
	}
}

// failAt scripts code at step for every session of the test.
func failAt(step smtptest.Step, code int) func(*testing.T, *smtptest.Server, *transport.SMTPConfig) {
	return func(_ *testing.T, srv *smtptest.Server, _ *transport.SMTPConfig) { srv.FailAt(step, code, -1) }
}

// dropAt drops every session of the test at step.
func dropAt(step smtptest.Step) func(*testing.T, *smtptest.Server, *transport.SMTPConfig) {
	return func(_ *testing.T, srv *smtptest.Server, _ *transport.SMTPConfig) { srv.DropAt(step, -1) }
}

// withLogin adds the test server's username and password to setup.
func withLogin(setup func(*testing.T, *smtptest.Server, *transport.SMTPConfig)) func(*testing.T, *smtptest.Server, *transport.SMTPConfig) {
	return func(t *testing.T, srv *smtptest.Server, cfg *transport.SMTPConfig) {
		cfg.Username, cfg.Password = "user", "secret"
		setup(t, srv, cfg)
	}
}

// implicitTLS configures implicit TLS trusting srv's certificate.
func implicitTLS(srv *smtptest.Server, cfg *transport.SMTPConfig) {
	cfg.TLS, cfg.TLSConfig = transport.TLSImplicit, srv.ClientTLSConfig()
}

func implicitTLSConfig(cfg *transport.SMTPConfig, srv *smtptest.Server) { implicitTLS(srv, cfg) }

// ipv4MappedLoopback returns srv's loopback address written as an IPv4-mapped IPv6
// address, which go-mail does not count as loopback by name.
func ipv4MappedLoopback(t *testing.T, srv *smtptest.Server) string {
	t.Helper()
	host := "::ffff:" + srv.Host()
	c, err := net.Dial("tcp", net.JoinHostPort(host, fmt.Sprint(srv.Port())))
	if err != nil {
		t.Fatalf("the test needs IPv4-mapped IPv6 addresses on loopback: %v", err)
	}
	_ = c.Close()
	return host
}
