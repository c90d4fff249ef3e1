package app_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailroom/mailroom/app/apptest"
)

// TestAKeyOverItsDailyEmailQuotaIs429UntilMidnightUTCAndOtherKeysAreNot holds
// auth.quota_emails_per_day: a key's third email of a day with a quota of two is 429
// quota_exceeded with Retry-After up to midnight UTC and the reset time in the
// message; a replayed Idempotency-Key counts nothing; another key has a quota of its
// own; and the count survives a restart (it is in the database).
func TestAKeyOverItsDailyEmailQuotaIs429UntilMidnightUTCAndOtherKeysAreNot(t *testing.T) {
	t.Parallel()
	cfg := apptest.Config(t)
	cfg.Auth.QuotaEmailsPerDay = 2
	in := apptest.Start(t, cfg)
	_, sender := createKey(t, in, "quota", "send")
	_, other := createKey(t, in, "other", "send")
	auth := apptest.Bearer(sender)

	first := in.Do(t, http.MethodPost, "/api/emails", apptest.NewEmail("a@example.com"), append(auth, "Idempotency-Key", "one")...)
	if first.Status != http.StatusAccepted {
		t.Fatalf("first email: %d %s", first.Status, first.Body)
	}
	in.Send(t, apptest.NewEmail("b@example.com"), auth...)
	replay := in.Do(t, http.MethodPost, "/api/emails", apptest.NewEmail("a@example.com"), append(auth, "Idempotency-Key", "one")...)
	if replay.Status != http.StatusAccepted {
		t.Errorf("a replayed Idempotency-Key at the quota = %d %s, want 202 (the first answer again)", replay.Status, replay.Body)
	}

	r := in.Do(t, http.MethodPost, "/api/emails", apptest.NewEmail("c@example.com"), auth...)
	checkQuotaExceeded(t, r)
	in.Send(t, apptest.NewEmail("d@example.com"), apptest.Bearer(other)...)

	in.Stop(t)
	again := apptest.Start(t, cfg)
	checkQuotaExceeded(t, again.Do(t, http.MethodPost, "/api/emails", apptest.NewEmail("e@example.com"), auth...))
}

func checkQuotaExceeded(t *testing.T, r apptest.Response) {
	t.Helper()
	if r.Status != http.StatusTooManyRequests || errorCode(t, r) != "quota_exceeded" {
		t.Fatalf("over the quota: %d %s, want 429 quota_exceeded", r.Status, r.Body)
	}
	secs, err := strconv.Atoi(r.Header.Get("Retry-After"))
	now := time.Now().UTC()
	untilMidnight := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC).Sub(now)
	if err != nil || secs < 1 || time.Duration(secs)*time.Second > untilMidnight+time.Minute {
		t.Errorf("Retry-After = %q, want whole seconds up to midnight UTC (%v away)", r.Header.Get("Retry-After"), untilMidnight)
	}
	if !strings.Contains(string(r.Body), "resets at ") || !strings.Contains(string(r.Body), "T00:00:00Z") {
		t.Errorf("message %s does not say when the quota resets", r.Body)
	}
}

// TestAKeyOverItsDailyByteQuotaIs429 holds auth.quota_bytes_per_day: emails are
// accepted while their bytes fit, and the one that would go over is refused.
func TestAKeyOverItsDailyByteQuotaIs429(t *testing.T) {
	t.Parallel()
	cfg := apptest.Config(t)
	cfg.Auth.QuotaBytesPerDay = 3000
	in := apptest.Start(t, cfg)
	email := func(to string) map[string]any {
		e := apptest.NewEmail(to)
		e["text"] = strings.Repeat("x", 1000)
		return e
	}
	in.Send(t, email("a@example.com"))
	in.Send(t, email("b@example.com"))
	checkQuotaExceeded(t, in.Do(t, http.MethodPost, "/api/emails", email("c@example.com")))
}
