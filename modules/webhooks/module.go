// Package webhooks tells other services what happens to their mail: it consumes the
// emails module's lifecycle events (topics.lifecycle), stores one delivery per
// endpoint subscribed to each, and POSTs them, signed the Standard Webhooks way,
// retrying with backoff; an operator manages the endpoints over HTTP or from the
// CLI.
package webhooks

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailroom/mailroom/modules/webhooks/internal/adapters"
	"github.com/mailroom/mailroom/modules/webhooks/internal/app"
	"github.com/mailroom/mailroom/modules/webhooks/internal/domain"
	"github.com/mailroom/mailroom/modules/webhooks/internal/ports"
	"github.com/mailroom/mailroom/platform/broker"
	"github.com/mailroom/mailroom/platform/retention"
	"github.com/mailroom/mailroom/platform/sqlite"
)

// Config is what the webhooks module needs to know (the webhooks.* keys, the
// lifecycle topic and retention).
type Config struct {
	// LifecycleTopic is topics.lifecycle, where the emails module publishes its
	// lifecycle events.
	LifecycleTopic string
	// ConsumerGroup is the group this instance reads LifecycleTopic in: one per
	// instance, since each instance's endpoints live in its own database.
	ConsumerGroup string
	// AllowPrivateTargets lets endpoints target loopback, private and link-local
	// addresses; off, they are refused at creation and at every connection.
	AllowPrivateTargets bool
	// Timeout bounds one try, from connecting to reading the answer.
	Timeout time.Duration
	// Concurrency is the most tries in flight at once, over all endpoints.
	Concurrency int
	// RetryInitial, RetryMultiplier and RetryMaxDelay are the backoff between
	// tries (jittered by RetryJitter); RetryFor is how long a delivery is tried.
	RetryInitial    time.Duration
	RetryMultiplier float64
	RetryMaxDelay   time.Duration
	RetryFor        time.Duration
	// DisableAfterFailures and DisableAfter: an endpoint whose consecutive failed
	// tries reach DisableAfterFailures while it has been failing for at least
	// DisableAfter is disabled (0 failures: never).
	DisableAfterFailures int
	DisableAfter         time.Duration
	// Retention is how long deliveries and stored events are kept
	// (Retention.Emails after their last change) and how sweeps are paced.
	Retention retention.Policy
}

// PerEndpointConcurrency is the most tries in flight at once to one endpoint (or
// Config.Concurrency if that is lower): an endpoint that hangs holds at most this
// many of the Concurrency slots, and the others keep theirs.
const PerEndpointConcurrency = 4

// RetryJitter is the fraction each wait between tries is lengthened or shortened
// by at most, so that deliveries failed together are not retried together.
const RetryJitter = 0.2

// fanOutConcurrency is how many lifecycle events are fanned out at once (never two
// of one email). Each is a small write; several share one durable commit.
const fanOutConcurrency = 16

// Module is the webhooks module.
type Module struct {
	cfg   Config
	app   app.Application
	store adapters.Store
	log   *slog.Logger

	cancel context.CancelFunc
	done   sync.WaitGroup
	sweep  retention.Background
}

// tries counts webhook tries by outcome; the label values are a closed set.
var triesDesc = prometheus.CounterOpts{Name: "mailroom_webhook_tries_total",
	Help: "Webhook tries by outcome: succeeded (2xx), failed (another answer, a timeout or no connection), gone (410, the endpoint is disabled)."}

// New builds the module; reg, if not nil, gets its metrics.
func New(cfg Config, db *sqlite.DB, log *slog.Logger, reg prometheus.Registerer) *Module {
	log = log.With("module", "webhooks")
	store := adapters.Store{DB: db}
	count := func(string) {}
	if reg != nil {
		tries := prometheus.NewCounterVec(triesDesc, []string{"outcome"})
		for _, o := range []string{app.OutcomeSucceeded, app.OutcomeFailed, app.OutcomeGone} {
			tries.WithLabelValues(o)
		}
		reg.MustRegister(tries)
		count = func(o string) { tries.WithLabelValues(o).Inc() }
	}
	policy := domain.RetryPolicy{Initial: cfg.RetryInitial, Multiplier: cfg.RetryMultiplier, MaxDelay: cfg.RetryMaxDelay,
		For: cfg.RetryFor, Jitter: RetryJitter, DisableAfterFailures: cfg.DisableAfterFailures, DisableAfter: cfg.DisableAfter}
	sender := app.NewSender(store, adapters.NewClient(cfg.Timeout, cfg.AllowPrivateTargets),
		app.SenderConfig{Concurrency: cfg.Concurrency, PerEndpoint: PerEndpointConcurrency, Policy: policy},
		time.Now, log, count)
	a := app.Application{
		Manage: app.Manage{Store: store, AllowPrivateTargets: cfg.AllowPrivateTargets, Resolve: resolve,
			Now: time.Now, Wake: sender.Wake},
		FanOut: app.FanOut{Store: store, Now: time.Now, Log: log, Wake: sender.Wake},
		Sender: sender,
	}
	return &Module{cfg: cfg, app: a, store: store, log: log}
}

