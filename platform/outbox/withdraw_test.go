package outbox_test

import (
	"context"
	"database/sql"
	"slices"
	"testing"
	"time"

	"github.com/mailroom/mailroom/platform/outbox"
)

// withdraw runs Outbox.Withdraw in a transaction of its own.
func (e *testEnv) withdraw(tb testing.TB, uuid string, due, notDueBefore time.Time) bool {
	tb.Helper()
	var ok bool
	err := e.db.Tx(context.Background(), func(tx *sql.Tx) error {
		var err error
		ok, err = e.box.Withdraw(context.Background(), tx, uuid, due, notDueBefore)
		return err
	})
	if err != nil {
		tb.Fatalf("Withdraw(%s): %v", uuid, err)
	}
	return ok
}

// reschedule runs Outbox.Reschedule in a transaction of its own.
func (e *testEnv) reschedule(tb testing.TB, uuid string, due, at, notDueBefore time.Time) bool {
	tb.Helper()
	var ok bool
	err := e.db.Tx(context.Background(), func(tx *sql.Tx) error {
		var err error
		ok, err = e.box.Reschedule(context.Background(), tx, uuid, due, at, notDueBefore)
		return err
	})
	if err != nil {
		tb.Fatalf("Reschedule(%s): %v", uuid, err)
	}
	return ok
}

func TestAWithdrawnRowIsNeverPublishedAndOneDueByTheMarginIsNotWithdrawn(t *testing.T) {
	e := newEnv(t)
	now := time.Now()
	later, soon := newMsg("later", "later"), newMsg("soon", "soon")
	laterAt, soonAt := now.Add(time.Hour), now.Add(200*time.Millisecond)
	e.add(t, "email.send", laterAt, later)
	e.add(t, "email.send", soonAt, soon)

	margin := now.Add(time.Second)
	if e.withdraw(t, later.UUID, laterAt.Add(time.Millisecond), margin) {
		t.Fatalf("a row was withdrawn by its uuid with another due time")
	}
	if !e.withdraw(t, later.UUID, laterAt, margin) {
		t.Fatalf("a row due in an hour was not withdrawn")
	}
	if e.withdraw(t, soon.UUID, soonAt, margin) {
		t.Fatalf("a row due within the margin was withdrawn: the relay may hold it already")
	}
	if e.withdraw(t, later.UUID, laterAt, margin) {
		t.Fatalf("a row withdrawn before was reported withdrawn again")
	}
	if s := e.stats(t); s.Pending != 1 {
		t.Fatalf("after the withdraw: %d rows pending, want 1 (the one due within the margin)", s.Pending)
	}

	run(t, e.newRelay(outbox.RelayConfig{PollInterval: 20 * time.Millisecond}), closedChan())
	eventually(t, "the row due soon is published", func() bool { return len(e.pub.acceptedUUIDs()) == 1 })
	if got := e.pub.acceptedUUIDs(); !slices.Equal(got, []string{soon.UUID}) {
		t.Fatalf("published %v, want only %s (the withdrawn %s never)", got, soon.UUID, later.UUID)
	}
	eventually(t, "the published row is deleted", func() bool { return e.stats(t).Pending == 0 })
	if e.withdraw(t, soon.UUID, soonAt, time.Time{}) {
		t.Fatalf("a published row was reported withdrawn")
	}
}

func TestARescheduledRowIsPublishedAtItsNewTimeAndNotAtItsOldOne(t *testing.T) {
	e := newEnv(t)
	// A one-minute poll: only the relay's due-time arithmetic, woken by Notify,
	// publishes the moved rows within the test's deadline.
	run(t, e.newRelay(outbox.RelayConfig{Workers: 2, PollInterval: time.Minute}), closedChan())
	now := time.Now()
	earlier, postponed := newMsg("earlier", "earlier"), newMsg("postponed", "postponed")
	earlierAt, postponedAt := now.Add(time.Hour), now.Add(5*time.Second)
	e.add(t, "email.send", earlierAt, earlier)
	e.add(t, "email.send", postponedAt, postponed)
	e.box.Notify()

	newAt := time.Now().Add(500 * time.Millisecond).Truncate(time.Millisecond)
	if !e.reschedule(t, earlier.UUID, earlierAt, newAt, time.Now().Add(100*time.Millisecond)) {
		t.Fatalf("a row due in an hour was not rescheduled")
	}
	if !e.reschedule(t, postponed.UUID, postponedAt, time.Now().Add(time.Hour), time.Now()) {
		t.Fatalf("a row not due yet was not rescheduled")
	}
	e.box.Notify()

	eventually(t, "the row moved earlier is published", func() bool { return len(e.pub.acceptedUUIDs()) == 1 })
	accepted, _ := e.pub.snapshot()
	if accepted[0].uuid != earlier.UUID {
		t.Fatalf("published %s first, want the row moved earlier (%s)", accepted[0].uuid, earlier.UUID)
	}
	if accepted[0].at.Before(newAt) {
		t.Errorf("published at %s, before its new time %s", accepted[0].at.Format(time.StampMilli), newAt.Format(time.StampMilli))
	}
	eventually(t, "the published row is deleted", func() bool { return e.stats(t).Pending == 1 })
	if s := e.stats(t); s.DuePending != 0 {
		t.Errorf("the postponed row: stats = %+v, want 1 pending and none due", s)
	}
}

func TestRescheduleLeavesARowDueByTheMarginOrGone(t *testing.T) {
	e := newEnv(t)
	due := newMsg("due", "due")
	e.add(t, "email.send", time.Time{}, due)
	var dueAt int64
	if err := e.db.Read.QueryRow(`SELECT available_at FROM outbox WHERE uuid = ?`, due.UUID).Scan(&dueAt); err != nil {
		t.Fatalf("read the row's due time: %v", err)
	}
	if e.reschedule(t, due.UUID, time.UnixMilli(dueAt), time.Now().Add(time.Hour), time.Now().Add(time.Second)) {
		t.Fatalf("a due row was rescheduled: the relay may hold it already")
	}
	if s := e.stats(t); s.DuePending != 1 {
		t.Fatalf("the due row moved: stats = %+v", s)
	}
	gone := newMsg("gone", "gone")
	if e.reschedule(t, gone.UUID, time.Now().Add(time.Minute), time.Now().Add(time.Hour), time.Now()) {
		t.Fatalf("a row never added was reported rescheduled")
	}
}
