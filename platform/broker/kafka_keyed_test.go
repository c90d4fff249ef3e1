//go:build kafka

package broker_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/mailroom/mailroom/platform/broker"
	"github.com/mailroom/mailroom/platform/testkit/wait"
)

// TestKafkaKeyedSubscribersKeepEachKeysOrderAndCommitAcrossRebalances: 3,000
// messages over 60 keys, each numbered within its key, on a 3-partition topic. A
// subscriber with delivery's concurrency (16) handles them, several of a partition
// at once; a second joins its group a third of the way in (a rebalance) and the
// first leaves at two thirds (another). Throughout, no key ever has two messages
// being handled at once, across both subscribers, and no key's message is handled
// before every earlier one of that key was; every message is handled, once (each
// rebalance lets running messages finish and be committed first); and once all are,
// the group's committed offset of every partition is its end.
func TestKafkaKeyedSubscribersKeepEachKeysOrderAndCommitAcrossRebalances(t *testing.T) {
	const total, keys = 3000, 60
	brokers := strings.Split(os.Getenv("KAFKA_TEST_BROKERS"), ",")
	if brokers[0] == "" {
		t.Fatal("KAFKA_TEST_BROKERS is not set: run the Kafka suite with `make test-kafka`, which starts Kafka")
	}
	group := "keyed-" + watermill.NewShortUUID()
	pubA, subA := newKafkaPubSub(t, brokers, group)
	_, subB := newKafkaPubSub(t, brokers, group)
	topic := "keyed-" + watermill.NewShortUUID()
	if err := subA.(message.SubscribeInitializer).SubscribeInitialize(topic); err != nil {
		t.Fatalf("create topic: %v", err)
	}
	publishNumbered(t, pubA, topic, total, keys)

	h := &keyOrderChecker{t: t, handled: map[string]int{}, running: map[string]bool{}}
	ctxA, stopA := context.WithCancel(context.Background())
	defer stopA()
	doneA := h.run(t, ctxA, subA, topic, "A")
	wait.Until(t, 2*time.Minute, 10*time.Millisecond, func() bool { return h.count() >= total/3 },
		func() string { return fmt.Sprintf("%d of %d handled before the second subscriber", h.count(), total) })
	ctxB, stopB := context.WithCancel(context.Background())
	defer stopB()
	doneB := h.run(t, ctxB, subB, topic, "B")
	wait.Until(t, 2*time.Minute, 10*time.Millisecond, func() bool { return h.count() >= 2*total/3 },
		func() string { return fmt.Sprintf("%d of %d handled before the first left", h.count(), total) })
	if err := subA.Close(); err != nil {
		t.Errorf("close A: %v", err)
	}
	<-doneA
	wait.Until(t, 2*time.Minute, 10*time.Millisecond, func() bool { return h.distinct() == total },
		func() string { return fmt.Sprintf("%d of %d messages handled", h.distinct(), total) })
	wait.Until(t, time.Minute, 50*time.Millisecond, func() bool { return committedToEnd(t, brokers, group, topic) },
		func() string { return "the group's committed offsets did not reach the end of every partition" })
	stopB()
	<-doneB
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.by["B"] == 0 {
		t.Error("the second subscriber handled nothing: no rebalance gave it partitions")
	}
	// Both rebalances let running messages finish and be committed before the
	// partitions moved, so nothing finished is handled again.
	if h.total != total {
		t.Errorf("handled %d times for %d messages: a rebalance or the first subscriber's leaving redelivered what had finished", h.total, total)
	}
	t.Logf("handled %d times for %d messages (A %d, B %d)", h.total, total, h.by["A"], h.by["B"])
}

// publishNumbered publishes total messages over keys keys, message i of key k
// carrying seq i, in batches.
func publishNumbered(t *testing.T, pub message.Publisher, topic string, total, keys int) {
	t.Helper()
	var batch []*message.Message
	for i := range total {
		m := message.NewMessage(watermill.NewUUID(), nil)
		m.Metadata.Set(broker.PartitionKeyKey, "key-"+strconv.Itoa(i%keys))
		m.Metadata.Set("seq", strconv.Itoa(i/keys))
		if batch = append(batch, m); len(batch) == 100 || i == total-1 {
			if err := pub.Publish(topic, batch...); err != nil {
				t.Fatalf("publish: %v", err)
			}
			batch = nil
		}
	}
}

// keyOrderChecker handles messages as a router would (each in a goroutine of its
// own) and checks, as they start, that their key has none running and has had
// every earlier seq handled.
type keyOrderChecker struct {
	t       *testing.T
	mu      sync.Mutex
	handled map[string]int  // key -> how many of its seqs were handled (a prefix)
	running map[string]bool // key -> a message of it is being handled
	seen    int             // messages handled at least once
	total   int             // handlings, redeliveries included
	by      map[string]int  // subscriber -> handlings
}

func (c *keyOrderChecker) run(t *testing.T, ctx context.Context, sub message.Subscriber, topic, name string) <-chan struct{} {
	in, err := sub.Subscribe(ctx, topic)
	if err != nil {
		t.Fatalf("subscribe %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for msg := range in {
			wg.Go(func() { c.handle(msg, name) })
		}
		wg.Wait()
	}()
	return done
}

func (c *keyOrderChecker) handle(msg *message.Message, name string) {
	key := msg.Metadata.Get(broker.PartitionKeyKey)
	seq, _ := strconv.Atoi(msg.Metadata.Get("seq"))
	c.mu.Lock()
	if c.running[key] {
		c.t.Errorf("%s: %s seq %d handed out while another message of its key is being handled", name, key, seq)
	}
	if seq > c.handled[key] {
		c.t.Errorf("%s: %s seq %d handed out before seq %d was handled", name, key, seq, c.handled[key])
	}
	c.running[key] = true
	c.mu.Unlock()

	// The work: a message takes a moment, so that a rebalance finds some running.
	select {
	case <-time.After(time.Millisecond):
	case <-msg.Context().Done():
	}

	c.mu.Lock()
	c.running[key] = false
	if seq == c.handled[key] {
		c.handled[key]++
		c.seen++
	}
	c.total++
	if c.by == nil {
		c.by = map[string]int{}
	}
	c.by[name]++
	c.mu.Unlock()
	msg.Ack()
}

func (c *keyOrderChecker) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

func (c *keyOrderChecker) distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen
}

// committedToEnd is true when group's committed offset of every partition of topic
// is that partition's end.
func committedToEnd(t *testing.T, brokers []string, group, topic string) bool {
	t.Helper()
	admin, err := sarama.NewClusterAdmin(brokers, broker.ConsumerConfig())
	if err != nil {
		t.Fatalf("admin: %v", err)
	}
	defer admin.Close()
	client, err := sarama.NewClient(brokers, broker.ConsumerConfig())
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	defer client.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatalf("partitions: %v", err)
	}
	offsets, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: parts})
	if err != nil {
		t.Fatalf("group offsets: %v", err)
	}
	for _, p := range parts {
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatalf("end of %d: %v", p, err)
		}
		if b := offsets.GetBlock(topic, p); b == nil || b.Offset != end {
			return false
		}
	}
	return true
}
