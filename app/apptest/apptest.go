// Package apptest boots a whole Mailroom in-process for tests: a real SQLite file in
// a temp dir, the configured broker, and an HTTP server on a free port, with a small
// client for the API.
package apptest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/mailroom/mailroom/app"
	"github.com/mailroom/mailroom/app/internal/apispec"
	"github.com/mailroom/mailroom/app/internal/e2e"
	"github.com/mailroom/mailroom/platform/broker"
	"github.com/mailroom/mailroom/platform/config"
	"github.com/mailroom/mailroom/platform/logging"
	"github.com/mailroom/mailroom/platform/sqlite"
	"github.com/mailroom/mailroom/platform/testkit/smtptest"
	"github.com/mailroom/mailroom/platform/testkit/wait"
)

// Instance is one running app.
type Instance struct {
	// App is the running app, for tests that reach past the API (its Addr, its
	// instance id).
	App *app.App
	// Config is the config passed to Start; the app keeps the pointer, so treat it
	// as read-only.
	Config *config.Config
	// URL is the API's base URL, "http://" and the bound host:port, with no
	// trailing slash.
	URL  string
	stop context.CancelFunc
	done chan error
}

// AdminKey is the admin API key of every Config: Do, Send and Get send it unless
// told otherwise (see Bearer and NoKey).
const AdminKey = e2e.APIKey

// Bearer returns the header pair that makes Do send key instead of AdminKey:
// in.Do(t, "GET", path, nil, apptest.Bearer(key)...).
func Bearer(key string) []string { return []string{"Authorization", "Bearer " + key} }

// NoKey is the header pair that makes Do send no Authorization header at all.
var NoKey = []string{"Authorization", ""}

// uncheckedName is the pseudo header of Unchecked: Do takes it out, it is never sent.
const uncheckedName = "apptest:unchecked"

// Unchecked is the pair that makes Do send its request without holding it and its
// answer to the OpenAPI document (see Client), for a request no document can
// describe; why says what makes it so, and Do does not send the pair. Every other
// request Do sends is checked.
func Unchecked(why string) []string { return []string{uncheckedName, why} }

// Client returns an HTTP client for tests that build their own requests to a
// running app: it checks every request and its answer against the OpenAPI document
// (web/openapi.yaml) and fails tb on whatever the document does not describe (see
// app/internal/apispec). Do, Send and Get use it; so must every test that calls the
// API.
func Client(tb testing.TB) *http.Client { return apispec.Client(tb, nil) }

// Config returns the default config for a test: a database file in a fresh temp dir,
// HTTP on 127.0.0.1:0, fast retries (5 tries from 50 ms, no jitter), AdminKey in auth.api_keys and a rate limit no
// test reaches; webhooks may target loopback receivers and retry from 20 ms. Change it before Start.
func Config(tb testing.TB) *config.Config {
	tb.Helper()
	cfg, err := config.Load(config.Sources{Flags: map[string]string{
		"auth.api_keys":          AdminKey,
		"auth.rate_limit":        e2e.TestRateLimit,
		"auth.rate_burst":        e2e.TestRateLimit,
		"db.path":                filepath.Join(tb.TempDir(), "mailroom.db"),
		"http.addr":              "127.0.0.1:0",
		"retry.max_attempts":     "5",
		"retry.initial_interval": "50ms",
		"retry.max_interval":     "1s",
		"retry.jitter":           "0",
		"outbox.poll_interval":   "100ms",
		"http.shutdown_timeout":  "10s",
		// Webhook receivers in tests are httptest servers on loopback.
		"webhooks.allow_private_targets": "true",
		"webhooks.retry_initial":         "20ms",
		"webhooks.retry_max_delay":       "200ms",
	}})
	if err != nil {
		tb.Fatalf("test config: %v", err)
	}
	return cfg
}

// UseSMTP points cfg's smtp transport at srv, without TLS.
func UseSMTP(cfg *config.Config, srv *smtptest.Server) {
	cfg.Delivery.Transport = config.TransportSMTP
	cfg.SMTP.Host = srv.Host()
	cfg.SMTP.Port = srv.Port()
	cfg.SMTP.TLS = "none"
	cfg.SMTP.Timeout = 5 * time.Second
}

