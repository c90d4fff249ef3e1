// Package retention deletes old rows in small batches, so that a database that
// keeps mail for a period stays bounded without ever holding the one writer for
// long. Each module owns its rules (its own tables, by age and state); this package
// only paces them.
package retention

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Rule deletes rows of one kind that are past their period.
type Rule struct {
	// Name says what the rule deletes, for logs ("emails", "dead letters").
	Name string
	// Delete deletes at most limit rows past their period at now, in one write
	// transaction, and returns how many it deleted. Fewer than limit means none
	// are left.
	Delete func(ctx context.Context, now time.Time, limit int) (int, error)
}

// Config paces a Sweeper.
type Config struct {
	// Interval is retention.interval, the time between two sweeps.
	Interval time.Duration
	// BatchSize is retention.batch_size, the most rows one transaction deletes.
	BatchSize int
	// Pause is the rest between two batches, which lets other writers in; 0 in
	// tests.
	Pause time.Duration
}

// BatchPause is the rest between two batches in production: a batch of 500 rows
// holds the writer for milliseconds, so other writers wait at most that long, and
// a sweep of a million rows still ends within minutes.
const BatchPause = 50 * time.Millisecond

// Sweeper runs one module's rules, every Interval, each in batches.
type Sweeper struct {
	cfg   Config
	rules []Rule
	log   *slog.Logger
	now   func() time.Time
}

// New returns a sweeper of rules; now may be nil for time.Now.
func New(cfg Config, log *slog.Logger, now func() time.Time, rules ...Rule) *Sweeper {
	if now == nil {
		now = time.Now
	}
	return &Sweeper{cfg: cfg, rules: rules, log: log, now: now}
}

// Run sweeps at once and then every Interval until ctx is done; errors are logged
// and the next sweep tries again. A sweeper without rules, Interval or BatchSize
// (a module built without a retention policy) returns at once.
func (s *Sweeper) Run(ctx context.Context) {
	if len(s.rules) == 0 || s.cfg.Interval <= 0 || s.cfg.BatchSize < 1 {
		return
	}
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		deleted, err := s.Sweep(ctx)
		for name, n := range deleted {
			if n > 0 {
				s.log.Info("retention: deleted old rows", "what", name, "rows", n)
			}
		}
		if err != nil && ctx.Err() == nil {
			s.log.Warn("retention: sweep failed; trying again next interval", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Background is a sweeper running in a goroutine of its own, as a module runs its
// retention from Start to Close. Its zero value has nothing running.
type Background struct{ done chan struct{} }

// Start runs s (Run) in a new goroutine until ctx is done.
func (b *Background) Start(ctx context.Context, s *Sweeper) {
	b.done = make(chan struct{})
	go func() {
		defer close(b.done)
		s.Run(ctx)
	}()
}

// Wait returns once the sweeper Start ran has stopped (whose ctx the caller ended),
// or at once if none was started.
func (b *Background) Wait() {
	if b.done != nil {
		<-b.done
	}
}

// Sweep runs every rule once, batch after batch until a batch deletes fewer than
// BatchSize rows, resting Pause between batches, and returns how many rows each
// rule deleted. It stops at the first error, or when ctx is done.
func (s *Sweeper) Sweep(ctx context.Context) (map[string]int, error) {
	deleted := map[string]int{}
	if s.cfg.BatchSize < 1 {
		return deleted, fmt.Errorf("retention batch size is %d, want at least 1", s.cfg.BatchSize)
	}
	for _, r := range s.rules {
		for {
			if err := ctx.Err(); err != nil {
				return deleted, err
			}
			n, err := r.Delete(ctx, s.now(), s.cfg.BatchSize)
			deleted[r.Name] += n
			if err != nil {
				return deleted, fmt.Errorf("retention of %s: %w", r.Name, err)
			}
			if n < s.cfg.BatchSize {
				break
			}
			if err := rest(ctx, s.cfg.Pause); err != nil {
				return deleted, err
			}
		}
	}
	return deleted, nil
}

func rest(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Policy is the retention.* keys as a module gets them.
type Policy struct {
	// Emails is retention.emails: how long finished mail is kept (0: for ever).
	Emails time.Duration
	// DeadLetters is retention.dead_letters: how long a parked dead letter, and
	// its dead email, are kept (0: for ever).
	DeadLetters time.Duration
	// Interval and BatchSize are retention.interval and retention.batch_size.
	Interval  time.Duration
	BatchSize int
}

// Config is the pacing of p's sweeps, with BatchPause between batches.
func (p Policy) Config() Config {
	return Config{Interval: p.Interval, BatchSize: p.BatchSize, Pause: BatchPause}
}
