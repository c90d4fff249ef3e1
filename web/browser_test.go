//go:build browser

// The console in a real browser: Chromium (scripts/browser.sh installs it) driven
// by chromedp over the DevTools protocol. Run with `make test-browser`, or
// go test -tags browser ./web/...

package web_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/labstack/echo/v4"

	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/platform/testkit/smtptest"
	"github.com/mailroom/mailroom/platform/testkit/wait"
	"github.com/mailroom/mailroom/web"
)

// hostile is what a remote server or a sender might put in an SMTP reply or a
// subject: on a page that used innerHTML it would become an <img> that runs script.
const hostile = `<img src=x onerror=alert(1)>`

// stepTimeout bounds each step; the whole test takes a few seconds.
const stepTimeout = 20 * time.Second

func TestAnOperatorSeesADeadLetterInTheConsoleAndReplaysIt(t *testing.T) {
	srv := smtptest.Start(t)
	const rcpt = "bounce@example.com"
	// 554, a refusal by policy: the address is not suppressed, so a replay reaches it.
	srv.FailRecipientWithReply(rcpt, 554, -1, hostile)
	cfg := apptest.Config(t)
	apptest.UseSMTP(cfg, srv)
	in := apptest.Start(t, cfg)
	email := apptest.NewEmail(rcpt)
	email["subject"] = "Invoice " + hostile
	id := in.Send(t, email)
	in.WaitForStatus(t, id, "dead", stepTimeout)
	// More dead letters, so that the table is long and the lookup below it.
	for i := range 11 {
		more := apptest.NewEmail(rcpt)
		more["subject"] = fmt.Sprintf("Reminder %d", i)
		in.WaitForStatus(t, in.Send(t, more), "dead", stepTimeout)
	}

	b := openBrowser(t)
	b.do(t, "open the console",
		chromedp.EmulateViewport(375, 800), // a phone: the page must work narrow
		chromedp.Navigate(in.URL+"/"),
		waitText("#message", "Enter an admin key to begin."))

	b.allow("401 (Unauthorized)") // the wrong key below: the browser logs the failed fetch
	b.do(t, "a wrong key shows the API's message",
		chromedp.SendKeys("#key", "not-the-key"),
		chromedp.Click("#key-form button[type=submit]"),
		waitTextPrefix("#message", "401 unauthorized: "))

	replay := fmt.Sprintf(`#letters-body button[aria-label="Replay %s"]`, id)
	b.do(t, "the admin key lists the dead letter",
		chromedp.Click("#forget-key"),
		waitText("#message", "Key forgotten."),
		chromedp.SendKeys("#key", apptest.AdminKey),
		chromedp.Click("#key-form button[type=submit]"),
		waitText("#message", "Key accepted."),
		chromedp.Click(`#nav a[href="#/dead-letters"]`),
		chromedp.WaitVisible(replay))
	reason := b.text(t, "#letters-body td.reason")
	if !strings.Contains(reason, hostile) {
		t.Errorf("reason %q does not show %q as text", reason, hostile)
	}
	b.noInjectedMarkup(t)
	b.noSidewaysScroll(t)

	if ratio := b.hoverContrast(t, "#filter-form button[type=submit]"); ratio < 4.5 {
		t.Errorf("a hovered primary button's label contrasts %.2f:1 with its background, want at least 4.5:1", ratio)
	}
	b.do(t, "opening an email from the bottom of the table shows it in view",
		chromedp.Click(`#letters-body tr:last-child a.id`),
		waitText("#email-status", "dead"))
	if top := b.eval(t, `(() => { const r = document.getElementById('email-heading').getBoundingClientRect();
		return String(r.top >= -1 && r.bottom <= window.innerHeight + 1) })()`); top != "true" {
		t.Errorf("the looked-up email is drawn off-screen: its heading at %s of a %s px window",
			b.eval(t, `String(Math.round(document.getElementById('email-heading').getBoundingClientRect().top))`),
			b.eval(t, `String(window.innerHeight)`))
	}

	srv.ClearFaults()
	b.do(t, "replay the first letter and watch its email until it is sent",
		chromedp.Click(`#nav a[href="#/dead-letters"]`),
		chromedp.WaitVisible(replay),
		chromedp.Click(replay),
		waitText("#email-status", "sent"))
	if got, want := b.text(t, "#message"), "Replay queued for email "+id+"."; got != want {
		t.Errorf("after the replay the status line says %q, want %q: the move to the email must not take it away", got, want)
	}
	in.WaitForStatus(t, id, "sent", stepTimeout)
	if n := len(srv.MessagesTo(rcpt)); n != 1 {
		t.Errorf("the SMTP server got %d messages for %s, want 1", n, rcpt)
	}
	if got := b.text(t, "#email-subject"); got != "Invoice "+hostile {
		t.Errorf("subject shown as %q, want %q", got, "Invoice "+hostile)
	}
	timeline := b.text(t, "#email-events")
	for _, event := range []string{"dead_lettered", "replayed", "sent"} {
		if !strings.Contains(timeline, event) {
			t.Errorf("timeline %q has no %s", timeline, event)
		}
	}
	b.screenshot(t, "email-sent")
	b.do(t, "the replayed letter is no longer parked",
		chromedp.Click(`#nav a[href="#/dead-letters"]`),
		chromedp.WaitVisible(`#letters-body tr`),
		chromedp.WaitNotPresent(replay))
	b.noInjectedMarkup(t)
	b.noProblems(t)

	// The listener must see what the CSP blocks, or the checks above prove
	// nothing: an inline script is refused, and reported.
	if ran := b.eval(t, `(() => { const s = document.createElement('script');
		s.textContent = 'window.inlineRan = true'; document.head.append(s); return String(window.inlineRan === true) })()`); ran != "false" {
		t.Errorf("an inline script ran (%s): the CSP did not hold", ran)
	}
	apptest.Eventually(t, stepTimeout, func() bool { return b.reported("Content Security Policy") },
		func() string { return "the browser reported no CSP violation for an inline script" })
}

