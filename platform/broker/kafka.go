package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	metrics "github.com/rcrowley/go-metrics"

	"github.com/mailroom/mailroom/platform/config"
)

// Sarama records every request, response and batch in go-metrics histograms and
// meters that nothing in Mailroom reads (its own metrics are Prometheus): on the
// Kafka path that bookkeeping was CPU taken from sending mail. UseNilMetrics turns
// it off for the process; Sarama is go-metrics' only user here.
func init() { metrics.UseNilMetrics = true }

// clientID names Mailroom's connections in the brokers' logs and quotas; every
// Sarama client Mailroom makes carries it.
const clientID = "mailroom"

// kafkaVersion is the protocol version Sarama speaks; Kafka 4.x brokers need at
// least 2.1, and idempotent producing needs at least 0.11.
var kafkaVersion = sarama.V3_6_0_0

// PartitionMarshaler keys every Kafka record by the message's partition key (the
// email id), so one email's messages stay in order and emails spread over partitions.
// Exported, as ProducerConfig is, so that benchmark baselines marshal records
// exactly as the publisher does.
var PartitionMarshaler = kafka.NewWithPartitioningMarshaler(func(_ string, msg *message.Message) (string, error) {
	if key := msg.Metadata.Get(PartitionKeyKey); key != "" {
		return key, nil
	}
	return msg.UUID, nil
})

// ProducerLinger is how long a record may wait for others to share its produce
// request; see ProducerConfig.
const ProducerLinger = 5 * time.Millisecond

// MaxMessageBytes is the largest Kafka record Mailroom produces, and the
// max.message.bytes it creates its topics with: 32 MiB. A SendEmail carries its
// email's attachments base64-encoded in JSON, so one with the most
// limits.max_attachment_bytes allows (16 MiB; 10 by default, about 14 MB of JSON)
// and its bodies fits, as does the DeadLetter that carries it. Sarama's default is
// 1 MiB, and so is Kafka's for a topic. The consumers need nothing: Sarama's
// Consumer.Fetch.Max is 0 (no limit) and it grows a fetch until a record fits, and
// Kafka returns a record larger than fetch.max.bytes alone rather than never.
// A topic that existed before keeps its own max.message.bytes (Mailroom never
// changes an existing topic): raise it with kafka-configs --alter --entity-type
// topics --entity-name <topic> --add-config max.message.bytes=33554432 on the send
// and dead-letter topics, or an email with attachments over about 1 MB fails to
// leave the outbox.
const MaxMessageBytes = 32 << 20

// ProducerConfig is the Sarama producer configuration Mailroom publishes with: acks
// from all in-sync replicas, idempotent, one request in flight (which idempotence
// needs to keep order), compressed, records up to MaxMessageBytes.
//
// Records wait up to ProducerLinger to share a produce request (Sarama's
// Flush.Frequency, Kafka's linger.ms). Every relay publish and every event waited for
// its own request before: under load the broker answered 339 produce requests per
// 2,000 emails (12 records each) and spent most of its CPU on requests, not
// records. With 5 ms the same load takes about 90 (a third of them), and the
// broker's CPU per email fell from 280-450 to 140-200 ms per 1,000 emails; 10 and
// 20 ms cut no further and made delivery slower under load (app/kafka_bench_test.go,
// docs/benchmarks.md, "Kafka benchmarks"). Below capacity it adds up to 5 ms to each publish.
func ProducerConfig() *sarama.Config {
	c := kafka.DefaultSaramaSyncPublisherConfig()
	c.Version = kafkaVersion
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Idempotent = true
	c.Net.MaxOpenRequests = 1
	c.Producer.Retry.Max = 10
	c.Producer.Retry.Backoff = 250 * time.Millisecond
	c.Producer.Compression = sarama.CompressionZSTD
	c.Producer.Flush.Frequency = ProducerLinger
	c.Producer.MaxMessageBytes = MaxMessageBytes
	c.Producer.Return.Successes = true
	// Only Mailroom creates its topics (kafkaConn), never a client's metadata
	// request: the broker would create them with its own defaults.
	c.Metadata.AllowAutoTopicCreation = false
	// The producer learns of a topic's new partitions (GrowPartitions) at its next
	// metadata refresh, and only then hashes keys over them: every 10 s, as the
	// consumers, rather than Sarama's 10 minutes, so that instances that disagree
	// on where an email's key goes do so for seconds (docs/kafka.md, "Growing the
	// topics"). A refresh is one metadata request per producer.
	c.Metadata.RefreshFrequency = 10 * time.Second
	c.Producer.Return.Errors = true
	c.Metadata.Retry.Max = 3
	c.Net.DialTimeout = 5 * time.Second
	c.ClientID = clientID
	return c
}

