//go:build browser

// The webhooks and API keys views in a real browser, against a running app and a
// real webhook receiver.

package web_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/mailroom/mailroom/app/apptest"
)

func TestAnOperatorFollowsAWebhookDeliveryInTheConsoleAndReplaysAFailedOne(t *testing.T) {
	rc := startReceiver(t)
	cfg := apptest.Config(t)
	cfg.Webhooks.AllowPrivateTargets = true // the receiver is on loopback (apptest.Config allows it too)
	// A failed try is tried again only in an hour: the page shows it failed, with
	// its next try, until the operator replays it.
	cfg.Webhooks.RetryInitial = time.Hour
	cfg.Webhooks.RetryMaxDelay = time.Hour
	in := apptest.Start(t, cfg)

	b := openBrowser(t)
	signIn(t, b, in, chromedp.EmulateViewport(1280, 900))
	b.do(t, "open the webhooks view",
		chromedp.Click(`#nav a[href="#/webhooks"]`),
		chromedp.WaitVisible("#endpoints-empty"))

	url := rc.srv.URL + "/hooks/mailroom"
	b.do(t, "add an endpoint for email.accepted",
		chromedp.SendKeys("#webhook-url", url),
		chromedp.SendKeys("#webhook-description", "the billing service"),
		chromedp.Click(`#webhook-events input[value="email.accepted"]`),
		chromedp.Click("#webhook-create-form button[type=submit]"),
		chromedp.WaitVisible("#new-secret"),
		chromedp.WaitVisible(`#endpoints-body a.url`))
	secret := b.eval(t, `document.getElementById('new-secret').value`)
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("the secret shown is %q, want whsec_...", secret)
	}
	rc.setSecret(secret)
	b.screenshot(t, "webhooks-added")
	if got := b.text(t, "#endpoints-body td.events"); got != "email.accepted" {
		t.Errorf("the endpoint's events show as %q, want email.accepted", got)
	}

	b.do(t, "open the endpoint's page: the secret is not shown again",
		chromedp.Click(`#endpoints-body a.url`),
		waitText("#endpoint-status", "enabled"),
		waitText("#endpoint-heading", url))
	if n := b.eval(t, `String(document.querySelectorAll('#new-secret').length)`); n != "0" {
		t.Errorf("the endpoint's page shows the secret again")
	}

	in.Send(t, apptest.NewEmail("first@example.com"))
	b.do(t, "the delivery appears, succeeded",
		waitText("#deliveries-body tr:first-child td.status", "succeeded"),
		waitTextPrefix("#deliveries-body tr:first-child td.answer", "HTTP 204"))
	first := rc.requests()
	if len(first) != 1 {
		t.Fatalf("the receiver got %d requests, want 1", len(first))
	}
	if first[0].signature == "" || first[0].signatureError != nil {
		t.Errorf("the request's webhook-signature %q does not verify with the secret shown: %v",
			first[0].signature, first[0].signatureError)
	}

	rc.answer(http.StatusInternalServerError, "receiver down: "+hostile)
	in.Send(t, apptest.NewEmail("second@example.com"))
	b.do(t, "the failed delivery shows its answer and its next try",
		chromedp.WaitVisible("#deliveries-body tr:nth-child(2)"),
		waitTextPrefix("#deliveries-body tr:first-child td.answer", "HTTP 500"),
		waitText("#deliveries-body tr:first-child td.status", "pending"))
	if answer := b.text(t, "#deliveries-body tr:first-child td.answer"); !strings.Contains(answer, "receiver down: "+hostile) {
		t.Errorf("the failed delivery's answer shows as %q, want the receiver's body", answer)
	}
	if next := b.eval(t, `document.querySelector('#deliveries-body tr:first-child td.next time')?.dateTime ?? ''`); next == "" {
		t.Errorf("the failed delivery shows no next try: %q", b.text(t, "#deliveries-body tr:first-child td.next"))
	}
	b.noInjectedMarkup(t)
	b.screenshot(t, "webhooks")

	rc.answer(http.StatusOK, "")
	delivery := strings.TrimPrefix(b.eval(t, `document.querySelector('#deliveries-body tr').id`), "delivery-")
	b.do(t, "replay the failed delivery: it succeeds",
		chromedp.Click(fmt.Sprintf(`#deliveries-body button[aria-label="Replay delivery %s"]`, delivery)),
		waitTextPrefix("#message", "Delivery "+delivery),
		waitText("#deliveries-body tr:first-child td.status", "succeeded"),
		waitTextPrefix("#deliveries-body tr:first-child td.answer", "HTTP 200"))
	got := rc.requests()
	if len(got) != 3 || got[1].id != got[2].id || got[2].status != http.StatusOK {
		t.Errorf("the receiver got %v; want the first event, then the second answered 500 and again (same webhook-id) answered 200", got)
	}
	for _, r := range got {
		if r.signature == "" || r.signatureError != nil {
			t.Errorf("request %s: webhook-signature %q: %v", r.id, r.signature, r.signatureError)
		}
	}

	b.do(t, "disable the endpoint, after the question",
		chromedp.Click("#toggle-endpoint"),
		chromedp.WaitVisible("#ask-yes"),
		chromedp.Click("#ask-yes"),
		waitTextPrefix("#endpoint-status", "disabled: disabled by an operator"),
		waitText("#toggle-endpoint", "Enable"))
	b.do(t, "the list says it is disabled, and why",
		chromedp.Click(`#nav a[href="#/webhooks"]`),
		waitText("#endpoints-body td.status .badge", "disabled"),
		waitTextPrefix("#endpoints-body td.status .reason", "disabled by an operator at "),
		chromedp.Click(`#endpoints-body a.url`),
		waitText("#toggle-endpoint", "Enable"))
	b.do(t, "enable it again",
		chromedp.Click("#toggle-endpoint"),
		waitText("#endpoint-status", "enabled"),
		waitText("#toggle-endpoint", "Disable"))

	b.do(t, "rotate the secret, after the warning",
		chromedp.Click("#rotate-secret"),
		chromedp.WaitVisible("#ask-yes"))
	if q := b.text(t, "dialog.ask"); !strings.Contains(q, "The old secret stops at once") {
		t.Errorf("the rotate question %q does not warn that the old secret stops at once", q)
	}
	b.do(t, "the new secret is shown once",
		chromedp.Click("#ask-yes"),
		chromedp.WaitVisible("#new-secret"))
	if rotated := b.eval(t, `document.getElementById('new-secret').value`); !strings.HasPrefix(rotated, "whsec_") || rotated == secret {
		t.Errorf("the rotated secret shows as %q; want a new whsec_ secret", rotated)
	}

	b.do(t, "at 375 px the endpoint's page does not scroll sideways", chromedp.EmulateViewport(375, 800))
	b.noSidewaysScroll(t)

	b.do(t, "delete the endpoint, after the question",
		chromedp.Click("#delete-endpoint"),
		chromedp.WaitVisible("#ask-yes"),
		chromedp.Click("#ask-yes"),
		waitText("#message", "Deleted the endpoint "+url+"."),
		chromedp.WaitVisible("#endpoints-empty"))
	b.noSidewaysScroll(t)
	b.noProblems(t)
}

