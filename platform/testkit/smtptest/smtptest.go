// Package smtptest runs a real, in-process SMTP server for tests.
//
// The server is built on github.com/emersion/go-smtp and speaks the actual
// SMTP protocol on a loopback TCP port. Clients under test therefore go
// through their real dialing, EHLO, STARTTLS, AUTH, MAIL/RCPT/DATA code paths
// instead of talking to a mock.
//
// It exists so that delivery unit tests, end-to-end tests and fault tests
// share one well-behaved SMTP peer that:
//
//   - records every accepted message (envelope and raw bytes) and every
//     RCPT TO attempt, so tests can assert on what was delivered and how
//     often a recipient was tried;
//   - can be scripted at runtime to fail recipients (451 transient, 550
//     permanent, ...), to reply with an error or drop the connection at a
//     chosen step (greeting, EHLO, MAIL FROM, RCPT TO, end of data: FailAt,
//     DropAt, DropDuringData), or refuse connections altogether;
//   - can simulate a slow peer (WithReplyDelay), require AUTH PLAIN
//     (WithAuth) and offer STARTTLS or implicit TLS with an in-process
//     self-signed certificate (WithTLS, WithImplicitTLS).
//
// Typical use:
//
//	srv := smtptest.Start(t, smtptest.WithTLS())
//	srv.FailRecipient("bob@example.com", 451, 2) // two transient failures, then accept
//	// ... point the code under test at srv.Host(), srv.Port() ...
//	srv.WaitForCount(t, 1, 5*time.Second)
//	msg := srv.MessagesTo("bob@example.com")[0]
//
// Addresses are compared case-insensitively everywhere in this package
// (FailRecipient, Attempts, MessagesTo, ...), and surrounding angle brackets
// are ignored.
//
// All methods are safe for concurrent use.
package smtptest

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Limits applied by every Server. They are generous so that tests of large
// messages and bulk sends are not limited by the test server itself.
const (
	// MaxMessageBytes is the largest DATA payload the server accepts.
	MaxMessageBytes = 10 << 20
	// MaxRecipients is the largest number of RCPT TO per transaction.
	MaxRecipients = 100
)

// Message is one message the server accepted (answered 250 to DATA). It is
// the unit tests assert on: who sent it, to whom, and the exact bytes.
type Message struct {
	// From is the envelope sender (MAIL FROM), without angle brackets.
	From string
	// To lists the envelope recipients (RCPT TO) that were accepted for
	// this transaction, in the order the client sent them. Recipients
	// rejected by FailRecipient are not included.
	To []string
	// Data is the raw message as received after DATA, with dot-stuffing
	// removed and line endings left exactly as sent (normally CRLF).
	// Treat it as read-only; it is shared between calls to Messages.
	Data []byte
	// Received is when the server accepted the message, i.e. just before
	// it sent the final 250 reply (after any WithReplyDelay).
	Received time.Time
	// TLS reports whether the message was transferred over TLS (after
	// STARTTLS or on an implicit-TLS listener).
	TLS bool
	// Hello is the name the client gave in the EHLO or HELO of the session
	// that carried the message, so a test with several senders (each given a
	// name of its own) can tell which one sent it.
	Hello string
}

// Option configures a Server at construction time; see the With* functions.
type Option func(*config)

type config struct {
	replyDelay  time.Duration
	authUser    string
	authPass    string
	authEnabled bool
	tls         bool
	implicitTLS bool
	errorLog    smtp.Logger
}

// WithReplyDelay makes the server wait d after receiving the message data
// before it answers DATA, simulating a real MTA that takes time to queue a
// message. Each connection is served by its own goroutine, so the delay
// applies per message and concurrent connections are delayed in parallel,
// which is what throughput benchmarks need.
func WithReplyDelay(d time.Duration) Option {
	return func(c *config) { c.replyDelay = d }
}

// WithAuth makes the server advertise AUTH PLAIN and reject MAIL FROM with
// 530 5.7.0 until the client has authenticated as user/pass. Wrong
// credentials get 535 5.7.8. Plaintext AUTH is allowed (no TLS needed) so
// tests are not forced to combine auth with TLS.
func WithAuth(user, pass string) Option {
	return func(c *config) {
		c.authEnabled = true
		c.authUser = user
		c.authPass = pass
	}
}

// WithTLS generates a self-signed certificate for 127.0.0.1, ::1 and
// localhost and advertises STARTTLS. Clients trust it via ClientTLSConfig
// (in-process) or CertPEM (for a subprocess).
func WithTLS() Option {
	return func(c *config) { c.tls = true }
}

