//go:build kafka

package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/app/internal/e2e"
	"github.com/mailroom/mailroom/platform/broker"
	"github.com/mailroom/mailroom/platform/config"
	"github.com/mailroom/mailroom/platform/testkit/smtptest"
)

// TestKafkaRebalanceGivesAKilledInstancesPartitionsToTheOtherAndLosesNothing runs two
// Mailrooms in one consumer group on the shared Kafka node: B in-process, A as the
// real binary, each with its own SQLite database (so its own outbox). The send
// topic's partitions are shared between them. A is SIGKILLed while its partitions
// still hold undelivered mail that B accepted and published; B must take those
// partitions over and deliver all of its mail while A is down. Mail A accepted but
// had not yet published waits in A's outbox, so A is restarted on the same database,
// and then every email accepted by either instance must have reached the SMTP
// server, and shown as sent by the instance that accepted it. Duplicates (A's sends
// whose offsets were not committed yet) are counted.
//
// The SMTP server answers DATA after 250 ms and A sends 4 at a time (B 16), so A's
// partitions keep a backlog for several seconds: the kill lands while A still has
// work to hand over.
func TestKafkaRebalanceGivesAKilledInstancesPartitionsToTheOtherAndLosesNothing(t *testing.T) {
	bin := e2e.Build(t)
	srv := smtptest.Start(t, smtptest.WithReplyDelay(250*time.Millisecond))
	cfg := kafkaConfig(t)
	apptest.UseSMTP(cfg, srv)
	instB := apptest.Start(t, cfg)

	ctx := context.Background()
	dir := t.TempDir()
	addrA := e2e.FreeAddr(t)
	baseA := "http://" + addrA
	// A sends 4 at a time, B 16: A's partitions drain slowest, so the kill finds a
	// backlog there to hand over however long publishing took (on a loaded machine
	// A, sending 16 at a time, had emptied its one partition before the kill).
	envA := append(subprocessEnv(cfg, srv, filepath.Join(dir, "a.db"), addrA), "MAILROOM_DELIVERY_CONCURRENCY=4")
	logA := filepath.Join(dir, "a.log")
	startA := func() *e2e.Process {
		t.Helper()
		return e2e.Serve(t, ctx, bin, envA, logA, baseA)
	}
	procA := startA()

	admin, err := sarama.NewClusterAdmin(cfg.Kafka.Brokers, sarama.NewConfig())
	if err != nil {
		t.Fatalf("kafka admin: %v", err)
	}
	defer admin.Close()
	group, topic := cfg.Kafka.ConsumerGroup, cfg.Topics.Send
	before := waitForTwoMembersSharing(t, admin, cfg)
	t.Logf("group %s before the kill: %v", group, before)

	idsB := postEmails(t, instB.URL, "b", 450)
	idsA := postEmails(t, baseA, "a", 150)
	waitPublished(t, instB.URL, idsB)

	procA.Kill()
	rx := newReceivedIndex()
	rx.update(srv)
	atKill := len(rx.count)
	partitioner := broker.ProducerConfig().Producer.Partitioner(topic)
	partitionOf := func(id string) int32 {
		p, err := partitioner.Partition(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(id)}, int32(cfg.Topics.Partitions))
		if err != nil {
			t.Fatalf("partition of %s: %v", id, err)
		}
		return p
	}
	pendingByPartition := map[int32]int{}
	for _, id := range idsB {
		if rx.count[id] == 0 {
			pendingByPartition[partitionOf(id)]++
		}
	}
	t.Logf("A killed: %d emails delivered so far; B's undelivered mail by partition: %v", atKill, pendingByPartition)

	// B alone holds every partition...
	var after map[string][]int32
	apptest.Eventually(t, 90*time.Second, func() bool {
		after = assignment(t, admin, group, topic)
		return len(after) == 1 && countPartitions(after) == cfg.Topics.Partitions
	}, func() string { return fmt.Sprintf("B alone holding all of %s: %v", topic, after) })
	var takenOver []int32
	for member, parts := range before {
		if _, alive := after[member]; !alive {
			takenOver = append(takenOver, parts...)
		}
	}
	sort.Slice(takenOver, func(i, j int) bool { return takenOver[i] < takenOver[j] })
	backlog := 0
	for _, p := range takenOver {
		backlog += pendingByPartition[p]
	}
	if backlog == 0 {
		t.Fatalf("no undelivered mail was left on the partitions B took over (%v): the kill came too late to test a takeover", takenOver)
	}

	// ...and delivers all of its mail, including the backlog on A's old partitions,
	// while A is down.
	apptest.Eventually(t, 2*time.Minute, func() bool {
		rx.update(srv)
		return rx.missing(idsB) == 0
	}, func() string {
		return fmt.Sprintf("with A down, %d of B's %d emails never reached the SMTP server (e.g. %v)", rx.missing(idsB), len(idsB), rx.someMissing(idsB, 3))
	})
	if !procA.Exited() {
		t.Fatal("instance A is running again: the takeover was not observed with A down")
	}
	t.Logf("with A down, B took over partitions %v and delivered the %d emails waiting there", takenOver, backlog)

	// A's own outbox is published once A is back on its database.
	procA = startA()
	apptest.Eventually(t, 2*time.Minute, func() bool {
		rx.update(srv)
		return rx.missing(idsA) == 0 && rx.missing(idsB) == 0
	}, func() string {
		return fmt.Sprintf("after A's restart, %d of A's %d emails never reached the SMTP server (e.g. %v)", rx.missing(idsA), len(idsA), rx.someMissing(idsA, 3))
	})
	// A duplicate of B's email: A sent it and was killed before its offset was
	// committed. Of A's: that too, or a row A had published but not yet deleted from
	// its outbox, published again at its restart to whichever instance then held
	// the partition.
	t.Logf("all %d emails (A %d, B %d) delivered; %d duplicates: %d of B's emails, %d of A's",
		len(idsA)+len(idsB), len(idsA), len(idsB), rx.duplicates(), rx.duplicatesOf(idsB), rx.duplicatesOf(idsA))
	// Each instance reads every event in a group of its own, so the events B
	// published about A's emails while A was down reach A once it is back.
	waitStatus(t, "A", baseA, idsA, "sent")
	waitStatus(t, "B", instB.URL, idsB, "sent")

	code, err := procA.Terminate(30 * time.Second)
	if err != nil || code != 0 {
		t.Errorf("instance A: exit code %d (%v) after SIGTERM, want 0; log:\n%s", code, err, e2e.LogTail(procA.Log(), 4000))
	}
	if log := procA.Log(); e2e.HasDataRace(log) {
		t.Errorf("data race in instance A:\n%s", e2e.LogTail(log, 20000))
	}
}

