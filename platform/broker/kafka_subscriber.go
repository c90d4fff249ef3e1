package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
)

// kafkaSubscriber is Mailroom's Kafka consumer-group subscriber. Built on Sarama's
// ConsumerGroup rather than watermill-kafka's subscriber for two reasons:
//   - watermill-kafka hands out one message of a partition at a time, so a
//     partition is one lane and delivery is capped at partitions per SMTP round
//     trip; here keyedHandler hands out up to concurrency messages at once, also
//     within a partition, never two of one key, and commits a partition only up to
//     its lowest unfinished message;
//   - watermill-kafka's Subscribe fails at once when Kafka is down, and Watermill's
//     router.Run then stops with "cannot subscribe topic": Mailroom would exit at
//     start whenever Kafka is away. Here Subscribe returns a channel at once; a
//     goroutine waits until the topics are provisioned, then consumes, joining the
//     group again (after retrySleep) whenever the group fails.
//
// Records are read with the marshaler the publisher writes them with.
type kafkaSubscriber struct {
	conn        *kafkaConn
	brokers     []string
	group       string
	config      func() *sarama.Config
	unmarshal   kafka.Unmarshaler
	concurrency int
	// giveUpAtOnce makes a stopping partition cancel its running messages at once
	// (Broker.AddForwarder) instead of waiting revokedDrain or closingDrain.
	giveUpAtOnce bool
	log          watermill.LoggerAdapter
	retrySleep   time.Duration
	// initialize creates a topic as Mailroom provisions its own (SubscribeInitialize).
	initialize func(topic string) error

	mu      sync.Mutex // orders wg.Add in Subscribe before wg.Wait in Close
	closed  bool
	closing chan struct{}
	wg      sync.WaitGroup
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
		if !s.waitConnected(ctx) {
			return
		}
		s.consume(ctx, topic, out)
	}()
	return out, nil
}

// waitConnected waits until Kafka is connected (the topics provisioned); it is false
// when ctx ended or the subscriber closed first.
func (s *kafkaSubscriber) waitConnected(ctx context.Context) bool {
	select {
	case <-s.conn.connected:
		return true
	case <-ctx.Done():
		return false
	case <-s.closing:
		return false
	}
}

// consume runs topic's consumer group until ctx is done or the subscriber closes,
// joining it again after retrySleep whenever it fails.
func (s *kafkaSubscriber) consume(ctx context.Context, topic string, out chan<- *message.Message) {
	handler := &keyedHandler{
		out:           out,
		slots:         make(chan struct{}, s.concurrency),
		window:        consumeWindow(s.concurrency),
		unmarshal:     s.unmarshal,
		resendAfter:   s.retrySleep,
		drainFor:      revokedDrain,
		closeDrainFor: closingDrain,
		ctx:           ctx,
		closing:       s.closing,
		log:           s.log,
	}
	if s.giveUpAtOnce {
		handler.drainFor, handler.closeDrainFor = 0, 0
	}
	fields := watermill.LogFields{"topic": topic, "consumer_group": s.group}
	for {
		if err := s.runGroup(ctx, topic, handler); err != nil {
			s.log.Error("Kafka consumer group failed; joining again", err, fields.Add(watermill.LogFields{"retry_in": s.retrySleep.String()}))
		}
		timer := time.NewTimer(s.retrySleep)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return
		case <-s.closing:
			timer.Stop()
			return
		}
	}
}

// runGroup joins the consumer group with a new client and consumes topic, session
// after session (a rebalance ends one), until ctx is done, the subscriber closes or
// the group fails. Closing closes the group, which ends the session the way a
// rebalance does: running messages may finish and be committed (keyedHandler).
func (s *kafkaSubscriber) runGroup(ctx context.Context, topic string, handler *keyedHandler) error {
	group, err := sarama.NewConsumerGroup(s.brokers, s.group, s.config())
	if err != nil {
		return fmt.Errorf("join consumer group %s: %w", s.group, err)
	}
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		for err := range group.Errors() {
			s.log.Error("Kafka consumer error", err, watermill.LogFields{"topic": topic, "consumer_group": s.group})
		}
	}()
	consumed := make(chan struct{})
	closed := make(chan error, 1)
	go func() {
		select {
		case <-s.closing:
		case <-consumed:
		}
		closed <- group.Close()
	}()
	defer func() {
		close(consumed)
		if err := <-closed; err != nil {
			s.log.Info("Kafka consumer group closed with an error", watermill.LogFields{"err": err.Error(), "consumer_group": s.group})
		}
		<-logged
	}()
	for ctx.Err() == nil && !s.isClosing() {
		// Each session has a context of its own, so that a partition whose consumer
		// stopped by itself can end it (keyedHandler.endSession).
		session, endSession := context.WithCancel(ctx)
		handler.endSession = endSession
		err := group.Consume(session, []string{topic}, handler)
		endSession()
		if err != nil {
			if ctx.Err() != nil || s.isClosing() {
				return nil
			}
			return fmt.Errorf("consume %s: %w", topic, err)
		}
	}
	return nil
}

// isClosing is true once Close was called.
func (s *kafkaSubscriber) isClosing() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

// consumeWindow is how many messages a partition may have read and not finished:
// several per slot, so that a key waiting for its previous message does not stop
// the partition, and bounded, so that one stuck key holds up a bounded amount.
func consumeWindow(concurrency int) int { return max(64, 8*concurrency) }

// revokedDrain is how long a partition taken away by a rebalance waits for its
// running messages to finish (and be committed) before giving them up; it stays
// well inside Sarama's Rebalance.Timeout (60 s), within which the member must
// rejoin. closingDrain is the same wait when the subscriber closes: long enough for
// a send under way to finish at shutdown, short enough for Watermill's contract that
// Close cancels what was not acked (its universal suite allows 15 s).
const (
	revokedDrain = 20 * time.Second
	closingDrain = 3 * time.Second
)

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
	if first {
		close(s.closing)
	}
	s.wg.Wait()
	return nil
}
