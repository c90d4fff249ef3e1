// Package delivery sends emails. It consumes SendEmail commands from topics.send,
// renders each message, hands it to the configured transport (SMTP, or capture) in one
// transaction for every recipient still pending, records each recipient's outcome
// idempotently and publishes what happened on topics.events; what cannot be
// delivered goes to topics.dead_letter through the outbox. It keeps a copy of the
// suppression list (topics.suppressions), skips the suppressed recipients, and
// writes the suppressions its hard bounces decide to the topic; it pauses every
// send while the mail server is down or misconfigured.
package delivery

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailroom/mailroom/modules/delivery/internal/adapters"
	"github.com/mailroom/mailroom/modules/delivery/internal/app"
	"github.com/mailroom/mailroom/modules/delivery/internal/ports"
	"github.com/mailroom/mailroom/modules/delivery/internal/render"
	"github.com/mailroom/mailroom/modules/delivery/internal/transport"
	"github.com/mailroom/mailroom/platform/broker"
	"github.com/mailroom/mailroom/platform/config"
	"github.com/mailroom/mailroom/platform/outbox"
	"github.com/mailroom/mailroom/platform/retention"
	"github.com/mailroom/mailroom/platform/sqlite"
)

// Config is what the delivery module needs to know.
type Config struct {
	SendTopic       string
	EventsTopic     string
	DeadLetterTopic string
	ConsumerGroup   string
	// SuppressionsTopic is topics.suppressions: delivery writes the suppressions
	// its hard bounces decide there, and reads every record into its copy of the
	// list, which it checks before it sends.
	SuppressionsTopic string
	// SuppressionsGroup is the consumer group in which this instance reads
	// SuppressionsTopic: one of its own, so that it reads every record (see
	// SuppressionsConsumerGroup).
	SuppressionsGroup string
	// Concurrency is how many sends run at once, on either broker.
	Concurrency int
	// Transport is config.TransportCapture or config.TransportSMTP.
	Transport   string
	SMTP        SMTPConfig
	DefaultFrom string
	Retry       RetryPolicy
	// RetryTiers are the retry topics, shortest delay first; set them on Kafka only.
	// A deferred recipient's next try then goes to the topic of its delay's tier at
	// once (through the outbox, in the transaction of the try's outcome), and the
	// module's forwarder of each tier, in consumer group RetryConsumerGroup(tier),
	// hands it back to SendTopic once it is due: no retry waits on one worker's disk.
	// Empty (Go channels), a retry waits in the outbox as an outbox row due at its time.
	RetryTiers []RetryTier
	// MinProbeWait is the wait before the first probe of a mail server that failed
	// (0: a second); later probes wait twice as long each, at most 30 s.
	MinProbeWait time.Duration
	// Retention is how long the module keeps the delivery records (state and
	// rendered message) of emails whose delivery is final: sent ones for
	// Retention.Emails, dead ones for Retention.DeadLetters.
	Retention retention.Policy
}

// SMTPConfig configures the smtp transport.
type SMTPConfig = transport.SMTPConfig

// RetryPolicy is when deferred recipients are tried again, and given up.
type RetryPolicy = app.RetryPolicy

// RetryTier is one retry topic on Kafka: its delay, its name ("10m") and its topic.
type RetryTier = app.RetryTier

// RetryForwarderConcurrency is how many retries of one tier an instance holds at
// once, waiting until each is due, in slots of the tier's own subscription (not
// topics.send's, so fresh mail never waits behind them). Within a tier every retry
// waits between the tier's delay and the next tier's, so the oldest is about the
// first due; more than this many waiting on one instance queue behind the first.
const RetryForwarderConcurrency = 256

// OutcomePublishWait is how long, on Kafka, a SendEmail waits at a time for the
// outbox relay to publish what its try produced (its EmailAttempted event, a retry
// routed to a tier, a dead letter): it is acknowledged only once they are all in
// Kafka, so that the consumed message is committed only then, and a worker lost
// right after, data directory and all, leaves nothing behind on its disk that
// another worker or the API needs. Past it (Kafka unreachable, a topic refusing
// writes) the SendEmail is not acknowledged: the router hands it out again, and
// its redelivery, recognised as recorded, sends nothing and waits again.
const OutcomePublishWait = 10 * time.Second

// OutcomeNotPublishedLog is the message of the warning a delivery instance logs when
// a try is recorded but what it produced is still not in Kafka after
// OutcomePublishWait: the SendEmail is then not acknowledged, and its offset not
// committed, until it is.
const OutcomeNotPublishedLog = app.OutcomeNotPublishedLog

// RetryConsumerGroup is the Kafka consumer group of a tier's forwarders: one per
// tier, shared by every delivery instance, so that an instance that dies hands its
// partitions of the tier, and the retries waiting in them, to the others.
func (c Config) RetryConsumerGroup(tier RetryTier) string {
	return c.ConsumerGroup + ".retry." + tier.Name
}

