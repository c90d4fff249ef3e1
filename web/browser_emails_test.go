//go:build browser

// The emails views and the Send a test email form in a real browser: an operator
// finds an email by its recipient and opens it, sees a hostile email rendered
// inert, cancels and reschedules a scheduled one, replays a dead one from its
// page, and sends a test email and watches it go.

package web_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/mailroom/mailroom/app/apptest"
)

func TestAnOperatorFindsAnEmailByItsRecipientAndOpensIt(t *testing.T) {
	in, _ := startWithSMTP(t)
	const jane = "jane@example.com"
	later := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	first := apptest.NewEmail(jane)
	first["subject"] = "Your invoice"
	first["html"] = `<h1 style="color:#2b5797">Your invoice</h1><p>Thank you, <b>Jane</b>.</p>`
	first["tags"] = []string{"invoice"}
	first["attachments"] = []map[string]string{{"filename": "invoice.pdf", "content_type": "application/pdf",
		"content": base64.StdEncoding.EncodeToString([]byte("%PDF-1.4 an invoice"))}}
	invoice := in.Send(t, first)
	second := apptest.NewEmail(jane)
	second["subject"] = "Your receipt"
	receipt := in.Send(t, second)
	third := apptest.NewEmail(jane)
	third["subject"] = "See you tomorrow"
	third["send_at"] = later
	scheduled := in.Send(t, third)
	var others []string
	for _, to := range []string{"bob@example.com", "carol@example.com", "bob@example.com"} {
		others = append(others, in.Send(t, apptest.NewEmail(to)))
	}
	for _, id := range append([]string{invoice, receipt}, others...) {
		in.WaitForStatus(t, id, "sent", stepTimeout)
	}

	b := openBrowser(t)
	signIn(t, b, in, chromedp.EmulateViewport(375, 800)) // a phone: the views must work narrow
	b.do(t, "the Emails view lists every email",
		chromedp.Click(`#nav a[href="#/emails"]`),
		waitCount("#emails-body tr", 6),
		waitText(`#email-counts [data-status="all"] .count`, "6"))

	b.do(t, "a search by recipient lists only that recipient's emails, and puts the search in the URL",
		chromedp.SendKeys("#search-recipient", jane),
		chromedp.Click(`#email-search button[type=submit]`),
		waitCount("#emails-body tr", 3),
		waitText(`#email-counts [data-status="all"] .count`, "3"))
	if hash := b.eval(t, `location.hash`); hash != "#/emails?recipient=jane%40example.com" {
		t.Errorf("the search's URL is %q, want #/emails?recipient=jane%%40example.com", hash)
	}
	if current := b.eval(t, `document.querySelector('#nav a[aria-current=page]')?.getAttribute('href') ?? 'none'`); current != "#/emails" {
		t.Errorf("the navigation marks %s as current on a search, want #/emails", current)
	}
	for i, row := range strings.Split(b.eval(t, `[...document.querySelectorAll('#emails-body tr')].map(r => r.cells[2].textContent).join('\n')`), "\n") {
		if row != jane {
			t.Errorf("row %d is to %q, want only %s", i, row, jane)
		}
	}
	for status, want := range map[string]string{"sent": "2", "scheduled": "1", "queued": "0", "dead": "0", "cancelled": "0", "retrying": "0"} {
		if got := b.text(t, fmt.Sprintf(`#email-counts [data-status=%q] .count`, status)); got != want {
			t.Errorf("the count of %s is %q, want %s", status, got, want)
		}
	}
	if got := b.text(t, fmt.Sprintf(`#emails-body a[href="#/emails/%s"]`, scheduled)); got != "See you tomorrow" {
		t.Errorf("the scheduled email's row shows %q", got)
	}
	if got := b.eval(t, fmt.Sprintf(`document.querySelector('#emails-body a[href="#/emails/%s"]').closest('tr').querySelector('.badge').textContent`, scheduled)); got != "scheduled" {
		t.Errorf("the scheduled email's badge says %q", got)
	}
	b.noSidewaysScroll(t)
	b.screenshot(t, "emails")

	b.do(t, "a status count narrows the search to that status; Back widens it again",
		chromedp.Click(`#email-counts [data-status="sent"] a`),
		waitCount("#emails-body tr", 2),
		chromedp.NavigateBack(),
		waitCount("#emails-body tr", 3))

	b.do(t, "a row opens its email's page, with status, recipients and timeline",
		chromedp.Click(fmt.Sprintf(`#emails-body a[href="#/emails/%s"]`, invoice)),
		waitText("#email-status", "sent"),
		waitContains("#email-recipients", "delivered"))
	if got := b.text(t, "#email-subject"); got != "Your invoice" {
		t.Errorf("the page shows subject %q", got)
	}
	recipients := b.text(t, "#email-recipients tbody")
	for _, want := range []string{jane, "to", "delivered"} {
		if !strings.Contains(recipients, want) {
			t.Errorf("recipients %q lack %q", recipients, want)
		}
	}
	if files := b.text(t, "#email-attachments"); !strings.Contains(files, "invoice.pdf application/pdf, 19 B") {
		t.Errorf("attachments %q, want invoice.pdf with its type and size", files)
	}
	timeline := b.text(t, "#email-events")
	for _, event := range []string{"accepted", "delivered", "sent"} {
		if !strings.Contains(timeline, event) {
			t.Errorf("timeline %q has no %s", timeline, event)
		}
	}
	// Chromium paints a cross-origin frame only while it is on screen: scrolled
	// to, the preview is in the screenshot.
	b.do(t, "the HTML part is shown in its frame",
		chromedp.WaitVisible("#email-html iframe.email-frame"),
		chromedp.ScrollIntoView("#email-html iframe.email-frame"))
	b.eval(t, `new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(() => done('painted'))))`)
	b.noSidewaysScroll(t)
	b.screenshot(t, "email")

	b.do(t, "a deep link opens an email directly",
		chromedp.Navigate(in.URL+"/#/emails/"+scheduled),
		waitText("#email-status", "scheduled"),
		waitText("#email-heading", "Email "+scheduled),
		chromedp.WaitVisible("#email-reschedule"))
	b.do(t, "a deep link opens a search directly",
		chromedp.Navigate(in.URL+"/#/emails?recipient="+url.QueryEscape(jane)+"&status=scheduled"),
		waitCount("#emails-body tr", 1),
		waitText(`#email-counts [data-status="all"] .count`, "3"))
	if got := b.eval(t, `document.getElementById('search-status').value + ' ' + document.getElementById('search-recipient').value`); got != "scheduled "+jane {
		t.Errorf("the search form shows %q, want the deep link's search", got)
	}
	b.noProblems(t)
}

