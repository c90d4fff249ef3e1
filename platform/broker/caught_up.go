package broker

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

// WaitCaughtUp returns nil once consumer group group has consumed topic up to
// where the topic ended when WaitCaughtUp began: the group's committed offset of
// every partition at least that partition's end offset then. The subscriber
// commits a partition only up to its lowest message not yet handled, so by then
// every record the topic held has been handled. It is for a copy kept from a topic
// (the suppression list) that must be whole before it is used: a consumer in a new
// group reads the topic from its start. While Kafka cannot be reached it keeps
// trying; it returns ctx's error if ctx ends first. On Go channels it returns nil
// at once: a publish there returns only once its handlers have acknowledged it, so
// nothing is ever waiting in a topic.
func (b *Broker) WaitCaughtUp(ctx context.Context, topic, group string) error {
	if b.caughtUp == nil {
		return nil
	}
	return b.caughtUp(ctx, topic, group)
}

// caughtUpPoll is how often waitCaughtUp asks Kafka for the group's offsets, and
// the first wait after a failure (doubling to caughtUpMaxBackoff).
const (
	caughtUpPoll       = 100 * time.Millisecond
	caughtUpMaxBackoff = 2 * time.Second
)

// waitCaughtUp is WaitCaughtUp on Kafka at brokers. It keeps one client while it
// polls, and connects a new one after a failure.
func waitCaughtUp(ctx context.Context, brokers []string, topic, group string) error {
	var ends map[int32]int64
	var client sarama.Client
	defer func() {
		if client != nil {
			client.Close()
		}
	}()
	backoff := caughtUpPoll
	for {
		var done bool
		var err error
		if client == nil {
			client, err = newOffsetsClient(brokers)
		}
		if err == nil && ends == nil {
			ends, err = endOffsets(client, topic)
		}
		if err == nil {
			done, err = committedAtLeast(client, topic, group, ends)
		}
		if done {
			return nil
		}
		wait := caughtUpPoll
		if err != nil {
			wait, backoff = backoff, min(2*backoff, caughtUpMaxBackoff)
			if client != nil {
				client.Close()
				client = nil
			}
		} else {
			backoff = caughtUpPoll
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait): // polling Kafka, not synchronising goroutines
		}
	}
}

// newOffsetsClient connects a client that never makes the broker create a topic.
func newOffsetsClient(brokers []string) (sarama.Client, error) {
	cfg := sarama.NewConfig()
	cfg.Version = kafkaVersion
	cfg.ClientID = clientID
	cfg.Net.DialTimeout = 5 * time.Second
	cfg.Metadata.AllowAutoTopicCreation = false
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		return nil, fmt.Errorf("cannot reach Kafka at %s: %w", strings.Join(brokers, ", "), err)
	}
	return client, nil
}

// endOffsets returns the end offset (the next record's) of each partition of topic.
func endOffsets(client sarama.Client, topic string) (map[int32]int64, error) {
	parts, err := client.Partitions(topic)
	if err != nil {
		return nil, fmt.Errorf("partitions of %s: %w", topic, err)
	}
	ends := make(map[int32]int64, len(parts))
	for _, p := range parts {
		if ends[p], err = client.GetOffset(topic, p, sarama.OffsetNewest); err != nil {
			return nil, fmt.Errorf("end offset of %s/%d: %w", topic, p, err)
		}
	}
	return ends, nil
}

// committedAtLeast reports whether group's committed offset of each partition of
// ends is at least its end (a partition that was empty needs nothing).
func committedAtLeast(client sarama.Client, topic, group string, ends map[int32]int64) (bool, error) {
	var parts []int32
	for p, end := range ends {
		if end > 0 {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return true, nil
	}
	coordinator, err := client.Coordinator(group)
	if err != nil {
		return false, fmt.Errorf("coordinator of group %s: %w", group, err)
	}
	req := &sarama.OffsetFetchRequest{Version: 5, ConsumerGroup: group}
	for _, p := range parts {
		req.AddPartition(topic, p)
	}
	resp, err := coordinator.FetchOffset(req)
	if err != nil {
		return false, fmt.Errorf("offsets of group %s: %w", group, err)
	}
	for _, p := range parts {
		block := resp.GetBlock(topic, p)
		if block == nil || block.Err != sarama.ErrNoError || block.Offset < ends[p] {
			return false, nil
		}
	}
	return true, nil
}
