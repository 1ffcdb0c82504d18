package gateway

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookline/hookline/store"
)

// The loop guards that hookline_loop_guard_total counts, by its label.
const (
	guardEcho      = iota // an inbound event that echoes a delivered change
	guardMaxHops          // a causation chain stopped at max_hops
	guardFiringCap        // a rule held back by its per-entity firing cap
	guardNoOp             // an update not sent: it changes nothing
	guardKinds
)

// maxTypeLabels is how many event types hookline_events_total keeps apart
// per connector; later ones count under otherType. Event types can come
// from the payload (the generic connector's do), and every label value is
// a series kept in memory for good: a sender must not be able to grow
// them without bound.
const (
	maxTypeLabels = 100
	otherType     = "(other)"
)

// latencyBuckets are the buckets of the processing and timer lag
// histograms: milliseconds under load, up to a minute behind a backlog.
func latencyBuckets() []float64 {
	return []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
}

// metrics are the gateway's Prometheus series, registered on the server's own
// registry (no global registry).
type metrics struct {
	hooks    *prometheus.CounterVec
	ackTime  *prometheus.HistogramVec
	inboxOut *prometheus.CounterVec
	events   *prometheus.CounterVec
	matched  *prometheus.CounterVec
	// processing is the time from a webhook's receipt to the commit of
	// the transaction that processed it, by connector; webhooks replayed
	// from the admin API are left out.
	processing *prometheus.HistogramVec
	guards     [guardKinds]prometheus.Counter
	// timersFired and timerLag count fired timers and how late each was
	// (from its due time to the commit that fired it).
	timersFired prometheus.Counter
	timerLag    prometheus.Histogram

	typesMu sync.Mutex
	types   map[string]map[string]bool // event type labels in use, by connector
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
		processing: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "hookline_processing_seconds", Help: "Time from a webhook's receipt to the commit of its processing (events, rules, deliveries); replayed webhooks are left out.",
			Buckets: latencyBuckets(),
		}, []string{"connector"}),
		timersFired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hookline_timers_fired_total", Help: "Timers of time-based rules fired.",
		}),
		timerLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "hookline_timer_lag_seconds", Help: "Time from a timer's due time to the commit that fired it.",
			Buckets: latencyBuckets(),
		}),
	}
	guards := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hookline_loop_guard_total", Help: "Loop guards that stopped or marked something: echo, max_hops, firing_cap, no_op.",
	}, []string{"guard"})
	for g, name := range [guardKinds]string{"echo", "max_hops", "firing_cap", "no_op"} {
		m.guards[g] = guards.WithLabelValues(name)
	}
	if reg != nil {
		reg.MustRegister(m.hooks, m.ackTime, m.inboxOut, m.events, m.matched, m.processing, guards, m.timersFired, m.timerLag)
	}
	return m
}

// storeGauges reads the store's counters (store.Stats, a few key reads)
// at each scrape: webhooks waiting for processing, armed timers,
// deliveries by state and damaged intake journal spans skipped.
type storeGauges struct {
	db                                                     *store.DB
	backlog, timers, deliveries, journalSkip, intakeFailed *prometheus.Desc
}

