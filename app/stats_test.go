package app_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/platform/testkit/smtptest"
)

// stats is the answer of GET /api/stats, as the console reads it.
type stats struct {
	At     time.Time `json:"at"`
	Series *struct {
		IntervalSeconds int                `json:"interval_seconds"`
		Since           time.Time          `json:"since"`
		Last            time.Time          `json:"last"`
		Counts          map[string][]int64 `json:"counts"`
	} `json:"series"`
	Emails map[string]int `json:"emails"`
	Outbox *struct {
		Backlog             int      `json:"backlog"`
		NotDue              int      `json:"not_due"`
		OldestDueAgeSeconds *float64 `json:"oldest_due_age_seconds"`
	} `json:"outbox"`
	DeadLetters *struct {
		Parked int `json:"parked"`
	} `json:"dead_letters"`
	SMTP *struct {
		Transport, State, Cause, Key, Reason string
		Since                                *time.Time
	} `json:"smtp"`
	Broker *struct{ Kind, State, Reason string } `json:"broker"`
	Errors map[string]string                     `json:"errors"`
}

// totals sums each per-second series.
func (s stats) totals() map[string]int64 {
	out := map[string]int64{}
	for name, counts := range s.Series.Counts {
		for _, n := range counts {
			out[name] += n
		}
	}
	return out
}

func readStats(t *testing.T, in *apptest.Instance) stats {
	t.Helper()
	r := in.Do(t, http.MethodGet, "/api/stats", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /api/stats: %d %s", r.Status, r.Body)
	}
	var s stats
	r.JSON(t, &s)
	if len(s.Errors) > 0 || s.Series == nil || s.Emails == nil || s.Outbox == nil || s.DeadLetters == nil || s.SMTP == nil || s.Broker == nil {
		t.Fatalf("GET /api/stats: a part is missing: %s", r.Body)
	}
	return s
}

func TestStatsCountWhatBecameOfMailPerSecondAndWhatWaitsNow(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t)
	srv.FailRecipient("later@example.com", 451, -1) // deferred, and retried only in an hour
	srv.FailRecipient("gone@example.com", 550, -1)  // bounced: the email dies
	cfg := apptest.Config(t)
	apptest.UseSMTP(cfg, srv)
	cfg.Retry.InitialInterval, cfg.Retry.MaxInterval = time.Hour, time.Hour
	in := apptest.Start(t, cfg)

	before := readStats(t, in)
	if got := before.totals(); got["accepted"] != 0 || got["sent"] != 0 {
		t.Errorf("a new process counted %v", got)
	}
	var sent []string
	for i := range 3 {
		sent = append(sent, in.Send(t, apptest.NewEmail(fmt.Sprintf("ok%d@example.com", i))))
	}
	batch := []map[string]any{apptest.NewEmail("ok3@example.com"), apptest.NewEmail("ok4@example.com")}
	for range 2 { // the second is a replay: nothing is stored, nothing counted
		if r := in.Do(t, http.MethodPost, "/api/emails/batch", batch, "Idempotency-Key", "stats-batch"); r.Status != http.StatusAccepted {
			t.Fatalf("POST /api/emails/batch: %d %s", r.Status, r.Body)
		}
	}
	retrying := in.Send(t, apptest.NewEmail("later@example.com"))
	dead := in.Send(t, apptest.NewEmail("gone@example.com"))
	for _, id := range sent {
		in.WaitForStatus(t, id, "sent", 10*time.Second)
	}
	in.WaitForStatus(t, retrying, "retrying", 10*time.Second)
	in.WaitForStatus(t, dead, "dead", 10*time.Second)

	want := map[string]int64{"accepted": 7, "sent": 5, "deferred": 1, "bounced": 1, "dead_lettered": 1}
	var s stats
	apptest.Eventually(t, 10*time.Second, func() bool {
		s = readStats(t, in)
		got := s.totals()
		for name, n := range want {
			if got[name] != n {
				return false
			}
		}
		return s.Emails["sent"] == 5 && s.DeadLetters.Parked == 1 && s.Outbox.Backlog == 0
	}, func() string {
		return fmt.Sprintf("counted %v, want %v; emails %v, dead letters %+v, outbox %+v", s.totals(), want, s.Emails, *s.DeadLetters, *s.Outbox)
	})

	for status, n := range map[string]int{"queued": 0, "scheduled": 0, "retrying": 1, "sent": 5, "dead": 1, "cancelled": 0} {
		if s.Emails[status] != n {
			t.Errorf("emails %s: %d, want %d (all: %v)", status, s.Emails[status], n, s.Emails)
		}
	}
	if s.Outbox.NotDue != 1 || s.Outbox.OldestDueAgeSeconds != nil {
		t.Errorf("outbox %+v, want the retry held back (not_due 1) and no due row (oldest age null)", *s.Outbox)
	}
	if sm := *s.SMTP; sm.Transport != "smtp" || sm.State != "up" || sm.Cause != "" || sm.Reason != "" || sm.Since != nil {
		t.Errorf("smtp %+v, want up", sm)
	}
	if b := *s.Broker; b.Kind != "gochannel" || b.State != "up" || b.Reason != "" {
		t.Errorf("broker %+v, want gochannel up", b)
	}
	series := s.Series
	if series.IntervalSeconds != 1 || len(series.Counts["accepted"]) != 300 {
		t.Errorf("series of %d counts %d s apart, want 300 a second apart", len(series.Counts["accepted"]), series.IntervalSeconds)
	}
	if lag := s.At.Sub(series.Last); lag < 0 || lag >= time.Second {
		t.Errorf("the last second starts at %s, %s before the answer's time %s: want the current second", series.Last, lag, s.At)
	}
	if !series.Since.Before(before.At) || s.At.Sub(series.Since) > time.Minute {
		t.Errorf("counting began at %s, want this process's start (before %s)", series.Since, before.At)
	}
}

func TestStatsShowAMailServerThatIsDownAsPausedWithWhyAndSinceWhen(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t)
	if err := srv.RefuseConnections(true); err != nil {
		t.Fatal(err)
	}
	cfg := apptest.Config(t)
	apptest.UseSMTP(cfg, srv)
	in := apptest.Start(t, cfg) // its check at start finds the server down
	start := time.Now()

	var s stats
	apptest.Eventually(t, 10*time.Second, func() bool {
		s = readStats(t, in)
		return s.SMTP.State == "paused"
	}, func() string { return fmt.Sprintf("smtp %+v, want paused", *s.SMTP) })
	sm := *s.SMTP
	if sm.Cause != "outage" || sm.Reason == "" || sm.Since == nil || sm.Since.Before(start.Add(-time.Minute)) || sm.Since.After(s.At) {
		t.Errorf("smtp %+v, want paused by an outage, with its reason and when it began", sm)
	}

	if err := srv.RefuseConnections(false); err != nil {
		t.Fatal(err)
	}
	apptest.Eventually(t, 15*time.Second, func() bool {
		s = readStats(t, in)
		return s.SMTP.State == "up"
	}, func() string { return fmt.Sprintf("smtp %+v, want up once the server answers", *s.SMTP) })
	if sm := *s.SMTP; sm.Cause != "" || sm.Reason != "" || sm.Since != nil {
		t.Errorf("smtp %+v: up, yet with a cause, reason or since", sm)
	}
}
