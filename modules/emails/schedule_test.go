package emails_test

import (
	"net/http"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/mailroom/mailroom/app/apptest"
)

// scheduledEmail is the part of an email the cancel and reschedule tests read.
type scheduledEmail struct {
	ID     string     `json:"id"`
	Status string     `json:"status"`
	SendAt *time.Time `json:"send_at"`
	SentAt *time.Time `json:"sent_at"`
	Events []struct {
		Type   string    `json:"type"`
		At     time.Time `json:"at"`
		Detail string    `json:"detail"`
	} `json:"events"`
}

func (e scheduledEmail) eventTypes() []string {
	var out []string
	for _, ev := range e.Events {
		out = append(out, ev.Type)
	}
	return out
}

// schedule sends an email due at at and returns its id.
func schedule(t *testing.T, in *apptest.Instance, at time.Time, headers ...string) string {
	t.Helper()
	return in.Send(t, body(map[string]any{"send_at": at.UTC().Format(time.RFC3339Nano)}), headers...)
}

// getScheduled reads an email as the admin.
func getScheduled(t *testing.T, in *apptest.Instance, id string) scheduledEmail {
	t.Helper()
	r := in.Do(t, http.MethodGet, "/api/emails/"+id, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /api/emails/%s: %d %s", id, r.Status, r.Body)
	}
	var e scheduledEmail
	r.JSON(t, &e)
	return e
}

func cancel(t *testing.T, in *apptest.Instance, id string, headers ...string) apptest.Response {
	t.Helper()
	return in.Do(t, http.MethodPost, "/api/emails/"+id+"/cancel", nil, headers...)
}

func reschedule(t *testing.T, in *apptest.Instance, id string, req any, headers ...string) apptest.Response {
	t.Helper()
	return in.Do(t, http.MethodPatch, "/api/emails/"+id, req, headers...)
}

// sendKey creates a send-scope API key and returns it.
func sendKey(t *testing.T, in *apptest.Instance, name string) string {
	t.Helper()
	r := in.Do(t, http.MethodPost, "/api/keys", map[string]string{"name": name, "scope": "send"})
	if r.Status != http.StatusCreated {
		t.Fatalf("POST /api/keys: %d %s", r.Status, r.Body)
	}
	var out struct{ Key string }
	r.JSON(t, &out)
	return out.Key
}

// wantConflict fails unless r is a 409 whose message matches pattern.
func wantConflict(t *testing.T, r apptest.Response, pattern string) {
	t.Helper()
	if r.Status != http.StatusConflict {
		t.Fatalf("answered %d %s, want 409", r.Status, r.Body)
	}
	b := decodeError(t, r)
	if b.Error.Code != "conflict" || !regexp.MustCompile(pattern).MatchString(b.Error.Message) {
		t.Fatalf("answered %s, want code conflict and a message matching %q", r.Body, pattern)
	}
}

func TestACancelledEmailIsAnsweredCancelledAndNeverSent(t *testing.T) {
	in := start(t)
	sendAt := time.Now().Add(3 * time.Second)
	cancelled, control := schedule(t, in, sendAt), schedule(t, in, sendAt)

	r := cancel(t, in, cancelled)
	if r.Status != http.StatusOK {
		t.Fatalf("POST /cancel: %d %s, want 200", r.Status, r.Body)
	}
	var answered scheduledEmail
	r.JSON(t, &answered)
	if answered.ID != cancelled || answered.Status != "cancelled" {
		t.Fatalf("cancel answered %s, want the email, cancelled", r.Body)
	}
	if got := answered.eventTypes(); !slices.Equal(got, []string{"accepted", "scheduled", "cancelled"}) {
		t.Errorf("timeline %v, want accepted, scheduled then cancelled", got)
	}

	// The control email, due at the same time, is sent: the cancelled one's
	// SendEmail would have left with it.
	in.WaitForStatus(t, control, "sent", wait)
	e := getScheduled(t, in, cancelled)
	if e.Status != "cancelled" || slices.Contains(e.eventTypes(), "published") || e.SentAt != nil {
		t.Fatalf("after its send_at the cancelled email is %s with timeline %v, want cancelled and never published",
			e.Status, e.eventTypes())
	}
	listed := listEmails(t, in, map[string][]string{"status": {"cancelled"}})
	if len(listed.Items) != 1 || listed.Items[0].ID != cancelled {
		t.Errorf("?status=cancelled lists %+v, want only %s", listed.Items, cancelled)
	}
}

