package domain_test

import (
	"testing"

	"github.com/mailroom/mailroom/modules/emails/internal/domain"
)

// try is the Report of one try's outcome, its recipients given as address, status
// pairs.
func try(replay, attempt int, states ...string) domain.Report {
	rep := domain.Report{Try: domain.Try{Replay: replay, Attempt: attempt}, Ordered: true}
	for i := 0; i+1 < len(states); i += 2 {
		rep.Recipients = append(rep.Recipients, domain.Recipient{Address: states[i], Status: states[i+1]})
	}
	return rep
}

// applyAll applies reps in turn to an email of the recipients addrs, just accepted.
func applyAll(addrs []string, reps ...domain.Report) domain.Applied {
	var rs []domain.Recipient
	for _, addrA := range addrs {
		rs = append(rs, domain.Recipient{Address: addrA, Type: "to", Status: domain.RecipientPending})
	}
	out := domain.Applied{Recipients: rs}
	for _, rep := range reps {
		out = domain.Apply(out.Standing, out.Recipients, rep)
	}
	return out
}

// statusesOf is each recipient's status by address.
func statusesOf(rs []domain.Recipient) map[string]string {
	m := map[string]string{}
	for _, r := range rs {
		m[r.Address] = r.Status
	}
	return m
}

func wantStatuses(t *testing.T, got []domain.Recipient, want map[string]string) {
	t.Helper()
	g := statusesOf(got)
	if len(g) != len(want) {
		t.Fatalf("recipients = %v, want %v", g, want)
	}
	for addrA, s := range want {
		if g[addrA] != s {
			t.Fatalf("recipient %s is %q, want %q (all: %v)", addrA, g[addrA], s, g)
		}
	}
}

const (
	addrA = "a@example.com"
	addrB = "b@example.com"
)

func TestAnEarlierTrysReportAppliedAfterALaterOneChangesNoRecipientItSpokeOfLater(t *testing.T) {
	// Try 1 defers a and b, try 2 delivers b and defers a, try 3 delivers a: each
	// order in which the reports can arrive ends where try 3 left the email.
	t1 := try(0, 1, addrA, domain.RecipientDeferred, addrB, domain.RecipientDeferred)
	t2 := try(0, 2, addrA, domain.RecipientDeferred, addrB, domain.RecipientDelivered)
	t3 := try(0, 3, addrA, domain.RecipientDelivered)
	for _, tc := range []struct {
		name  string
		order []domain.Report
	}{
		{"in order", []domain.Report{t1, t2, t3}},
		{"the last try first", []domain.Report{t3, t1, t2}},
		{"the first try last", []domain.Report{t2, t3, t1}},
		{"backwards", []domain.Report{t3, t2, t1}},
		{"the middle try last", []domain.Report{t1, t3, t2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := applyAll([]string{addrA, addrB}, tc.order...)
			wantStatuses(t, out.Recipients, map[string]string{addrA: domain.RecipientDelivered, addrB: domain.RecipientDelivered})
			if got := domain.StatusOf(domain.StatusQueued, out.Recipients, out.Standing.DeadLettered); got != domain.StatusSent {
				t.Fatalf("status = %s, want sent", got)
			}
			if out.Standing.Try != (domain.Try{Attempt: 3}) {
				t.Fatalf("standing try = %+v, want attempt 3", out.Standing.Try)
			}
		})
	}
}

func TestAnEarlierTrysReportIsNewsOnlyAboutRecipientsNoLaterTryReported(t *testing.T) {
	// Try 1 delivered a and deferred b; try 2 (carrying b alone) delivered b and
	// arrived first. Try 1's report is then late, but a's verdict is news.
	out := applyAll([]string{addrA, addrB}, try(0, 2, addrB, domain.RecipientDelivered))
	late := domain.Apply(out.Standing, out.Recipients, try(0, 1, addrA, domain.RecipientDelivered, addrB, domain.RecipientDeferred))
	wantStatuses(t, late.Recipients, map[string]string{addrA: domain.RecipientDelivered, addrB: domain.RecipientDelivered})
	if len(late.Changed) != 1 || late.Changed[0].Address != addrA {
		t.Fatalf("changed = %+v, want a alone", late.Changed)
	}
	if late.Current {
		t.Fatal("the late report speaks for the email as a whole (its last error and next try would go back to try 1's)")
	}
	if late.Standing.Try != (domain.Try{Attempt: 2}) {
		t.Fatalf("standing try = %+v, want attempt 2 still", late.Standing.Try)
	}
}

