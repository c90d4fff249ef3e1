package ports

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/modules/delivery/internal/app"
)

func forwarderAt(now time.Time) RetryForwarder {
	return RetryForwarder{
		Tier:    app.RetryTier{Delay: 5 * time.Second, Name: "5s", Topic: "email.send.retry.5s"},
		Wait:    app.DueWait{Now: func() time.Time { return now }, After: func(time.Duration) <-chan time.Time { return nil }},
		Metrics: NewRetryMetrics(nil),
		Log:     slog.New(slog.DiscardHandler),
	}
}

func TestADueRetryIsForwardedWithItsKeyAndPayloadButNotItsDueTime(t *testing.T) {
	now := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	f := forwarderAt(now)
	msg := message.NewMessage("e1/r0/a2", []byte(`{"email_id":"e1"}`))
	msg.Metadata.Set("partition_key", "e1")
	msg.Metadata.Set(contract.RetryDueAtKey, now.Add(-time.Second).Format(time.RFC3339Nano))
	out, err := f.Handle(msg)
	if err != nil || len(out) != 1 {
		t.Fatalf("Handle = %v, %v; want one message", out, err)
	}
	got := out[0]
	if got.UUID != msg.UUID || string(got.Payload) != string(msg.Payload) || got.Metadata.Get("partition_key") != "e1" {
		t.Errorf("forwarded %s %q key %q, want the retry's uuid, payload and key", got.UUID, got.Payload, got.Metadata.Get("partition_key"))
	}
	if _, ok := got.Metadata[contract.RetryDueAtKey]; ok {
		t.Error("the forwarded SendEmail still carries retry_due_at")
	}
	if n := value(t, f.Metrics.Forwarded.WithLabelValues("5s")); n != 1 {
		t.Errorf("forwarded_total = %v, want 1", n)
	}
}

func TestARetryNotYetDueIsNotForwardedWhenItsPartitionIsTakenAway(t *testing.T) {
	now := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	f := forwarderAt(now)
	msg := message.NewMessage("e1/r0/a2", []byte(`{}`))
	msg.Metadata.Set(contract.RetryDueAtKey, now.Add(time.Hour).Format(time.RFC3339Nano))
	ctx, cancel := context.WithCancel(context.Background())
	msg.SetContext(ctx)
	cancel()
	out, err := f.Handle(msg)
	if !errors.Is(err, context.Canceled) || out != nil {
		t.Errorf("Handle = %v, %v; want nothing forwarded and context.Canceled", out, err)
	}
	if n := value(t, f.Metrics.Waiting.WithLabelValues("5s")); n != 0 {
		t.Errorf("waiting = %v after the wait ended, want 0", n)
	}
}

// value is the current value of a gauge or counter.
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(prometheus.CollectorFunc(func(ch chan<- prometheus.Metric) { ch <- m })); err != nil {
		t.Fatalf("register: %v", err)
	}
	families, err := reg.Gather()
	if err != nil || len(families) != 1 || len(families[0].GetMetric()) != 1 {
		t.Fatalf("gather: %v, %v", families, err)
	}
	sample := families[0].GetMetric()[0]
	if c := sample.GetCounter(); c != nil {
		return c.GetValue()
	}
	return sample.GetGauge().GetValue()
}