// Start runs an app with cfg until the test ends, and waits until it is ready. opts
// come after the test defaults (a logger that discards), so they win.
func Start(tb testing.TB, cfg *config.Config, opts ...app.Option) *Instance {
	tb.Helper()
	a, err := app.New(cfg, append([]app.Option{app.WithLogger(logging.Discard())}, opts...)...)
	if err != nil {
		tb.Fatalf("app.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &Instance{App: a, Config: cfg, URL: "http://" + a.Addr(), stop: cancel, done: make(chan error, 1)}
	go func() { in.done <- a.Run(ctx) }()
	select {
	case <-a.Ready():
	case err := <-in.done:
		tb.Fatalf("app stopped before it was ready: %v", err)
	case <-time.After(30 * time.Second):
		tb.Fatalf("app not ready after 30s")
	}
	tb.Cleanup(func() { in.Stop(tb) })
	return in
}

// Stop shuts the app down gracefully and fails the test if that fails. Calling it
// twice is fine.
func (in *Instance) Stop(tb testing.TB) {
	tb.Helper()
	if in.stop == nil {
		return
	}
	in.stop()
	in.stop = nil
	select {
	case err := <-in.done:
		if err != nil {
			tb.Errorf("app shutdown: %v", err)
		}
	case <-time.After(60 * time.Second):
		tb.Errorf("app did not shut down in 60s")
	}
}

// Database opens cfg's database with every migration applied, as the app does, and
// closes it when the test ends: for module tests that build one module by hand.
func Database(tb testing.TB, cfg *config.Config) *sqlite.DB {
	tb.Helper()
	db, err := app.OpenDatabase(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("open database: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// RunHandlers runs the message handlers that each register adds (a module's
// RegisterHandlers) on the broker cfg names and a router built as the app builds
// it, without HTTP or outbox relay, until the test ends. It returns once they are
// subscribed, with the broker's publisher: a test publishes a message as another
// instance or an older version would and sees what the module makes of it. On Go
// channels Publish returns once the handler acknowledged the message.
func RunHandlers(tb testing.TB, cfg *config.Config, register ...func(*message.Router, *broker.Broker) error) message.Publisher {
	tb.Helper()
	b, err := broker.New(cfg, watermill.NopLogger{})
	if err != nil {
		tb.Fatalf("broker: %v", err)
	}
	r, err := broker.NewRouter(broker.RouterConfig{DeadLetterTopic: cfg.Topics.DeadLetter, CloseTimeout: 10 * time.Second},
		b.Publisher(), watermill.NopLogger{})
	if err != nil {
		tb.Fatalf("router: %v", err)
	}
	for _, reg := range register {
		if err := reg(r, b); err != nil {
			tb.Fatalf("register handlers: %v", err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	tb.Cleanup(func() {
		if err := r.Close(); err != nil {
			tb.Errorf("router close: %v", err)
		}
		if err := <-done; err != nil {
			tb.Errorf("router: %v", err)
		}
		if err := b.Close(); err != nil {
			tb.Errorf("broker close: %v", err)
		}
	})
	select {
	case <-r.Running():
	case err := <-done:
		done <- err // for the cleanup
		tb.Fatalf("router stopped before it ran: %v", err)
	case <-time.After(30 * time.Second):
		tb.Fatalf("router not running after 30s")
	}
	return b.Publisher()
}

// Publish publishes msgs to topic and fails the test unless Publish returns nil
// within 10 s. On Go channels that means the handler acknowledged each message: a
// message it nacks is redelivered until the deadline.
func Publish(tb testing.TB, pub message.Publisher, topic string, msgs ...*message.Message) {
	tb.Helper()
	done := make(chan error, 1)
	go func() { done <- pub.Publish(topic, msgs...) }()
	select {
	case err := <-done:
		if err != nil {
			tb.Fatalf("publish to %s: %v", topic, err)
		}
	case <-time.After(10 * time.Second):
		tb.Fatalf("publish to %s: not acknowledged after 10s", topic)
	}
}

// Response is an HTTP answer with its body read.
type Response struct {
	// Status is the HTTP status code.
	Status int
	// Header is the response's headers, e.g. Location or Retry-After.
	Header http.Header
	// Body is the whole body, already read and closed.
	Body []byte
}

// JSON decodes the body into v, failing the test if it is not JSON.
func (r Response) JSON(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		tb.Fatalf("decode %s: %v", r.Body, err)
	}
}

// Do sends a request with an optional JSON body (a []byte is sent as is) and headers
// given as name, value pairs. It sends AdminKey as the bearer key unless headers set
// Authorization: to another value (Bearer), or to "" for none (NoKey). The request
// and its answer are held to the OpenAPI document (see Client) unless headers
// include Unchecked.
func (in *Instance) Do(tb testing.TB, method, path string, body any, headers ...string) Response {
	tb.Helper()
	return Do(tb, in.URL, method, path, body, headers...)
}

// Do is Instance.Do against any base URL (a subprocess, for crash tests).
func Do(tb testing.TB, baseURL, method, path string, body any, headers ...string) Response {
	tb.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			tb.Fatalf("encode body: %v", err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, baseURL+path, rd)
	if err != nil {
		tb.Fatalf("new request: %v", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	e2e.Authorize(req)
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i] == uncheckedName {
			req = req.WithContext(apispec.Unchecked(req.Context(), headers[i+1]))
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	if req.Header.Get("Authorization") == "" {
		req.Header.Del("Authorization")
	}
	resp, err := Client(tb).Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("read %s %s: %v", method, path, err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: raw}
}

// Email is the part of GET /api/emails/{id} tests look at.
type Email struct {
	// ID is the email's id, as POST /api/emails returned it.
	ID string `json:"id"`
	// Status is one of scheduled, queued, retrying, sent or dead.
	Status string `json:"status"`
	// Subject is the subject as accepted.
	Subject string `json:"subject"`
	// Attempts is the tries made in the current replay.
	Attempts int `json:"attempts"`
	// LastError is the last failure's text, "" when none or once sent.
	LastError string `json:"last_error"`
	// Events is the timeline, oldest first, starting with "accepted".
	Events []Event `json:"events"`
}

// Event is one timeline entry.
type Event struct {
	// Type is the timeline event, e.g. "published", "delivered", "deferred" or "sent".
	Type string `json:"type"`
	// At is when it happened.
	At time.Time `json:"at"`
	// Detail is its human-readable note, possibly "".
	Detail string `json:"detail"`
}

// Send posts an email and returns its id, failing the test unless the answer is 202.
func (in *Instance) Send(tb testing.TB, email map[string]any, headers ...string) string {
	tb.Helper()
	r := in.Do(tb, http.MethodPost, "/api/emails", email, headers...)
	if r.Status != http.StatusAccepted {
		tb.Fatalf("POST /api/emails: %d %s", r.Status, r.Body)
	}
	var out struct{ ID string }
	r.JSON(tb, &out)
	return out.ID
}

// Get reads an email.
func (in *Instance) Get(tb testing.TB, id string) Email {
	tb.Helper()
	r := in.Do(tb, http.MethodGet, "/api/emails/"+id, nil)
	if r.Status != http.StatusOK {
		tb.Fatalf("GET /api/emails/%s: %d %s", id, r.Status, r.Body)
	}
	var e Email
	r.JSON(tb, &e)
	return e
}

// WaitForStatus polls the email until it has the status, failing the test with the
// last state seen after timeout.
func (in *Instance) WaitForStatus(tb testing.TB, id, status string, timeout time.Duration) Email {
	tb.Helper()
	var last Email
	Eventually(tb, timeout, func() bool {
		last = in.Get(tb, id)
		return last.Status == status
	}, func() string { return fmt.Sprintf("email %s: want status %s, have %+v", id, status, last) })
	return last
}

// Eventually polls cond every 10 ms until it holds, or fails the test with what()
// after timeout. It is how tests wait: on a condition with a deadline, never a sleep.
func Eventually(tb testing.TB, timeout time.Duration, cond func() bool, what func() string) {
	tb.Helper()
	wait.Until(tb, timeout, 10*time.Millisecond, cond, what)
}

// NewEmail returns a valid email body to tweak.
func NewEmail(to string) map[string]any {
	return map[string]any{
		"to":      []string{to},
		"subject": "Hello",
		"text":    "Hello there",
	}
}