// WithImplicitTLS is like WithTLS but the listener speaks TLS from the first
// byte (SMTPS, as on port 465) instead of offering STARTTLS.
func WithImplicitTLS() Option {
	return func(c *config) {
		c.tls = true
		c.implicitTLS = true
	}
}

// Server is a running SMTP test server. Create it with Start (in tests) or
// New (anywhere else) and inspect or script it with its methods.
type Server struct {
	cfg       config
	smtp      *smtp.Server
	addr      string // fixed for the server's lifetime, also across RefuseConnections
	serverTLS *tls.Config
	clientTLS *tls.Config
	certPEM   []byte
	done      chan struct{} // closed by Close; interrupts reply delays

	mu         sync.Mutex
	closed     bool
	listener   net.Listener // nil while refusing connections
	conns      int
	messages   []Message
	attempts   map[string][]time.Time
	hellos     []string
	faults     map[string]*fault // FailRecipient and DropAtRecipient scripts by address
	stepFaults map[Step]*fault   // FailAt, DropAt and DropDuringData scripts
	changed    chan struct{}     // closed and replaced whenever messages/attempts change
}

// fault is one scripted failure: a reply (err) or, when drop is set, a
// connection closed without one.
type fault struct {
	err       *smtp.SMTPError
	drop      bool
	remaining int // < 0 means forever
}

// Start starts a server on 127.0.0.1 with a random free port and registers
// tb.Cleanup to close it. Server errors are logged through tb.Logf. It is the
// constructor tests should use.
func Start(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	tl := &tbLogger{tb: tb}
	opts = append(opts[:len(opts):len(opts)], func(c *config) { c.errorLog = tl })
	s, err := New("127.0.0.1:0", opts...)
	if err != nil {
		tb.Fatalf("smtptest: start server: %v", err)
	}
	tb.Cleanup(func() {
		_ = s.Close()
		tl.stop() // no tb.Logf after the test has finished
	})
	return s
}

// New starts a server listening on addr (e.g. "127.0.0.1:0"; "" means that)
// without needing a testing.TB, for use outside a test function, e.g. in a
// helper process or TestMain. Server errors are logged to stderr. The caller
// must call Close.
func New(addr string, opts ...Option) (*Server, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	s := &Server{
		done:       make(chan struct{}),
		attempts:   make(map[string][]time.Time),
		faults:     make(map[string]*fault),
		stepFaults: make(map[Step]*fault),
		changed:    make(chan struct{}),
	}
	for _, o := range opts {
		o(&s.cfg)
	}

	if s.cfg.tls {
		if err := s.generateCert(); err != nil {
			return nil, fmt.Errorf("smtptest: generate certificate: %w", err)
		}
	}

	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = "smtptest.localhost"
	srv.MaxMessageBytes = MaxMessageBytes
	srv.MaxRecipients = MaxRecipients
	srv.AllowInsecureAuth = true
	if s.cfg.errorLog != nil {
		srv.ErrorLog = s.cfg.errorLog
	} else {
		srv.ErrorLog = log.New(os.Stderr, "smtptest: ", log.LstdFlags)
	}
	if s.cfg.tls && !s.cfg.implicitTLS {
		srv.TLSConfig = s.serverTLS // advertises STARTTLS
	}
	s.smtp = srv

	l, err := s.listen(addr)
	if err != nil {
		return nil, fmt.Errorf("smtptest: listen on %s: %w", addr, err)
	}
	s.addr = l.Addr().String()
	s.listener = l
	if s.clientTLS != nil {
		s.clientTLS.ServerName = s.Host()
	}
	go s.smtp.Serve(l) //nolint:errcheck // returns when the listener is closed
	return s, nil
}

// listen opens a listener on addr, wrapped to count connections and, for
// implicit TLS, to terminate TLS.
func (s *Server) listen(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	var wrapped net.Listener = &countingListener{Listener: l, s: s}
	if s.cfg.implicitTLS {
		wrapped = tls.NewListener(wrapped, s.serverTLS)
	}
	return wrapped, nil
}

// Close stops the server: it closes the listener and all open connections
// and interrupts pending reply delays. Recorded messages and attempts stay
// readable. Calling Close more than once is harmless.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	var err error
	if s.listener != nil {
		err = s.listener.Close()
		s.listener = nil
	}
	s.mu.Unlock()

	// go-smtp also tracks (and now closes) every listener it ever served,
	// including ones closed earlier by RefuseConnections, so its error is
	// not meaningful here.
	_ = s.smtp.Close()
	return err
}

// Addr returns the "host:port" the server listens on, for clients that take
// a single address.
func (s *Server) Addr() string { return s.addr }

