package app

import (
	"fmt"
	"io"
	"log/slog"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailroom/mailroom/modules/apikeys"
	"github.com/mailroom/mailroom/modules/deadletters"
	"github.com/mailroom/mailroom/modules/delivery"
	"github.com/mailroom/mailroom/modules/emails"
	"github.com/mailroom/mailroom/modules/suppressions"
	"github.com/mailroom/mailroom/modules/webhooks"
	"github.com/mailroom/mailroom/platform/config"
	"github.com/mailroom/mailroom/platform/outbox"
	"github.com/mailroom/mailroom/platform/retention"
	"github.com/mailroom/mailroom/platform/sqlite"
)

// ModuleNames lists every module, in migration order. OpenDatabase migrates the
// tables of those a role runs (migrations/<name>, see RoleModules) before the
// modules are built, since building them needs the migrated database; New refuses
// a module that is not listed here.
// suppressions comes after delivery: its migrations adopt the list delivery kept
// before (migrations/suppressions_adopt_delivery.go).
var ModuleNames = []string{"emails", "delivery", "deadletters", "apikeys", "webhooks", "suppressions"}

// roleModules is which modules each role (config.Modules) runs. The api role holds
// every module that accepts or answers a request; delivery holds the one that
// sends. A module's work that moves between roles later moves here, and the roles
// an operator names stay the same.
var roleModules = map[string][]string{
	config.ModulesAll:      ModuleNames,
	config.ModulesAPI:      {"emails", "deadletters", "apikeys", "webhooks", "suppressions"},
	config.ModulesDelivery: {"delivery"},
}

// RoleModules returns the names of the modules the role cfg.Modules runs, in
// migration order: what serve builds and what its database is migrated for. It
// refuses what config.CheckModules refuses (an unknown role, a split role on Go
// channels), for a config that was not loaded through config.Load.
func RoleModules(cfg *config.Config) ([]string, error) {
	if err := config.CheckModules(cfg.Modules, cfg.Broker.Kind); err != nil {
		return nil, err
	}
	var names []string
	for _, name := range ModuleNames {
		if slices.Contains(roleModules[cfg.Modules], name) {
			names = append(names, name)
		}
	}
	return names, nil
}

// servesAPI reports whether a process running modules answers /api and the
// console: whether it runs the module that authenticates /api (apikeys). A
// delivery worker does not; its only HTTP routes are /healthz, /readyz and
// /metrics.
func servesAPI(modules []Module) bool {
	for _, m := range modules {
		if _, ok := m.(apiGuard); ok {
			return true
		}
	}
	return false
}

// moduleBuild builds one module, named as in ModuleNames.
type moduleBuild struct {
	name  string
	build func() (Module, error)
}

// buildModules builds the modules named in names (see RoleModules), each from its
// part of the config and instanceID (the database's, see App.InstanceID). notices
// receives what the operator must see on the terminal (the first admin key, or with
// firstKeyFile set, the file it was written to: see WithFirstKeyFile).
func buildModules(cfg *config.Config, names []string, instanceID string, db *sqlite.DB, box *outbox.Outbox, log *slog.Logger, reg prometheus.Registerer, notices io.Writer, firstKeyFile string) ([]Module, error) {
	// In the order they are registered (routes, handlers) and closed in reverse.
	every := []moduleBuild{
		{"apikeys", func() (Module, error) {
			c := APIKeysConfig(cfg, notices)
			c.FirstKeyFile = firstKeyFile
			return apikeys.New(c, db, log), nil
		}},
		{"emails", func() (Module, error) { return emails.New(EmailsConfig(cfg, instanceID), db, box, log, reg), nil }},
		{"delivery", func() (Module, error) {
			dc := DeliveryConfig(cfg)
			dc.SuppressionsGroup = delivery.SuppressionsConsumerGroup(cfg.Kafka.ConsumerGroup, instanceID)
			return delivery.New(dc, db, box, log, reg)
		}},
		{"deadletters", func() (Module, error) {
			return deadletters.New(DeadLettersConfig(cfg, instanceID), db, box, log), nil
		}},
		{"webhooks", func() (Module, error) { return webhooks.New(WebhooksConfig(cfg, instanceID), db, log, reg), nil }},
		{"suppressions", func() (Module, error) {
			c := SuppressionsConfig(cfg, instanceID)
			c.PublishWait = suppressions.PublishWait // the server runs the relay that publishes
			return suppressions.New(c, db, box, log), nil
		}},
	}
	if len(every) != len(ModuleNames) {
		return nil, fmt.Errorf("ModuleNames lists %d modules, buildModules knows %d", len(ModuleNames), len(every))
	}
	var modules []Module
	for _, b := range every {
		if !slices.Contains(names, b.name) {
			continue
		}
		m, err := b.build()
		if err != nil {
			return nil, err
		}
		if m.Name() != b.name || !slices.Contains(ModuleNames, m.Name()) {
			return nil, fmt.Errorf("module %s is built as %q, or is not in ModuleNames: its tables were never migrated", m.Name(), b.name)
		}
		modules = append(modules, m)
	}
	if len(modules) != len(names) {
		return nil, fmt.Errorf("the role lists %d modules (%v), %d are built", len(names), names, len(modules))
	}
	return modules, nil
}

