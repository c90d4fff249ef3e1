//go:build kafka

package app_test

import (
	"bytes"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/platform/testkit/smtptest"
)

// cluster is a real 3-node Kafka cluster of this test's own, run by scripts/kafka.sh.
type cluster struct {
	tb      testing.TB
	env     []string
	brokers []string
}

func startCluster(tb testing.TB, portBase int) *cluster {
	tb.Helper()
	c := &cluster{tb: tb, env: []string{
		"MAILROOM_KAFKA_PORT_BASE=" + strconv.Itoa(portBase),
		"MAILROOM_KAFKA_STATE=" + tb.TempDir() + "/kafka",
	}}
	out := c.script("up", "--nodes", "3")
	c.brokers = strings.Split(strings.TrimSpace(out), ",")
	tb.Cleanup(func() { c.script("down") })
	return c
}

func (c *cluster) script(args ...string) string {
	c.tb.Helper()
	cmd := exec.Command("bash", append([]string{"../scripts/kafka.sh"}, args...)...)
	cmd.Env = append(cmd.Environ(), c.env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		c.tb.Fatalf("kafka.sh %v: %v\n%s", args, err, stderr.String())
	}
	return stdout.String()
}

// leaderOf returns the node id leading a partition of topic.
func (c *cluster) leaderOf(topic string, partition int32, alive []string) int32 {
	c.tb.Helper()
	client, err := sarama.NewClient(alive, sarama.NewConfig())
	if err != nil {
		c.tb.Fatalf("kafka client: %v", err)
	}
	defer client.Close()
	if err := client.RefreshMetadata(topic); err != nil {
		c.tb.Fatalf("metadata: %v", err)
	}
	b, err := client.Leader(topic, partition)
	if err != nil {
		c.tb.Fatalf("leader of %s/%d: %v", topic, partition, err)
	}
	return b.ID()
}

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

	var (
		mu   sync.Mutex
		ids  []string
		sent atomic.Int64
		stop = make(chan struct{})
		wg   sync.WaitGroup
	)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := in.Send(t, apptest.NewEmail(fmt.Sprintf("ha%d@example.com", i)))
				mu.Lock()
				ids = append(ids, id)
				mu.Unlock()
				sent.Add(1)
			}
		}()
	}
	waitSent := func(n int64) {
		apptest.Eventually(t, time.Minute, func() bool { return sent.Load() >= n },
			func() string { return fmt.Sprintf("%d of %d emails accepted", sent.Load(), n) })
	}

	killed := map[int32]bool{}
	for round, partition := range []int32{0, 1} {
		waitSent(int64(200 * (round + 1)))
		leader := kc.leaderOf(cfg.Topics.Send, partition, kc.brokers)
		if killed[leader] {
			leader = kc.leaderOf(cfg.Topics.Send, 2, kc.brokers)
		}
		killed[leader] = true
		t.Logf("round %d: SIGKILL node %d, leader of %s/%d, after %d emails", round+1, leader, cfg.Topics.Send, partition, sent.Load())
		kc.script("kill", strconv.Itoa(int(leader)))
		before := srv.Count()
		waitSent(sent.Load() + 150)
		// Mail keeps flowing on the surviving brokers.
		apptest.Eventually(t, 2*time.Minute, func() bool { return srv.Count() > before+100 },
			func() string { return fmt.Sprintf("delivered %d since the kill", srv.Count()-before) })
		kc.script("start", strconv.Itoa(int(leader)))
		kc.script("wait")
	}
	close(stop)
	wg.Wait()

	mu.Lock()
	accepted := append([]string(nil), ids...)
	mu.Unlock()
	t.Logf("%d emails accepted; waiting for all to reach the SMTP server", len(accepted))
	assertAllDelivered(t, srv, accepted, 3*time.Minute)
}

// assertAllDelivered waits until every id reached srv, and reports duplicates.
func assertAllDelivered(t *testing.T, srv *smtptest.Server, ids []string, timeout time.Duration) {
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
		return fmt.Sprintf("%d of %d accepted emails never reached the SMTP server (first: %v)", len(missing), len(ids), missing[:min(3, len(missing))])
	})
	t.Logf("all %d accepted emails delivered (%d messages received in all)", len(ids), srv.Count())
}
