package app

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/mailroom/mailroom/modules/delivery/internal/transport"
)

// Probe intervals of a closed ServerGate: the first probe comes MinProbeWait after
// the failure, each later one twice as late, at most MaxProbeWait.
const (
	MinProbeWait = time.Second
	MaxProbeWait = 30 * time.Second
)

// ServerGate holds every send while the mail server cannot take mail. An outage (a
// refused or timed-out connection, a failed TLS handshake, 421) is the server's
// problem, not the email's, and a configuration error (STARTTLS not offered, a
// certificate that does not verify, refused credentials) is the operator's: either
// way trying more emails would only burn their attempts. So the first send that
// meets one closes the gate, every lane waits at it, and a prober connects to the
// server with a growing backoff (at most MaxProbeWait apart) until the server
// answers as configured; then the gate opens and the waiting sends go on. It is safe
// for concurrent use.
type ServerGate struct {
	probe func(ctx context.Context) error
	log   *slog.Logger
	now   func() time.Time
	// minWait and maxWait bound the wait before each probe.
	minWait, maxWait time.Duration

	mu sync.Mutex
	// open is closed while the gate is open; a closed gate has a fresh one.
	open  chan struct{}
	state GateState
	// backoff is the wait before the next probe. It grows with every failed probe
	// and every pause, and is reset only by a send that got through: a server that
	// answers probes but fails every send is probed ever less often.
	backoff time.Duration
	probing bool
	stop    context.Context
	cancel  context.CancelFunc
	// shut is closed by Shutdown: waiting sends stop waiting.
	shut     chan struct{}
	shutOnce sync.Once
}

// GateState is what the gate says of the mail server, for /readyz and /metrics.
type GateState struct {
	// Open is true while sends go through.
	Open bool
	// Kind is "outage" or "configuration" while the gate is closed.
	Kind string
	// Key is the configuration key to fix, for a configuration error.
	Key string
	// Reason is the failure that closed the gate (or, after a failed probe, the
	// latest one), one line.
	Reason string
	// Since is when the gate closed; zero while it is open.
	Since time.Time
}

// Gate kinds, as GateState.Kind reports them.
const (
	// GateOutage is a closed gate because the server could not be reached.
	GateOutage = "outage"
	// GateConfiguration is a closed gate because the server refuses Mailroom's
	// settings.
	GateConfiguration = "configuration"
)

// NewServerGate returns an open gate whose prober runs probe. minWait and maxWait
// bound the wait before each probe (0 means MinProbeWait and MaxProbeWait).
func NewServerGate(probe func(ctx context.Context) error, minWait, maxWait time.Duration, log *slog.Logger) *ServerGate {
	if minWait <= 0 {
		minWait = MinProbeWait
	}
	if maxWait < minWait {
		maxWait = max(MaxProbeWait, minWait)
	}
	stop, cancel := context.WithCancel(context.Background())
	open := make(chan struct{})
	close(open)
	return &ServerGate{probe: probe, log: log, now: time.Now, minWait: minWait, maxWait: maxWait,
		open: open, state: GateState{Open: true}, backoff: minWait, stop: stop, cancel: cancel, shut: make(chan struct{})}
}

// ErrGateShut is what Wait returns to a send waiting at a closed gate once the app
// shuts down: the send hands its command back rather than hold up the shutdown.
var ErrGateShut = errors.New("the mail server gate is shut: the app is shutting down")

// Wait returns once the gate is open; ctx's error when ctx ends first; ErrGateShut
// when the gate is closed and Shutdown was called.
func (g *ServerGate) Wait(ctx context.Context) error {
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	select {
	case <-open:
		return nil
	default:
	}
	select {
	case <-open:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-g.shut:
		return ErrGateShut
	}
}

// Shutdown releases every send waiting at a closed gate, now and from now on, with
// ErrGateShut. On the Go-channel broker a publish returns only once its handler is
// done, and the app lets the outbox relay finish its publishes before it stops the
// handlers: a send waiting for a server that may stay down for hours must let go.
func (g *ServerGate) Shutdown() {
	g.shutOnce.Do(func() { close(g.shut) })
}

// State returns what the gate says of the server now.
func (g *ServerGate) State() GateState {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.state
}

// Pause closes the gate because of err, a *transport.ServerError of kind outage or
// configuration, and starts probing. It logs once per closing (and again when the
// reason changes kind or key), at ERROR naming the key for a configuration error,
// at WARN for an outage.
func (g *ServerGate) Pause(err error) {
	kind, key := classify(err)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stop.Err() != nil {
		return // closed: nobody will wait
	}
	was := g.state
	if was.Open {
		g.open = make(chan struct{})
		g.state = GateState{Since: g.now()}
	}
	g.state.Kind, g.state.Key, g.state.Reason = kind, key, err.Error()
	if was.Open || was.Kind != kind || was.Key != key {
		g.logPause(err)
	}
	if !g.probing {
		g.probing = true
		go g.runProber()
	}
}

// Succeeded tells the gate that a send got through: the next pause probes soon again.
func (g *ServerGate) Succeeded() {
	g.mu.Lock()
	g.backoff = g.minWait
	g.mu.Unlock()
}

// Close stops the prober; waiting sends keep waiting until their own context ends.
func (g *ServerGate) Close() { g.cancel() }

// CheckAtStart probes the server once, logs what it found, and closes the gate if it
// does not answer as configured: then the first emails wait for it rather than
// burning their attempts. It never fails start-up.
func (g *ServerGate) CheckAtStart(ctx context.Context) {
	err := g.probe(ctx)
	switch {
	case err == nil:
		g.log.Info("mail server check: the server answers as configured")
	case ctx.Err() != nil:
	default:
		g.Pause(err)
	}
}

func (g *ServerGate) logPause(err error) {
	if g.state.Kind == GateConfiguration {
		g.log.Error("mail server refuses Mailroom's settings: delivery is paused until they are fixed (then restart) or the server accepts them",
			"key", g.state.Key, "error", err)
		return
	}
	g.log.Warn("mail server unreachable: delivery is paused and the server probed until it answers; no email loses an attempt meanwhile",
		"error", err)
}

// runProber probes until the server answers or the gate is closed for good.
func (g *ServerGate) runProber() {
	for {
		g.mu.Lock()
		wait := g.backoff
		g.backoff = min(2*g.backoff, g.maxWait)
		g.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-g.stop.Done():
			t.Stop()
			return
		}
		err := g.probe(g.stop)
		if g.stop.Err() != nil {
			return
		}
		if err == nil {
			g.reopen()
			return
		}
		g.mu.Lock()
		kind, key := classify(err)
		changed := g.state.Kind != kind || g.state.Key != key
		g.state.Kind, g.state.Key, g.state.Reason = kind, key, err.Error()
		if changed {
			g.logPause(err)
		}
		g.mu.Unlock()
		g.log.Debug("mail server probe failed", "error", err, "next_probe_in", min(2*wait, g.maxWait))
	}
}

// reopen opens the gate after a successful probe.
func (g *ServerGate) reopen() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.log.Info("mail server answers again: delivery resumes", "paused_for", g.now().Sub(g.state.Since).Round(time.Millisecond),
		"was", g.state.Reason)
	g.state = GateState{Open: true}
	g.probing = false
	close(g.open)
}

// classify names err's kind and key for the gate.
func classify(err error) (kind, key string) {
	if se, ok := transport.AsServerError(err); ok && se.Kind == transport.KindConfiguration {
		return GateConfiguration, se.Key
	}
	return GateOutage, ""
}
