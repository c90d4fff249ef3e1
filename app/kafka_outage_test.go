//go:build kafka

package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/app/internal/apispec"
	"github.com/mailroom/mailroom/app/internal/e2e"
	"github.com/mailroom/mailroom/platform/config"
	"github.com/mailroom/mailroom/platform/testkit/smtptest"
)

// Port bases of the Kafka nodes tests own (each node takes two ports); the shared
// node of scripts/test-kafka.sh is on 19092, the HA cluster on 29092, and
// platform/broker's tests, which run at the same time, own 29392 and 29492.
const (
	outagePortBase    = 29192
	coldStartPortBase = 29292
	wipedPortBase     = 29592
)

// outageDuration is how long the whole cluster stays down in the outage test.
const outageDuration = 20 * time.Second

// TestKafkaOutageOfTwentySecondsLosesNothingWhileTheAPIKeepsAccepting stops the whole
// Kafka cluster under steady load for 20 s: /readyz turns 503, every POST is still
// answered 202 (into the outbox), and once Kafka is back the relay drains the
// outbox: every accepted email reaches the SMTP server and /readyz is 200 again.
func TestKafkaOutageOfTwentySecondsLosesNothingWhileTheAPIKeepsAccepting(t *testing.T) {
	kc, srv, _, in := startOnOwnNode(t, outagePortBase)

	ld := e2e.StartLoad(t, context.Background(), in.URL, e2e.LoadConfig{Workers: 4, Every: 20 * time.Millisecond, Subject: "kafka outage"})
	defer ld.Stop()
	rx := newReceivedIndex()
	apptest.Eventually(t, time.Minute, func() bool {
		rx.update(srv)
		return ld.Accepted.Load() >= 300 && len(rx.count) >= 100
	}, func() string {
		return fmt.Sprintf("before the outage: %d accepted, %d delivered; %s", ld.Accepted.Load(), len(rx.count), ld.Summary())
	})
	if got := readyz(t, in.URL); got != http.StatusOK {
		t.Fatalf("/readyz before the outage = %d, want 200", got)
	}

	kc.script("stop-all")
	outage := time.NewTimer(outageDuration)
	acceptedAtStop := ld.Accepted.Load()
	t.Logf("%s stopped after %d emails accepted, %d delivered", kc, acceptedAtStop, len(rx.count))
	apptest.Eventually(t, 30*time.Second, func() bool {
		return kc.refusing() && readyz(t, in.URL) == http.StatusServiceUnavailable
	}, func() string { return "Kafka refusing connections and /readyz answering 503" })

	<-outage.C // the outage itself, under load
	if got := readyz(t, in.URL); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz after %s without Kafka = %d, want 503", outageDuration, got)
	}
	duringOutage := ld.Accepted.Load() - acceptedAtStop
	t.Logf("%d emails accepted during the %s outage; %s", duringOutage, outageDuration, ld.Summary())
	if duringOutage < 500 {
		t.Errorf("only %d emails accepted during a %s outage at ~200/s offered: the API stalled", duringOutage, outageDuration)
	}

	kc.script("start-all")
	apptest.Eventually(t, time.Minute, func() bool { return readyz(t, in.URL) == http.StatusOK },
		func() string { return "/readyz answering 200 after Kafka came back" })
	target := ld.Accepted.Load() + 200
	apptest.Eventually(t, time.Minute, func() bool { return ld.Accepted.Load() >= target },
		func() string {
			return fmt.Sprintf("after the outage: %d accepted, want %d", ld.Accepted.Load(), target)
		})
	ids := ld.Stop()
	if !ld.AllAccepted() {
		t.Errorf("the API did not answer 202 to every POST: %s", ld.Summary())
	}

	rx.waitReceived(t, srv, ids, 3*time.Minute, nil)
	t.Logf("all %d accepted emails delivered; %d duplicates", len(ids), rx.duplicates())
	apptest.Eventually(t, time.Minute, func() bool {
		return countStatus(t, in.URL, "queued") == 0 && countStatus(t, in.URL, "retrying") == 0
	}, func() string { return "no email left queued or retrying" })
}

