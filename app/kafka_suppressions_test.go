//go:build kafka

package app_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/app/internal/e2e"
	"github.com/mailroom/mailroom/platform/config"
	"github.com/mailroom/mailroom/platform/sqlite"
	"github.com/mailroom/mailroom/platform/testkit/smtptest"
)

// listDeployment is an api instance and delivery workers, each the built binary
// with a database of its own, on the suite's Kafka with the topics and groups of
// cfg, the workers sending to srv.
type listDeployment struct {
	bin string
	cfg *config.Config
	srv *smtptest.Server
	dir string
}

// listNode is one process of a split deployment.
type listNode struct {
	name, base, db string
	env            []string
	p              *e2e.Process
}

// start runs `mailroom serve --modules role` as name, on the database at
// <dir>/<name>/mailroom.db, and waits until it is ready.
func (d *listDeployment) start(t *testing.T, name, role string) *listNode {
	t.Helper()
	addr := e2e.FreeAddr(t)
	n := &listNode{name: name, base: "http://" + addr, db: filepath.Join(d.dir, name, "mailroom.db")}
	if err := os.MkdirAll(filepath.Dir(n.db), 0o755); err != nil {
		t.Fatal(err)
	}
	c := d.cfg
	n.env = e2e.SMTPEnv(n.db, addr, d.srv.Host(), d.srv.Port(),
		"MAILROOM_MODULES="+role,
		"MAILROOM_BROKER_KIND=kafka",
		"MAILROOM_KAFKA_BROKERS="+strings.Join(c.Kafka.Brokers, ","),
		"MAILROOM_KAFKA_CONSUMER_GROUP="+c.Kafka.ConsumerGroup,
		"MAILROOM_TOPICS_SEND="+c.Topics.Send,
		"MAILROOM_TOPICS_DEAD_LETTER="+c.Topics.DeadLetter,
		"MAILROOM_TOPICS_EVENTS="+c.Topics.Events,
		"MAILROOM_TOPICS_LIFECYCLE="+c.Topics.Lifecycle,
		"MAILROOM_TOPICS_SUPPRESSIONS="+c.Topics.Suppressions,
	)
	n.p = e2e.Serve(t, context.Background(), d.bin, n.env, filepath.Join(d.dir, name+".log"), n.base)
	return n
}

// stop ends the node with SIGTERM and fails the test unless it exits 0.
func (n *listNode) stop(t *testing.T) {
	t.Helper()
	if code, err := n.p.Terminate(30 * time.Second); err != nil || code != 0 {
		t.Fatalf("%s: SIGTERM: exit %d, %v; log:\n%s", n.name, code, err, e2e.LogTail(n.p.Log(), 4000))
	}
}

// copyOf lists the addresses in the worker's copy of the suppression list
// (delivery_suppressions), sorted, reading its database beside the running process.
func (n *listNode) copyOf(t *testing.T) []string {
	t.Helper()
	db, err := sqlite.OpenExisting(n.db)
	if err != nil {
		t.Fatalf("open %s: %v", n.db, err)
	}
	defer db.Close()
	list, err := sqlite.Query(context.Background(), db, func(sc sqlite.Scanner) (string, error) {
		var a string
		return a, sc.Scan(&a)
	}, `SELECT address FROM delivery_suppressions ORDER BY address`)
	if err != nil {
		t.Fatalf("read %s's delivery_suppressions: %v", n.name, err)
	}
	return list
}

// waitKnows waits until each worker's copy of the list is exactly want (sorted).
func waitKnows(t *testing.T, want []string, workers ...*listNode) {
	t.Helper()
	for _, w := range workers {
		var got []string
		apptest.Eventually(t, time.Minute, func() bool {
			got = w.copyOf(t)
			return slices.Equal(got, want)
		}, func() string {
			return fmt.Sprintf("%s's copy of the suppression list is %v, want %v", w.name, got, want)
		})
	}
}

// postTo posts n emails to the address at the api instance and returns their ids.
func postTo(t *testing.T, api *listNode, address string, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		r := apptest.Do(t, api.base, http.MethodPost, "/api/emails", apptest.NewEmail(address))
		var acc struct{ ID string }
		r.JSON(t, &acc)
		if r.Status != http.StatusAccepted || acc.ID == "" {
			t.Fatalf("POST /api/emails to %s: %d %s", address, r.Status, r.Body)
		}
		ids[i] = acc.ID
	}
	return ids
}

// listedAt returns the API's suppressions whose address contains text.
func listedAt(t *testing.T, api *listNode, text string) []struct{ Address, Source, EmailID string } {
	t.Helper()
	r := apptest.Do(t, api.base, http.MethodGet, "/api/suppressions?address="+text, nil)
	var page struct {
		Items []struct {
			Address, Source string
			EmailID         string `json:"email_id"`
		}
	}
	r.JSON(t, &page)
	if r.Status != http.StatusOK {
		t.Fatalf("GET %s/api/suppressions: %d %s", api.name, r.Status, r.Body)
	}
	out := make([]struct{ Address, Source, EmailID string }, len(page.Items))
	for i, it := range page.Items {
		out[i] = struct{ Address, Source, EmailID string }{it.Address, it.Source, it.EmailID}
	}
	return out
}

