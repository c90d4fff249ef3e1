package app_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/modules/emails/contract"
	"github.com/mailroom/mailroom/platform/testkit/smtptest"
)

// eventPage is GET /api/events' answer.
type eventPage struct {
	Items      []contract.Event `json:"items"`
	NextCursor string           `json:"next_cursor"`
}

// events reads one page of the feed.
func events(t *testing.T, in *apptest.Instance, query string, headers ...string) eventPage {
	t.Helper()
	r := in.Do(t, http.MethodGet, "/api/events"+query, nil, headers...)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /api/events%s: %d %s", query, r.Status, r.Body)
	}
	var p eventPage
	r.JSON(t, &p)
	return p
}

// typesOf lists the events' types, in order.
func typesOf(evs []contract.Event) []string {
	out := make([]string, 0, len(evs))
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

// TestTheEventFeedTellsEachRecipientsFateInOrder sends one email to a recipient
// who gets it and one whose server refuses it for good, and reads the feed: the
// email's events come oldest first, each per-recipient one naming its address and
// the server's reply, each with the email's tags and metadata, and paging with a
// cursor of one event at a time reads the same events.
func TestTheEventFeedTellsEachRecipientsFateInOrder(t *testing.T) {
	srv := smtptest.Start(t)
	srv.FailRecipient("gone@example.com", 550, -1)
	cfg := apptest.Config(t)
	apptest.UseSMTP(cfg, srv)
	in := apptest.Start(t, cfg)

	email := apptest.NewEmail("jane@example.com")
	email["cc"] = []string{"gone@example.com"}
	email["tags"] = []string{"receipt"}
	email["metadata"] = map[string]string{"order": "42"}
	id := in.Send(t, email)
	in.WaitForStatus(t, id, "sent", 10*time.Second)

	var page eventPage
	apptest.Eventually(t, 10*time.Second, func() bool {
		page = events(t, in, "?email_id="+id)
		return slices.Contains(typesOf(page.Items), contract.EventSent)
	}, func() string { return "the feed has no email.sent: " + strings.Join(typesOf(page.Items), ", ") })

	want := []string{contract.EventAccepted, contract.EventDelivered, contract.EventBounced, contract.EventSent}
	if got := typesOf(page.Items); !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
	ids := map[string]bool{}
	for _, ev := range page.Items {
		if ev.Data.EmailID != id || ev.Version != contract.SchemaVersion || ev.Timestamp.IsZero() || ids[ev.ID] {
			t.Errorf("event %+v: want email %s, version %d, a time and an id of its own", ev, id, contract.SchemaVersion)
		}
		ids[ev.ID] = true
		if !slices.Equal(ev.Data.Tags, []string{"receipt"}) || ev.Data.Metadata["order"] != "42" {
			t.Errorf("%s carries tags %v and metadata %v, want the email's", ev.Type, ev.Data.Tags, ev.Data.Metadata)
		}
	}
	if d := page.Items[1].Data; d.Recipient != "jane@example.com" || !strings.HasPrefix(d.Detail, "250") {
		t.Errorf("email.delivered data = %+v, want jane@example.com and the 250 reply", d)
	}
	if d := page.Items[2].Data; d.Recipient != "gone@example.com" || !strings.HasPrefix(d.Detail, "550") {
		t.Errorf("email.bounced data = %+v, want gone@example.com and the 550 reply", d)
	}

	// One at a time, from the start, with the cursor each page hands out.
	var paged []contract.Event
	after := ""
	for range 10 {
		p := events(t, in, "?limit=1&email_id="+id+after)
		if len(p.Items) == 0 {
			if "&after="+p.NextCursor != after {
				t.Errorf("an empty page's next_cursor is %q, want the one asked with (%s)", p.NextCursor, after)
			}
			break
		}
		paged = append(paged, p.Items...)
		after = "&after=" + p.NextCursor
	}
	if !slices.EqualFunc(paged, page.Items, func(a, b contract.Event) bool { return a.ID == b.ID }) {
		t.Errorf("paging one by one read %v, want %v", typesOf(paged), typesOf(page.Items))
	}

	bounced := events(t, in, "?type=email.bounced")
	if len(bounced.Items) != 1 || bounced.Items[0].ID != page.Items[2].ID {
		t.Errorf("?type=email.bounced = %v, want the one bounce", typesOf(bounced.Items))
	}
}

// TestAScheduledEmailsEventsSayUntilWhen schedules an email, moves it and cancels
// it: the feed has email.accepted, email.scheduled with the time asked for,
// email.scheduled again with the new time, then email.cancelled.
func TestAScheduledEmailsEventsSayUntilWhen(t *testing.T) {
	in := apptest.Start(t, apptest.Config(t))
	at := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	email := apptest.NewEmail("later@example.com")
	email["send_at"] = at.Format(time.RFC3339)
	id := in.Send(t, email)
	page := events(t, in, "?email_id="+id)
	if got := typesOf(page.Items); !slices.Equal(got, []string{contract.EventAccepted, contract.EventScheduled}) {
		t.Fatalf("events = %v, want accepted then scheduled", got)
	}
	if s := page.Items[1].Data.SendAt; s == nil || !s.Equal(at) {
		t.Errorf("email.scheduled send_at = %v, want %s", s, at)
	}

	moved := at.Add(time.Hour)
	if r := in.Do(t, http.MethodPatch, "/api/emails/"+id, map[string]string{"send_at": moved.Format(time.RFC3339)}); r.Status != http.StatusOK {
		t.Fatalf("PATCH: %d %s", r.Status, r.Body)
	}
	if r := in.Do(t, http.MethodPost, "/api/emails/"+id+"/cancel", nil); r.Status != http.StatusOK {
		t.Fatalf("cancel: %d %s", r.Status, r.Body)
	}
	page = events(t, in, "?email_id="+id+"&after="+page.NextCursor)
	if got := typesOf(page.Items); !slices.Equal(got, []string{contract.EventScheduled, contract.EventCancelled}) {
		t.Fatalf("events after a move and a cancel = %v, want scheduled then cancelled", got)
	}
	if s := page.Items[0].Data.SendAt; s == nil || !s.Equal(moved) {
		t.Errorf("the second email.scheduled's send_at = %v, want %s", s, moved)
	}
}

// TestASendKeyReadsOnlyItsOwnEmailsEvents gives two send keys an email each: each
// key's feed holds its own email's events and none of the other's; an admin's holds
// both.
func TestASendKeyReadsOnlyItsOwnEmailsEvents(t *testing.T) {
	in := apptest.Start(t, apptest.Config(t))
	_, alice := createKey(t, in, "alice", "send")
	_, bob := createKey(t, in, "bob", "send")
	aliceID := in.Send(t, apptest.NewEmail("a@example.com"), apptest.Bearer(alice)...)
	bobID := in.Send(t, apptest.NewEmail("b@example.com"), apptest.Bearer(bob)...)
	emailsOf := func(p eventPage) map[string]bool {
		out := map[string]bool{}
		for _, ev := range p.Items {
			out[ev.Data.EmailID] = true
		}
		return out
	}
	if got := emailsOf(events(t, in, "", apptest.Bearer(alice)...)); !got[aliceID] || got[bobID] {
		t.Errorf("alice's feed has events of %v, want hers only", got)
	}
	if got := emailsOf(events(t, in, "")); !got[aliceID] || !got[bobID] {
		t.Errorf("the admin's feed has events of %v, want both", got)
	}
}

// TestTheEventFeedRefusesWhatItCannotAnswer: a query the feed would misread is a
// 400 naming the parameter.
func TestTheEventFeedRefusesWhatItCannotAnswer(t *testing.T) {
	in := apptest.Start(t, apptest.Config(t))
	for query, field := range map[string]string{
		"?after=-1":            "after",
		"?after=01":            "after",
		"?after=next":          "after",
		"?type=email.opened":   "type",
		"?email_id=not-an-id":  "email_id",
		"?limit=501":           "limit",
		"?since=2026-01-01":    "since",
		"?type=a&type=b":       "type",
		"?after=1&after=2":     "after",
		"?email_id=&limit=ten": "limit",
		"?status=sent":         "status",
	} {
		r := in.Do(t, http.MethodGet, "/api/events"+query, nil)
		var b struct {
			Error struct{ Code, Field, Message string } `json:"error"`
		}
		_ = json.Unmarshal(r.Body, &b)
		if r.Status != http.StatusBadRequest || b.Error.Field != field {
			t.Errorf("GET /api/events%s = %d %s, want 400 naming %s", query, r.Status, r.Body, field)
		}
	}
}
