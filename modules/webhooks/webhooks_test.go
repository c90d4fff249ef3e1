package webhooks_test

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/modules/emails/contract"
)

func TestEveryEventIsPostedOnceSignedSoThatAnIndependentVerifierAcceptsIt(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	in := apptest.Start(t, apptest.Config(t))
	ep := create(t, in, rc, contract.EventDelivered, contract.EventBounced)
	if !strings.HasPrefix(ep.Secret, "whsec_") || !ep.Enabled || ep.DisabledReason != "" {
		t.Fatalf("created %+v; want an enabled endpoint with a whsec_ secret", ep)
	}

	delivered, bounced, accepted := event(contract.EventDelivered, "e1"), event(contract.EventBounced, "e1"), event(contract.EventAccepted, "e1")
	payloads := newEvents(t, in).publish(t, accepted, delivered, bounced)

	apptest.Eventually(t, wait, func() bool { return len(rc.accepted()) == 2 },
		func() string {
			return fmt.Sprintf("the delivered and bounced events; got %d requests", len(rc.requests()))
		})
	for _, r := range rc.requests() {
		if r.SignatureError != nil {
			t.Errorf("event %s: %v", r.ID, r.SignatureError)
		}
		if r.ID != delivered.ID && r.ID != bounced.ID {
			t.Errorf("got event %s, which the endpoint did not subscribe to", r.ID)
		}
		if !bytes.Equal(r.Body, payloads[r.ID]) {
			t.Errorf("event %s: body %s, want the event as published, %s", r.ID, r.Body, payloads[r.ID])
		}
		if ct, ua := r.Header.Get("Content-Type"), r.Header.Get("User-Agent"); ct != "application/json" || ua != "Mailroom-Webhooks/1" {
			t.Errorf("Content-Type %q, User-Agent %q", ct, ua)
		}
	}
	apptest.Eventually(t, wait, func() bool {
		ds := deliveries(t, in, ep.ID)
		return len(ds) == 2 && ds[0].Attempts == 1 && ds[1].Attempts == 1
	}, func() string { return "both tries recorded" })
	ds := deliveries(t, in, ep.ID)
	for _, d := range ds {
		if d.Status != "succeeded" || d.Attempts != 1 || d.LastStatusCode == nil || *d.LastStatusCode != 204 || d.NextAttemptAt != nil {
			t.Errorf("delivery %+v; want succeeded at the first try with 204", d)
		}
	}
	if ds[0].EventID != bounced.ID || ds[1].EventID != delivered.ID {
		t.Errorf("deliveries of %s, %s; want newest first (%s, %s)", ds[0].EventID, ds[1].EventID, bounced.ID, delivered.ID)
	}
}

