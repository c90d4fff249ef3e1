package retention_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mailroom/mailroom/platform/logging"
	"github.com/mailroom/mailroom/platform/retention"
)

// rows is a rule over n rows past their period, recording each batch it was asked.
type rows struct {
	left    int
	batches []int
}

func (r *rows) delete(_ context.Context, _ time.Time, limit int) (int, error) {
	n := min(limit, r.left)
	r.left -= n
	r.batches = append(r.batches, n)
	return n, nil
}

func TestASweepDeletesBatchAfterBatchUntilABatchComesShort(t *testing.T) {
	a, b := &rows{left: 7}, &rows{left: 3}
	s := retention.New(retention.Config{Interval: time.Hour, BatchSize: 3}, logging.Discard(), nil,
		retention.Rule{Name: "a", Delete: a.delete}, retention.Rule{Name: "b", Delete: b.delete})
	deleted, err := s.Sweep(context.Background())
	if err != nil || deleted["a"] != 7 || deleted["b"] != 3 {
		t.Fatalf("Sweep = %v, %v; want a 7, b 3", deleted, err)
	}
	if got := a.batches; len(got) != 3 || got[0] != 3 || got[1] != 3 || got[2] != 1 {
		t.Errorf("a's batches %v, want [3 3 1]", got)
	}
	if got := b.batches; len(got) != 2 || got[0] != 3 || got[1] != 0 {
		t.Errorf("b's batches %v, want [3 0] (a full batch may hide more)", got)
	}
}

func TestASweepStopsAtTheFirstErrorAndWhenItsContextEnds(t *testing.T) {
	boom := errors.New("disk I/O error")
	calls := 0
	s := retention.New(retention.Config{Interval: time.Hour, BatchSize: 2}, logging.Discard(), nil,
		retention.Rule{Name: "failing", Delete: func(context.Context, time.Time, int) (int, error) { calls++; return 0, boom }},
		retention.Rule{Name: "never", Delete: func(context.Context, time.Time, int) (int, error) { calls++; return 0, nil }})
	if _, err := s.Sweep(context.Background()); !errors.Is(err, boom) || calls != 1 {
		t.Errorf("Sweep = %v after %d calls, want the rule's error after 1", err, calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	endless := &rows{left: 1 << 30}
	s = retention.New(retention.Config{Interval: time.Hour, BatchSize: 2, Pause: time.Hour}, logging.Discard(), nil,
		retention.Rule{Name: "endless", Delete: endless.delete})
	if _, err := s.Sweep(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Sweep with its context done = %v, want context.Canceled", err)
	}
}
