package app

import "sync"

// Unrecorded remembers, in memory, outcomes of tries whose record the store refused
// (a full disk, a read-only database). A redelivery of the same try records the
// remembered outcome instead of sending again: without it, each redelivery during a
// database outage would send one more copy to every recipient the server accepted.
// Memory is enough: it is lost only with the process, the one window where the
// contract allows a second copy. It is safe for concurrent use.
type Unrecorded struct {
	mu       sync.Mutex
	outcomes map[attemptKey]Outcome
}

// attemptKey names one try of an email.
type attemptKey struct {
	emailID         string
	replay, attempt int
}

// NewUnrecorded returns an empty Unrecorded.
func NewUnrecorded() *Unrecorded { return &Unrecorded{outcomes: map[attemptKey]Outcome{}} }

func (u *Unrecorded) remember(k attemptKey, o Outcome) {
	if u == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.outcomes[k] = o
}

func (u *Unrecorded) lookup(k attemptKey) (Outcome, bool) {
	if u == nil {
		return Outcome{}, false
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	o, ok := u.outcomes[k]
	return o, ok
}

func (u *Unrecorded) forget(k attemptKey) {
	if u == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.outcomes, k)
}
