package persecond_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mailroom/mailroom/platform/persecond"
)

// clock is a time the test moves by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newClock() *clock {
	return &clock{t: time.Date(2026, 12, 6, 7, 0, 0, 250_000_000, time.UTC)}
}

const (
	accepted = iota
	sent
)

func TestEachSecondKeepsItsOwnCountsOldestFirstTheCurrentLast(t *testing.T) {
	c := newClock()
	counts := persecond.New(5, c.now, "accepted", "sent")
	counts.Add(accepted, 2)
	counts.Add(sent, 1)
	c.advance(time.Second)
	counts.Add(accepted, 3)
	c.advance(500 * time.Millisecond) // 07:00:01.75: still the second of the Add above
	counts.Add(accepted, 1)

	s := counts.Snapshot()
	if want := []int64{0, 0, 0, 2, 4}; !slices.Equal(s.Series["accepted"], want) {
		t.Errorf("accepted %v, want %v", s.Series["accepted"], want)
	}
	if want := []int64{0, 0, 0, 1, 0}; !slices.Equal(s.Series["sent"], want) {
		t.Errorf("sent %v, want %v", s.Series["sent"], want)
	}
	if want := time.Date(2026, 12, 6, 7, 0, 1, 0, time.UTC); !s.Newest.Equal(want) {
		t.Errorf("newest second %s, want %s", s.Newest, want)
	}
	if want := time.Date(2026, 12, 6, 7, 0, 0, 250_000_000, time.UTC); !s.Started.Equal(want) {
		t.Errorf("started %s, want %s", s.Started, want)
	}
}

func TestSecondsWithNothingCountedAreZeroAndTheSnapshotRollsOnByItself(t *testing.T) {
	c := newClock()
	counts := persecond.New(4, c.now, "accepted")
	counts.Add(accepted, 7)
	c.advance(2 * time.Second) // no Add since: the snapshot itself moves on

	if got, want := counts.Snapshot().Series["accepted"], []int64{0, 7, 0, 0}; !slices.Equal(got, want) {
		t.Errorf("accepted %v, want %v", got, want)
	}
	c.advance(2 * time.Second) // the 7 is now older than the window
	if got, want := counts.Snapshot().Series["accepted"], []int64{0, 0, 0, 0}; !slices.Equal(got, want) {
		t.Errorf("after the window passed: %v, want %v", got, want)
	}
}

func TestASecondReusedByTheRingStartsFromZero(t *testing.T) {
	c := newClock()
	counts := persecond.New(3, c.now, "accepted")
	counts.Add(accepted, 1) // second 0, row 0
	c.advance(3 * time.Second)
	counts.Add(accepted, 5) // second 3, row 0 again: the 1 must be gone
	if got, want := counts.Snapshot().Series["accepted"], []int64{0, 0, 5}; !slices.Equal(got, want) {
		t.Errorf("accepted %v, want %v", got, want)
	}
	c.advance(time.Hour) // far past the window: every row emptied, once
	counts.Add(accepted, 2)
	if got, want := counts.Snapshot().Series["accepted"], []int64{0, 0, 2}; !slices.Equal(got, want) {
		t.Errorf("an hour later: %v, want %v", got, want)
	}
}

func TestAClockThatGoesBackCountsInTheNewestSecond(t *testing.T) {
	c := newClock()
	counts := persecond.New(3, c.now, "accepted")
	c.advance(2 * time.Second)
	counts.Add(accepted, 1)
	c.advance(-2 * time.Second)
	counts.Add(accepted, 1)
	s := counts.Snapshot()
	if got, want := s.Series["accepted"], []int64{0, 0, 2}; !slices.Equal(got, want) {
		t.Errorf("accepted %v, want %v", got, want)
	}
	if want := time.Date(2026, 12, 6, 7, 0, 2, 0, time.UTC); !s.Newest.Equal(want) {
		t.Errorf("newest second %s, want %s: a clock going back moved it back", s.Newest, want)
	}
}

func TestNothingOrLessThanNothingIsNotCounted(t *testing.T) {
	c := newClock()
	counts := persecond.New(2, c.now, "accepted")
	counts.Add(accepted, 0)
	counts.Add(accepted, -3)
	if got, want := counts.Snapshot().Series["accepted"], []int64{0, 0}; !slices.Equal(got, want) {
		t.Errorf("accepted %v, want %v", got, want)
	}
}

func TestConcurrentAddsAreAllCounted(t *testing.T) {
	c := newClock()
	counts := persecond.New(60, c.now, "accepted", "sent")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				counts.Add(accepted, 1)
				counts.Add(sent, 2)
			}
		})
	}
	wg.Go(func() {
		for range 100 {
			_ = counts.Snapshot()
		}
	})
	wg.Wait()
	s := counts.Snapshot()
	if got := s.Series["accepted"][59]; got != 8000 {
		t.Errorf("accepted this second: %d, want 8000", got)
	}
	if got := s.Series["sent"][59]; got != 16000 {
		t.Errorf("sent this second: %d, want 16000", got)
	}
}

func TestASnapshotIsACopy(t *testing.T) {
	c := newClock()
	counts := persecond.New(2, c.now, "accepted")
	s := counts.Snapshot()
	counts.Add(accepted, 1)
	if got := s.Series["accepted"][1]; got != 0 {
		t.Errorf("a snapshot taken before the Add shows %d", got)
	}
	if counts.Window() != 2 || len(s.Series["accepted"]) != 2 {
		t.Errorf("window %d, series of %d, want 2 and 2", counts.Window(), len(s.Series["accepted"]))
	}
}

// BenchmarkAdd is the cost Add puts on the accept path (about 670 µs of CPU per
// email): it must stay in nanoseconds, with no allocation.
func BenchmarkAdd(b *testing.B) {
	counts := persecond.New(300, nil, "accepted", "sent")
	b.ReportAllocs()
	for b.Loop() {
		counts.Add(accepted, 1)
	}
}

func TestAddDoesNotAllocate(t *testing.T) {
	counts := persecond.New(300, nil, "accepted", "sent")
	if n := testing.AllocsPerRun(1000, func() { counts.Add(sent, 1) }); n != 0 {
		t.Errorf("Add allocates %v times per call, want 0", n)
	}
}