func TestAReceiverThatFailsThreeTimesGetsEachEventOnceItRecovers(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(n int, _ http.ResponseWriter, _ *http.Request) int {
		if n < 3 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	in := apptest.Start(t, apptest.Config(t))
	ep := create(t, in, rc, contract.EventDelivered)
	const n = 10
	var evs []contract.Event
	for i := range n {
		evs = append(evs, event(contract.EventDelivered, fmt.Sprintf("email-%d", i)))
	}
	newEvents(t, in).publish(t, evs...)

	apptest.Eventually(t, wait, func() bool { return len(rc.accepted()) == n },
		func() string { return fmt.Sprintf("all %d events accepted; got %v", n, rc.accepted()) })
	for _, ev := range evs {
		if got := rc.accepted()[ev.ID]; got != 1 {
			t.Errorf("event %s accepted %d times, want once", ev.ID, got)
		}
	}
	apptest.Eventually(t, wait, func() bool {
		for _, d := range deliveries(t, in, ep.ID) {
			if d.Status != "succeeded" {
				return false
			}
		}
		return true
	}, func() string { return "every delivery recorded as succeeded" })
	attempts, retried := 0, 0
	for _, d := range deliveries(t, in, ep.ID) {
		attempts += d.Attempts
		if d.Attempts > 1 {
			retried++
		}
		if *d.LastStatusCode != 200 || d.LastDurationMs == nil {
			t.Errorf("delivery %+v; want its last try's 200 and duration", d)
		}
	}
	if attempts != n+3 || retried == 0 {
		t.Errorf("%d tries over %d deliveries (%d retried); want %d: one each and the 3 that failed", attempts, n, retried, n+3)
	}
	if got := getEndpoint(t, in, ep.ID); !got.Enabled {
		t.Errorf("endpoint %+v; three failures must not disable it", got)
	}
}

func TestA410DisablesTheEndpointAtOnceAndEnablingItResumesItsDeliveries(t *testing.T) {
	t.Parallel()
	var gone atomic.Bool
	gone.Store(true)
	rc := newReceiver(t, func(int, http.ResponseWriter, *http.Request) int {
		if gone.Load() {
			return http.StatusGone
		}
		return http.StatusOK
	})
	in := apptest.Start(t, apptest.Config(t))
	ep := create(t, in, rc, contract.EventSent)
	ev := event(contract.EventSent, "e1")
	newEvents(t, in).publish(t, ev)

	apptest.Eventually(t, wait, func() bool { return !getEndpoint(t, in, ep.ID).Enabled },
		func() string { return "the endpoint disabled after its 410" })
	got := getEndpoint(t, in, ep.ID)
	if !strings.HasPrefix(got.DisabledReason, "answered 410 Gone at ") {
		t.Errorf("disabled_reason %q; want it to say the endpoint answered 410 Gone, and when", got.DisabledReason)
	}
	ds := deliveries(t, in, ep.ID)
	if len(ds) != 1 || ds[0].Status != "pending" || *ds[0].LastStatusCode != 410 || len(rc.requests()) != 1 {
		t.Fatalf("deliveries %+v after %d requests; want one pending after one 410", ds, len(rc.requests()))
	}

	gone.Store(false)
	r := in.Do(t, http.MethodPatch, "/api/webhooks/"+ep.ID, map[string]any{"enabled": true})
	if r.Status != http.StatusOK {
		t.Fatalf("PATCH enabled: %d %s", r.Status, r.Body)
	}
	if got := getEndpoint(t, in, ep.ID); !got.Enabled || got.DisabledReason != "" {
		t.Errorf("after enabling: %+v; want enabled with no reason", got)
	}
	apptest.Eventually(t, wait, func() bool { return rc.accepted()[ev.ID] == 1 },
		func() string { return "the waiting delivery sent once the endpoint is enabled" })
}

func TestAnEndpointThatKeepsFailingIsDisabledAndSaysWhy(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(int, http.ResponseWriter, *http.Request) int { return http.StatusBadGateway })
	cfg := apptest.Config(t)
	cfg.Webhooks.DisableAfterFailures = 4
	cfg.Webhooks.DisableAfter = 0
	in := apptest.Start(t, cfg)
	ep := create(t, in, rc, contract.EventDelivered)
	newEvents(t, in).publish(t, event(contract.EventDelivered, "e1"))

	apptest.Eventually(t, wait, func() bool { return !getEndpoint(t, in, ep.ID).Enabled },
		func() string { return fmt.Sprintf("the endpoint disabled; %d tries so far", len(rc.requests())) })
	reason := getEndpoint(t, in, ep.ID).DisabledReason
	for _, want := range []string{"4 consecutive failed tries since ", "answered 502"} {
		if !strings.Contains(reason, want) {
			t.Errorf("disabled_reason %q; want it to contain %q", reason, want)
		}
	}
	if n := len(rc.requests()); n != 4 {
		t.Errorf("%d tries; want exactly 4: a disabled endpoint gets none", n)
	}
	ds := deliveries(t, in, ep.ID)
	if len(ds) != 1 || ds[0].Status != "pending" || ds[0].Attempts != 4 || ds[0].LastError != "answered 502" {
		t.Errorf("deliveries %+v; want one pending after 4 tries", ds)
	}
}

func TestADeliveryTriedForRetryForIsFailedForGood(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(int, http.ResponseWriter, *http.Request) int { return http.StatusInternalServerError })
	cfg := apptest.Config(t)
	cfg.Webhooks.RetryFor = 100 * time.Millisecond
	in := apptest.Start(t, cfg)
	ep := create(t, in, rc, contract.EventDelivered)
	newEvents(t, in).publish(t, event(contract.EventDelivered, "e1"))

	apptest.Eventually(t, wait, func() bool {
		ds := deliveries(t, in, ep.ID)
		return len(ds) == 1 && ds[0].Status == "failed"
	}, func() string { return fmt.Sprintf("the delivery failed; %+v", deliveries(t, in, ep.ID)) })
	d := deliveries(t, in, ep.ID)[0]
	if d.Attempts < 2 || d.NextAttemptAt != nil || d.LastError != "answered 500" {
		t.Errorf("delivery %+v; want failed after retries, with no next try", d)
	}
}

