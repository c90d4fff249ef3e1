package app

import (
	"testing"
	"time"
)

func TestLimiterRefillsAtItsRateAndSaysWhenToRetry(t *testing.T) {
	cases := []struct {
		name      string
		perSecond float64
		burst     int
		// steps: wait this long, then ask; want allowed or the Retry-After.
		steps []step
	}{
		{"a burst is allowed and the next request waits a second", 1, 2, []step{
			{0, true, 0}, {0, true, 0}, {0, false, time.Second},
		}},
		{"a token comes back after 1/rate", 1, 2, []step{
			{0, true, 0}, {0, true, 0}, {0, false, time.Second}, {time.Second, true, 0}, {0, false, time.Second},
		}},
		{"Retry-After rounds a fraction of a second up to 1", 4, 1, []step{
			{0, true, 0}, {0, false, time.Second}, {250 * time.Millisecond, true, 0},
		}},
		{"a slow rate asks for a long wait", 0.1, 1, []step{
			{0, true, 0}, {0, false, 10 * time.Second}, {4 * time.Second, false, 6 * time.Second},
		}},
		{"refused requests take no token", 1, 1, []step{
			{0, true, 0}, {0, false, time.Second}, {0, false, time.Second}, {0, false, time.Second}, {time.Second, true, 0},
		}},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Unix(1_800_000_000, 0)
			l := NewLimiter(tt.perSecond, tt.burst)
			l.now = func() time.Time { return now }
			for i, s := range tt.steps {
				now = now.Add(s.after)
				ok, wait := l.Allow("k")
				if ok != s.ok || wait != s.retry {
					t.Fatalf("step %d: Allow = %v, %s; want %v, %s", i, ok, wait, s.ok, s.retry)
				}
			}
		})
	}
}

type step struct {
	after time.Duration
	ok    bool
	retry time.Duration
}

func TestLimiterKeepsOneBucketPerKey(t *testing.T) {
	l := NewLimiter(0.001, 1)
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("first request of a refused")
	}
	if ok, _ := l.Allow("a"); ok {
		t.Fatal("second request of a allowed past a burst of 1")
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Error("b was refused because a used its bucket")
	}
}
