package delivery_test

// Module-level tests of delivery: the whole app on the Go-channel broker with a real
// SQLite file, talking to an in-process SMTP server that can refuse recipients.

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/mail"
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
	Outcome       string          `json:"outcome"`
	Recipients    []recipient     `json:"recipients"`
	Attempts      int             `json:"attempts"`
	LastError     string          `json:"last_error"`
	NextAttemptAt *time.Time      `json:"next_attempt_at"`
	SentAt        *time.Time      `json:"sent_at"`
	Events        []apptest.Event `json:"events"`
}

// recipient is one item of an email's recipients.
type recipient struct {
	Address  string `json:"address"`
	Type     string `json:"type"`
	Status   string `json:"status"`
	Attempts int    `json:"attempts"`
	Detail   string `json:"detail"`
}

// suppression is one item of GET /api/suppressions.
type suppression struct {
	Address string `json:"address"`
	Reason  string `json:"reason"`
	Detail  string `json:"detail"`
	EmailID string `json:"email_id"`
	Source  string `json:"source"`
}

// suppressionOf returns the suppression of addr, failing the test if the API does
// not list it within wait: a hard bounce reaches the suppressions module's list
// through the outbox, a moment after the try is recorded.
func suppressionOf(t *testing.T, in *apptest.Instance, addr string) suppression {
	t.Helper()
	var items []suppression
	apptest.Eventually(t, wait, func() bool {
		r := in.Do(t, http.MethodGet, "/api/suppressions?address="+addr, nil)
		var page struct{ Items []suppression }
		r.JSON(t, &page)
		items = page.Items
		return r.Status == http.StatusOK && len(items) == 1
	}, func() string { return fmt.Sprintf("GET /api/suppressions?address=%s lists %+v; want one", addr, items) })
	return items[0]
}

