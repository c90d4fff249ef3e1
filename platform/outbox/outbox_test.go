package outbox_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/mailroom/mailroom/migrations"
	"github.com/mailroom/mailroom/platform/broker"
	"github.com/mailroom/mailroom/platform/outbox"
	"github.com/mailroom/mailroom/platform/sqlite"
	"github.com/mailroom/mailroom/platform/testkit/wait"
)

// waitTimeout bounds every wait on a condition; generous for a loaded 2-core CI
// machine, and far below the one-minute poll interval the wake-up tests rely on.
const waitTimeout = 10 * time.Second

// record is one message as a publisher accepted it.
type record struct {
	topic    string
	uuid     string
	payload  string
	metadata message.Metadata
	at       time.Time
}

// fakePublisher records what it accepts and can be told to fail or to hold calls.
type fakePublisher struct {
	mu       sync.Mutex
	failing  bool
	gate     chan struct{} // when set, Publish waits for it to close
	only     string        // when set, failing and gate apply to this topic only
	entered  chan struct{} // receives once per Publish call, if set
	waiting  int           // calls waiting for the gate now
	most     int           // the most calls that waited for the gate at once
	failures []record      // messages of calls that failed
	accepted []record
}

var errBrokerDown = errors.New("broker down")

func (p *fakePublisher) Publish(topic string, msgs ...*message.Message) error {
	p.mu.Lock()
	applies := p.only == "" || p.only == topic
	gate, entered := p.gate, p.entered
	if !applies {
		gate = nil
	}
	if gate != nil {
		p.waiting++
		p.most = max(p.most, p.waiting)
	}
	p.mu.Unlock()
	if entered != nil {
		entered <- struct{}{}
	}
	if gate != nil {
		<-gate
		p.mu.Lock()
		p.waiting--
		p.mu.Unlock()
	}
	now := time.Now()
	recs := make([]record, len(msgs))
	for i, m := range msgs {
		recs[i] = record{topic: topic, uuid: m.UUID, payload: string(m.Payload), metadata: maps.Clone(m.Metadata), at: now}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failing && applies {
		p.failures = append(p.failures, recs...)
		return errBrokerDown
	}
	p.accepted = append(p.accepted, recs...)
	return nil
}

func (p *fakePublisher) Close() error { return nil }

func (p *fakePublisher) setFailing(v bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failing = v
}

// blocked returns how many calls wait for the gate now, and the most that ever did
// at once.
func (p *fakePublisher) blocked() (now, most int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waiting, p.most
}

func (p *fakePublisher) snapshot() (accepted, failures []record) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.accepted), slices.Clone(p.failures)
}

func (p *fakePublisher) acceptedUUIDs() []string {
	acc, _ := p.snapshot()
	out := make([]string, len(acc))
	for i, r := range acc {
		out[i] = r.uuid
	}
	return out
}

// eventually waits until cond holds, failing the test after waitTimeout.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	wait.Until(tb, waitTimeout, 2*time.Millisecond, cond, func() string { return "waiting until " + what })
}

// stays checks that cond keeps holding for the whole window: an observation over a
// bounded time, used only for "this must not happen" claims.
func stays(tb testing.TB, window time.Duration, what string, cond func() bool) {
	tb.Helper()
	end := time.Now().Add(window)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(end) {
		if !cond() {
			tb.Fatalf("%s no longer holds", what)
		}
		<-tick.C
	}
}

// testEnv is a migrated database, an outbox and a fake publisher.
type testEnv struct {
	db  *sqlite.DB
	box *outbox.Outbox
	pub *fakePublisher
}

