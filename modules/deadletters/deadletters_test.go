package deadletters_test

// Module-level tests of the dead letters: the whole app on the Go-channel broker with
// a real SQLite file and an in-process SMTP server that refuses chosen recipients,
// driven over HTTP and, for the CLI, through the module's exported methods.

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailroom/mailroom/app"
	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/modules/deadletters"
	"github.com/mailroom/mailroom/platform/config"
	"github.com/mailroom/mailroom/platform/logging"
	"github.com/mailroom/mailroom/platform/outbox"
	"github.com/mailroom/mailroom/platform/testkit/smtptest"
)

// wait is the deadline of every wait on a condition; the conditions normally hold
// within milliseconds.
const wait = 20 * time.Second

// maxAttempts is the retry budget of these tests' apps.
const maxAttempts = 3

// Reasons the smtptest server gives, as the dead letters carry them. A 550 or 553
// (5.1.x) also puts the mailbox on the suppression list; a 554 (5.7.1, policy) does
// not, so it is the refusal tests replay once the fault is fixed.
const (
	noSuchUser  = "no such user"       // 550 5.1.1
	nameRefused = "name not allowed"   // 553 5.1.3
	byPolicy    = "rejected by policy" // 554 5.7.1
	tryLater    = "try again later"    // 451 4.3.0
)

func start(t *testing.T) (*apptest.Instance, *smtptest.Server) {
	t.Helper()
	srv := smtptest.Start(t)
	cfg := apptest.Config(t)
	apptest.UseSMTP(cfg, srv)
	cfg.Retry.MaxAttempts = maxAttempts
	cfg.Retry.InitialInterval = 10 * time.Millisecond
	cfg.Retry.Multiplier = 2
	cfg.Retry.MaxInterval = 100 * time.Millisecond
	return apptest.Start(t, cfg), srv
}

// letter is one item of GET /api/dead-letters.
type letter struct {
	ID         string `json:"id"`
	EmailID    string `json:"email_id"`
	Status     string `json:"status"`
	Reason     string `json:"reason"`
	ErrorClass string `json:"error_class"`
	Attempts   int    `json:"attempts"`
	SMTPReply  string `json:"smtp_reply"`
	Replays    int    `json:"replays"`
	Subject    string `json:"subject"`
	Recipients []struct {
		Address string `json:"address"`
		Status  string `json:"status"`
	} `json:"recipients"`
	OriginalTopic  string     `json:"original_topic"`
	ConsumerGroup  string     `json:"consumer_group"`
	FirstFailedAt  *time.Time `json:"first_failed_at"`
	LastFailedAt   *time.Time `json:"last_failed_at"`
	DeadLetteredAt time.Time  `json:"dead_lettered_at"`
	ResolvedAt     *time.Time `json:"resolved_at"`
}

type page struct {
	Items      []letter `json:"items"`
	NextCursor string   `json:"next_cursor"`
	Total      *int     `json:"total"`
}

// list GETs /api/dead-letters with the query and fails unless it answers 200.
func list(t *testing.T, in *apptest.Instance, query url.Values) page {
	t.Helper()
	r := in.Do(t, http.MethodGet, "/api/dead-letters?"+query.Encode(), nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /api/dead-letters?%s: %d %s", query.Encode(), r.Status, r.Body)
	}
	var p page
	r.JSON(t, &p)
	return p
}

func emailIDs(ls []letter) []string {
	ids := make([]string, 0, len(ls))
	for _, l := range ls {
		ids = append(ids, l.EmailID)
	}
	slices.Sort(ids)
	return ids
}

func sorted(ids ...string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}

// parked waits until the email has a parked dead letter after the given number of
// replays and returns it.
func parked(t *testing.T, in *apptest.Instance, emailID string, replays int) letter {
	t.Helper()
	var found *letter
	apptest.Eventually(t, wait, func() bool {
		for _, l := range list(t, in, url.Values{"limit": {"500"}}).Items {
			if l.EmailID == emailID && l.Replays == replays {
				found = &l
				return true
			}
		}
		return false
	}, func() string {
		return fmt.Sprintf("a parked dead letter of %s after %d replays", emailID, replays)
	})
	return *found
}

