package broker_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/mailroom/mailroom/platform/broker"
	"github.com/mailroom/mailroom/platform/config"
)

// unreachableKafka returns a Kafka config whose only broker address refuses
// connections: a port that was free a moment ago.
func unreachableKafka(tb testing.TB) *config.Config {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("pick a port: %v", err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	cfg, err := config.Load(config.Sources{Flags: map[string]string{
		"broker.kind":   config.BrokerKafka,
		"kafka.brokers": addr,
	}})
	if err != nil {
		tb.Fatalf("config: %v", err)
	}
	return cfg
}

func TestAKafkaBrokerIsBuiltWhileKafkaIsUnreachableAndSaysItIsNotConnected(t *testing.T) {
	b, err := broker.New(unreachableKafka(t), watermill.NopLogger{})
	if err != nil {
		t.Fatalf("broker.New with Kafka down: %v (Mailroom must start and take mail into the outbox)", err)
	}
	t.Cleanup(func() { _ = b.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := b.Ping(ctx); err == nil || !strings.Contains(err.Error(), "kafka not connected") {
		t.Errorf("Ping = %v, want a 'kafka not connected' error for /readyz", err)
	}
	began := time.Now()
	err = b.Publisher().Publish("email.send", message.NewMessage(watermill.NewUUID(), []byte("x")))
	if err == nil || !strings.Contains(err.Error(), "kafka not connected") {
		t.Errorf("Publish = %v, want a 'kafka not connected' error the relay retries", err)
	}
	if d := time.Since(began); d > time.Second {
		t.Errorf("Publish took %s to fail while not connected: it must fail fast, the relay backs off", d)
	}
}

func TestAKafkaSubscriptionWaitsForKafkaAndEndsWithItsContext(t *testing.T) {
	b, err := broker.New(unreachableKafka(t), watermill.NopLogger{})
	if err != nil {
		t.Fatalf("broker.New: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	sub, err := b.Subscriber("group", 1)
	if err != nil {
		t.Fatalf("Subscriber: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	msgs, err := sub.Subscribe(ctx, "email.send")
	if err != nil {
		t.Fatalf("Subscribe with Kafka down = %v; the router would stop with 'cannot subscribe topic'", err)
	}
	cancel()
	select {
	case _, open := <-msgs:
		if open {
			t.Fatal("a message arrived from an unreachable Kafka")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the subscription did not end within 10s of its context")
	}
}

func TestClosingAKafkaBrokerThatNeverConnectedEndsItsSubscriptionsAndRefusesPublishing(t *testing.T) {
	b, err := broker.New(unreachableKafka(t), watermill.NopLogger{})
	if err != nil {
		t.Fatalf("broker.New: %v", err)
	}
	sub, err := b.Subscriber("group", 1)
	if err != nil {
		t.Fatalf("Subscriber: %v", err)
	}
	msgs, err := sub.Subscribe(context.Background(), "email.send")
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close = %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Close did not return within 15s")
	}
	if _, open := <-msgs; open {
		t.Error("a message arrived after Close")
	}
	if _, err := sub.Subscribe(context.Background(), "email.send"); err == nil {
		t.Error("Subscribe after Close succeeded")
	}
	err = b.Publisher().Publish("email.send", message.NewMessage(watermill.NewUUID(), nil))
	if err == nil {
		t.Error("Publish after Close succeeded")
	}
}

// TestWaitingForAGroupToCatchUpKeepsTryingWhileKafkaIsUnreachableAndEndsWithItsContext:
// WaitCaughtUp does not give up on a Kafka it cannot reach (a worker must not send
// before its copy of the list is whole), and returns the context's error when it
// ends; on Go channels, where no topic holds anything, it returns nil at once.
func TestWaitingForAGroupToCatchUpKeepsTryingWhileKafkaIsUnreachableAndEndsWithItsContext(t *testing.T) {
	b, err := broker.New(unreachableKafka(t), watermill.NopLogger{})
	if err != nil {
		t.Fatalf("broker.New: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if err := b.WaitCaughtUp(ctx, "email.suppressions", "group"); err != context.DeadlineExceeded {
		t.Errorf("WaitCaughtUp on an unreachable Kafka = %v, want the context's deadline", err)
	}

	gc, err := config.Load(config.Sources{})
	if err != nil {
		t.Fatal(err)
	}
	g, err := broker.New(gc, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	done, stop := context.WithCancel(context.Background())
	stop() // a wait would end with its error at once
	if err := g.WaitCaughtUp(done, "email.suppressions", "group"); err != nil {
		t.Errorf("WaitCaughtUp on Go channels = %v, want nil at once", err)
	}
}
