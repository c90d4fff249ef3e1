package app

import (
	"context"
	"fmt"
	"time"
)

// RetryTier is one retry topic on Kafka: a deferred recipient's next try whose delay
// is at least Delay (and shorter than the next tier's) waits in Topic until it is
// due, instead of in one worker's outbox.
type RetryTier struct {
	Delay time.Duration
	// Name is Delay as topic names and metrics write it ("5s", "10m", "1h").
	Name  string
	Topic string
}

// RetryTiers are the retry topics, shortest delay first. Empty means retries wait
// in the outbox, due at their time (on Go channels, where one process does all).
type RetryTiers []RetryTier

// For is the tier a retry delay waits in: the largest tier not longer than delay,
// or the shortest when delay is shorter than every tier (it then waits out its own,
// shorter delay there). Within one tier every retry waits between its delay and the
// next tier's, so the oldest message of a partition is about the first due. ok is
// false when there are no tiers.
func (t RetryTiers) For(delay time.Duration) (tier RetryTier, ok bool) {
	if len(t) == 0 {
		return RetryTier{}, false
	}
	tier = t[0]
	for _, c := range t[1:] {
		if c.Delay > delay {
			break
		}
		tier = c
	}
	return tier, true
}

// DueWait waits until a retry is due. Its clock is injected so that tests need not
// wait out real delays.
type DueWait struct {
	// Now is the clock; After returns a channel that receives once d has passed.
	Now   func() time.Time
	After func(d time.Duration) <-chan time.Time
}

// Until returns nil once due has come (at once when it has passed), or ctx's error
// wrapped when ctx ends first: on Kafka a partition taken away by a rebalance
// cancels the context of the retries it holds, so that the partition's next owner
// takes them over instead of the rebalance waiting.
func (w DueWait) Until(ctx context.Context, due time.Time) error {
	for {
		left := due.Sub(w.Now())
		if left <= 0 {
			return nil
		}
		select {
		case <-w.After(left):
		case <-ctx.Done():
			return fmt.Errorf("retry due at %s not forwarded: %w", due.UTC().Format(time.RFC3339Nano), ctx.Err())
		}
	}
}
