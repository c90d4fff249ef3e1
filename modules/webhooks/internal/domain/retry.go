package domain

import (
	"fmt"
	"math"
	"time"
)

// RetryPolicy says when a failed try is tried again and when an endpoint that keeps
// failing is disabled.
type RetryPolicy struct {
	// Initial is the wait after the first failed try; each later wait is
	// Multiplier times the one before, capped at MaxDelay.
	Initial    time.Duration
	Multiplier float64
	MaxDelay   time.Duration
	// For is how long after its creation a delivery is tried: a try failing at
	// or after that age makes it failed for good.
	For time.Duration
	// Jitter is the most a wait is lengthened or shortened by, as a fraction of it.
	Jitter float64
	// DisableAfterFailures and DisableAfter: an endpoint whose consecutive failed
	// tries reach DisableAfterFailures, failing for at least DisableAfter, is
	// disabled. DisableAfterFailures 0 never disables.
	DisableAfterFailures int
	DisableAfter         time.Duration
}

// Delay is the wait after the attempts-th failed try (1 for the first), jittered
// by unit, a number in [0, 1): 0.5 is no change.
func (p RetryPolicy) Delay(attempts int, unit float64) time.Duration {
	d := float64(p.Initial) * math.Pow(p.Multiplier, float64(max(attempts-1, 0)))
	if d > float64(p.MaxDelay) || math.IsInf(d, 0) || math.IsNaN(d) {
		d = float64(p.MaxDelay)
	}
	d *= 1 + p.Jitter*(2*unit-1)
	return max(time.Duration(d), time.Millisecond)
}

// GivesUp tells whether a delivery created at created stops being tried once a try
// at now fails.
func (p RetryPolicy) GivesUp(created, now time.Time) bool {
	return now.Sub(created) >= p.For
}

// ShouldDisable tells whether an endpoint with failures consecutive failed tries,
// the first at since, is disabled by a failure at now, and if so why.
func (p RetryPolicy) ShouldDisable(failures int, since, now time.Time, lastError string) (bool, string) {
	if p.DisableAfterFailures <= 0 || failures < p.DisableAfterFailures || now.Sub(since) < p.DisableAfter {
		return false, ""
	}
	return true, fmt.Sprintf("%d consecutive failed tries since %s; last: %s",
		failures, since.UTC().Format(time.RFC3339), lastError)
}

// GoneReason is the disabled_reason of an endpoint that answered 410 Gone at at.
func GoneReason(at time.Time) string {
	return "answered 410 Gone at " + at.UTC().Format(time.RFC3339)
}
