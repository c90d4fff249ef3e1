package app_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/modules/emails/contract"
	"github.com/mailroom/mailroom/platform/testkit/smtptest"
)

// hookReceiver is a webhook endpoint for tests: it verifies each request's
// Standard Webhooks signature by its own reading of the scheme (HMAC-SHA256 of
// "id.timestamp.body" with the secret's base64-decoded bytes, any of the
// space-separated v1 signatures matching), and keeps each verified event by its
// webhook-id.
type hookReceiver struct {
	*httptest.Server
	mu       sync.Mutex
	secret   []byte
	events   map[string]json.RawMessage
	order    []string
	unsigned []string
	last     time.Time     // when the latest new event came
	hang     chan struct{} // closed when the test ends; until then a hanging receiver never answers
}

func newHookReceiver(t testing.TB, hang bool) *hookReceiver {
	t.Helper()
	h := &hookReceiver{events: map[string]json.RawMessage{}, hang: make(chan struct{})}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hang {
			select {
			case <-h.hang:
			case <-r.Context().Done():
			}
			return
		}
		body, _ := io.ReadAll(r.Body)
		id := r.Header.Get("webhook-id")
		h.mu.Lock()
		defer h.mu.Unlock()
		if !h.verify(id, r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature"), body) {
			h.unsigned = append(h.unsigned, id)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if _, seen := h.events[id]; !seen {
			h.order, h.last = append(h.order, id), time.Now()
		}
		h.events[id] = body
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(func() { close(h.hang); h.Close() })
	return h
}

// verify checks a signature as a receiver would, with no code of Mailroom's.
func (h *hookReceiver) verify(id, timestamp, signatures string, body []byte) bool {
	var ts int64
	if _, err := fmt.Sscan(timestamp, &ts); err != nil || id == "" || len(h.secret) == 0 {
		return false
	}
	if d := time.Since(time.Unix(ts, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return false
	}
	mac := hmac.New(sha256.New, h.secret)
	fmt.Fprintf(mac, "%s.%s.%s", id, timestamp, body)
	want := mac.Sum(nil)
	for _, sig := range strings.Fields(signatures) {
		got, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sig, "v1,"))
		if strings.HasPrefix(sig, "v1,") && err == nil && hmac.Equal(got, want) {
			return true
		}
	}
	return false
}

func (h *hookReceiver) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.events)
}

// subscribe creates an endpoint for the receiver on every event type and keeps
// its secret.
func (h *hookReceiver) subscribe(t testing.TB, in *apptest.Instance) string {
	t.Helper()
	r := in.Do(t, http.MethodPost, "/api/webhooks", map[string]any{"url": h.URL + "/hook", "events": contract.EventTypes})
	if r.Status != http.StatusCreated {
		t.Fatalf("POST /api/webhooks: %d %s", r.Status, r.Body)
	}
	var out struct{ ID, Secret string }
	r.JSON(t, &out)
	secret, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(out.Secret, "whsec_"))
	if !strings.HasPrefix(out.Secret, "whsec_") || err != nil {
		t.Fatalf("secret %q is not whsec_ and base64", out.Secret)
	}
	h.mu.Lock()
	h.secret = secret
	h.mu.Unlock()
	return out.ID
}

// TestTheEventFeedAndTheWebhooksCarryTheSameEvents sends mail, some of it bounced,
// to a subscribed endpoint: every event of the feed reaches it once, signed, as
// the same JSON under its own id, and it gets nothing the feed lacks.
func TestTheEventFeedAndTheWebhooksCarryTheSameEvents(t *testing.T) {
	srv := smtptest.Start(t)
	srv.FailRecipient("gone@example.com", 550, -1)
	cfg := apptest.Config(t)
	apptest.UseSMTP(cfg, srv)
	in := apptest.Start(t, cfg)
	hook := newHookReceiver(t, false)
	hook.subscribe(t, in)

	for i := range 6 {
		email := apptest.NewEmail(fmt.Sprintf("r%d@example.com", i))
		if i%2 == 0 {
			email["cc"] = []string{"gone@example.com"}
		}
		in.WaitForStatus(t, in.Send(t, email), "sent", 10*time.Second)
	}
	feed := events(t, in, "?limit=500").Items
	apptest.Eventually(t, 20*time.Second, func() bool { return hook.count() >= len(feed) },
		func() string {
			return fmt.Sprintf("the endpoint got %d of the feed's %d events", hook.count(), len(feed))
		})

	hook.mu.Lock()
	defer hook.mu.Unlock()
	if len(hook.unsigned) > 0 {
		t.Errorf("%d requests failed the signature check: %v", len(hook.unsigned), hook.unsigned)
	}
	if len(hook.events) != len(feed) {
		t.Errorf("the endpoint got %d events, the feed has %d", len(hook.events), len(feed))
	}
	for _, ev := range feed {
		body, ok := hook.events[ev.ID]
		if !ok {
			t.Errorf("event %s (%s) never reached the endpoint", ev.ID, ev.Type)
			continue
		}
		var got contract.Event
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("webhook body %s: %v", body, err)
		}
		a, _ := json.Marshal(got)
		b, _ := json.Marshal(ev)
		if string(a) != string(b) {
			t.Errorf("webhook %s, feed %s", a, b)
		}
	}
	if !slices.Contains(typesOf(feed), contract.EventBounced) {
		t.Errorf("the feed has no bounce: %v", typesOf(feed))
	}
}

// TestMailFlowsWhileAWebhookEndpointHangs subscribes an endpoint that never
// answers: every email is still delivered, and a healthy endpoint beside it still
// gets every event, while the hanging one has none.
func TestMailFlowsWhileAWebhookEndpointHangs(t *testing.T) {
	srv := smtptest.Start(t)
	cfg := apptest.Config(t)
	apptest.UseSMTP(cfg, srv)
	in := apptest.Start(t, cfg)
	hanging, healthy := newHookReceiver(t, true), newHookReceiver(t, false)
	hanging.subscribe(t, in)
	healthy.subscribe(t, in)

	const emails = 40
	for i := range emails {
		in.Send(t, apptest.NewEmail(fmt.Sprintf("r%d@example.com", i)))
	}
	srv.WaitForCount(t, emails, 30*time.Second)
	want := emails * 3 // accepted, delivered, sent
	apptest.Eventually(t, 30*time.Second, func() bool { return healthy.count() >= want },
		func() string { return fmt.Sprintf("the healthy endpoint got %d of %d events", healthy.count(), want) })
	if n := hanging.count(); n != 0 {
		t.Errorf("the hanging endpoint answered %d events", n)
	}
}
