//go:build kafka

package app_test

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/app/internal/e2e"
	"github.com/mailroom/mailroom/platform/config"
	"github.com/mailroom/mailroom/platform/testkit/smtptest"
)

// TestKafkaHALosesNothingWhenPartitionLeadersDie runs Mailroom on a 3-broker cluster
// with replication factor 3 and min ISR 2, SIGKILLs the leader of an email.send
// partition under continuous load, restarts it, and does it again with another
// partition's leader. Every email that got 202 must reach the SMTP server.
func TestKafkaHALosesNothingWhenPartitionLeadersDie(t *testing.T) {
	kc := startCluster(t, 29092)
	srv := smtptest.Start(t)
	cfg := kafkaConfig(t)
	cfg.Kafka.Brokers = kc.brokers
	cfg.Topics.ReplicationFactor = 3
	cfg.Topics.MinInsyncReplicas = 2
	apptest.UseSMTP(cfg, srv)
	in := apptest.Start(t, cfg)

	// A steady 100 emails/s offered, below what three partitions deliver on this
	// machine: the backlog a kill leaves is bounded, so the drain below is too.
	ld := e2e.StartLoad(t, context.Background(), in.URL, e2e.LoadConfig{Workers: 4, Every: 40 * time.Millisecond, Subject: "kafka ha"})
	defer ld.Stop()
	waitSent := func(n int64) {
		apptest.Eventually(t, time.Minute, func() bool { return ld.Accepted.Load() >= n },
			func() string { return fmt.Sprintf("%d of %d emails accepted; %s", ld.Accepted.Load(), n, ld.Summary()) })
	}

	killed := map[int32]bool{}
	for round, partition := range []int32{0, 1} {
		waitSent(int64(200 * (round + 1)))
		leader := kc.leaderOf(cfg.Topics.Send, partition, kc.brokers)
		if killed[leader] {
			leader = kc.leaderOf(cfg.Topics.Send, 2, kc.brokers)
		}
		killed[leader] = true
		t.Logf("round %d: SIGKILL node %d, leader of %s/%d, after %d emails", round+1, leader, cfg.Topics.Send, partition, ld.Accepted.Load())
		kc.script("kill", strconv.Itoa(int(leader)))
		before := srv.Count()
		waitSent(ld.Accepted.Load() + 150)
		// Mail keeps flowing on the surviving brokers.
		apptest.Eventually(t, 2*time.Minute, func() bool { return srv.Count() > before+100 },
			func() string { return fmt.Sprintf("delivered %d since the kill", srv.Count()-before) })
		kc.script("start", strconv.Itoa(int(leader)))
		kc.script("wait")
	}
	accepted := ld.Stop()
	if !ld.AllAccepted() {
		t.Errorf("the API did not answer 202 to every POST: %s", ld.Summary())
	}
	t.Logf("%d emails accepted; waiting for all to reach the SMTP server", len(accepted))
	assertAllDelivered(t, srv, cfg, accepted, 3*time.Minute)
}

// assertAllDelivered waits until every id reached srv, and reports duplicates. On
// failure it says where the missing mail is: its send-topic partitions and the
// delivery group's lag on each.
func assertAllDelivered(t *testing.T, srv *smtptest.Server, cfg *config.Config, ids []string, timeout time.Duration) {
	t.Helper()
	var missing []string
	apptest.Eventually(t, timeout, func() bool {
		seen := map[string]int{}
		for _, m := range srv.Messages() {
			if i := bytes.Index(m.Data, []byte("X-Mailroom-Email-ID: ")); i >= 0 {
				rest := m.Data[i+len("X-Mailroom-Email-ID: "):]
				if j := bytes.IndexByte(rest, '\r'); j >= 0 {
					seen[string(rest[:j])]++
				}
			}
		}
		missing = missing[:0]
		for _, id := range ids {
			if seen[id] == 0 {
				missing = append(missing, id)
			}
		}
		return len(missing) == 0
	}, func() string {
		return fmt.Sprintf("%d of %d accepted emails never reached the SMTP server (first: %v); %s",
			len(missing), len(ids), missing[:min(3, len(missing))], deliveryDiagnosis(cfg, missing))
	})
	t.Logf("all %d accepted emails delivered (%d messages received in all)", len(ids), srv.Count())
}
