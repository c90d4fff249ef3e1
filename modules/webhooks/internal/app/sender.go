package app

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/mailroom/mailroom/modules/webhooks/internal/domain"
)

// Poster makes one signed POST of a webhook; the adapters implement it over HTTP.
type Poster interface {
	// Post sends r and returns what came back. It never follows a redirect, reads
	// a bounded part of the answer and gives up after its timeout; every failure
	// is in Answer.Err, never a panic or a hang past the timeout.
	Post(ctx context.Context, r Request) Answer
}

// Request is one try of a delivery.
type Request struct {
	URL string
	// Secret signs the request ("whsec_" + base64).
	Secret string
	// MessageID is the webhook-id: the event id, the same on every try.
	MessageID string
	// Timestamp is the webhook-timestamp of this try.
	Timestamp time.Time
	Body      []byte
}

// Answer is what a try got back.
type Answer struct {
	// StatusCode is the answer's status; 0 when none came (Err says why).
	StatusCode int
	// Body is the start of the answer, at most 1 KiB, valid UTF-8.
	Body     string
	Duration time.Duration
	// Err is why no answer came (timeout, refused connection, forbidden address).
	Err error
}

// SenderConfig bounds and paces a Sender.
type SenderConfig struct {
	// Concurrency is the most tries in flight at once (webhooks.concurrency).
	Concurrency int
	// PerEndpoint is the most tries in flight at once to one endpoint, so that an
	// endpoint that hangs holds at most that many of the Concurrency slots.
	PerEndpoint int
	// Policy is the retry and disabling policy.
	Policy domain.RetryPolicy
	// MaxIdle is the longest the sender sleeps without looking for due deliveries
	// (deliveries it is woken for, and the next one due, are seen sooner).
	MaxIdle time.Duration
}

// Sender POSTs due deliveries until its Run's ctx ends, at most Concurrency at once
// and PerEndpoint at once to one endpoint. It shares nothing with mail delivery:
// its own goroutines, its own HTTP client (the Poster).
type Sender struct {
	store  Store
	poster Poster
	cfg    SenderConfig
	now    func() time.Time
	log    *slog.Logger
	count  func(outcome string)

	wake chan struct{}
	mu   sync.Mutex
	// inFlight holds the deliveries being tried, busy the tries in flight per
	// endpoint, running all of them.
	inFlight map[int64]bool
	busy     map[string]int
	running  int
	wg       sync.WaitGroup
}

// NewSender returns a Sender; count, if not nil, is called with the outcome of each
// try (OutcomeSucceeded, OutcomeFailed, OutcomeGone).
func NewSender(store Store, poster Poster, cfg SenderConfig, now func() time.Time, log *slog.Logger, count func(string)) *Sender {
	if count == nil {
		count = func(string) {}
	}
	if cfg.MaxIdle <= 0 {
		cfg.MaxIdle = time.Second
	}
	cfg.PerEndpoint = max(1, min(cfg.PerEndpoint, cfg.Concurrency))
	return &Sender{store: store, poster: poster, cfg: cfg, now: now, log: log, count: count,
		wake: make(chan struct{}, 1), inFlight: map[int64]bool{}, busy: map[string]int{}}
}

// Wake tells the sender that deliveries may be due now. It never blocks.
func (s *Sender) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run sends due deliveries until ctx is done, then waits for the tries in flight,
// which ctx's end cuts short: a try cut short does not count, and its delivery is
// tried again by the next Run.
func (s *Sender) Run(ctx context.Context) {
	defer s.wg.Wait()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		wait := s.cfg.MaxIdle
		if err := s.startAllDue(ctx); err != nil {
			s.log.Error("webhooks: cannot read due deliveries", "error", err)
		} else if s.free() > 0 {
			wait = s.untilNextDue(ctx)
		}
		timer.Reset(wait) // since Go 1.23 a Reset timer delivers no stale tick
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-timer.C:
		}
	}
}

// free is how many more tries may start now.
func (s *Sender) free() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg.Concurrency - s.running
}

// untilNextDue is how long to sleep before the soonest pending delivery is due, at
// most MaxIdle. A delivery due already (its endpoint busy, or being tried) waits
// for a try to end, which wakes the sender.
func (s *Sender) untilNextDue(ctx context.Context) time.Duration {
	next, ok, err := s.store.NextDue(ctx)
	if err != nil || !ok {
		return s.cfg.MaxIdle
	}
	d := next.Sub(s.now())
	if d <= 0 || d > s.cfg.MaxIdle {
		return s.cfg.MaxIdle
	}
	return d
}

// startAllDue starts tries of due deliveries while slots are free and it finds
// some it may start.
func (s *Sender) startAllDue(ctx context.Context) error {
	for ctx.Err() == nil {
		n, err := s.startDue(ctx)
		if err != nil || n == 0 {
			return err
		}
	}
	return nil
}

