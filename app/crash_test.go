package app_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/mail"
	"strconv"
	"testing"
	"time"

	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/app/internal/e2e"
	"github.com/mailroom/mailroom/platform/testkit/smtptest"
)

// crashLanes is delivery.concurrency in the crash test: sends in flight at once.
const crashLanes = 16

// TestCrashRecovery is the delivery promise under kill -9: the real binary serves on
// one database while clients post continuously; it is killed with SIGKILL at
// random-ish moments and restarted on the same database, at least twice. In the end
// every email that was answered 202 must have reached the SMTP server and be `sent`.
// Duplicates are allowed (a kill between the server's 250 and the local record) and
// only counted.
func TestCrashRecovery(t *testing.T) {
	t.Parallel()
	rig := e2e.NewRig(t, "",
		"MAILROOM_RETRY_INITIAL_INTERVAL=50ms",
		"MAILROOM_RETRY_MAX_INTERVAL=1s",
		"MAILROOM_DELIVERY_CONCURRENCY="+strconv.Itoa(crashLanes),
	)
	srv, base := rig.SMTP, rig.Base
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := func() *e2e.Process {
		t.Helper()
		began := time.Now()
		p := rig.Serve(t, ctx)
		t.Logf("pid %d ready in %s", p.Pid(), time.Since(began).Round(time.Millisecond))
		return p
	}

	proc := start()
	ld := e2e.StartLoad(t, ctx, base, e2e.LoadConfig{Workers: 8, Subject: "crash test"})
	defer ld.Stop()

	const kills = 3
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
	for k := 1; k <= kills; k++ {
		target := ld.Accepted.Load() + int64(100+rng.IntN(300))
		apptest.Eventually(t, 60*time.Second, func() bool { return ld.Accepted.Load() >= target },
			func() string {
				return fmt.Sprintf("load: %d accepted, want %d; %s", ld.Accepted.Load(), target, ld.Summary())
			})
		proc.Kill()
		t.Logf("kill -9 #%d after %d accepted (%d delivered so far)", k, ld.Accepted.Load(), srv.Count())
		proc = start()
	}
	target := ld.Accepted.Load() + 200
	apptest.Eventually(t, 60*time.Second, func() bool { return ld.Accepted.Load() >= target },
		func() string { return fmt.Sprintf("load: %d accepted, want %d", ld.Accepted.Load(), target) })
	ids := ld.Stop()
	t.Logf("load stopped: %d answered 202; %s", len(ids), ld.Summary())

	// Every 202 reaches the SMTP server...
	rx := newReceivedIndex()
	rx.waitReceived(t, srv, ids, 90*time.Second, nil)
	// ...and is recorded as sent, none dead.
	checkAllSent(t, ctx, base, ids)

	dups, extra := rx.duplicates(), rx.unknown(ids)
	// A copy is repeated only when the process dies between the server's 250 and the
	// local record: at most one send in flight per lane at each kill.
	if dups > kills*crashLanes {
		t.Errorf("%d duplicate deliveries across %d kills with %d lanes: more than a kill can explain", dups, kills, crashLanes)
	}
	t.Logf("%d emails answered 202 across %d kills; %d messages received: %d duplicates (allowed), %d emails delivered whose 202 the client never saw",
		len(ids), kills, srv.Count(), dups, extra)

	code, err := proc.Terminate(30 * time.Second)
	if err != nil || code != 0 {
		t.Errorf("final instance: exit code %d (%v) after SIGTERM, want 0; log:\n%s", code, err, e2e.LogTail(proc.Log(), 4000))
	}
	if log := proc.Log(); e2e.HasDataRace(log) {
		t.Errorf("the race detector found a data race in mailroom serve:\n%s", e2e.LogTail(log, 20000))
	}
}

// receivedIndex maps X-Mailroom-Email-ID to how many times the SMTP server got it,
// reading only messages that arrived since the last update.
type receivedIndex struct {
	scanned int
	count   map[string]int
}

func newReceivedIndex() *receivedIndex { return &receivedIndex{count: map[string]int{}} }

func (r *receivedIndex) update(srv *smtptest.Server) {
	msgs := srv.Messages()
	for _, m := range msgs[r.scanned:] {
		id := ""
		if msg, err := mail.ReadMessage(bytes.NewReader(m.Data)); err == nil {
			id = msg.Header.Get("X-Mailroom-Email-ID")
		}
		r.count[id]++
	}
	r.scanned = len(msgs)
}

// waitReceived waits until every email in ids reached srv, and fails the test after
// timeout naming some that did not; more, if not nil, adds to that message.
func (r *receivedIndex) waitReceived(t *testing.T, srv *smtptest.Server, ids []string, timeout time.Duration, more func() string) {
	t.Helper()
	apptest.Eventually(t, timeout, func() bool {
		r.update(srv)
		return r.missing(ids) == 0
	}, func() string {
		msg := fmt.Sprintf("%d of %d accepted emails never reached the SMTP server (e.g. %v); %d messages received",
			r.missing(ids), len(ids), r.someMissing(ids, 5), srv.Count())
		if more != nil {
			msg += "; " + more()
		}
		return msg
	})
}

func (r *receivedIndex) missing(ids []string) int {
	n := 0
	for _, id := range ids {
		if r.count[id] == 0 {
			n++
		}
	}
	return n
}

func (r *receivedIndex) someMissing(ids []string, n int) []string {
	var out []string
	for _, id := range ids {
		if r.count[id] == 0 && len(out) < n {
			out = append(out, id)
		}
	}
	return out
}

func (r *receivedIndex) duplicates() int {
	n := 0
	for _, c := range r.count {
		n += c - 1
	}
	return n
}

// duplicatesOf counts the copies beyond the first of the emails in ids.
func (r *receivedIndex) duplicatesOf(ids []string) int {
	n := 0
	for _, id := range ids {
		n += max(r.count[id]-1, 0)
	}
	return n
}

// unknown counts distinct emails received that are not in ids: accepted by a
// process killed before its 202 reached the client.
func (r *receivedIndex) unknown(ids []string) int {
	known := make(map[string]bool, len(ids))
	for _, id := range ids {
		known[id] = true
	}
	n := 0
	for id := range r.count {
		if !known[id] {
			n++
		}
	}
	return n
}
