//go:build kafka

package app_test

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/mailroom/mailroom/app"
	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/modules/delivery"
	"github.com/mailroom/mailroom/platform/broker"
	"github.com/mailroom/mailroom/platform/config"
	"github.com/mailroom/mailroom/platform/testkit/smtptest"
)

// TestKafkaASendEmailIsCommittedOnlyOnceItsRetryIsInItsTierTopic: the tier topic
// refuses writes (its max.message.bytes is 1), so the relay cannot publish the
// retry of a deferred recipient. The SendEmail that deferred it stays uncommitted
// in the send group, past delivery.OutcomePublishWait (the instance says so) and
// while the group commits fresh mail read after it on other partitions; nothing
// is in the tier topic. Once the topic takes writes again, the retry is published
// and only then is the SendEmail's offset committed (never the other way round),
// and the retry is delivered when due.
func TestKafkaASendEmailIsCommittedOnlyOnceItsRetryIsInItsTierTopic(t *testing.T) {
	srv := smtptest.Start(t)
	cfg := kafkaRetryConfig(t)
	apptest.UseSMTP(cfg, srv)
	log, logs := apptest.NewLogs()
	in := apptest.Start(t, cfg, app.WithLogger(log))
	k := newOffsetProbe(t, cfg.Kafka.Brokers)
	tier := config.RetryTopic(cfg.Topics.Send, 5*time.Second)
	group, send := cfg.Kafka.ConsumerGroup, cfg.Topics.Send
	k.setTopicConfig(tier, "max.message.bytes", "1")

	const to = "greylisted@example.com"
	srv.FailRecipient(to, 451, 1)
	id := in.Send(t, apptest.NewEmail(to))
	apptest.Eventually(t, 30*time.Second, func() bool { return srv.Attempts(to) == 1 },
		func() string { return fmt.Sprintf("%s tried %d times, want 1", to, srv.Attempts(to)) })
	// The topics are the test's own: the deferred SendEmail is the first record of
	// the one partition that holds any, at offset 0.
	part, ends := k.onlyPartitionWithRecords(send)
	if ends[part] != 1 {
		t.Fatalf("%s holds %v records by partition, want the one SendEmail", send, ends)
	}

	// Past OutcomePublishWait: the instance gives up waiting and does not ack.
	notAcked := func() bool {
		for _, l := range logs.With(delivery.OutcomeNotPublishedLog) {
			if l.Attrs["email_id"] == id {
				return true
			}
		}
		return false
	}
	apptest.Eventually(t, delivery.OutcomePublishWait+30*time.Second, func() bool {
		if c := k.committed(group, send, part); c > 0 {
			t.Fatalf("group committed %s/%d at %d while the retry of its SendEmail (offset 0) was not in %s", send, part, c, tier)
		}
		return notAcked()
	}, func() string { return "the instance never said it was still waiting for the retry's publish" })

	// Fresh mail read after it, on another partition, is sent and committed: the
	// group commits, and still not the deferred SendEmail's offset.
	var other int32 = -1
	for i := 0; other < 0; i++ {
		if i == 30 {
			t.Fatalf("30 fresh emails all went to partition %d", part)
		}
		fresh := in.Send(t, apptest.NewEmail(fmt.Sprintf("fresh-%d@example.com", i)))
		in.WaitForStatus(t, fresh, "sent", 30*time.Second)
		for p, end := range k.endOffsets(send) {
			if p != part && end > 0 {
				other = p
			}
		}
	}
	otherEnd := k.endOffsets(send)[other]
	apptest.Eventually(t, 30*time.Second, func() bool { return k.committed(group, send, other) == otherEnd },
		func() string {
			return fmt.Sprintf("group committed %s/%d at %d, want %d", send, other, k.committed(group, send, other), otherEnd)
		})
	if c := k.committed(group, send, part); c > 0 {
		t.Fatalf("group committed %s/%d at %d while the retry of its SendEmail (offset 0) was not in %s", send, part, c, tier)
	}
	if n := recordsIn(t, cfg.Kafka.Brokers, tier); n != 0 {
		t.Fatalf("%s holds %d records while it refuses writes", tier, n)
	}

	// Let the retry through: it reaches the tier topic, and only then (in the
	// same poll or a later one) does the offset move past the SendEmail.
	k.setTopicConfig(tier, "max.message.bytes", strconv.Itoa(broker.MaxMessageBytes))
	apptest.Eventually(t, time.Minute, func() bool {
		c := k.committed(group, send, part)
		n := recordsIn(t, cfg.Kafka.Brokers, tier)
		if c > 0 && n == 0 {
			t.Fatalf("group committed %s/%d at %d before the retry was in %s", send, part, c, tier)
		}
		return c > 0 && n == 1
	}, func() string {
		return fmt.Sprintf("committed %s/%d: %d, records in %s: %d; want past the SendEmail and the retry",
			send, part, k.committed(group, send, part), tier, recordsIn(t, cfg.Kafka.Brokers, tier))
	})
	in.WaitForStatus(t, id, "sent", time.Minute)
	if srv.Attempts(to) != 2 || len(srv.MessagesTo(to)) != 1 {
		t.Errorf("%s: %d attempts, %d messages; want 2 and 1", to, srv.Attempts(to), len(srv.MessagesTo(to)))
	}
}