// startWithSMTP starts the app with a real SMTP server for its mail.
func startWithSMTP(t *testing.T) (*apptest.Instance, *smtptest.Server) {
	t.Helper()
	srv := smtptest.Start(t)
	cfg := apptest.Config(t)
	apptest.UseSMTP(cfg, srv)
	return apptest.Start(t, cfg), srv
}

// signIn opens the console at in (after the steps of viewport, a size to
// emulate) and gives it the admin key, as an operator would.
func signIn(t *testing.T, b *browser, in *apptest.Instance, viewport ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	steps := append(viewport,
		chromedp.Navigate(in.URL+"/"),
		waitText("#message", "Enter an admin key to begin."),
		chromedp.SendKeys("#key", apptest.AdminKey),
		chromedp.Click("#key-form button[type=submit]"),
		waitText("#message", "Key accepted."))
	b.do(t, "open the console with the admin key", steps...)
}

// confirm waits for the console's question, checks it, and answers yes.
func confirm(t *testing.T, b *browser, question string) {
	t.Helper()
	b.do(t, "wait for the question", chromedp.WaitVisible("#ask-yes"))
	if got := b.text(t, "#ask-question"); got != question {
		t.Errorf("the console asks %q, want %q", got, question)
	}
	b.do(t, "answer yes", chromedp.Click("#ask-yes"), chromedp.WaitNotPresent("#ask-yes"))
}

// noSidewaysScroll fails the test if the page is wider than the window (a phone
// must not scroll sideways), naming the elements that stick out.
func (b *browser) noSidewaysScroll(t *testing.T) {
	t.Helper()
	if overflow := b.eval(t, `String(document.documentElement.scrollWidth - window.innerWidth)`); overflow != "0" {
		t.Errorf("the page is %s px wider than the window: %s", overflow, b.eval(t, `[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > window.innerWidth).map(e => e.tagName + '#' + e.id + '.' + e.className + ':' + Math.round(e.getBoundingClientRect().right)).join(' ')`))
	}
}

// clipboard grants or denies the page writing and reading the clipboard.
func (b *browser) clipboard(t *testing.T, setting cdpbrowser.PermissionSetting) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	c := chromedp.FromContext(b.ctx)
	for _, name := range []string{"clipboard-write", "clipboard-read"} {
		_, err := cdp.Call(ctx, c.Browser, cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
			Permission: &cdpbrowser.PermissionDescriptor{Name: name},
			Setting:    setting})
		if err != nil {
			t.Fatalf("set %s to %s: %v", name, setting, err)
		}
	}
}

// screenshotDir is where screenshot puts its pictures: test artifacts for a
// reviewer (CI keeps the folder), never committed. MAILROOM_SCREENSHOTS moves it.
func screenshotDir() string {
	if dir := os.Getenv("MAILROOM_SCREENSHOTS"); dir != "" {
		return dir
	}
	return filepath.Join("..", "artifacts", "screenshots")
}

// screenshot saves the whole page as <screenshotDir>/<name>.png.
func (b *browser) screenshot(t *testing.T, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := screenshotDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, name+".png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", file)
}

