package app

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter is a token bucket per API key: each key may make Rate requests per second
// on average and Burst at once. Buckets live in memory, one per key that made a
// request; keys are few (they are made by operators), so the map stays small.
type Limiter struct {
	every rate.Limit
	burst int
	now   func() time.Time
	mu    sync.Mutex
	byKey map[string]*rate.Limiter
}

// NewLimiter returns a limiter of perSecond requests per second and burst at once.
func NewLimiter(perSecond float64, burst int) *Limiter {
	return &Limiter{every: rate.Limit(perSecond), burst: burst, now: time.Now, byKey: map[string]*rate.Limiter{}}
}

// Rate is the configured requests per second, for error messages.
func (l *Limiter) Rate() float64 { return float64(l.every) }

// Allow takes a token of keyID's bucket. When none is left it takes nothing and
// returns how long until one is, rounded up to whole seconds (the unit of
// Retry-After) and at least one.
func (l *Limiter) Allow(keyID string) (ok bool, retryAfter time.Duration) {
	l.mu.Lock()
	lim, found := l.byKey[keyID]
	if !found {
		lim = rate.NewLimiter(l.every, l.burst)
		l.byKey[keyID] = lim
	}
	l.mu.Unlock()
	now := l.now()
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Second
	}
	delay := r.DelayFrom(now)
	if delay == 0 {
		return true, 0
	}
	r.CancelAt(now)
	return false, time.Duration(math.Max(1, math.Ceil(delay.Seconds()))) * time.Second
}