// messageID is the Message-ID header of a received message.
func messageID(t *testing.T, m smtptest.Message) string {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		t.Fatalf("read message: %v", err)
	}
	return msg.Header.Get("Message-ID")
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
	EmailID       string      `json:"email_id"`
	Subject       string      `json:"subject"`
	Recipients    []recipient `json:"recipients"`
	Status        string      `json:"status"`
	Reason        string      `json:"reason"`
	ErrorClass    string      `json:"error_class"`
	Attempts      int         `json:"attempts"`
	OriginalTopic string      `json:"original_topic"`
	ConsumerGroup string      `json:"consumer_group"`
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
		recipient    string
		attempts     int
		deferrals    int
		retries      int
		deadLettered int
		errorClass   string
	}{
		{name: "a recipient answered 451 twice is delivered on the third try",
			code: 451, times: 2, status: "sent", recipient: "delivered", attempts: 3, deferrals: 2, retries: 2},
		{name: "a recipient answered 550 is tried once and the email, sent to nobody, dead-lettered",
			code: 550, times: -1, status: "dead", recipient: "bounced", attempts: 1, retries: 0, deadLettered: 1, errorClass: "permanent"},
		{name: "a recipient answered 451 forever is tried max_attempts times, fails, and is dead-lettered",
			code: 451, times: -1, status: "dead", recipient: "failed", attempts: maxAttempts, deferrals: maxAttempts - 1,
			retries: maxAttempts - 1, deadLettered: 1, errorClass: "transient_exhausted"},
	}
	in, srv := start(t, func(c *config.Config) { c.Retry.MaxAttempts = maxAttempts })
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			to := fmt.Sprintf("rcpt%d@example.com", i)
			srv.FailRecipient(to, tt.code, tt.times)
			id := in.Send(t, apptest.NewEmail(to))

			e := in.WaitForStatus(t, id, tt.status, wait)
			got := getEmail(t, in, e.ID)
			if got.Attempts != tt.attempts || len(got.Recipients) != 1 || got.Recipients[0].Status != tt.recipient ||
				got.Recipients[0].Attempts != tt.attempts {
				t.Errorf("attempts = %d, recipients %+v; want %d attempts and the recipient %s", got.Attempts, got.Recipients, tt.attempts, tt.recipient)
			}
			if n := srv.Attempts(to); n != tt.attempts {
				t.Errorf("the SMTP server saw %d RCPT attempts, want %d", n, tt.attempts)
			}
			for typ, want := range map[string]int{"deferred": tt.deferrals, "retry_scheduled": tt.retries,
				"dead_lettered": tt.deadLettered} {
				if n := countEvents(got, typ); n != want {
					t.Errorf("%d %q events, want %d; timeline %+v", n, typ, want, got.Events)
				}
			}
			if tt.status == "sent" {
				if got.SentAt == nil || len(srv.MessagesTo(to)) != 1 || got.Outcome != "complete" {
					t.Errorf("sent_at %v, outcome %q, %d messages delivered; want a sent_at, complete and one message",
						got.SentAt, got.Outcome, len(srv.MessagesTo(to)))
				}
				return
			}
			if !strings.Contains(got.LastError, fmt.Sprint(tt.code)) || got.Outcome != "none" {
				t.Errorf("last_error %q, outcome %q: want the SMTP reply %d named, and outcome none", got.LastError, got.Outcome, tt.code)
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

// The contract's first promise: each recipient has its own fate. One transaction
// carries every recipient still pending; a 550 bounces its recipient (and suppresses
// the mailbox), a 451 defers it alone to the next try, and a suppressed recipient
// gets no SMTP command at all. Nobody gets a second copy because someone else failed.
func TestEachRecipientHasItsOwnFateInOneTransaction(t *testing.T) {
	in, srv := start(t, nil)
	const (
		good, bad            = "good@example.com", "bad@example.com"
		good2, greylisted    = "good2@example.com", "grey@example.com"
		suppressed, blindOne = "suppressed@example.com", "blind@example.com"
	)
	if r := in.Do(t, http.MethodPost, "/api/suppressions", map[string]string{"address": suppressed, "reason": "asked us to stop"}); r.Status != http.StatusCreated {
		t.Fatalf("POST /api/suppressions: %d %s", r.Status, r.Body)
	}
	srv.FailRecipient(bad, 550, -1)
	srv.FailRecipient(greylisted, 451, 2)
	id := in.Send(t, map[string]any{"to": []string{good, bad}, "cc": []string{good2, greylisted}, "bcc": []string{suppressed, blindOne},
		"subject": "Per recipient", "text": "hello"})

	e := waitFor(t, in, id, "sent with every recipient final", func(e email) bool { return e.Status == "sent" })
	want := map[string]recipient{
		good: {Type: "to", Status: "delivered", Attempts: 1}, bad: {Type: "to", Status: "bounced", Attempts: 1},
		good2: {Type: "cc", Status: "delivered", Attempts: 1}, greylisted: {Type: "cc", Status: "delivered", Attempts: 3},
		suppressed: {Type: "bcc", Status: "suppressed", Attempts: 0}, blindOne: {Type: "bcc", Status: "delivered", Attempts: 1},
	}
	if len(e.Recipients) != len(want) {
		t.Fatalf("recipients %+v, want %d", e.Recipients, len(want))
	}
	for i, r := range e.Recipients {
		w := want[r.Address]
		if r.Type != w.Type || r.Status != w.Status || r.Attempts != w.Attempts {
			t.Errorf("recipient %d %+v, want type %s, %s after %d attempts", i, r, w.Type, w.Status, w.Attempts)
		}
	}
	if e.Outcome != "partial" {
		t.Errorf("outcome %q, want partial: the email did not reach everyone", e.Outcome)
	}
	if !strings.Contains(e.Recipients[1].Detail, "550") || !strings.Contains(e.Recipients[4].Detail, "asked us to stop") {
		t.Errorf("details %q, %q: want the 550 reply and the suppression's reason", e.Recipients[1].Detail, e.Recipients[4].Detail)
	}

	// The wire: one RCPT for each recipient decided at once, three for the
	// greylisted one, none for the suppressed one; one copy for each delivered.
	for addr, n := range map[string]int{good: 1, bad: 1, good2: 1, greylisted: 3, suppressed: 0, blindOne: 1} {
		if got := srv.Attempts(addr); got != n {
			t.Errorf("RCPT TO %s %d times, want %d", addr, got, n)
		}
	}
	msgs := srv.Messages()
	if len(msgs) != 2 {
		t.Fatalf("%d messages, want 2 (the first try and the greylisted recipient's)", len(msgs))
	}
	for addr, n := range map[string]int{good: 1, good2: 1, greylisted: 1, blindOne: 1, bad: 0, suppressed: 0} {
		if got := len(srv.MessagesTo(addr)); got != n {
			t.Errorf("%s got %d copies, want %d", addr, got, n)
		}
	}
	if id1, id2 := messageID(t, msgs[0]), messageID(t, msgs[1]); id1 != id2 || id1 == "" {
		t.Errorf("Message-IDs %q and %q: want one for every try", id1, id2)
	}
	for _, m := range msgs {
		if strings.Contains(string(m.Data), blindOne) || strings.Contains(string(m.Data), suppressed) {
			t.Errorf("a bcc address is in the message:\n%s", m.Data)
		}
	}

	// The timeline records each recipient's outcome with its address.
	for typ, n := range map[string]int{"delivered": 4, "bounced": 1, "deferred": 2, "suppressed": 1, "retry_scheduled": 2, "sent": 1, "dead_lettered": 0} {
		if got := countEvents(e, typ); got != n {
			t.Errorf("%d %q entries, want %d; timeline %+v", got, typ, n, e.Events)
		}
	}
	for _, ev := range e.Events {
		if ev.Type == "bounced" && !strings.HasPrefix(ev.Detail, bad+": ") {
			t.Errorf("bounced entry %q does not start with the address", ev.Detail)
		}
	}
	// The 550 put the mailbox on the suppression list, with the email that bounced.
	s := suppressionOf(t, in, bad)
	if s.Source != "bounce" || s.EmailID != id || !strings.Contains(s.Detail, "550") {
		t.Errorf("suppression %+v: want a bounce of email %s with its reply", s, id)
	}
	if l := deadLetters(t, in); len(l) != 0 {
		t.Errorf("dead letters %+v: an email delivered to some with none failed has none", l)
	}

	// A later email skips the bounced address without any SMTP command.
	id2 := in.Send(t, apptest.NewEmail(bad))
	e2 := waitFor(t, in, id2, "dead", func(e email) bool { return e.Status == "dead" })
	if srv.Attempts(bad) != 1 || e2.Recipients[0].Status != "suppressed" || e2.Outcome != "none" {
		t.Errorf("later email to the bounced address: %d RCPTs in all, recipients %+v; want it suppressed, not tried", srv.Attempts(bad), e2.Recipients)
	}
}

func TestASendWhoseRecipientsAllFailTransientlyIsDeadLetteredListingThemAndAReplayTriesOnlyThem(t *testing.T) {
	in, srv := start(t, func(c *config.Config) { c.Retry.MaxAttempts = 2 })
	const ok, busy = "ok@example.com", "busy@example.com"
	srv.FailRecipient(busy, 451, -1)
	id := in.Send(t, map[string]any{"to": []string{ok, busy}, "subject": "Half", "text": "hello"})

	e := waitFor(t, in, id, "sent with a failed recipient", func(e email) bool { return e.Status == "sent" })
	if e.Outcome != "partial" || e.Recipients[1].Status != "failed" || !strings.Contains(e.Recipients[1].Detail, "2 attempts") {
		t.Fatalf("email %+v: want outcome partial, %s failed after 2 attempts", e, busy)
	}
	l := letterOf(t, in, id)
	if l.ErrorClass != "transient_exhausted" || len(l.Recipients) != 1 || l.Recipients[0].Address != busy ||
		!strings.Contains(l.Reason, busy) || l.Subject != "Half" {
		t.Fatalf("dead letter %+v: want it listing %s alone, with the subject", l, busy)
	}
	waitFor(t, in, id, "dead_lettered on the timeline", func(e email) bool { return countEvents(e, "dead_lettered") == 1 })

	srv.ClearFaults()
	if r := in.Do(t, http.MethodPost, "/api/dead-letters/"+id+"/replay", nil); r.Status != http.StatusAccepted {
		t.Fatalf("replay: %d %s", r.Status, r.Body)
	}
	e = waitFor(t, in, id, "complete after the replay", func(e email) bool { return e.Outcome == "complete" })
	if e.Status != "sent" || srv.Attempts(ok) != 1 || len(srv.MessagesTo(ok)) != 1 || len(srv.MessagesTo(busy)) != 1 {
		t.Errorf("after the replay: status %s, %s tried %d times and got %d copies, %s got %d; want sent, one try and one copy each",
			e.Status, ok, srv.Attempts(ok), len(srv.MessagesTo(ok)), busy, len(srv.MessagesTo(busy)))
	}
	// A replay of a letter no longer parked says why.
	r := in.Do(t, http.MethodPost, "/api/dead-letters/"+id+"/replay", nil)
	if r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "replayed") {
		t.Errorf("second replay: %d %s; want 409 saying the letter was replayed", r.Status, r.Body)
	}
}

func TestRetriesOfATransientFailureWaitLongerEachTime(t *testing.T) {
	const (
		maxAttempts = 4
		// Long enough that a loaded machine's lateness (a retry 143 ms late was
		// seen with 40 ms) cannot make one gap look shorter than the one before.
		initial    = 150 * time.Millisecond
		multiplier = 3
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
