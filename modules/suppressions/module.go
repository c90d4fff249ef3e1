// Package suppressions keeps the suppression list for the API: GET, POST and
// DELETE /api/suppressions and `mailroom suppressions`. The list itself lives on
// topics.suppressions, a compacted topic holding each address's latest state
// (contract.Changed): an operator's change is committed to this module's table with
// its record in the outbox, and the module's consumer applies every record of the
// topic, whoever wrote it (delivery writes the hard bounces), to the same table. On
// Kafka each instance reads the whole topic in a consumer group of its own, so a new
// or wiped instance rebuilds the list from Kafka. The delivery module keeps a copy
// of its own, from the same topic, and checks it before it sends; the two modules
// meet on the topic and the contract only.
package suppressions

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/labstack/echo/v4"

	"github.com/mailroom/mailroom/modules/suppressions/internal/adapters"
	"github.com/mailroom/mailroom/modules/suppressions/internal/app"
	"github.com/mailroom/mailroom/modules/suppressions/internal/ports"
	"github.com/mailroom/mailroom/platform/broker"
	"github.com/mailroom/mailroom/platform/config"
	"github.com/mailroom/mailroom/platform/outbox"
	"github.com/mailroom/mailroom/platform/sqlite"
)

// Config is what the suppressions module needs to know.
type Config struct {
	// Topic is topics.suppressions.
	Topic string
	// ConsumerGroup is the group this instance reads Topic in: one of its own
	// (ConsumerGroup), so that it reads every record.
	ConsumerGroup string
	// PublishWait bounds how long an operator's change waits, once committed, for
	// the outbox relay to publish it before it is answered (PublishWait is the
	// server's; 0, for the CLI, which runs no relay: no wait).
	PublishWait time.Duration
}

// PublishWait is how long POST and DELETE /api/suppressions wait, once the change
// is committed, for the outbox relay to publish it: on Go channels until the
// delivery module of the process has applied it, so that an email accepted after
// the answer is checked against the new list; on Kafka until the topic holds it.
// Past it (Kafka unreachable) they answer anyway: the change is durable in the
// outbox and published when Kafka is back.
const PublishWait = 5 * time.Second

// ConsumerGroup is the Kafka consumer group in which the suppressions module of the
// instance with instanceID reads topics.suppressions:
// "<kafka.consumer_group>.suppressions.<instance id>". Every instance keeps the
// whole list, so each reads every record in a group of its own; a new group starts
// at the oldest offset, so a new instance (or one whose database was wiped, which
// gives it a new id) reads the whole list, and a restarted one resumes.
func ConsumerGroup(kafkaGroup, instanceID string) string {
	return kafkaGroup + ".suppressions." + instanceID
}

// applyConcurrency is how many records the consumer applies at once on Kafka (never
// two of one address): each is a small write, and several share one commit, which
// matters when a new instance reads the whole list.
const applyConcurrency = 16

// Module is the suppressions module.
type Module struct {
	cfg   Config
	app   app.Application
	store adapters.Store
	log   *slog.Logger
}

// New builds the module.
func New(cfg Config, db *sqlite.DB, box *outbox.Outbox, log *slog.Logger) *Module {
	log = log.With("module", "suppressions")
	store := adapters.Store{DB: db, Outbox: box, Topic: cfg.Topic, PublishWait: cfg.PublishWait}
	a := app.Application{
		Manage: app.Manage{Store: store, Now: time.Now},
		Apply:  app.Apply{Store: store},
	}
	return &Module{cfg: cfg, app: a, store: store, log: log}
}

// Name implements app.Module.
func (m *Module) Name() string { return "suppressions" }

// RegisterRoutes implements app.Module.
func (m *Module) RegisterRoutes(api *echo.Group) { ports.HTTP{Manage: m.app.Manage}.Register(api) }

// RegisterHandlers implements app.Module: the consumer of topics.suppressions, in
// Config.ConsumerGroup. On Go channels, where the delivery module of the same
// process reads the topic too, it takes one record at a time on the topic itself
// (lanes are per topic, and would be shared).
func (m *Module) RegisterHandlers(r *message.Router, b *broker.Broker) error {
	if m.cfg.ConsumerGroup == "" || m.cfg.Topic == "" {
		return errors.New("suppressions: no topic or consumer group for topics.suppressions")
	}
	concurrency := applyConcurrency
	if b.Kind() == config.BrokerGoChannel {
		concurrency = 1
	}
	return b.AddConsumer(r, "suppressions.apply", m.cfg.Topic, m.cfg.ConsumerGroup, concurrency,
		ports.Changes{Apply: m.app.Apply, Log: m.log}.Handle)
}

// Bootstrap publishes, once, the suppressions the module's table adopted from the
// delivery module's list when it was made (migrations/suppressions), so that on
// Kafka every instance learns them; they go through the outbox like any change.
func (m *Module) Bootstrap(ctx context.Context) error {
	n, err := m.store.Announce(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		m.log.Info("suppressions of the list before the upgrade published to the topic", "count", n, "topic", m.cfg.Topic)
	}
	return nil
}

// Suppression is a suppressed address as the CLI shows it.
type Suppression = ports.SuppressionResponse

// List returns suppressions whose address contains the text, newest first, for the
// CLI.
func (m *Module) List(ctx context.Context, addressContains string, limit int) ([]Suppression, error) {
	items, _, err := m.app.Manage.List(ctx, app.Filter{AddressContains: addressContains, Limit: limit})
	if err != nil {
		return nil, err
	}
	out := make([]Suppression, 0, len(items))
	for _, s := range items {
		out = append(out, ports.ToSuppressionResponse(s))
	}
	return out, nil
}

// Add suppresses an address, for the CLI; it reports whether the address was not
// suppressed before. The change reaches the other instances once a server on this
// database publishes its outbox.
func (m *Module) Add(ctx context.Context, address, reason string) (Suppression, bool, error) {
	s, created, err := m.app.Manage.Add(ctx, address, reason)
	return ports.ToSuppressionResponse(s), created, err
}

// Remove takes an address off the suppression list, for the CLI.
func (m *Module) Remove(ctx context.Context, address string) error {
	return m.app.Manage.Remove(ctx, address)
}
