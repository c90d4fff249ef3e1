//go:build browser

// The dead-letters and suppressions views in a real browser: an operator replays
// the letters they tick, replays what a filter matches after seeing how many that
// is, and puts an address on the suppression list and takes it off again.

package web_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/platform/testkit/smtptest"
)

// parkedEmails asks the API which emails have a parked dead letter.
func parkedEmails(t *testing.T, in *apptest.Instance) []string {
	t.Helper()
	r := in.Do(t, http.MethodGet, "/api/dead-letters?limit=500", nil)
	var page struct {
		Items []struct {
			EmailID string `json:"email_id"`
		} `json:"items"`
	}
	r.JSON(t, &page)
	var ids []string
	for _, l := range page.Items {
		ids = append(ids, l.EmailID)
	}
	slices.Sort(ids)
	return ids
}

func sortedIDs(ids ...string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}

// deadEmails sends one email to each address, which srv refuses for good with a
// 554 (policy: the address is not suppressed) and the reply text, and returns
// their ids once every one is dead.
func deadEmails(t *testing.T, in *apptest.Instance, srv *smtptest.Server, reply string, to ...string) []string {
	t.Helper()
	var ids []string
	for _, rcpt := range to {
		srv.FailRecipientWithReply(rcpt, 554, -1, reply)
		email := apptest.NewEmail(rcpt)
		email["subject"] = "Statement for " + rcpt
		ids = append(ids, in.Send(t, email))
	}
	for _, id := range ids {
		in.WaitForStatus(t, id, "dead", stepTimeout)
	}
	return ids
}

func TestAnOperatorReplaysTheDeadLettersTheyTick(t *testing.T) {
	in, srv := startWithSMTP(t)
	var to []string
	for i := range 4 {
		to = append(to, fmt.Sprintf("tick%d@example.com", i))
	}
	ids := deadEmails(t, in, srv, "refused "+hostile, to...)

	b := openBrowser(t)
	signIn(t, b, in)
	pick := func(id string) string { return fmt.Sprintf(`#letters-body input[aria-label="Select %s"]`, id) }
	b.do(t, "open the dead letters",
		chromedp.Click(`#nav a[href="#/dead-letters"]`),
		chromedp.WaitVisible(pick(ids[3])),
		waitText("#letters-count", "Showing 4 of 4 parked dead letters."))

	row := fmt.Sprintf(`#letters-body tr:has(input[aria-label="Select %s"])`, ids[1])
	if got := b.text(t, row+" td.email .subject"); got != "Statement for "+to[1] {
		t.Errorf("the row of %s shows the subject %q, want %q", ids[1], got, "Statement for "+to[1])
	}
	if got := b.text(t, row+" td.recipients"); !strings.Contains(got, to[1]) || !strings.Contains(got, hostile) {
		t.Errorf("the row of %s shows the recipients %q, want %s and the server's reply %q", ids[1], got, to[1], hostile)
	}
	if got := b.eval(t, fmt.Sprintf(`document.querySelector('%s a.id').getAttribute('href')`, row)); got != "#/emails/"+ids[1] {
		t.Errorf("the row's email id links to %q, want #/emails/%s", got, ids[1])
	}

	b.do(t, "select all shown, then none",
		chromedp.Click("#select-all"),
		waitText("#replay-selected", "Replay selected (4)"),
		chromedp.Click("#select-all"),
		waitText("#replay-selected", "Replay selected (0)"))
	b.do(t, "tick two letters",
		chromedp.Click(pick(ids[0])),
		chromedp.Click(pick(ids[2])),
		waitText("#replay-selected", "Replay selected (2)"))
	if got := b.eval(t, `String(document.getElementById('select-all').indeterminate)`); got != "true" {
		t.Errorf("with 2 of 4 ticked the select-all box is indeterminate=%s, want true", got)
	}
	b.noInjectedMarkup(t)
	b.screenshot(t, "dead-letters")

	srv.ClearFaults()
	b.do(t, "replay the two", chromedp.Click("#replay-selected"))
	confirm(t, b, "Replay 2 selected dead letters?")
	b.do(t, "the two are replayed and leave the list",
		waitText("#message", "Replayed 2 dead letters."),
		waitText("#letters-count", "Showing 2 of 2 parked dead letters."),
		waitText("#replay-selected", "Replay selected (0)"))
	for _, id := range []string{ids[0], ids[2]} {
		in.WaitForStatus(t, id, "sent", stepTimeout)
	}
	for _, i := range []int{0, 2} {
		if n := len(srv.MessagesTo(to[i])); n != 1 {
			t.Errorf("%s got %d messages, want 1", to[i], n)
		}
	}
	if got, want := parkedEmails(t, in), sortedIDs(ids[1], ids[3]); !slices.Equal(got, want) {
		t.Errorf("parked after the replay: %v, want the two not ticked %v", got, want)
	}
	for _, i := range []int{1, 3} {
		if e := in.Get(t, ids[i]); e.Status != "dead" || srv.Attempts(to[i]) != 1 {
			t.Errorf("email %s not ticked is %s after %d tries, want dead after 1", ids[i], e.Status, srv.Attempts(to[i]))
		}
	}
	if disabled := b.eval(t, `String(document.getElementById('replay-selected').disabled)`); disabled != "true" {
		t.Errorf("with nothing ticked the replay button is enabled")
	}
	b.noProblems(t)
}

