package app

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestARetryWaitsInTheLargestTierNotLongerThanItsDelay(t *testing.T) {
	tiers := RetryTiers{{Delay: 5 * time.Second, Name: "5s"}, {Delay: 30 * time.Second, Name: "30s"},
		{Delay: 2 * time.Minute, Name: "2m"}, {Delay: time.Hour, Name: "1h"}}
	for _, c := range []struct {
		delay time.Duration
		want  string
	}{
		{time.Millisecond, "5s"}, // shorter than every tier: the shortest
		{-time.Second, "5s"},     // already due: the shortest
		{5 * time.Second, "5s"},
		{29 * time.Second, "5s"},
		{30 * time.Second, "30s"},
		{119 * time.Second, "30s"},
		{2 * time.Minute, "2m"},
		{59 * time.Minute, "2m"},
		{2 * time.Hour, "1h"},
		{48 * time.Hour, "1h"},
	} {
		got, ok := tiers.For(c.delay)
		if !ok || got.Name != c.want {
			t.Errorf("For(%v) = %q (%v), want %q", c.delay, got.Name, ok, c.want)
		}
	}
	if _, ok := RetryTiers(nil).For(time.Minute); ok {
		t.Error("For on no tiers is ok, want not ok (the retry waits in the outbox)")
	}
}

// fakeClock is a clock that moves only when its After channel is read from.
type fakeClock struct {
	now    time.Time
	waited []time.Duration
}

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.waited = append(c.waited, d)
	if len(c.waited) == 1 {
		d /= 2 // woken early once, as a timer may be: it must wait again
	}
	c.now = c.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

func TestARetryIsForwardedOnlyOnceItsDueTimeHasCome(t *testing.T) {
	start := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	clock := &fakeClock{now: start}
	w := DueWait{Now: clock.Now, After: clock.After}
	due := start.Add(8 * time.Second)
	if err := w.Until(context.Background(), due); err != nil {
		t.Fatalf("Until: %v", err)
	}
	if clock.now.Before(due) {
		t.Errorf("Until returned at %v, before the due time %v", clock.now, due)
	}
	if want := []time.Duration{8 * time.Second, 4 * time.Second}; !slices.Equal(clock.waited, want) {
		t.Errorf("waits = %v, want %v (the 8s left, then the 4s left after an early wake-up)", clock.waited, want)
	}

	passed := &fakeClock{now: start}
	if err := (DueWait{Now: passed.Now, After: passed.After}).Until(context.Background(), start.Add(-time.Minute)); err != nil || len(passed.waited) > 0 {
		t.Errorf("a retry already due: err %v, waits %v; want at once", err, passed.waited)
	}
}

func TestAWaitingRetryLetsGoWhenItsPartitionIsTakenAway(t *testing.T) {
	start := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	never := DueWait{Now: func() time.Time { return start }, After: func(time.Duration) <-chan time.Time { return nil }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- never.Until(ctx, start.Add(time.Hour)) }()
	cancel() // what the keyed consumer does to a revoked partition's messages
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Until = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Until still waiting 5s after its context was cancelled")
	}
}
