package broker

import (
	"fmt"
	"hash/fnv"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
)

// PartitionKeyKey is the metadata key holding a message's partition key. Messages with
// one key keep their order: on Kafka they share a partition, on Go channels a lane.
const PartitionKeyKey = "partition_key"

// KeyHash maps a partition key to a number; the outbox relay and the lanes use it
// alike, so relay worker i feeds exactly lane i.
func KeyHash(key string) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return h.Sum32()
}

// laneTopic is the Go-channel topic of one lane of a laned topic.
func laneTopic(topic string, lane int) string { return fmt.Sprintf("%s~lane-%d", topic, lane) }

// lanePublisher spreads the messages of laned topics over their lanes by partition
// key. A Go-channel subscriber takes one message at a time, so lanes are how several
// sends are in flight at once without giving up per-key order.
type lanePublisher struct {
	message.Publisher
	mu    sync.RWMutex
	lanes map[string]int
}

func (p *lanePublisher) setLanes(topic string, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lanes[topic] = n
}

func (p *lanePublisher) lanesOf(topic string) int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.lanes[topic]
}

// Publish sends each message to its lane, keeping the order of messages per lane.
func (p *lanePublisher) Publish(topic string, msgs ...*message.Message) error {
	n := p.lanesOf(topic)
	if n <= 1 {
		return p.Publisher.Publish(topic, msgs...)
	}
	start := 0
	for i := 1; i <= len(msgs); i++ {
		if i < len(msgs) && laneOf(msgs[i], n) == laneOf(msgs[start], n) {
			continue
		}
		lane := laneOf(msgs[start], n)
		if err := p.Publisher.Publish(laneTopic(topic, lane), msgs[start:i]...); err != nil {
			return fmt.Errorf("publish %s lane %d: %w", topic, lane, err)
		}
		start = i
	}
	return nil
}

func laneOf(msg *message.Message, lanes int) int {
	key := msg.Metadata.Get(PartitionKeyKey)
	if key == "" {
		key = msg.UUID
	}
	return int(KeyHash(key) % uint32(lanes))
}