// resolve looks host up with the system's resolver.
func resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// Name implements app.Module.
func (m *Module) Name() string { return "webhooks" }

// RegisterRoutes implements app.Module.
func (m *Module) RegisterRoutes(api *echo.Group) { ports.HTTP{Manage: m.app.Manage}.Register(api) }

// RegisterHandlers implements app.Module: the fan-out of topics.lifecycle, in
// Config.ConsumerGroup. A message is acknowledged once its deliveries are
// committed.
func (m *Module) RegisterHandlers(r *message.Router, b *broker.Broker) error {
	if m.cfg.ConsumerGroup == "" {
		return errors.New("webhooks: no consumer group for topics.lifecycle")
	}
	return b.AddConsumer(r, "webhooks.fan_out", m.cfg.LifecycleTopic, m.cfg.ConsumerGroup, fanOutConcurrency,
		ports.Lifecycle{FanOut: m.app.FanOut}.Handle)
}

// Start implements the app's starter: it runs the sender, which POSTs due
// deliveries, and the retention sweep until ctx is done or Close.
func (m *Module) Start(ctx context.Context) {
	ctx, m.cancel = context.WithCancel(ctx)
	m.done.Add(1)
	go func() {
		defer m.done.Done()
		m.app.Sender.Run(ctx)
	}()
	m.sweep.Start(ctx, m.Sweeper(nil))
}

// Close implements the app's closer: it stops the sender (a try in flight is cut
// short and made again later) and the sweep, and waits for both.
func (m *Module) Close() error {
	if m.cancel != nil {
		m.cancel()
	}
	m.done.Wait()
	m.sweep.Wait()
	return nil
}

// Sweeper returns the module's retention: deliveries unchanged for longer than
// Retention.Emails, and stored events older than that which no delivery needs.
// now may be nil for time.Now.
func (m *Module) Sweeper(now func() time.Time) *retention.Sweeper {
	p := m.cfg.Retention
	return retention.New(p.Config(), m.log, now, retention.Rule{Name: "webhook deliveries",
		Delete: func(ctx context.Context, at time.Time, limit int) (int, error) {
			return m.store.DeleteOld(ctx, p.Emails, at, limit)
		}})
}

// Endpoint is an endpoint as the CLI shows it (never its secret).
type Endpoint = ports.EndpointResponse

// CreatedEndpoint is a new endpoint as the CLI shows it, with its secret.
type CreatedEndpoint = ports.CreatedResponse

// List returns every endpoint, oldest first, for the CLI.
func (m *Module) List(ctx context.Context) ([]Endpoint, error) {
	eps, err := m.app.Manage.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Endpoint, 0, len(eps))
	for _, e := range eps {
		out = append(out, ports.ToResponse(e))
	}
	return out, nil
}

// Create makes an endpoint for the CLI, checked as POST /api/webhooks checks it.
func (m *Module) Create(ctx context.Context, url string, events []string, description string) (CreatedEndpoint, error) {
	ep, err := m.app.Manage.Create(ctx, app.NewEndpoint{URL: url, Events: events, Description: description})
	if err != nil {
		return CreatedEndpoint{}, err
	}
	return ports.ToCreated(ep), nil
}

// Delete deletes an endpoint and its deliveries, for the CLI.
func (m *Module) Delete(ctx context.Context, id string) error { return m.app.Manage.Delete(ctx, id) }

// SetEnabled enables or disables an endpoint, for the CLI. Enabling clears its
// disabled reason and failing streak; its waiting deliveries are tried again by
// the running server.
func (m *Module) SetEnabled(ctx context.Context, id string, enabled bool) (Endpoint, error) {
	ep, err := m.app.Manage.Update(ctx, id, app.EndpointChange{Enabled: &enabled})
	if err != nil {
		return Endpoint{}, err
	}
	return ports.ToResponse(ep), nil
}

// RotateSecret gives an endpoint a new secret and returns it, for the CLI; the old
// one stops signing at once.
func (m *Module) RotateSecret(ctx context.Context, id string) (string, error) {
	return m.app.Manage.RotateSecret(ctx, id)
}
