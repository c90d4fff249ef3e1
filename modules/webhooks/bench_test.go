package webhooks_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/modules/emails/contract"
)

// BenchmarkWebhookFanOut measures events/s from the lifecycle topic to a local
// receiver: each event goes through the outbox, the fan-out's transaction, the
// sender's claim and a signed POST, and its delivery is recorded succeeded.
func BenchmarkWebhookFanOut(b *testing.B) {
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		got.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(srv.Close)
	in := apptest.Start(b, apptest.Config(b))
	r := in.Do(b, http.MethodPost, "/api/webhooks", map[string]any{"url": srv.URL, "events": []string{contract.EventDelivered}})
	if r.Status != http.StatusCreated {
		b.Fatalf("POST /api/webhooks: %d %s", r.Status, r.Body)
	}
	src := newEvents(b, in)
	const batch = 500
	evs := make([]contract.Event, 0, b.N)
	for i := range b.N {
		evs = append(evs, event(contract.EventDelivered, fmt.Sprintf("email-%d", i%64)))
	}

	b.ResetTimer()
	start := time.Now()
	for len(evs) > 0 {
		n := min(batch, len(evs))
		src.publish(b, evs[:n]...)
		evs = evs[n:]
	}
	apptest.Eventually(b, 5*time.Minute, func() bool { return got.Load() >= int64(b.N) },
		func() string { return fmt.Sprintf("%d of %d events received", got.Load(), b.N) })
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}
