package app

import (
	"testing"
	"time"
)

func TestTheRetryPolicyWaitsLongerEachTimeUpToItsCapAndGivesUpByAttemptsOrAge(t *testing.T) {
	p := RetryPolicy{MaxAttempts: 5, Initial: time.Minute, Multiplier: 2, Max: 5 * time.Minute, MaxAge: time.Hour}
	for attempt, want := range map[int]time.Duration{1: time.Minute, 2: 2 * time.Minute, 3: 4 * time.Minute, 4: 5 * time.Minute, 10: 5 * time.Minute} {
		if got := p.Delay(attempt); got != want {
			t.Errorf("Delay(%d) = %v, want %v", attempt, got, want)
		}
	}
	first := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		attempt int
		at      time.Duration
		want    bool
	}{
		{1, 0, false}, {4, 30 * time.Minute, false}, {5, 30 * time.Minute, true},
		{2, 59 * time.Minute, false}, {2, time.Hour, true},
	} {
		if got := p.GivesUp(c.attempt, first, first.Add(c.at)); got != c.want {
			t.Errorf("GivesUp(attempt %d, %v after the first) = %v, want %v", c.attempt, c.at, got, c.want)
		}
	}
}

func TestJitterMovesEachWaitWithinItsFraction(t *testing.T) {
	p := RetryPolicy{MaxAttempts: 3, Initial: time.Second, Multiplier: 2, Max: time.Minute, Jitter: 0.15}
	low, high := time.Duration(0.85*float64(time.Second)), time.Duration(1.15*float64(time.Second))
	seen := map[time.Duration]bool{}
	for range 200 {
		d := p.Jittered(1)
		if d < low || d > high {
			t.Fatalf("Jittered(1) = %v, want within 15%% of 1s", d)
		}
		seen[d] = true
	}
	if len(seen) < 100 {
		t.Errorf("%d distinct waits in 200: the jitter hardly moves them", len(seen))
	}
	if p.Jitter = 0; p.Jittered(2) != 2*time.Second {
		t.Errorf("Jittered without jitter = %v, want the nominal 2s", p.Jittered(2))
	}
}

func TestTheScheduleListsEveryTryUpToTheOneThatGivesUp(t *testing.T) {
	p := RetryPolicy{MaxAttempts: 10, Initial: time.Minute, Multiplier: 2, Max: time.Hour, MaxAge: 10 * time.Minute}
	want := []Try{{1, 0}, {2, time.Minute}, {3, 3 * time.Minute}, {4, 7 * time.Minute}, {5, 15 * time.Minute}}
	got := p.Schedule()
	if len(got) != len(want) {
		t.Fatalf("schedule %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("try %d: %+v, want %+v", i+1, got[i], want[i])
		}
	}
}
