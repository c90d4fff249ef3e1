//go:build kafka

package app_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/mailroom/mailroom/app"
	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/app/internal/e2e"
	"github.com/mailroom/mailroom/platform/sqlite"
	"github.com/mailroom/mailroom/platform/testkit/smtptest"
)

// TestKafkaInstancesEachKeepTheOutcomeOfTheEmailsTheyAccepted runs two Mailrooms in
// one delivery consumer group on the shared Kafka node, each with its own SQLite
// database: B in-process, A the real binary. They share the send topic's partitions,
// so either may send an email the other accepted, and the events about it (sent,
// dead-lettered) come from either. Each instance must still show every email it
// accepted as sent, or dead, in its own API, and list exactly its own dead letters:
// not the other's, even once it has read the whole dead-letter topic.
func TestKafkaInstancesEachKeepTheOutcomeOfTheEmailsTheyAccepted(t *testing.T) {
	bin := e2e.Build(t)
	srv := smtptest.Start(t)
	cfg := kafkaConfig(t)
	apptest.UseSMTP(cfg, srv)
	instB := apptest.Start(t, cfg)

	ctx := context.Background()
	dir := t.TempDir()
	addrA, dbA := e2e.FreeAddr(t), filepath.Join(dir, "a.db")
	baseA := "http://" + addrA
	procA := e2e.Serve(t, ctx, bin, subprocessEnv(cfg, srv, dbA, addrA), filepath.Join(dir, "a.log"), baseA)
	idA, idB := instanceIDOf(t, dbA), instB.App.InstanceID()
	if idA == idB {
		t.Fatalf("both instances have the instance id %s", idA)
	}

	admin, err := sarama.NewClusterAdmin(cfg.Kafka.Brokers, sarama.NewConfig())
	if err != nil {
		t.Fatalf("kafka admin: %v", err)
	}
	defer admin.Close()
	shared := waitForTwoMembersSharing(t, admin, cfg)
	t.Logf("instances A %s and B %s share %s: %v", idA, idB, cfg.Topics.Send, shared)

	// Six dead emails each: spread by key over the partitions, some are sent (and
	// dead-lettered) by the other instance.
	const deadEach = 6
	dead := func(name, base string) []string {
		var ids []string
		for i := range deadEach {
			to := fmt.Sprintf("%s-dead-%d@example.com", name, i)
			srv.FailRecipient(to, 550, -1)
			r := apptest.Do(t, base, http.MethodPost, "/api/emails", apptest.NewEmail(to))
			if r.Status != http.StatusAccepted {
				t.Fatalf("POST %s/api/emails: %d %s", base, r.Status, r.Body)
			}
			var acc struct{ ID string }
			r.JSON(t, &acc)
			ids = append(ids, acc.ID)
		}
		return ids
	}
	deadA, deadB := dead("a", baseA), dead("b", instB.URL)
	sentA := postEmails(t, baseA, "a", 60)
	sentB := postEmails(t, instB.URL, "b", 60)

	waitStatus(t, "A", baseA, sentA, "sent")
	waitStatus(t, "B", instB.URL, sentB, "sent")
	waitStatus(t, "A", baseA, deadA, "dead")
	waitStatus(t, "B", instB.URL, deadB, "dead")
	rx := newReceivedIndex()
	rx.update(srv)
	if n := rx.missing(sentA) + rx.missing(sentB); n != 0 {
		t.Errorf("%d emails are sent in their instance's API but never reached the SMTP server", n)
	}

	// Every dead letter is on the topic by now (its email is dead only once a dead
	// letter was parked); once both instances have read all of it, each lists exactly
	// its own.
	for _, g := range []string{app.DeadLettersConsumerGroup(idA), app.DeadLettersConsumerGroup(idB)} {
		waitCaughtUp(t, cfg.Kafka.Brokers, g, cfg.Topics.DeadLetter)
	}
	if got := deadLetterIDs(t, baseA); !sameIDs(got, deadA) {
		t.Errorf("A lists the dead letters %v, want exactly its own %v (B's are %v)", got, sorted(deadA), sorted(deadB))
	}
	if got := deadLetterIDs(t, instB.URL); !sameIDs(got, deadB) {
		t.Errorf("B lists the dead letters %v, want exactly its own %v (A's are %v)", got, sorted(deadB), sorted(deadA))
	}
	if !t.Failed() {
		t.Logf("A: %d sent, %d dead; B: %d sent, %d dead; each status and dead letter where its email was accepted",
			len(sentA), len(deadA), len(sentB), len(deadB))
	}

	code, err := procA.Terminate(30 * time.Second)
	if err != nil || code != 0 {
		t.Errorf("instance A: exit code %d (%v) after SIGTERM, want 0; log:\n%s", code, err, e2e.LogTail(procA.Log(), 4000))
	}
	if log := procA.Log(); e2e.HasDataRace(log) {
		t.Errorf("data race in instance A:\n%s", e2e.LogTail(log, 20000))
	}
}