func TestAHangingEndpointDoesNotDelayAnotherEndpointsEvents(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	hanging := newReceiver(t, hang(release))
	t.Cleanup(func() { close(release) }) // before the server closes: its handlers must return
	healthy := newReceiver(t, nil)
	cfg := apptest.Config(t)
	cfg.Webhooks.Timeout = time.Minute // the hanging tries outlast the test
	in := apptest.Start(t, cfg)
	hung := create(t, in, hanging, contract.EventDelivered)
	create(t, in, healthy, contract.EventDelivered)

	const n = 40
	var evs []contract.Event
	for i := range n {
		evs = append(evs, event(contract.EventDelivered, fmt.Sprintf("email-%d", i)))
	}
	newEvents(t, in).publish(t, evs...)

	apptest.Eventually(t, wait, func() bool { return len(healthy.accepted()) == n },
		func() string {
			return fmt.Sprintf("the healthy endpoint got all %d events; got %d", n, len(healthy.accepted()))
		})
	for _, r := range healthy.requests() {
		if r.SignatureError != nil {
			t.Errorf("event %s: %v", r.ID, r.SignatureError)
		}
	}
	hanging.mu.Lock()
	inFlight, most := hanging.inFlight, hanging.maxInFlight
	hanging.mu.Unlock()
	if inFlight == 0 || most > 4 {
		t.Errorf("the hanging endpoint has %d tries in flight (at most %d at once); want some, never more than 4", inFlight, most)
	}
	for _, d := range deliveries(t, in, hung.ID) {
		if d.Attempts != 0 || d.Status != "pending" {
			t.Errorf("hanging endpoint's delivery %+v; want every try still in flight or waiting", d)
		}
	}
}

func TestAReplayResendsTheEventWithTheSameWebhookID(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	in := apptest.Start(t, apptest.Config(t))
	ep := create(t, in, rc, contract.EventDelivered)
	ev := event(contract.EventDelivered, "e1")
	payload := newEvents(t, in).publish(t, ev)[ev.ID]
	apptest.Eventually(t, wait, func() bool {
		ds := deliveries(t, in, ep.ID)
		return len(ds) == 1 && ds[0].Status == "succeeded"
	}, func() string { return "the event delivered" })
	d := deliveries(t, in, ep.ID)[0]

	r := in.Do(t, http.MethodPost, "/api/webhooks/"+ep.ID+"/deliveries/"+d.ID+"/replay", nil)
	if r.Status != http.StatusAccepted {
		t.Fatalf("replay: %d %s", r.Status, r.Body)
	}
	apptest.Eventually(t, wait, func() bool { return rc.accepted()[ev.ID] == 2 }, func() string { return "the replayed event" })
	reqs := rc.requests()
	if last := reqs[len(reqs)-1]; last.ID != ev.ID || !bytes.Equal(last.Body, payload) || last.SignatureError != nil {
		t.Errorf("replay sent id %s body %s (signature: %v); want id %s and the same body", last.ID, last.Body, last.SignatureError, ev.ID)
	}
	apptest.Eventually(t, wait, func() bool {
		d := deliveries(t, in, ep.ID)[0]
		return d.Status == "succeeded" && d.Attempts == 2
	}, func() string { return fmt.Sprintf("the delivery succeeded twice; %+v", deliveries(t, in, ep.ID)) })

	for _, path := range []string{"/deliveries/999999/replay", "/deliveries/x/replay"} {
		if r := in.Do(t, http.MethodPost, "/api/webhooks/"+ep.ID+path, nil); r.Status != http.StatusNotFound {
			t.Errorf("POST %s: %d %s, want 404", path, r.Status, r.Body)
		}
	}
}