// kill sends an email to a recipient the server refuses with code forever and
// returns its id once it is dead and parked.
func kill(t *testing.T, in *apptest.Instance, srv *smtptest.Server, to string, code int) string {
	t.Helper()
	srv.FailRecipient(to, code, -1)
	id := in.Send(t, apptest.NewEmail(to))
	in.WaitForStatus(t, id, "dead", wait)
	parked(t, in, id, 0)
	return id
}

func hasEvent(e apptest.Email, typ string) bool {
	return slices.ContainsFunc(e.Events, func(ev apptest.Event) bool { return ev.Type == typ })
}

// errorBody is the contract's error shape.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
	} `json:"error"`
}

func TestListingShowsWhyWhenAndWhere(t *testing.T) {
	in, srv := start(t)
	cfg := in.Config
	before := time.Now()
	permanent := kill(t, in, srv, "gone@example.com", 550)
	exhausted := kill(t, in, srv, "busy@example.com", 451)

	got := map[string]letter{}
	for _, l := range list(t, in, nil).Items {
		got[l.EmailID] = l
	}
	tests := []struct {
		name       string
		id         string
		reason     string
		errorClass string
		attempts   int
		code       string
	}{
		{"a permanent failure is listed with its reply after one attempt", permanent, noSuchUser, "permanent", 1, "550"},
		{"an exhausted transient failure is listed after max_attempts attempts", exhausted, tryLater, "transient_exhausted", maxAttempts, "451"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, ok := got[tt.id]
			if !ok {
				t.Fatalf("email %s not listed", tt.id)
			}
			// smtp_reply is the server's last reply alone, code first; reason is the
			// whole error (the step and the reply).
			if !strings.HasPrefix(l.SMTPReply, tt.code) || !strings.Contains(strings.ToLower(l.SMTPReply), tt.reason) || strings.HasPrefix(l.SMTPReply, "smtp:") {
				t.Errorf("smtp_reply %q: want the server's reply, %s ... %q", l.SMTPReply, tt.code, tt.reason)
			}
			if !strings.Contains(strings.ToLower(l.Reason), tt.reason) || l.ErrorClass != tt.errorClass || l.Attempts != tt.attempts {
				t.Errorf("letter %+v: want reason with %q, error_class %s, %d attempts", l, tt.reason, tt.errorClass, tt.attempts)
			}
			if l.Status != "parked" || l.Replays != 0 || l.ResolvedAt != nil {
				t.Errorf("letter %+v: want parked, 0 replays, not resolved", l)
			}
			if l.Subject != "Hello" || len(l.Recipients) != 1 || l.Recipients[0].Status == "" {
				t.Errorf("letter %+v: want the subject and the recipient that was not delivered", l)
			}
			if l.OriginalTopic != cfg.Topics.Send || l.ConsumerGroup != cfg.Kafka.ConsumerGroup {
				t.Errorf("letter came from topic %q, group %q; want %q, %q", l.OriginalTopic, l.ConsumerGroup, cfg.Topics.Send, cfg.Kafka.ConsumerGroup)
			}
			if l.FirstFailedAt == nil || l.LastFailedAt == nil || l.FirstFailedAt.Before(before.Truncate(time.Millisecond)) ||
				l.LastFailedAt.Before(*l.FirstFailedAt) || l.DeadLetteredAt.Before(*l.LastFailedAt) || time.Since(l.DeadLetteredAt) > time.Minute {
				t.Errorf("letter times first %v, last %v, dead-lettered %v: want before <= first <= last <= dead-lettered <= now",
					l.FirstFailedAt, l.LastFailedAt, l.DeadLetteredAt)
			}
		})
	}
}

