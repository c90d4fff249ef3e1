package broker

import (
	"fmt"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
)

// PartitionKeyKey is the metadata key holding a message's partition key: on Kafka the
// record key, so one email's messages share a partition and keep their order.
const PartitionKeyKey = "partition_key"

// laneTopic is the Go-channel topic of one lane of a laned topic.
func laneTopic(topic string, lane int) string { return fmt.Sprintf("%s~lane-%d", topic, lane) }

// lanePublisher spreads the messages of laned topics over their lanes. A Go-channel
// subscriber takes one message at a time and Publish waits for its handler, so lanes
// are how several sends are in flight at once. Each Publish call takes whichever
// lane is free, so no lane idles while another has a queue. Order per key is the
// caller's to keep: the outbox relay never has two messages of one key in flight.
type lanePublisher struct {
	message.Publisher
	mu    sync.RWMutex
	lanes map[string]chan int // topic -> free lanes
}

func (p *lanePublisher) setLanes(topic string, n int) {
	free := make(chan int, n)
	for i := 0; i < n; i++ {
		free <- i
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lanes[topic] = free
}

func (p *lanePublisher) freeLanes(topic string) chan int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.lanes[topic]
}

// Publish sends msgs, in order, on one free lane of a laned topic, or on the topic
// itself otherwise.
func (p *lanePublisher) Publish(topic string, msgs ...*message.Message) error {
	free := p.freeLanes(topic)
	if free == nil {
		return p.Publisher.Publish(topic, msgs...)
	}
	lane := <-free
	defer func() { free <- lane }()
	if err := p.Publisher.Publish(laneTopic(topic, lane), msgs...); err != nil {
		return fmt.Errorf("publish %s lane %d: %w", topic, lane, err)
	}
	return nil
}