// instanceIDOf reads the instance id of the database at path, which a running
// instance may hold open.
func instanceIDOf(tb testing.TB, path string) string {
	tb.Helper()
	db, err := sqlite.Open(path)
	if err != nil {
		tb.Fatalf("open %s: %v", path, err)
	}
	defer db.Close()
	id, err := db.InstanceID(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

// waitStatus waits until every email of ids has the status in the API at base, and
// fails naming the first that does not.
func waitStatus(tb testing.TB, name, base string, ids []string, status string) {
	tb.Helper()
	client := e2e.NewHTTPClient(tb)
	next, last := 0, ""
	apptest.Eventually(tb, 2*time.Minute, func() bool {
		for ; next < len(ids); next++ {
			var e e2e.Email
			st, err := e2e.GetJSON(context.Background(), client, base, "/api/emails/"+ids[next], &e)
			if err != nil || st != http.StatusOK || e.Status != status {
				last = fmt.Sprintf("%s (HTTP %d, %v)", e.Status, st, err)
				return false
			}
		}
		return true
	}, func() string {
		return fmt.Sprintf("instance %s: %d of %d emails %s; %s is %s", name, next, len(ids), status, ids[next], last)
	})
}

// deadLetterIDs lists the email ids of the parked dead letters at base.
func deadLetterIDs(tb testing.TB, base string) []string {
	tb.Helper()
	var page struct {
		Items []struct {
			EmailID string `json:"email_id"`
		} `json:"items"`
	}
	st, err := e2e.GetJSON(context.Background(), e2e.NewHTTPClient(tb), base, "/api/dead-letters?"+url.Values{"limit": {"500"}}.Encode(), &page)
	if err != nil || st != http.StatusOK {
		tb.Fatalf("GET %s/api/dead-letters: %d %v", base, st, err)
	}
	var ids []string
	for _, it := range page.Items {
		ids = append(ids, it.EmailID)
	}
	return sorted(ids)
}

func sorted(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}

func sameIDs(a, b []string) bool { return slices.Equal(sorted(a), sorted(b)) }

// waitCaughtUp waits until group has committed, on every partition of topic, the
// offset after the last message: it has handled all the topic holds.
func waitCaughtUp(tb testing.TB, brokers []string, group, topic string) {
	tb.Helper()
	c := sarama.NewConfig()
	client, err := sarama.NewClient(brokers, c)
	if err != nil {
		tb.Fatalf("kafka client: %v", err)
	}
	defer client.Close()
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		tb.Fatalf("kafka admin: %v", err)
	}
	parts, err := client.Partitions(topic)
	if err != nil {
		tb.Fatalf("partitions of %s: %v", topic, err)
	}
	lag := map[int32]int64{}
	apptest.Eventually(tb, time.Minute, func() bool {
		offsets, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: parts})
		if err != nil {
			return false
		}
		clear(lag)
		for _, p := range parts {
			end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
			if err != nil {
				return false
			}
			committed := int64(0)
			if b := offsets.GetBlock(topic, p); b != nil && b.Offset >= 0 {
				committed = b.Offset
			}
			if committed < end {
				lag[p] = end - committed
			}
		}
		return len(lag) == 0
	}, func() string { return fmt.Sprintf("group %s still behind on %s by partition: %v", group, topic, lag) })
}