func TestAnOperatorReplaysWhatAFilterMatchesAfterSeeingHowMany(t *testing.T) {
	in, srv := startWithSMTP(t)
	full := deadEmails(t, in, srv, "mailbox quota exceeded", "full0@example.com", "full1@example.com", "full2@example.com")
	blocked := deadEmails(t, in, srv, "blocked by policy", "blocked0@example.com", "blocked1@example.com")

	b := openBrowser(t)
	signIn(t, b, in, chromedp.EmulateViewport(375, 800)) // a phone
	b.do(t, "filter by reason",
		chromedp.Click(`#nav a[href="#/dead-letters"]`),
		waitText("#letters-count", "Showing 5 of 5 parked dead letters."),
		chromedp.SendKeys("#reason", "QUOTA"),
		chromedp.Click("#filter-form button[type=submit]"),
		waitText("#letters-count", "Showing 3 of 3 parked dead letters."))
	b.noSidewaysScroll(t)

	r := in.Do(t, http.MethodGet, "/api/dead-letters?"+url.Values{"reason_contains": {"QUOTA"}, "include_total": {"true"}, "limit": {"1"}}.Encode(), nil)
	var counted struct{ Total int }
	r.JSON(t, &counted)
	if counted.Total != len(full) {
		t.Fatalf("the API counts %d letters whose reason contains QUOTA, want %d", counted.Total, len(full))
	}

	srv.ClearFaults()
	b.do(t, "ask to replay all matching", chromedp.Click("#replay-matching"))
	b.noSidewaysScroll(t) // the question fits a phone too
	confirm(t, b, fmt.Sprintf("Replay %d parked dead letters whose reason contains 'QUOTA'?", counted.Total))
	b.do(t, "the matching letters are replayed",
		waitText("#message", "Replayed 3 dead letters."),
		waitText("#letters-count", "Showing 0 of 0 parked dead letters."))
	for _, id := range full {
		in.WaitForStatus(t, id, "sent", stepTimeout)
	}
	if got, want := parkedEmails(t, in), sortedIDs(blocked...); !slices.Equal(got, want) {
		t.Errorf("parked after the replay: %v, want those the filter did not match %v", got, want)
	}

	b.eval(t, `document.getElementById('reason').value = ''`) // chromedp.Clear leaves a search box as it is
	b.do(t, "a filter that matches nothing replays nothing and asks nothing",
		chromedp.SendKeys("#reason", "no such reason"),
		chromedp.Click("#replay-matching"),
		waitText("#message", "No parked dead letters match; nothing to replay."))
	b.eval(t, `document.getElementById('reason').value = ''`)
	b.eval(t, `document.getElementById('since').value = '2999-01-01T00:00'`)
	b.do(t, "a filter by time that matches nothing lists nothing",
		chromedp.Click("#filter-form button[type=submit]"),
		waitText("#letters-count", "Showing 0 of 0 parked dead letters."))
	b.eval(t, `document.getElementById('message').textContent = ''`) // the same words as the step before
	b.do(t, "a filter by time that matches nothing replays nothing",
		chromedp.Click("#replay-matching"),
		waitText("#message", "No parked dead letters match; nothing to replay."))
	b.eval(t, `document.getElementById('since').value = ''`)
	b.do(t, "clear the filter", chromedp.Click("#filter-form button[type=submit]"),
		waitText("#letters-count", "Showing 2 of 2 parked dead letters."))
	b.noSidewaysScroll(t)
	b.screenshot(t, "dead-letters-phone")
	b.noProblems(t)
}

