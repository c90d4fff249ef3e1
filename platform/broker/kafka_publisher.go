package broker

import (
	"errors"
	"fmt"
	"sync"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
)

// batchPublisher publishes all messages of one Publish call with one
// SyncProducer.SendMessages, so the outbox relay pays one round trip per batch
// rather than per message (watermill-kafka's Publisher sends and waits one by
// one). Records are built by watermill-kafka's marshaler, so subscribers read them
// exactly as they read its Publisher's. Per-key order holds: one key, one partition,
// and the idempotent producer keeps a partition's records in order.
type batchPublisher struct {
	producer  sarama.SyncProducer
	marshaler kafka.Marshaler
}

func newBatchPublisher(brokers []string, cfg *sarama.Config, m kafka.Marshaler) (*batchPublisher, error) {
	p, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		return nil, fmt.Errorf("kafka producer %v: %w", brokers, err)
	}
	return &batchPublisher{producer: p, marshaler: m}, nil
}

// Publish sends msgs to topic and returns once Kafka acknowledged all of them.
func (p *batchPublisher) Publish(topic string, msgs ...*message.Message) error {
	batch := make([]*sarama.ProducerMessage, 0, len(msgs))
	for _, msg := range msgs {
		km, err := p.marshaler.Marshal(topic, msg)
		if err != nil {
			return fmt.Errorf("marshal message %s: %w", msg.UUID, err)
		}
		batch = append(batch, km)
	}
	if err := p.producer.SendMessages(batch); err != nil {
		return sendError{fmt.Errorf("publish %s: %w", topic, describeSendError(err, len(batch)))}
	}
	return nil
}

// describeSendError turns Sarama's list of failed messages into its size and first
// cause.
func describeSendError(err error, total int) error {
	var perrs sarama.ProducerErrors
	if errors.As(err, &perrs) && len(perrs) > 0 {
		return fmt.Errorf("%d of %d messages failed, first: %w", len(perrs), total, perrs[0].Err)
	}
	return err
}

// Close flushes and closes the producer.
func (p *batchPublisher) Close() error { return p.producer.Close() }

// sendError marks a failure of Kafka to take a batch, as opposed to a message
// that cannot be marshaled.
type sendError struct{ err error }

// Error is the wrapped error's message.
func (e sendError) Error() string { return e.err.Error() }

// Unwrap returns the wrapped error.
func (e sendError) Unwrap() error { return e.err }

// kafkaPublisher is the publisher the Kafka broker hands out. It opens its producer
// on first use, once the topics are provisioned, and returns an error while Kafka
// cannot be reached (the outbox relay keeps the rows and retries with backoff).
// After a failed send it drops the producer and opens a fresh one for the next
// Publish: a new producer id starts clean sequence numbers, so a producer that lost
// its brokers never wedges on its idempotence state (Sarama #1430, #2803).
type kafkaPublisher struct {
	conn    *kafkaConn
	open    func() (*batchPublisher, error)
	mu      sync.RWMutex // Publish holds it shared while sending; replacing takes it
	current *batchPublisher
	closed  bool
}

// errPublisherClosed is returned by Publish after Close.
var errPublisherClosed = errors.New("kafka publisher closed")

func newKafkaPublisher(conn *kafkaConn, brokers []string, cfg func() *sarama.Config, m kafka.Marshaler) *kafkaPublisher {
	return &kafkaPublisher{conn: conn, open: func() (*batchPublisher, error) {
		return newBatchPublisher(brokers, cfg(), m)
	}}
}

// Publish sends msgs to topic with one batch and returns once Kafka acknowledged
// all of them. It is safe for concurrent use.
func (p *kafkaPublisher) Publish(topic string, msgs ...*message.Message) error {
	prod, err := p.producer()
	if err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	err = prod.Publish(topic, msgs...)
	p.mu.RUnlock()
	var se sendError
	if errors.As(err, &se) {
		p.discard(prod)
	}
	return err
}

// producer returns the open producer with p.mu read-locked (the caller unlocks), so
// nobody closes it during a send; it opens one if there is none.
func (p *kafkaPublisher) producer() (*batchPublisher, error) {
	for {
		p.mu.RLock()
		if p.current != nil {
			return p.current, nil
		}
		closed := p.closed
		p.mu.RUnlock()
		if closed {
			return nil, errPublisherClosed
		}
		if err := p.conn.err(); err != nil {
			return nil, err
		}
		if err := p.openIfNone(); err != nil {
			return nil, err
		}
	}
}

// openIfNone opens a producer unless one is open or the publisher is closed.
func (p *kafkaPublisher) openIfNone() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.current != nil || p.closed {
		return nil
	}
	prod, err := p.open()
	if err != nil {
		return err
	}
	p.current = prod
	return nil
}

// discard closes prod if it is still the current producer.
func (p *kafkaPublisher) discard(prod *batchPublisher) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.current != prod {
		return
	}
	p.current = nil
	_ = prod.Close() // no send is in flight: they hold p.mu shared
}

// Close flushes and closes the producer; Publish fails afterwards.
func (p *kafkaPublisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if p.current == nil {
		return nil
	}
	err := p.current.Close()
	p.current = nil
	if err != nil {
		return fmt.Errorf("close kafka producer: %w", err)
	}
	return nil
}
