//go:build kafka

package broker_test

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"

	"github.com/mailroom/mailroom/platform/broker"
	"github.com/mailroom/mailroom/platform/config"
)

// First ports of the Kafka nodes this package's tests own (each takes two); the
// reconnect test restarts its broker, which no other test may share. The app
// package's Kafka tests run at the same time and own 29092-29297 and 29592.
const (
	pubSubSuitePortBase = 29392
	reconnectPortBase   = 29492
)

// kafkaScript is scripts/kafka.sh, seen from this package's directory.
var kafkaScript = filepath.Join("..", "..", "scripts", "kafka.sh")

// TestKafkaPassesWatermillsUniversalPubSubSuite runs Watermill's pub/sub suite
// (pubsub/tests.TestPubSub) against the Kafka pub/sub exactly as Broker builds it:
// the publisher is Broker.Publisher (the batch publisher that opens its producer
// lazily, acks=all and idempotent), the subscriber Broker.Subscriber (Sarama's
// consumer group, handing out delivery.concurrency messages at once as delivery's
// does, surviving a Kafka that is down at Subscribe), with
// Mailroom's marshaler keyed by partition key (else message UUID) and topics created
// with topics.partitions partitions.
//
// Features, honestly: consumer groups yes; exactly-once no (at-least-once: a
// redelivery after a crash or rebalance repeats messages); guaranteed order no (order
// holds per partition key, and the suite's messages carry none, so they spread over
// partitions); persistent yes; a new subscriber does not receive old messages, since
// every subscriber the constructor builds within one test joins the same group (a new
// group does read old messages: TestConsumerGroups checks that). The message counts
// are the suite's full ones (no ForceShort).
//
// The suite's TestReconnect is switched off through its Features (no
// RestartServiceCommand) and replaced by
// TestKafkaPubSubDeliversEveryMessageAcrossTwoBrokerRestarts: the same scenario on
// this package's own Kafka node, without the suite's bookkeeping race (see there).
func TestKafkaPassesWatermillsUniversalPubSubSuite(t *testing.T) {
	brokers := kafkaNode(t, pubSubSuitePortBase, filepath.Join(t.TempDir(), "kafka"))
	features := suiteFeatures()
	tests.TestPubSub(t, features, func(t *testing.T) (message.Publisher, message.Subscriber) {
		return newKafkaPubSub(t, brokers, suiteGroup(t))
	}, func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
		return newKafkaPubSub(t, brokers, group)
	})
}

// suiteGroup is the consumer group of the suite's plain constructor: every pub/sub it
// builds for one test joins it, as every Mailroom instance joins
// kafka.consumer_group. Each test has a group of its own: the suite's tests run in
// parallel, and members joining and leaving one shared group (on any topic) would
// rebalance all the others again and again.
func suiteGroup(t *testing.T) string { return "mailroom-suite." + t.Name() }

// suiteFeatures is what Mailroom's Kafka pub/sub promises, in the suite's terms.
func suiteFeatures() tests.Features {
	return tests.Features{
		ConsumerGroups:                   true,
		ExactlyOnceDelivery:              false,
		GuaranteedOrder:                  false,
		Persistent:                       true,
		NewSubscriberReceivesOldMessages: false,
		ForceShort:                       false,
	}
}

// newKafkaPubSub builds a Kafka Broker the way app.New does and returns its
// publisher and a subscriber in group with delivery's concurrency; the broker closes
// when the test ends.
func newKafkaPubSub(t *testing.T, brokers []string, group string) (message.Publisher, message.Subscriber) {
	t.Helper()
	cfg, err := config.Load(config.Sources{Flags: map[string]string{
		"broker.kind":   config.BrokerKafka,
		"kafka.brokers": strings.Join(brokers, ","),
	}})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	b, err := broker.New(cfg, watermill.NopLogger{})
	if err != nil {
		t.Fatalf("broker.New: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	sub, err := b.Subscriber(group, cfg.Delivery.Concurrency)
	if err != nil {
		t.Fatalf("subscriber: %v", err)
	}
	return b.Publisher(), sub
}

// kafkaNode starts a one-node Kafka with scripts/kafka.sh on portBase with its state
// in state, stops it when the test ends, and returns its bootstrap servers.
func kafkaNode(tb testing.TB, portBase int, state string) []string {
	tb.Helper()
	env := []string{"KAFKA_LOCAL_PORT_BASE=" + strconv.Itoa(portBase), "KAFKA_LOCAL_STATE=" + state}
	run := func(args ...string) string {
		cmd := exec.Command("bash", append([]string{kafkaScript}, args...)...)
		cmd.Env = append(cmd.Environ(), env...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			tb.Fatalf("kafka.sh %v: %v\n%s", args, err, stderr.String())
		}
		return strings.TrimSpace(stdout.String())
	}
	out := run("up", "--nodes", "1")
	tb.Cleanup(func() { run("down") })
	return strings.Split(out, ",")
}
