package broker

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
)

// kafkaConn is Mailroom's connection to Kafka: topics are provisioned once, before
// anything subscribes (a consumer or producer touching a missing topic would make
// the broker auto-create it with its own defaults) or publishes. While Kafka cannot
// be reached it retries in the background, so Mailroom starts, answers /readyz 503
// and keeps accepting mail into the outbox until Kafka is back.
type kafkaConn struct {
	brokers []string
	specs   []TopicSpec
	log     watermill.LoggerAdapter
	// retryMin and retryMax bound the wait between two connection attempts.
	retryMin, retryMax time.Duration

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

func newKafkaConn(brokers []string, specs []TopicSpec, log watermill.LoggerAdapter) *kafkaConn {
	return &kafkaConn{
		brokers:   brokers,
		specs:     specs,
		log:       log,
		retryMin:  250 * time.Millisecond,
		retryMax:  2 * time.Second,
		connected: make(chan struct{}),
		closing:   make(chan struct{}),
		loopDone:  make(chan struct{}),
	}
}

// attempt provisions the topics unless that already succeeded.
func (c *kafkaConn) attempt() error {
	c.attemptMu.Lock()
	defer c.attemptMu.Unlock()
	if c.isConnected() {
		return nil
	}
	err := ProvisionTopics(c.brokers, c.specs)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastErr = err
	if err == nil {
		close(c.connected)
	}
	return err
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

// retryInBackground keeps attempting until connected or closed. An error that
// names a wrong topic (too few partitions) is retried too: an operator can fix the
// topic without restarting Mailroom. first is the error already logged.
func (c *kafkaConn) retryInBackground(first error) {
	c.mu.Lock()
	c.loopStarted = true
	c.mu.Unlock()
	go func() {
		defer close(c.loopDone)
		wait := c.retryMin
		timer := time.NewTimer(wait)
		defer timer.Stop()
		started := time.Now()
		reported := first.Error()
		for {
			select {
			case <-c.closing:
				return
			case <-timer.C:
			}
			err := c.attempt()
			if err == nil {
				c.log.Info("Kafka connected, topics provisioned", watermill.LogFields{
					"brokers": c.brokers, "after": time.Since(started).Round(time.Millisecond).String()})
				return
			}
			// Log a failure once, and again only when it changes: one line per
			// attempt would flood the log during a long outage.
			if msg := err.Error(); msg != reported {
				reported = msg
				c.log.Error("Kafka unreachable; accepting into the outbox and retrying", err,
					watermill.LogFields{"brokers": c.brokers})
			}
			wait = min(2*wait, c.retryMax)
			timer.Reset(wait)
		}
	}()
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