// ConsumerConfig is the Sarama consumer configuration: a new group starts at the
// oldest offset (Sarama's default, the newest, would skip mail accepted before the
// group first joined), and offsets are committed for acknowledged messages only.
//
// Acknowledged offsets are committed every 100 ms rather than Sarama's 1 s. When an
// instance dies, the one taking over its partitions gets again every message past
// the last commit, and its own database has no record that the dead instance sent
// them, so it sends them again. A commit is one small OffsetCommit request per
// consumer, made only when offsets moved since the last (Sarama skips clean ticks),
// so an idle consumer sends none.
//
// The fetch long-poll (MaxWaitTime) is 100 ms rather than Sarama's 500 ms, or the
// shorter interval buys little: the commit goes to the group coordinator over the
// same connection as the fetches when one broker is both (always, on a single
// node), and Kafka answers a connection's requests in order, so a commit waits
// behind the fetch that is waiting for new records. Measured with Sarama alone on
// one node: a synchronous commit took 1.01 s at p50 with a 500 ms long-poll, 210 ms
// with 100 ms. Idle, each consumer then fetches 10 times a second instead of 2.
//
// After a SIGKILL the rebalance test counted 17–46 duplicates per 600 emails with
// both at Sarama's defaults, 1–29 with the 100 ms interval alone, and 3–6 with both
// at 100 ms (what remains includes the sends in flight at the kill). (With
// auto-commit off, watermill-kafka commits synchronously after every message: 2
// duplicates, but the test took six times as long.)
//
// Its dialer pauses before dialing again a broker that refused (redialDialer), so a
// failover does not spin watermill-kafka's reconnect loop.
func ConsumerConfig() *sarama.Config {
	c := kafka.DefaultSaramaSubscriberConfig()
	c.Version = kafkaVersion
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Metadata.AllowAutoTopicCreation = false // as in ProducerConfig
	c.Consumer.Offsets.AutoCommit.Enable = true
	c.Consumer.Offsets.AutoCommit.Interval = 100 * time.Millisecond
	c.Consumer.MaxWaitTime = 100 * time.Millisecond
	// A member learns of a rebalance at its next heartbeat: 1 s instead of Sarama's
	// 3 s (a third of the 10 s session timeout at most) lets partitions move sooner
	// when an instance joins, subscribes to one more topic or dies. The universal
	// suite's TestTopic, whose second subscription rebalances the first, once took
	// longer than its 15 s with 3 s heartbeats.
	c.Consumer.Group.Heartbeat.Interval = time.Second
	// A session claims the partitions its client's metadata lists when it starts,
	// and Sarama rebalances when that count changes, checked at each metadata
	// refresh: every 10 minutes by default. A session that started while a topic
	// was being created (a Kafka that came back empty, topics made again by
	// kafkaConn) could list one partition of three and leave mail on the other two
	// unread for those 10 minutes (TestKafkaThatComesBackEmptyGetsMailroomsTopicsAgain,
	// about one run in five on a loaded machine). Refreshed every 10 s it rebalances
	// within 10 s; a refresh is one metadata request per subscriber.
	c.Metadata.RefreshFrequency = 10 * time.Second
	c.Net.DialTimeout = 5 * time.Second
	// A broker that refused a dial is dialed again only after redialBackoff (see
	// redialDialer), built on the timeouts above: set them before this line.
	c.Net.Proxy.Enable = true
	c.Net.Proxy.Dialer = newRedialDialer(&net.Dialer{Timeout: c.Net.DialTimeout, KeepAlive: c.Net.KeepAlive}, redialBackoff)
	c.ClientID = clientID
	return c
}

// forwarderConsumerConfig is ConsumerConfig for the subscriptions of
// Broker.AddForwarder (the retry tiers: five per delivery instance by default), whose
// topics are mostly idle: the fetch long-poll is Sarama's 500 ms rather than 100 ms,
// so an idle forwarder asks the broker twice a second, not ten times. A record that
// arrives is returned at once all the same; only offset commits wait longer behind a
// fetch, which matters little to messages that wait seconds before they finish.
func forwarderConsumerConfig() *sarama.Config {
	c := ConsumerConfig()
	c.Consumer.MaxWaitTime = 500 * time.Millisecond
	return c
}