func newEnv(tb testing.TB) *testEnv {
	tb.Helper()
	db, err := sqlite.Open(filepath.Join(tb.TempDir(), "outbox.db"))
	if err != nil {
		tb.Fatalf("open database: %v", err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	if err := sqlite.Migrate(context.Background(), db, sqlite.MigrationSet{Name: "platform", FS: migrations.For("platform")}); err != nil {
		tb.Fatalf("migrate: %v", err)
	}
	return &testEnv{db: db, box: outbox.New(), pub: &fakePublisher{}}
}

// newMsg builds a message with a partition key and a payload.
func newMsg(key, payload string) *message.Message {
	m := message.NewMessage(watermill.NewUUID(), []byte(payload))
	if key != "" {
		m.Metadata.Set(broker.PartitionKeyKey, key)
	}
	return m
}

// add commits msgs to topic in one transaction, due at at (zero: now).
func (e *testEnv) add(tb testing.TB, topic string, at time.Time, msgs ...*message.Message) {
	tb.Helper()
	err := e.db.Tx(context.Background(), func(tx *sql.Tx) error {
		for _, m := range msgs {
			if err := e.box.Add(context.Background(), tx, topic, m, at); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("add %d messages: %v", len(msgs), err)
	}
}

func (e *testEnv) stats(tb testing.TB) outbox.Stats {
	tb.Helper()
	s, err := outbox.ReadStats(context.Background(), e.db)
	if err != nil {
		tb.Fatalf("ReadStats: %v", err)
	}
	return s
}

func (e *testEnv) newRelay(cfg outbox.RelayConfig) *outbox.Relay {
	return outbox.NewRelay(e.db, e.box, e.pub, cfg, slog.New(slog.DiscardHandler))
}

// running is a relay started by run.
type running struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned
	err    error         // Run's result, once done is closed
}

// run starts relay until the test ends, when it is cancelled and must return.
func run(tb testing.TB, relay *outbox.Relay, ready <-chan struct{}) *running {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan struct{})}
	go func() {
		r.err = relay.Run(ctx, ready)
		close(r.done)
	}()
	tb.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
			if r.err != nil {
				tb.Errorf("Run returned %v", r.err)
			}
		case <-time.After(waitTimeout):
			tb.Errorf("Run did not return within %s of cancel", waitTimeout)
		}
	})
	return r
}

func closedChan() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

func TestCommittedRowsArePublishedAndRolledBackRowsNeverAre(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()

	committed := []*message.Message{newMsg("k1", "one"), newMsg("k2", "two"), newMsg("", "three")}
	committed[0].Metadata.Set("email_id", "e-1")
	e.add(t, "email.send", time.Time{}, committed...)

	rolledBack := []*message.Message{newMsg("k1", "ghost-1"), newMsg("k3", "ghost-2")}
	errAbort := errors.New("abort")
	err := e.db.Tx(ctx, func(tx *sql.Tx) error {
		for _, m := range rolledBack {
			if err := e.box.Add(ctx, tx, "email.send", m, time.Time{}); err != nil {
				return err
			}
		}
		return errAbort
	})
	if !errors.Is(err, errAbort) {
		t.Fatalf("Tx = %v, want the abort", err)
	}
	// A row committed after the rollback: once it is out, everything before it is.
	sentinel := newMsg("k1", "sentinel")
	e.add(t, "email.events", time.Time{}, sentinel)

	run(t, e.newRelay(outbox.RelayConfig{Workers: 2, PollInterval: 10 * time.Millisecond}), closedChan())
	eventually(t, "the committed rows and the sentinel are published", func() bool {
		return len(e.pub.acceptedUUIDs()) >= len(committed)+1
	})
	eventually(t, "the outbox is empty", func() bool { return e.stats(t).Pending == 0 })

	accepted, _ := e.pub.snapshot()
	byUUID := map[string]record{}
	for _, r := range accepted {
		if _, dup := byUUID[r.uuid]; dup {
			t.Errorf("message %s published twice", r.uuid)
		}
		byUUID[r.uuid] = r
	}
	for _, m := range rolledBack {
		if _, ok := byUUID[m.UUID]; ok {
			t.Errorf("message %q of a rolled-back transaction was published", m.Payload)
		}
	}
	for _, m := range append(committed, sentinel) {
		r, ok := byUUID[m.UUID]
		if !ok {
			t.Errorf("committed message %q was not published", m.Payload)
			continue
		}
		if r.payload != string(m.Payload) {
			t.Errorf("message %s payload = %q, want %q", m.UUID, r.payload, m.Payload)
		}
		if !maps.Equal(r.metadata, m.Metadata) {
			t.Errorf("message %s metadata = %v, want %v", m.UUID, r.metadata, m.Metadata)
		}
	}
	if got := byUUID[sentinel.UUID].topic; got != "email.events" {
		t.Errorf("sentinel published to %q, want email.events", got)
	}
	if got := byUUID[committed[0].UUID].topic; got != "email.send" {
		t.Errorf("message published to %q, want email.send", got)
	}
}

