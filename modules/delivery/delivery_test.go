package delivery_test

// Module-level tests of delivery: the whole app on the Go-channel broker with a real
// SQLite file, talking to an in-process SMTP server that can refuse recipients.

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/platform/config"
	"github.com/mailroom/mailroom/platform/outbox"
	"github.com/mailroom/mailroom/platform/sqlite"
	"github.com/mailroom/mailroom/platform/testkit/smtptest"
)

// wait is the deadline of every wait on a condition; the conditions normally hold
// within milliseconds.
const wait = 20 * time.Second

// start boots an app sending to a fresh SMTP server; change tweaks the config first.
func start(t *testing.T, change func(*config.Config), opts ...smtptest.Option) (*apptest.Instance, *smtptest.Server) {
	t.Helper()
	srv := smtptest.Start(t, opts...)
	cfg := apptest.Config(t)
	apptest.UseSMTP(cfg, srv)
	cfg.Retry.InitialInterval = 20 * time.Millisecond
	cfg.Retry.Multiplier = 2
	cfg.Retry.MaxInterval = time.Second
	if change != nil {
		change(cfg)
	}
	return apptest.Start(t, cfg), srv
}

// email is GET /api/emails/{id} with the fields these tests look at.
type email struct {
	ID            string          `json:"id"`
	Status        string          `json:"status"`
	Attempts      int             `json:"attempts"`
	LastError     string          `json:"last_error"`
	NextAttemptAt *time.Time      `json:"next_attempt_at"`
	SentAt        *time.Time      `json:"sent_at"`
	Events        []apptest.Event `json:"events"`
}

func getEmail(t *testing.T, in *apptest.Instance, id string) email {
	t.Helper()
	r := in.Do(t, http.MethodGet, "/api/emails/"+id, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /api/emails/%s: %d %s", id, r.Status, r.Body)
	}
	var e email
	r.JSON(t, &e)
	return e
}

// waitFor polls the email until cond holds.
func waitFor(t *testing.T, in *apptest.Instance, id, what string, cond func(email) bool) email {
	t.Helper()
	var last email
	apptest.Eventually(t, wait, func() bool {
		last = getEmail(t, in, id)
		return cond(last)
	}, func() string { return fmt.Sprintf("email %s: want %s, have %+v", id, what, last) })
	return last
}

func countEvents(e email, typ string) int {
	n := 0
	for _, ev := range e.Events {
		if ev.Type == typ {
			n++
		}
	}
	return n
}

// letter is one item of GET /api/dead-letters.
type letter struct {
	EmailID       string `json:"email_id"`
	Status        string `json:"status"`
	Reason        string `json:"reason"`
	ErrorClass    string `json:"error_class"`
	Attempts      int    `json:"attempts"`
	OriginalTopic string `json:"original_topic"`
	ConsumerGroup string `json:"consumer_group"`
}

func deadLetters(t *testing.T, in *apptest.Instance) []letter {
	t.Helper()
	r := in.Do(t, http.MethodGet, "/api/dead-letters?limit=500", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /api/dead-letters: %d %s", r.Status, r.Body)
	}
	var page struct{ Items []letter }
	r.JSON(t, &page)
	return page.Items
}

func letterOf(t *testing.T, in *apptest.Instance, emailID string) letter {
	t.Helper()
	var found *letter
	apptest.Eventually(t, wait, func() bool {
		for _, l := range deadLetters(t, in) {
			if l.EmailID == emailID {
				found = &l
				return true
			}
		}
		return false
	}, func() string { return "a parked dead letter of " + emailID })
	return *found
}

