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
