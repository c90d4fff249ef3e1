// Package delivery sends emails. It consumes SendEmail commands from topics.send,
// renders each message, hands it to the configured transport (SMTP, or capture),
// records the outcome idempotently and publishes what happened on topics.events.
package delivery

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/labstack/echo/v4"

	"github.com/mailroom/mailroom/modules/delivery/internal/adapters"
	"github.com/mailroom/mailroom/modules/delivery/internal/app"
	"github.com/mailroom/mailroom/modules/delivery/internal/ports"
	"github.com/mailroom/mailroom/modules/delivery/internal/render"
	"github.com/mailroom/mailroom/modules/delivery/internal/transport"
	"github.com/mailroom/mailroom/platform/broker"
	"github.com/mailroom/mailroom/platform/config"
	"github.com/mailroom/mailroom/platform/outbox"
	"github.com/mailroom/mailroom/platform/sqlite"
)

// Config is what the delivery module needs to know.
type Config struct {
	SendTopic     string
	EventsTopic   string
	ConsumerGroup string
	// Lanes is how many sends run at once on the Go-channel broker.
	Lanes int
	// Transport is config.TransportCapture or config.TransportSMTP.
	Transport   string
	SMTP        SMTPConfig
	DefaultFrom string
	Retry       RetryPolicy
}

// SMTPConfig configures the smtp transport.
type SMTPConfig = transport.SMTPConfig

// RetryPolicy is the backoff of transient failures.
type RetryPolicy = app.RetryPolicy

// Module is the delivery module.
type Module struct {
	cfg       Config
	transport transport.Transport
	send      app.SendEmail
	http      ports.HTTP
}

// New builds the module and its transport.
func New(cfg Config, db *sqlite.DB, box *outbox.Outbox, log *slog.Logger) (*Module, error) {
	var t transport.Transport
	switch cfg.Transport {
	case config.TransportCapture:
		t = transport.Capture{}
	case config.TransportSMTP:
		if cfg.SMTP.MaxIdleConns == 0 {
			cfg.SMTP.MaxIdleConns = max(cfg.Lanes, 1)
		}
		if err := cfg.SMTP.Validate(); err != nil {
			return nil, err
		}
		t = transport.NewSMTP(cfg.SMTP)
	default:
		return nil, fmt.Errorf("delivery.transport: %q is not %q or %q", cfg.Transport, config.TransportCapture, config.TransportSMTP)
	}
	store := adapters.Store{DB: db, Outbox: box, SendTopic: cfg.SendTopic, EventsTopic: cfg.EventsTopic}
	return &Module{
		cfg:       cfg,
		transport: t,
		send: app.SendEmail{
			Store: store, Transport: t, Render: render.Options{DefaultFrom: cfg.DefaultFrom},
			Retry: cfg.Retry, IsPermanent: transport.IsPermanent, ReplyOf: transport.ReplyOf,
			SendTopic: cfg.SendTopic, ConsumerGroup: cfg.ConsumerGroup,
			Now: time.Now, Log: log.With("module", "delivery"), Unrecorded: app.NewUnrecorded(),
		},
		http: ports.HTTP{Store: store},
	}, nil
}

// Name implements app.Module.
func (m *Module) Name() string { return "delivery" }

// RegisterRoutes implements app.Module.
func (m *Module) RegisterRoutes(api *echo.Group) { m.http.Register(api) }

// RegisterHandlers implements app.Module. The handler name is permanent: on Kafka it
// identifies the consumer.
func (m *Module) RegisterHandlers(r *message.Router, b *broker.Broker) error {
	return b.AddConsumer(r, "delivery.send_email", m.cfg.SendTopic, m.cfg.ConsumerGroup, m.cfg.Lanes, m.send.Handle)
}

// Close closes the transport's connections.
func (m *Module) Close() error { return m.transport.Close() }
