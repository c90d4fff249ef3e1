package broker

import (
	"errors"
	"fmt"

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
		var perrs sarama.ProducerErrors
		if errors.As(err, &perrs) && len(perrs) > 0 {
			return fmt.Errorf("publish %s: %d of %d messages failed, first: %w", topic, len(perrs), len(batch), perrs[0].Err)
		}
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	return nil
}

// Close flushes and closes the producer.
func (p *batchPublisher) Close() error { return p.producer.Close() }
