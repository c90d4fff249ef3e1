//go:build kafka

package app_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/platform/config"
	"github.com/mailroom/mailroom/platform/testkit/smtptest"
)

// retryDelay is the wait before the second try in the retry tests: long enough
// that fresh mail is sent well before it, in the 5s tier.
const retryDelay = 8 * time.Second

// kafkaRetryConfig is kafkaConfig with retries retryDelay apart, without jitter,
// waiting in the one tier 5s (email.send.<suffix>.retry.5s).
func kafkaRetryConfig(tb testing.TB) *config.Config {
	cfg := kafkaConfig(tb)
	cfg.Retry.InitialInterval, cfg.Retry.MaxInterval, cfg.Retry.Jitter = retryDelay, retryDelay, 0
	cfg.Topics.RetryTiers = []string{"1s", "5s"}
	return cfg
}

// TestKafkaRetryWaitsInItsTierTopicWhileFreshMailFlowsAndIsSentWhenDue: ten
// recipients answer 451 once. Their retries go to the 5s tier topic (Kafka holds
// them: the topic's offsets say so) and wait in its forwarder; twenty fresh emails
// sent meanwhile are all sent while the retries still wait (they hold none of
// email.send's slots); then each retry is sent, once, no sooner than its delay.
func TestKafkaRetryWaitsInItsTierTopicWhileFreshMailFlowsAndIsSentWhenDue(t *testing.T) {
	srv := smtptest.Start(t)
	cfg := kafkaRetryConfig(t)
	apptest.UseSMTP(cfg, srv)
	in := apptest.Start(t, cfg)
	tierTopic := config.RetryTopic(cfg.Topics.Send, 5*time.Second)

	const deferred, fresh = 10, 20
	var retried []string
	for i := range deferred {
		to := fmt.Sprintf("greylisted-%d@example.com", i)
		srv.FailRecipient(to, 451, 1)
		retried = append(retried, in.Send(t, apptest.NewEmail(to)))
	}
	apptest.Eventually(t, 30*time.Second, func() bool { return retryMetric(t, in, "waiting", "5s") == deferred },
		func() string {
			return fmt.Sprintf("%v retries waiting in tier 5s, want %d", retryMetric(t, in, "waiting", "5s"), deferred)
		})
	if n := recordsIn(t, cfg.Kafka.Brokers, tierTopic); n != deferred {
		t.Errorf("%s holds %d records, want the %d retries", tierTopic, n, deferred)
	}

	var sent []string
	for i := range fresh {
		sent = append(sent, in.Send(t, apptest.NewEmail(fmt.Sprintf("fresh-%d@example.com", i))))
	}
	for _, id := range sent {
		in.WaitForStatus(t, id, "sent", retryDelay)
	}
	if n := retryMetric(t, in, "forwarded_total", "5s"); n != 0 {
		t.Errorf("%v retries forwarded by the time the fresh mail was sent, want 0: the fresh mail did not overtake them", n)
	}

	for i, id := range retried {
		e := in.WaitForStatus(t, id, "sent", time.Minute)
		to := fmt.Sprintf("greylisted-%d@example.com", i)
		if srv.Attempts(to) != 2 || len(srv.MessagesTo(to)) != 1 {
			t.Errorf("%s: %d attempts, %d messages; want 2 and 1", to, srv.Attempts(to), len(srv.MessagesTo(to)))
		}
		if wait := eventAt(e, "delivered").Sub(eventAt(e, "deferred")); wait < retryDelay {
			t.Errorf("%s delivered %v after its deferral, before its delay of %v", id, wait, retryDelay)
		}
	}
	if n := retryMetric(t, in, "forwarded_total", "5s"); n != deferred {
		t.Errorf("forwarded from tier 5s: %v, want %d", n, deferred)
	}
}

// TestKafkaRetryOfAWorkerStoppedWithItsDatabaseDeletedIsSentByAnother: instance A
// holds a retry waiting in the 5s tier; A stops and its data directory is deleted
// before the retry is due. B, started with a fresh database in the same consumer
// groups, takes the tier's partitions over and the retry is delivered (the SMTP
// server receives it) although no disk that held it remains.
func TestKafkaRetryOfAWorkerStoppedWithItsDatabaseDeletedIsSentByAnother(t *testing.T) {
	srv := smtptest.Start(t)
	cfgA := kafkaRetryConfig(t)
	apptest.UseSMTP(cfgA, srv)
	a := apptest.Start(t, cfgA)

	const to = "greylisted@example.com"
	srv.FailRecipient(to, 451, 1)
	a.Send(t, apptest.NewEmail(to))
	apptest.Eventually(t, 30*time.Second, func() bool { return retryMetric(t, a, "waiting", "5s") == 1 },
		func() string { return "A holds no retry waiting in tier 5s" })
	a.Stop(t)
	if err := os.RemoveAll(filepath.Dir(cfgA.DB.Path)); err != nil {
		t.Fatalf("delete A's data directory: %v", err)
	}
	if srv.Attempts(to) != 1 {
		t.Fatalf("%d attempts before A stopped, want 1 (the retry was not due yet)", srv.Attempts(to))
	}

	cfgB := *cfgA
	cfgB.DB.Path = filepath.Join(t.TempDir(), "b.db")
	b := apptest.Start(t, &cfgB)
	apptest.Eventually(t, time.Minute, func() bool { return len(srv.MessagesTo(to)) == 1 },
		func() string {
			return fmt.Sprintf("%s received %d messages, want the retry", to, len(srv.MessagesTo(to)))
		})
	if srv.Attempts(to) != 2 {
		t.Errorf("%d attempts, want 2", srv.Attempts(to))
	}
	if n := retryMetric(t, b, "forwarded_total", "5s"); n != 1 {
		t.Errorf("B forwarded %v retries from tier 5s, want 1", n)
	}
}

// retryMetric is mailroom_delivery_retries_<name>{tier="<tier>"} on in's /metrics (0
// when absent).
func retryMetric(t *testing.T, in *apptest.Instance, name, tier string) float64 {
	t.Helper()
	r := in.Do(t, http.MethodGet, "/metrics", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /metrics: %d", r.Status)
	}
	v, _ := metricValue(string(r.Body), fmt.Sprintf(`mailroom_delivery_retries_%s{tier=%q}`, name, tier))
	return v
}

// recordsIn counts the records topic holds (its partitions' end offsets).
func recordsIn(t *testing.T, brokers []string, topic string) int64 {
	t.Helper()
	client, err := sarama.NewClient(brokers, sarama.NewConfig())
	if err != nil {
		t.Fatalf("kafka client: %v", err)
	}
	defer client.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatalf("partitions of %s: %v", topic, err)
	}
	var n int64
	for _, p := range parts {
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatalf("end offset of %s/%d: %v", topic, p, err)
		}
		n += end
	}
	return n
}

// eventAt is when e's first timeline entry of type typ happened (zero if none).
func eventAt(e apptest.Email, typ string) time.Time {
	for _, ev := range e.Events {
		if ev.Type == typ {
			return ev.At
		}
	}
	return time.Time{}
}