// TestOrderHoldsPerPartitionKeyAcrossKeysAndWorkers runs with a short poll, where the
// relay's sweeps also start over on the clock, and a long one, where only a freed
// key or the end of the due rows makes a sweep start over.
func TestOrderHoldsPerPartitionKeyAcrossKeysAndWorkers(t *testing.T) {
	for _, poll := range []time.Duration{20 * time.Millisecond, time.Minute} {
		t.Run(fmt.Sprintf("poll %s", poll), func(t *testing.T) { testOrderHoldsPerPartitionKey(t, poll) })
	}
}

func testOrderHoldsPerPartitionKey(t *testing.T, poll time.Duration) {
	e := newEnv(t)
	const keys, perKey, backlog = 37, 15, 8
	want := map[string][]string{}
	// addRound commits the rows of rounds [from, to) of every key in one transaction,
	// interleaving the keys; half the keys alternate between two topics.
	addRound := func(from, to int) {
		err := e.db.Tx(context.Background(), func(tx *sql.Tx) error {
			for seq := from; seq < to; seq++ {
				for k := range keys {
					key := fmt.Sprintf("email-%02d", k)
					m := newMsg(key, fmt.Sprintf("%s#%02d", key, seq))
					want[key] = append(want[key], m.UUID)
					topic := "email.send"
					if k%2 == 0 && seq%2 == 1 {
						topic = "email.events"
					}
					if err := e.box.Add(context.Background(), tx, topic, m, time.Time{}); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("add rounds %d to %d: %v", from, to, err)
		}
	}
	// A backlog committed at once (rows sharing their due millisecond, so only the
	// insertion order orders them), then rounds committed while the relay publishes.
	addRound(0, backlog)
	run(t, e.newRelay(outbox.RelayConfig{Workers: 4, BatchSize: 5, PollInterval: poll}), closedChan())
	for seq := backlog; seq < perKey; seq++ {
		addRound(seq, seq+1)
		e.box.Notify()
	}
	eventually(t, "every row is published", func() bool { return len(e.pub.acceptedUUIDs()) >= keys*perKey })

	accepted, _ := e.pub.snapshot()
	if len(accepted) != keys*perKey {
		t.Fatalf("%d messages published, want %d", len(accepted), keys*perKey)
	}
	got := map[string][]string{}
	for _, r := range accepted {
		key := r.metadata.Get(broker.PartitionKeyKey)
		got[key] = append(got[key], r.uuid)
	}
	for key, uuids := range want {
		if !slices.Equal(got[key], uuids) {
			t.Errorf("key %s published out of order or incompletely", key)
		}
	}
	// The last batch is deleted just after the publisher accepted it.
	eventually(t, "the outbox is empty", func() bool { return e.stats(t).Pending == 0 })
}

func TestAScheduledRowIsPublishedAtItsDueTimeNotAtTheNextPoll(t *testing.T) {
	cases := []struct {
		name string
		// addWhileRunning adds the row once the relay runs, with the Notify a
		// module sends after its commit; otherwise the row is there before Run.
		addWhileRunning bool
	}{
		{name: "a row present when the relay starts", addWhileRunning: false},
		{name: "a row added while the relay runs", addWhileRunning: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			// A one-minute poll: only the relay's own due-time arithmetic can publish
			// the row within the test's deadline.
			relay := e.newRelay(outbox.RelayConfig{Workers: 2, PollInterval: time.Minute})
			m := newMsg("k", "later")
			at := time.Now().Add(400 * time.Millisecond).Truncate(time.Millisecond)
			if !c.addWhileRunning {
				e.add(t, "email.send", at, m)
			}
			run(t, relay, closedChan())
			if c.addWhileRunning {
				e.add(t, "email.send", at, m)
				e.box.Notify()
			}
			if s := e.stats(t); time.Now().Before(at) && (s.Pending != 1 || s.DuePending != 0) {
				t.Errorf("before its time: stats = %+v, want 1 pending and none due", s)
			}
			eventually(t, "the scheduled row is published", func() bool { return len(e.pub.acceptedUUIDs()) == 1 })
			accepted, _ := e.pub.snapshot()
			if accepted[0].at.Before(at) {
				t.Errorf("published at %s, %s before its time %s", accepted[0].at.Format(time.StampMilli),
					at.Sub(accepted[0].at), at.Format(time.StampMilli))
			}
			if late := accepted[0].at.Sub(at); late > 5*time.Second {
				t.Errorf("published %s after its time; the relay waited for a poll instead of the due time", late)
			}
		})
	}
}

func TestNotifyWakesAnIdleRelayPromptly(t *testing.T) {
	e := newEnv(t)
	// With a one-minute poll interval, only Notify explains a publish within seconds.
	run(t, e.newRelay(outbox.RelayConfig{Workers: 3, PollInterval: time.Minute}), closedChan())
	for round := range 5 {
		m := newMsg(fmt.Sprintf("key-%d", round), "hello")
		e.add(t, "email.send", time.Time{}, m)
		e.box.Notify()
		start := time.Now()
		eventually(t, fmt.Sprintf("round %d's row is published", round), func() bool {
			return slices.Contains(e.pub.acceptedUUIDs(), m.UUID)
		})
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("round %d: published %s after Notify", round, d)
		}
	}
}

func TestAFailedPublishKeepsTheRowsAndRetriesThem(t *testing.T) {
	e := newEnv(t)
	e.pub.setFailing(true)
	msgs := []*message.Message{newMsg("k", "first"), newMsg("k", "second"), newMsg("k", "third")}
	e.add(t, "email.send", time.Time{}, msgs...)
	run(t, e.newRelay(outbox.RelayConfig{Workers: 1, PollInterval: time.Minute}), closedChan())

	eventually(t, "the relay has tried at least twice", func() bool {
		_, failures := e.pub.snapshot()
		return len(failures) >= 2*len(msgs)
	})
	if s := e.stats(t); s.Pending != len(msgs) {
		t.Fatalf("%d rows in the outbox while the broker fails, want all %d kept", s.Pending, len(msgs))
	}
	e.pub.setFailing(false)
	eventually(t, "the rows are published once the broker is back", func() bool { return e.stats(t).Pending == 0 })

	accepted, failures := e.pub.snapshot()
	var want []string
	for _, m := range msgs {
		want = append(want, m.UUID)
	}
	var got []string
	for _, r := range accepted {
		got = append(got, r.uuid)
	}
	if !slices.Equal(got, want) {
		t.Errorf("accepted %v, want each message once, in order: %v", got, want)
	}
	for _, f := range failures {
		if !slices.Contains(want, f.uuid) {
			t.Errorf("a failed attempt carried an unknown message %s", f.uuid)
		}
	}
}

func TestTheRelayPublishesNothingBeforeReady(t *testing.T) {
	t.Run("rows wait until ready closes", func(t *testing.T) {
		e := newEnv(t)
		msgs := []*message.Message{newMsg("a", "1"), newMsg("b", "2")}
		e.add(t, "email.send", time.Time{}, msgs...)
		ready := make(chan struct{})
		run(t, e.newRelay(outbox.RelayConfig{Workers: 2, PollInterval: 10 * time.Millisecond}), ready)
		e.box.Notify()
		stays(t, 300*time.Millisecond, "nothing published before ready", func() bool {
			acc, fail := e.pub.snapshot()
			return len(acc) == 0 && len(fail) == 0
		})
		close(ready)
		eventually(t, "both rows are published after ready", func() bool { return len(e.pub.acceptedUUIDs()) == 2 })
	})
	t.Run("cancelling before ready returns without publishing", func(t *testing.T) {
		e := newEnv(t)
		e.add(t, "email.send", time.Time{}, newMsg("a", "1"))
		r := run(t, e.newRelay(outbox.RelayConfig{}), make(chan struct{}))
		r.cancel()
		select {
		case <-r.done:
			if r.err != nil {
				t.Errorf("Run = %v, want nil", r.err)
			}
		case <-time.After(waitTimeout):
			t.Fatal("Run did not return after cancel while waiting for ready")
		}
		if n := len(e.pub.acceptedUUIDs()); n != 0 {
			t.Errorf("%d messages published although ready never closed", n)
		}
		if s := e.stats(t); s.Pending != 1 {
			t.Errorf("%d rows pending, want the 1 row kept", s.Pending)
		}
	})
}

func TestRunReturnsAfterCancelOnlyOnceTheInFlightPublishFinished(t *testing.T) {
	e := newEnv(t)
	gate := make(chan struct{})
	e.pub.gate = gate
	e.pub.entered = make(chan struct{}, 16)
	m := newMsg("k", "in flight")
	e.add(t, "email.send", time.Time{}, m)

	relay := e.newRelay(outbox.RelayConfig{Workers: 1, PollInterval: time.Minute})
	type hookCall struct {
		ids []string
		at  time.Time
	}
	hooked := make(chan hookCall, 4)
	relay.OnPublished(func(_ context.Context, _ *sql.Tx, _ string, msgs []*message.Message, at time.Time) error {
		var ids []string
		for _, m := range msgs {
			ids = append(ids, m.UUID)
		}
		hooked <- hookCall{ids: ids, at: at}
		return nil
	})
	r := run(t, relay, closedChan())
	var entered time.Time
	select {
	case <-e.pub.entered:
		entered = time.Now()
	case <-time.After(waitTimeout):
		t.Fatal("the relay never called Publish")
	}
	r.cancel()
	select {
	case <-r.done:
		t.Fatalf("Run returned (%v) while a publish was in flight", r.err)
	case <-time.After(200 * time.Millisecond):
	}
	close(gate)
	select {
	case <-r.done:
		if r.err != nil {
			t.Errorf("Run = %v, want nil", r.err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Run did not return after the in-flight publish finished")
	}
	// The broker accepted the message, so its row is gone: a restart does not send
	// it again.
	if s := e.stats(t); s.Pending != 0 {
		t.Errorf("%d rows pending after the accepted publish, want 0", s.Pending)
	}
	select {
	case call := <-hooked:
		if !slices.Equal(call.ids, []string{m.UUID}) {
			t.Errorf("hook got %v, want [%s]", call.ids, m.UUID)
		}
		// The hook is told when the publish began, not when the broker let go of it.
		if accepted, _ := e.pub.snapshot(); len(accepted) != 1 || call.at.After(entered) || call.at.After(accepted[0].at) {
			t.Errorf("hook's time %s is after the publish began (%s)", call.at.Format(time.StampMicro), entered.Format(time.StampMicro))
		}
	default:
		t.Error("the published hook did not run for the in-flight message")
	}
}

func TestPublishedHookRunsInTheDeletingTransaction(t *testing.T) {
	e := newEnv(t)
	if _, err := e.db.Write.Exec("CREATE TABLE hook_log (uuid TEXT NOT NULL, topic TEXT NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	// Two keys, so that both rows travel in one unit (one key's rows go one by one).
	msgs := []*message.Message{newMsg("k1", "a"), newMsg("k2", "b")}
	e.add(t, "email.send", time.Time{}, msgs...)

	type observation struct {
		topic         string
		uuids         []string
		inTx, outside int
		err           error
	}
	var (
		mu    sync.Mutex
		calls []observation
	)
	relay := e.newRelay(outbox.RelayConfig{Workers: 1, PollInterval: time.Minute})
	relay.OnPublished(func(ctx context.Context, tx *sql.Tx, topic string, published []*message.Message, _ time.Time) error {
		obs := observation{topic: topic}
		for _, m := range published {
			obs.uuids = append(obs.uuids, m.UUID)
			if _, err := tx.ExecContext(ctx, "INSERT INTO hook_log (uuid, topic) VALUES (?, ?)", m.UUID, topic); err != nil {
				return err
			}
		}
		// Within the transaction the rows are already deleted; every other connection
		// still sees them until it commits.
		obs.err = errors.Join(
			tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM outbox").Scan(&obs.inTx),
			e.db.Read.QueryRowContext(ctx, "SELECT COUNT(*) FROM outbox").Scan(&obs.outside),
		)
		mu.Lock()
		calls = append(calls, obs)
		first := len(calls) == 1
		mu.Unlock()
		if first {
			return errors.New("hook failed") // rolls back the delete and the insert
		}
		return nil
	})
	run(t, relay, closedChan())
	eventually(t, "the rows leave the outbox", func() bool { return e.stats(t).Pending == 0 })

	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 2 {
		t.Fatalf("hook ran %d times, want 2 (one failure, one success)", len(calls))
	}
	want := []string{msgs[0].UUID, msgs[1].UUID}
	for i, c := range calls {
		if c.err != nil {
			t.Fatalf("call %d: %v", i, c.err)
		}
		if c.topic != "email.send" || !slices.Equal(c.uuids, want) {
			t.Errorf("call %d got %s %v, want email.send %v", i, c.topic, c.uuids, want)
		}
		if c.inTx != 0 || c.outside != len(msgs) {
			t.Errorf("call %d: the transaction saw %d rows and other connections %d; want 0 and %d",
				i, c.inTx, c.outside, len(msgs))
		}
	}
	var logged int
	if err := e.db.Read.QueryRow("SELECT COUNT(*) FROM hook_log").Scan(&logged); err != nil {
		t.Fatal(err)
	}
	if logged != len(msgs) {
		t.Errorf("hook_log holds %d rows, want %d: the failed call's writes must roll back with it", logged, len(msgs))
	}
	// A failing hook means the rows were not marked published: they went out again.
	if n := len(e.pub.acceptedUUIDs()); n != 2*len(msgs) {
		t.Errorf("%d publishes, want %d (each message again after the hook failed)", n, 2*len(msgs))
	}
}

// TestPublishingGoesOnWhileADeleteWaitsButAKeysNextRowWaitsForIt holds the deleting
// transaction of the first row: other keys still go out, the key's next row waits
// until the first is deleted and its hooks ran (so what a consumer records about the
// next message never comes before this one's "published"), and no row is published
// twice meanwhile.
func TestPublishingGoesOnWhileADeleteWaitsButAKeysNextRowWaitsForIt(t *testing.T) {
	e := newEnv(t)
	a, b := newMsg("k1", "a"), newMsg("k1", "b")
	others := []*message.Message{newMsg("k2", "c"), newMsg("k3", "d"), newMsg("k4", "e")}
	// All committed up front: the held delete holds the one writer.
	e.add(t, "email.send", time.Time{}, append([]*message.Message{a, b}, others...)...)
	release := make(chan struct{})
	var once sync.Once
	relay := e.newRelay(outbox.RelayConfig{Workers: 2, RunSize: 1, PollInterval: time.Minute})
	relay.OnPublished(func(context.Context, *sql.Tx, string, []*message.Message, time.Time) error {
		once.Do(func() { <-release }) // the first delete waits, and the deleter with it
		return nil
	})
	run(t, relay, closedChan())
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(free) // before run's cleanup waits for the relay, even when a check fails

	eventually(t, "a and the other keys are published while the deletes wait", func() bool {
		return len(e.pub.acceptedUUIDs()) == 1+len(others)
	})
	stays(t, 200*time.Millisecond, "b waits for a's delete, and nothing is published twice", func() bool {
		return !slices.Contains(e.pub.acceptedUUIDs(), b.UUID) && len(e.pub.acceptedUUIDs()) == 1+len(others)
	})
	free()
	eventually(t, "the rows leave the outbox", func() bool { return e.stats(t).Pending == 0 })
	got := e.pub.acceptedUUIDs()
	want := []string{a.UUID, b.UUID, others[0].UUID, others[1].UUID, others[2].UUID}
	if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) || got[len(got)-1] != b.UUID {
		t.Fatalf("published %v; want each row once, b last (after a's delete)", got)
	}
}

func TestReadStatsCountsPendingAndDueRows(t *testing.T) {
	e := newEnv(t)
	start := time.Now()
	if s := e.stats(t); s != (outbox.Stats{}) {
		t.Errorf("empty outbox: stats = %+v, want zero", s)
	}
	e.add(t, "email.send", time.Time{}, newMsg("a", "now"), newMsg("b", "now"))
	e.add(t, "email.send", time.Now().Add(-time.Hour), newMsg("c", "in the past, so due now"))
	e.add(t, "email.send", time.Now().Add(time.Hour), newMsg("d", "later"), newMsg("e", "later"), newMsg("f", "later"))

	s := e.stats(t)
	if s.Pending != 6 || s.DuePending != 3 {
		t.Errorf("stats = %+v, want 6 pending of which 3 due", s)
	}
	elapsed := time.Since(start) + time.Millisecond
	if s.OldestDueAge < 0 || s.OldestDueAge > elapsed {
		t.Errorf("OldestDueAge = %s, want between 0 and %s", s.OldestDueAge, elapsed)
	}
}

// TestUnitsNoWorkerStartedStayInTheOutboxOnCancel cancels the relay while its only
// worker is inside Publish and the next units are planned: those are not published
// during shutdown; they stay in the outbox for the next start.
func TestUnitsNoWorkerStartedStayInTheOutboxOnCancel(t *testing.T) {
	e := newEnv(t)
	gate := make(chan struct{})
	e.pub.gate = gate
	e.pub.entered = make(chan struct{}, 16)
	msgs := []*message.Message{newMsg("k1", "a"), newMsg("k2", "b"), newMsg("k3", "c")}
	e.add(t, "email.send", time.Time{}, msgs...)

	r := run(t, e.newRelay(outbox.RelayConfig{Workers: 1, RunSize: 1, PollInterval: time.Minute}), closedChan())
	select {
	case <-e.pub.entered:
	case <-time.After(waitTimeout):
		t.Fatal("the relay never called Publish")
	}
	r.cancel()
	close(gate)
	select {
	case <-r.done:
	case <-time.After(waitTimeout):
		t.Fatal("Run did not return after the in-flight publish finished")
	}
	if got := e.pub.acceptedUUIDs(); !slices.Equal(got, []string{msgs[0].UUID}) {
		t.Errorf("published %v during shutdown, want only the one in flight (%s)", got, msgs[0].UUID)
	}
	if s := e.stats(t); s.Pending != 2 {
		t.Errorf("%d rows left in the outbox, want the 2 not started", s.Pending)
	}
}

func TestAwaitPublishedClosesOnlyOnceTheRelayPublishedTheRow(t *testing.T) {
	e := newEnv(t)
	e.pub.setFailing(true)
	msg, other := newMsg("k", "retry"), newMsg("j", "other")
	published, stop := e.box.AwaitPublished(msg.UUID)
	defer stop()
	stillWaiting, stopOther := e.box.AwaitPublished("never-added")
	defer stopOther()
	e.add(t, "email.send.retry.5s", time.Time{}, msg, other)
	run(t, e.newRelay(outbox.RelayConfig{Workers: 1, PollInterval: time.Minute}), closedChan())

	eventually(t, "the relay has tried to publish", func() bool { _, failures := e.pub.snapshot(); return len(failures) > 0 })
	select {
	case <-published:
		t.Fatal("AwaitPublished closed while the broker refused the row")
	default:
	}
	e.pub.setFailing(false)
	select {
	case <-published:
	case <-time.After(waitTimeout):
		t.Fatalf("AwaitPublished not closed %s after the broker took the row", waitTimeout)
	}
	if !slices.Contains(e.pub.acceptedUUIDs(), msg.UUID) {
		t.Error("closed, yet the publisher never accepted the row")
	}
	select {
	case <-stillWaiting:
		t.Error("the channel of a uuid never added closed")
	default:
	}
}
