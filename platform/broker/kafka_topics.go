package broker

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

// TopicSpec is a topic Mailroom needs and how to create it.
type TopicSpec struct {
	Name              string
	Partitions        int
	ReplicationFactor int
	MinInsyncReplicas int
	// Compact creates the topic with cleanup.policy=compact: Kafka keeps at least
	// the latest record of each key for ever, instead of deleting records by age,
	// so a topic that holds a state per key (the suppression list) can be read
	// whole from its start at any time.
	Compact bool
}

// PartitionCount is one of Mailroom's topics as provisioning or GrowPartitions found
// and left it: the partitions it had, has now, and topics.partitions wants. Kafka
// can add partitions to a topic but never take them away, so a topic may end with
// more than Want (left as it is) and, at serve start, with fewer (reported, not
// grown: see ProvisionTopics).
type PartitionCount struct {
	Topic string
	// Had is the partitions the topic had before; 0 when it did not exist.
	Had int
	// Has is the partitions it has now.
	Has int
	// Want is the partitions its TopicSpec asks for (topics.partitions).
	Want int
}

// Short tells whether the topic has fewer partitions than configured.
func (c PartitionCount) Short() bool { return c.Has < c.Want }

// String is the line `mailroom kafka grow-partitions` prints for the topic:
// "email.send: 3 → 6", "email.events: already 6", "email.lifecycle: created with 6",
// or, for a topic with more partitions than configured, that it was left as it is.
func (c PartitionCount) String() string {
	switch {
	case c.Had == 0:
		return fmt.Sprintf("%s: created with %d", c.Topic, c.Has)
	case c.Has != c.Had:
		return fmt.Sprintf("%s: %d → %d", c.Topic, c.Had, c.Has)
	case c.Has == c.Want:
		return fmt.Sprintf("%s: already %d", c.Topic, c.Has)
	case c.Has > c.Want:
		return fmt.Sprintf("%s: %d, more than topics.partitions (%d); left as it is (Kafka cannot take partitions away)", c.Topic, c.Has, c.Want)
	default:
		return fmt.Sprintf("%s: %d, fewer than topics.partitions (%d)", c.Topic, c.Has, c.Want)
	}
}

// GrowCommand is the command that grows Mailroom's topics to topics.partitions; the
// warning about a topic with fewer partitions names it.
const GrowCommand = "mailroom kafka grow-partitions"

// ProvisionTopics creates each missing topic with its partitions, replication
// factor, min.insync.replicas and max.message.bytes (MaxMessageBytes). It never
// changes an existing topic: one with fewer partitions than its spec is no error
// (serve warns about it at start; GrowPartitions grows it).
func ProvisionTopics(brokers []string, specs []TopicSpec) error {
	admin, err := newAdmin(brokers)
	if err != nil {
		return err
	}
	defer admin.Close()
	_, err = provisionTopics(admin, specs)
	return err
}

// GrowPartitions gives each topic of specs the partitions its spec asks for: a
// missing topic is created (as ProvisionTopics does), an existing one with fewer
// partitions gets more (sarama.ClusterAdmin.CreatePartitions), and one with as many
// or more is left as it is, since Kafka cannot take partitions away. Running it
// again changes nothing. It returns every topic's count, in the order of specs,
// also when an error (joined, one per topic that failed) is returned.
//
// Growing a topic moves keys: the producer puts a record on the partition its key
// hashes to, modulo the number of partitions, so an email's later messages may go
// to another partition than its earlier ones (docs/kafka.md, "Growing the topics").
func GrowPartitions(brokers []string, specs []TopicSpec) ([]PartitionCount, error) {
	admin, err := newAdmin(brokers)
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	counts, err := provisionAndCount(admin, specs)
	if err != nil {
		return nil, err
	}
	var errs []error
	for i, c := range counts {
		if !c.Short() {
			continue
		}
		has, err := growTopic(admin, c.Topic, c.Want)
		if err != nil {
			errs = append(errs, fmt.Errorf("grow %s from %d to %d partitions: %w", c.Topic, c.Had, c.Want, err))
			continue
		}
		counts[i].Has = has
	}
	return counts, errors.Join(errs...)
}

// growTopic gives topic want partitions and returns once Kafka's metadata lists at
// least that many (the answer to CreatePartitions comes a moment before), so that
// what GrowPartitions reports, and a run right after it, sees them. A topic that
// has as many already (grown meanwhile by someone else) is no error. It returns the
// partitions the metadata lists.
func growTopic(admin sarama.ClusterAdmin, topic string, want int) (int, error) {
	err := admin.CreatePartitions(topic, int32(want), nil, false)
	if err != nil && !errors.Is(err, sarama.ErrInvalidPartitions) {
		return 0, err
	}
	deadline := time.Now().Add(growWait)
	for {
		has, derr := partitionsOf(admin, topic)
		switch {
		case derr == nil && has >= want:
			return has, nil
		case err != nil: // refused, and not because it has them already
			return 0, err
		case time.Now().After(deadline):
			return 0, fmt.Errorf("the new partitions were accepted, but the metadata lists %d after %s (%v)", has, growWait, derr)
		}
		time.Sleep(100 * time.Millisecond) // polling Kafka, not synchronising goroutines
	}
}