func TestARedeliveredEventAddsNoSecondDelivery(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	in := apptest.Start(t, apptest.Config(t))
	ep := create(t, in, rc, contract.EventDelivered, contract.EventSent)
	twice, after := event(contract.EventDelivered, "e1"), event(contract.EventSent, "e1")
	src := newEvents(t, in)
	src.publish(t, twice)
	src.publish(t, twice) // the same event again, as a redelivered message
	src.publish(t, after) // same email: same lane, so handled after both

	apptest.Eventually(t, wait, func() bool { return rc.accepted()[after.ID] == 1 }, func() string { return "the later event" })
	ds := deliveries(t, in, ep.ID)
	if len(ds) != 2 {
		t.Errorf("deliveries %+v; want one per event", ds)
	}
}

func TestARedirectIsNotFollowed(t *testing.T) {
	t.Parallel()
	target := newReceiver(t, nil)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) int {
		w.Header().Set("Location", target.srv.URL+"/elsewhere")
		return http.StatusTemporaryRedirect
	})
	in := apptest.Start(t, apptest.Config(t))
	ep := create(t, in, rc, contract.EventDelivered)
	newEvents(t, in).publish(t, event(contract.EventDelivered, "e1"))

	apptest.Eventually(t, wait, func() bool {
		ds := deliveries(t, in, ep.ID)
		return len(ds) == 1 && ds[0].Attempts >= 1
	}, func() string { return "a try recorded" })
	d := deliveries(t, in, ep.ID)[0]
	if d.Status != "pending" || *d.LastStatusCode != 307 || !strings.Contains(d.LastError, "redirects are not followed") {
		t.Errorf("delivery %+v; want a failed try that answered 307", d)
	}
	if n := len(target.requests()); n != 0 {
		t.Errorf("the redirect's target got %d requests; want none", n)
	}
}

func TestAnAnswerIsReadOnlyUpToItsBound(t *testing.T) {
	t.Parallel()
	chunk := bytes.Repeat([]byte("é"), 16<<10) // 2-byte runes: the kept start must not split one
	var written atomic.Int64
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) int {
		w.WriteHeader(http.StatusOK)
		for r.Context().Err() == nil && written.Load() < 1<<30 {
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				break
			}
			w.(http.Flusher).Flush()
		}
		return 0
	})
	cfg := apptest.Config(t)
	cfg.Webhooks.Timeout = time.Minute // read to the end, the try would outlast the test
	in := apptest.Start(t, cfg)
	ep := create(t, in, rc, contract.EventDelivered)
	newEvents(t, in).publish(t, event(contract.EventDelivered, "e1"))

	apptest.Eventually(t, wait, func() bool {
		ds := deliveries(t, in, ep.ID)
		return len(ds) == 1 && ds[0].Status == "succeeded"
	}, func() string { return fmt.Sprintf("the delivery succeeded; %+v", deliveries(t, in, ep.ID)) })
	d := deliveries(t, in, ep.ID)[0]
	if len(d.LastResponse) > 1024 || len(d.LastResponse) < 1000 || strings.ContainsRune(d.LastResponse, '\uFFFD') {
		t.Errorf("last_response is %d bytes (%q...); want the first KiB or just under, whole runes only", len(d.LastResponse), d.LastResponse[:min(20, len(d.LastResponse))])
	}
	if *d.LastDurationMs > 10_000 {
		t.Errorf("the try took %d ms; it must stop reading early", *d.LastDurationMs)
	}
}

func TestRotatingTheSecretSignsTheNextTriesWithTheNewOneOnly(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	in := apptest.Start(t, apptest.Config(t))
	ep := create(t, in, rc, contract.EventDelivered)
	r := in.Do(t, http.MethodPost, "/api/webhooks/"+ep.ID+"/rotate-secret", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("rotate: %d %s", r.Status, r.Body)
	}
	var out struct{ Secret string }
	r.JSON(t, &out)
	if !strings.HasPrefix(out.Secret, "whsec_") || out.Secret == ep.Secret {
		t.Fatalf("rotated secret %q; want a new whsec_ secret", out.Secret)
	}
	rc.setSecret(out.Secret)
	ev := event(contract.EventDelivered, "e1")
	newEvents(t, in).publish(t, ev)
	apptest.Eventually(t, wait, func() bool { return rc.accepted()[ev.ID] == 1 }, func() string { return "the event" })
	got := rc.requests()[0]
	if got.SignatureError != nil {
		t.Errorf("with the new secret: %v", got.SignatureError)
	}
	if verify(ep.Secret, got.ID, got.Timestamp, got.Body, got.Signature, time.Now()) == nil {
		t.Errorf("the old secret still verifies the signature %q", got.Signature)
	}
}