func TestTheEmailsListPagesAndSearchesByTime(t *testing.T) {
	in := apptest.Start(t, apptest.Config(t))
	batch := make([]map[string]any, 30)
	for i := range batch {
		batch[i] = apptest.NewEmail(fmt.Sprintf("r%d@example.com", i))
		batch[i]["subject"] = fmt.Sprintf("Batch %02d", i)
	}
	if r := in.Do(t, http.MethodPost, "/api/emails/batch", batch); r.Status != http.StatusAccepted {
		t.Fatalf("POST /api/emails/batch: %d %s", r.Status, r.Body)
	}

	b := openBrowser(t)
	signIn(t, b, in)
	b.do(t, "the first page shows 25 emails and offers more",
		chromedp.Click(`#nav a[href="#/emails"]`),
		waitCount("#emails-body tr", 25),
		chromedp.WaitVisible("#emails-more"))
	b.do(t, "Load more appends the rest, and there is no more",
		chromedp.Click("#emails-more"),
		waitCount("#emails-body tr", 30),
		chromedp.WaitNotVisible("#emails-more"))
	subjects := b.eval(t, `[...document.querySelectorAll('#emails-body td.subject')].map(td => td.textContent).join(',')`)
	if !strings.HasPrefix(subjects, "Batch 29,Batch 28,") || !strings.HasSuffix(subjects, ",Batch 01,Batch 00") {
		t.Errorf("the list is not newest first, once each: %s", subjects)
	}

	// A time range before every email: nothing matches, and the range is in the URL.
	b.eval(t, `(() => { document.getElementById('search-before').value = '2020-01-01T00:00'; return 'set' })()`)
	b.do(t, "a search by time that matches nothing says so",
		chromedp.Click(`#email-search button[type=submit]`),
		chromedp.WaitVisible("#emails-empty"),
		waitCount("#emails-body tr", 0),
		waitText(`#email-counts [data-status="all"] .count`, "0"))
	if hash := b.eval(t, `location.hash`); !strings.HasPrefix(hash, "#/emails?created_before=2020-01-0") {
		t.Errorf("the search's URL is %q, want created_before in it", hash)
	}
	b.do(t, "Clear lists every email again",
		chromedp.Click(`#email-search a.clear`),
		waitCount("#emails-body tr", 25))
	b.noProblems(t)
}

