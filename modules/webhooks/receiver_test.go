package webhooks_test

// The test kit of the webhooks tests: a whole app on the Go-channel broker with a
// real SQLite file, lifecycle events put in its outbox as the emails module puts
// them, and real HTTP receivers (httptest servers) that check every signature with
// an implementation of the Standard Webhooks scheme of their own.

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/modules/emails/contract"
	"github.com/mailroom/mailroom/platform/outbox"
	"github.com/mailroom/mailroom/platform/sqlite"
)

// wait is the deadline of every wait on a condition; they normally hold within
// milliseconds.
const wait = 20 * time.Second

// received is one request a receiver got.
type received struct {
	ID        string
	Timestamp string
	Signature string
	Body      []byte
	Header    http.Header
	// SignatureError is why the signature did not verify; nil when it did.
	SignatureError error
	// Status is what the receiver answered.
	Status int
}

// receiver is a webhook endpoint: it records every request, checks its signature
// against the secret it was given, and answers what answer says.
type receiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	// secret is the endpoint's secret, set once the endpoint is created.
	secret string
	got    []received
	// answer picks the status of the n-th request (0-based); it may block or
	// write the body itself (then it returns 0).
	answer func(n int, w http.ResponseWriter, r *http.Request) int
	// inFlight and maxInFlight count requests being answered at once.
	inFlight, maxInFlight int
}

// newReceiver starts a receiver that answers with answer (nil: always 204).
func newReceiver(t *testing.T, answer func(n int, w http.ResponseWriter, r *http.Request) int) *receiver {
	t.Helper()
	rc := &receiver{answer: answer}
	if rc.answer == nil {
		rc.answer = func(int, http.ResponseWriter, *http.Request) int { return http.StatusNoContent }
	}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	n := len(rc.got)
	secret := rc.secret
	rc.got = append(rc.got, received{}) // reserve n
	rc.inFlight++
	rc.maxInFlight = max(rc.maxInFlight, rc.inFlight)
	rc.mu.Unlock()
	rec := received{ID: r.Header.Get("webhook-id"), Timestamp: r.Header.Get("webhook-timestamp"),
		Signature: r.Header.Get("webhook-signature"), Body: body, Header: r.Header.Clone()}
	rec.SignatureError = verify(secret, rec.ID, rec.Timestamp, body, rec.Signature, time.Now())
	status := rc.answer(n, w, r)
	if status != 0 {
		w.WriteHeader(status)
	}
	rec.Status = status
	rc.mu.Lock()
	rc.got[n] = rec
	rc.inFlight--
	rc.mu.Unlock()
}

// setSecret tells the receiver the secret to verify with.
func (rc *receiver) setSecret(s string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.secret = s
}

// requests returns a copy of what the receiver got so far (answered requests only).
func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := make([]received, 0, len(rc.got))
	for _, r := range rc.got {
		if r.Status != 0 || r.ID != "" {
			out = append(out, r)
		}
	}
	return out
}

// accepted returns how many times each event id was answered 2xx.
func (rc *receiver) accepted() map[string]int {
	out := map[string]int{}
	for _, r := range rc.requests() {
		if r.Status >= 200 && r.Status < 300 {
			out[r.ID]++
		}
	}
	return out
}

// verify checks a Standard Webhooks signature without the library the code uses:
// an HMAC-SHA256 keyed with the base64-decoded secret (after "whsec_") over
// "id.timestamp.body", base64-encoded, in one of the space-separated "v1,"
// signatures, compared in constant time; the timestamp within 5 minutes of now.
func verify(secret, id, timestamp string, body []byte, header string, now time.Time) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || len(key) == 0 || !strings.HasPrefix(secret, "whsec_") {
		return fmt.Errorf("secret %q is not whsec_ + base64", secret)
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("webhook-timestamp %q is not unix seconds", timestamp)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("webhook-timestamp %s is %s away from now", timestamp, d)
	}
	if id == "" {
		return errors.New("no webhook-id")
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + timestamp + "."))
	mac.Write(body)
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, sig := range strings.Fields(header) {
		version, value, ok := strings.Cut(sig, ",")
		if ok && version == "v1" && hmac.Equal([]byte(value), []byte(want)) {
			return nil
		}
	}
	return fmt.Errorf("no v1 signature in %q matches", header)
}

// endpoint is POST /api/webhooks's answer.
type endpoint struct {
	ID             string    `json:"id"`
	URL            string    `json:"url"`
	Events         []string  `json:"events"`
	Description    string    `json:"description"`
	Enabled        bool      `json:"enabled"`
	DisabledReason string    `json:"disabled_reason"`
	CreatedAt      time.Time `json:"created_at"`
	Secret         string    `json:"secret"`
}

