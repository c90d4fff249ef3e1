// Package broker builds the pub/sub that connects Mailroom's modules. broker.kind picks
// Go channels (embedded, in-process) or Kafka; modules see only Watermill's Publisher,
// Subscriber and Router, so nothing else changes when the broker does.
package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/mailroom/mailroom/platform/config"
)

// Broker owns the publisher and subscribers of one process.
type Broker struct {
	kind      string
	publisher *lanePublisher
	// subscriber returns a subscriber in the given consumer group that hands out at
	// most concurrency messages at once (on Go channels, where lanes do that, it
	// ignores concurrency). With giveUpAtOnce, a partition that stops (a rebalance,
	// Close) cancels its running messages at once instead of letting them finish.
	subscriber func(group string, concurrency int, giveUpAtOnce bool) (message.Subscriber, error)
	ping       func(ctx context.Context) error
	// caughtUp is WaitCaughtUp on Kafka; nil on Go channels.
	caughtUp func(ctx context.Context, topic, group string) error
	closers  []io.Closer
}

// Option configures New.
type Option func(*options)

type options struct {
	warnLog *slog.Logger
}

// WithWarnLog sets where the broker logs its warnings, at slog.LevelWarn: Kafka
// topics with fewer partitions than topics.partitions. Watermill's LoggerAdapter,
// which New's logger is, has no warning level; without this option the warnings go
// to that logger at error level, so that they are never lost.
func WithWarnLog(log *slog.Logger) Option { return func(o *options) { o.warnLog = log } }

// warner is the function the broker warns with: the WithWarnLog log, or logger's
// errors.
func (o options) warner(logger watermill.LoggerAdapter) func(string, watermill.LogFields) {
	if o.warnLog == nil {
		return func(msg string, fields watermill.LogFields) { logger.Error(msg, nil, fields) }
	}
	return func(msg string, fields watermill.LogFields) {
		args := make([]any, 0, 2*len(fields))
		for _, k := range slices.Sorted(maps.Keys(fields)) {
			args = append(args, k, fields[k])
		}
		o.warnLog.Warn(msg, args...)
	}
}

// New builds the broker that cfg.Broker.Kind names.
func New(cfg *config.Config, logger watermill.LoggerAdapter, opts ...Option) (*Broker, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	switch cfg.Broker.Kind {
	case config.BrokerGoChannel:
		return newGoChannel(logger), nil
	case config.BrokerKafka:
		return newKafka(cfg, logger, o)
	default:
		return nil, fmt.Errorf("broker.kind: unknown broker %q", cfg.Broker.Kind)
	}
}

// newGoChannel builds the embedded broker. Publish blocks until the subscriber acked,
// so the outbox relay deletes a row only once its handler has finished with it: a
// kill -9 at any moment loses nothing.
func newGoChannel(logger watermill.LoggerAdapter) *Broker {
	ps := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, logger)
	return &Broker{
		kind:       config.BrokerGoChannel,
		publisher:  &lanePublisher{Publisher: ps, lanes: map[string]chan int{}},
		subscriber: func(string, int, bool) (message.Subscriber, error) { return ps, nil },
		ping:       func(context.Context) error { return nil },
		closers:    []io.Closer{ps},
	}
}

// Kind is the broker kind, as in broker.kind.
func (b *Broker) Kind() string { return b.kind }

// Publisher publishes to any topic; it is safe for concurrent use.
func (b *Broker) Publisher() message.Publisher { return b.publisher }

// Ping reports whether the broker can be reached, for /readyz.
func (b *Broker) Ping(ctx context.Context) error { return b.ping(ctx) }

// AddConsumer registers handler for topic in consumer group on router, handling up
// to concurrency messages at once, never two with the same partition key. On Go
// channels it registers one handler per lane (concurrency > 1), and the publisher
// never has two messages of one key in flight; on Kafka one handler serves the
// subscription, whose subscriber hands out several messages of a partition at once
// (see kafkaSubscriber).
func (b *Broker) AddConsumer(r *message.Router, name, topic, group string, concurrency int, handler message.NoPublishHandlerFunc) error {
	if b.kind != config.BrokerGoChannel || concurrency <= 1 {
		sub, err := b.subscriber(group, concurrency, false)
		if err != nil {
			return fmt.Errorf("subscriber for %s: %w", name, err)
		}
		r.AddConsumerHandler(name, topic, sub, handler)
		return nil
	}
	b.publisher.setLanes(topic, concurrency)
	for lane := 0; lane < concurrency; lane++ {
		sub, err := b.subscriber(group, 1, false)
		if err != nil {
			return fmt.Errorf("subscriber for %s: %w", name, err)
		}
		r.AddConsumerHandler(fmt.Sprintf("%s.lane-%d", name, lane), laneTopic(topic, lane), sub, handler)
	}
	return nil
}

// AddForwarder registers handler for topic in consumer group on router, and
// publishes the messages it returns to publishTopic before the one it handled is
// acknowledged (Watermill's router does both, in that order), so a forwarded
// message is never lost between the two topics. It is for handlers that wait
// before they forward (a retry until it is due): up to concurrency messages wait at
// once, in slots of this subscription's own, so they never hold up another
// consumer's. On Kafka a partition that stops (a rebalance takes it away, or the
// subscriber closes) cancels the contexts of its running messages at once instead
// of letting them finish: a waiting handler then returns, its message is not
// committed, and the partition's next owner reads it again; a wait never holds up
// a rebalance. A message cancelled after its forward was published and before its
// ack is forwarded again by the next owner.
func (b *Broker) AddForwarder(r *message.Router, name, topic, group string, concurrency int, publishTopic string, handler message.HandlerFunc) error {
	sub, err := b.subscriber(group, concurrency, true)
	if err != nil {
		return fmt.Errorf("subscriber for %s: %w", name, err)
	}
	r.AddHandler(name, topic, sub, publishTopic, b.publisher, handler)
	return nil
}

// Close closes every publisher and subscriber.
func (b *Broker) Close() error {
	var errs []error
	for _, c := range b.closers {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}
