package delivery

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookline/hookline/connectors"
	"github.com/hookline/hookline/store"
)

// lockedBuffer is a log sink safe for the dispatcher's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startHooked builds a dispatcher logging into logs with sendHook set,
// and runs it until the test ends.
func startHooked(t *testing.T, db *store.DB, outs map[string]*connectors.Outbound, reg prometheus.Registerer, logs *lockedBuffer, hook func(*store.Delivery)) {
	t.Helper()
	d, err := New(db, outs, Config{Rand: noJitter, EgressAllow: loopback, MaxIdle: 20e6, Registerer: reg,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	d.sendHook = hook
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// A panic while sending fails the delivery and counts it under
// hookline_deliveries_total{outcome="failed"}, as every outcome is.
func TestPanicWhileSendingIsCounted(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	db := openDB(t, nil)
	reg := prometheus.NewRegistry()
	logs := &lockedBuffer{}
	startHooked(t, db, map[string]*connectors.Outbound{"crm": outbound("crm", srv.URL)}, reg, logs, func(*store.Delivery) { panic("boom") })
	del := httpDelivery("crm", "T-1", srv.URL+"/t", `{}`)
	enqueue(t, db, del)
	got := waitFinal(t, db, del.ID)
	if got.State != store.DeliveryFailed || !strings.Contains(got.Reason, "internal error while sending") {
		t.Fatalf("delivery: %s", describe(got))
	}
	if v := metricValue(t, reg, "hookline_deliveries_total", map[string]string{"connector": "crm", "outcome": "failed"}); v != 1 {
		t.Errorf(`hookline_deliveries_total{connector="crm",outcome="failed"} = %v, want 1`, v)
	}
}

// The dispatcher's "delivery: failed" line names the rule and the event
// that made the delivery.
func TestFailedDeliveryLogNamesRuleAndEvent(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadRequest) }))
	defer srv.Close()
	db := openDB(t, nil)
	logs := &lockedBuffer{}
	startHooked(t, db, map[string]*connectors.Outbound{"crm": outbound("crm", srv.URL)}, nil, logs, nil)
	del := httpDelivery("crm", "T-1", srv.URL+"/t", `{}`)
	enqueue(t, db, del)
	if got := waitFinal(t, db, del.ID); got.State != store.DeliveryFailed {
		t.Fatalf("delivery: %s", describe(got))
	}
	var line string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "delivery: failed") {
			line = l
		}
	}
	if !strings.Contains(line, "delivery="+del.ID) || !strings.Contains(line, "rule=rule-1") || !strings.Contains(line, "event=ev-1") {
		t.Errorf("failed line %q; want the delivery, rule=rule-1 and event=ev-1\n%s", line, logs.String())
	}
}

// A transport error names the target as scheme://host only: a URL's path
// and query (a REST-hook subscriber's secret) stay out of the log and of
// the stored attempt.
func TestTransportErrorLeavesOutPathAndQuery(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	target := down.URL + "/hooks/catch/123/PATHSECRET/?token=QUERYSECRET"
	host := strings.TrimPrefix(down.URL, "http://")
	down.Close() // nothing listens there any more
	db := openDB(t, nil)
	logs := &lockedBuffer{}
	out := outbound("crm", down.URL)
	out.Retry.Schedule = nil // fail on the first attempt
	startHooked(t, db, map[string]*connectors.Outbound{"crm": out}, nil, logs, nil)
	del := httpDelivery("crm", "T-1", target, `{}`)
	enqueue(t, db, del)
	got := waitFor(t, db, del.ID, "an attempt", func(d *store.Delivery) bool { return len(d.Attempts) > 0 })
	att := got.Attempts[0].Error
	if !strings.Contains(att, "http://"+host) || !strings.Contains(att, "connection refused") {
		t.Errorf("attempt error %q: want the target as http://%s and the cause", att, host)
	}
	for _, secret := range []string{"PATHSECRET", "QUERYSECRET"} {
		if strings.Contains(att, secret) || strings.Contains(got.Reason, secret) {
			t.Errorf("the stored delivery shows %s: attempt %q, reason %q", secret, att, got.Reason)
		}
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the log shows %s:\n%s", secret, logs.String())
		}
	}
}