func newStoreGauges(db *store.DB) *storeGauges {
	return &storeGauges{
		db:         db,
		backlog:    prometheus.NewDesc("hookline_inbox_backlog", "Webhooks accepted (acknowledged) and not yet processed.", nil, nil),
		timers:     prometheus.NewDesc("hookline_timers_armed", "Timers of time-based rules armed and not yet fired or cancelled.", nil, nil),
		deliveries: prometheus.NewDesc("hookline_outbox_deliveries", "Deliveries in the outbox, by state.", []string{"state"}, nil),
		journalSkip: prometheus.NewDesc("hookline_journal_skipped_total",
			"Damaged spans of intake journal segments skipped on replay to reach valid records after them (each logged as an error).", nil, nil),
		intakeFailed: prometheus.NewDesc("hookline_intake_failed",
			"1 while the store cannot take webhooks (the intake journal refuses appends, or moving it into the database has failed for 10 s; /readyz says why), else 0.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (g *storeGauges) Describe(ch chan<- *prometheus.Desc) {
	ch <- g.backlog
	ch <- g.timers
	ch <- g.deliveries
	ch <- g.journalSkip
	ch <- g.intakeFailed
}

// Collect implements prometheus.Collector; a store that cannot be read
// (closing) yields no samples.
func (g *storeGauges) Collect(ch chan<- prometheus.Metric) {
	st, err := g.db.Stats()
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(g.backlog, prometheus.GaugeValue, float64(st.InboxPending))
	ch <- prometheus.MustNewConstMetric(g.timers, prometheus.GaugeValue, float64(st.Timers))
	ch <- prometheus.MustNewConstMetric(g.journalSkip, prometheus.CounterValue, float64(st.JournalSkipped))
	failed := 0.0
	if g.db.IntakeHealth() != nil {
		failed = 1
	}
	ch <- prometheus.MustNewConstMetric(g.intakeFailed, prometheus.GaugeValue, failed)
	for state, n := range st.Deliveries {
		ch <- prometheus.MustNewConstMetric(g.deliveries, prometheus.GaugeValue, float64(n), state)
	}
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

// tally is what one write transaction of the pipeline counts; the metrics
// take it once the transaction has committed (metrics.add), so a batch
// that is rolled back and retried item by item counts once.
type tally struct {
	guards  [guardKinds]int
	outcome map[string]int    // inbox items by outcome
	events  map[[2]string]int // events by connector and type
	matched map[string]int    // rule firings by connector
	// received are the inbox items finished, for their processing time.
	received []receipt
	// fired are the due times of the timers fired.
	fired []time.Time
	// unbuilt counts, by connector, the deliveries stored failed because
	// their request could not be built.
	unbuilt map[string]int
}

// unbuildable counts one delivery of connector that could not be built.
func (t *tally) unbuildable(connector string) {
	if t.unbuilt == nil {
		t.unbuilt = map[string]int{}
	}
	t.unbuilt[connector]++
}

// receipt is when inbox item id of connector was received; replayed
// items are left out of hookline_processing_seconds (their receipt may be
// days old: the time would be the replay's delay, not the processing's).
type receipt struct {
	id, connector string
	at            time.Time
	replayed      bool
}

// inbox counts one inbox item finished with outcome.
func (t *tally) inbox(it *store.InboxItem, outcome string) {
	if t.outcome == nil {
		t.outcome = map[string]int{}
	}
	t.outcome[outcome]++
	t.received = append(t.received, receipt{id: it.ID, connector: it.Connector, at: it.ReceivedAt})
}

// timer counts one timer fired (its event made), due at due.
func (t *tally) timer(due time.Time) { t.fired = append(t.fired, due) }

// event counts one event of connector and typ, and the rules it matched.
func (t *tally) event(connector, typ string, matched int) {
	if t.events == nil {
		t.events, t.matched = map[[2]string]int{}, map[string]int{}
	}
	t.events[[2]string{connector, typ}]++
	if matched > 0 {
		t.matched[connector] += matched
	}
}

// add counts the tally of a transaction that committed at now.
func (m *metrics) add(t *tally, now time.Time) {
	if m == nil {
		return
	}
	for _, r := range t.received {
		if r.replayed {
			continue
		}
		m.processing.WithLabelValues(r.connector).Observe(now.Sub(r.at).Seconds())
	}
	for _, due := range t.fired {
		m.timersFired.Inc()
		m.timerLag.Observe(max(0, now.Sub(due).Seconds()))
	}
	for g, n := range t.guards {
		if n > 0 {
			m.guards[g].Add(float64(n))
		}
	}
	for outcome, n := range t.outcome {
		m.inboxOut.WithLabelValues(outcome).Add(float64(n))
	}
	for k, n := range t.events {
		m.events.WithLabelValues(k[0], m.typeLabel(k[0], k[1])).Add(float64(n))
	}
	for connector, n := range t.matched {
		m.matched.WithLabelValues(connector).Add(float64(n))
	}
}

// typeLabel is the type label of an event of connector: typ itself while
// the connector has fewer than maxTypeLabels, else otherType for types not
// seen before.
func (m *metrics) typeLabel(connector, typ string) string {
	m.typesMu.Lock()
	defer m.typesMu.Unlock()
	seen := m.types[connector]
	if seen == nil {
		if m.types == nil {
			m.types = map[string]map[string]bool{}
		}
		seen = map[string]bool{}
		m.types[connector] = seen
	}
	if seen[typ] {
		return typ
	}
	if len(seen) >= maxTypeLabels {
		return otherType
	}
	seen[typ] = true
	return typ
}