// APIKeysConfig is the apikeys module's part of the config; `mailroom keys` uses it
// too.
func APIKeysConfig(cfg *config.Config, notices io.Writer) apikeys.Config {
	keys := make([]string, 0, len(cfg.Auth.APIKeys))
	for _, k := range cfg.Auth.APIKeys {
		keys = append(keys, k.Reveal())
	}
	return apikeys.Config{
		ConfigKeys: keys, RateLimit: cfg.Auth.RateLimit, RateBurst: cfg.Auth.RateBurst,
		HTTPAddr: cfg.HTTP.Addr, Notices: notices,
	}
}

// retryTiers are the retry topics of topics.retry_tiers on Kafka, and none on Go
// channels, where one process does everything and a retry waits in the outbox.
func retryTiers(cfg *config.Config) []delivery.RetryTier {
	if cfg.Broker.Kind != config.BrokerKafka {
		return nil
	}
	var out []delivery.RetryTier
	for _, d := range cfg.Topics.RetryTierDelays() {
		out = append(out, delivery.RetryTier{Delay: d, Name: config.TierName(d), Topic: config.RetryTopic(cfg.Topics.Send, d)})
	}
	return out
}

// DeliveryConfig is the delivery module's part of the config.
func DeliveryConfig(cfg *config.Config) delivery.Config {
	return delivery.Config{
		SendTopic:       cfg.Topics.Send,
		EventsTopic:     cfg.Topics.Events,
		DeadLetterTopic: cfg.Topics.DeadLetter,
		ConsumerGroup:   cfg.Kafka.ConsumerGroup,
		// SuppressionsGroup is the instance's own: buildModules sets it.
		SuppressionsTopic: cfg.Topics.Suppressions,
		Concurrency:       cfg.Delivery.Concurrency,
		Transport:         cfg.Delivery.Transport,
		SMTP: delivery.SMTPConfig{
			Host: cfg.SMTP.Host, Port: cfg.SMTP.Port,
			Username: cfg.SMTP.Username, Password: cfg.SMTP.Password.Reveal(),
			TLS: cfg.SMTP.TLS, DialTimeout: cfg.SMTP.Timeout, CommandTimeout: cfg.SMTP.Timeout,
			LocalName: cfg.SMTP.HeloName,
		},
		DefaultFrom: cfg.SMTP.From,
		RetryTiers:  retryTiers(cfg),
		Retry: delivery.RetryPolicy{
			MaxAttempts: cfg.Retry.MaxAttempts, Initial: cfg.Retry.InitialInterval,
			Multiplier: cfg.Retry.Multiplier, Max: cfg.Retry.MaxInterval,
			MaxAge: cfg.Retry.MaxAge, Jitter: cfg.Retry.Jitter,
		},
		Retention: RetentionPolicy(cfg),
	}
}

