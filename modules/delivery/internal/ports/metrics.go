package ports

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailroom/mailroom/modules/delivery/internal/app"
)

// GateCollector exports what the server gate says of the mail server:
// mailroom_smtp_up (1 while sends go through), and while delivery is paused,
// mailroom_smtp_paused{kind, key} (1) and mailroom_smtp_paused_since_seconds (a
// unix time). The labels come from closed sets: the kind is outage or
// configuration, the key one of the smtp.* configuration keys.
type GateCollector struct{ Gate *app.ServerGate }

var (
	smtpUpDesc     = prometheus.NewDesc("mailroom_smtp_up", "1 while the mail server takes mail, 0 while delivery is paused.", nil, nil)
	smtpPausedDesc = prometheus.NewDesc("mailroom_smtp_paused", "1 while delivery is paused, by why: an outage or a configuration error, and the key to fix.",
		[]string{"kind", "key"}, nil)
	smtpSinceDesc = prometheus.NewDesc("mailroom_smtp_paused_since_seconds", "When delivery was paused, in unix seconds; absent while it runs.", nil, nil)
)

// Describe implements prometheus.Collector.
func (c GateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- smtpUpDesc
	ch <- smtpPausedDesc
	ch <- smtpSinceDesc
}

// Collect implements prometheus.Collector.
func (c GateCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.Gate.State()
	if st.Open {
		ch <- prometheus.MustNewConstMetric(smtpUpDesc, prometheus.GaugeValue, 1)
		return
	}
	ch <- prometheus.MustNewConstMetric(smtpUpDesc, prometheus.GaugeValue, 0)
	ch <- prometheus.MustNewConstMetric(smtpPausedDesc, prometheus.GaugeValue, 1, st.Kind, st.Key)
	ch <- prometheus.MustNewConstMetric(smtpSinceDesc, prometheus.GaugeValue, float64(st.Since.UnixMilli())/1000)
}