func TestTransientAndPermanentFailures(t *testing.T) {
	const maxAttempts = 4
	tests := []struct {
		name  string
		code  int
		times int
		// what the email ends as
		status       string
		attempts     int
		failures     int
		retries      int
		deadLettered int
		errorClass   string
	}{
		{name: "a recipient answered 451 twice is sent on the third try",
			code: 451, times: 2, status: "sent", attempts: 3, failures: 2, retries: 2},
		{name: "a recipient answered 550 is tried once and dead-lettered",
			code: 550, times: -1, status: "dead", attempts: 1, failures: 1, retries: 0, deadLettered: 1, errorClass: "permanent"},
		{name: "a recipient answered 451 forever is tried max_attempts times and dead-lettered",
			code: 451, times: -1, status: "dead", attempts: maxAttempts, failures: maxAttempts, retries: maxAttempts - 1,
			deadLettered: 1, errorClass: "transient_exhausted"},
	}
	in, srv := start(t, func(c *config.Config) { c.Retry.MaxAttempts = maxAttempts })
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			to := fmt.Sprintf("rcpt%d@example.com", i)
			srv.FailRecipient(to, tt.code, tt.times)
			id := in.Send(t, apptest.NewEmail(to))

			e := in.WaitForStatus(t, id, tt.status, wait)
			got := getEmail(t, in, e.ID)
			if got.Attempts != tt.attempts {
				t.Errorf("attempts = %d, want %d", got.Attempts, tt.attempts)
			}
			if n := srv.Attempts(to); n != tt.attempts {
				t.Errorf("the SMTP server saw %d RCPT attempts, want %d", n, tt.attempts)
			}
			for typ, want := range map[string]int{"attempt_failed": tt.failures, "retry_scheduled": tt.retries,
				"dead_lettered": tt.deadLettered} {
				if n := countEvents(got, typ); n != want {
					t.Errorf("%d %q events, want %d; timeline %+v", n, typ, want, got.Events)
				}
			}
			if tt.status == "sent" {
				if got.SentAt == nil || len(srv.MessagesTo(to)) != 1 {
					t.Errorf("sent_at %v, %d messages delivered; want a sent_at and one message", got.SentAt, len(srv.MessagesTo(to)))
				}
				return
			}
			if !strings.Contains(got.LastError, fmt.Sprint(tt.code)) {
				t.Errorf("last_error %q does not name the SMTP reply %d", got.LastError, tt.code)
			}
			l := letterOf(t, in, id)
			if l.ErrorClass != tt.errorClass || l.Attempts != tt.attempts {
				t.Errorf("dead letter %+v, want error_class %s after %d attempts", l, tt.errorClass, tt.attempts)
			}
			if len(srv.MessagesTo(to)) != 0 {
				t.Errorf("a refused recipient got a message")
			}
		})
	}
}

func TestRetriesOfATransientFailureWaitLongerEachTime(t *testing.T) {
	const (
		maxAttempts = 4
		initial     = 40 * time.Millisecond
		multiplier  = 3
	)
	in, srv := start(t, func(c *config.Config) {
		c.Retry.MaxAttempts = maxAttempts
		c.Retry.InitialInterval = initial
		c.Retry.Multiplier = multiplier
		c.Retry.MaxInterval = 10 * time.Second
	})
	const to = "busy@example.com"
	srv.FailRecipient(to, 451, -1)
	id := in.Send(t, apptest.NewEmail(to))
	in.WaitForStatus(t, id, "dead", wait)

	times := srv.AttemptTimes(to)
	if len(times) != maxAttempts {
		t.Fatalf("%d attempts, want exactly %d", len(times), maxAttempts)
	}
	delay := initial
	var prev time.Duration
	for i := 1; i < len(times); i++ {
		gap := times[i].Sub(times[i-1])
		// The retry is due `delay` after the failure was recorded, which follows the
		// refused RCPT; the outbox keeps milliseconds, hence the 1 ms allowance.
		if gap < delay-time.Millisecond {
			t.Errorf("attempt %d came %v after attempt %d, before its backoff of %v", i+1, gap, i, delay)
		}
		if gap <= prev {
			t.Errorf("attempt %d came %v after the previous one, not longer than the gap before (%v)", i+1, gap, prev)
		}
		prev = gap
		delay *= multiplier
	}
}

