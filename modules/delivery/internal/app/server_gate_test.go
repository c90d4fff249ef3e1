package app

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/mailroom/mailroom/modules/delivery/internal/transport"
)

// scriptedProbe fails with each error of its script in turn, then succeeds, and
// records when it was called.
type scriptedProbe struct {
	mu     sync.Mutex
	script []error
	calls  []time.Time
}

func (p *scriptedProbe) probe(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, time.Now())
	if len(p.calls) <= len(p.script) {
		return p.script[len(p.calls)-1]
	}
	return nil
}

func (p *scriptedProbe) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.calls)
}

// records is a slog handler that keeps what it was given.
type records struct {
	mu    sync.Mutex
	lines []slog.Record
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, rec)
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

func (r *records) at(level slog.Level) []slog.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []slog.Record
	for _, l := range r.lines {
		if l.Level == level {
			out = append(out, l)
		}
	}
	return out
}

var (
	refused   = &transport.ServerError{Kind: transport.KindOutage, Step: "connect", Err: errors.New("connect 127.0.0.1:1: connection refused")}
	noTLS     = &transport.ServerError{Kind: transport.KindConfiguration, Key: "smtp.tls", Err: errors.New("no STARTTLS")}
	wrongPass = &transport.ServerError{Kind: transport.KindConfiguration, Key: "smtp.password", Err: errors.New("535")}
)

func waitOpen(t *testing.T, g *ServerGate) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.Wait(ctx); err != nil {
		t.Fatalf("the gate did not open: %v (state %+v)", err, g.State())
	}
}

func TestAClosedGateHoldsSendsUntilAProbeSucceedsProbingLessAndLessOften(t *testing.T) {
	p := &scriptedProbe{script: []error{refused, refused, refused}}
	g := NewServerGate(p.probe, 5*time.Millisecond, 20*time.Millisecond, slog.New(&records{}))
	defer g.Close()
	g.Pause(refused)
	if st := g.State(); st.Open || st.Kind != GateOutage || st.Since.IsZero() || st.Reason != refused.Error() {
		t.Fatalf("state after an outage %+v, want closed by an outage, with why and since when", st)
	}
	held, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if err := g.Wait(held); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait on a closed gate: %v, want to be held until the context ended", err)
	}
	waitOpen(t, g)
	if n := p.count(); n != 4 {
		t.Errorf("%d probes, want 4: three failed, the fourth opened the gate", n)
	}
	p.mu.Lock()
	gaps := []time.Duration{p.calls[1].Sub(p.calls[0]), p.calls[2].Sub(p.calls[1]), p.calls[3].Sub(p.calls[2])}
	p.mu.Unlock()
	if gaps[0] < 10*time.Millisecond || gaps[1] < 20*time.Millisecond || gaps[2] < 20*time.Millisecond {
		t.Errorf("probes %v apart: want each wait twice the last, from 5 ms, at most 20 ms", gaps)
	}
	if st := g.State(); !st.Open || st.Reason != "" {
		t.Errorf("state after the probe succeeded %+v, want open", st)
	}
}

func TestAConfigurationErrorIsLoggedOnceAtErrorNamingTheKey(t *testing.T) {
	p := &scriptedProbe{script: []error{noTLS, noTLS, wrongPass}}
	logs := &records{}
	g := NewServerGate(p.probe, time.Millisecond, 2*time.Millisecond, slog.New(logs))
	defer g.Close()
	for range 16 { // every lane meets it
		g.Pause(noTLS)
	}
	waitOpen(t, g)
	errs := logs.at(slog.LevelError)
	if len(errs) != 2 {
		t.Fatalf("%d ERROR lines, want 2: one per key (smtp.tls, then smtp.password)", len(errs))
	}
	var keys []string
	for _, r := range errs {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "key" {
				keys = append(keys, a.Value.String())
			}
			return true
		})
	}
	if len(keys) != 2 || keys[0] != "smtp.tls" || keys[1] != "smtp.password" {
		t.Errorf("ERROR lines name the keys %v, want [smtp.tls smtp.password]", keys)
	}
}

func TestShutdownReleasesTheSendsWaitingAtAClosedGateOnly(t *testing.T) {
	p := &scriptedProbe{script: []error{refused, refused, refused, refused, refused}}
	g := NewServerGate(p.probe, time.Hour, time.Hour, slog.New(&records{}))
	defer g.Close()
	g.Pause(refused)
	waiting := make(chan error)
	go func() { waiting <- g.Wait(context.Background()) }()
	g.Shutdown()
	select {
	case err := <-waiting:
		if !errors.Is(err, ErrGateShut) {
			t.Errorf("a waiting send got %v, want ErrGateShut", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not release the waiting send")
	}

	open := NewServerGate(p.probe, time.Hour, time.Hour, slog.New(&records{}))
	defer open.Close()
	open.Shutdown()
	if err := open.Wait(context.Background()); err != nil {
		t.Errorf("Wait on an open gate after Shutdown: %v, want nil: a send that can go, goes", err)
	}
}

func TestASuccessfulSendMakesTheNextPauseProbeSoonAgain(t *testing.T) {
	p := &scriptedProbe{script: []error{refused, refused, refused, refused}}
	g := NewServerGate(p.probe, time.Millisecond, time.Hour, slog.New(&records{}))
	defer g.Close()
	g.Pause(refused)
	waitOpen(t, g) // the backoff grew to 32 ms over four failed probes
	g.Succeeded()
	g.mu.Lock()
	backoff := g.backoff
	g.mu.Unlock()
	if backoff != time.Millisecond {
		t.Errorf("backoff after a successful send %v, want back to 1 ms", backoff)
	}
}
