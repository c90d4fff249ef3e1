package e2e

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// LoadConfig shapes a Load.
type LoadConfig struct {
	// Workers is how many clients post at once.
	Workers int
	// Every paces each client to one post per interval; zero posts back to back.
	// A pace bounds the backlog a test must drain; it synchronises nothing.
	Every time.Duration
	// Timeout bounds each request (default 10 s).
	Timeout time.Duration
	// Subject prefixes each email's subject, so a test's emails are told apart.
	Subject string
	// Recipients, when set, chooses the to addresses of client worker's seq-th
	// email (from 0), just before it is posted, so a test can give recipients
	// fates of their own (and script the SMTP server for them there). It is called
	// from the clients' goroutines, at once. Unset, each email goes to one address
	// of its own, w<worker>-<seq>@example.com.
	Recipients func(worker, seq int) []string
}

// Load posts emails from several clients until stopped and keeps what the fault,
// crash and Kafka tests check: every id answered 202, every other answer, transport
// errors and the slowest answer. Its goroutines never fail the test; the test reads
// the tallies.
type Load struct {
	// Accepted counts 202 answers.
	Accepted atomic.Int64
	// Refused counts HTTP answers other than 202.
	Refused atomic.Int64
	// Failures counts posts that got no HTTP answer (the process was down or killed
	// mid-request).
	Failures atomic.Int64

	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
	mu       sync.Mutex
	ids      []string
	statuses map[int]int // answers other than 202
	errs     []string    // a sample of transport errors
	bodies   []string    // a sample of answers other than 202
	slowest  time.Duration
}

// StartLoad starts cfg.Workers clients posting to baseURL until Stop or ctx ends.
// Their requests and answers are held to the OpenAPI document (NewHTTPClient): an
// answer it does not describe fails tb, so stop the load before the test ends.
func StartLoad(tb testing.TB, ctx context.Context, baseURL string, cfg LoadConfig) *Load {
	ctx, cancel := context.WithCancel(ctx)
	l := &Load{cancel: cancel, statuses: map[int]int{}}
	client := NewHTTPClient(tb)
	client.Timeout = cmp.Or(cfg.Timeout, 10*time.Second)
	for w := range max(cfg.Workers, 1) {
		l.wg.Go(func() { l.run(ctx, client, baseURL, cfg, w) })
	}
	return l
}

// run is one client: post, record, and pace or back off.
func (l *Load) run(ctx context.Context, client *http.Client, baseURL string, cfg LoadConfig, w int) {
	var pace <-chan time.Time
	if cfg.Every > 0 {
		t := time.NewTicker(cfg.Every)
		defer t.Stop()
		pace = t.C
	}
	for seq := 0; ctx.Err() == nil; seq++ {
		if pace != nil {
			select {
			case <-ctx.Done():
				return
			case <-pace:
			}
		}
		to := []string{fmt.Sprintf("w%d-%d@example.com", w, seq)}
		if cfg.Recipients != nil {
			to = cfg.Recipients(w, seq)
		}
		body, _ := json.Marshal(map[string]any{
			"from":    "Load Test <load@example.com>",
			"to":      to,
			"subject": fmt.Sprintf("%s %d/%d", cfg.Subject, w, seq),
			"text":    "Delivered whatever happens to the process, the server or the disk.",
		})
		start := time.Now()
		status, answer, err := Post(ctx, client, baseURL, body)
		took := time.Since(start)
		if err != nil && ctx.Err() != nil {
			return
		}
		l.record(status, answer, err, took)
		if err != nil {
			// The process is down: do not spin while it restarts.
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
}

func (l *Load) record(status int, answer []byte, err error, took time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.slowest = max(l.slowest, took)
	switch {
	case err != nil:
		l.Failures.Add(1)
		if len(l.errs) < 5 {
			l.errs = append(l.errs, fmt.Sprintf("after %s: %v", took.Round(time.Millisecond), err))
		}
	case status == http.StatusAccepted:
		var acc Accepted
		if json.Unmarshal(answer, &acc) != nil || acc.ID == "" {
			l.Failures.Add(1)
			l.errs = append(l.errs, fmt.Sprintf("202 with body %q", answer))
			return
		}
		l.ids = append(l.ids, acc.ID)
		l.Accepted.Add(1)
	default:
		l.Refused.Add(1)
		l.statuses[status]++
		if len(l.bodies) < 5 {
			l.bodies = append(l.bodies, fmt.Sprintf("%d %s", status, answer))
		}
	}
}

// Stop ends the load, waits for its clients and returns every id answered 202.
func (l *Load) Stop() []string {
	l.stopOnce.Do(func() {
		l.cancel()
		l.wg.Wait()
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.ids)
}

// IDs returns every id answered 202 so far, while the load goes on: each was
// acknowledged before IDs was called.
func (l *Load) IDs() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.ids)
}

// Statuses counts the answers other than 202 by status.
func (l *Load) Statuses() map[int]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.statuses)
}

// Slowest is the longest any post took to be answered (or to fail).
func (l *Load) Slowest() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.slowest
}

// AllAccepted reports whether every post so far was answered 202.
func (l *Load) AllAccepted() bool {
	return l.Failures.Load() == 0 && l.Refused.Load() == 0
}

// Summary describes the tallies for a failure message or a log line.
func (l *Load) Summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprintf("%d accepted, %d without answer (e.g. %q), answers other than 202 %v (e.g. %q), slowest answer %s",
		l.Accepted.Load(), l.Failures.Load(), l.errs, l.statuses, l.bodies, l.slowest.Round(time.Millisecond))
}