func TestABackingOffEmailDoesNotHoldUpTheOnesBehindIt(t *testing.T) {
	const (
		healthy = 100
		backoff = 30 * time.Second
	)
	in, srv := start(t, func(c *config.Config) {
		// One lane and one relay worker: everything queues behind the failing email
		// if anything waits for its backoff.
		c.Delivery.Concurrency = 1
		c.Retry.InitialInterval = backoff
		c.Retry.MaxInterval = time.Minute
	})
	const slow = "slow@example.com"
	srv.FailRecipient(slow, 451, -1)
	slowID := in.Send(t, apptest.NewEmail(slow))
	srv.WaitForAttempts(t, slow, 1, wait)
	firstAttempt := srv.AttemptTimes(slow)[0]

	for i := range healthy {
		in.Send(t, apptest.NewEmail(fmt.Sprintf("healthy%d@example.com", i)))
	}
	srv.WaitForCount(t, healthy, wait)
	if n := srv.Attempts(slow); n != 1 {
		t.Fatalf("the backing-off email was tried %d times before the %d healthy ones were delivered, want 1", n, healthy)
	}
	if took := time.Since(firstAttempt); took >= backoff {
		t.Fatalf("the healthy emails took %v, longer than the backoff: the test proves nothing", took)
	}

	var page struct{ Items []email }
	apptest.Eventually(t, wait, func() bool {
		r := in.Do(t, http.MethodGet, "/api/emails?status=sent&limit=100", nil)
		r.JSON(t, &page)
		return len(page.Items) == healthy
	}, func() string { return fmt.Sprintf("%d emails sent, want %d", len(page.Items), healthy) })
	e := waitFor(t, in, slowID, "retrying with a next attempt", func(e email) bool {
		return e.Status == "retrying" && e.NextAttemptAt != nil
	})
	if e.Attempts != 1 || e.NextAttemptAt.Before(firstAttempt.Add(backoff-time.Second)) {
		t.Fatalf("backing-off email after %d attempts has its next attempt at %v, want 1 attempt and the next %v after %v",
			e.Attempts, e.NextAttemptAt, backoff, firstAttempt)
	}
}

func TestScheduledRetryAndScheduledSendSurviveARestart(t *testing.T) {
	const backoff = 3 * time.Second
	srv := smtptest.Start(t)
	cfg := apptest.Config(t)
	apptest.UseSMTP(cfg, srv)
	cfg.Retry.InitialInterval = backoff
	cfg.Retry.MaxInterval = time.Minute
	in := apptest.Start(t, cfg)

	const retried, scheduled = "retried@example.com", "scheduled@example.com"
	srv.FailRecipient(retried, 451, 1)
	retryID := in.Send(t, apptest.NewEmail(retried))
	sendAt := time.Now().Add(backoff).UTC()
	msg := apptest.NewEmail(scheduled)
	msg["send_at"] = sendAt.Format(time.RFC3339Nano)
	schedID := in.Send(t, msg)

	in.WaitForStatus(t, retryID, "retrying", wait)
	if got := in.Get(t, schedID); got.Status != "scheduled" {
		t.Fatalf("email with send_at is %s, want scheduled", got.Status)
	}
	in.Stop(t)
	if srv.Count() != 0 || srv.Attempts(retried) != 1 {
		t.Fatalf("before the restart: %d messages, %d attempts of the retried email; want none delivered and one attempt"+
			" (the machine took longer than %v to get here)", srv.Count(), srv.Attempts(retried), backoff)
	}

	in = apptest.Start(t, cfg)
	in.WaitForStatus(t, retryID, "sent", wait)
	in.WaitForStatus(t, schedID, "sent", wait)
	times := srv.AttemptTimes(retried)
	if len(times) != 2 || times[1].Sub(times[0]) < backoff-time.Millisecond {
		t.Errorf("retried email attempted at %v, want twice, %v apart", times, backoff)
	}
	if got := srv.MessagesTo(retried); len(got) != 1 {
		t.Errorf("retried email delivered %d times, want once", len(got))
	}
	got := srv.MessagesTo(scheduled)
	if len(got) != 1 {
		t.Fatalf("scheduled email delivered %d times, want once", len(got))
	}
	if got[0].Received.Before(sendAt.Truncate(time.Millisecond)) {
		t.Errorf("scheduled email delivered at %v, before its send_at %v", got[0].Received, sendAt)
	}
}