func TestEndpointsAreListedChangedAndDeletedOverTheAPI(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	in := apptest.Start(t, apptest.Config(t))
	ep := create(t, in, rc, contract.EventDelivered)

	r := in.Do(t, http.MethodGet, "/api/webhooks", nil)
	if r.Status != http.StatusOK || bytes.Contains(r.Body, []byte("whsec_")) || bytes.Contains(r.Body, []byte(`"secret"`)) {
		t.Fatalf("GET /api/webhooks: %d %s; want the list without secrets", r.Status, r.Body)
	}
	var list struct{ Items []endpoint }
	r.JSON(t, &list)
	if len(list.Items) != 1 || list.Items[0].ID != ep.ID || list.Items[0].URL != rc.srv.URL+"/hook" {
		t.Errorf("list %+v; want the endpoint", list.Items)
	}
	if r := in.Do(t, http.MethodGet, "/api/webhooks/"+ep.ID, nil); bytes.Contains(r.Body, []byte(`"secret"`)) {
		t.Errorf("GET one shows a secret: %s", r.Body)
	}

	r = in.Do(t, http.MethodPatch, "/api/webhooks/"+ep.ID, map[string]any{"events": []string{contract.EventBounced, contract.EventSent},
		"description": "changed", "enabled": false})
	if r.Status != http.StatusOK {
		t.Fatalf("PATCH: %d %s", r.Status, r.Body)
	}
	got := getEndpoint(t, in, ep.ID)
	if !slices.Equal(got.Events, []string{contract.EventBounced, contract.EventSent}) || got.Description != "changed" ||
		got.Enabled || !strings.HasPrefix(got.DisabledReason, "disabled by an operator") || got.URL != ep.URL {
		t.Errorf("after PATCH: %+v", got)
	}

	if r := in.Do(t, http.MethodDelete, "/api/webhooks/"+ep.ID, nil); r.Status != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", r.Status, r.Body)
	}
	for _, req := range [][2]string{{http.MethodGet, ""}, {http.MethodDelete, ""}, {http.MethodPost, "/rotate-secret"},
		{http.MethodGet, "/deliveries"}} {
		if r := in.Do(t, req[0], "/api/webhooks/"+ep.ID+req[1], nil); r.Status != http.StatusNotFound {
			t.Errorf("%s after DELETE: %d %s, want 404", req, r.Status, r.Body)
		}
	}
	if r := in.Do(t, http.MethodPatch, "/api/webhooks/"+ep.ID, map[string]any{"enabled": true}); r.Status != http.StatusNotFound {
		t.Errorf("PATCH after DELETE: %d %s, want 404", r.Status, r.Body)
	}
}

// errorField is the field a 400 names.
func errorField(t *testing.T, r apptest.Response) string {
	t.Helper()
	var b struct {
		Error struct{ Code, Message, Field string } `json:"error"`
	}
	r.JSON(t, &b)
	return b.Error.Field
}

