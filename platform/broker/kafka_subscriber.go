package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
)

// kafkaSubscriber is a watermill-kafka consumer-group subscriber whose Subscribe
// never fails because Kafka is down. watermill-kafka's Subscribe connects at once
// and returns the error when it cannot, and Watermill's router.Run then stops with
// "cannot subscribe topic": Mailroom would exit at start whenever Kafka is away.
// Here Subscribe returns a channel at once; a goroutine waits until the topics are
// provisioned, subscribes (retrying while that fails) and forwards the messages.
// Once subscribed, watermill-kafka itself reconnects after an outage
// (ReconnectRetrySleep). Messages are forwarded as they are, so Ack and Nack reach
// watermill-kafka unchanged.
type kafkaSubscriber struct {
	conn       *kafkaConn
	inner      *kafka.Subscriber
	log        watermill.LoggerAdapter
	retrySleep time.Duration
	// initialize creates a topic as Mailroom provisions its own (SubscribeInitialize).
	initialize func(topic string) error

	mu      sync.Mutex // orders wg.Add in Subscribe before wg.Wait in Close
	closed  bool
	closing chan struct{}
	wg      sync.WaitGroup
	// innerMu keeps inner.Subscribe and inner.Close apart: watermill-kafka's
	// Subscribe adds to a WaitGroup that its Close waits on, and here Subscribe
	// runs in a goroutine that a Close may overtake.
	innerMu sync.Mutex
}

// Subscribe returns the messages of topic; see kafkaSubscriber. The channel closes
// when ctx is done or the subscriber is closed.
func (s *kafkaSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errors.New("kafka subscriber closed")
	}
	s.wg.Add(1)
	s.mu.Unlock()
	out := make(chan *message.Message)
	go func() {
		defer s.wg.Done()
		defer close(out)
		in, ok := s.subscribe(ctx, topic)
		if !ok {
			return
		}
		for msg := range in {
			select {
			case out <- msg:
			case <-ctx.Done():
				// Dropped unacknowledged: watermill-kafka, seeing ctx done as well,
				// neither commits it nor waits for it, and closes in.
			case <-s.closing:
			}
		}
	}()
	return out, nil
}

// subscribe waits until Kafka is connected and subscribes, retrying failures; ok is
// false when ctx ended or the subscriber closed first.
func (s *kafkaSubscriber) subscribe(ctx context.Context, topic string) (<-chan *message.Message, bool) {
	select {
	case <-s.conn.connected:
	case <-ctx.Done():
		return nil, false
	case <-s.closing:
		return nil, false
	}
	for {
		in, err, closed := s.subscribeInner(ctx, topic)
		if closed {
			return nil, false
		}
		if err == nil {
			return in, true
		}
		s.log.Error("Kafka subscribe failed, retrying", err, watermill.LogFields{"topic": topic, "retry_in": s.retrySleep.String()})
		timer := time.NewTimer(s.retrySleep)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return nil, false
		case <-s.closing:
			timer.Stop()
			return nil, false
		}
	}
}

// subscribeInner subscribes the inner subscriber unless it is closed.
func (s *kafkaSubscriber) subscribeInner(ctx context.Context, topic string) (<-chan *message.Message, error, bool) {
	s.innerMu.Lock()
	defer s.innerMu.Unlock()
	select {
	case <-s.closing:
		return nil, nil, true
	default:
	}
	in, err := s.inner.Subscribe(ctx, topic)
	return in, err, false
}

// SubscribeInitialize creates topic the way Mailroom provisions its own topics
// (partitions, replication factor, min.insync.replicas); it implements Watermill's
// message.SubscribeInitializer.
func (s *kafkaSubscriber) SubscribeInitialize(topic string) error {
	if err := s.initialize(topic); err != nil {
		return fmt.Errorf("initialize topic %s: %w", topic, err)
	}
	return nil
}

// Close stops every subscription and waits until their goroutines ended.
func (s *kafkaSubscriber) Close() error {
	s.mu.Lock()
	first := !s.closed
	s.closed = true
	s.mu.Unlock()
	var err error
	if first {
		close(s.closing)
		s.innerMu.Lock()
		err = s.inner.Close()
		s.innerMu.Unlock()
	}
	s.wg.Wait()
	if err != nil {
		return fmt.Errorf("close kafka subscriber: %w", err)
	}
	return nil
}