func TestAnOperatorCreatesALimitedSendKeyInTheConsoleAndRevokesIt(t *testing.T) {
	in := apptest.Start(t, apptest.Config(t))
	b := openBrowser(t)
	signIn(t, b, in, chromedp.EmulateViewport(375, 800)) // a phone
	b.do(t, "open the keys view",
		chromedp.Click(`#nav a[href="#/keys"]`),
		chromedp.WaitVisible("#keys-empty"))

	b.do(t, "create a send key limited to example.com",
		chromedp.SendKeys("#key-name", "billing service"),
		chromedp.SetValue("#key-scope", "send"),
		chromedp.SendKeys("#key-from", "example.com"),
		chromedp.Click("#key-create-form button[type=submit]"),
		chromedp.WaitVisible("#new-key"),
		chromedp.WaitVisible(`#keys-body button[aria-label="Revoke key billing service"]`))
	key := b.eval(t, `document.getElementById('new-key').value`)
	if !strings.HasPrefix(key, "mr_") {
		t.Fatalf("the key shown is %q, want mr_...", key)
	}
	if warning := b.text(t, "section.shown-once .warning"); !strings.Contains(warning, "you will not see it again") {
		t.Errorf("the new key's panel says %q, not that it is shown once", warning)
	}
	row := b.text(t, "#keys-body tr")
	for _, want := range []string{"billing service", key[:11], "send", "example.com", "active"} {
		if !strings.Contains(row, want) {
			t.Errorf("the key's row %q does not show %q", row, want)
		}
	}
	b.screenshot(t, "keys")
	b.noSidewaysScroll(t)

	b.clipboard(t, cdpbrowser.PermissionSettingDenied)
	b.do(t, "Copy without the clipboard selects the key and says to press Ctrl+C",
		chromedp.Click(`button[aria-label="Copy The new key"]`),
		waitTextPrefix("#message", "The browser did not let the page copy"))
	if sel := b.eval(t, `String(window.getSelection().toString() || (document.activeElement.id === 'new-key' && document.activeElement.selectionEnd - document.activeElement.selectionStart))`); sel != key && sel != fmt.Sprint(len(key)) {
		t.Errorf("after a refused copy the selection is %q, want the whole key", sel)
	}
	b.clipboard(t, cdpbrowser.PermissionSettingGranted)
	b.do(t, "Copy puts the key on the clipboard",
		chromedp.Click(`button[aria-label="Copy The new key"]`),
		waitText("#message", "Copied to the clipboard."))
	if got := b.evalAwait(t, `navigator.clipboard.readText()`); got != key {
		t.Errorf("the clipboard holds %q, want the key", got)
	}

	email := apptest.NewEmail("customer@example.org")
	email["from"] = "Billing <billing@example.com>"
	in.Send(t, email, apptest.Bearer(key)...)
	email["from"] = "ceo@elsewhere.example"
	if r := in.Do(t, http.MethodPost, "/api/emails", email, apptest.Bearer(key)...); r.Status != http.StatusForbidden ||
		!strings.Contains(string(r.Body), "may send only from example.com") {
		t.Errorf("sending as another sender with the key: %d %s, want 403 naming example.com", r.Status, r.Body)
	}
	if r := in.Do(t, http.MethodGet, "/api/keys", nil, apptest.Bearer(key)...); r.Status != http.StatusForbidden {
		t.Errorf("listing keys with the send key: %d, want 403", r.Status)
	}

	b.do(t, "revoke it, after the question",
		chromedp.Click(`#keys-body button[aria-label="Revoke key billing service"]`),
		chromedp.WaitVisible("#ask-yes"))
	if q := b.text(t, "dialog.ask"); strings.Contains(q, "last") || !strings.Contains(q, "refused (401)") {
		t.Errorf("revoking a send key asks %q; want what it does, and no last-key warning", q)
	}
	b.do(t, "the key is revoked",
		chromedp.Click("#ask-yes"),
		waitText("#message", `Revoked key "billing service".`),
		waitTextPrefix("#keys-body tr td.status", "revoked"),
		chromedp.WaitNotPresent(`#keys-body button[aria-label="Revoke key billing service"]`))
	if r := in.Do(t, http.MethodGet, "/api/emails?limit=1", nil, apptest.Bearer(key)...); r.Status != http.StatusUnauthorized {
		t.Errorf("the revoked key got %d, want 401", r.Status)
	}

	b.do(t, "create an admin key",
		chromedp.Click("#new-key-done"),
		chromedp.WaitNotPresent("#new-key"),
		chromedp.SendKeys("#key-name", "ops laptop"),
		chromedp.SetValue("#key-scope", "admin"),
		chromedp.Click("#key-create-form button[type=submit]"),
		chromedp.WaitVisible("#new-key"),
		chromedp.WaitVisible(`#keys-body button[aria-label="Revoke key ops laptop"]`))
	admin := b.eval(t, `document.getElementById('new-key').value`)
	b.do(t, "revoking the last stored admin key warns",
		chromedp.Click(`#keys-body button[aria-label="Revoke key ops laptop"]`),
		chromedp.WaitVisible("#ask-cancel"))
	if q := b.text(t, "dialog.ask"); !strings.Contains(q, "last stored admin key") || !strings.Contains(q, "mailroom keys create --name NAME --scope admin") {
		t.Errorf("revoking the last stored admin key asks %q; want the warning naming the CLI", q)
	}
	b.do(t, "cancel keeps it",
		chromedp.Click("#ask-cancel"),
		chromedp.WaitNotPresent("dialog.ask"))
	if r := in.Do(t, http.MethodGet, "/api/keys", nil, apptest.Bearer(admin)...); r.Status != http.StatusOK {
		t.Errorf("the admin key after a cancelled revoke: %d, want 200", r.Status)
	}

	b.do(t, "the console switches to the stored admin key",
		chromedp.Click("#key-panel summary"),
		chromedp.Click("#forget-key"),
		waitText("#message", "Key forgotten."),
		chromedp.SendKeys("#key", admin),
		chromedp.Click("#key-form button[type=submit]"),
		waitText("#message", "Key accepted."),
		waitText(`#keys-body tr:last-child td.name .tag`, "this console"))
	b.do(t, "revoking the console's own key, the last admin one, warns plainly",
		chromedp.Click(`#keys-body button[aria-label="Revoke key ops laptop"]`),
		chromedp.WaitVisible("#ask-yes"))
	q := b.text(t, "dialog.ask")
	for _, want := range []string{"It is the last admin key", "only from the server, with the mailroom CLI: mailroom keys create --name NAME --scope admin",
		"This console is using it"} {
		if !strings.Contains(q, want) {
			t.Errorf("revoking the console's key, the last admin one, asks %q; want %q in it", q, want)
		}
	}
	b.do(t, "once revoked, the console forgets it",
		chromedp.Click("#ask-yes"),
		waitTextPrefix("#message", `Revoked key "ops laptop", which this console was using: it has forgotten it.`))
	if kept := b.eval(t, `String(sessionStorage.getItem('mailroom.apiKey'))`); kept != "null" {
		t.Errorf("the console still keeps a key: %q", kept)
	}
	if open := b.eval(t, `String(document.getElementById('key-panel').open)`); open != "true" {
		t.Errorf("the key panel is not open for another key")
	}
	if r := in.Do(t, http.MethodGet, "/api/keys", nil, apptest.Bearer(admin)...); r.Status != http.StatusUnauthorized {
		t.Errorf("the revoked admin key got %d, want 401", r.Status)
	}
	b.noSidewaysScroll(t)
	b.noProblems(t)
}

