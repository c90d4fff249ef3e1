package outbox_test

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/mailroom/mailroom/platform/broker"
	"github.com/mailroom/mailroom/platform/outbox"
)

// outboxRow is a row to commit: its topic and message.
type outboxRow struct {
	topic string
	msg   *message.Message
}

// addInOrder commits rows in one transaction, in the order given, and returns each
// key's message ids in that order: the order the relay must publish them in.
func (e *testEnv) addInOrder(tb testing.TB, rows []outboxRow) map[string][]string {
	tb.Helper()
	perKey := map[string][]string{}
	err := e.db.Tx(context.Background(), func(tx *sql.Tx) error {
		for _, r := range rows {
			if err := e.box.Add(context.Background(), tx, r.topic, r.msg, time.Time{}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("add %d rows: %v", len(rows), err)
	}
	for _, r := range rows {
		key := r.msg.Metadata.Get(broker.PartitionKeyKey)
		perKey[key] = append(perKey[key], r.msg.UUID)
	}
	return perKey
}

// checkPublishedOnceInKeyOrder fails tb unless the publisher accepted every message
// of want exactly once, and each key's in want's order.
func checkPublishedOnceInKeyOrder(tb testing.TB, pub *fakePublisher, want map[string][]string) {
	tb.Helper()
	accepted, _ := pub.snapshot()
	got := map[string][]string{}
	seen := map[string]bool{}
	for _, r := range accepted {
		if seen[r.uuid] {
			tb.Errorf("message %s published twice", r.uuid)
		}
		seen[r.uuid] = true
		key := r.metadata.Get(broker.PartitionKeyKey)
		got[key] = append(got[key], r.uuid)
	}
	for key, uuids := range want {
		if !slices.Equal(got[key], uuids) {
			tb.Errorf("key %s: published %v, want %v", key, got[key], uuids)
		}
	}
	if n := len(want); len(got) != n {
		tb.Errorf("messages of %d keys published, want %d", len(got), n)
	}
}

// releaseOnCleanup closes gate when the test ends, if it has not: before run's
// cleanup waits for the relay, whose publishes wait for the gate.
func releaseOnCleanup(tb testing.TB, gate chan struct{}) (release func()) {
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	tb.Cleanup(release)
	return release
}

// TestOtherTopicsArePublishedWhileEveryPublishToOneTopicBlocks blocks every publish
// to the send topic, as a Go-channel publish blocks while delivery waits out an SMTP
// outage: the events topic's rows, committed after the send topic's, still go out,
// except the one whose key has a send row before it. Once the send topic is
// released, every row is published once, in order per key.
func TestOtherTopicsArePublishedWhileEveryPublishToOneTopicBlocks(t *testing.T) {
	cases := []struct {
		name  string
		batch int
	}{
		{name: "the free topic's rows in the relay's first read", batch: 256},
		// The relay must read past the blocked topic's rows to reach them.
		{name: "the free topic's rows behind more blocked rows than a read holds", batch: 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			const (
				workers            = 2
				blocked, free      = "email.send", "email.events"
				sendKeys, perKey   = 10, 3
				eventKeys, perKeyB = 6, 2
			)
			e := newEnv(t)
			gate := make(chan struct{})
			e.pub.gate, e.pub.only = gate, blocked

			var rows []outboxRow
			for i := range perKey {
				for k := range sendKeys {
					rows = append(rows, outboxRow{blocked, newMsg(fmt.Sprintf("send-%d", k), fmt.Sprintf("send-%d#%d", k, i))})
				}
			}
			// One key on both topics: its events row must wait for its send row.
			shared := outboxRow{free, newMsg("both", "after its send row")}
			rows = append(rows, outboxRow{blocked, newMsg("both", "blocked")}, shared)
			var freeRows []string
			for i := range perKeyB {
				for k := range eventKeys {
					m := newMsg(fmt.Sprintf("event-%d", k), fmt.Sprintf("event-%d#%d", k, i))
					rows = append(rows, outboxRow{free, m})
					freeRows = append(freeRows, m.UUID)
				}
			}
			want := e.addInOrder(t, rows)

			relay := e.newRelay(outbox.RelayConfig{Workers: workers, RunSize: 1, BatchSize: c.batch, PollInterval: 50 * time.Millisecond})
			run(t, relay, closedChan())
			release := releaseOnCleanup(t, gate)

			eventually(t, "every row of the free topic is published", func() bool {
				got := e.pub.acceptedUUIDs()
				for _, id := range freeRows {
					if !slices.Contains(got, id) {
						return false
					}
				}
				return true
			})
			if now, most := e.pub.blocked(); now != workers || most != workers {
				t.Errorf("%d publishes to %s blocked (at most %d at once), want all %d of its publishers",
					now, blocked, most, workers)
			}
			stays(t, 200*time.Millisecond, "the shared key's events row waits for its blocked send row", func() bool {
				return !slices.Contains(e.pub.acceptedUUIDs(), shared.msg.UUID)
			})
			for _, r := range e.pub.acceptedUUIDs() {
				if !slices.Contains(freeRows, r) {
					t.Errorf("message %s published while its topic was blocked or its key held", r)
				}
			}

			release()
			eventually(t, "every row is published and deleted", func() bool {
				return len(e.pub.acceptedUUIDs()) == len(rows) && e.stats(t).Pending == 0
			})
			checkPublishedOnceInKeyOrder(t, e.pub, want)
		})
	}
}

// TestAFailingTopicPausesOnlyItself makes the broker refuse the send topic until
// its backoff has grown long: rows of the events topic committed meanwhile go out
// at once, not after the send topic's pause.
func TestAFailingTopicPausesOnlyItself(t *testing.T) {
	const failing, free = "email.send", "email.events"
	e := newEnv(t)
	e.pub.failing, e.pub.only = true, failing
	want := e.addInOrder(t, []outboxRow{
		{failing, newMsg("k", "first")}, {failing, newMsg("k", "second")}, {failing, newMsg("k", "third")},
	})
	run(t, e.newRelay(outbox.RelayConfig{Workers: 1, PollInterval: time.Minute}), closedChan())

	// Five failures in a row: the next try comes 1.6s after the last.
	failures := func() int { _, f := e.pub.snapshot(); return len(f) }
	eventually(t, "the send topic failed five times", func() bool { return failures() >= 5 })
	before := failures()
	events := []outboxRow{{free, newMsg("e1", "event")}, {free, newMsg("e2", "event")}, {free, newMsg("e3", "event")}}
	maps := e.addInOrder(t, events)
	e.box.Notify()
	eventually(t, "the events are published", func() bool { return len(e.pub.acceptedUUIDs()) == len(events) })
	if after := failures(); after != before {
		t.Errorf("the send topic was tried %d more times before the events went out; they waited for its pause", after-before)
	}

	e.pub.setFailing(false)
	eventually(t, "every row is published and deleted", func() bool { return e.stats(t).Pending == 0 })
	for k, v := range maps {
		want[k] = v
	}
	checkPublishedOnceInKeyOrder(t, e.pub, want)
}

// TestTopicsPastTheLaneLimitArePublishedByABoundedNumberOfPublishers names twice as
// many topics as the relay keeps lanes: all are published, and never more than
// Workers publishes run at once for each lane and for the one lane the extra topics
// share.
func TestTopicsPastTheLaneLimitArePublishedByABoundedNumberOfPublishers(t *testing.T) {
	const workers = 2
	e := newEnv(t)
	gate := make(chan struct{})
	e.pub.gate = gate
	var rows []outboxRow
	for topic := range 2 * outbox.MaxLanes {
		for k := range workers + 1 {
			rows = append(rows, outboxRow{fmt.Sprintf("topic-%02d", topic), newMsg(fmt.Sprintf("t%02d-k%d", topic, k), "x")})
		}
	}
	want := e.addInOrder(t, rows)
	run(t, e.newRelay(outbox.RelayConfig{Workers: workers, RunSize: 1, PollInterval: time.Minute}), closedChan())
	release := releaseOnCleanup(t, gate)

	bound := (outbox.MaxLanes + 1) * workers
	eventually(t, "every lane's publishers are blocked", func() bool { now, _ := e.pub.blocked(); return now == bound })
	stays(t, 200*time.Millisecond, "no more publishes start", func() bool { _, most := e.pub.blocked(); return most == bound })
	release()
	eventually(t, "every row is published and deleted", func() bool {
		return len(e.pub.acceptedUUIDs()) == len(rows) && e.stats(t).Pending == 0
	})
	checkPublishedOnceInKeyOrder(t, e.pub, want)
}