func TestListingFiltersAndPages(t *testing.T) {
	in, srv := start(t)
	early := []string{
		kill(t, in, srv, "early1@example.com", 550),
		kill(t, in, srv, "early2@example.com", 553),
	}
	var boundary time.Time
	for _, l := range list(t, in, nil).Items {
		if l.DeadLetteredAt.After(boundary) {
			boundary = l.DeadLetteredAt
		}
	}
	boundary = boundary.Add(time.Millisecond) // after every early letter, before any late one
	late := []string{
		kill(t, in, srv, "late1@example.com", 550),
		kill(t, in, srv, "late2@example.com", 550),
		kill(t, in, srv, "late3@example.com", 553),
	}
	all := append(slices.Clone(early), late...)
	stamp := boundary.UTC().Format(time.RFC3339Nano)

	tests := []struct {
		name  string
		query url.Values
		want  []string
	}{
		{"no filter lists every parked letter", nil, all},
		{"reason_contains matches part of the reason, ignoring case",
			url.Values{"reason_contains": {"NO SUCH USER"}}, []string{early[0], late[0], late[1]}},
		{"reason_contains with no match lists nothing", url.Values{"reason_contains": {"no such reason"}}, nil},
		{"since keeps letters dead-lettered at or after it", url.Values{"since": {stamp}}, late},
		{"until keeps letters dead-lettered before it", url.Values{"until": {stamp}}, early},
		{"filters combine", url.Values{"since": {stamp}, "reason_contains": {nameRefused}}, []string{late[2]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := list(t, in, tt.query)
			if got, want := emailIDs(p.Items), sorted(tt.want...); !slices.Equal(got, want) {
				t.Errorf("listed %v, want %v", got, want)
			}
			if p.NextCursor != "" {
				t.Errorf("next_cursor %q on a page that holds everything", p.NextCursor)
			}
		})
	}

	t.Run("pages of two walk every letter once, newest first", func(t *testing.T) {
		var seen []letter
		cursor := ""
		for pages := 0; ; pages++ {
			if pages > len(all) {
				t.Fatalf("more pages than letters: cursor %q does not move", cursor)
			}
			q := url.Values{"limit": {"2"}}
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			p := list(t, in, q)
			if len(p.Items) > 2 {
				t.Fatalf("page of %d, limit 2", len(p.Items))
			}
			seen = append(seen, p.Items...)
			if cursor = p.NextCursor; cursor == "" {
				break
			}
		}
		if got, want := emailIDs(seen), sorted(all...); !slices.Equal(got, want) {
			t.Fatalf("paged through %v, want %v", got, want)
		}
		for i := 1; i < len(seen); i++ {
			if seen[i].DeadLetteredAt.After(seen[i-1].DeadLetteredAt) {
				t.Errorf("letter %d (%v) is newer than letter %d (%v)", i, seen[i].DeadLetteredAt, i-1, seen[i-1].DeadLetteredAt)
			}
		}
	})

	t.Run("include_total counts every match whatever the page, and only when asked", func(t *testing.T) {
		for _, tt := range []struct {
			name  string
			query url.Values
			want  int
		}{
			{"the first page of one", url.Values{"limit": {"1"}}, len(all)},
			{"a reason", url.Values{"reason_contains": {noSuchUser}, "limit": {"1"}}, 3},
			{"a reason and a time", url.Values{"since": {stamp}, "reason_contains": {nameRefused}}, 1},
			{"a status that matches nothing", url.Values{"status": {"replayed"}}, 0},
		} {
			tt.query.Set("include_total", "true")
			if p := list(t, in, tt.query); p.Total == nil || *p.Total != tt.want {
				t.Errorf("%s: total %v, want %d", tt.name, p.Total, tt.want)
			}
		}
		first := list(t, in, url.Values{"limit": {"2"}})
		q := url.Values{"limit": {"2"}, "cursor": {first.NextCursor}, "include_total": {"true"}}
		if p := list(t, in, q); p.Total == nil || *p.Total != len(all) {
			t.Errorf("total on the second page %v, want %d: every match, not those after the cursor", p.Total, len(all))
		}
		for _, v := range []string{"", "false"} {
			if p := list(t, in, url.Values{"include_total": {v}}); p.Total != nil {
				t.Errorf("include_total=%q answered a total %d", v, *p.Total)
			}
		}
	})

	bad := []struct {
		name, query, field string
	}{
		{"a since that is not RFC 3339 is refused", "since=yesterday", "since"},
		{"an until that is not RFC 3339 is refused", "until=2026-13-01", "until"},
		{"a cursor that is not a number is refused", "cursor=abc", "cursor"},
		{"a limit over the page size is refused", "limit=100000", "limit"},
		{"a limit of 0 is refused, not taken as the default", "limit=0", "limit"},
		{"a limit of -0 is refused, not taken as the default", "limit=-0", "limit"},
		{"a cursor of zeros is refused", "cursor=00000000", "cursor"},
		{"a cursor with a leading zero is refused", "cursor=01", "cursor"},
		{"a cursor with a plus sign is refused", "cursor=%2B1", "cursor"},
		{"an unknown status is refused", "status=lost", "status"},
		{"an until before since is refused", "since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z", "until"},
		{"an include_total that is not a boolean is refused", "include_total=yes", "include_total"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			r := in.Do(t, http.MethodGet, "/api/dead-letters?"+tt.query, nil)
			var body errorBody
			r.JSON(t, &body)
			if r.Status != http.StatusBadRequest || body.Error.Field != tt.field || body.Error.Code != "invalid_field" {
				t.Errorf("GET ?%s: %d %s; want 400 invalid_field on %s", tt.query, r.Status, r.Body, tt.field)
			}
		})
	}
}