// TestKafkaServeStartsWhileKafkaIsDownAndDeliversOnceKafkaIsUp runs the real binary
// (`mailroom serve --broker kafka`) with no Kafka at all: it starts, /readyz answers
// 503 and POSTs are answered 202. When Kafka comes up for the first time, Mailroom
// provisions its topics (three partitions, not the broker's auto-created one),
// subscribes, opens the producer, delivers everything, and /readyz turns 200.
func TestKafkaServeStartsWhileKafkaIsDownAndDeliversOnceKafkaIsUp(t *testing.T) {
	bin := e2e.Build(t)
	kc := newCluster(t, coldStartPortBase, 1)
	srv := smtptest.Start(t)
	cfg := kafkaConfig(t)
	cfg.Kafka.Brokers = kc.brokers
	dir := t.TempDir()
	addr := e2e.FreeAddr(t)
	base := "http://" + addr
	proc := e2e.Start(t, bin, subprocessEnv(cfg, srv, filepath.Join(dir, "mailroom.db"), addr), filepath.Join(dir, "mailroom.log"), "serve", "--broker", "kafka")
	ctx := context.Background()
	client := e2e.NewHTTPClient(t)

	// Serving without Kafka: not ready, but taking mail.
	apptest.Eventually(t, time.Minute, func() bool {
		st, _ := e2e.GetJSON(ctx, client, base, "/healthz", &map[string]any{})
		return st == http.StatusOK || proc.Exited()
	}, func() string { return "mailroom serve answering /healthz" })
	if proc.Exited() {
		t.Fatalf("mailroom serve exited with Kafka down; log:\n%s", e2e.LogTail(proc.Log(), 4000))
	}
	if got := readyz(t, base); got != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with Kafka down = %d, want 503", got)
	}
	var ids []string
	for i := range 30 {
		body, _ := json.Marshal(apptest.NewEmail(fmt.Sprintf("cold%d@example.com", i)))
		acc, st, err := e2e.PostEmail(ctx, client, base, body)
		if err != nil || st != http.StatusAccepted {
			t.Fatalf("POST /api/emails with Kafka down: %d %v", st, err)
		}
		ids = append(ids, acc.ID)
	}
	var e e2e.Email
	if st, err := e2e.GetJSON(ctx, client, base, "/api/emails/"+ids[0], &e); err != nil || st != http.StatusOK || e.Status != "queued" {
		t.Fatalf("email with Kafka down: %d %v %+v, want queued", st, err, e)
	}

	kc.up()
	t.Logf("%s up", kc)
	rx := newReceivedIndex()
	rx.waitReceived(t, srv, ids, 2*time.Minute, func() string { return "log:\n" + e2e.LogTail(proc.Log(), 3000) })
	apptest.Eventually(t, time.Minute, func() bool { return readyz(t, base) == http.StatusOK },
		func() string { return "/readyz answering 200 once Kafka is up" })
	apptest.Eventually(t, time.Minute, func() bool {
		st, err := e2e.GetJSON(ctx, client, base, "/api/emails/"+ids[len(ids)-1], &e)
		return err == nil && st == http.StatusOK && e.Status == "sent"
	}, func() string { return fmt.Sprintf("last email: %+v, want sent", e) })

	// The topics are Mailroom's, not the broker's auto-created one-partition kind.
	checkTopicsAsConfigured(t, kc.brokers, cfg)

	code, err := proc.Terminate(30 * time.Second)
	if err != nil || code != 0 {
		t.Errorf("exit code %d (%v) after SIGTERM, want 0; log:\n%s", code, err, e2e.LogTail(proc.Log(), 4000))
	}
	if log := proc.Log(); e2e.HasDataRace(log) {
		t.Errorf("data race in mailroom serve:\n%s", e2e.LogTail(log, 20000))
	}
}

// TestKafkaThatComesBackEmptyGetsMailroomsTopicsAgain: a Kafka that returns without
// its data (`make kafka-down` wipes it; so does a lost disk or a new cluster at the
// same address) must get Mailroom's topics back as configured, while Mailroom runs,
// and deliver what was accepted meanwhile. Before, Mailroom's own clients made the
// broker auto-create them with one partition each, and the next start refused them
// ("email.send has 1, topics.partitions is 3").
func TestKafkaThatComesBackEmptyGetsMailroomsTopicsAgain(t *testing.T) {
	kc, _, cfg, in := startOnOwnNode(t, wipedPortBase)
	in.WaitForStatus(t, in.Send(t, apptest.NewEmail("before@example.com")), "sent", time.Minute)

	kc.script("down") // stops the node and deletes its data
	if got := readyz(t, in.URL); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz with Kafka gone = %d, want 503", got)
	}
	during := in.Send(t, apptest.NewEmail("during@example.com"))
	kc.up() // an empty Kafka: no topics, no offsets
	t.Logf("%s up again, empty", kc)
	after := in.Send(t, apptest.NewEmail("after@example.com"))
	for _, id := range []string{during, after} {
		in.WaitForStatus(t, id, "sent", 2*time.Minute)
	}

	checkTopicsAsConfigured(t, kc.brokers, cfg)
}

// startOnOwnNode starts a one-node Kafka of the test's own on portBase and the app
// on it, sending to an in-process SMTP server.
func startOnOwnNode(t *testing.T, portBase int) (*cluster, *smtptest.Server, *config.Config, *apptest.Instance) {
	t.Helper()
	kc := startKafka(t, portBase, 1)
	srv := smtptest.Start(t)
	cfg := kafkaConfig(t)
	cfg.Kafka.Brokers = kc.brokers
	apptest.UseSMTP(cfg, srv)
	return kc, srv, cfg, apptest.Start(t, cfg)
}

