package delivery

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcome labels of hookline_deliveries_total.
const (
	outcomeSucceeded   = "succeeded"
	outcomeRetry       = "retry"
	outcomeFailed      = "failed"
	outcomeThrottled   = "throttled"
	outcomeInterrupted = "interrupted"
	outcomeCancelled   = "cancelled"
)

// metrics are the dispatcher's Prometheus collectors; a nil *metrics
// records nothing.
type metrics struct {
	deliveries  *prometheus.CounterVec
	seconds     *prometheus.HistogramVec
	breakerOpen *prometheus.GaugeVec
}

// newMetrics registers the collectors with reg; nil reg gives nil metrics.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookline_deliveries_total",
			Help: "Delivery outcomes by outbound connector (succeeded, retry, failed, throttled, interrupted).",
		}, []string{"connector", "outcome"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hookline_delivery_seconds",
			Help:    "Time one delivery attempt took, in-process retries included.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"connector"}),
		breakerOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hookline_breaker_open",
			Help: "1 while the outbound connector's circuit breaker is open or half-open, else 0.",
		}, []string{"connector"}),
	}
	for _, c := range []prometheus.Collector{m.deliveries, m.seconds, m.breakerOpen} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register delivery metrics: %w", err)
		}
	}
	return m, nil
}

// outcome counts one outcome.
func (m *metrics) outcome(connector, outcome string) {
	if m != nil {
		m.deliveries.WithLabelValues(connector, outcome).Inc()
	}
}

// observe records the duration of one attempt.
func (m *metrics) observe(connector string, seconds float64) {
	if m != nil {
		m.seconds.WithLabelValues(connector).Observe(seconds)
	}
}

// breaker sets the breaker gauge.
func (m *metrics) breaker(connector string, open bool) {
	if m == nil {
		return
	}
	v := 0.0
	if open {
		v = 1
	}
	m.breakerOpen.WithLabelValues(connector).Set(v)
}