func TestAnOperatorSuppressesAnAddressAndTakesItOffTheList(t *testing.T) {
	in, srv := startWithSMTP(t)
	const bounced, blocked = "gone@example.com", "blocked@example.com"
	srv.FailRecipientWithReply(bounced, 550, -1, "no such mailbox "+hostile) // a hard bounce suppresses it
	bounce := in.Send(t, apptest.NewEmail(bounced))
	in.WaitForStatus(t, bounce, "dead", stepTimeout)

	b := openBrowser(t)
	signIn(t, b, in, chromedp.EmulateViewport(375, 800)) // a phone
	bouncedRow := fmt.Sprintf(`#suppressions-body tr:has(button[aria-label="Remove %s"])`, bounced)
	b.do(t, "the bounced address is listed",
		chromedp.Click(`#nav a[href="#/suppressions"]`),
		chromedp.WaitVisible(bouncedRow))
	why := b.text(t, bouncedRow+" td.why")
	if !strings.HasPrefix(why, "Bounce") || !strings.Contains(why, hostile) || !strings.Contains(why, bounce) {
		t.Errorf("the bounced address's why is %q, want Bounce, the server's reply and the email %s", why, bounce)
	}

	reason := "asked to be removed " + hostile
	blockedRow := fmt.Sprintf(`#suppressions-body tr:has(button[aria-label="Remove %s"])`, blocked)
	b.do(t, "suppress an address",
		chromedp.SendKeys("#suppress-address", strings.ToUpper(blocked)),
		chromedp.SendKeys("#suppress-reason", reason),
		chromedp.Click("#suppress-form button[type=submit]"),
		waitTextPrefix("#message", blocked+" is suppressed ("+reason+")"),
		chromedp.WaitVisible(blockedRow))
	if got := b.text(t, blockedRow+" td.why"); got != "Added by an operator"+reason {
		t.Errorf("the added address's why is %q, want it added by an operator with the reason", got)
	}
	b.noInjectedMarkup(t)
	b.noSidewaysScroll(t)
	b.screenshot(t, "suppressions")

	type suppression struct{ Address, Reason, Source string }
	suppressed := func(address string) []suppression {
		r := in.Do(t, http.MethodGet, "/api/suppressions?address="+url.QueryEscape(address), nil)
		var page struct{ Items []suppression }
		r.JSON(t, &page)
		return page.Items
	}
	if got := suppressed(blocked); len(got) != 1 || got[0].Reason != reason || got[0].Source != "operator" {
		t.Fatalf("the API lists %+v for %s, want it suppressed by an operator with the reason", got, blocked)
	}
	id := in.Send(t, apptest.NewEmail(blocked))
	e := in.WaitForStatus(t, id, "dead", stepTimeout)
	if !slices.ContainsFunc(e.Events, func(ev apptest.Event) bool { return ev.Type == "suppressed" }) || srv.Attempts(blocked) != 0 {
		t.Errorf("mail to the suppressed %s: events %+v after %d tries, want it suppressed without a try", blocked, e.Events, srv.Attempts(blocked))
	}

	b.do(t, "search by address",
		chromedp.SendKeys("#suppressions-search", "BLOCKED"),
		chromedp.Click("#suppressions-search-form button[type=submit]"),
		chromedp.WaitNotPresent(bouncedRow),
		chromedp.WaitVisible(blockedRow))

	b.do(t, "cancel the removal", chromedp.Click(blockedRow+" button"), chromedp.WaitVisible("#ask-cancel"),
		chromedp.Click("#ask-cancel"), chromedp.WaitNotPresent("#ask-cancel"))
	if got := suppressed(blocked); len(got) != 1 {
		t.Fatalf("after a cancelled removal the API lists %+v for %s, want it still suppressed", got, blocked)
	}
	b.do(t, "remove the address", chromedp.Click(blockedRow+" button"))
	confirm(t, b, fmt.Sprintf("Remove %s from the suppression list?", blocked))
	b.do(t, "it leaves the list",
		waitText("#message", blocked+" is no longer suppressed."),
		chromedp.WaitNotPresent(blockedRow),
		chromedp.WaitVisible("#suppressions-empty"))
	if got := suppressed(blocked); len(got) != 0 {
		t.Errorf("after the removal the API lists %+v for %s, want nothing", got, blocked)
	}
	in.WaitForStatus(t, in.Send(t, apptest.NewEmail(blocked)), "sent", stepTimeout)
	b.noProblems(t)
}
