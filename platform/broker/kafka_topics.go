package broker

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/IBM/sarama"
)

// TopicSpec is a topic Mailroom needs and how to create it.
type TopicSpec struct {
	Name              string
	Partitions        int
	ReplicationFactor int
	MinInsyncReplicas int
}

// ErrTooFewPartitions says an existing topic has fewer partitions than configured;
// Mailroom never changes an existing topic, so an operator must.
var ErrTooFewPartitions = errors.New("topic has fewer partitions than configured")

// ProvisionTopics creates each missing topic with its partitions, replication
// factor, min.insync.replicas and max.message.bytes (MaxMessageBytes), and reports
// existing topics with fewer partitions than configured (ErrTooFewPartitions), since
// parallelism and ordering depend on them.
func ProvisionTopics(brokers []string, specs []TopicSpec) error {
	admin, err := newAdmin(brokers)
	if err != nil {
		return err
	}
	defer admin.Close()
	_, err = provisionTopics(admin, specs)
	return err
}

// provisionTopics is ProvisionTopics over an open admin, and also returns the names
// of the topics it created.
func provisionTopics(admin sarama.ClusterAdmin, specs []TopicSpec) (created []string, err error) {
	existing, err := admin.ListTopics()
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	var errs []error
	for _, s := range specs {
		if d, ok := existing[s.Name]; ok {
			if int(d.NumPartitions) < s.Partitions {
				errs = append(errs, fmt.Errorf("%w: %s has %d, topics.partitions is %d (raise it with kafka-topics --alter --partitions %d)",
					ErrTooFewPartitions, s.Name, d.NumPartitions, s.Partitions, s.Partitions))
			}
			continue
		}
		minISR, maxBytes := strconv.Itoa(s.MinInsyncReplicas), strconv.Itoa(MaxMessageBytes)
		err := admin.CreateTopic(s.Name, &sarama.TopicDetail{
			NumPartitions:     int32(s.Partitions),
			ReplicationFactor: int16(s.ReplicationFactor),
			ConfigEntries:     map[string]*string{"min.insync.replicas": &minISR, "max.message.bytes": &maxBytes},
		}, false)
		switch {
		case err == nil:
			created = append(created, s.Name)
		case !errors.Is(err, sarama.ErrTopicAlreadyExists):
			errs = append(errs, fmt.Errorf("create topic %s (%d partitions, replication %d): %w", s.Name, s.Partitions, s.ReplicationFactor, err))
		}
	}
	return created, errors.Join(errs...)
}

// newAdmin connects a cluster admin to brokers. Its metadata requests never make
// the broker create a topic (see kafkaConn).
func newAdmin(brokers []string) (sarama.ClusterAdmin, error) {
	cfg := sarama.NewConfig()
	cfg.Version = kafkaVersion
	cfg.ClientID = clientID
	cfg.Net.DialTimeout = 5 * time.Second
	cfg.Admin.Timeout = 30 * time.Second
	cfg.Metadata.AllowAutoTopicCreation = false
	admin, err := sarama.NewClusterAdmin(brokers, cfg)
	if err != nil {
		return nil, fmt.Errorf("kafka admin %v: %w", brokers, err)
	}
	return admin, nil
}

// missingTopics returns those of names Kafka does not have, asking for their
// metadata alone.
func missingTopics(admin sarama.ClusterAdmin, names []string) ([]string, error) {
	meta, err := admin.DescribeTopics(names)
	if err != nil {
		return nil, fmt.Errorf("describe topics: %w", err)
	}
	var missing []string
	for _, m := range meta {
		switch {
		case errors.Is(m.Err, sarama.ErrUnknownTopicOrPartition):
			missing = append(missing, m.Name)
		case m.Err != sarama.ErrNoError:
			return nil, fmt.Errorf("describe topic %s: %w", m.Name, m.Err)
		}
	}
	return missing, nil
}
