package app_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/app/internal/e2e"
)

// smtpOutage is how long the SMTP server is down in TestSMTPFaultsUnderLoad.
const smtpOutage = 20 * time.Second

// faultLanes is delivery.concurrency in the fault tests.
const faultLanes = 8

// TestSMTPFaultsUnderLoad is the delivery promise across SMTP faults, with the real
// binary under continuous load: first the server cuts the connection in the middle
// of DATA for a number of messages, then it is down for 20 s (new connections
// refused, and every open connection cut at its next DATA, as when the server
// process dies). Retries (10 attempts, 200 ms doubling to at most 5 s: 26 s of
// backoff in all) outlast the outage, so every email answered 202 must reach the
// server and be `sent`, none `dead`. A dropped DATA is never recorded by the server,
// so a duplicate here would be Mailroom's doing: they are counted and reported.
func TestSMTPFaultsUnderLoad(t *testing.T) {
	t.Parallel()
	rig := e2e.NewRig(t, "",
		"MAILROOM_RETRY_MAX_ATTEMPTS=10",
		"MAILROOM_RETRY_INITIAL_INTERVAL=200ms",
		"MAILROOM_RETRY_MULTIPLIER=2",
		"MAILROOM_RETRY_MAX_INTERVAL=5s",
		"MAILROOM_DELIVERY_CONCURRENCY="+strconv.Itoa(faultLanes),
	)
	srv, base := rig.SMTP, rig.Base
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	began := time.Now()
	proc := rig.Serve(t, ctx)
	ld := e2e.StartLoad(t, ctx, base, e2e.LoadConfig{Workers: 2, Timeout: 30 * time.Second, Subject: "fault test"})
	defer ld.Stop()
	waitAccepted := func(n int64) {
		t.Helper()
		target := ld.Accepted.Load() + n
		apptest.Eventually(t, 60*time.Second, func() bool { return ld.Accepted.Load() >= target },
			func() string {
				return fmt.Sprintf("load: %d accepted, want %d; %s", ld.Accepted.Load(), target, ld.Summary())
			})
	}
	waitAccepted(100)

	// Phase 1: the next 40 messages are cut off mid-DATA. Once 100 more have
	// arrived, at least 100-faultLanes DATA began after the drops were set, and
	// drops are taken first: all 40 happened.
	const drops = 40
	srv.DropDuringData(drops)
	delivered := srv.Count()
	apptest.Eventually(t, 60*time.Second, func() bool { return srv.Count() >= delivered+drops+60 },
		func() string {
			return fmt.Sprintf("after the drops: %d delivered, want %d", srv.Count(), delivered+drops+60)
		})
	t.Logf("phase 1: %d DATA cut; %d accepted, %d delivered", drops, ld.Accepted.Load(), srv.Count())

	// Phase 2: the server is down for smtpOutage, ended by a timer.
	if err := srv.RefuseConnections(true); err != nil {
		t.Fatal(err)
	}
	srv.DropDuringData(1 << 30)
	outageStart, atOutage := time.Now(), srv.Count()
	acceptedAtOutage := ld.Accepted.Load()
	back := make(chan error, 1)
	time.AfterFunc(smtpOutage, func() {
		srv.DropDuringData(0)
		back <- srv.RefuseConnections(false)
	})
	select {
	case err := <-back:
		if err != nil {
			t.Fatalf("bring the SMTP server back: %v", err)
		}
	case <-time.After(smtpOutage + 30*time.Second):
		t.Fatal("the outage timer did not fire")
	}
	// Only a DATA already past its drop check when the outage began can arrive.
	t.Logf("phase 2: outage of %s; %d accepted meanwhile, %d delivered meanwhile",
		time.Since(outageStart).Round(time.Millisecond), ld.Accepted.Load()-acceptedAtOutage, srv.Count()-atOutage)

	waitAccepted(100)
	ids := ld.Stop()
	t.Logf("load stopped: %d answered 202; %s", len(ids), ld.Summary())
	if !ld.AllAccepted() {
		t.Errorf("under SMTP faults every POST must be answered 202: %s", ld.Summary())
	}

	rx := newReceivedIndex()
	rx.waitReceived(t, srv, ids, 120*time.Second, nil)
	recovered := time.Since(outageStart) - smtpOutage
	checkAllSent(t, ctx, base, ids)
	dups := rx.duplicates()
	t.Logf("FIGURES smtp faults: %d emails answered 202 in %s; %d DATA cut, then %s outage; all delivered %s after the outage ended; %d messages received, %d duplicates, 0 dead",
		len(ids), time.Since(began).Round(time.Second), drops, smtpOutage, recovered.Round(100*time.Millisecond), srv.Count(), dups)
	if dups != 0 {
		t.Errorf("%d duplicate deliveries: the server never recorded a cut-off DATA, so every copy past the first is Mailroom's", dups)
	}
	terminate(t, proc)
}

// checkAllSent waits until every id is listed as sent, and checks that no email is
// dead.
func checkAllSent(t *testing.T, ctx context.Context, base string, ids []string) {
	t.Helper()
	client := e2e.NewHTTPClient(t)
	var notSent []string
	apptest.Eventually(t, 60*time.Second, func() bool {
		sent, err := e2e.ListAll(ctx, client, base, "status=sent", 100)
		if err != nil {
			t.Logf("list sent: %v", err)
			return false
		}
		set := make(map[string]bool, len(sent))
		for _, e := range sent {
			set[e.ID] = true
		}
		notSent = notSent[:0]
		for _, id := range ids {
			if !set[id] {
				notSent = append(notSent, id)
			}
		}
		return len(notSent) == 0
	}, func() string {
		var states []string
		for _, id := range notSent[:min(len(notSent), 5)] {
			var e e2e.Email
			st, err := e2e.GetJSON(ctx, client, base, "/api/emails/"+id, &e)
			states = append(states, fmt.Sprintf("%s: %d %v %s attempts=%d %q", id, st, err, e.Status, e.Attempts, e.LastError))
		}
		return fmt.Sprintf("%d of %d accepted emails are not sent: %v", len(notSent), len(ids), states)
	})
	dead, err := e2e.ListAll(ctx, client, base, "status=dead", 100)
	if err != nil || len(dead) != 0 {
		t.Errorf("dead emails: %d (%v), want none", len(dead), err)
	}
}

// terminate stops proc with SIGTERM, expecting exit code 0 and no data race.
func terminate(t *testing.T, proc *e2e.Process) {
	t.Helper()
	code, err := proc.Terminate(30 * time.Second)
	if err != nil || code != 0 {
		t.Errorf("exit code %d (%v) after SIGTERM, want 0; log:\n%s", code, err, e2e.LogTail(proc.Log(), 4000))
	}
	if log := proc.Log(); e2e.HasDataRace(log) {
		t.Errorf("the race detector found a data race in mailroom serve:\n%s", e2e.LogTail(log, 20000))
	}
}
