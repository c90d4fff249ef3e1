package smtptest_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"net/textproto"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mailroom/mailroom/platform/testkit/smtptest"
)

const waitTimeout = 10 * time.Second

// dial opens a plain SMTP client connection to srv.
func dial(t *testing.T, srv *smtptest.Server) *smtp.Client {
	t.Helper()
	c, err := smtp.Dial(srv.Addr())
	if err != nil {
		t.Fatalf("dial %s: %v", srv.Addr(), err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Hello("client.test"); err != nil {
		t.Fatalf("EHLO: %v", err)
	}
	return c
}

// transact runs one MAIL/RCPT/DATA transaction and returns the first error.
func transact(c *smtp.Client, from string, to []string, body string) error {
	if err := c.Mail(from); err != nil {
		return fmt.Errorf("MAIL: %w", err)
	}
	for _, rcpt := range to {
		if err := c.Rcpt(rcpt); err != nil {
			return fmt.Errorf("RCPT %s: %w", rcpt, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write([]byte(body)); err != nil {
		return fmt.Errorf("DATA write: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("DATA end: %w", err)
	}
	return nil
}

// send delivers one message over a fresh plain connection.
func send(t *testing.T, srv *smtptest.Server, from string, to []string, body string) error {
	t.Helper()
	c, err := smtp.Dial(srv.Addr())
	if err != nil {
		return err
	}
	defer c.Close()
	if err := transact(c, from, to, body); err != nil {
		return err
	}
	return c.Quit()
}

// replyCode extracts the SMTP reply code from a net/smtp error, or 0.
func replyCode(err error) int {
	var tpErr *textproto.Error
	if errors.As(err, &tpErr) {
		return tpErr.Code
	}
	return 0
}

const body = "From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nHello.\r\n.leading dot\r\n"

func TestRecordsEnvelopeAndData(t *testing.T) {
	srv := smtptest.Start(t)

	if got := net.JoinHostPort(srv.Host(), fmt.Sprint(srv.Port())); got != srv.Addr() {
		t.Fatalf("Host/Port = %s, Addr = %s", got, srv.Addr())
	}
	if srv.Host() != "127.0.0.1" || srv.Port() == 0 {
		t.Fatalf("unexpected address %s", srv.Addr())
	}

	before := time.Now()
	if err := send(t, srv, "a@example.com", []string{"b@example.com", "C@Example.com"}, body); err != nil {
		t.Fatal(err)
	}
	srv.WaitForCount(t, 1, waitTimeout)

	msgs := srv.Messages()
	if len(msgs) != 1 || srv.Count() != 1 {
		t.Fatalf("got %d messages, Count %d; want 1", len(msgs), srv.Count())
	}
	m := msgs[0]
	if m.From != "a@example.com" {
		t.Errorf("From = %q", m.From)
	}
	if strings.Join(m.To, ",") != "b@example.com,C@Example.com" {
		t.Errorf("To = %q", m.To)
	}
	// net/smtp dot-stuffs the ".leading dot" line; the server must undo it
	// and keep CRLF line endings.
	if string(m.Data) != body {
		t.Errorf("Data = %q, want %q", m.Data, body)
	}
	if m.Received.Before(before) || m.Received.After(time.Now()) {
		t.Errorf("Received = %v, not within the send", m.Received)
	}
	if m.TLS {
		t.Error("TLS = true on a plain connection")
	}
	if n := len(srv.MessagesTo("c@example.com")); n != 1 {
		t.Errorf("MessagesTo(c@example.com) = %d messages, want 1 (case-insensitive)", n)
	}
	if n := len(srv.MessagesTo("<b@example.com>")); n != 1 {
		t.Errorf("MessagesTo(<b@example.com>) = %d messages, want 1", n)
	}
	if n := len(srv.MessagesTo("nobody@example.com")); n != 0 {
		t.Errorf("MessagesTo(nobody) = %d messages, want 0", n)
	}
	if n := srv.Attempts("b@example.com"); n != 1 {
		t.Errorf("Attempts(b) = %d, want 1", n)
	}
	if n := srv.Connections(); n != 1 {
		t.Errorf("Connections = %d, want 1", n)
	}
}

func TestFailRecipient451TwiceThenAccept(t *testing.T) {
	srv := smtptest.Start(t)
	const rcpt = "bob@example.com"
	srv.FailRecipient("Bob@Example.com", 451, 2)

	for i := 1; i <= 2; i++ {
		err := send(t, srv, "a@example.com", []string{rcpt}, body)
		if code := replyCode(err); code != 451 {
			t.Fatalf("attempt %d: got %v (code %d), want 451", i, err, code)
		}
		if !strings.Contains(err.Error(), "4.3.0") {
			t.Errorf("attempt %d: error %q lacks enhanced code 4.3.0", i, err)
		}
	}
	if srv.Count() != 0 {
		t.Fatalf("Count = %d after rejected attempts, want 0", srv.Count())
	}
	if err := send(t, srv, "a@example.com", []string{rcpt}, body); err != nil {
		t.Fatalf("third attempt: %v", err)
	}
	srv.WaitForCount(t, 1, waitTimeout)

	if n := srv.Attempts(rcpt); n != 3 {
		t.Errorf("Attempts = %d, want 3", n)
	}
	times := srv.AttemptTimes(rcpt)
	if len(times) != 3 {
		t.Fatalf("AttemptTimes has %d entries, want 3", len(times))
	}
	for i := 1; i < len(times); i++ {
		if times[i].Before(times[i-1]) {
			t.Errorf("AttemptTimes not in order: %v", times)
		}
	}
}

func TestFailRecipient550Forever(t *testing.T) {
	srv := smtptest.Start(t)
	const bad, good = "gone@example.com", "ok@example.com"
	srv.FailRecipient(bad, 550, -1)

	for i := 1; i <= 5; i++ {
		err := send(t, srv, "a@example.com", []string{bad}, body)
		if code := replyCode(err); code != 550 {
			t.Fatalf("attempt %d: got %v (code %d), want 550", i, err, code)
		}
	}
	if n := srv.Attempts(bad); n != 5 {
		t.Errorf("Attempts = %d, want 5", n)
	}

	// In a mixed transaction only the accepted recipient is recorded.
	c := dial(t, srv)
	if err := c.Mail("a@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt(bad); replyCode(err) != 550 {
		t.Fatalf("RCPT bad: %v, want 550", err)
	}
	if err := c.Rcpt(good); err != nil {
		t.Fatalf("RCPT good: %v", err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write([]byte(body))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	srv.WaitForCount(t, 1, waitTimeout)
	if to := srv.Messages()[0].To; len(to) != 1 || to[0] != good {
		t.Errorf("To = %v, want [%s]", to, good)
	}
	if len(srv.MessagesTo(bad)) != 0 {
		t.Error("rejected recipient shows up in MessagesTo")
	}

	// Fixing the fault at runtime lets the recipient through.
	srv.FailRecipient(bad, 0, 0)
	if err := send(t, srv, "a@example.com", []string{bad}, body); err != nil {
		t.Fatalf("after clearing: %v", err)
	}
	srv.WaitForAttempts(t, bad, 7, waitTimeout)
	if n := len(srv.MessagesTo(bad)); n != 1 {
		t.Errorf("MessagesTo(bad) = %d after clearing, want 1", n)
	}
}

func TestClearFaults(t *testing.T) {
	srv := smtptest.Start(t)
	srv.FailRecipient("x@example.com", 451, -1)
	srv.FailRecipient("y@example.com", 550, -1)
	srv.DropDuringData(3)
	srv.ClearFaults()
	if err := send(t, srv, "a@example.com", []string{"x@example.com", "y@example.com"}, body); err != nil {
		t.Fatal(err)
	}
	srv.WaitForCount(t, 1, waitTimeout)
}

func TestReplyDelay(t *testing.T) {
	const delay = 300 * time.Millisecond
	srv := smtptest.Start(t, smtptest.WithReplyDelay(delay))

	start := time.Now()
	if err := send(t, srv, "a@example.com", []string{"b@example.com"}, body); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < delay {
		t.Fatalf("send took %v, want >= %v", el, delay)
	}

	// Concurrent connections are delayed in parallel, not one after another.
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start = time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- send(t, srv, "a@example.com", []string{fmt.Sprintf("r%d@example.com", i)}, body)
		}()
	}
	wg.Wait()
	close(errs)
	el := time.Since(start)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if el < delay {
		t.Errorf("%d concurrent sends took %v, want >= %v", n, el, delay)
	}
	if serial := n * delay; el >= serial/2 {
		t.Errorf("%d concurrent sends took %v; delays look serialised (serial would be %v)", n, el, serial)
	}
	srv.WaitForCount(t, n+1, waitTimeout)
}

func TestAuthRequired(t *testing.T) {
	srv := smtptest.Start(t, smtptest.WithAuth("user", "secret"))

	c := dial(t, srv)
	ok, mechs := c.Extension("AUTH")
	if !ok || !strings.Contains(mechs, "PLAIN") {
		t.Fatalf("AUTH not advertised (ok=%v, mechs=%q)", ok, mechs)
	}
	if err := c.Mail("a@example.com"); replyCode(err) != 530 {
		t.Fatalf("MAIL before AUTH: %v, want 530", err)
	}
	if err := c.Auth(smtp.PlainAuth("", "user", "wrong", srv.Host())); replyCode(err) != 535 {
		t.Fatalf("AUTH with wrong password: %v, want 535", err)
	}
	// net/smtp quits after a failed AUTH, so authenticate on a new connection.
	c = dial(t, srv)
	if err := c.Auth(smtp.PlainAuth("", "user", "secret", srv.Host())); err != nil {
		t.Fatalf("AUTH: %v", err)
	}
	if err := transact(c, "a@example.com", []string{"b@example.com"}, body); err != nil {
		t.Fatal(err)
	}
	srv.WaitForCount(t, 1, waitTimeout)

	// Without WithAuth, AUTH is neither advertised nor required.
	plain := smtptest.Start(t)
	if ok, _ := dial(t, plain).Extension("AUTH"); ok {
		t.Error("AUTH advertised without WithAuth")
	}
}

func TestSTARTTLS(t *testing.T) {
	srv := smtptest.Start(t, smtptest.WithTLS())

	c := dial(t, srv)
	if ok, _ := c.Extension("STARTTLS"); !ok {
		t.Fatal("STARTTLS not advertised")
	}
	if err := c.StartTLS(srv.ClientTLSConfig()); err != nil {
		t.Fatalf("STARTTLS with ClientTLSConfig: %v", err)
	}
	if err := transact(c, "a@example.com", []string{"b@example.com"}, body); err != nil {
		t.Fatal(err)
	}
	srv.WaitForCount(t, 1, waitTimeout)
	if !srv.Messages()[0].TLS {
		t.Error("message over STARTTLS has TLS = false")
	}

	// CertPEM works for clients that build their own trust store.
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(srv.CertPEM()) {
		t.Fatal("CertPEM is not a valid PEM certificate")
	}
	c2 := dial(t, srv)
	if err := c2.StartTLS(&tls.Config{RootCAs: pool, ServerName: "localhost"}); err != nil {
		t.Fatalf("STARTTLS with CertPEM pool: %v", err)
	}

	// A client that does not trust the certificate fails verification.
	c3 := dial(t, srv)
	if err := c3.StartTLS(&tls.Config{ServerName: srv.Host()}); err == nil {
		t.Error("STARTTLS succeeded without trusting the self-signed certificate")
	}

	if smtptest.Start(t).ClientTLSConfig() != nil {
		t.Error("ClientTLSConfig non-nil without WithTLS")
	}
}

func TestImplicitTLS(t *testing.T) {
	srv := smtptest.Start(t, smtptest.WithImplicitTLS())

	conn, err := tls.Dial("tcp", srv.Addr(), srv.ClientTLSConfig())
	if err != nil {
		t.Fatalf("TLS dial: %v", err)
	}
	c, err := smtp.NewClient(conn, srv.Host())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("STARTTLS advertised on an implicit-TLS listener")
	}
	if err := transact(c, "a@example.com", []string{"b@example.com"}, body); err != nil {
		t.Fatal(err)
	}
	srv.WaitForCount(t, 1, waitTimeout)
	if !srv.Messages()[0].TLS {
		t.Error("message over implicit TLS has TLS = false")
	}
}

func TestDropDuringData(t *testing.T) {
	srv := smtptest.Start(t)
	srv.DropDuringData(1)

	long := body + strings.Repeat("some longer body text that exceeds the first read\r\n", 50)
	c := dial(t, srv)
	err := transact(c, "a@example.com", []string{"b@example.com"}, long)
	if err == nil {
		t.Fatal("transaction succeeded although the server dropped the connection")
	}
	if replyCode(err) != 0 {
		t.Fatalf("got SMTP reply %v; want a network error (no reply)", err)
	}
	if n := srv.Count(); n != 0 {
		t.Fatalf("Count = %d after dropped DATA, want 0", n)
	}
	if n := srv.Attempts("b@example.com"); n != 1 {
		t.Errorf("Attempts = %d, want 1", n)
	}

	// Only the next n messages are dropped.
	if err := send(t, srv, "a@example.com", []string{"b@example.com"}, long); err != nil {
		t.Fatalf("send after the drop: %v", err)
	}
	srv.WaitForCount(t, 1, waitTimeout)
	if got := string(srv.Messages()[0].Data); got != long {
		t.Errorf("Data mismatch after drop: got %d bytes, want %d", len(got), len(long))
	}
}

func TestRefuseConnections(t *testing.T) {
	srv := smtptest.Start(t)
	open := dial(t, srv) // established before refusing

	if err := srv.RefuseConnections(true); err != nil {
		t.Fatal(err)
	}
	if err := srv.RefuseConnections(true); err != nil { // idempotent
		t.Fatal(err)
	}
	_, err := net.Dial("tcp", srv.Addr())
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial while refusing: %v, want connection refused", err)
	}

	// Already-open connections keep working.
	if err := transact(open, "a@example.com", []string{"b@example.com"}, body); err != nil {
		t.Fatalf("existing connection while refusing: %v", err)
	}

	if err := srv.RefuseConnections(false); err != nil {
		t.Fatal(err)
	}
	if err := send(t, srv, "a@example.com", []string{"b@example.com"}, body); err != nil {
		t.Fatalf("send after RefuseConnections(false) on the same address: %v", err)
	}
	srv.WaitForCount(t, 2, waitTimeout)
	if n := srv.Connections(); n != 2 {
		t.Errorf("Connections = %d, want 2", n)
	}
}

func TestLargeMessage(t *testing.T) {
	srv := smtptest.Start(t)
	big := "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("x", 998)+"\r\n", 5<<10) // ~5 MB
	if err := send(t, srv, "a@example.com", []string{"b@example.com"}, big); err != nil {
		t.Fatalf("5 MB message: %v", err)
	}
	srv.WaitForCount(t, 1, waitTimeout)
	if n := len(srv.Messages()[0].Data); n != len(big) {
		t.Errorf("stored %d bytes, want %d", n, len(big))
	}

	tooBig := strings.Repeat(strings.Repeat("y", 998)+"\r\n", 11<<10) // ~11 MB
	if err := send(t, srv, "a@example.com", []string{"b@example.com"}, tooBig); replyCode(err) != 552 {
		t.Errorf("11 MB message: %v, want 552", err)
	}
	if srv.Count() != 1 {
		t.Errorf("Count = %d, want 1", srv.Count())
	}
}

// fakeTB captures Fatalf so the failure path of the Wait helpers can be
// tested. WaitFor* return right after calling Fatalf, so not stopping the
// goroutine is fine here.
type fakeTB struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.msg = fmt.Sprintf(format, args...)
}

func TestWaitTimeoutsReportProgress(t *testing.T) {
	srv := smtptest.Start(t)
	srv.FailRecipient("bad@example.com", 451, -1)
	_ = send(t, srv, "a@example.com", []string{"bad@example.com"}, body)
	if err := send(t, srv, "a@example.com", []string{"ok@example.com"}, body); err != nil {
		t.Fatal(err)
	}

	ftb := &fakeTB{TB: t}
	srv.WaitForCount(ftb, 3, 50*time.Millisecond)
	if !strings.Contains(ftb.msg, "waiting for 3 message(s): 1 arrived") ||
		!strings.Contains(ftb.msg, "bad@example.com=1") {
		t.Errorf("WaitForCount timeout message = %q", ftb.msg)
	}

	ftb = &fakeTB{TB: t}
	srv.WaitForAttempts(ftb, "bad@example.com", 4, 50*time.Millisecond)
	if !strings.Contains(ftb.msg, "4 RCPT attempt(s) for bad@example.com: 1 arrived") {
		t.Errorf("WaitForAttempts timeout message = %q", ftb.msg)
	}

	ftb = &fakeTB{TB: t}
	srv.WaitForCount(ftb, 1, 50*time.Millisecond) // already satisfied
	if ftb.msg != "" {
		t.Errorf("WaitForCount failed although satisfied: %q", ftb.msg)
	}
}

func TestWaitWakesOnArrival(t *testing.T) {
	srv := smtptest.Start(t)
	errs := make(chan error, 1)
	go func() {
		c, err := smtp.Dial(srv.Addr())
		if err != nil {
			errs <- err
			return
		}
		defer c.Close()
		errs <- transact(c, "a@example.com", []string{"b@example.com"}, body)
	}()
	srv.WaitForAttempts(t, "b@example.com", 1, waitTimeout)
	srv.WaitForCount(t, 1, waitTimeout)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
}

func TestNewAndClose(t *testing.T) {
	srv, err := smtptest.New("", smtptest.WithTLS())
	if err != nil {
		t.Fatal(err)
	}
	if srv.Host() != "127.0.0.1" {
		t.Errorf("Host = %q, want 127.0.0.1 by default", srv.Host())
	}
	c, err := smtp.Dial(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.StartTLS(srv.ClientTLSConfig()); err != nil {
		t.Fatal(err)
	}
	if err := transact(c, "a@example.com", []string{"b@example.com"}, body); err != nil {
		t.Fatal(err)
	}
	_ = c.Quit()

	if err := srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := net.Dial("tcp", srv.Addr()); err == nil {
		t.Error("dial succeeded after Close")
	}
	if srv.Count() != 1 {
		t.Errorf("Count after Close = %d, want 1 (records stay readable)", srv.Count())
	}
	if err := srv.RefuseConnections(false); err == nil {
		t.Error("RefuseConnections(false) re-opened a closed server")
	}
}

func TestCloseInterruptsReplyDelay(t *testing.T) {
	srv, err := smtptest.New("", smtptest.WithReplyDelay(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 1)
	go func() {
		c, err := smtp.Dial(srv.Addr())
		if err != nil {
			errs <- err
			return
		}
		defer c.Close()
		errs <- transact(c, "a@example.com", []string{"b@example.com"}, body)
	}()
	srv.WaitForAttempts(t, "b@example.com", 1, waitTimeout)
	_ = srv.Close()
	select {
	case err := <-errs:
		if err == nil {
			t.Error("transaction succeeded although the server was closed")
		}
	case <-time.After(waitTimeout):
		t.Fatal("Close did not interrupt the reply delay")
	}
}

// TestConcurrentUse exercises recording and runtime scripting from many
// goroutines at once; its value is in running under -race.
func TestConcurrentUse(t *testing.T) {
	srv := smtptest.Start(t)
	const senders, perSender = 10, 5
	var wg sync.WaitGroup
	for i := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := smtp.Dial(srv.Addr())
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			for j := range perSender {
				rcpt := fmt.Sprintf("r%d-%d@example.com", i, j)
				if err := transact(c, "a@example.com", []string{rcpt, "flaky@example.com"}, body); err != nil && replyCode(err) != 451 {
					t.Error(err)
					return
				}
				_ = c.Reset()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 50 {
			srv.FailRecipient("flaky@example.com", 451, i%3-1)
			_ = srv.Messages()
			_ = srv.MessagesTo("flaky@example.com")
			_ = srv.AttemptTimes("flaky@example.com")
		}
	}()
	wg.Wait()
	if n := srv.Attempts("flaky@example.com"); n != senders*perSender {
		t.Errorf("Attempts(flaky) = %d, want %d", n, senders*perSender)
	}
}