func TestAReportOfTheLatestTryOrALaterOneSpeaksForTheEmail(t *testing.T) {
	out := applyAll([]string{addrA}, try(0, 1, addrA, domain.RecipientDeferred))
	if !out.Current {
		t.Fatal("the first report does not speak for the email")
	}
	next := domain.Apply(out.Standing, out.Recipients, try(0, 2, addrA, domain.RecipientDeferred))
	if !next.Current || next.Standing.Try.Attempt != 2 {
		t.Fatalf("the next try's report: current %v, standing %+v", next.Current, next.Standing)
	}
}

func TestAnEarlierReplaysReportsChangeNothingOnceAReplayStarted(t *testing.T) {
	// Replay 0 ends with a failed and b delivered; its letter is parked and an
	// operator replays a (replay 1). Then replay 0's reports arrive late, a
	// forwarded retry of it among them, and its parked letter again.
	out := applyAll([]string{addrA, addrB},
		try(0, 1, addrA, domain.RecipientDeferred, addrB, domain.RecipientDelivered),
		try(0, 2, addrA, domain.RecipientFailed),
		domain.Report{Try: domain.Try{Replay: 0, Attempt: 2}, Ordered: true, DeadLettered: true},
		domain.Report{Try: domain.Try{Replay: 1}, Ordered: true, Replay: true, Replayed: []string{addrA}},
	)
	wantStatuses(t, out.Recipients, map[string]string{addrA: domain.RecipientPending, addrB: domain.RecipientDelivered})
	if out.Standing != (domain.Standing{Try: domain.Try{Replay: 1}}) {
		t.Fatalf("standing after the replay = %+v, want replay 1, no attempt, no letter", out.Standing)
	}
	for _, late := range []domain.Report{
		try(0, 1, addrA, domain.RecipientDeferred, addrB, domain.RecipientDelivered),
		try(0, 2, addrA, domain.RecipientFailed),
		{Try: domain.Try{Replay: 0, Attempt: 2}, Ordered: true, DeadLettered: true},
	} {
		got := domain.Apply(out.Standing, out.Recipients, late)
		wantStatuses(t, got.Recipients, map[string]string{addrA: domain.RecipientPending, addrB: domain.RecipientDelivered})
		if got.Current || got.Standing != out.Standing || len(got.Changed) != 0 {
			t.Fatalf("late report %+v: current %v, standing %+v, changed %+v", late, got.Current, got.Standing, got.Changed)
		}
	}
}

func TestAReplayMovesAParkedEmailOnAndStartsItsRecipientsOver(t *testing.T) {
	out := applyAll([]string{addrA, addrB},
		try(0, 1, addrA, domain.RecipientBounced, addrB, domain.RecipientBounced),
		domain.Report{Try: domain.Try{Replay: 0, Attempt: 1}, Ordered: true, DeadLettered: true},
	)
	if got := domain.StatusOf(domain.StatusQueued, out.Recipients, out.Standing.DeadLettered); got != domain.StatusDead {
		t.Fatalf("status before the replay = %s, want dead", got)
	}
	replayed := domain.Apply(out.Standing, out.Recipients, domain.Report{Try: domain.Try{Replay: 1}, Ordered: true, Replay: true})
	if !replayed.StartsReplay || !replayed.Current || replayed.Standing.DeadLettered {
		t.Fatalf("replay: starts %v, current %v, standing %+v", replayed.StartsReplay, replayed.Current, replayed.Standing)
	}
	wantStatuses(t, replayed.Recipients, map[string]string{addrA: domain.RecipientPending, addrB: domain.RecipientPending})
	if got := domain.StatusOf(domain.StatusDead, replayed.Recipients, replayed.Standing.DeadLettered); got != domain.StatusQueued {
		t.Fatalf("status after the replay = %s, want queued", got)
	}
	// Its first try delivers both: sent, and replay 1 it stays.
	sent := domain.Apply(replayed.Standing, replayed.Recipients, try(1, 1, addrA, domain.RecipientDelivered, addrB, domain.RecipientDelivered))
	if got := domain.StatusOf(domain.StatusQueued, sent.Recipients, sent.Standing.DeadLettered); got != domain.StatusSent {
		t.Fatalf("status after the replay's try = %s, want sent", got)
	}
}

