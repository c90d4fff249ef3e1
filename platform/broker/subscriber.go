package broker

import "github.com/ThreeDotsLabs/watermill/message"

// Subscriber returns a subscriber in consumer group group, built the way AddConsumer
// builds its own: on Go channels it is the one shared pub/sub (groups do not exist
// there, every subscriber gets every message), on Kafka a new consumer-group member,
// handing out up to concurrency messages at once (never two of one key), that Close
// also closes. It is for code that reads a topic outside a router, such as tests and
// tools; handlers should use AddConsumer.
func (b *Broker) Subscriber(group string, concurrency int) (message.Subscriber, error) {
	return b.subscriber(group, concurrency, false)
}
