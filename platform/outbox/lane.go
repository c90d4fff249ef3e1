package outbox

import (
	"context"
	"time"
)

// maxLanes bounds the lanes, and so the publishers (Workers each): Mailroom's rows
// name three topics, but a relay must not grow goroutines with whatever its rows
// name. Topics past the first maxLanes share one overflow lane, where they can wait
// for each other, but nothing breaks.
const maxLanes = 16

// lane queues the units of one topic (or of every topic past maxLanes) and has up to
// Workers publishers of its own, so a topic whose publishes block holds up only its
// own rows. Only the dispatcher touches its fields; its publishers share only the
// units channel.
type lane struct {
	// units holds units handed out that no publisher took yet: up to Workers, so a
	// publisher finds its next unit the moment it is done with the last.
	units      chan unit
	queued     []unit // planned, not yet handed out
	queuedRows int    // rows in queued
	readRows   int    // rows the current read took for this lane, not yet queued
	handed     int    // units handed out and not yet reported back
	publishers int    // publishers started
	// lastReturn is when a publish of this lane last returned, or when the lane got
	// work after having none: with units handed out, a lane quiet for a
	// PollInterval is blocked (see dispatcher.mayPlan).
	lastReturn time.Time
	// backoff is the pause after the last failed publish, doubled by each failure in
	// a row; pausedUntil is when the pause ends (zero when not paused). A paused lane
	// keeps its queue and hands out nothing.
	backoff     time.Duration
	pausedUntil time.Time
	// refused is set when the current sweep passed rows of this lane because it
	// could take no more; once it can, the sweep starts over to pick them up.
	refused bool
}

func newLane(workers int) *lane {
	return &lane{units: make(chan unit, workers)}
}

// paused tells whether the lane waits out a failed publish.
func (l *lane) paused() bool { return !l.pausedUntil.IsZero() }

// takes tells whether the lane takes one more row now: not past limit rows queued,
// so a topic whose publishes block or fail does not pull its whole backlog into
// memory.
func (l *lane) takes(limit int) bool {
	return l.queuedRows+l.readRows < limit
}

// hungry tells whether the lane's publishers may soon run out of units: fewer than
// workers are queued.
func (l *lane) hungry(workers int) bool {
	return !l.paused() && len(l.queued) < workers
}

// blocked tells whether the lane's publishes have stopped returning: units are out
// and none came back for quiet.
func (l *lane) blocked(now time.Time, quiet time.Duration) bool {
	return l.handed > 0 && now.Sub(l.lastReturn) >= quiet
}

// queue appends rw to the lane's last queued unit, or starts a new one when that is
// full or of another topic (on the overflow lane). The last unit may grow though an
// earlier read started it: every planned row has a key of its own, so units need no
// order among themselves.
func (l *lane) queue(rw row, runSize int) {
	if n := len(l.queued); n > 0 && len(l.queued[n-1]) < runSize && l.queued[n-1][0].topic == rw.topic {
		l.queued[n-1] = append(l.queued[n-1], rw)
	} else {
		l.queued = append(l.queued, unit{rw})
	}
	l.queuedRows++
}

// next takes the first queued unit off the queue.
func (l *lane) next() unit {
	u := l.queued[0]
	l.queued = l.queued[1:]
	l.queuedRows -= len(u)
	return u
}

// putBack puts a unit whose publish failed back at the front of the queue: its rows
// stay planned and go first when the lane's pause ends.
func (l *lane) putBack(u unit) {
	l.queued = append([]unit{u}, l.queued...)
	l.queuedRows += len(u)
}

// takeBack empties the units channel of what no publisher took, and returns it.
func (l *lane) takeBack() []unit {
	var back []unit
	for {
		select {
		case u := <-l.units:
			l.handed--
			back = append(back, u)
		default:
			return back
		}
	}
}

// publishResult is what a publisher reports for each unit it took.
type publishResult struct {
	lane *lane
	published
	err error
}

// publishUnits is one publisher of lane l: it publishes the units handed to units,
// one Publish call each, and reports each back on results, until units is closed.
// A unit taken once ctx is done is not published but reported with ctx's error, so
// its rows stay in the outbox.
func (r *Relay) publishUnits(ctx context.Context, l *lane, units <-chan unit, results chan<- publishResult) {
	for u := range units {
		if err := ctx.Err(); err != nil {
			results <- publishResult{lane: l, published: published{unit: u}, err: err}
			continue
		}
		at := time.Now()
		results <- publishResult{lane: l, published: published{unit: u, at: at}, err: r.publish(u)}
	}
}