// delivery is one item of GET /api/webhooks/{id}/deliveries.
type delivery struct {
	ID             string  `json:"id"`
	EventID        string  `json:"event_id"`
	EventType      string  `json:"event_type"`
	Status         string  `json:"status"`
	Attempts       int     `json:"attempts"`
	NextAttemptAt  *string `json:"next_attempt_at"`
	LastStatusCode *int    `json:"last_status_code"`
	LastDurationMs *int64  `json:"last_duration_ms"`
	LastResponse   string  `json:"last_response"`
	LastError      string  `json:"last_error"`
}

// create makes an endpoint for rc subscribed to events and tells rc its secret.
func create(t *testing.T, in *apptest.Instance, rc *receiver, events ...string) endpoint {
	t.Helper()
	r := in.Do(t, http.MethodPost, "/api/webhooks", map[string]any{"url": rc.srv.URL + "/hook", "events": events,
		"description": "test receiver"})
	if r.Status != http.StatusCreated {
		t.Fatalf("POST /api/webhooks: %d %s", r.Status, r.Body)
	}
	var ep endpoint
	r.JSON(t, &ep)
	rc.setSecret(ep.Secret)
	return ep
}

// getEndpoint GETs /api/webhooks/{id}.
func getEndpoint(t *testing.T, in *apptest.Instance, id string) endpoint {
	t.Helper()
	r := in.Do(t, http.MethodGet, "/api/webhooks/"+id, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /api/webhooks/%s: %d %s", id, r.Status, r.Body)
	}
	var ep endpoint
	r.JSON(t, &ep)
	return ep
}

// deliveries GETs the endpoint's deliveries, newest first (one page of 500).
func deliveries(t *testing.T, in *apptest.Instance, id string) []delivery {
	t.Helper()
	r := in.Do(t, http.MethodGet, "/api/webhooks/"+id+"/deliveries?limit=500", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET deliveries: %d %s", r.Status, r.Body)
	}
	var page struct {
		Items []delivery `json:"items"`
	}
	r.JSON(t, &page)
	return page.Items
}

// events is a source of lifecycle events for one test, put in the app's outbox as
// the emails module does: one message per event on topics.lifecycle, keyed by the
// email id, with event_type in the metadata.
type events struct {
	in  *apptest.Instance
	db  *sqlite.DB
	box *outbox.Outbox
}

// newEvents opens the app's database a second time (as the CLI does beside a
// running server) to write outbox rows; the relay polls them.
func newEvents(t testing.TB, in *apptest.Instance) *events {
	t.Helper()
	db, err := sqlite.OpenExisting(in.Config.DB.Path)
	if err != nil {
		t.Fatalf("open database: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return &events{in: in, db: db, box: outbox.New()}
}

// event returns a new event of typ about email.
func event(typ, email string) contract.Event {
	return contract.Event{ID: uuid.Must(uuid.NewV7()).String(), Type: typ, Version: contract.SchemaVersion,
		Timestamp: time.Now().UTC().Truncate(time.Millisecond),
		Data: contract.EventData{EmailID: email, Recipient: "to@example.com", Tags: []string{"welcome"},
			Metadata: map[string]string{"user": "42"}}}
}

// publish commits evs to the outbox in one transaction and returns each one's
// JSON, as the receiver must get it.
func (e *events) publish(t testing.TB, evs ...contract.Event) map[string][]byte {
	t.Helper()
	payloads := map[string][]byte{}
	err := e.db.Tx(context.Background(), func(tx *sql.Tx) error {
		for _, ev := range evs {
			msg, err := outbox.NewMessage(uuid.Must(uuid.NewV7()).String(), ev.Data.EmailID, "", ev)
			if err != nil {
				return err
			}
			msg.Metadata.Set(contract.EventTypeKey, ev.Type)
			msg.Metadata.Set(contract.SchemaVersionKey, strconv.Itoa(contract.SchemaVersion))
			payloads[ev.ID] = msg.Payload
			if err := e.box.Add(context.Background(), tx, e.in.Config.Topics.Lifecycle, msg, time.Time{}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("publish %d events: %v", len(evs), err)
	}
	return payloads
}

// hang is a receiver's answer that never comes: it waits until the request is
// cancelled (the try timed out, or the app stopped) or release is closed.
func hang(release <-chan struct{}) func(int, http.ResponseWriter, *http.Request) int {
	return func(_ int, _ http.ResponseWriter, r *http.Request) int {
		select {
		case <-r.Context().Done():
		case <-release:
		}
		return http.StatusServiceUnavailable
	}
}
