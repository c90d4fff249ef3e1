// Package deadletters keeps the emails that could not be delivered: it consumes
// topics.dead_letter, stores each dead letter with why it died, marks the email dead,
// and lets an operator list, replay or discard them over HTTP or from the CLI.
package deadletters

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/labstack/echo/v4"

	"github.com/mailroom/mailroom/modules/deadletters/internal/adapters"
	"github.com/mailroom/mailroom/modules/deadletters/internal/app"
	"github.com/mailroom/mailroom/modules/deadletters/internal/ports"
	"github.com/mailroom/mailroom/platform/broker"
	"github.com/mailroom/mailroom/platform/outbox"
	"github.com/mailroom/mailroom/platform/retention"
	"github.com/mailroom/mailroom/platform/sqlite"
)

// Config is what the deadletters module needs to know.
type Config struct {
	SendTopic       string
	EventsTopic     string
	DeadLetterTopic string
	ConsumerGroup   string
	// InstanceID is this instance's id. The module parks only the dead letters whose
	// SendEmail names it as the origin (or names none): with several instances on
	// one Kafka cluster, each reads the whole dead-letter topic, and a dead letter
	// belongs with the instance that accepted its email. Required for the handler.
	InstanceID string
	// Retention is how long letters are kept: replayed or discarded ones for
	// Retention.Emails after that, parked ones for Retention.DeadLetters.
	Retention retention.Policy
}

// Module is the deadletters module.
type Module struct {
	cfg   Config
	app   app.Application
	store adapters.Store
	log   *slog.Logger
	// sweep is the module's retention, from Start to Close.
	sweep retention.Background
}

// New builds the module; log gets what the dead-letter handler has to say.
func New(cfg Config, db *sqlite.DB, box *outbox.Outbox, log *slog.Logger) *Module {
	store := adapters.Store{DB: db, Outbox: box, SendTopic: cfg.SendTopic, EventsTopic: cfg.EventsTopic}
	a := app.Application{
		Park:   app.Park{Store: store, InstanceID: cfg.InstanceID, Now: time.Now, Log: log.With("module", "deadletters")},
		Manage: app.Manage{Store: store, Now: time.Now},
	}
	return &Module{cfg: cfg, app: a, store: store, log: log.With("module", "deadletters")}
}

// Start implements the app's starter: it runs the retention sweep of the module's
// letters (Sweeper) until ctx is done.
func (m *Module) Start(ctx context.Context) {
	m.sweep.Start(ctx, m.Sweeper(nil))
}

// Close implements the app's closer: it waits for the retention sweep, whose ctx
// the app has cancelled by then.
func (m *Module) Close() error {
	m.sweep.Wait()
	return nil
}

// Sweeper returns the module's retention: letters replayed or discarded longer
// than Retention.Emails ago, and letters parked longer than Retention.DeadLetters.
// now may be nil for time.Now.
func (m *Module) Sweeper(now func() time.Time) *retention.Sweeper {
	p := m.cfg.Retention
	return retention.New(p.Config(), m.log, now, retention.Rule{Name: "dead letters",
		Delete: func(ctx context.Context, at time.Time, limit int) (int, error) {
			return m.store.DeleteOldLetters(ctx, p.Emails, p.DeadLetters, at, limit)
		}})
}

// Name implements app.Module.
func (m *Module) Name() string { return "deadletters" }

// RegisterRoutes implements app.Module.
func (m *Module) RegisterRoutes(api *echo.Group) { ports.HTTP{Manage: m.app.Manage}.Register(api) }

// RegisterHandlers implements app.Module. The handler stores dead letters; it never
// goes to the dead-letter topic itself, since its errors are never permanent. It
// needs Config.InstanceID to tell this instance's dead letters from others'.
func (m *Module) RegisterHandlers(r *message.Router, b *broker.Broker) error {
	if m.cfg.InstanceID == "" {
		return errors.New("deadletters: no instance id, so no way to tell this instance's dead letters from other instances'")
	}
	return b.AddConsumer(r, "deadletters.park", m.cfg.DeadLetterTopic, m.cfg.ConsumerGroup, 1, ports.Letters{Park: m.app.Park}.Handle)
}

// Letter is a dead letter as the CLI shows it.
type Letter = ports.LetterResponse

// List returns parked letters matching the filter, for the CLI.
func (m *Module) List(ctx context.Context, reason, since, until string, limit int) ([]Letter, error) {
	f, err := ports.ParseFilter(reason, since, until)
	if err != nil {
		return nil, err
	}
	f.Limit = limit
	p, err := m.app.Manage.List(ctx, f)
	if err != nil {
		return nil, err
	}
	out := make([]Letter, 0, len(p.Items))
	for _, l := range p.Items {
		out = append(out, ports.ToResponse(l))
	}
	return out, nil
}

// Replay replays a parked letter, named by its email id or its own id, for the CLI.
func (m *Module) Replay(ctx context.Context, ref string) error {
	_, err := m.app.Manage.Replay(ctx, ref)
	return err
}

// ReplayMatching replays every parked letter matching the filter, for the CLI.
func (m *Module) ReplayMatching(ctx context.Context, reason, since, until string) (int, error) {
	f, err := ports.ParseFilter(reason, since, until)
	if err != nil {
		return 0, err
	}
	out, err := m.app.Manage.ReplayMatching(ctx, f)
	return out.Count, err
}

// Discard discards a parked letter, named by its email id or its own id (a poison
// message has no email id), for the CLI.
func (m *Module) Discard(ctx context.Context, ref string) error {
	return m.app.Manage.Discard(ctx, ref)
}