// TestKafkaSplitDeploymentKeepsOneSuppressionList runs an api instance and two
// delivery workers (the built binary, each its own database) on the suite's Kafka:
// the suppression list is the topic's, so an operator's suppression at the API and
// a hard bounce on either worker hold on every worker, and a worker whose data
// directory was wiped learns the whole list again before it sends anything.
func TestKafkaSplitDeploymentKeepsOneSuppressionList(t *testing.T) {
	const emails = 30 // per step: over 3 partitions, both workers get some but for a chance of (2/3)^30
	d := &listDeployment{bin: e2e.Build(t), cfg: kafkaConfig(t), srv: smtptest.Start(t), dir: t.TempDir()}
	api := d.start(t, "api", config.ModulesAPI)
	w1, w2 := d.start(t, "worker-1", config.ModulesDelivery), d.start(t, "worker-2", config.ModulesDelivery)
	admin, err := sarama.NewClusterAdmin(d.cfg.Kafka.Brokers, sarama.NewConfig())
	if err != nil {
		t.Fatalf("kafka admin: %v", err)
	}
	defer admin.Close()
	waitForTwoMembersSharing(t, admin, d.cfg)
	const byOperator, bounced, removed = "operator@example.com", "bounced@example.com", "removed@example.com"

	t.Run("an operator's suppression at the API stops sends on both workers", func(t *testing.T) {
		if r := apptest.Do(t, api.base, http.MethodPost, "/api/suppressions", map[string]string{"address": byOperator, "reason": "asked us to stop"}); r.Status != http.StatusCreated {
			t.Fatalf("POST /api/suppressions: %d %s", r.Status, r.Body)
		}
		waitKnows(t, []string{byOperator}, w1, w2)
		ids := postTo(t, api, byOperator, emails)
		waitStatus(t, "api", api.base, ids, "dead")
		if n := d.srv.Attempts(byOperator); n != 0 {
			t.Errorf("%d RCPT TO %s; want none: it is suppressed", n, byOperator)
		}
		one, two := sentBy(t, w1.db, ids), sentBy(t, w2.db, ids)
		if one == 0 || two == 0 || one+two != emails {
			t.Errorf("worker 1 handled %d and worker 2 %d of the %d emails; want both some, together all", one, two, emails)
		}
	})

	t.Run("a hard bounce on one worker is listed at the API and honoured by the other", func(t *testing.T) {
		d.srv.FailRecipient(bounced, 550, 1) // once: a second try would be delivered
		first := postTo(t, api, bounced, 1)
		waitStatus(t, "api", api.base, first, "dead")
		bouncer, other := w1, w2
		if sentBy(t, w2.db, first) == 1 {
			bouncer, other = w2, w1
		}
		apptest.Eventually(t, time.Minute, func() bool {
			l := listedAt(t, api, bounced)
			return len(l) == 1 && l[0].Source == "bounce" && l[0].EmailID == first[0]
		}, func() string { return fmt.Sprintf("the API lists %+v for %s", listedAt(t, api, bounced), bounced) })
		waitKnows(t, []string{bounced, byOperator}, other)
		ids := postTo(t, api, bounced, emails)
		waitStatus(t, "api", api.base, ids, "dead")
		if n := d.srv.Attempts(bounced); n != 1 {
			t.Errorf("%d RCPT TO %s; want the one that bounced on %s", n, bounced, bouncer.name)
		}
		if n := sentBy(t, other.db, ids); n == 0 {
			t.Errorf("%s, which did not see the bounce, handled none of the %d later emails: the test proves nothing", other.name, emails)
		}
	})

	t.Run("a worker started on an empty data directory knows every suppression before it sends", func(t *testing.T) {
		if r := apptest.Do(t, api.base, http.MethodPost, "/api/suppressions", map[string]string{"address": removed}); r.Status != http.StatusCreated {
			t.Fatalf("POST /api/suppressions: %d %s", r.Status, r.Body)
		}
		if r := apptest.Do(t, api.base, http.MethodDelete, "/api/suppressions/"+removed, nil); r.Status != http.StatusNoContent {
			t.Fatalf("DELETE /api/suppressions/%s: %d %s", removed, r.Status, r.Body)
		}
		w1.stop(t)
		w2.stop(t)
		// Mail waits in the send topic while no worker runs; then worker 2 starts
		// alone on an empty data directory: a new database, a new instance id, a new
		// group for the list, read from the topic's start before any send.
		ids := append(postTo(t, api, byOperator, emails/2), postTo(t, api, bounced, emails/2)...)
		before := d.srv.Attempts(byOperator) + d.srv.Attempts(bounced)
		if err := os.RemoveAll(filepath.Dir(w2.db)); err != nil {
			t.Fatal(err)
		}
		fresh := d.start(t, "worker-2", config.ModulesDelivery)
		waitStatus(t, "api", api.base, ids, "dead")
		if after := d.srv.Attempts(byOperator) + d.srv.Attempts(bounced); after != before {
			t.Errorf("the fresh worker sent %d RCPT TO suppressed addresses; want none", after-before)
		}
		if n := sentBy(t, fresh.db, ids); n != len(ids) {
			t.Errorf("the fresh worker handled %d of %d emails; want all, it ran alone", n, len(ids))
		}
		waitKnows(t, []string{bounced, byOperator}, fresh)
	})
}
