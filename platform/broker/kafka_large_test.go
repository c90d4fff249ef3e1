//go:build kafka

package broker_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/mailroom/mailroom/platform/broker"
)

// largeRecordPortBase is the first port of this test's Kafka node (see
// pubSubSuitePortBase for the others').
const largeRecordPortBase = 29692

// TestAKafkaRecordOfAnEmailWithMaximalAttachmentsIsPublishedAndConsumed: a
// SendEmail carrying 16 MiB of attachments (limits.max_attachment_bytes at its
// most) is about 22 MB of JSON; random bytes do not compress. Sarama's producer
// (1 MiB by default) and a topic created with Kafka's defaults (1 MiB) would refuse
// it, and the outbox would retry it for ever; the topics Mailroom creates and its
// producer take records up to broker.MaxMessageBytes, and its consumer fetches one.
func TestAKafkaRecordOfAnEmailWithMaximalAttachmentsIsPublishedAndConsumed(t *testing.T) {
	brokers := kafkaNode(t, largeRecordPortBase, filepath.Join(t.TempDir(), "kafka"))
	spec := broker.TopicSpec{Name: "large.records", Partitions: 1, ReplicationFactor: 1, MinInsyncReplicas: 1}
	if err := broker.ProvisionTopics(brokers, []broker.TopicSpec{spec}); err != nil {
		t.Fatalf("provision: %v", err)
	}
	pub, sub := newKafkaPubSub(t, brokers, "mailroom-large")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	msgs, err := sub.Subscribe(ctx, "large.records")
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	payload := make([]byte, 22<<20)
	if _, err := rand.Read(payload); err != nil {
		t.Fatal(err)
	}
	sent := message.NewMessage(watermill.NewUUID(), payload)
	if err := pub.Publish("large.records", sent); err != nil {
		t.Fatalf("publish a %d-byte record: %v", len(payload), err)
	}
	select {
	case got := <-msgs:
		got.Ack()
		if !bytes.Equal(got.Payload, payload) {
			t.Errorf("received %d bytes, not the %d-byte payload sent", len(got.Payload), len(payload))
		}
	case <-ctx.Done():
		t.Fatal("the large record was not consumed within 2 minutes")
	}
	if broker.MaxMessageBytes < len(payload)+1<<20 {
		t.Errorf("broker.MaxMessageBytes %d leaves no room beside a %d-byte payload", broker.MaxMessageBytes, len(payload))
	}
}
