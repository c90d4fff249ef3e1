package app_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/app/internal/e2e"
)

// TestScheduledRetryAndSendSurviveKill9: a retry waiting for its due time and an
// email scheduled with send_at are both outbox rows due later, so a kill -9 while
// they wait loses neither. After a restart the retry is tried (a second attempt,
// then sent) and the scheduled email goes out, not before its send_at.
func TestScheduledRetryAndSendSurviveKill9(t *testing.T) {
	t.Parallel()
	rig := e2e.NewRig(t, "",
		"MAILROOM_RETRY_INITIAL_INTERVAL=4s",
		"MAILROOM_RETRY_MAX_ATTEMPTS=3",
	)
	srv, base := rig.SMTP, rig.Base
	start := func() *e2e.Process {
		t.Helper()
		return rig.Serve(t, context.Background())
	}
	get := func(id string) apptest.Email {
		t.Helper()
		r := apptest.Do(t, base, http.MethodGet, "/api/emails/"+id, nil)
		var e apptest.Email
		r.JSON(t, &e)
		return e
	}
	send := func(body map[string]any) string {
		t.Helper()
		r := apptest.Do(t, base, http.MethodPost, "/api/emails", body)
		if r.Status != http.StatusAccepted {
			t.Fatalf("POST: %d %s", r.Status, r.Body)
		}
		var acc struct{ ID string }
		r.JSON(t, &acc)
		return acc.ID
	}

	proc := start()
	srv.FailRecipient("retry@example.com", 451, 1)
	retryID := send(apptest.NewEmail("retry@example.com"))
	sendAt := time.Now().Add(4 * time.Second).UTC().Truncate(time.Second).Add(time.Second)
	scheduled := apptest.NewEmail("later@example.com")
	scheduled["send_at"] = sendAt.Format(time.RFC3339)
	laterID := send(scheduled)

	apptest.Eventually(t, 30*time.Second, func() bool { return get(retryID).Status == "retrying" },
		func() string { return "first attempt failed and a retry is scheduled" })
	if st := get(laterID).Status; st != "scheduled" {
		t.Fatalf("scheduled email is %q before the kill", st)
	}
	proc.Kill()
	if time.Now().After(sendAt) {
		t.Fatalf("the kill came after send_at; the test proves nothing")
	}
	start()

	apptest.Eventually(t, 60*time.Second, func() bool {
		return get(retryID).Status == "sent" && get(laterID).Status == "sent"
	}, func() string { return "both emails sent after the restart" })
	if got := srv.Attempts("retry@example.com"); got != 2 {
		t.Errorf("the retried email was tried %d times, want 2 (one before the kill, one after)", got)
	}
	msgs := srv.MessagesTo("later@example.com")
	if len(msgs) != 1 {
		t.Fatalf("scheduled email arrived %d times, want once", len(msgs))
	}
	if msgs[0].Received.Before(sendAt) {
		t.Errorf("scheduled email arrived at %s, before its send_at %s", msgs[0].Received, sendAt)
	}
}

// TestCancelAndRescheduleSurviveKill9: a cancel and a reschedule are answered only
// once committed, outbox row and email together, so a kill -9 right after the
// answers loses neither. After a restart on the same database the cancelled email
// stays cancelled and is never sent, though a control email due at its old send_at
// goes out, and the rescheduled one goes out at its new time, not its old one an
// hour away.
func TestCancelAndRescheduleSurviveKill9(t *testing.T) {
	t.Parallel()
	rig := e2e.NewRig(t, "")
	srv, base := rig.SMTP, rig.Base
	do := func(method, path string, body any) apptest.Response {
		t.Helper()
		return apptest.Do(t, base, method, path, body)
	}
	get := func(id string) apptest.Email {
		t.Helper()
		var e apptest.Email
		do(http.MethodGet, "/api/emails/"+id, nil).JSON(t, &e)
		return e
	}
	schedule := func(to string, at time.Time) string {
		t.Helper()
		body := apptest.NewEmail(to)
		body["send_at"] = at.UTC().Format(time.RFC3339Nano)
		r := do(http.MethodPost, "/api/emails", body)
		if r.Status != http.StatusAccepted {
			t.Fatalf("POST: %d %s", r.Status, r.Body)
		}
		var acc struct{ ID string }
		r.JSON(t, &acc)
		return acc.ID
	}

	proc := rig.Serve(t, context.Background())
	oldAt := time.Now().Add(8 * time.Second)
	cancelledID := schedule("cancelled@example.com", oldAt)
	controlID := schedule("control@example.com", oldAt)
	movedID := schedule("moved@example.com", time.Now().Add(time.Hour))

	if r := do(http.MethodPost, "/api/emails/"+cancelledID+"/cancel", nil); r.Status != http.StatusOK {
		t.Fatalf("cancel: %d %s", r.Status, r.Body)
	}
	newAt := time.Now().Add(3 * time.Second).UTC().Truncate(time.Millisecond)
	if r := do(http.MethodPatch, "/api/emails/"+movedID, map[string]string{"send_at": newAt.Format(time.RFC3339Nano)}); r.Status != http.StatusOK {
		t.Fatalf("reschedule: %d %s", r.Status, r.Body)
	}
	proc.Kill()
	if time.Now().After(newAt) {
		t.Fatalf("the kill came after the new send_at; the test proves nothing")
	}
	rig.Serve(t, context.Background())

	apptest.Eventually(t, 60*time.Second, func() bool {
		return get(movedID).Status == "sent" && get(controlID).Status == "sent"
	}, func() string { return "the rescheduled and the control email sent after the restart" })
	msgs := srv.MessagesTo("moved@example.com")
	if len(msgs) != 1 {
		t.Fatalf("the rescheduled email arrived %d times, want once", len(msgs))
	}
	if msgs[0].Received.Before(newAt) {
		t.Errorf("the rescheduled email arrived at %s, before its new send_at %s", msgs[0].Received, newAt)
	}
	if got := srv.MessagesTo("cancelled@example.com"); len(got) != 0 {
		t.Errorf("the cancelled email arrived %d times, want never", len(got))
	}
	if e := get(cancelledID); e.Status != "cancelled" {
		t.Errorf("after the restart the cancelled email is %q, want cancelled", e.Status)
	}
}