func TestReplayAfterTheFaultIsFixedDelivers(t *testing.T) {
	in, srv := start(t)
	const to = "fixed@example.com"
	id := kill(t, in, srv, to, 554)
	srv.ClearFaults()

	r := in.Do(t, http.MethodPost, "/api/dead-letters/"+id+"/replay", nil)
	if r.Status != http.StatusAccepted {
		t.Fatalf("replay: %d %s", r.Status, r.Body)
	}
	e := in.WaitForStatus(t, id, "sent", wait)
	if len(srv.MessagesTo(to)) != 1 {
		t.Fatalf("%d messages to %s after the replay, want 1", len(srv.MessagesTo(to)), to)
	}
	apptest.Eventually(t, wait, func() bool { e = in.Get(t, id); return hasEvent(e, "replayed") },
		func() string { return fmt.Sprintf("a replayed event in %+v", e.Events) })
	if e.Attempts != 1 {
		t.Errorf("attempts %d after a replay that succeeded at once, want 1 (a fresh count)", e.Attempts)
	}
	if p := list(t, in, nil); len(p.Items) != 0 {
		t.Errorf("parked letters after the replay: %+v", p.Items)
	}
	replayed := list(t, in, url.Values{"status": {"replayed"}}).Items
	if len(replayed) != 1 || replayed[0].EmailID != id || replayed[0].ResolvedAt == nil {
		t.Errorf("replayed letters %+v, want the one of %s with resolved_at", replayed, id)
	}

	r = in.Do(t, http.MethodPost, "/api/dead-letters/"+id+"/replay", nil)
	var body errorBody
	r.JSON(t, &body)
	if r.Status != http.StatusConflict || body.Error.Code != "conflict" || !strings.Contains(body.Error.Message, "was replayed") {
		t.Errorf("second replay of a delivered email: %d %s, want 409 saying the letter was replayed", r.Status, r.Body)
	}
	if r := in.Do(t, http.MethodGet, "/api/dead-letters/"+id, nil); r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"status":"replayed"`) {
		t.Errorf("GET /api/dead-letters/%s: %d %s, want the replayed letter", id, r.Status, r.Body)
	}
}

// A 550 bounces the mailbox onto the suppression list: replaying its email skips it
// again, until an operator takes it off the list.
func TestAReplayOfAHardBounceIsSuppressedUntilTheAddressIsTakenOffTheList(t *testing.T) {
	in, srv := start(t)
	const to = "moved@example.com"
	id := kill(t, in, srv, to, 550)
	srv.ClearFaults()
	if r := in.Do(t, http.MethodPost, "/api/dead-letters/"+id+"/replay", nil); r.Status != http.StatusAccepted {
		t.Fatalf("replay: %d %s", r.Status, r.Body)
	}
	again := parked(t, in, id, 1)
	if srv.Attempts(to) != 1 || len(again.Recipients) != 1 || again.Recipients[0].Status != "suppressed" {
		t.Fatalf("replay of a hard bounce: %d RCPTs in all, letter %+v; want it suppressed without a try", srv.Attempts(to), again)
	}
	if r := in.Do(t, http.MethodDelete, "/api/suppressions/"+to, nil); r.Status != http.StatusNoContent {
		t.Fatalf("DELETE /api/suppressions/%s: %d %s", to, r.Status, r.Body)
	}
	if r := in.Do(t, http.MethodPost, "/api/dead-letters/"+again.ID+"/replay", nil); r.Status != http.StatusAccepted {
		t.Fatalf("second replay: %d %s", r.Status, r.Body)
	}
	in.WaitForStatus(t, id, "sent", wait)
	if len(srv.MessagesTo(to)) != 1 {
		t.Errorf("%d copies after the suppression was removed and the email replayed, want 1", len(srv.MessagesTo(to)))
	}
}

func TestReplayOfAStillFailingEmailParksItAgain(t *testing.T) {
	in, srv := start(t)
	const to = "still-busy@example.com"
	id := kill(t, in, srv, to, 451)

	// Named by the letter's own id, the replay answers with the email's.
	first := parked(t, in, id, 0)
	r := in.Do(t, http.MethodPost, "/api/dead-letters/"+first.ID+"/replay", nil)
	var answer struct {
		EmailID string `json:"email_id"`
	}
	r.JSON(t, &answer)
	if r.Status != http.StatusAccepted || answer.EmailID != id {
		t.Fatalf("replay of %s: %d %s, want 202 naming email %s", first.ID, r.Status, r.Body, id)
	}
	l := parked(t, in, id, 1)
	if l.Attempts != maxAttempts || l.ErrorClass != "transient_exhausted" {
		t.Errorf("second letter %+v: want %d attempts (a fresh count), transient_exhausted", l, maxAttempts)
	}
	if n := srv.Attempts(to); n != 2*maxAttempts {
		t.Errorf("%d attempts in all, want %d: max_attempts before and after the replay", n, 2*maxAttempts)
	}
	e := in.WaitForStatus(t, id, "dead", wait)
	if !hasEvent(e, "replayed") {
		t.Errorf("timeline without replayed: %+v", e.Events)
	}
	if p := list(t, in, nil); len(p.Items) != 1 {
		t.Errorf("%d parked letters, want only the latest: %+v", len(p.Items), p.Items)
	}
}

func TestDiscardKeepsTheEmailDead(t *testing.T) {
	in, srv := start(t)
	id := kill(t, in, srv, "unwanted@example.com", 550)

	// Discarded by the letter's own id (the email id names it as well).
	before := list(t, in, nil).Items
	if len(before) != 1 || before[0].EmailID != id || before[0].ID == "" || before[0].ID == id {
		t.Fatalf("parked letters %+v, want one of %s with an id of its own", before, id)
	}
	r := in.Do(t, http.MethodDelete, "/api/dead-letters/"+before[0].ID, nil)
	if r.Status != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", r.Status, r.Body)
	}
	var e apptest.Email
	apptest.Eventually(t, wait, func() bool { e = in.Get(t, id); return hasEvent(e, "discarded") },
		func() string { return fmt.Sprintf("a discarded event in %+v", e.Events) })
	if e.Status != "dead" {
		t.Errorf("a discarded email is %s, want dead", e.Status)
	}
	if p := list(t, in, nil); len(p.Items) != 0 {
		t.Errorf("parked letters after the discard: %+v", p.Items)
	}
	discarded := list(t, in, url.Values{"status": {"discarded"}}).Items
	if len(discarded) != 1 || discarded[0].EmailID != id || discarded[0].ResolvedAt == nil {
		t.Errorf("discarded letters %+v, want the one of %s with resolved_at", discarded, id)
	}

	for _, req := range []struct {
		method, path string
		status       int
		code         string
	}{
		{http.MethodDelete, "/api/dead-letters/" + id, http.StatusConflict, "conflict"},
		{http.MethodPost, "/api/dead-letters/" + id + "/replay", http.StatusConflict, "conflict"},
		{http.MethodDelete, "/api/dead-letters/no-such-email", http.StatusNotFound, "not_found"},
		{http.MethodGet, "/api/dead-letters/letter-999999", http.StatusNotFound, "not_found"},
	} {
		r := in.Do(t, req.method, req.path, nil)
		var body errorBody
		r.JSON(t, &body)
		if r.Status != req.status || body.Error.Code != req.code {
			t.Errorf("%s %s: %d %s, want %d %s", req.method, req.path, r.Status, r.Body, req.status, req.code)
		}
	}
	if srv.Attempts("unwanted@example.com") != 1 {
		t.Errorf("a discarded email was tried again")
	}
}

func TestBulkReplayReplaysEveryMatchAndCountsThem(t *testing.T) {
	in, srv := start(t)
	var lost, refused []string
	for i := range 3 {
		lost = append(lost, kill(t, in, srv, fmt.Sprintf("lost%d@example.com", i), 554))
	}
	for i := range 2 {
		refused = append(refused, kill(t, in, srv, fmt.Sprintf("refused%d@example.com", i), 553))
	}
	srv.ClearFaults()

	tests := []struct {
		name string
		body string
		want int
	}{
		{"a filter in the future matches nothing", `{"since": "` + time.Now().Add(time.Hour).UTC().Format(time.RFC3339) + `"}`, 0},
		{"reason_contains replays only the matching letters", `{"reason_contains": "` + byPolicy + `"}`, len(lost)},
		{"the same filter again finds nothing left to replay", `{"reason_contains": "` + byPolicy + `"}`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := in.Do(t, http.MethodPost, "/api/dead-letters/replay", []byte(tt.body))
			var out struct{ Replayed *int }
			r.JSON(t, &out)
			if r.Status != http.StatusOK || out.Replayed == nil || *out.Replayed != tt.want {
				t.Fatalf("POST /api/dead-letters/replay %s: %d %s; want 200 with replayed %d", tt.body, r.Status, r.Body, tt.want)
			}
		})
	}
	for _, id := range lost {
		in.WaitForStatus(t, id, "sent", wait)
	}
	if got := emailIDs(list(t, in, nil).Items); !slices.Equal(got, sorted(refused...)) {
		t.Errorf("still parked %v, want the refused ones %v", got, refused)
	}
	for _, id := range refused {
		if e := in.Get(t, id); e.Status != "dead" {
			t.Errorf("email %s outside the filter is %s, want dead", id, e.Status)
		}
	}

	bad := []struct{ name, body, field string }{
		{"an unknown field is refused", `{"reason": "x"}`, "reason"},
		{"a since that is not RFC 3339 is refused", `{"since": "last week"}`, "since"},
		{"an until equal to since is refused", `{"since": "2026-01-01T09:00:00Z", "until": "2026-01-01T18:00:00+09:00"}`, "until"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			r := in.Do(t, http.MethodPost, "/api/dead-letters/replay", []byte(tt.body))
			var body errorBody
			r.JSON(t, &body)
			if r.Status != http.StatusBadRequest || body.Error.Field != tt.field {
				t.Errorf("%s: %d %s, want 400 on %s", tt.body, r.Status, r.Body, tt.field)
			}
		})
	}
}

// replayed is the answer of POST /api/dead-letters/replay.
type replayed struct {
	Replayed *int `json:"replayed"`
	Skipped  []struct {
		ID     string `json:"id"`
		Reason string `json:"reason"`
	} `json:"skipped"`
}

func TestReplayOfChosenLettersReplaysThemAndReportsThoseItCouldNot(t *testing.T) {
	in, srv := start(t)
	var ids []string
	for i := range 4 {
		ids = append(ids, kill(t, in, srv, fmt.Sprintf("chosen%d@example.com", i), 554))
	}
	srv.ClearFaults()
	byLetter := parked(t, in, ids[0], 0).ID // named by its own id; the others by their email's
	if r := in.Do(t, http.MethodDelete, "/api/dead-letters/"+ids[2], nil); r.Status != http.StatusNoContent {
		t.Fatalf("discard %s: %d %s", ids[2], r.Status, r.Body)
	}

	body := map[string]any{"ids": []string{byLetter, ids[1], ids[2], "letter-999999", ids[0]}}
	r := in.Do(t, http.MethodPost, "/api/dead-letters/replay", body)
	var out replayed
	r.JSON(t, &out)
	if r.Status != http.StatusOK || out.Replayed == nil || *out.Replayed != 2 {
		t.Fatalf("replay of %v: %d %s; want 200 with replayed 2", body["ids"], r.Status, r.Body)
	}
	wantSkipped := []struct{ id, says string }{
		{ids[2], "was discarded"}, {"letter-999999", "not found"}, {ids[0], "the same dead letter as " + byLetter}}
	if len(out.Skipped) != len(wantSkipped) {
		t.Fatalf("skipped %+v, want %d in the order named", out.Skipped, len(wantSkipped))
	}
	for i, w := range wantSkipped {
		if got := out.Skipped[i]; got.ID != w.id || !strings.Contains(got.Reason, w.says) {
			t.Errorf("skipped[%d] = %+v, want %s saying %q", i, got, w.id, w.says)
		}
	}
	in.WaitForStatus(t, ids[0], "sent", wait)
	in.WaitForStatus(t, ids[1], "sent", wait)
	if got := emailIDs(list(t, in, nil).Items); !slices.Equal(got, []string{ids[3]}) {
		t.Errorf("still parked %v, want only the one not chosen, %s", got, ids[3])
	}
	if e := in.Get(t, ids[2]); e.Status != "dead" {
		t.Errorf("the discarded email is %s, want dead", e.Status)
	}

	r = in.Do(t, http.MethodPost, "/api/dead-letters/replay", map[string]any{"ids": []string{ids[1]}})
	out = replayed{}
	r.JSON(t, &out)
	if r.Status != http.StatusOK || *out.Replayed != 0 || len(out.Skipped) != 1 || !strings.Contains(out.Skipped[0].Reason, "was replayed") {
		t.Errorf("replaying a replayed letter again: %d %s; want 200, replayed 0 and it skipped as replayed", r.Status, r.Body)
	}
}

func TestReplayOfChosenLettersRefusesABadListNamingTheField(t *testing.T) {
	in, srv := start(t)
	id := kill(t, in, srv, "kept@example.com", 554)
	tooMany := make([]string, 501)
	for i := range tooMany {
		tooMany[i] = fmt.Sprintf("letter-%d", i+1)
	}
	for _, tt := range []struct {
		name  string
		body  any
		field string
	}{
		{"an empty list", map[string]any{"ids": []string{}}, "ids"},
		{"more than 500", map[string]any{"ids": tooMany}, "ids"},
		{"an empty id", map[string]any{"ids": []string{id, " "}}, "ids[1]"},
		{"an id named twice", map[string]any{"ids": []string{id, "letter-1", id}}, "ids[2]"},
		{"ids that are not strings", map[string]any{"ids": []int{1}}, "ids[0]"},
		{"ids that are not a list", map[string]any{"ids": id}, "ids"},
		{"ids with a reason", map[string]any{"ids": []string{id}, "reason_contains": "554"}, "reason_contains"},
		{"ids with a time", map[string]any{"ids": []string{id}, "since": "2026-01-01T00:00:00Z"}, "since"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := in.Do(t, http.MethodPost, "/api/dead-letters/replay", tt.body)
			var body errorBody
			r.JSON(t, &body)
			if r.Status != http.StatusBadRequest || body.Error.Field != tt.field {
				t.Errorf("%d %s, want 400 naming %s", r.Status, r.Body, tt.field)
			}
		})
	}
	if got := emailIDs(list(t, in, nil).Items); !slices.Equal(got, []string{id}) {
		t.Errorf("parked after refused replays: %v, want %s untouched", got, id)
	}
}

// TestCLIReplaysAndDiscardsAgainstTheSameDatabase takes the path of `mailroom dlt`:
// a second handle on the running app's database file and the module's exported
// List, Replay and Discard. The running app's outbox relay publishes the replay.
func TestCLIReplaysAndDiscardsAgainstTheSameDatabase(t *testing.T) {
	in, srv := start(t)
	replayID := kill(t, in, srv, "cli-replay@example.com", 554)
	discardID := kill(t, in, srv, "cli-discard@example.com", 554)
	srv.ClearFaults()

	ctx := context.Background()
	cli := openCLI(t, in.Config)
	letters, err := cli.List(ctx, byPolicy, "", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, l := range letters {
		ids = append(ids, l.EmailID)
		if l.Reason == "" || l.Attempts != 1 || l.ErrorClass != "permanent" {
			t.Errorf("CLI letter %+v: want a reason, 1 attempt, permanent", l)
		}
	}
	if got, want := sorted(ids...), sorted(replayID, discardID); !slices.Equal(got, want) {
		t.Fatalf("CLI lists %v, want %v", got, want)
	}

	if err := cli.Replay(ctx, replayID); err != nil {
		t.Fatalf("CLI replay: %v", err)
	}
	if err := cli.Discard(ctx, discardID); err != nil {
		t.Fatalf("CLI discard: %v", err)
	}
	in.WaitForStatus(t, replayID, "sent", wait)
	if len(srv.MessagesTo("cli-replay@example.com")) != 1 {
		t.Errorf("the CLI replay was not delivered once")
	}
	var e apptest.Email
	apptest.Eventually(t, wait, func() bool { e = in.Get(t, discardID); return hasEvent(e, "discarded") },
		func() string { return fmt.Sprintf("a discarded event in %+v", e.Events) })
	if e.Status != "dead" {
		t.Errorf("email discarded from the CLI is %s, want dead", e.Status)
	}
	if err := cli.Replay(ctx, discardID); err == nil {
		t.Errorf("CLI replay of a discarded letter succeeded")
	}
	if left, err := cli.List(ctx, "", "", "", 100); err != nil || len(left) != 0 {
		t.Errorf("CLI lists %+v, %v after replay and discard; want nothing parked", left, err)
	}
	if _, err := cli.List(ctx, "", "not-a-time", "", 100); err == nil {
		t.Errorf("CLI list with a bad --since succeeded")
	}
}

// openCLI builds the deadletters module the way `mailroom dlt` does.
func openCLI(t *testing.T, cfg *config.Config) *deadletters.Module {
	t.Helper()
	db, err := app.OpenDatabase(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	id, err := db.InstanceID(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return deadletters.New(app.DeadLettersConfig(cfg, id), db, outbox.New(), logging.Discard())
}

func TestTheListRefusesAQueryParameterItDoesNotTakeNamingIt(t *testing.T) {
	in, srv := start(t)
	refused := kill(t, in, srv, "refused@example.com", 550)
	kill(t, in, srv, "renamed@example.com", 553)

	for _, tt := range []struct{ query, field, says string }{
		{"to=x", "to", "unknown query parameter; this route takes status, reason_contains, since, until, limit, cursor, include_total"},
		{"reason=550", "reason", "unknown query parameter"},
		{"email_id=" + refused, "email_id", "unknown query parameter"},
		{"reason_contains=550&reason_contains=553", "reason_contains", "given 2 times"},
	} {
		r := in.Do(t, http.MethodGet, "/api/dead-letters?"+tt.query, nil)
		var body errorBody
		r.JSON(t, &body)
		if r.Status != http.StatusBadRequest || body.Error.Code != "invalid_field" || body.Error.Field != tt.field ||
			!strings.Contains(body.Error.Message, tt.says) {
			t.Errorf("GET ?%s: %d %s; want 400 invalid_field on %s saying %q", tt.query, r.Status, r.Body, tt.field, tt.says)
		}
	}

	p := list(t, in, url.Values{"status": {"parked"}, "reason_contains": {noSuchUser}, "since": {"2000-01-01T00:00:00Z"},
		"until": {"2999-01-01T00:00:00Z"}, "limit": {"10"}, "cursor": {""}})
	if got := emailIDs(p.Items); !slices.Equal(got, []string{refused}) {
		t.Errorf("the documented parameters listed %v, want only %s", got, refused)
	}
}