// growWait bounds how long growTopic waits for the metadata to list new partitions.
const growWait = 30 * time.Second

// partitionsOf is the number of partitions topic's metadata lists.
func partitionsOf(admin sarama.ClusterAdmin, topic string) (int, error) {
	meta, err := admin.DescribeTopics([]string{topic})
	if err != nil {
		return 0, err
	}
	if len(meta) != 1 {
		return 0, fmt.Errorf("describe topic %s: %d topics in the answer", topic, len(meta))
	}
	if meta[0].Err != sarama.ErrNoError {
		return 0, fmt.Errorf("describe topic %s: %w", topic, meta[0].Err)
	}
	return len(meta[0].Partitions), nil
}

// provisionTopics is ProvisionTopics over an open admin, and also returns the names
// of the topics it created.
func provisionTopics(admin sarama.ClusterAdmin, specs []TopicSpec) (created []string, err error) {
	created, _, err = provisionAndList(admin, specs)
	return created, err
}

// provisionAndCount provisions the topics of specs (provisionTopics) and says how
// many partitions each has, in the order of specs.
func provisionAndCount(admin sarama.ClusterAdmin, specs []TopicSpec) ([]PartitionCount, error) {
	created, have, err := provisionAndList(admin, specs)
	if err != nil {
		return nil, err
	}
	return countsOf(specs, have, created), nil
}

// provisionAndList creates the topics of specs that Kafka does not list, and
// returns their names and the partitions of every topic it listed.
func provisionAndList(admin sarama.ClusterAdmin, specs []TopicSpec) (created []string, have map[string]int, err error) {
	existing, err := admin.ListTopics()
	if err != nil {
		return nil, nil, fmt.Errorf("list topics: %w", err)
	}
	have = make(map[string]int, len(existing))
	for name, d := range existing {
		have[name] = int(d.NumPartitions)
	}
	var errs []error
	for _, s := range specs {
		if _, ok := existing[s.Name]; ok {
			continue
		}
		err := admin.CreateTopic(s.Name, &sarama.TopicDetail{
			NumPartitions:     int32(s.Partitions),
			ReplicationFactor: int16(s.ReplicationFactor),
			ConfigEntries:     s.configEntries(),
		}, false)
		switch {
		case err == nil, errors.Is(err, sarama.ErrTopicAlreadyExists):
			// Already there: made a moment ago by another Mailroom starting with it,
			// counted as made with the spec's partitions.
			created = append(created, s.Name)
		default:
			errs = append(errs, fmt.Errorf("create topic %s (%d partitions, replication %d): %w", s.Name, s.Partitions, s.ReplicationFactor, err))
		}
	}
	return created, have, errors.Join(errs...)
}

// configEntries are the topic configs a topic is created with.
func (s TopicSpec) configEntries() map[string]*string {
	minISR, maxBytes := strconv.Itoa(s.MinInsyncReplicas), strconv.Itoa(MaxMessageBytes)
	entries := map[string]*string{"min.insync.replicas": &minISR, "max.message.bytes": &maxBytes}
	if s.Compact {
		compact := "compact"
		entries["cleanup.policy"] = &compact
	}
	return entries
}

// countsOf is each spec's PartitionCount, given the partitions each existing topic
// has and the topics created just now (with their spec's partitions).
func countsOf(specs []TopicSpec, have map[string]int, created []string) []PartitionCount {
	counts := make([]PartitionCount, len(specs))
	for i, s := range specs {
		c := PartitionCount{Topic: s.Name, Had: have[s.Name], Has: have[s.Name], Want: s.Partitions}
		if slices.Contains(created, s.Name) {
			c.Had, c.Has = 0, s.Partitions
		}
		counts[i] = c
	}
	return counts
}

// newAdmin connects a cluster admin to brokers; its error names them. Its metadata
// requests never make the broker create a topic (see kafkaConn).
func newAdmin(brokers []string) (sarama.ClusterAdmin, error) {
	cfg := sarama.NewConfig()
	cfg.Version = kafkaVersion
	cfg.ClientID = clientID
	cfg.Net.DialTimeout = 5 * time.Second
	cfg.Admin.Timeout = 30 * time.Second
	cfg.Metadata.AllowAutoTopicCreation = false
	admin, err := sarama.NewClusterAdmin(brokers, cfg)
	if err != nil {
		return nil, fmt.Errorf("cannot reach Kafka at %s: %w", strings.Join(brokers, ", "), err)
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