// Host returns the IP address the server listens on (normally "127.0.0.1"),
// for clients configured with separate host and port.
func (s *Server) Host() string {
	h, _, _ := net.SplitHostPort(s.addr)
	return h
}

// Port returns the TCP port the server listens on.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.addr)
	n, _ := strconv.Atoi(p)
	return n
}

// ClientTLSConfig returns a new client TLS configuration that trusts the
// server's self-signed certificate (RootCAs) and has ServerName set to Host,
// so STARTTLS or implicit TLS verifies without InsecureSkipVerify. It
// returns nil unless the server was created with WithTLS or WithImplicitTLS.
func (s *Server) ClientTLSConfig() *tls.Config {
	if s.clientTLS == nil {
		return nil
	}
	return s.clientTLS.Clone()
}

// CertPEM returns the server's self-signed certificate in PEM form, for
// clients that cannot take a *tls.Config, e.g. a service under test running
// as a subprocess that reads a CA file. It returns nil without TLS.
func (s *Server) CertPEM() []byte {
	if s.certPEM == nil {
		return nil
	}
	return append([]byte(nil), s.certPEM...)
}

// Messages returns a snapshot of all accepted messages in arrival order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Count returns the number of accepted messages.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.messages)
}

// MessagesTo returns the accepted messages whose envelope recipients include
// addr, in arrival order. Per-recipient assertions are the common case in
// delivery tests, so this saves every test from filtering Messages itself.
func (s *Server) MessagesTo(addr string) []Message {
	key := normalize(addr)
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.messages {
		for _, to := range m.To {
			if normalize(to) == key {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// Attempts returns how many times a client issued RCPT TO for addr,
// whether the server accepted or rejected it. It lets retry tests assert
// "this recipient was tried exactly N times".
func (s *Server) Attempts(addr string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.attempts[normalize(addr)])
}

// AttemptTimes returns when each RCPT TO for addr arrived, oldest first, so
// tests can check retry spacing (backoff).
func (s *Server) AttemptTimes(addr string) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.attempts[normalize(addr)]...)
}

// Connections returns how many TCP connections the server has accepted,
// so tests can check connection reuse or that a client stopped connecting.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// WaitForCount blocks until at least n messages have been accepted, or fails
// the test via tb.Fatalf after timeout, reporting how many arrived. It wakes
// up on every new message rather than polling. Like Fatalf, it must be
// called from the goroutine running the test.
func (s *Server) WaitForCount(tb testing.TB, n int, timeout time.Duration) {
	tb.Helper()
	if !s.waitFor(timeout, func() bool { return len(s.messages) >= n }) {
		tb.Fatalf("smtptest: timed out after %v waiting for %d message(s): %d arrived; %s",
			timeout, n, s.Count(), s.summary())
	}
}

// WaitForAttempts blocks until addr has seen at least n RCPT TO attempts, or
// fails the test via tb.Fatalf after timeout. It is the way to wait for a
// recipient that is being rejected (and so never shows up in Messages),
// e.g. to let a retry loop reach its limit. It must be called from the
// goroutine running the test.
func (s *Server) WaitForAttempts(tb testing.TB, addr string, n int, timeout time.Duration) {
	tb.Helper()
	key := normalize(addr)
	if !s.waitFor(timeout, func() bool { return len(s.attempts[key]) >= n }) {
		tb.Fatalf("smtptest: timed out after %v waiting for %d RCPT attempt(s) for %s: %d arrived; %s",
			timeout, n, addr, s.Attempts(addr), s.summary())
	}
}

// waitFor waits until cond (evaluated with s.mu held) is true or timeout
// elapses, and reports whether cond became true.
func (s *Server) waitFor(timeout time.Duration, cond func() bool) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		ok := cond()
		ch := s.changed
		s.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-timer.C:
			s.mu.Lock()
			defer s.mu.Unlock()
			return cond()
		}
	}
}

// summary describes the server state for timeout messages.
func (s *Server) summary() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.attempts))
	for k := range s.attempts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "%d messages, %d connections, RCPT attempts: ", len(s.messages), s.conns)
	if len(keys) == 0 {
		b.WriteString("none")
	}
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%d", k, len(s.attempts[k]))
	}
	if s.listener == nil && !s.closed {
		b.WriteString("; refusing connections")
	}
	return b.String()
}

