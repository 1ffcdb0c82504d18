package gateway

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// metricValue reads one series from GET /metrics, written as the
// exposition prints it (name and labels, e.g.
// `hookline_loop_guard_total{guard="no_op"}`); 0 when it is absent.
func metricValue(t testing.TB, url, series string) float64 {
	t.Helper()
	r := do(t, "GET", url+"/metrics", nil, nil)
	if r.Status != 200 {
		t.Fatalf("GET /metrics: %d %s", r.Status, r.Body)
	}
	body := r.Body
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatalf("series %s: value %q: %v", series, m[1], err)
	}
	return v
}

// The operational series follow what the gateway did: how long webhooks
// took to be processed, per connector; how many wait (none once they are
// processed); the updates the no-op guard kept back; the timers armed and
// fired, with their lag; and the outbox by delivery state.
func TestOperationalMetrics(t *testing.T) {
	target := newRecorder(t, nil)
	rules := `rules:
  - id: prioritise
    on: [ticket.updated]
    connector: generic
    when: { field: status, is: open }
    then: [ { set_priority: high } ]
  - id: pending-short
    on: [ticket.*]
    connector: generic
    when: { field: status, is: pending }
    for: 300ms
    then: [ { set_priority: urgent } ]
  - id: on-hold-long
    on: [ticket.*]
    connector: generic
    when: { field: status, is: on_hold }
    for: 1h
    then: [ { set_priority: low } ]
`
	gw, stop := runServer(t, timerConfig(t, rules), t.TempDir(), map[string]string{"GENERIC_TARGET_URL": target.srv.URL}, nil)
	defer stop()
	postGeneric(t, gw.URL, `{"type": "ticket.updated", "id": "M-0", "status": "on_hold"}`)
	waitFor(t, "the timer of M-0 armed", func() bool { return metricValue(t, gw.URL, "hookline_timers_armed") == 1 })
	postGeneric(t, gw.URL, `{"type": "ticket.updated", "id": "M-0", "status": "solved"}`)
	postGeneric(t, gw.URL, `{"type": "ticket.updated", "id": "M-1", "status": "open", "priority": "low"}`)
	postGeneric(t, gw.URL, `{"type": "ticket.updated", "id": "M-2", "status": "open", "priority": "high"}`)
	postGeneric(t, gw.URL, `{"type": "ticket.updated", "id": "M-3", "status": "pending"}`)
	waitFor(t, "the updates of M-1 and M-3", func() bool { return len(target.requests()) == 2 })
	waitFor(t, "five webhooks processed", func() bool {
		return metricValue(t, gw.URL, `hookline_processing_seconds_count{connector="generic"}`) == 5
	})
	waitFor(t, "one timer fired", func() bool { return metricValue(t, gw.URL, "hookline_timers_fired_total") == 1 })
	waitFor(t, "both deliveries recorded as succeeded", func() bool {
		return metricValue(t, gw.URL, `hookline_outbox_deliveries{state="succeeded"}`) == 2
	})
	for series, want := range map[string]float64{
		"hookline_inbox_backlog":                       0,
		"hookline_timers_armed":                        0,
		`hookline_outbox_deliveries{state="failed"}`:   0,
		`hookline_outbox_deliveries{state="pending"}`:  0,
		`hookline_loop_guard_total{guard="no_op"}`:     1,
		`hookline_loop_guard_total{guard="echo"}`:      0,
		"hookline_timer_lag_seconds_count":             1,
		`hookline_timer_lag_seconds_bucket{le="+Inf"}`: 1,
	} {
		if got := metricValue(t, gw.URL, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if lag := metricValue(t, gw.URL, "hookline_timer_lag_seconds_sum"); lag < 0 || lag > 10 {
		t.Errorf("timer lag %v s, want a small non-negative one", lag)
	}
	if sum := metricValue(t, gw.URL, `hookline_processing_seconds_sum{connector="generic"}`); sum <= 0 || sum > 30 {
		t.Errorf("processing time of five webhooks %v s", sum)
	}
}

// The connector label is the connector's name as configured, whatever
// requests come later on the same keep-alive connection (the router's
// path parameter lives in a buffer the next request overwrites), and
// unknown connector names share one label value.
func TestMetricLabelsOutliveTheirRequest(t *testing.T) {
	gw, stop := runServer(t, timerConfig(t, "rules: []\n"), t.TempDir(), nil, nil)
	defer stop()
	for i := range 3 {
		postGeneric(t, gw.URL, fmt.Sprintf(`{"type": "ticket.updated", "id": "L-%d", "status": "open"}`, i))
		for _, unknown := range []string{"zzzzzzz", fmt.Sprintf("nope-%d", i)} {
			if r := do(t, "POST", gw.URL+"/hooks/"+unknown, []byte(`{}`), map[string]string{"Content-Type": "application/json"}); r.Status != 404 {
				t.Fatalf("post to unknown connector %s: %d", unknown, r.Status)
			}
		}
	}
	for series, want := range map[string]float64{
		`hookline_webhooks_total{connector="generic",status="202"}`:   3,
		`hookline_webhooks_total{connector="(unknown)",status="404"}`: 6,
		`hookline_ack_seconds_count{connector="generic"}`:             3,
	} {
		if got := metricValue(t, gw.URL, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	body := string(do(t, "GET", gw.URL+"/metrics", nil, nil).Body)
	for _, leaked := range []string{"zzzzzzz", "nope-"} {
		if strings.Contains(body, leaked) {
			t.Errorf("/metrics has a label from a later request or an unknown connector (%q)", leaked)
		}
	}
}

// Event types can come from the payload: hookline_events_total keeps at
// most maxTypeLabels of them apart per connector and counts the rest
// under one label, so a sender cannot grow the series without bound.
func TestEventTypeLabelsAreBounded(t *testing.T) {
	gw, stop := runServer(t, timerConfig(t, "rules: []\n"), t.TempDir(), nil, nil)
	defer stop()
	const n = maxTypeLabels + 20
	for i := range n {
		postGeneric(t, gw.URL, fmt.Sprintf(`{"type": "made.up-%03d", "id": "T-%d"}`, i, i))
	}
	postGeneric(t, gw.URL, `{"type": "made.up-000", "id": "T-again"}`)
	waitFor(t, "every webhook processed", func() bool {
		return metricValue(t, gw.URL, `hookline_processing_seconds_count{connector="generic"}`) == n+1
	})
	body := string(do(t, "GET", gw.URL+"/metrics", nil, nil).Body)
	if got := strings.Count(body, `hookline_events_total{connector="generic",type="made.up-`); got != maxTypeLabels {
		t.Errorf("%d event type series, want %d", got, maxTypeLabels)
	}
	for series, want := range map[string]float64{
		`hookline_events_total{connector="generic",type="(other)"}`:     n - maxTypeLabels,
		`hookline_events_total{connector="generic",type="made.up-000"}`: 2,
	} {
		if got := metricValue(t, gw.URL, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
}
