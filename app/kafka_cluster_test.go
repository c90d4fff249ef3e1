//go:build kafka

package app_test

import (
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/mailroom/mailroom/platform/broker"
	"github.com/mailroom/mailroom/platform/config"
)

// cluster is a real Kafka of one test's own (1 or 3 KRaft nodes), run by
// scripts/kafka.sh on its own ports and state dir, and taken down when the test ends.
type cluster struct {
	tb      testing.TB
	env     []string
	nodes   int
	brokers []string
}

// newCluster describes a cluster of nodes on portBase without starting it: up
// starts it, so a test can run Mailroom before Kafka exists.
func newCluster(tb testing.TB, portBase, nodes int) *cluster {
	tb.Helper()
	c := &cluster{tb: tb, nodes: nodes, env: []string{
		"KAFKA_LOCAL_PORT_BASE=" + strconv.Itoa(portBase),
		"KAFKA_LOCAL_STATE=" + tb.TempDir() + "/kafka",
	}}
	for k := range nodes {
		c.brokers = append(c.brokers, "127.0.0.1:"+strconv.Itoa(portBase+2*k))
	}
	tb.Cleanup(func() { c.script("down") })
	return c
}

// startCluster starts a 3-node cluster (replication factor 3, min ISR 2).
func startCluster(tb testing.TB, portBase int) *cluster {
	tb.Helper()
	return startKafka(tb, portBase, 3)
}

// startKafka starts a cluster of nodes on portBase and waits until it is ready.
func startKafka(tb testing.TB, portBase, nodes int) *cluster {
	tb.Helper()
	c := newCluster(tb, portBase, nodes)
	c.up()
	return c
}

// up formats and starts the cluster and waits until every node is ready.
func (c *cluster) up() {
	c.tb.Helper()
	out := c.script("up", "--nodes", strconv.Itoa(c.nodes))
	if got := strings.TrimSpace(out); got != strings.Join(c.brokers, ",") {
		c.tb.Fatalf("kafka.sh up: bootstrap %q, want %q", got, strings.Join(c.brokers, ","))
	}
}

func (c *cluster) script(args ...string) string {
	c.tb.Helper()
	cmd := exec.Command("bash", append([]string{"../scripts/kafka.sh"}, args...)...)
	cmd.Env = append(cmd.Environ(), c.env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		c.tb.Fatalf("kafka.sh %v: %v\n%s", args, err, stderr.String())
	}
	return stdout.String()
}

// refusing reports whether no node accepts TCP connections.
func (c *cluster) refusing() bool {
	for _, b := range c.brokers {
		conn, err := net.DialTimeout("tcp", b, time.Second)
		if err == nil {
			conn.Close()
			return false
		}
	}
	return true
}

// leaderOf returns the node id leading a partition of topic.
func (c *cluster) leaderOf(topic string, partition int32, alive []string) int32 {
	c.tb.Helper()
	client, err := sarama.NewClient(alive, sarama.NewConfig())
	if err != nil {
		c.tb.Fatalf("kafka client: %v", err)
	}
	defer client.Close()
	if err := client.RefreshMetadata(topic); err != nil {
		c.tb.Fatalf("metadata: %v", err)
	}
	b, err := client.Leader(topic, partition)
	if err != nil {
		c.tb.Fatalf("leader of %s/%d: %v", topic, partition, err)
	}
	return b.ID()
}

// String names the cluster for logs.
func (c *cluster) String() string {
	return fmt.Sprintf("%d-node Kafka at %s", c.nodes, strings.Join(c.brokers, ","))
}

// deliveryDiagnosis describes where undelivered emails are: how many fall on each
// partition of the send topic, and each partition's end offset against the
// delivery group's committed offset.
func deliveryDiagnosis(cfg *config.Config, missing []string) string {
	topic := cfg.Topics.Send
	partitioner := broker.ProducerConfig().Producer.Partitioner(topic)
	byPartition := map[int32]int{}
	for _, id := range missing {
		p, err := partitioner.Partition(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(id)}, int32(cfg.Topics.Partitions))
		if err == nil {
			byPartition[p]++
		}
	}
	out := fmt.Sprintf("missing by partition %v", byPartition)
	client, err := sarama.NewClient(cfg.Kafka.Brokers, sarama.NewConfig())
	if err != nil {
		return out + fmt.Sprintf("; no Kafka client: %v", err)
	}
	defer client.Close()
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return out + fmt.Sprintf("; no admin: %v", err)
	}
	var parts []int32
	for p := range int32(cfg.Topics.Partitions) {
		parts = append(parts, p)
	}
	committed, err := admin.ListConsumerGroupOffsets(cfg.Kafka.ConsumerGroup, map[string][]int32{topic: parts})
	for _, p := range parts {
		end, eerr := client.GetOffset(topic, p, sarama.OffsetNewest)
		var done int64 = -1
		if err == nil {
			if b := committed.GetBlock(topic, p); b != nil {
				done = b.Offset
			}
		}
		out += fmt.Sprintf("; partition %d: end %d (%v), committed %d", p, end, eerr, done)
	}
	return out
}
