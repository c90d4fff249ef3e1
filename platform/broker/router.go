package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
)

// RouterConfig configures the router every module's handlers run on.
type RouterConfig struct {
	// DeadLetterTopic receives messages whose handler failed permanently.
	DeadLetterTopic string
	// CloseTimeout bounds how long in-flight handlers may run on shutdown.
	CloseTimeout time.Duration
	// BlipRetries is how many times an error that is not permanent (a busy database,
	// a broker hiccup) is retried inside the handler before the message is nacked.
	// Delivery failures are not retried here: they are scheduled durably.
	BlipRetries int
}

// NewRouter builds a router with the standard middleware, outermost first:
// correlation id, poison queue (permanent errors only), retry of short blips, and
// panic recovery. The poison queue stands outside the retry so that retries happen
// before poisoning (watermill issue #645); it takes only permanent errors, so a
// handler interrupted by shutdown is nacked and redelivered, never dead-lettered.
func NewRouter(cfg RouterConfig, pub message.Publisher, logger watermill.LoggerAdapter) (*message.Router, error) {
	r, err := message.NewRouter(message.RouterConfig{CloseTimeout: cfg.CloseTimeout}, logger)
	if err != nil {
		return nil, fmt.Errorf("new router: %w", err)
	}
	poison, err := middleware.PoisonQueueWithFilter(pub, cfg.DeadLetterTopic, IsPermanent)
	if err != nil {
		return nil, fmt.Errorf("poison queue: %w", err)
	}
	retry := middleware.Retry{
		MaxRetries:      cfg.BlipRetries,
		InitialInterval: 100 * time.Millisecond,
		MaxInterval:     time.Second,
		Multiplier:      2,
		ShouldRetry: func(p middleware.RetryParams) bool {
			return !IsPermanent(p.Err) && !errors.Is(p.Err, context.Canceled)
		},
		Logger: logger,
	}
	r.AddMiddleware(
		middleware.CorrelationID,
		poison,
		retry.Middleware,
		middleware.Recoverer,
	)
	return r, nil
}
