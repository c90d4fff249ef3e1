package app

import (
	"github.com/mailroom/mailroom/platform/broker"
	"github.com/mailroom/mailroom/platform/config"
)

// GrowPartitions is `mailroom kafka grow-partitions`: it gives every topic Mailroom
// provisions on cfg's Kafka (topics.send, dead_letter, events and lifecycle) the
// topics.partitions partitions cfg asks for. A missing topic is created; one with
// fewer partitions grows; one with as many or more is left as it is (Kafka cannot
// take partitions away), which is no error. Running it again changes nothing. It
// returns each topic's count (its String is the line the command prints), also
// beside an error for the topics that could not grow; an unreachable Kafka is an
// error naming kafka.brokers. It does not look at broker.kind: it is for the Kafka
// that kafka.brokers names.
func GrowPartitions(cfg *config.Config) ([]broker.PartitionCount, error) {
	return broker.GrowPartitions(cfg.Kafka.Brokers, broker.TopicSpecs(cfg))
}