func TestBadRequestsAreRefusedNamingWhatIsWrong(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t, apptest.Config(t))
	ok := "https://hooks.example.com/mailroom"
	for _, tc := range []struct {
		name  string
		body  any
		field string
	}{
		{"an unknown event type", map[string]any{"url": ok, "events": []string{"email.nope"}}, "events[0]"},
		{"an unknown event type after a known one", map[string]any{"url": ok, "events": []string{contract.EventSent, "sent"}}, "events[1]"},
		{"no event types", map[string]any{"url": ok, "events": []string{}}, "events"},
		{"a type twice", map[string]any{"url": ok, "events": []string{contract.EventSent, contract.EventSent}}, "events[1]"},
		{"no url", map[string]any{"events": []string{contract.EventSent}}, "url"},
		{"a relative url", map[string]any{"url": "/hook", "events": []string{contract.EventSent}}, "url"},
		{"an ftp url", map[string]any{"url": "ftp://example.com/x", "events": []string{contract.EventSent}}, "url"},
		{"a url with a password", map[string]any{"url": "https://u:p@example.com/x", "events": []string{contract.EventSent}}, "url"},
		{"a url over 2048 bytes", map[string]any{"url": ok + "?" + strings.Repeat("a", 2048), "events": []string{contract.EventSent}}, "url"},
		{"an unknown field", map[string]any{"url": ok, "events": []string{contract.EventSent}, "secret": "mine"}, "secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := in.Do(t, http.MethodPost, "/api/webhooks", tc.body)
			if r.Status != http.StatusBadRequest {
				t.Fatalf("%d %s, want 400", r.Status, r.Body)
			}
			if f := errorField(t, r); f != tc.field {
				t.Errorf("field %q (%s), want %q", f, r.Body, tc.field)
			}
		})
	}
	t.Run("an unknown query parameter", func(t *testing.T) {
		if r := in.Do(t, http.MethodGet, "/api/webhooks?all=1", nil); r.Status != http.StatusBadRequest || errorField(t, r) != "all" {
			t.Errorf("%d %s, want 400 naming all", r.Status, r.Body)
		}
		r := in.Do(t, http.MethodGet, "/api/webhooks/any/deliveries?status=failed", nil)
		if r.Status != http.StatusBadRequest || errorField(t, r) != "status" {
			t.Errorf("deliveries: %d %s, want 400 naming status", r.Status, r.Body)
		}
	})
	t.Run("an unknown id", func(t *testing.T) {
		if r := in.Do(t, http.MethodGet, "/api/webhooks/nope", nil); r.Status != http.StatusNotFound {
			t.Errorf("%d %s, want 404", r.Status, r.Body)
		}
	})
	t.Run("a send key", func(t *testing.T) {
		r := in.Do(t, http.MethodPost, "/api/keys", map[string]string{"name": "sender", "scope": "send"})
		var k struct{ Key string }
		r.JSON(t, &k)
		r = in.Do(t, http.MethodPost, "/api/webhooks", map[string]any{"url": ok, "events": []string{contract.EventSent}}, apptest.Bearer(k.Key)...)
		if r.Status != http.StatusForbidden {
			t.Errorf("%d %s, want 403", r.Status, r.Body)
		}
	})
}

func TestInternalTargetsAreRefusedUnlessPrivateTargetsAreAllowed(t *testing.T) {
	t.Parallel()
	cfg := apptest.Config(t)
	cfg.Webhooks.AllowPrivateTargets = false
	in := apptest.Start(t, cfg)
	for _, u := range []string{"http://127.0.0.1:8080/hook", "http://[::1]/hook", "http://10.1.2.3/hook",
		"http://169.254.169.254/latest/meta-data", "http://[fd00::1]/hook", "http://0.0.0.0/hook", "http://localhost/hook",
		"http://[::ffff:127.0.0.1]/hook"} {
		r := in.Do(t, http.MethodPost, "/api/webhooks", map[string]any{"url": u, "events": []string{contract.EventSent}})
		if r.Status != http.StatusBadRequest || errorField(t, r) != "url" {
			t.Errorf("%s: %d %s, want 400 naming url", u, r.Status, r.Body)
		}
	}
	r := in.Do(t, http.MethodPost, "/api/webhooks", map[string]any{"url": "https://93.184.215.14/hook", "events": []string{contract.EventSent}})
	if r.Status != http.StatusCreated {
		t.Errorf("a public address: %d %s, want 201", r.Status, r.Body)
	}
}

func TestAReplayAskedWhileATryIsInFlightIsNotLost(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	rc := newReceiver(t, func(n int, _ http.ResponseWriter, r *http.Request) int {
		if n == 0 {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		return http.StatusOK
	})
	in := apptest.Start(t, apptest.Config(t))
	ep := create(t, in, rc, contract.EventDelivered)
	ev := event(contract.EventDelivered, "e1")
	newEvents(t, in).publish(t, ev)
	apptest.Eventually(t, wait, func() bool {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		return rc.inFlight == 1
	}, func() string { return "the first try in flight" })

	d := deliveries(t, in, ep.ID)[0]
	if r := in.Do(t, http.MethodPost, "/api/webhooks/"+ep.ID+"/deliveries/"+d.ID+"/replay", nil); r.Status != http.StatusAccepted {
		t.Fatalf("replay: %d %s", r.Status, r.Body)
	}
	close(release)
	apptest.Eventually(t, wait, func() bool { return rc.accepted()[ev.ID] == 2 },
		func() string { return fmt.Sprintf("the replay sent after the first try; accepted %v", rc.accepted()) })
}