// hostileHTML is an HTML body that would run script and load remote content in a
// page that showed it as it came: every one of these must be gone from the
// preview. 203.0.113.1 is TEST-NET-3: a request there goes nowhere.
const hostileHTML = `<html><head>
<style>@import url(http://203.0.113.1/sheet.css);
body { background: #fff url('http://203.0.113.1/body.png'); color: #1d1f23 }
.escaped { background-image: u\72l(http://203.0.113.1/escaped.png) }
@font-face { font-family: x; src: url(http://203.0.113.1/font.woff) }
</style></head>
<body>
<script>parent.postMessage('script ran', '*')</script>
<h1 onclick="parent.postMessage('handler ran', '*')">Hello from the HTML part</h1>
<img src="x" onerror="parent.postMessage('onerror ran', '*')">
<img src="http://203.0.113.1/pixel.png" alt="tracker">
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" srcset="http://203.0.113.1/big.png 2x" alt="dot">
<img src="cid:logo" alt="logo">
<div class="escaped" style="background-image: url(http://203.0.113.1/inline.png); padding: 4px">styled</div>
<table background="http://203.0.113.1/table.png"><tr><td>cell</td></tr></table>
<p style="background-image: image-set('http://203.0.113.1/set.png' 1x)">image-set</p>
<p style="background:url(&quot;http://203.0.113.1/entity.png&quot;)">entity</p>
<p style="--bg: url(http://203.0.113.1/var.png); background-image: var(--bg)">custom property</p>
<IMG SRC="HTTP://203.0.113.1/upper.png">
<svg><image href="http://203.0.113.1/svg.png"/></svg>
<form action="http://203.0.113.1/steal"><input name="password"><button>Go</button></form>
<a href="http://203.0.113.1/click">a link</a>
</body></html>`

