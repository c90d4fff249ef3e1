//go:build kafka

package broker_test

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
)

// TestKafkaPubSubDeliversEveryMessageAcrossTwoBrokerRestarts is the scenario of the
// universal suite's TestReconnect on Mailroom's Kafka pub/sub: 100 publishers send
// 10,000 messages, the Kafka node is restarted (scripts/kafka.sh restart: SIGTERM,
// then start on the same data) once a third and again once half of them were handed
// out, and every message whose Publish returned nil must reach the subscriber.
// Publishers retry a failed Publish, as the outbox relay does.
//
// It replaces the suite's own TestReconnect, which records published messages in a
// goroutine it never waits for: it fails now and then with "received: 10000, sent:
// 9999" and always under -race (watermill v1.5.1 pubsub/tests/test_pubsub.go lines
// 1084-1120). Here every restart is waited for before the test ends.
func TestKafkaPubSubDeliversEveryMessageAcrossTwoBrokerRestarts(t *testing.T) {
	const (
		total      = 10000
		publishers = 100
	)
	state := filepath.Join(t.TempDir(), "kafka")
	brokers := kafkaNode(t, reconnectPortBase, state)
	pub, sub := newKafkaPubSub(t, brokers, suiteGroup(t))
	topic := "reconnect-" + watermill.NewShortUUID()
	if err := sub.(message.SubscribeInitializer).SubscribeInitialize(topic); err != nil {
		t.Fatalf("create topic: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in, err := sub.Subscribe(ctx, topic)
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}

	restart := func() error {
		cmd := exec.Command("bash", kafkaScript, "restart", "--dir", state)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("kafka.sh restart: %v\n%s", err, stderr.String())
		}
		return nil
	}
	restartAt := map[int]bool{total / 3: true, total / 2: true}
	restarts := make(chan error, len(restartAt))
	jobs := make(chan int)
	go func() {
		defer close(jobs)
		for i := range total {
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
			if restartAt[i] {
				go func() { restarts <- restart() }()
			}
		}
	}()

	var (
		mu        sync.Mutex
		published = make(map[string]bool, total)
		failures  int
		wg        sync.WaitGroup
	)
	for range publishers {
		wg.Go(func() {
			for range jobs {
				msg := message.NewMessage(watermill.NewUUID(), []byte("x"))
				for {
					err := pub.Publish(topic, msg)
					if err == nil {
						break
					}
					mu.Lock()
					failures++
					mu.Unlock()
					// Kafka is restarting: retry as the relay does, after a pause.
					select {
					case <-ctx.Done():
						return
					case <-time.After(100 * time.Millisecond):
					}
				}
				mu.Lock()
				published[msg.UUID] = true
				mu.Unlock()
			}
		})
	}
	publishDone := make(chan struct{})
	go func() {
		wg.Wait()
		close(publishDone)
	}()

	received := make(map[string]int, total)
	deadline := time.NewTimer(3 * time.Minute)
	defer deadline.Stop()
	for done := false; !done; {
		select {
		case msg, ok := <-in:
			if !ok {
				t.Fatalf("subscription closed after %d messages", len(received))
			}
			received[msg.UUID]++
			msg.Ack()
		case <-publishDone:
			publishDone = nil // all published: now wait for the rest to arrive
		case <-deadline.C:
			mu.Lock()
			n := len(published)
			mu.Unlock()
			t.Fatalf("after 3 minutes: %d of %d messages published, %d received", n, total, len(received))
		}
		if publishDone == nil {
			mu.Lock()
			done = len(published) == total && allReceived(published, received)
			mu.Unlock()
		}
	}
	for range restartAt {
		if err := <-restarts; err != nil {
			t.Errorf("restart: %v", err)
		}
	}
	dups := 0
	for _, n := range received {
		dups += n - 1
	}
	// Sarama's own retries (10 x 250 ms) often ride out a restart inside one Publish,
	// so failed calls are counted, not required.
	t.Logf("%d messages published (%d failed Publish calls retried), all received; %d duplicates",
		total, failures, dups)
}

func allReceived(published map[string]bool, received map[string]int) bool {
	for id := range published {
		if received[id] == 0 {
			return false
		}
	}
	return true
}
