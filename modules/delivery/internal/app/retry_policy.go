package app

import (
	"math/rand/v2"
	"time"
)

// RetryPolicy says when a deferred recipient is tried again, and when it is given up.
// The knobs are Spring's @RetryableTopic (MaxAttempts counts the first try; the wait
// after try n is Initial*Multiplier^(n-1), at most Max) plus what mail needs: Jitter
// spreads the tries of emails deferred together, and MaxAge bounds how long a
// recipient is retried however many attempts are left.
type RetryPolicy struct {
	// MaxAttempts is the tries per replay, the first included (retry.max_attempts).
	MaxAttempts int
	// Initial is the wait after the first try (retry.initial_interval).
	Initial time.Duration
	// Multiplier grows each later wait; at least 1 (retry.multiplier).
	Multiplier float64
	// Max caps every wait (retry.max_interval).
	Max time.Duration
	// MaxAge is how long after the replay's first try a deferred recipient is still
	// tried again (retry.max_age): the first deferral at or after it is final.
	MaxAge time.Duration
	// Jitter is the most a wait is lengthened or shortened by, as a fraction of it
	// (retry.jitter): 0.15 makes each wait 85% to 115% of its nominal length.
	Jitter float64
}

// Delay is the nominal wait after the given try (1-based), before jitter.
func (p RetryPolicy) Delay(attempt int) time.Duration {
	d := float64(p.Initial)
	for i := 1; i < attempt; i++ {
		d *= p.Multiplier
		if d >= float64(p.Max) {
			return p.Max
		}
	}
	return min(time.Duration(d), p.Max)
}

// Jittered is Delay(attempt) moved by up to Jitter of itself, either way, and still
// at most Max: emails deferred together by one outage of a receiving server are not
// all tried again in the same instant.
func (p RetryPolicy) Jittered(attempt int) time.Duration {
	d := p.Delay(attempt)
	if p.Jitter <= 0 {
		return d
	}
	f := 1 + p.Jitter*(2*rand.Float64()-1)
	return min(time.Duration(float64(d)*f), p.Max)
}

// GivesUp reports whether a recipient deferred by the given try is final (failed):
// the tries are used up, or the replay's first try began MaxAge or more ago.
func (p RetryPolicy) GivesUp(attempt int, firstAttemptAt, now time.Time) bool {
	return attempt >= p.MaxAttempts || p.MaxAge > 0 && now.Sub(firstAttemptAt) >= p.MaxAge
}

// Try is one try of a recipient that is deferred every time, in Schedule.
type Try struct {
	// Attempt is the try's number, 1-based.
	Attempt int
	// After is when it happens, counted from the first try, without jitter.
	After time.Duration
}

// Schedule lists the tries of a recipient deferred every time, without jitter, up to
// the one after which it is given up: the table docs/delivery.md shows.
func (p RetryPolicy) Schedule() []Try {
	tries := []Try{{Attempt: 1}}
	var first time.Time
	var at time.Duration
	for n := 1; !p.GivesUp(n, first, first.Add(at)); n++ {
		at += p.Delay(n)
		tries = append(tries, Try{Attempt: n + 1, After: at})
	}
	return tries
}