// waitForTwoMembersSharing waits until two members of the delivery group share every
// partition of the send topic, each holding some, and returns the assignment.
func waitForTwoMembersSharing(tb testing.TB, admin sarama.ClusterAdmin, cfg *config.Config) map[string][]int32 {
	tb.Helper()
	group, topic := cfg.Kafka.ConsumerGroup, cfg.Topics.Send
	var a map[string][]int32
	apptest.Eventually(tb, 90*time.Second, func() bool {
		a = assignment(tb, admin, group, topic)
		return len(a) == 2 && countPartitions(a) == cfg.Topics.Partitions && everyMemberHasPartitions(a)
	}, func() string { return fmt.Sprintf("two instances sharing %s in group %s: %v", topic, group, a) })
	return a
}

// assignment maps each member of group to its partitions of topic.
func assignment(tb testing.TB, admin sarama.ClusterAdmin, group, topic string) map[string][]int32 {
	tb.Helper()
	descs, err := admin.DescribeConsumerGroups([]string{group})
	if err != nil {
		tb.Fatalf("describe group %s: %v", group, err)
	}
	out := map[string][]int32{}
	for _, d := range descs {
		if d.State != "Stable" {
			return nil
		}
		for id, m := range d.Members {
			a, err := m.GetMemberAssignment()
			if err != nil {
				tb.Fatalf("assignment of %s: %v", id, err)
			}
			var parts []int32
			if a != nil {
				parts = append(parts, a.Topics[topic]...)
			}
			out[id] = parts
		}
	}
	return out
}

func countPartitions(a map[string][]int32) int {
	n := 0
	for _, p := range a {
		n += len(p)
	}
	return n
}

func everyMemberHasPartitions(a map[string][]int32) bool {
	for _, p := range a {
		if len(p) == 0 {
			return false
		}
	}
	return true
}

// postEmails posts n emails to base from 8 goroutines and returns their ids, failing
// the test unless each is answered 202.
func postEmails(tb testing.TB, base, prefix string, n int) []string {
	tb.Helper()
	client := e2e.NewHTTPClient(tb)
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	work := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range work {
				body, _ := json.Marshal(apptest.NewEmail(fmt.Sprintf("%s%d@example.com", prefix, i)))
				acc, st, err := e2e.PostEmail(context.Background(), client, base, body)
				if err == nil && st != http.StatusAccepted {
					err = fmt.Errorf("status %d", st)
				}
				ids[i], errs[i] = acc.ID, err
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			tb.Fatalf("POST %s/api/emails #%d: %v", base, i, err)
		}
	}
	return ids
}

// waitPublished waits until every email's timeline shows it left the outbox: its
// SendEmail is on Kafka.
func waitPublished(tb testing.TB, base string, ids []string) {
	tb.Helper()
	client := e2e.NewHTTPClient(tb)
	next := 0
	apptest.Eventually(tb, time.Minute, func() bool {
		for ; next < len(ids); next++ {
			var e struct {
				Events []apptest.Event `json:"events"`
			}
			st, err := e2e.GetJSON(context.Background(), client, base, "/api/emails/"+ids[next], &e)
			if err != nil || st != http.StatusOK {
				return false
			}
			if !slices.ContainsFunc(e.Events, func(ev apptest.Event) bool { return ev.Type == "published" }) {
				return false
			}
		}
		return true
	}, func() string { return fmt.Sprintf("%d of %d emails published", next, len(ids)) })
}