func TestAHostileEmailIsShownInert(t *testing.T) {
	in, _ := startWithSMTP(t)
	email := apptest.NewEmail("victim@example.com")
	email["subject"] = "Invoice " + hostile
	email["text"] = "Plain <b>text</b> " + hostile
	email["html"] = hostileHTML
	id := in.Send(t, email)
	in.WaitForStatus(t, id, "sent", stepTimeout)

	b := openBrowser(t)
	signIn(t, b, in)
	b.do(t, "the list shows the hostile subject as text",
		chromedp.Click(`#nav a[href="#/emails"]`),
		waitText(fmt.Sprintf(`#emails-body a[href="#/emails/%s"]`, id), "Invoice "+hostile))
	b.noInjectedMarkup(t)

	// Whatever a frame posts to the page is noted; the frame loading is noted too,
	// so the check below comes after anything it could have run.
	b.eval(t, `(() => {
		window.framesSaid = [];
		window.addEventListener('message', (e) => window.framesSaid.push(String(e.data)));
		new MutationObserver(() => {
			const f = document.querySelector('iframe.email-frame');
			if (f && !f.dataset.watched) {
				f.dataset.watched = 'yes';
				f.addEventListener('load', () => { window.frameLoaded = true });
			}
		}).observe(document.body, { subtree: true, childList: true });
		return 'watching' })()`)
	b.do(t, "the email's page renders the HTML part in a sandboxed frame",
		chromedp.Click(fmt.Sprintf(`#emails-body a[href="#/emails/%s"]`, id)),
		waitText("#email-status", "sent"),
		chromedp.PollFunction[chromedp.Void](`() => window.frameLoaded === true`,
			chromedp.WithPollingTimeout(stepTimeout), chromedp.WithPollingInterval(20*time.Millisecond)))
	if got := b.text(t, "#email-subject"); got != "Invoice "+hostile {
		t.Errorf("subject shown as %q, want it as text", got)
	}
	b.noInjectedMarkup(t)
	if said := b.eval(t, `window.framesSaid.join('; ')`); said != "" {
		t.Errorf("the email's script ran in the frame: it said %q", said)
	}
	if sandbox := b.eval(t, `document.querySelector('iframe.email-frame').getAttribute('sandbox')`); sandbox != "" {
		t.Errorf("the frame's sandbox is %q, want \"\" (no permission at all)", sandbox)
	}
	doc := b.eval(t, `document.querySelector('iframe.email-frame').srcdoc`)
	for _, gone := range []string{"203.0.113.1", "<script", "onerror", "onclick", "<form", "<input", "@import", "@font-face", "cid:"} {
		if strings.Contains(doc, gone) {
			t.Errorf("the frame's document still has %q:\n%s", gone, doc)
		}
	}
	for _, kept := range []string{"Hello from the HTML part", `src="data:image/gif;base64,`, "padding: 4px", "color: rgb(29, 31, 35)", "a link"} {
		if !strings.Contains(doc, kept) {
			t.Errorf("the frame's document lost %q:\n%s", kept, doc)
		}
	}
	note := b.text(t, "#email-blocked")
	for _, want := range []string{"10 remote images not loaded", "1 inline image (cid:) not shown", "2 web fonts or style sheets not loaded"} {
		if !strings.Contains(note, want) {
			t.Errorf("the note says %q, want it to say %q", note, want)
		}
	}
	if links := b.text(t, "#email-html .email-links"); !strings.Contains(links, "http://203.0.113.1/click") {
		t.Errorf("the links under the frame are %q, want the link's address as text", links)
	}
	b.do(t, "the text part is text",
		chromedp.Click("#email-tab-text"),
		waitText("#email-text pre", "Plain <b>text</b> "+hostile))
	b.noInjectedMarkup(t)
	b.noProblems(t)

	// The listener must see a remote image the CSP blocks in a frame like the
	// preview's, or the checks above prove nothing about requests not made.
	b.eval(t, `(() => { const f = document.createElement('iframe'); f.setAttribute('sandbox', '');
		f.srcdoc = '<img src="http://203.0.113.1/control.png">'; document.body.append(f); return 'ok' })()`)
	apptest.Eventually(t, stepTimeout, func() bool { return b.reported("Content Security Policy") },
		func() string { return "the browser reported no CSP violation for a remote image in a sandboxed frame" })
}

func TestAnOperatorReschedulesAndCancelsAScheduledEmail(t *testing.T) {
	in := apptest.Start(t, apptest.Config(t))
	email := apptest.NewEmail("later@example.com")
	email["send_at"] = time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	id := in.Send(t, email)

	b := openBrowser(t)
	signIn(t, b, in)
	b.do(t, "open the scheduled email",
		chromedp.Navigate(in.URL+"/#/emails/"+id),
		waitText("#email-status", "scheduled"),
		chromedp.WaitVisible("#email-send-at"),
		waitCount("#email-events li[data-type=scheduled]", 1))
	want := b.eval(t, `(() => {
		const d = new Date(Date.now() + 3 * 3600 * 1000);
		d.setSeconds(0, 0);
		const pad = (n) => String(n).padStart(2, '0');
		document.getElementById('email-send-at').value =
			d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + 'T' + pad(d.getHours()) + ':' + pad(d.getMinutes());
		return d.toISOString().replace('.000Z', 'Z') })()`)
	b.do(t, "reschedule it three hours ahead",
		chromedp.Click("#email-reschedule button[type=submit]"),
		waitTextPrefix("#message", "Rescheduled for "))
	var got struct {
		Status string    `json:"status"`
		SendAt time.Time `json:"send_at"`
	}
	in.Do(t, http.MethodGet, "/api/emails/"+id, nil).JSON(t, &got)
	if got.Status != "scheduled" || got.SendAt.UTC().Format(time.RFC3339) != want {
		t.Errorf("after the reschedule the email is %s at %s, want scheduled at %s", got.Status, got.SendAt, want)
	}
	b.do(t, "the timeline shows the new time",
		waitCount("#email-events li[data-type=scheduled]", 2))

	b.do(t, "cancel it, answering the question",
		chromedp.Click("#email-cancel"),
		chromedp.WaitVisible("#ask-yes"),
		chromedp.Click("#ask-yes"),
		waitText("#email-status", "cancelled"),
		chromedp.WaitNotPresent("#email-cancel"),
		chromedp.WaitNotPresent("#email-reschedule"))
	if e := in.Get(t, id); e.Status != "cancelled" {
		t.Errorf("the email is %s after the cancel, want cancelled", e.Status)
	}
	b.noProblems(t)
}