// notifyLocked wakes up waiters; s.mu must be held.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// FailRecipient scripts the answer to RCPT TO for addr: the next `times`
// attempts are rejected with the given SMTP code, after which the recipient
// is accepted again. times < 0 rejects forever. code 0 or times 0 removes
// the script. 4xx codes are transient (e.g. 451 4.3.0, 450, 452, 421) and
// 5xx codes permanent (e.g. 550 5.1.1). It replaces any earlier script for
// addr and can be called while clients are connected.
func (s *Server) FailRecipient(addr string, code int, times int) {
	s.failRecipient(addr, code, times, "")
}

// FailRecipientWithReply is FailRecipient with the reply's text chosen by the
// test (after the code and enhanced code): a remote server writes what it likes
// there, and everything that shows the reply must treat it as hostile.
func (s *Server) FailRecipientWithReply(addr string, code int, times int, text string) {
	s.failRecipient(addr, code, times, text)
}

// DropAtRecipient makes the server close the connection without a reply when a
// RCPT TO names addr, for the next `times` times (times < 0: forever; 0 removes
// the script), as a peer crashing in the middle of the recipients would. The
// attempt is recorded. It replaces any earlier FailRecipient script for addr.
func (s *Server) DropAtRecipient(addr string, times int) {
	key := normalize(addr)
	s.mu.Lock()
	defer s.mu.Unlock()
	if times == 0 {
		delete(s.faults, key)
		return
	}
	s.faults[key] = &fault{drop: true, remaining: times}
}

func (s *Server) failRecipient(addr string, code int, times int, text string) {
	key := normalize(addr)
	s.mu.Lock()
	defer s.mu.Unlock()
	if code == 0 || times == 0 {
		delete(s.faults, key)
		return
	}
	if code < 400 || code > 599 {
		panic(fmt.Sprintf("smtptest: FailRecipient code %d is not a 4xx or 5xx SMTP reply code", code))
	}
	err := scriptedReply(code)
	if text != "" {
		err.Message = text
	}
	s.faults[key] = &fault{err: err, remaining: times}
}

// DropDuringData makes the server, for the next n messages, read part of the
// message data and then close the connection without replying, as a
// crashing or disconnecting peer would. The client sees a network error
// and the message is not recorded. n replaces any earlier pending count;
// n <= 0 cancels. It is DropAt(StepData, n) for n > 0.
func (s *Server) DropDuringData(n int) {
	s.DropAt(StepData, max(n, 0))
}

// ClearFaults removes all FailRecipient, FailAt, DropAt and DropDuringData
// scripts, so that a fault test can "fix" the server and let retries succeed.
// It does not change RefuseConnections; call RefuseConnections(false) for
// that.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.faults)
	clear(s.stepFaults)
}

// RefuseConnections(true) closes the listening socket so that new connection
// attempts get "connection refused", as with a server that is down;
// connections that are already open are not affected.
// RefuseConnections(false) listens again on the same address and port, so
// clients configured with Addr reconnect without changes. The only error is
// failing to re-bind the port (if another process took it meanwhile, which
// is very unlikely) or using a closed server.
func (s *Server) RefuseConnections(on bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("smtptest: server is closed")
	}
	if on {
		if s.listener == nil {
			return nil
		}
		err := s.listener.Close()
		s.listener = nil
		return err
	}
	if s.listener != nil {
		return nil
	}
	l, err := s.listen(s.addr)
	if err != nil {
		return fmt.Errorf("smtptest: re-listen on %s: %w", s.addr, err)
	}
	s.listener = l
	go s.smtp.Serve(l) //nolint:errcheck // returns when the listener is closed
	return nil
}

// countingListener counts accepted connections for Server.Connections, and
// answers those a StepGreeting script refuses itself: go-smtp always greets.
type countingListener struct {
	net.Listener
	s *Server
}

func (l *countingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.s.mu.Lock()
		l.s.conns++
		f := l.s.takeStepFaultLocked(StepGreeting)
		l.s.mu.Unlock()
		if f == nil {
			return c, nil
		}
		go l.s.refuseGreeting(c, f)
	}
}

// normalize turns an address into the key used for per-recipient state.
func normalize(addr string) string {
	addr = strings.TrimSpace(addr)
	addr = strings.TrimPrefix(addr, "<")
	addr = strings.TrimSuffix(addr, ">")
	return strings.ToLower(addr)
}

// tbLogger routes go-smtp's error log to the test log until the test ends;
// logging through a finished testing.T panics.
type tbLogger struct {
	mu      sync.Mutex
	tb      testing.TB
	stopped bool
}

func (l *tbLogger) Printf(format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped {
		l.tb.Logf("smtptest: "+format, v...)
	}
}

func (l *tbLogger) Println(v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped {
		l.tb.Log(append([]any{"smtptest:"}, v...)...)
	}
}

func (l *tbLogger) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
}