// EmailsConfig is the emails module's part of the config, for the instance whose
// database has instanceID.
func EmailsConfig(cfg *config.Config, instanceID string) emails.Config {
	return emails.Config{
		SendTopic:      cfg.Topics.Send,
		EventsTopic:    cfg.Topics.Events,
		LifecycleTopic: cfg.Topics.Lifecycle,
		DefaultFrom:    cfg.SMTP.From,
		ConsumerGroup:  EmailsConsumerGroup(instanceID),
		InstanceID:     instanceID,
		Quota:          emails.Quota{EmailsPerDay: cfg.Auth.QuotaEmailsPerDay, BytesPerDay: cfg.Auth.QuotaBytesPerDay},
		Attachments:    emails.AttachmentLimits{MaxAttachments: cfg.Limits.MaxAttachments, MaxBytes: cfg.Limits.MaxAttachmentBytes},
		Retention:      RetentionPolicy(cfg),
	}
}

// DeadLettersConfig is the deadletters module's part of the config, for the
// instance whose database has instanceID.
func DeadLettersConfig(cfg *config.Config, instanceID string) deadletters.Config {
	return deadletters.Config{
		SendTopic:       cfg.Topics.Send,
		EventsTopic:     cfg.Topics.Events,
		DeadLetterTopic: cfg.Topics.DeadLetter,
		ConsumerGroup:   DeadLettersConsumerGroup(instanceID),
		InstanceID:      instanceID,
		Retention:       RetentionPolicy(cfg),
	}
}

// WebhooksConfig is the webhooks module's part of the config, for the instance
// whose database has instanceID.
func WebhooksConfig(cfg *config.Config, instanceID string) webhooks.Config {
	w := cfg.Webhooks
	return webhooks.Config{
		LifecycleTopic:       cfg.Topics.Lifecycle,
		ConsumerGroup:        WebhooksConsumerGroup(instanceID),
		AllowPrivateTargets:  w.AllowPrivateTargets,
		Timeout:              w.Timeout,
		Concurrency:          w.Concurrency,
		RetryInitial:         w.RetryInitial,
		RetryMultiplier:      w.RetryMultiplier,
		RetryMaxDelay:        w.RetryMaxDelay,
		RetryFor:             w.RetryFor,
		DisableAfterFailures: w.DisableAfterFailures,
		DisableAfter:         w.DisableAfter,
		Retention:            RetentionPolicy(cfg),
	}
}

// SuppressionsConfig is the suppressions module's part of the config, for the
// instance whose database has instanceID; a server sets PublishWait too, the CLI
// (which runs no relay) does not.
func SuppressionsConfig(cfg *config.Config, instanceID string) suppressions.Config {
	return suppressions.Config{Topic: cfg.Topics.Suppressions,
		ConsumerGroup: suppressions.ConsumerGroup(cfg.Kafka.ConsumerGroup, instanceID)}
}

// WebhooksConsumerGroup is the Kafka consumer group in which the instance with
// instanceID reads topics.lifecycle: one per instance, like EmailsConsumerGroup,
// since each instance's webhook endpoints live in its own database.
func WebhooksConsumerGroup(instanceID string) string { return "mailroom-webhooks." + instanceID }

// RetentionPolicy is the retention.* keys, as each module sweeps its own tables by
// them.
func RetentionPolicy(cfg *config.Config) retention.Policy {
	return retention.Policy{Emails: cfg.Retention.Emails, DeadLetters: cfg.Retention.DeadLetters,
		Interval: cfg.Retention.Interval, BatchSize: cfg.Retention.BatchSize}
}

// EmailsConsumerGroup is the Kafka consumer group in which the instance with
// instanceID reads topics.events. Each instance has a database of its own, so each
// must read every event and keep those about its own emails: a group shared by the
// instances would hand an event to one of them only, often not the one holding the
// email, and that email's status would stay stale. Delivery, by contrast, shares
// kafka.consumer_group, so that each email is sent once. A new group starts at the
// oldest offset; re-reading old events is harmless (each is applied once).
func EmailsConsumerGroup(instanceID string) string { return "mailroom-emails." + instanceID }

// DeadLettersConsumerGroup is the Kafka consumer group in which the instance with
// instanceID reads topics.dead_letter: one per instance, like EmailsConsumerGroup,
// so that the instance that accepted an email sees its dead letter, whichever
// instance sent it.
func DeadLettersConsumerGroup(instanceID string) string {
	return "mailroom-deadletters." + instanceID
}
