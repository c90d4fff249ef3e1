package app

import (
	"io"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailroom/mailroom/modules/apikeys"
	"github.com/mailroom/mailroom/modules/deadletters"
	"github.com/mailroom/mailroom/modules/delivery"
	"github.com/mailroom/mailroom/modules/emails"
	"github.com/mailroom/mailroom/platform/config"
	"github.com/mailroom/mailroom/platform/outbox"
	"github.com/mailroom/mailroom/platform/sqlite"
)

// ModuleNames lists every module, in migration order.
var ModuleNames = []string{"emails", "delivery", "deadletters", "apikeys"}

// buildModules is the list of modules, each built from its part of the config.
// notices receives what the operator must see on the terminal (the first admin key).
func buildModules(cfg *config.Config, db *sqlite.DB, box *outbox.Outbox, log *slog.Logger, reg prometheus.Registerer, notices io.Writer) ([]Module, error) {
	keys := apikeys.New(APIKeysConfig(cfg, notices), db, log)
	em := emails.New(emails.Config{
		SendTopic:     cfg.Topics.Send,
		EventsTopic:   cfg.Topics.Events,
		DefaultFrom:   cfg.SMTP.From,
		ConsumerGroup: "mailroom-emails",
	}, db, box, log, reg)
	dl, err := delivery.New(DeliveryConfig(cfg), db, box, log)
	if err != nil {
		return nil, err
	}
	dd := deadletters.New(DeadLettersConfig(cfg), db, box)
	return []Module{keys, em, dl, dd}, nil
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

// DeliveryConfig is the delivery module's part of the config.
func DeliveryConfig(cfg *config.Config) delivery.Config {
	return delivery.Config{
		SendTopic:     cfg.Topics.Send,
		EventsTopic:   cfg.Topics.Events,
		ConsumerGroup: cfg.Kafka.ConsumerGroup,
		Lanes:         cfg.Delivery.Concurrency,
		Transport:     cfg.Delivery.Transport,
		SMTP: delivery.SMTPConfig{
			Host: cfg.SMTP.Host, Port: cfg.SMTP.Port,
			Username: cfg.SMTP.Username, Password: cfg.SMTP.Password.Reveal(),
			TLS: cfg.SMTP.TLS, DialTimeout: cfg.SMTP.Timeout, CommandTimeout: cfg.SMTP.Timeout,
		},
		DefaultFrom: cfg.SMTP.From,
		Retry: delivery.RetryPolicy{
			MaxAttempts: cfg.Retry.MaxAttempts, Initial: cfg.Retry.InitialInterval,
			Multiplier: cfg.Retry.Multiplier, Max: cfg.Retry.MaxInterval,
		},
	}
}

// DeadLettersConfig is the deadletters module's part of the config.
func DeadLettersConfig(cfg *config.Config) deadletters.Config {
	return deadletters.Config{
		SendTopic:       cfg.Topics.Send,
		EventsTopic:     cfg.Topics.Events,
		DeadLetterTopic: cfg.Topics.DeadLetter,
		ConsumerGroup:   "mailroom-deadletters",
	}
}
