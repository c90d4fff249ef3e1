package app

import (
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
)

type position struct {
	partition int32
	offset    int64
}

// partitionOf returns the Kafka partition and offset a message came from, when it
// came from Kafka.
func partitionOf(msg *message.Message) (position, bool) {
	p, ok := kafka.MessagePartitionFromCtx(msg.Context())
	if !ok {
		return position{}, false
	}
	o, _ := kafka.MessagePartitionOffsetFromCtx(msg.Context())
	return position{partition: p, offset: o}, true
}
