package transport_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/mailroom/mailroom/modules/delivery/internal/transport"
	"github.com/mailroom/mailroom/platform/logging"
	"github.com/mailroom/mailroom/platform/testkit/smtptest"
)

// logLine is one JSON log line, its fields as text.
type logLine map[string]string

// recordedLog is what a JSON logger at debug level wrote, as lines.
type recordedLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (r *recordedLog) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.Write(p)
}

// text is everything written so far.
func (r *recordedLog) text() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String()
}

// lines decodes what was written so far, failing the test on a line that is not JSON.
func (r *recordedLog) lines(t *testing.T) []logLine {
	t.Helper()
	var out []logLine
	for _, raw := range strings.Split(strings.TrimSpace(r.text()), "\n") {
		if raw == "" {
			continue
		}
		var fields map[string]any
		if err := json.Unmarshal([]byte(raw), &fields); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, raw)
		}
		line := logLine{}
		for k, v := range fields {
			line[k] = fmt.Sprint(v)
		}
		out = append(out, line)
	}
	return out
}

// debugLogger returns a JSON logger at level, the one serve builds, and what it
// writes.
func debugLogger(level string) (*slog.Logger, *recordedLog) {
	rec := &recordedLog{}
	return logging.New(rec, level, "json"), rec
}

// emailCtx names the email a send is for, as the delivery module does.
func emailCtx(id string) context.Context {
	return logging.ContextWith(context.Background(), logging.KeyEmailID, id, logging.KeyCorrelationID, "corr-"+id)
}

// want is a line a test expects: its message and the fields it must have (a
// field wanted "" must be absent).
type want struct {
	msg    string
	fields map[string]string
}

// wantLines fails unless lines, in order, are exactly want (each with at least its
// fields).
func wantLines(t *testing.T, lines []logLine, want ...want) {
	t.Helper()
	var got []string
	for _, l := range lines {
		got = append(got, l["msg"])
	}
	if len(lines) != len(want) {
		t.Fatalf("logged %d lines %q, want %d:\n%s", len(lines), got, len(want), describe(lines))
	}
	for i, w := range want {
		if lines[i]["msg"] != w.msg {
			t.Errorf("line %d is %q, want %q", i, lines[i]["msg"], w.msg)
		}
		for k, v := range w.fields {
			if have, ok := lines[i][k]; v == "" && ok || v != "" && have != v {
				t.Errorf("line %d (%s): %s=%q, want %q", i, w.msg, k, have, v)
			}
		}
	}
}

func describe(lines []logLine) string {
	var b strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&b, "  %v\n", map[string]string(l))
	}
	return b.String()
}

