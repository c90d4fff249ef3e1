package app_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/app/internal/e2e"
	"github.com/mailroom/mailroom/platform/testkit/smtptest"
)

// BenchmarkWebhooks measures, in one run, mail delivery (emails/s from the first
// POST to the last message the SMTP server took, 10 ms per DATA) with no webhook
// endpoint, with one local receiver subscribed to every event (also reporting the
// events/s it got: three per email, from the first POST to the last event), and
// with one endpoint that never answers. x_no_endpoint is each rate over the first
// (target >= 0.9 with the hanging endpoint).
func BenchmarkWebhooks(b *testing.B) {
	const emails = 1000
	var base float64
	for _, endpoint := range []string{"none", "receiver", "hanging"} {
		b.Run("endpoint="+endpoint, func(b *testing.B) {
			var rate, eventRate float64
			for b.Loop() {
				srv := smtptest.Start(b, smtptest.WithReplyDelay(10*time.Millisecond))
				cfg := apptest.Config(b)
				apptest.UseSMTP(cfg, srv)
				in := apptest.Start(b, cfg)
				var hook *hookReceiver
				if endpoint != "none" {
					hook = newHookReceiver(b, endpoint == "hanging")
					hook.subscribe(b, in)
				}
				start := time.Now()
				if _, err := runClients(emails, benchClients, postOp(e2e.NewHTTPClient(b), in.URL, "hooks")); err != nil {
					b.Fatalf("post: %v", err)
				}
				srv.WaitForCount(b, emails, 5*time.Minute)
				msgs := srv.Messages()
				rate = float64(emails) / msgs[len(msgs)-1].Received.Sub(start).Seconds()
				if endpoint == "receiver" {
					apptest.Eventually(b, 5*time.Minute, func() bool { return hook.count() >= 3*emails },
						func() string { return fmt.Sprintf("the receiver got %d of %d events", hook.count(), 3*emails) })
					hook.mu.Lock()
					eventRate = float64(len(hook.order)) / hook.last.Sub(start).Seconds()
					hook.mu.Unlock()
				}
				in.Stop(b)
			}
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(rate, "emails/s")
			if endpoint == "receiver" {
				b.ReportMetric(eventRate, "events/s")
			}
			if endpoint == "none" {
				base = rate
			} else if base > 0 {
				b.ReportMetric(rate/base, "x_no_endpoint")
			}
		})
	}
}
