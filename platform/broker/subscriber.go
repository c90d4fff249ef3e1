package broker

import "github.com/ThreeDotsLabs/watermill/message"

// Subscriber returns a subscriber in consumer group group, built the way AddConsumer
// builds its own: on Go channels it is the one shared pub/sub (groups do not exist
// there, every subscriber gets every message), on Kafka a new consumer-group member
// that Close also closes. It is for code that reads a topic outside a router, such as
// tests and tools; handlers should use AddConsumer.
func (b *Broker) Subscriber(group string) (message.Subscriber, error) {
	return b.subscriber(group)
}
