// Package persecond counts events per second over the last few minutes, in memory:
// the live figures of the operator console's overview (GET /api/stats). Counting
// starts at zero with the process; nothing is stored.
package persecond

import (
	"sync"
	"time"
)

// Counts counts events of a fixed set of kinds in one-second buckets, over the last
// Window seconds. It runs no goroutine: Add and Snapshot roll the buckets on when
// they find the clock has moved to a later second. Add costs a clock read and an
// uncontended mutex and never allocates, so it may sit on a hot path. A clock that
// goes back is not followed: what is counted then goes to the newest second. Counts
// is safe for concurrent use.
type Counts struct {
	now     func() time.Time
	kinds   []string
	window  int64
	started time.Time

	mu sync.Mutex
	// newest is the Unix second of the newest bucket.
	newest int64
	// buckets holds window rows of len(kinds) counts; second s is row s mod window.
	buckets []int64
}

// New returns Counts of the given kinds (Add names a kind by its index in kinds)
// over the last window seconds (at least 1), reading the time from now (nil for
// time.Now). Counting starts at now.
func New(window int, now func() time.Time, kinds ...string) *Counts {
	if now == nil {
		now = time.Now
	}
	window = max(window, 1)
	started := now()
	return &Counts{
		now: now, kinds: kinds, window: int64(window), started: started,
		newest: started.Unix(), buckets: make([]int64, window*len(kinds)),
	}
}

// Window is how many seconds Counts remembers: the length of every series of a
// Snapshot.
func (c *Counts) Window() int { return int(c.window) }

// Add counts n events (n >= 0) of the kind at index kind of New's kinds in the
// current second. An index out of range panics: it is a programming error.
func (c *Counts) Add(kind, n int) {
	if n <= 0 {
		return
	}
	sec := c.now().Unix()
	c.mu.Lock()
	c.roll(sec)
	c.buckets[c.row(c.newest)+kind] += int64(n)
	c.mu.Unlock()
}

// Snapshot is what Counts holds at one moment.
type Snapshot struct {
	// Started is when counting began (the process's start, in practice): no second
	// before it was counted.
	Started time.Time
	// Newest is the start of the last second of every series, in UTC: the current
	// one, still being counted.
	Newest time.Time
	// Series holds, for each kind, Window counts, one a second, oldest first; the
	// last is Newest's.
	Series map[string][]int64
}

// Snapshot returns the counts of the last Window seconds, the current one last.
func (c *Counts) Snapshot() Snapshot {
	sec := c.now().Unix()
	s := Snapshot{Started: c.started, Series: make(map[string][]int64, len(c.kinds))}
	series := make([][]int64, len(c.kinds))
	for k, name := range c.kinds {
		series[k] = make([]int64, c.window)
		s.Series[name] = series[k]
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.roll(sec)
	s.Newest = time.Unix(c.newest, 0).UTC()
	oldest := c.newest - c.window + 1
	for i := range c.window {
		row := c.row(oldest + i)
		for k := range series {
			series[k][i] = c.buckets[row+k]
		}
	}
	return s
}

// roll moves the newest bucket on to sec, emptying the buckets of the seconds it
// passes (at most window of them). A sec before the newest is ignored. c.mu is held.
func (c *Counts) roll(sec int64) {
	if sec <= c.newest {
		return
	}
	from := max(c.newest+1, sec-c.window+1)
	for s := from; s <= sec; s++ {
		clear(c.buckets[c.row(s) : c.row(s)+len(c.kinds)])
	}
	c.newest = sec
}

// row is where second sec's counts start in buckets.
func (c *Counts) row(sec int64) int {
	r := sec % c.window
	if r < 0 {
		r += c.window
	}
	return int(r) * len(c.kinds)
}