// hookRequest is one request the receiver got.
type hookRequest struct {
	id, signature  string
	signatureError error
	status         int
}

// receiver is a webhook endpoint: it records each request, checks its signature
// with the secret the console showed, and answers as told.
type receiver struct {
	srv *httptest.Server

	mu     sync.Mutex
	secret string
	status int
	body   string
	got    []hookRequest
}

func startReceiver(t *testing.T) *receiver {
	rc := &receiver{status: http.StatusNoContent}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		req := hookRequest{id: r.Header.Get("webhook-id"), signature: r.Header.Get("webhook-signature"), status: rc.status}
		req.signatureError = verifySignature(rc.secret, req.id, r.Header.Get("webhook-timestamp"), body, req.signature)
		rc.got = append(rc.got, req)
		w.WriteHeader(rc.status)
		io.WriteString(w, rc.body)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) setSecret(s string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.secret = s
}

// answer makes the receiver answer status and body from now on.
func (rc *receiver) answer(status int, body string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.status, rc.body = status, body
}

func (rc *receiver) requests() []hookRequest {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]hookRequest(nil), rc.got...)
}

// verifySignature checks a Standard Webhooks signature: HMAC-SHA256, keyed with
// the base64 after "whsec_", of "id.timestamp.body", in one of the "v1,"
// signatures of the header.
func verifySignature(secret, id, timestamp string, body []byte, header string) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || len(key) == 0 {
		return fmt.Errorf("secret %q is not whsec_ and base64", secret)
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.", id, timestamp)
	mac.Write(body)
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, sig := range strings.Fields(header) {
		if version, value, ok := strings.Cut(sig, ","); ok && version == "v1" && hmac.Equal([]byte(value), []byte(want)) {
			return nil
		}
	}
	return fmt.Errorf("no v1 signature in %q matches", header)
}
