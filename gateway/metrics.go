package gateway

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the gateway's Prometheus series, registered on the server's own
// registry (no global registry).
type metrics struct {
	hooks    *prometheus.CounterVec
	ackTime  *prometheus.HistogramVec
	inboxOut *prometheus.CounterVec
	events   *prometheus.CounterVec
	matched  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		hooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookline_webhooks_total", Help: "Webhooks received, by connector and answer status.",
		}, []string{"connector", "status"}),
		ackTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "hookline_ack_seconds", Help: "Time from request to durable acknowledgement.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"connector"}),
		inboxOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookline_inbox_processed_total", Help: "Inbox items processed, by outcome.",
		}, []string{"outcome"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookline_events_total", Help: "Events produced by mappings, by connector and type.",
		}, []string{"connector", "type"}),
		matched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookline_rule_matches_total", Help: "Rule firings, by connector.",
		}, []string{"connector"}),
	}
	if reg != nil {
		reg.MustRegister(m.hooks, m.ackTime, m.inboxOut, m.events, m.matched)
	}
	return m
}

func (m *metrics) hook(connector string, status int) {
	if m == nil {
		return
	}
	m.hooks.WithLabelValues(connector, strconv.Itoa(status)).Inc()
}

func (m *metrics) ack(connector string, d time.Duration) {
	if m == nil {
		return
	}
	m.ackTime.WithLabelValues(connector).Observe(d.Seconds())
}

func (m *metrics) inbox(outcome string) {
	if m == nil {
		return
	}
	m.inboxOut.WithLabelValues(outcome).Inc()
}

func (m *metrics) event(connector, typ string, matched int) {
	if m == nil {
		return
	}
	m.events.WithLabelValues(connector, typ).Inc()
	if matched > 0 {
		m.matched.WithLabelValues(connector).Add(float64(matched))
	}
}
