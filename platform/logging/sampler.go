package logging

import (
	"sync"
	"time"
)

// Sampler lets one event through per interval and counts the ones it held back, so
// that what can happen on every request (an outage failing each one, a client
// sending bad keys in a loop) is logged a line a second, saying how many it stands
// for, never a line a request. It is safe for concurrent use.
type Sampler struct {
	every time.Duration
	mu    sync.Mutex
	next  time.Time
	held  int
}

// NewSampler returns a sampler letting one event through per every.
func NewSampler(every time.Duration) *Sampler { return &Sampler{every: every} }

// Take records one event at now and returns how many events the one let through
// stands for (itself and those held back since the last), or 0 to hold it back.
func (s *Sampler) Take(now time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held++
	if now.Before(s.next) {
		return 0
	}
	n := s.held
	s.held, s.next = 0, now.Add(s.every)
	return n
}