// hoverContrast moves the mouse over the element sel names and returns the
// contrast ratio (WCAG 2) of its label's colour against its background then.
func (b *browser) hoverContrast(t *testing.T, sel string) float64 {
	t.Helper()
	b.do(t, "scroll to "+sel, chromedp.ScrollIntoView(sel))
	var x, y float64
	at := b.eval(t, fmt.Sprintf(`(() => { const r = document.querySelector(%q).getBoundingClientRect();
		return (r.left + r.width / 2) + ' ' + (r.top + r.height / 2) })()`, sel))
	if _, err := fmt.Sscan(at, &x, &y); err != nil {
		t.Fatalf("where is %s: %q: %v", sel, at, err)
	}
	b.do(t, "hover "+sel, chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, x, y))
	got := b.eval(t, fmt.Sprintf(`(() => {
		const s = getComputedStyle(document.querySelector(%q));
		const lum = (c) => { const v = c.match(/[\d.]+/g).slice(0, 3).map((n) => n / 255)
			.map((n) => n <= 0.03928 ? n / 12.92 : Math.pow((n + 0.055) / 1.055, 2.4));
			return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2] };
		const [a, b] = [lum(s.color), lum(s.backgroundColor)].sort((p, q) => q - p);
		return String((a + 0.05) / (b + 0.05)) })()`, sel))
	var ratio float64
	if _, err := fmt.Sscan(got, &ratio); err != nil {
		t.Fatalf("contrast of %s: %q: %v", sel, got, err)
	}
	return ratio
}

// browser is one headless Chromium tab, with what its console reported.
type browser struct {
	ctx context.Context

	mu       sync.Mutex
	problems []string
	allowed  []string
	output   strings.Builder
}

// openBrowser starts Chromium with a fresh profile and stops it when the test ends.
// Without the background-networking flags Chromium tries to reach Google and, on
// a closed network, gets its connections refused.
func openBrowser(t *testing.T) *browser {
	t.Helper()
	exe := os.Getenv("CHROMIUM_PATH")
	if exe == "" {
		exe = "/usr/bin/chromium"
	}
	if _, err := os.Stat(exe); err != nil {
		t.Fatalf("no Chromium at %s (run scripts/browser.sh, or set CHROMIUM_PATH): %v", exe, err)
	}
	b := &browser{}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// A frame sandboxed without allow-same-origin (the email preview) gets a
		// process of its own, whose console this tab's session never hears: kept in
		// the page's process, its CSP reports reach event like the page's.
		chromedp.Flag("disable-features", "IsolateSandboxedIframes"),
		chromedp.CombinedOutput(writerFunc(b.log)),
	)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		if t.Failed() {
			b.mu.Lock()
			var out []string
			for line := range strings.Lines(b.output.String()) {
				if !strings.Contains(line, "dbus") { // no D-Bus in a container: noise
					out = append(out, line)
				}
			}
			t.Logf("chromium output:\n%s", strings.Join(out, ""))
			b.mu.Unlock()
		}
	})
	b.ctx = ctx
	// The first call starts the browser: no timeout on it, or the timeout would
	// end the browser too.
	if err := chromedp.Listen(ctx, b.event); err != nil {
		t.Fatalf("start %s: %v", exe, err)
	}
	return b
}

// event records what the page reports that a working console never would:
// console errors and warnings, uncaught exceptions, browser log entries at warning
// or error (CSP violations among them) and dialogs (alert). It runs in chromedp's
// read loop, so it only takes notes.
func (b *browser) event(ev any) {
	var problem string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			var args []string
			for _, a := range ev.Args {
				args = append(args, string(a.Value)+a.Description)
			}
			problem = fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " "))
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		problem = fmt.Sprintf("uncaught at %s:%d: %s", d.URL, d.LineNumber+1, d.Text)
		if d.Exception != nil {
			problem += " " + d.Exception.Description
		}
	case *log.EventEntryAdded:
		if ev.Entry.Level == log.EntryLevelError || ev.Entry.Level == log.EntryLevelWarning {
			problem = fmt.Sprintf("log %s %s: %s (%s)", ev.Entry.Source, ev.Entry.Level, ev.Entry.Text, ev.Entry.URL)
		}
	case *page.EventJavascriptDialogOpening:
		problem = fmt.Sprintf("a %s dialog opened: %q", ev.Type, ev.Message)
	}
	if problem == "" {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.problems = append(b.problems, problem)
}

func (b *browser) log(p []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.output.Write(p)
}

// allow lets problems that contain text through noProblems: ones a step causes
// on purpose.
func (b *browser) allow(text string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.allowed = append(b.allowed, text)
}

// noProblems fails the test for every problem the browser reported that is not
// allowed.
func (b *browser) noProblems(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
next:
	for _, p := range b.problems {
		for _, a := range b.allowed {
			if strings.Contains(p, a) {
				continue next
			}
		}
		t.Errorf("the browser reported: %s", p)
	}
}

// reported reports whether some problem contains text.
func (b *browser) reported(text string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		if strings.Contains(p, text) {
			return true
		}
	}
	return false
}