func TestAnOperatorReplaysADeadEmailFromItsPage(t *testing.T) {
	in, srv := startWithSMTP(t)
	const rcpt = "gone@example.com"
	srv.FailRecipientWithReply(rcpt, 554, -1, "5.7.1 refused by policy")
	id := in.Send(t, apptest.NewEmail(rcpt))
	in.WaitForStatus(t, id, "dead", stepTimeout)

	b := openBrowser(t)
	signIn(t, b, in)
	b.do(t, "the dead email's page shows its letter and a Replay",
		chromedp.Navigate(in.URL+"/#/emails/"+id),
		waitText("#email-status", "dead"),
		waitContains("#email-letter", "refused by policy"),
		chromedp.WaitVisible("#email-replay"))
	srv.ClearFaults()
	b.do(t, "replay it and watch it reach sent",
		chromedp.Click("#email-replay"),
		waitText("#email-status", "sent"),
		chromedp.WaitNotVisible("#email-letter"))
	if n := len(srv.MessagesTo(rcpt)); n != 1 {
		t.Errorf("the SMTP server got %d messages for %s, want 1", n, rcpt)
	}
	b.noProblems(t)
}

func TestAnOperatorSendsATestEmailAndWatchesItGo(t *testing.T) {
	in, srv := startWithSMTP(t)
	const to = "ops@example.com"

	b := openBrowser(t)
	signIn(t, b, in, chromedp.EmulateViewport(375, 800))
	b.allow("400 (Bad Request)") // the bad address below: the browser logs the refused call
	b.do(t, "a bad address is refused, naming the field",
		chromedp.Click(`#nav a[href="#/send"]`),
		chromedp.WaitVisible("#send-to"),
		chromedp.SendKeys("#send-to", "not an address"),
		chromedp.Click("#send-form button[type=submit]"),
		waitTextPrefix("#message", "400 "))
	if msg := b.text(t, "#message"); !strings.Contains(msg, "to[0]") {
		t.Errorf("the error %q does not name the field to[0]", msg)
	}
	for _, id := range []string{"send-from", "send-to", "send-subject", "send-text", "send-html"} {
		if b.eval(t, fmt.Sprintf(`String(document.querySelector('label[for=%q]') !== null)`, id)) != "true" {
			t.Errorf("#%s has no label", id)
		}
	}
	b.do(t, "send to a good address with an HTML part",
		chromedp.SetValue("#send-to", to+", second@example.com"),
		chromedp.SetValue("#send-subject", "Console check"),
		chromedp.SetValue("#send-html", "<h1>Console check</h1><p>It works.</p>"),
		chromedp.Click("#send-form button[type=submit]"),
		chromedp.WaitVisible("#send-link"))
	b.noSidewaysScroll(t)
	b.screenshot(t, "send")
	id := b.text(t, "#send-link")
	b.do(t, "the link opens the email, followed until it is sent",
		chromedp.Click("#send-link"),
		waitText("#email-heading", "Email "+id),
		waitText("#email-status", "sent"))
	msgs := srv.MessagesTo(to)
	if len(msgs) != 1 || !strings.Contains(string(msgs[0].Data), "Subject: Console check") {
		t.Fatalf("the SMTP server got %d messages for %s, want 1 with the subject", len(msgs), to)
	}
	b.do(t, "the message's tabs move with the arrow keys",
		chromedp.Focus("#email-tab-html"),
		chromedp.KeyEvent(kb.ArrowRight),
		waitText(`#email-tabs [aria-selected="true"]`, "Text"),
		waitContains("#email-text pre", "This is a test email sent from the Mailroom console."))
	if focused := b.eval(t, `document.activeElement.id`); focused != "email-tab-text" {
		t.Errorf("after ArrowRight the focus is on #%s, want the Text tab", focused)
	}
	b.do(t, "the raw source shows the message's headers",
		chromedp.KeyEvent(kb.ArrowRight),
		waitContains("#email-raw pre", "Subject: Console check"))
	b.noProblems(t)
}