func TestAConversationLogsOneDebugLineForEachStepNamingTheEmail(t *testing.T) {
	srv := smtptest.Start(t)
	srv.FailRecipient("refused@example.com", 550, -1)
	srv.FailRecipient("later@example.com", 451, -1)
	log, rec := debugLogger("debug")
	tr := newSMTPLogging(t, config(srv), log)
	msg := message(t, "log-1", []string{"a@example.com", "refused@example.com", "later@example.com"})

	if _, err := tr.Send(emailCtx("log-1"), msg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	sent := rec.lines(t)
	port := fmt.Sprint(srv.Port())
	wantLines(t, sent,
		want{"smtp connected", map[string]string{"host": srv.Host(), "port": port}},
		want{"smtp tls", map[string]string{"tls": "none", "version": ""}},
		want{"smtp mail from", map[string]string{"from": "team@example.com", "code": "250", "enhanced": "2.0.0",
			"reply": "2.0.0 Roger, accepting mail from <team@example.com>"}},
		want{"smtp rcpt", map[string]string{"rcpt": "a@example.com", "verdict": "accepted", "code": "250", "enhanced": "2.0.0",
			"reply": "2.0.0 I'll make sure <a@example.com> gets this"}},
		want{"smtp rcpt", map[string]string{"rcpt": "refused@example.com", "verdict": "bounced", "code": "550", "enhanced": "5.1.1",
			"reply": "5.1.1 Mailbox unavailable: no such user (smtptest)"}},
		want{"smtp rcpt", map[string]string{"rcpt": "later@example.com", "verdict": "deferred", "code": "451", "enhanced": "4.3.0",
			"reply": "4.3.0 Temporary local problem, try again later (smtptest)"}},
		want{"smtp data", map[string]string{"verdict": "delivered", "code": "250", "enhanced": "2.0.0", "reply": "2.0.0 OK: queued",
			"recipients": "1", "bytes": fmt.Sprint(len(msg.Raw))}},
		want{"smtp connection kept", nil},
	)
	for i, l := range sent {
		if l["level"] != "DEBUG" || l[logging.KeyEmailID] != "log-1" || l[logging.KeyCorrelationID] != "corr-log-1" {
			t.Errorf("line %d (%s) is %s with email_id %q and correlation_id %q, want DEBUG naming log-1 and corr-log-1",
				i, l["msg"], l["level"], l[logging.KeyEmailID], l[logging.KeyCorrelationID])
		}
	}
	if took := sent[0]["took"]; took == "" {
		t.Errorf("the connect line does not say how long connecting took: %v", sent[0])
	}

	// The idle connection belongs to no email: its QUIT names none.
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	closed := rec.lines(t)[len(sent):]
	wantLines(t, closed, want{"smtp quit", map[string]string{"code": "221", logging.KeyEmailID: ""}})
}

func TestTheNextSendOnAKeptConnectionSaysItIsReusedAndNamesItsOwnEmail(t *testing.T) {
	srv := smtptest.Start(t)
	log, rec := debugLogger("debug")
	tr := newSMTPLogging(t, config(srv), log)
	send2 := func(id string) {
		t.Helper()
		if _, err := tr.Send(emailCtx(id), message(t, id, []string{"a@example.com"})); err != nil {
			t.Fatalf("Send %s: %v", id, err)
		}
	}
	send2("first")
	before := len(rec.lines(t))
	send2("second")

	wantLines(t, rec.lines(t)[before:],
		want{"smtp connection reused", map[string]string{logging.KeyEmailID: "second"}},
		want{"smtp mail from", map[string]string{logging.KeyEmailID: "second"}},
		want{"smtp rcpt", map[string]string{logging.KeyEmailID: "second", "verdict": "accepted"}},
		want{"smtp data", map[string]string{logging.KeyEmailID: "second", "verdict": "delivered"}},
		want{"smtp connection kept", map[string]string{logging.KeyEmailID: "second"}},
	)
}

func TestAFailedStepIsLoggedWithTheStepAndTheServersReply(t *testing.T) {
	srv := smtptest.Start(t)
	srv.FailAt(smtptest.StepMail, 421, -1)
	log, rec := debugLogger("debug")
	tr := newSMTPLogging(t, config(srv), log)

	if _, err := tr.Send(emailCtx("down-1"), message(t, "down-1", []string{"a@example.com"})); !transport.IsOutage(err) {
		t.Fatalf("Send: %v, want an outage", err)
	}
	wantLines(t, rec.lines(t),
		want{"smtp connected", nil},
		want{"smtp tls", nil},
		want{"smtp failed", map[string]string{"step": "mail from", "code": "421", logging.KeyEmailID: "down-1"}},
		want{"smtp quit", map[string]string{logging.KeyEmailID: "down-1"}},
	)
}

func TestAConnectionThatCannotBeMadeIsLoggedAsAFailedConnect(t *testing.T) {
	srv := smtptest.Start(t)
	if err := srv.RefuseConnections(true); err != nil {
		t.Fatal(err)
	}
	log, rec := debugLogger("debug")
	tr := newSMTPLogging(t, config(srv), log)

	if _, err := tr.Send(emailCtx("refused-1"), message(t, "refused-1", []string{"a@example.com"})); !transport.IsOutage(err) {
		t.Fatalf("Send: %v, want an outage", err)
	}
	lines := rec.lines(t)
	wantLines(t, lines, want{"smtp failed", map[string]string{"step": "connect", logging.KeyEmailID: "refused-1"}})
	if !strings.Contains(lines[0]["error"], "refused") {
		t.Errorf("the failed connect says %q, want the reason (connection refused)", lines[0]["error"])
	}
}

func TestTLSIsLoggedWithItsVersionAndCipher(t *testing.T) {
	cases := []struct {
		name string
		opts []smtptest.Option
		cfg  func(*transport.SMTPConfig, *smtptest.Server)
		mode string
	}{
		{"STARTTLS", []smtptest.Option{smtptest.WithTLS()}, func(c *transport.SMTPConfig, s *smtptest.Server) {
			c.TLS, c.TLSConfig = transport.TLSStartTLS, s.ClientTLSConfig()
		}, "starttls"},
		{"implicit TLS", []smtptest.Option{smtptest.WithImplicitTLS()}, implicitTLSConfig, "tls"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := smtptest.Start(t, tc.opts...)
			cfg := config(srv)
			tc.cfg(&cfg, srv)
			log, rec := debugLogger("debug")
			tr := newSMTPLogging(t, cfg, log)
			if _, err := tr.Send(emailCtx("tls-1"), message(t, "tls-1", []string{"a@example.com"})); err != nil {
				t.Fatalf("Send: %v", err)
			}
			var tlsLines []logLine
			for _, l := range rec.lines(t) {
				if l["msg"] == "smtp tls" {
					tlsLines = append(tlsLines, l)
				}
			}
			if len(tlsLines) != 1 || tlsLines[0]["tls"] != tc.mode || !strings.HasPrefix(tlsLines[0]["version"], "TLS 1.") ||
				!strings.HasPrefix(tlsLines[0]["cipher"], "TLS_") {
				t.Errorf("TLS lines %v, want one saying %s with a TLS version and a cipher suite", tlsLines, tc.mode)
			}
		})
	}
}