func TestAReplaysOwnTryReportedBeforeTheReplayIsNotUndoneByIt(t *testing.T) {
	// Replay 1's first try delivers a, and its report arrives before the replay's
	// own event: the email moves to replay 1 (its letter no longer parked), and
	// the replay event, arriving next, starts over nobody that try reported on.
	out := applyAll([]string{addrA, addrB},
		try(0, 1, addrA, domain.RecipientBounced, addrB, domain.RecipientDelivered),
		domain.Report{Try: domain.Try{Replay: 0, Attempt: 1}, Ordered: true, DeadLettered: true},
		try(1, 1, addrA, domain.RecipientDelivered),
	)
	if out.Standing != (domain.Standing{Try: domain.Try{Replay: 1, Attempt: 1}}) {
		t.Fatalf("standing = %+v, want replay 1 attempt 1, no letter", out.Standing)
	}
	late := domain.Apply(out.Standing, out.Recipients, domain.Report{Try: domain.Try{Replay: 1}, Ordered: true, Replay: true, Replayed: []string{addrA}})
	wantStatuses(t, late.Recipients, map[string]string{addrA: domain.RecipientDelivered, addrB: domain.RecipientDelivered})
	if late.StartsReplay || late.Current || len(late.Changed) != 0 {
		t.Fatalf("late replay event: starts %v, current %v, changed %+v", late.StartsReplay, late.Current, late.Changed)
	}
}

func TestALetterOfTheCurrentReplayIsParkedEvenAfterItsLastTry(t *testing.T) {
	out := applyAll([]string{addrA}, try(0, 1, addrA, domain.RecipientBounced))
	parked := domain.Apply(out.Standing, out.Recipients, domain.Report{Try: domain.Try{Attempt: 1}, Ordered: true, DeadLettered: true})
	if !parked.Standing.DeadLettered || !parked.Current {
		t.Fatalf("parked: standing %+v, current %v", parked.Standing, parked.Current)
	}
}

func TestAReportThatNamesNoTryIsAppliedAsItComes(t *testing.T) {
	// An event without an attempt (the field left out) replaces what is there,
	// as every event did before the order rule.
	out := applyAll([]string{addrA}, try(0, 3, addrA, domain.RecipientDelivered))
	unordered := domain.Report{Recipients: []domain.Recipient{{Address: addrA, Status: domain.RecipientDeferred}}}
	got := domain.Apply(out.Standing, out.Recipients, unordered)
	wantStatuses(t, got.Recipients, map[string]string{addrA: domain.RecipientDeferred})
	if !got.Current || got.Standing != out.Standing {
		t.Fatalf("unordered: current %v, standing %+v (was %+v)", got.Current, got.Standing, out.Standing)
	}
	// And a replay without its number starts every recipient not delivered over.
	replay := domain.Apply(got.Standing, got.Recipients, domain.Report{Replay: true})
	wantStatuses(t, replay.Recipients, map[string]string{addrA: domain.RecipientPending})
	if !replay.StartsReplay || replay.Standing.Try.Attempt != 0 {
		t.Fatalf("unordered replay: starts %v, standing %+v", replay.StartsReplay, replay.Standing)
	}
}

func TestARecipientOnlyAReportNamesIsAddedAfterTheOthers(t *testing.T) {
	out := applyAll([]string{addrA}, try(0, 1, addrA, domain.RecipientDelivered, addrB, domain.RecipientSuppressed))
	if len(out.Recipients) != 2 || out.Recipients[1].Address != addrB || out.Recipients[1].Try != (domain.Try{Attempt: 1}) {
		t.Fatalf("recipients = %+v", out.Recipients)
	}
}

func TestTriesAreOrderedByReplayThenAttempt(t *testing.T) {
	for _, tc := range []struct {
		t, u  domain.Try
		after bool
	}{
		{domain.Try{Replay: 0, Attempt: 2}, domain.Try{Replay: 0, Attempt: 1}, true},
		{domain.Try{Replay: 0, Attempt: 1}, domain.Try{Replay: 0, Attempt: 1}, false},
		{domain.Try{Replay: 1, Attempt: 0}, domain.Try{Replay: 0, Attempt: 25}, true},
		{domain.Try{Replay: 0, Attempt: 25}, domain.Try{Replay: 1, Attempt: 1}, false},
	} {
		if got := tc.t.After(tc.u); got != tc.after {
			t.Errorf("%+v.After(%+v) = %v, want %v", tc.t, tc.u, got, tc.after)
		}
	}
}