// startDue starts the tries of one batch of due deliveries, leaving out endpoints
// at their PerEndpoint limit; it returns how many it started.
func (s *Sender) startDue(ctx context.Context) (int, error) {
	free, skipEndpoints, skipDeliveries := s.snapshot()
	if free <= 0 {
		return 0, nil
	}
	due, err := s.store.Due(ctx, s.now().UTC(), skipEndpoints, skipDeliveries, s.cfg.PerEndpoint, free*s.cfg.PerEndpoint)
	if err != nil {
		return 0, err
	}
	started := 0
	for _, d := range due {
		if !s.claim(d.Delivery) {
			continue
		}
		started++
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.forget(d.Delivery)
			s.try(ctx, d)
		}()
	}
	return started, nil
}

// snapshot returns the free slots, the endpoints at their limit and the
// deliveries in flight.
func (s *Sender) snapshot() (int, []string, []int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var eps []string
	for ep, n := range s.busy {
		if n >= s.cfg.PerEndpoint {
			eps = append(eps, ep)
		}
	}
	ds := make([]int64, 0, len(s.inFlight))
	for id := range s.inFlight {
		ds = append(ds, id)
	}
	return s.cfg.Concurrency - s.running, eps, ds
}

// maxRecording is how many tries, per Concurrency slot, may have their answer and
// wait for its record: a slot is free again once its POST is answered, so that
// the database's commit does not hold the endpoint's share of POSTs.
const maxRecording = 4

// claim reserves a slot for d if one is free, its endpoint below its limit, d not
// in flight already and not too many answered tries wait for their record.
func (s *Sender) claim(d domain.Delivery) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running >= s.cfg.Concurrency || s.busy[d.EndpointID] >= s.cfg.PerEndpoint || s.inFlight[d.ID] ||
		len(s.inFlight) >= s.cfg.Concurrency*(1+maxRecording) {
		return false
	}
	s.running++
	s.busy[d.EndpointID]++
	s.inFlight[d.ID] = true
	return true
}

// releaseSlot frees d's POST slot and wakes the loop, which may start the next
// try; d itself stays in flight until forget.
func (s *Sender) releaseSlot(d domain.Delivery) {
	s.mu.Lock()
	s.running--
	if s.busy[d.EndpointID]--; s.busy[d.EndpointID] <= 0 {
		delete(s.busy, d.EndpointID)
	}
	s.mu.Unlock()
	s.Wake()
}

// forget ends d's try once its result is recorded (or given up on).
func (s *Sender) forget(d domain.Delivery) {
	s.mu.Lock()
	delete(s.inFlight, d.ID)
	s.mu.Unlock()
	s.Wake()
}

// try POSTs d once, frees its slot and records the result.
func (s *Sender) try(ctx context.Context, d Due) {
	at := s.now().UTC()
	ans := s.poster.Post(ctx, Request{URL: d.URL, Secret: d.Secret, MessageID: d.Delivery.EventID, Timestamp: at, Body: d.Payload})
	s.releaseSlot(d.Delivery)
	if ctx.Err() != nil {
		return // shutting down: the try is cut short and does not count
	}
	r := s.result(d.Delivery, at, ans)
	s.count(r.Outcome)
	policy := s.cfg.Policy
	disable := func(failures int, since time.Time) (bool, string) {
		return policy.ShouldDisable(failures, since, at, r.Error)
	}
	if err := s.store.RecordTry(ctx, r, disable); err != nil {
		s.log.Error("webhooks: cannot record a try", "delivery_id", d.Delivery.ID, "error", err)
		return
	}
	s.log.Debug("webhook try", "delivery_id", d.Delivery.ID, "endpoint_id", d.Delivery.EndpointID,
		"event_id", d.Delivery.EventID, "outcome", r.Outcome, "status_code", ans.StatusCode, "error", r.Error)
}

// result is what a try at at with answer ans does to delivery d.
func (s *Sender) result(d domain.Delivery, at time.Time, ans Answer) TryResult {
	r := TryResult{DeliveryID: d.ID, EndpointID: d.EndpointID, At: at, DurationMs: ans.Duration.Milliseconds(),
		Response: ans.Body, Status: domain.StatusPending}
	if ans.StatusCode != 0 {
		code := ans.StatusCode
		r.StatusCode = &code
	}
	attempts := d.Attempts + 1
	switch {
	case ans.Err == nil && ans.StatusCode >= 200 && ans.StatusCode < 300:
		r.Outcome, r.Status, r.NextAttemptAt = OutcomeSucceeded, domain.StatusSucceeded, at
		return r
	case ans.Err == nil && ans.StatusCode == 410:
		r.Outcome, r.Error = OutcomeGone, domain.GoneReason(at)
	case ans.Err != nil:
		r.Outcome, r.Error = OutcomeFailed, ans.Err.Error()
	case ans.StatusCode >= 300 && ans.StatusCode < 400:
		r.Outcome, r.Error = OutcomeFailed, fmt.Sprintf("answered %d; redirects are not followed", ans.StatusCode)
	default:
		r.Outcome, r.Error = OutcomeFailed, fmt.Sprintf("answered %d", ans.StatusCode)
	}
	r.NextAttemptAt = at.Add(s.cfg.Policy.Delay(attempts, rand.Float64()))
	if r.Outcome == OutcomeFailed && s.cfg.Policy.GivesUp(d.CreatedAt, at) {
		r.Status = domain.StatusFailed
	}
	return r
}