// offsetProbe reads a cluster's end offsets and a group's committed offsets, and
// changes topic configs, for the tests that watch what a consumer group commits.
type offsetProbe struct {
	t      *testing.T
	client sarama.Client
	admin  sarama.ClusterAdmin
}

func newOffsetProbe(t *testing.T, brokers []string) *offsetProbe {
	t.Helper()
	c := sarama.NewConfig()
	c.Version = sarama.V3_6_0_0
	client, err := sarama.NewClient(brokers, c)
	if err != nil {
		t.Fatalf("kafka client: %v", err)
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		client.Close()
		t.Fatalf("kafka admin: %v", err)
	}
	t.Cleanup(func() { admin.Close() }) // closes the client too
	return &offsetProbe{t: t, client: client, admin: admin}
}

// setTopicConfig sets one config entry of topic, leaving the others as they are.
func (k *offsetProbe) setTopicConfig(topic, name, value string) {
	k.t.Helper()
	err := k.admin.IncrementalAlterConfig(sarama.TopicResource, topic, map[string]sarama.IncrementalAlterConfigsEntry{
		name: {Operation: sarama.IncrementalAlterConfigsOperationSet, Value: &value}}, false)
	if err != nil {
		k.t.Fatalf("set %s=%s on %s: %v", name, value, topic, err)
	}
}

// endOffsets is each partition's end offset (how many records it holds: the
// tests' topics are new and never compacted or trimmed).
func (k *offsetProbe) endOffsets(topic string) map[int32]int64 {
	k.t.Helper()
	parts, err := k.client.Partitions(topic)
	if err != nil {
		k.t.Fatalf("partitions of %s: %v", topic, err)
	}
	out := map[int32]int64{}
	for _, p := range parts {
		end, err := k.client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			k.t.Fatalf("end offset of %s/%d: %v", topic, p, err)
		}
		out[p] = end
	}
	return out
}

// onlyPartitionWithRecords is the one partition of topic holding records, with
// every partition's end offset; it fails the test unless exactly one holds any.
func (k *offsetProbe) onlyPartitionWithRecords(topic string) (int32, map[int32]int64) {
	k.t.Helper()
	ends := k.endOffsets(topic)
	found := int32(-1)
	for p, end := range ends {
		if end == 0 {
			continue
		}
		if found >= 0 {
			k.t.Fatalf("%s holds records on more than one partition: %v", topic, ends)
		}
		found = p
	}
	if found < 0 {
		k.t.Fatalf("%s holds no records", topic)
	}
	return found, ends
}

// committed is group's committed offset of topic's partition (the next offset it
// would read), 0 when it committed none.
func (k *offsetProbe) committed(group, topic string, part int32) int64 {
	k.t.Helper()
	offsets, err := k.admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: {part}})
	if err != nil {
		k.t.Fatalf("offsets of group %s: %v", group, err)
	}
	if b := offsets.GetBlock(topic, part); b != nil && b.Offset > 0 {
		return b.Offset
	}
	return 0
}