// SuppressionsConsumerGroup is the Kafka consumer group in which the delivery module
// of the instance with instanceID reads topics.suppressions:
// "<kafka.consumer_group>.suppressions.delivery.<instance id>". Each worker keeps
// the whole list, so each reads every record in a group of its own (not the
// suppressions module's, which an `all` instance runs beside it); a new group
// starts at the oldest offset, so a new worker, or one on a wiped data directory
// (a new database, a new instance id), reads the whole list, and a restarted one
// resumes.
func SuppressionsConsumerGroup(kafkaGroup, instanceID string) string {
	return kafkaGroup + ".suppressions.delivery." + instanceID
}

// Module is the delivery module.
type Module struct {
	cfg       Config
	transport transport.Transport
	app       app.Application
	commands  ports.Commands
	store     adapters.Store
	log       *slog.Logger
	// sweep is the module's retention, from Start to Close.
	sweep retention.Background
	// retries count the retries the tiers' forwarders hold and forward.
	retries ports.RetryMetrics
	// listReady is closed once the copy of the suppression list is whole (see
	// app.SendEmail.ListReady); broker is the one RegisterHandlers was given, which
	// Start asks when that is.
	listReady chan struct{}
	broker    *broker.Broker
}

// New builds the module and its transport; reg, if not nil, gets its metrics.
func New(cfg Config, db *sqlite.DB, box *outbox.Outbox, log *slog.Logger, reg prometheus.Registerer) (*Module, error) {
	log = log.With("module", "delivery")
	t, err := NewTransport(cfg, log.With("component", "smtp"))
	if err != nil {
		return nil, err
	}
	store := adapters.Store{DB: db, Outbox: box, SendTopic: cfg.SendTopic, EventsTopic: cfg.EventsTopic, DeadLetterTopic: cfg.DeadLetterTopic,
		SuppressionsTopic: cfg.SuppressionsTopic, RetryTiers: cfg.RetryTiers, Now: time.Now}
	if len(cfg.RetryTiers) > 0 { // on Kafka: another worker or the API carries on from what is published
		store.PublishWait = OutcomePublishWait
	}
	gate := app.NewServerGate(t.Probe, cfg.MinProbeWait, 0, log)
	listReady := make(chan struct{})
	a := app.Application{
		SendEmail: app.SendEmail{
			Store: store, Transport: t, Gate: gate, Render: render.Options{DefaultFrom: cfg.DefaultFrom, Now: time.Now},
			Retry: cfg.Retry, Now: time.Now, Log: log, Unrecorded: app.NewUnrecorded(), ListReady: listReady,
		},
		Gate:         gate,
		Suppressions: app.SuppressionCopy{Store: store},
	}
	if reg != nil {
		reg.MustRegister(ports.GateCollector{Gate: gate})
	}
	return &Module{cfg: cfg, transport: t, app: a, store: store, log: log, retries: ports.NewRetryMetrics(reg), listReady: listReady,
		commands: ports.Commands{Send: a.SendEmail, SendTopic: cfg.SendTopic, ConsumerGroup: cfg.ConsumerGroup, Now: time.Now}}, nil
}

// NewTransport builds the transport cfg names: what New sends through, and what
// `mailroom smtp-check` probes. The SMTP transport writes each conversation's
// steps to log at debug level (nil: nowhere), naming the email a send is for.
func NewTransport(cfg Config, log *slog.Logger) (transport.Transport, error) {
	switch cfg.Transport {
	case config.TransportCapture:
		return transport.Capture{}, nil
	case config.TransportSMTP:
		if cfg.SMTP.MaxIdleConns == 0 {
			cfg.SMTP.MaxIdleConns = max(cfg.Concurrency, 1)
		}
		if err := cfg.SMTP.Validate(); err != nil {
			return nil, err
		}
		return transport.NewSMTP(cfg.SMTP, log), nil
	default:
		return nil, fmt.Errorf("delivery.transport: %q is not %q or %q", cfg.Transport, config.TransportCapture, config.TransportSMTP)
	}
}

// Name implements app.Module.
func (m *Module) Name() string { return "delivery" }

// RegisterRoutes implements app.Module: delivery serves no route (the suppression
// list's API is the suppressions module's).
func (m *Module) RegisterRoutes(*echo.Group) {}

// suppressionsConcurrency is how many records of topics.suppressions the copy's
// consumer applies at once on Kafka (never two of one address): each is a small
// write, and several share one commit, which matters when a new worker reads the
// whole list.
const suppressionsConcurrency = 16