func TestAConversationsLinesHoldNeitherTheMessageNorThePassword(t *testing.T) {
	srv := smtptest.Start(t, smtptest.WithAuth("user", "s3cret-pass"))
	cfg := config(srv)
	cfg.Username, cfg.Password = "user", "s3cret-pass"
	log, rec := debugLogger("debug")
	tr := newSMTPLogging(t, cfg, log)
	msg := message(t, "secret-1", []string{"a@example.com"})

	if _, err := tr.Send(emailCtx("secret-1"), msg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	text := rec.text()
	if !strings.Contains(text, `"msg":"smtp auth accepted"`) || !strings.Contains(text, `"msg":"smtp data"`) {
		t.Fatalf("the conversation was not logged:\n%s", text)
	}
	plain := base64.StdEncoding.EncodeToString([]byte("\x00user\x00s3cret-pass"))
	for _, secret := range []string{"s3cret-pass", plain, "first line", "Subject:", msg.MessageID} {
		if strings.Contains(text, secret) {
			t.Errorf("the log holds %q:\n%s", secret, text)
		}
	}
}

func TestAtInfoLevelAConversationWritesNothing(t *testing.T) {
	srv := smtptest.Start(t)
	srv.FailRecipient("later@example.com", 451, -1)
	log, rec := debugLogger("info")
	tr := newSMTPLogging(t, config(srv), log)
	if _, err := tr.Send(emailCtx("quiet-1"), message(t, "quiet-1", []string{"a@example.com", "later@example.com"})); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if text := rec.text(); text != "" {
		t.Errorf("at info level the transport wrote:\n%s", text)
	}
}

func newSMTPLogging(t *testing.T, cfg transport.SMTPConfig, log *slog.Logger) *transport.SMTP {
	t.Helper()
	tr := transport.NewSMTP(cfg, log)
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}