// checkTopicsAsConfigured fails the test unless Mailroom's topics have
// topics.partitions partitions each; it only looks, and creates nothing.
func checkTopicsAsConfigured(t *testing.T, brokers []string, cfg *config.Config) {
	t.Helper()
	sc := sarama.NewConfig()
	sc.Metadata.AllowAutoTopicCreation = false
	client, err := sarama.NewClient(brokers, sc)
	if err != nil {
		t.Fatalf("kafka client: %v", err)
	}
	defer client.Close()
	for _, topic := range []string{cfg.Topics.Send, cfg.Topics.DeadLetter, cfg.Topics.Events, cfg.Topics.Lifecycle} {
		parts, err := client.Partitions(topic)
		if err != nil || len(parts) != cfg.Topics.Partitions {
			t.Errorf("topic %s: %d partitions (%v), want %d as configured", topic, len(parts), err, cfg.Topics.Partitions)
		}
	}
}

// TestKafkaNeverReachableStillServesAndShutsDownCleanly points Mailroom at a port
// where no Kafka will ever listen: it serves, keeps the mail in the outbox, answers
// /readyz 503 naming the broker, and still shuts down cleanly.
func TestKafkaNeverReachableStillServesAndShutsDownCleanly(t *testing.T) {
	cfg := kafkaConfig(t)
	cfg.Kafka.Brokers = []string{e2e.FreeAddr(t)}
	in := apptest.Start(t, cfg)
	id := in.Send(t, apptest.NewEmail("nokafka@example.com"))
	r := in.Do(t, http.MethodGet, "/readyz", nil)
	var body map[string]string
	r.JSON(t, &body)
	if r.Status != http.StatusServiceUnavailable || !strings.Contains(body["broker"], "kafka not connected") {
		t.Errorf("/readyz = %d %s, want 503 with the broker check failing", r.Status, r.Body)
	}
	if got := in.Get(t, id).Status; got != "queued" {
		t.Errorf("email status = %s, want queued", got)
	}
	began := time.Now()
	in.Stop(t)
	if d := time.Since(began); d > 15*time.Second {
		t.Errorf("shutdown took %s with Kafka unreachable", d)
	}
}

// subprocessEnv is the environment of a `mailroom serve` subprocess using cfg's
// Kafka, topics and group, its own database and HTTP address, and srv for SMTP.
func subprocessEnv(cfg *config.Config, srv *smtptest.Server, dbPath, addr string) []string {
	return e2e.Env(
		"MAILROOM_BROKER_KIND=kafka",
		"MAILROOM_KAFKA_BROKERS="+strings.Join(cfg.Kafka.Brokers, ","),
		"MAILROOM_KAFKA_CONSUMER_GROUP="+cfg.Kafka.ConsumerGroup,
		"MAILROOM_TOPICS_SEND="+cfg.Topics.Send,
		"MAILROOM_TOPICS_DEAD_LETTER="+cfg.Topics.DeadLetter,
		"MAILROOM_TOPICS_EVENTS="+cfg.Topics.Events,
		"MAILROOM_TOPICS_LIFECYCLE="+cfg.Topics.Lifecycle,
		"MAILROOM_DB_PATH="+dbPath,
		"MAILROOM_HTTP_ADDR="+addr,
		"MAILROOM_DELIVERY_TRANSPORT=smtp",
		"MAILROOM_SMTP_HOST="+srv.Host(),
		"MAILROOM_SMTP_PORT="+strconv.Itoa(srv.Port()),
		"MAILROOM_SMTP_TLS=none",
		"MAILROOM_SMTP_TIMEOUT=5s",
		"MAILROOM_RETRY_INITIAL_INTERVAL=50ms",
		"MAILROOM_RETRY_MAX_INTERVAL=1s",
		"MAILROOM_OUTBOX_POLL_INTERVAL=100ms",
		"MAILROOM_HTTP_SHUTDOWN_TIMEOUT=10s",
		"MAILROOM_LOG_LEVEL=warn",
	)
}

// readyz is the status of GET base/readyz (0 if there was no answer).
func readyz(tb testing.TB, base string) int {
	tb.Helper()
	client := apispec.Client(tb, &http.Client{Timeout: 5 * time.Second})
	resp, err := client.Get(base + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// countStatus counts the emails with status, up to 100.
func countStatus(tb testing.TB, base, status string) int {
	tb.Helper()
	var page e2e.ListPage
	st, err := e2e.GetJSON(context.Background(), e2e.NewHTTPClient(tb), base, "/api/emails?limit=100&status="+status, &page)
	if err != nil || st != http.StatusOK {
		tb.Fatalf("list %s emails: %d %v", status, st, err)
	}
	return len(page.Items)
}