// newKafka builds the Kafka broker. It tries to provision the topics at once: with
// Kafka up, Mailroom starts with its topics in place, and an existing topic with
// fewer partitions than configured is warned about (kafkaConn.warnShort) and used
// as it is. With Kafka down it starts anyway:
// /readyz answers 503, the API keeps accepting into the outbox, and a background
// loop connects when Kafka is back; then subscribers subscribe and the producer
// opens on the relay's next publish.
func newKafka(cfg *config.Config, logger watermill.LoggerAdapter, o options) (*Broker, error) {
	brokers := cfg.Kafka.Brokers
	conn := newKafkaConn(brokers, TopicSpecs(cfg), logger, o.warner(logger))
	if err := conn.attempt(); err != nil {
		logger.Error("Kafka unreachable at start; accepting into the outbox and retrying", err,
			watermill.LogFields{"brokers": brokers})
		conn.runInBackground(err)
	} else {
		conn.runInBackground(nil)
	}
	pub := newKafkaPublisher(conn, brokers, ProducerConfig, PartitionMarshaler)
	subs := &closerList{}
	b := &Broker{
		kind:      config.BrokerKafka,
		publisher: &lanePublisher{Publisher: pub, lanes: map[string]chan int{}},
		// conn first: no provisioning after Close; the router closed the subscribers.
		closers: []io.Closer{conn, subs, pub},
	}
	b.subscriber = func(group string, concurrency int, giveUpAtOnce bool) (message.Subscriber, error) {
		consumerConfig := ConsumerConfig
		if giveUpAtOnce {
			consumerConfig = forwarderConsumerConfig
		}
		sub := &kafkaSubscriber{
			giveUpAtOnce: giveUpAtOnce,
			conn:         conn, brokers: brokers, group: group, config: consumerConfig,
			unmarshal: PartitionMarshaler, concurrency: max(concurrency, 1),
			log: logger, retrySleep: time.Second,
			initialize: func(topic string) error {
				return ProvisionTopics(brokers, []TopicSpec{specOf(cfg, topic)})
			},
			closing: make(chan struct{}),
		}
		subs.add(sub)
		return sub, nil
	}
	b.caughtUp = func(ctx context.Context, topic, group string) error {
		return waitCaughtUp(ctx, brokers, topic, group)
	}
	b.ping = func(ctx context.Context) error {
		if err := conn.err(); err != nil {
			return err
		}
		return pingKafka(ctx, brokers)
	}
	return b, nil
}

// closerList closes what was added to it, in order; it is safe for concurrent use.
type closerList struct {
	mu   sync.Mutex
	list []io.Closer
}

func (l *closerList) add(c io.Closer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.list = append(l.list, c)
}

// Close closes every closer and joins their errors.
func (l *closerList) Close() error {
	l.mu.Lock()
	list := l.list
	l.list = nil
	l.mu.Unlock()
	var errs []error
	for _, c := range list {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// pingKafka asks the cluster for its metadata.
func pingKafka(ctx context.Context, brokers []string) error {
	c := sarama.NewConfig()
	c.Version = kafkaVersion
	c.ClientID = clientID
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

// TopicSpecs lists every topic Mailroom uses, the retry tiers' topics
// (config.RetryTopic) included. The dead-letter topic gets as many
// partitions as the send topic, so a dead letter can keep its original partition
// (Spring Kafka creates DLTs with one partition: spring-kafka #1700). The
// suppression list's topic (topics.suppressions) is compacted: it holds each
// address's latest state, read whole by every instance that starts without it.
func TopicSpecs(cfg *config.Config) []TopicSpec {
	specs := []TopicSpec{topicSpec(cfg, cfg.Topics.Send), topicSpec(cfg, cfg.Topics.DeadLetter), topicSpec(cfg, cfg.Topics.Events),
		topicSpec(cfg, cfg.Topics.Lifecycle)}
	for _, tier := range cfg.Topics.RetryTierDelays() {
		specs = append(specs, topicSpec(cfg, config.RetryTopic(cfg.Topics.Send, tier)))
	}
	return append(specs, suppressionsSpec(cfg))
}

// SuppressionsPartitions is the partitions of topics.suppressions, whatever
// topics.partitions says, and grow-partitions never changes them. The topic holds
// each address's latest state under its key; grown, an address's later records
// would go to another partition than its earlier ones, which compaction never
// removes, and an instance reading the topic from its start could meet them in
// either order and keep an old state. One partition keeps every record in one
// order; the list changes seldom (bounces, an operator), so it needs no more.
const SuppressionsPartitions = 1

// suppressionsSpec is topics.suppressions as provisioning creates it: compacted,
// with SuppressionsPartitions.
func suppressionsSpec(cfg *config.Config) TopicSpec {
	s := topicSpec(cfg, cfg.Topics.Suppressions)
	s.Partitions, s.Compact = SuppressionsPartitions, true
	return s
}

// specOf is the spec of topic among TopicSpecs, or one made from the topics section
// for a topic that is not Mailroom's own, so that a subscriber that creates the
// topic it reads creates it as provisioning would (compacted, if it is).
func specOf(cfg *config.Config, topic string) TopicSpec {
	for _, s := range TopicSpecs(cfg) {
		if s.Name == topic {
			return s
		}
	}
	return topicSpec(cfg, topic)
}

// topicSpec is topic as cfg's topics section says to create it.
func topicSpec(cfg *config.Config, topic string) TopicSpec {
	return TopicSpec{Name: topic, Partitions: cfg.Topics.Partitions,
		ReplicationFactor: cfg.Topics.ReplicationFactor, MinInsyncReplicas: cfg.Topics.MinISR()}
}
