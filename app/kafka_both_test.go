//go:build kafka

package app_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/platform/config"
	"github.com/mailroom/mailroom/platform/testkit/smtptest"
)

// TestKafkaAndGoChannelsRetryDeadLetterAndReplayAlike is one test body run on both
// brokers: the retry, dead-letter and replay behaviour a user sees must not depend
// on broker.kind.
func TestKafkaAndGoChannelsRetryDeadLetterAndReplayAlike(t *testing.T) {
	brokers := []struct {
		kind   string
		config func(tb testing.TB) *config.Config
	}{
		{config.BrokerGoChannel, apptest.Config},
		{config.BrokerKafka, kafkaConfig},
	}
	cases := []struct {
		name string
		run  func(t *testing.T, in *apptest.Instance, srv *smtptest.Server)
	}{
		{"a recipient answering 451 twice is sent on the third try", func(t *testing.T, in *apptest.Instance, srv *smtptest.Server) {
			const to = "greylisted@example.com"
			srv.FailRecipient(to, 451, 2)
			id := in.Send(t, apptest.NewEmail(to))
			e := in.WaitForStatus(t, id, "sent", time.Minute)
			if e.Attempts != 3 || srv.Attempts(to) != 3 {
				t.Errorf("attempts: email says %d, SMTP server saw %d; want 3 and 3", e.Attempts, srv.Attempts(to))
			}
			if n := len(srv.MessagesTo(to)); n != 1 {
				t.Errorf("the SMTP server received %d copies, want 1", n)
			}
			if !hasEvents(e, "deferred", "retry_scheduled", "deferred", "retry_scheduled", "delivered", "sent") {
				t.Errorf("timeline %v lacks deferred, retry_scheduled twice, then delivered and sent", eventTypes(e))
			}
			checkOldestFirst(t, e)
			if e.LastError != "" {
				t.Errorf("last_error %q on a sent email: the failures are in the timeline, not the current state", e.LastError)
			}
		}},
		{"a recipient answering 550 is dead after one try", func(t *testing.T, in *apptest.Instance, srv *smtptest.Server) {
			const to = "gone@example.com"
			srv.FailRecipient(to, 550, -1)
			id := in.Send(t, apptest.NewEmail(to))
			e := in.WaitForStatus(t, id, "dead", time.Minute)
			if srv.Attempts(to) != 1 {
				t.Errorf("a 550 recipient was tried %d times, want 1", srv.Attempts(to))
			}
			if !hasEvents(e, "dead_lettered") {
				t.Errorf("timeline %v lacks dead_lettered", eventTypes(e))
			}
			var list struct {
				Items []struct {
					EmailID string `json:"email_id"`
				} `json:"items"`
			}
			in.Do(t, http.MethodGet, "/api/dead-letters?reason_contains=550", nil).JSON(t, &list)
			listed := false
			for _, it := range list.Items {
				listed = listed || it.EmailID == id
			}
			if !listed {
				t.Errorf("dead letters %+v do not list %s", list.Items, id)
			}
		}},
		{"a dead letter replayed once the fault is gone is sent", func(t *testing.T, in *apptest.Instance, srv *smtptest.Server) {
			const to = "mailbox-full@example.com"
			srv.FailRecipient(to, 552, 1)
			id := in.Send(t, apptest.NewEmail(to))
			in.WaitForStatus(t, id, "dead", time.Minute)
			if r := in.Do(t, http.MethodPost, "/api/dead-letters/"+id+"/replay", nil); r.Status != http.StatusAccepted {
				t.Fatalf("replay: %d %s", r.Status, r.Body)
			}
			e := in.WaitForStatus(t, id, "sent", time.Minute)
			if !hasEvents(e, "dead_lettered", "replayed", "sent") {
				t.Errorf("timeline %v lacks dead_lettered, replayed and sent", eventTypes(e))
			}
			// "replayed" reaches the timeline over the events topic, after the relay
			// recorded the replay's "published" directly: the order is by time.
			checkOldestFirst(t, e)
			if n := len(srv.MessagesTo(to)); n != 1 {
				t.Errorf("the SMTP server received %d copies, want 1", n)
			}
		}},
	}
	for _, b := range brokers {
		t.Run(b.kind, func(t *testing.T) {
			srv := smtptest.Start(t)
			cfg := b.config(t)
			apptest.UseSMTP(cfg, srv)
			if cfg.Broker.Kind != b.kind {
				t.Fatalf("config has broker %s, want %s", cfg.Broker.Kind, b.kind)
			}
			in := apptest.Start(t, cfg)
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) { c.run(t, in, srv) })
			}
		})
	}
}

// checkOldestFirst fails the test unless e's timeline is oldest first, as the
// contract has it.
func checkOldestFirst(t *testing.T, e apptest.Email) {
	t.Helper()
	for i := 1; i < len(e.Events); i++ {
		if prev, ev := e.Events[i-1], e.Events[i]; ev.At.Before(prev.At) {
			t.Errorf("timeline not oldest first: %s at %s listed after %s at %s (%v)",
				ev.Type, ev.At.Format(time.RFC3339Nano), prev.Type, prev.At.Format(time.RFC3339Nano), eventTypes(e))
		}
	}
}

func eventTypes(e apptest.Email) []string {
	out := make([]string, len(e.Events))
	for i, ev := range e.Events {
		out[i] = ev.Type
	}
	return out
}

// hasEvents reports whether e's timeline holds types in this order (others may be
// in between).
func hasEvents(e apptest.Email, types ...string) bool {
	next := 0
	for _, ev := range e.Events {
		if next < len(types) && ev.Type == types[next] {
			next++
		}
	}
	return next == len(types)
}