// do runs the steps within stepTimeout, failing the test with what the browser
// reported if they fail.
func (b *browser) do(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.noProblems(t)
		msg, _ := chromedp.Run(b.ctx, chromedp.Text("#message"))
		t.Fatalf("%s: %v (the page says %q)", what, err, msg)
	}
}

func (b *browser) text(t *testing.T, sel string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.TextContent(sel))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// evalAwait returns the value a JavaScript promise resolves to, as a string.
func (b *browser) evalAwait(t *testing.T, expr string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// eval returns the value of a JavaScript expression, as a string.
func (b *browser) eval(t *testing.T, expr string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[any](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return fmt.Sprint(v)
}

// noInjectedMarkup fails the test if the hostile text became an element anywhere.
func (b *browser) noInjectedMarkup(t *testing.T) {
	t.Helper()
	if n := b.eval(t, `document.querySelectorAll('img, [onerror]').length`); n != "0" {
		t.Errorf("the page has %s <img> or onerror elements: API text was parsed as HTML", n)
	}
}

// waitText waits until the element's text is exactly want.
func waitText(sel, want string) chromedp.Action[chromedp.Void] {
	return pollText(sel, want, "text === want")
}

// waitTextPrefix waits until the element's text starts with prefix.
func waitTextPrefix(sel, prefix string) chromedp.Action[chromedp.Void] {
	return pollText(sel, prefix, "text.startsWith(want)")
}

// waitContains waits until the element's text contains want.
func waitContains(sel, want string) chromedp.Action[chromedp.Void] {
	return pollText(sel, want, "text.includes(want)")
}

// waitCount waits until sel matches exactly n elements.
func waitCount(sel string, n int) chromedp.Action[chromedp.Void] {
	return chromedp.PollFunction[chromedp.Void](`(sel, n) => document.querySelectorAll(sel).length === n`,
		chromedp.WithPollingArgs(sel, n), chromedp.WithPollingInterval(20*time.Millisecond),
		chromedp.WithPollingTimeout(stepTimeout))
}

// waitAttrPrefix waits until the element's attribute starts with prefix.
func waitAttrPrefix(sel, attr, prefix string) chromedp.Action[chromedp.Void] {
	return chromedp.PollFunction[chromedp.Void](`(sel, attr, want) => {
		const el = document.querySelector(sel);
		return el !== null && (el.getAttribute(attr) || '').startsWith(want);
	}`, chromedp.WithPollingArgs(sel, attr, prefix), chromedp.WithPollingInterval(20*time.Millisecond),
		chromedp.WithPollingTimeout(stepTimeout))
}

func pollText(sel, want, cond string) chromedp.Action[chromedp.Void] {
	return chromedp.PollFunction[chromedp.Void](`(sel, want) => {
		const el = document.querySelector(sel);
		if (el === null) return false;
		const text = el.textContent;
		return `+cond+`;
	}`, chromedp.WithPollingArgs(sel, want), chromedp.WithPollingInterval(20*time.Millisecond),
		chromedp.WithPollingTimeout(stepTimeout))
}

type writerFunc func([]byte)

func (f writerFunc) Write(p []byte) (int, error) { f(p); return len(p), nil }

// TestTheKeyFormNeverPutsTheKeyInAURLWithScriptsOff: submitted before the script
// runs, or with scripts off, the key form must not send the admin key anywhere a
// URL goes (history, logs, a proxy's access log). Chromium with scripts disabled
// loads the console, the key is typed and Enter pressed; the server sees the form's
// submission arrive, and no request carries the key.
func TestTheKeyFormNeverPutsTheKeyInAURLWithScriptsOff(t *testing.T) {
	e := echo.New()
	web.Register(e)
	var mu sync.Mutex
	var requests []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		requests = append(requests, r.Method+" "+r.URL.String()+" "+string(body))
		mu.Unlock()
		e.ServeHTTP(w, r)
	}))
	defer srv.Close()
	submitted := func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range requests {
			if strings.HasPrefix(r, "POST /") || strings.Contains(r, "?") {
				return true
			}
		}
		return false
	}

	const key = "mr_scriptsOffKeyThatMustNotLeak"
	b := openBrowser(t)
	b.do(t, "open the console with scripts off and submit the key with Enter",
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := cdp.Call(ctx, t, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
			return err
		}),
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible("#key"),
		chromedp.SendKeys("#key", key+"\r"))
	wait.Until(t, stepTimeout, 10*time.Millisecond, submitted,
		func() string { return fmt.Sprintf("the form was not submitted; requests: %q", requests) })
	mu.Lock()
	defer mu.Unlock()
	for _, r := range requests {
		if strings.Contains(r, key) {
			t.Errorf("a request carried the key: %q", r)
		}
	}
}
