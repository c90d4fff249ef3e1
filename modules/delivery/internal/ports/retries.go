package ports

import (
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/modules/delivery/internal/app"
)

// RetryMetrics count the retries of the retry topics, by tier (a closed set: the
// configured topics.retry_tiers): mailroom_delivery_retries_waiting (held by this
// instance's forwarders until due) and mailroom_delivery_retries_forwarded_total
// (handed back to topics.send).
type RetryMetrics struct {
	Waiting   *prometheus.GaugeVec
	Forwarded *prometheus.CounterVec
}

// NewRetryMetrics builds the metrics and registers them on reg, if not nil.
func NewRetryMetrics(reg prometheus.Registerer) RetryMetrics {
	m := RetryMetrics{
		Waiting: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mailroom_delivery_retries_waiting",
			Help: "Retries this instance holds in a retry topic's forwarder until they are due, by tier.",
		}, []string{"tier"}),
		Forwarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mailroom_delivery_retries_forwarded_total",
			Help: "Retries handed back from a retry topic to topics.send once due, by tier.",
		}, []string{"tier"}),
	}
	if reg != nil {
		reg.MustRegister(m.Waiting, m.Forwarded)
	}
	return m
}

// RetryForwarder consumes one retry tier's topic: it holds each SendEmail until the
// time in its contract.RetryDueAtKey, on the message's context, then returns it, for
// the router to publish on topics.send before it acknowledges the retry. A
// partition taken away ends the wait (the context is cancelled): the message is
// not acknowledged, and the partition's next owner holds it instead.
type RetryForwarder struct {
	Tier    app.RetryTier
	Wait    app.DueWait
	Metrics RetryMetrics
	Log     *slog.Logger
}

// Handle is the Watermill handler. A retry without a readable due time is
// forwarded at once (sending early is better than never) and logged.
func (f RetryForwarder) Handle(msg *message.Message) ([]*message.Message, error) {
	if due, err := time.Parse(time.RFC3339Nano, msg.Metadata.Get(contract.RetryDueAtKey)); err != nil {
		f.Log.Warn("retry without a readable due time; forwarding it at once",
			"tier", f.Tier.Name, "message_uuid", msg.UUID, "err", err)
	} else {
		waiting := f.Metrics.Waiting.WithLabelValues(f.Tier.Name)
		waiting.Inc()
		err := f.Wait.Until(msg.Context(), due)
		waiting.Dec()
		if err != nil {
			return nil, err
		}
	}
	out := message.NewMessage(msg.UUID, msg.Payload)
	for k, v := range msg.Metadata {
		if k != contract.RetryDueAtKey {
			out.Metadata.Set(k, v)
		}
	}
	f.Metrics.Forwarded.WithLabelValues(f.Tier.Name).Inc()
	return []*message.Message{out}, nil
}
