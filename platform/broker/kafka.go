package broker

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/mailroom/mailroom/platform/config"
)

// kafkaVersion is the protocol version Sarama speaks; Kafka 4.x brokers need at
// least 2.1, and idempotent producing needs at least 0.11.
var kafkaVersion = sarama.V3_6_0_0

// partitionMarshaler keys every Kafka record by the message's partition key (the
// email id), so one email's messages stay in order and emails spread over partitions.
var partitionMarshaler = kafka.NewWithPartitioningMarshaler(func(_ string, msg *message.Message) (string, error) {
	if key := msg.Metadata.Get(PartitionKeyKey); key != "" {
		return key, nil
	}
	return msg.UUID, nil
})

// ProducerConfig is the Sarama producer configuration Mailroom publishes with: acks
// from all in-sync replicas, idempotent, one request in flight (which idempotence
// needs to keep order), compressed.
func ProducerConfig() *sarama.Config {
	c := kafka.DefaultSaramaSyncPublisherConfig()
	c.Version = kafkaVersion
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Idempotent = true
	c.Net.MaxOpenRequests = 1
	c.Producer.Retry.Max = 10
	c.Producer.Retry.Backoff = 250 * time.Millisecond
	c.Producer.Compression = sarama.CompressionZSTD
	c.Producer.Return.Successes = true
	c.Producer.Return.Errors = true
	c.Metadata.Retry.Max = 3
	c.Net.DialTimeout = 5 * time.Second
	c.ClientID = "mailroom"
	return c
}

// ConsumerConfig is the Sarama consumer configuration: a new group starts at the
// oldest offset (Sarama's default, the newest, would skip mail accepted before the
// group first joined), and offsets are committed for acknowledged messages only.
func ConsumerConfig() *sarama.Config {
	c := kafka.DefaultSaramaSubscriberConfig()
	c.Version = kafkaVersion
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Offsets.AutoCommit.Enable = true
	c.Consumer.Offsets.AutoCommit.Interval = time.Second
	c.Net.DialTimeout = 5 * time.Second
	c.ClientID = "mailroom"
	return c
}

func newKafka(cfg *config.Config, logger watermill.LoggerAdapter) (*Broker, error) {
	brokers := cfg.Kafka.Brokers
	if err := ProvisionTopics(brokers, TopicSpecs(cfg)); err != nil {
		return nil, err
	}
	pub, err := newBatchPublisher(brokers, ProducerConfig(), partitionMarshaler)
	if err != nil {
		return nil, err
	}
	b := &Broker{
		kind:      config.BrokerKafka,
		publisher: &lanePublisher{Publisher: pub, lanes: map[string]chan int{}},
		closers:   []io.Closer{pub},
	}
	b.subscriber = func(group string) (message.Subscriber, error) {
		sub, err := kafka.NewSubscriber(kafka.SubscriberConfig{
			Brokers:               brokers,
			Unmarshaler:           partitionMarshaler,
			OverwriteSaramaConfig: ConsumerConfig(),
			ConsumerGroup:         group,
			NackResendSleep:       time.Second,
			ReconnectRetrySleep:   time.Second,
		}, logger)
		if err != nil {
			return nil, fmt.Errorf("kafka subscriber %s: %w", group, err)
		}
		b.closers = append(b.closers, sub)
		return sub, nil
	}
	b.ping = func(ctx context.Context) error { return pingKafka(ctx, brokers) }
	return b, nil
}

// pingKafka asks the cluster for its metadata.
func pingKafka(ctx context.Context, brokers []string) error {
	c := sarama.NewConfig()
	c.Version = kafkaVersion
	c.Net.DialTimeout = 2 * time.Second
	c.Metadata.Retry.Max = 0
	if d, ok := ctx.Deadline(); ok {
		c.Net.DialTimeout = time.Until(d)
	}
	client, err := sarama.NewClient(brokers, c)
	if err != nil {
		return fmt.Errorf("kafka %v: %w", brokers, err)
	}
	defer client.Close()
	if len(client.Brokers()) == 0 {
		return fmt.Errorf("kafka %v: no brokers in metadata", brokers)
	}
	return nil
}

// TopicSpecs lists every topic Mailroom uses. The dead-letter topic gets as many
// partitions as the send topic, so a dead letter can keep its original partition
// (Spring Kafka creates DLTs with one partition: spring-kafka #1700).
func TopicSpecs(cfg *config.Config) []TopicSpec {
	spec := func(name string) TopicSpec {
		return TopicSpec{Name: name, Partitions: cfg.Topics.Partitions,
			ReplicationFactor: cfg.Topics.ReplicationFactor, MinInsyncReplicas: cfg.Topics.MinISR()}
	}
	return []TopicSpec{spec(cfg.Topics.Send), spec(cfg.Topics.DeadLetter), spec(cfg.Topics.Events)}
}
