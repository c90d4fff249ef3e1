//go:build browser

package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/platform/testkit/smtptest"
)

// The overview is where an operator lands: mail sent through the API while they
// watch moves its counters and charts, a bounce and a deferral show where they
// happened and link to what to do, a mail server going down shows as paused with
// why and since when, and the search by recipient leads to that person's emails.
func TestTheOverviewShowsMailFlowingAndWhatWentWrongAsItHappens(t *testing.T) {
	srv := smtptest.Start(t)
	srv.FailRecipient("gone@example.com", 550, -1)  // bounced: the email dies
	srv.FailRecipient("later@example.com", 451, -1) // deferred, retried only in an hour
	cfg := apptest.Config(t)
	apptest.UseSMTP(cfg, srv)
	cfg.Retry.InitialInterval, cfg.Retry.MaxInterval = time.Hour, time.Hour
	in := apptest.Start(t, cfg)

	b := openBrowser(t)
	signIn(t, b, in, chromedp.EmulateViewport(1280, 900))
	b.do(t, "the overview is the landing view",
		waitText("#smtp-value", "up"),
		waitText("#broker-value", "up"),
		waitText("#total-accepted", "0"),
		waitText("#total-sent", "0"),
		chromedp.WaitVisible("#chart-flow canvas"),
		chromedp.WaitVisible("#chart-trouble canvas"))
	if current := b.eval(t, `document.querySelector('#nav a[aria-current=page]').getAttribute('href')`); current != "#/overview" {
		t.Errorf("the navigation marks %s as the current view, want #/overview", current)
	}

	for _, to := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		in.Send(t, apptest.NewEmail(to))
	}
	b.do(t, "three emails sent through the API move the accepted and sent counters",
		waitText("#total-accepted", "3"),
		waitText("#total-sent", "3"),
		waitAttrPrefix("#chart-flow", "aria-label", "Accepted and sent per second over the last 5 minutes: accepted 3"))
	b.do(t, "the last minute alone shows the same mail",
		chromedp.SendKeys("#window", "Last m"), // typed on the closed list, as a keyboard user picks
		waitAttrPrefix("#chart-flow", "aria-label", "Accepted and sent per second over the last minute: accepted 3"),
		waitTextPrefix("#totals-window", "In the last minute"),
		waitText("#total-accepted", "3"))

	// A keyboard user on a tile's link keeps their place while the figures change.
	b.do(t, "focus the retrying emails' link", chromedp.Focus("#retrying-link"))
	in.Send(t, apptest.NewEmail("gone@example.com"))
	in.Send(t, apptest.NewEmail("later@example.com"))
	b.do(t, "a bounce and a deferral move their counters and tiles",
		waitText("#total-bounced", "1"),
		waitText("#total-dead_lettered", "1"),
		waitText("#total-deferred", "1"),
		waitText("#dead-letters-value", "1"),
		waitText("#retrying-value", "1"),
		waitAttrPrefix("#chart-trouble", "aria-label", "Deferred, bounced and dead-lettered per second over the last minute: deferred 1"),
		waitTextPrefix("#outbox-detail", "Nothing due waits. 1 held for later"))
	if focused := b.eval(t, `document.activeElement.id`); focused != "retrying-link" {
		t.Errorf("after the figures changed the focus is on %q, want it kept on the retrying emails' link", focused)
	}
	for sel, want := range map[string]string{
		"#retrying-link":        "#/emails?status=retrying",
		"#scheduled-link":       "#/emails?status=scheduled",
		"#dead-letters-link":    "#/dead-letters",
		"#status-link-sent":     "#/emails?status=sent",
		"#status-link-retrying": "#/emails?status=retrying",
	} {
		if got := b.eval(t, `document.querySelector('`+sel+`').getAttribute('href')`); got != want {
			t.Errorf("%s links to %s, want %s", sel, got, want)
		}
	}
	if got := b.text(t, "#statuses"); !strings.Contains(got, "sent 3") || !strings.Contains(got, "dead 1") {
		t.Errorf("emails by status: %q, want sent 3 and dead 1 among them", got)
	}
	b.screenshot(t, "overview")

	// The mail server goes down: the next send meets a 421 and no server answers
	// the probes, until it is back.
	if err := srv.RefuseConnections(true); err != nil {
		t.Fatal(err)
	}
	srv.FailAt(smtptest.StepMail, 421, 1)
	in.Send(t, apptest.NewEmail("d@example.com"))
	b.do(t, "a mail server that is down shows as paused, since when and why",
		waitText("#smtp-value", "paused"),
		waitTextPrefix("#smtp-detail", "Since "))
	if detail := b.text(t, "#smtp-detail"); !strings.Contains(detail, "It cannot be reached: ") {
		t.Errorf("the paused mail server's tile says %q, without why", detail)
	}
	b.screenshot(t, "overview-smtp-paused")
	srv.FailAt(smtptest.StepMail, 0, 0) // if no connection reached MAIL, the 421 is not left for later
	if err := srv.RefuseConnections(false); err != nil {
		t.Fatal(err)
	}
	b.do(t, "the server back, delivery resumes and the waiting email is sent",
		waitText("#smtp-value", "up"),
		waitText("#total-sent", "4"))

	b.do(t, "the search by recipient opens that person's emails",
		chromedp.SendKeys("#find-recipient", "later@example.com"),
		chromedp.Click("#find-form button[type=submit]"),
		chromedp.WaitNotPresent("#chart-flow"))
	if hash := b.eval(t, `location.hash`); hash != "#/emails?recipient=later%40example.com" {
		t.Errorf("the search went to %s, want #/emails?recipient=later%%40example.com", hash)
	}
	if n := b.eval(t, `String(document.querySelectorAll('.uplot').length)`); n != "0" {
		t.Errorf("%s charts are left on the page after leaving the overview", n)
	}

	// The question a first-time operator comes with: did this person get their
	// email, and if not, why? From the overview: one search, one click.
	b.do(t, "from the overview, the bounced person's email and why it bounced",
		chromedp.Click(`#nav a[href="#/overview"]`),
		chromedp.SendKeys("#find-recipient", "gone@example.com"),
		chromedp.Click("#find-form button[type=submit]"),
		waitCount("#emails-body tr", 1),
		chromedp.Click(`#emails-body tr a[href^="#/emails/"]`),
		waitText("#email-status", "dead"),
		waitContains("#email-recipients", "bounced"),
		waitContains("#email-recipients", "550"))

	b.do(t, "on a phone the overview fits the screen",
		chromedp.EmulateViewport(375, 800),
		chromedp.Click(`#nav a[href="#/overview"]`),
		chromedp.SendKeys("#window", "Last 5"), // the one chosen before is kept: the last minute
		waitTextPrefix("#totals-window", "In the last 5 minutes"),
		waitText("#total-sent", "4"),
		chromedp.WaitVisible("#chart-flow canvas"))
	b.noSidewaysScroll(t)
	if fits := b.eval(t, `String(document.querySelector('#chart-flow canvas').getBoundingClientRect().right <= window.innerWidth)`); fits != "true" {
		t.Errorf("the chart is wider than a 375 px screen: it ends at %s px",
			b.eval(t, `String(document.querySelector('#chart-flow canvas').getBoundingClientRect().right)`))
	}
	b.screenshot(t, "overview-phone")
	b.noInjectedMarkup(t)
	b.noProblems(t)
}