func TestOnlyAScheduledEmailCanBeCancelledOrRescheduled(t *testing.T) {
	in := start(t)
	later := time.Now().Add(time.Hour)

	t.Run("cancel twice", func(t *testing.T) {
		id := schedule(t, in, later)
		if r := cancel(t, in, id); r.Status != http.StatusOK {
			t.Fatalf("first cancel: %d %s", r.Status, r.Body)
		}
		wantConflict(t, cancel(t, in, id), `^email is cancelled; only a scheduled email can be cancelled$`)
		wantConflict(t, reschedule(t, in, id, map[string]string{"send_at": later.Format(time.RFC3339)}),
			`^email is cancelled; only a scheduled email can be rescheduled$`)
	})
	t.Run("an email sent at once, queued or sent by now", func(t *testing.T) {
		id := in.Send(t, body(nil))
		wantConflict(t, cancel(t, in, id), `^email is (queued|sent); only a scheduled email can be cancelled$`)
		in.WaitForStatus(t, id, "sent", wait)
		wantConflict(t, cancel(t, in, id), `^email is sent; only a scheduled email can be cancelled$`)
		wantConflict(t, reschedule(t, in, id, map[string]string{"send_at": later.Format(time.RFC3339)}),
			`^email is sent; only a scheduled email can be rescheduled$`)
	})
	t.Run("a scheduled email whose send_at is within the margin", func(t *testing.T) {
		// Scheduled 400 ms ahead: its SendEmail may be on its way out by the time
		// the cancel is checked, so the cancel refuses whichever state it finds.
		id := schedule(t, in, time.Now().Add(400*time.Millisecond))
		wantConflict(t, cancel(t, in, id), `^(too late: it is being sent .*|email is (queued|sent); only a scheduled email can be cancelled)$`)
		wantConflict(t, reschedule(t, in, id, map[string]string{"send_at": later.Format(time.RFC3339)}),
			`^(too late: it is being sent .*|email is (queued|sent); only a scheduled email can be rescheduled)$`)
		in.WaitForStatus(t, id, "sent", wait)
	})
	t.Run("an unknown email", func(t *testing.T) {
		unknown := "0198a1b2-0000-7000-8000-000000000000"
		for _, r := range []apptest.Response{cancel(t, in, unknown),
			reschedule(t, in, unknown, map[string]string{"send_at": later.Format(time.RFC3339)})} {
			if r.Status != http.StatusNotFound || decodeError(t, r).Error.Code != "not_found" {
				t.Errorf("answered %d %s, want 404 not_found", r.Status, r.Body)
			}
		}
	})
}

func TestARescheduledEmailIsSentAtItsNewTime(t *testing.T) {
	in := start(t)
	id := schedule(t, in, time.Now().Add(time.Hour))
	newAt := time.Now().Add(2 * time.Second).UTC().Truncate(time.Millisecond)
	r := reschedule(t, in, id, map[string]string{"send_at": newAt.Format(time.RFC3339Nano)})
	if r.Status != http.StatusOK {
		t.Fatalf("PATCH: %d %s, want 200", r.Status, r.Body)
	}
	var answered scheduledEmail
	r.JSON(t, &answered)
	if answered.Status != "scheduled" || answered.SendAt == nil || !answered.SendAt.Equal(newAt) {
		t.Fatalf("PATCH answered %s, want the email scheduled for %s", r.Body, newAt)
	}
	last := answered.Events[len(answered.Events)-1]
	if last.Type != "scheduled" || last.Detail != newAt.Format(time.RFC3339Nano) {
		t.Errorf("last timeline entry %+v, want scheduled with the new time", last)
	}

	in.WaitForStatus(t, id, "sent", wait)
	e := getScheduled(t, in, id)
	if e.SentAt == nil || e.SentAt.Before(newAt) {
		t.Errorf("sent at %v, before its new send_at %s", e.SentAt, newAt)
	}
}

func TestABadRescheduleIsRefusedNamingTheField(t *testing.T) {
	in := start(t)
	id := schedule(t, in, time.Now().Add(time.Hour))
	for _, tt := range []struct {
		name  string
		body  any
		field string
	}{
		{"a send_at in the past", map[string]string{"send_at": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)}, "send_at"},
		{"a send_at more than a year ahead", map[string]string{"send_at": time.Now().Add(400 * 24 * time.Hour).UTC().Format(time.RFC3339)}, "send_at"},
		{"a send_at that is not a time", map[string]string{"send_at": "tomorrow"}, "send_at"},
		{"no send_at", map[string]string{}, "send_at"},
		{"an unknown field", map[string]string{"send_at": time.Now().Add(2 * time.Hour).UTC().Format(time.RFC3339), "subject": "new"}, "subject"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := reschedule(t, in, id, tt.body)
			if r.Status != http.StatusBadRequest {
				t.Fatalf("PATCH: %d %s, want 400", r.Status, r.Body)
			}
			if got := field(decodeError(t, r)); got != tt.field {
				t.Errorf("PATCH: %s, want field %q", r.Body, tt.field)
			}
		})
	}
	if e := getScheduled(t, in, id); e.Status != "scheduled" || len(e.Events) != 2 {
		t.Errorf("after refused reschedules the email is %s with timeline %v, want scheduled and untouched", e.Status, e.eventTypes())
	}
}

func TestASendKeyCancelsAndReschedulesOnlyItsOwnEmails(t *testing.T) {
	in := start(t)
	alice, bob := sendKey(t, in, "alice"), sendKey(t, in, "bob")
	later := time.Now().Add(time.Hour)
	alices := schedule(t, in, later, apptest.Bearer(alice)...)
	move := map[string]string{"send_at": later.Add(time.Hour).UTC().Format(time.RFC3339)}

	for name, r := range map[string]apptest.Response{
		"cancel":     cancel(t, in, alices, apptest.Bearer(bob)...),
		"reschedule": reschedule(t, in, alices, move, apptest.Bearer(bob)...),
	} {
		if r.Status != http.StatusNotFound || decodeError(t, r).Error.Code != "not_found" {
			t.Errorf("bob's %s of alice's email: %d %s, want 404 not_found", name, r.Status, r.Body)
		}
	}
	if e := getScheduled(t, in, alices); e.Status != "scheduled" || len(e.Events) != 2 {
		t.Fatalf("after bob's tries alice's email is %s with timeline %v, want untouched", e.Status, e.eventTypes())
	}
	if r := reschedule(t, in, alices, move, apptest.Bearer(alice)...); r.Status != http.StatusOK {
		t.Errorf("alice's reschedule: %d %s, want 200", r.Status, r.Body)
	}
	if r := cancel(t, in, alices, apptest.Bearer(alice)...); r.Status != http.StatusOK {
		t.Errorf("alice's cancel: %d %s, want 200", r.Status, r.Body)
	}
}