func TestAPoisonMessageIsDeadLetteredAndTheConsumerGoesOn(t *testing.T) {
	in, srv := start(t, func(c *config.Config) { c.Delivery.Concurrency = 1 })
	cfg := in.Config

	// Write the poison straight into the outbox, as a broken producer would; the
	// running app's relay publishes it on the send topic at its next poll.
	db, err := sqlite.Open(cfg.DB.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	poison := map[string]string{
		"not-json":        "this is not JSON {",
		"not-a-sendemail": `{"hello": "world"}`,
	}
	ctx := context.Background()
	box := outbox.New()
	err = db.Tx(ctx, func(tx *sql.Tx) error {
		for uuid, payload := range poison {
			if err := box.Add(ctx, tx, cfg.Topics.Send, message.NewMessage(uuid, []byte(payload)), time.Time{}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	var poisoned []letter
	apptest.Eventually(t, wait, func() bool {
		poisoned = poisoned[:0]
		for _, l := range deadLetters(t, in) {
			if l.ErrorClass == "poison" {
				poisoned = append(poisoned, l)
			}
		}
		return len(poisoned) == len(poison)
	}, func() string { return fmt.Sprintf("%d poison letters, want %d", len(poisoned), len(poison)) })
	for _, l := range poisoned {
		if l.OriginalTopic != cfg.Topics.Send || l.ConsumerGroup != cfg.Kafka.ConsumerGroup || l.Reason == "" || l.EmailID != "" {
			t.Errorf("poison letter %+v: want original topic %s, group %s, a reason and no email id",
				l, cfg.Topics.Send, cfg.Kafka.ConsumerGroup)
		}
	}

	id := in.Send(t, apptest.NewEmail("after-poison@example.com"))
	in.WaitForStatus(t, id, "sent", wait)
	if len(srv.MessagesTo("after-poison@example.com")) != 1 {
		t.Fatal("the email after the poison was not delivered once")
	}
}

func TestShutdownIsNotFailure(t *testing.T) {
	// With max_attempts 1, a send that shutdown interrupted and that was counted as a
	// failed attempt would go straight to the dead letters.
	const delay = 1500 * time.Millisecond
	srv := smtptest.Start(t, smtptest.WithReplyDelay(delay))
	cfg := apptest.Config(t)
	apptest.UseSMTP(cfg, srv)
	cfg.SMTP.Timeout = 10 * time.Second
	cfg.Retry.MaxAttempts = 1
	in := apptest.Start(t, cfg)

	const to = "inflight@example.com"
	id := in.Send(t, apptest.NewEmail(to))
	srv.WaitForAttempts(t, to, 1, wait) // the send is in flight: DATA waits `delay` for its reply
	if srv.Count() != 0 {
		t.Fatal("the message was accepted before the app was stopped; the reply delay is too short")
	}
	in.Stop(t)
	// A graceful shutdown drains the send in flight (the contract: SIGTERM drains
	// in-flight work first) rather than abandoning it half-way.
	if n := len(srv.MessagesTo(to)); n != 1 {
		t.Errorf("after a graceful stop the in-flight email was delivered %d times, want once (drained)", n)
	}

	in = apptest.Start(t, cfg)
	e := waitFor(t, in, id, "sent", func(e email) bool { return e.Status == "sent" || e.Status == "dead" })
	if e.Status != "sent" || countEvents(e, "dead_lettered") != 0 || countEvents(e, "attempt_failed") != 0 {
		t.Fatalf("email in flight at shutdown ended %s with timeline %+v; want sent with no failure", e.Status, e.Events)
	}
	if n := len(srv.MessagesTo(to)); n != 1 {
		t.Errorf("delivered %d times in all, want once: the restart must not send it again", n)
	}
	if l := deadLetters(t, in); len(l) != 0 {
		t.Fatalf("dead letters after a shutdown: %+v", l)
	}
}
