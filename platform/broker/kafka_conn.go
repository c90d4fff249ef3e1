package broker

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
)

// kafkaConn is Mailroom's connection to Kafka: topics are provisioned before
// anything subscribes or publishes, and kept: a Kafka that comes back without them
// (its storage lost, or a new cluster at the same address) gets them again, as
// configured, at one of the checks made every keepEvery. Mailroom's clients never
// create a topic themselves (Metadata.AllowAutoTopicCreation is off): the broker
// would create it with its own defaults, one partition and no replication, and
// Mailroom would run on that one partition (with a warning at the next start).
// While Kafka cannot be reached it retries in the background, so Mailroom starts,
// answers /readyz 503 and keeps accepting mail into the outbox until Kafka is back.
type kafkaConn struct {
	brokers []string
	specs   []TopicSpec
	log     watermill.LoggerAdapter
	// warn logs a warning (see WithWarnLog).
	warn func(msg string, fields watermill.LogFields)
	// retryMin and retryMax bound the wait between two connection attempts.
	retryMin, retryMax time.Duration
	// keepEvery is how often, once connected, the topics are checked and any
	// missing one created again.
	keepEvery time.Duration

	attemptMu   sync.Mutex // serialises attempts
	mu          sync.Mutex // guards lastErr and loopStarted; never held during I/O
	lastErr     error
	connected   chan struct{} // closed once the topics are provisioned
	closing     chan struct{}
	closeOnce   sync.Once
	loopStarted bool
	loopDone    chan struct{}
}

// errNotConnected says Mailroom has not reached Kafka yet; it wraps the last
// attempt's error.
var errNotConnected = errors.New("kafka not connected yet")

func newKafkaConn(brokers []string, specs []TopicSpec, log watermill.LoggerAdapter, warn func(string, watermill.LogFields)) *kafkaConn {
	return &kafkaConn{
		brokers:   brokers,
		specs:     specs,
		log:       log,
		warn:      warn,
		retryMin:  250 * time.Millisecond,
		retryMax:  2 * time.Second,
		keepEvery: 5 * time.Second,
		connected: make(chan struct{}),
		closing:   make(chan struct{}),
		loopDone:  make(chan struct{}),
	}
}

// attempt provisions the topics unless that already succeeded. When it succeeds it
// warns once about each topic with fewer partitions than configured (warnShort).
func (c *kafkaConn) attempt() error {
	c.attemptMu.Lock()
	defer c.attemptMu.Unlock()
	if c.isConnected() {
		return nil
	}
	counts, err := c.provision()
	c.mu.Lock()
	c.lastErr = err
	if err == nil {
		close(c.connected)
	}
	c.mu.Unlock()
	if err == nil {
		c.warnShort(counts)
	}
	return err
}

// provision provisions the topics over an admin of its own and counts their
// partitions.
func (c *kafkaConn) provision() ([]PartitionCount, error) {
	admin, err := newAdmin(c.brokers)
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	return provisionAndCount(admin, c.specs)
}

// warnShort logs one warning for each topic with fewer partitions than
// topics.partitions. Mailroom does not grow a topic by itself: growing moves keys to
// other partitions, which an operator should choose the moment of (GrowCommand).
// Until then mail runs on the partitions the topic has.
func (c *kafkaConn) warnShort(counts []PartitionCount) {
	for _, pc := range counts {
		if pc.Short() {
			c.warn("Kafka topic has fewer partitions than topics.partitions; mail runs on those it has until it is grown", watermill.LogFields{
				"topic": pc.Topic, "partitions": pc.Has, "topics.partitions": pc.Want, "grow_with": GrowCommand})
		}
	}
}

func (c *kafkaConn) isConnected() bool {
	select {
	case <-c.connected:
		return true
	default:
		return false
	}
}

// err is nil once connected, else errNotConnected with the last attempt's error.
func (c *kafkaConn) err() error {
	if c.isConnected() {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lastErr == nil {
		return errNotConnected
	}
	return fmt.Errorf("%w: %w", errNotConnected, c.lastErr)
}

// runInBackground keeps attempting until connected, then keeps the topics, until
// closed. first is the first attempt's error, already logged, or nil when it
// connected.
func (c *kafkaConn) runInBackground(first error) {
	c.mu.Lock()
	c.loopStarted = true
	c.mu.Unlock()
	go func() {
		defer close(c.loopDone)
		if first != nil && !c.connect(first) {
			return
		}
		c.keepTopics()
	}()
}

// connect attempts with a growing wait until connected (true) or closed (false).
func (c *kafkaConn) connect(first error) bool {
	wait := c.retryMin
	timer := time.NewTimer(wait)
	defer timer.Stop()
	started := time.Now()
	reported := first.Error()
	for {
		select {
		case <-c.closing:
			return false
		case <-timer.C:
		}
		err := c.attempt()
		if err == nil {
			c.log.Info("Kafka connected, topics provisioned", watermill.LogFields{
				"brokers": c.brokers, "after": time.Since(started).Round(time.Millisecond).String()})
			return true
		}
		// Log a failure once, and again only when it changes: one line per attempt
		// would flood the log during a long outage.
		if msg := err.Error(); msg != reported {
			reported = msg
			c.log.Error("Kafka unreachable; accepting into the outbox and retrying", err,
				watermill.LogFields{"brokers": c.brokers})
		}
		wait = min(2*wait, c.retryMax)
		timer.Reset(wait)
	}
}

// keepTopics creates again, every keepEvery, any of the topics Kafka no longer has.
// A check is one metadata request for Mailroom's topics over an admin connection
// kept between checks; only a missing topic costs a provisioning round, on the same
// connection. Kafka being away
// meanwhile is no news (the publisher and /readyz report it): the connection is
// dropped and opened again at a later check.
func (c *kafkaConn) keepTopics() {
	ticker := time.NewTicker(c.keepEvery)
	defer ticker.Stop()
	names := make([]string, len(c.specs))
	for i, s := range c.specs {
		names[i] = s.Name
	}
	var admin sarama.ClusterAdmin
	defer func() {
		if admin != nil {
			_ = admin.Close()
		}
	}()
	for {
		select {
		case <-c.closing:
			return
		case <-ticker.C:
		}
		if admin == nil {
			var err error
			if admin, err = newAdmin(c.brokers); err != nil {
				continue
			}
		}
		missing, err := missingTopics(admin, names)
		if err != nil {
			_ = admin.Close()
			admin = nil
			continue
		}
		if len(missing) == 0 {
			continue
		}
		created, err := provisionTopics(admin, c.specs)
		c.log.Error("Kafka had lost Mailroom's topics; created them again as configured", err,
			watermill.LogFields{"brokers": c.brokers, "missing": missing, "created": created})
	}
}

// Close stops the background attempts and waits for them to end.
func (c *kafkaConn) Close() error {
	c.closeOnce.Do(func() { close(c.closing) })
	c.mu.Lock()
	started := c.loopStarted
	c.mu.Unlock()
	if started {
		<-c.loopDone
	}
	return nil
}
