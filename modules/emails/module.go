// Package emails is the module clients talk to: it accepts emails over HTTP, stores
// them with their SendEmail command in one transaction, and keeps each email's status,
// timeline and rendered message from the events other modules publish.
package emails

import (
	"context"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailroom/mailroom/modules/emails/internal/adapters"
	"github.com/mailroom/mailroom/modules/emails/internal/app"
	"github.com/mailroom/mailroom/modules/emails/internal/domain"
	"github.com/mailroom/mailroom/modules/emails/internal/ports"
	"github.com/mailroom/mailroom/platform/broker"
	"github.com/mailroom/mailroom/platform/outbox"
	"github.com/mailroom/mailroom/platform/retention"
	"github.com/mailroom/mailroom/platform/sqlite"
)

// Config is what the emails module needs to know.
type Config struct {
	SendTopic   string
	EventsTopic string
	// LifecycleTopic is topics.lifecycle, where every lifecycle event of the
	// module's emails is published (modules/emails/contract.Event).
	LifecycleTopic string
	DefaultFrom    string
	ConsumerGroup  string
	// InstanceID is this instance's id; every SendEmail the module accepts carries it
	// as its OriginInstance, so that only this instance parks its dead letter. Empty,
	// the commands carry no origin, and every instance parks their dead letters.
	InstanceID string
	// Quota is each API key's daily quota of emails and bytes (auth.quota_*); the
	// zero Quota is none. The module owns it: it is counted in the transaction that
	// stores each email, where the email's size is known.
	Quota Quota
	// Attachments bound each email's attachments (limits.max_attachments and
	// limits.max_attachment_bytes); the zero value allows none.
	Attachments AttachmentLimits
	// Retention is how long finished emails are kept (sent ones for Emails, dead ones
	// as long as their letters, DeadLetters), and how the sweeps are paced. Emails
	// not final are never deleted.
	Retention retention.Policy
}

// Quota is each API key's daily quota: emails and bytes of stored email per UTC
// day, 0 for no limit. Over it, POST /api/emails is 429 quota_exceeded with
// Retry-After until midnight UTC.
type Quota struct {
	EmailsPerDay int64
	BytesPerDay  int64
}

// AttachmentLimits are the limits.* keys: how many attachments one email may carry
// and their total size in bytes, decoded. Over either, the email is 400, naming
// the field and the limit.
type AttachmentLimits struct {
	MaxAttachments int
	MaxBytes       int64
}

// Module is the emails module.
type Module struct {
	cfg    Config
	repo   *adapters.Repository
	http   ports.HTTP
	events ports.Events
	log    *slog.Logger
	// sweep is the module's retention, from Start to Close.
	sweep retention.Background
}

// New builds the module; reg, if not nil, gets its metrics.
func New(cfg Config, db *sqlite.DB, box *outbox.Outbox, log *slog.Logger, reg prometheus.Registerer) *Module {
	repo := adapters.NewRepository(db, box, cfg.SendTopic, cfg.LifecycleTopic, cfg.InstanceID)
	accept := app.AcceptEmail{Repo: repo, DefaultFrom: cfg.DefaultFrom, Now: time.Now,
		Quota:  domain.Quota{EmailsPerDay: cfg.Quota.EmailsPerDay, BytesPerDay: cfg.Quota.BytesPerDay},
		Limits: domain.AttachmentLimits{MaxAttachments: cfg.Attachments.MaxAttachments, MaxBytes: cfg.Attachments.MaxBytes}}
	m := &Module{
		cfg:  cfg,
		repo: repo,
		http: ports.HTTP{
			Accept:      accept,
			AcceptBatch: app.AcceptBatch{Email: accept, Repo: repo},
			Get:         app.GetEmail{Repo: repo},
			List:        app.ListEmails{Repo: repo},
			Events:      app.ListEvents{Repo: repo},
			Cancel:      app.CancelEmail{Repo: repo, Now: time.Now},
			Reschedule:  app.RescheduleEmail{Repo: repo, Now: time.Now},
			Raw:         app.RawMessage{Repo: repo},
		},
		events: ports.Events{Apply: app.ApplyEvent{Repo: repo, Log: log.With("module", "emails")}, InstanceID: cfg.InstanceID},
		log:    log.With("module", "emails"),
	}
	if reg != nil {
		reg.MustRegister(statusCollector{repo: repo})
	}
	return m
}

// Name implements app.Module.
func (m *Module) Name() string { return "emails" }

// RegisterRoutes implements app.Module.
func (m *Module) RegisterRoutes(api *echo.Group) { m.http.Register(api) }

// applyConcurrency is how many events are applied at once (never two of one email:
// each email's apply in order). Each apply is a small write; several at once share
// one durable commit (the database's group commit) instead of waiting for one each.
const applyConcurrency = 16

// RegisterHandlers implements app.Module.
func (m *Module) RegisterHandlers(r *message.Router, b *broker.Broker) error {
	return b.AddConsumer(r, "emails.apply_event", m.cfg.EventsTopic, m.cfg.ConsumerGroup, applyConcurrency, m.events.Handle)
}

// Start implements the app's starter: it runs the retention sweep of the module's
// own tables (Sweeper) until ctx is done.
func (m *Module) Start(ctx context.Context) {
	m.sweep.Start(ctx, m.Sweeper(nil))
}

// Close implements the app's closer: it waits for the retention sweep, whose ctx
// the app has cancelled by then.
func (m *Module) Close() error {
	m.sweep.Wait()
	return nil
}

// Sweeper returns the module's retention: finished emails past their period (see
// Retention), then Idempotency-Keys no request can use any more.
// now may be nil for time.Now; tests sweep once with a clock of their own.
func (m *Module) Sweeper(now func() time.Time) *retention.Sweeper {
	r := m.cfg.Retention
	periods := adapters.Periods{Sent: r.Emails, Dead: r.DeadLetters}
	return retention.New(r.Config(), m.log, now,
		retention.Rule{Name: "emails", Delete: func(ctx context.Context, at time.Time, limit int) (int, error) {
			return m.repo.DeleteFinishedEmails(ctx, periods, at, limit)
		}},
		retention.Rule{Name: "idempotency keys", Delete: m.repo.DeleteStaleBookkeeping},
	)
}

// OnPublished records "published" on the timeline of each email whose SendEmail left
// the outbox.
func (m *Module) OnPublished() outbox.PublishedHook { return m.repo.RecordPublished }

// statusCollector exports the number of emails in each status at scrape time.
type statusCollector struct{ repo *adapters.Repository }

var statusDesc = prometheus.NewDesc("mailroom_emails", "Emails by status.", []string{"status"}, nil)

func (c statusCollector) Describe(ch chan<- *prometheus.Desc) { ch <- statusDesc }

func (c statusCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.repo.CountByStatus(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(statusDesc, err)
		return
	}
	for _, s := range domain.Statuses {
		ch <- prometheus.MustNewConstMetric(statusDesc, prometheus.GaugeValue, float64(counts[s]), string(s))
	}
}