// RegisterHandlers implements app.Module: the consumer of SendTopic, the consumer
// of SuppressionsTopic that keeps delivery's copy of the suppression list (in
// SuppressionsGroup, the instance's own) and, on Kafka, one forwarder per retry
// tier (Config.RetryTiers). The handler names are permanent: on Kafka they
// identify the consumers.
func (m *Module) RegisterHandlers(r *message.Router, b *broker.Broker) error {
	if err := b.AddConsumer(r, "delivery.send_email", m.cfg.SendTopic, m.cfg.ConsumerGroup, m.cfg.Concurrency, m.commands.Handle); err != nil {
		return err
	}
	if m.cfg.SuppressionsTopic == "" || m.cfg.SuppressionsGroup == "" {
		return fmt.Errorf("delivery: no topic or consumer group for the suppression list")
	}
	// On Go channels the suppressions module of the same process reads the topic
	// too: one record at a time on the topic itself (lanes are per topic, and
	// would be shared).
	concurrency := suppressionsConcurrency
	if b.Kind() == config.BrokerGoChannel {
		concurrency = 1
	}
	m.broker = b
	if b.Kind() == config.BrokerGoChannel {
		// A publish there returns once every handler acknowledged it: the copy is
		// as whole as the table it is kept in.
		close(m.listReady)
	}
	changes := ports.SuppressionChanges{Copy: m.app.Suppressions, Log: m.log}
	if err := b.AddConsumer(r, "delivery.apply_suppression", m.cfg.SuppressionsTopic, m.cfg.SuppressionsGroup, concurrency, changes.Handle); err != nil {
		return err
	}
	if len(m.cfg.RetryTiers) > 0 && b.Kind() != config.BrokerKafka {
		return fmt.Errorf("delivery: retry tiers need Kafka, the broker is %s", b.Kind())
	}
	for _, tier := range m.cfg.RetryTiers {
		fwd := ports.RetryForwarder{Tier: tier, Wait: app.DueWait{Now: time.Now, After: time.After}, Metrics: m.retries, Log: m.log}
		if err := b.AddForwarder(r, "delivery.retry_forward."+tier.Name, tier.Topic, m.cfg.RetryConsumerGroup(tier),
			RetryForwarderConcurrency, m.cfg.SendTopic, fwd.Handle); err != nil {
			return err
		}
	}
	return nil
}

// Bootstrap publishes, once, the suppressions delivery's list held before it moved
// to topics.suppressions (migrations/delivery 00005), so that every instance of a
// split deployment learns them; they go through the outbox like any change.
func (m *Module) Bootstrap(ctx context.Context) error {
	n, err := m.app.Suppressions.Announce(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		m.log.Info("suppressions of the list before the upgrade published to the topic", "count", n, "topic", m.cfg.SuppressionsTopic)
	}
	return nil
}

// Start checks the mail server once, in the background, as the app starts taking
// work: the result is logged, and a server that does not answer as configured
// pauses delivery before the first email burns an attempt. It never stops start-up.
// The capture transport has no server to check.
//
// It also runs the retention sweep of the module's own tables (Sweeper) until ctx
// is done, and, on Kafka, waits for the copy of the suppression list to catch up
// with topics.suppressions (waitForTheList).
func (m *Module) Start(ctx context.Context) {
	if m.cfg.Transport == config.TransportSMTP {
		go m.app.Gate.CheckAtStart(ctx)
	}
	m.sweep.Start(ctx, m.Sweeper(nil))
	if m.broker != nil && m.broker.Kind() == config.BrokerKafka {
		go m.waitForTheList(ctx)
	}
}

// waitForTheList closes listReady once the copy's consumer group has read
// topics.suppressions as far as it went now: until then no send is tried, so that
// a worker that starts with an empty copy (new, or on a wiped data directory)
// sends nothing to a suppressed address. A restarted worker's group resumes where
// it stopped, so it waits for what it missed only.
func (m *Module) waitForTheList(ctx context.Context) {
	began := time.Now()
	m.log.Info("sending once the copy of the suppression list has caught up with its topic", "topic", m.cfg.SuppressionsTopic)
	if err := m.broker.WaitCaughtUp(ctx, m.cfg.SuppressionsTopic, m.cfg.SuppressionsGroup); err != nil {
		return // shutdown came first
	}
	m.log.Info("the copy of the suppression list has caught up; sending", "took", time.Since(began).Round(time.Millisecond).String())
	close(m.listReady)
}

// Sweeper returns the module's retention: the records of emails whose delivery is
// final, past their period (Config.Retention); a retrying email's never. now may
// be nil for time.Now.
func (m *Module) Sweeper(now func() time.Time) *retention.Sweeper {
	p := m.cfg.Retention
	return retention.New(p.Config(), m.log, now, retention.Rule{Name: "delivery records",
		Delete: func(ctx context.Context, at time.Time, limit int) (int, error) {
			return m.store.DeleteFinishedRecords(ctx, p.Emails, p.DeadLetters, at, limit)
		}})
}

// BeforeShutdown lets go of the sends waiting for the mail server, before the app
// waits for the outbox relay's publishes to finish: each hands its command back to
// the outbox for the next start (see app.ServerGate.Shutdown).
func (m *Module) BeforeShutdown() { m.app.Gate.Shutdown() }

// Health says how the mail server is, for /readyz: "ok", or since when and why
// delivery is paused. Delivery being paused does not make the app unready: the API
// still accepts mail durably.
func (m *Module) Health() (name, state string) {
	st := m.app.Gate.State()
	if st.Open {
		return "smtp", "ok"
	}
	return "smtp", fmt.Sprintf("paused since %s: %s", st.Since.UTC().Format(time.RFC3339), st.Reason)
}

// Close stops the gate's prober, waits for the retention sweep (whose ctx the app
// has cancelled by then) and closes the transport's connections.
func (m *Module) Close() error {
	m.app.Gate.Close()
	m.sweep.Wait()
	return m.transport.Close()
}
