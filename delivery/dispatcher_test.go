package delivery

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookline/hookline/connectors"
	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/store"
)

// seen is one request a test server received.
type seen struct {
	at      time.Time
	method  string
	path    string
	header  http.Header
	body    string
	replied int
}

// recorder is a test target that answers by a script and records requests.
type recorder struct {
	mu    sync.Mutex
	reqs  []seen
	reply func(n int, r *http.Request, w http.ResponseWriter) int // n: 0-based request number
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	n := len(rc.reqs)
	rc.reqs = append(rc.reqs, seen{at: time.Now(), method: r.Method, path: r.URL.Path, header: r.Header.Clone(), body: string(body)})
	rc.mu.Unlock()
	code := rc.reply(n, r, w)
	rc.mu.Lock()
	rc.reqs[n].replied = code
	rc.mu.Unlock()
}

func (rc *recorder) requests() []seen {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]seen(nil), rc.reqs...)
}

func serve(t *testing.T, reply func(n int, r *http.Request, w http.ResponseWriter) int) (*recorder, *httptest.Server) {
	rc := &recorder{reply: reply}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	return rc, srv
}

func status(w http.ResponseWriter, code int, body string) int {
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body)
	return code
}

// TestRetriesThenSucceeds: a target that fails N times and then succeeds
// is delivered once, with the same Idempotency-Key on every request; each
// durable attempt is one Attempt whose in-process retries (at most 2) are
// part of it.
func TestRetriesThenSucceeds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		failures     int
		schedule     int // durable retries
		fail         func(w http.ResponseWriter, r *http.Request) int
		wantState    string
		wantRequests int
		wantAttempts []int // status per attempt
		wantReason   string
	}{
		{
			name: "3 failures: one attempt of 3 tries, then success", failures: 3, schedule: 3,
			fail:      func(w http.ResponseWriter, _ *http.Request) int { return status(w, 500, "oops") },
			wantState: store.DeliverySucceeded, wantRequests: 4, wantAttempts: []int{500, 200},
		},
		{
			name: "7 failures: two failed attempts, then success", failures: 7, schedule: 3,
			fail:      func(w http.ResponseWriter, _ *http.Request) int { return status(w, 503, "busy") },
			wantState: store.DeliverySucceeded, wantRequests: 8, wantAttempts: []int{503, 503, 200},
		},
		{
			name: "connection drops are retried", failures: 3, schedule: 3,
			fail: func(w http.ResponseWriter, _ *http.Request) int {
				conn, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					conn.Close()
				}
				return -1
			},
			wantState: store.DeliverySucceeded, wantRequests: 4, wantAttempts: []int{0, 200},
		},
		{
			name: "gives up after the schedule", failures: 1000, schedule: 2,
			fail:      func(w http.ResponseWriter, _ *http.Request) int { return status(w, 502, "down") },
			wantState: store.DeliveryFailed, wantRequests: 9, wantAttempts: []int{502, 502, 502},
			wantReason: "gave up after 3 attempts: HTTP 502 Bad Gateway (3 tries)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rc, srv := serve(t, func(n int, r *http.Request, w http.ResponseWriter) int {
				if n < tt.failures {
					return tt.fail(w, r)
				}
				return status(w, 200, `{"ok":true}`)
			})
			db := openDB(t, nil)
			out := outbound("crm", srv.URL)
			out.Retry.Schedule = make([]time.Duration, tt.schedule)
			for i := range out.Retry.Schedule {
				out.Retry.Schedule[i] = 10 * time.Millisecond
			}
			start(t, db, map[string]*connectors.Outbound{"crm": out}, Config{})
			d := httpDelivery("crm", "T1", srv.URL+"/tickets/T1", `{"status":"solved"}`)
			d.Hops = 3
			enqueue(t, db, d)
			got := waitFinal(t, db, d.ID)

			if got.State != tt.wantState {
				t.Fatalf("state %s, want %s\n%s", got.State, tt.wantState, describe(got))
			}
			if tt.wantReason != "" && got.Reason != tt.wantReason {
				t.Errorf("reason %q, want %q", got.Reason, tt.wantReason)
			}
			reqs := rc.requests()
			if len(reqs) != tt.wantRequests {
				t.Fatalf("target saw %d requests, want %d", len(reqs), tt.wantRequests)
			}
			delivered := 0
			for i, r := range reqs {
				if k := r.header.Get("Idempotency-Key"); k != d.ID {
					t.Errorf("request %d: Idempotency-Key %q, want %q", i, k, d.ID)
				}
				if v := r.header.Get("X-Hookline-Delivery"); v != d.ID {
					t.Errorf("request %d: X-Hookline-Delivery %q", i, v)
				}
				if v := r.header.Get("X-Hookline-Hops"); v != "3" {
					t.Errorf("request %d: X-Hookline-Hops %q, want 3", i, v)
				}
				if v := r.header.Get("User-Agent"); v != "Hookline/1" {
					t.Errorf("request %d: User-Agent %q", i, v)
				}
				if v := r.header.Get("Authorization"); v != "Bearer s3cret" {
					t.Errorf("request %d: Authorization %q", i, v)
				}
				if r.method != "POST" || r.path != "/tickets/T1" || r.body != `{"status":"solved"}` {
					t.Errorf("request %d: %s %s %q", i, r.method, r.path, r.body)
				}
				if r.replied == 200 {
					delivered++
				}
			}
			if want := map[bool]int{true: 1, false: 0}[tt.wantState == store.DeliverySucceeded]; delivered != want {
				t.Errorf("delivered %d times, want %d", delivered, want)
			}
			if len(got.Attempts) != len(tt.wantAttempts) {
				t.Fatalf("%d attempts, want %d\n%s", len(got.Attempts), len(tt.wantAttempts), describe(got))
			}
			for i, a := range got.Attempts {
				if a.Status != tt.wantAttempts[i] {
					t.Errorf("attempt %d: status %d, want %d", i, a.Status, tt.wantAttempts[i])
				}
				last := i == len(got.Attempts)-1
				if last && tt.wantState == store.DeliverySucceeded {
					if a.Error != "" || a.Response != `{"ok":true}` {
						t.Errorf("success attempt: error %q response %q", a.Error, a.Response)
					}
					continue
				}
				if !strings.Contains(a.Error, "(3 tries)") {
					t.Errorf("attempt %d: error %q should say it took 3 tries", i, a.Error)
				}
			}
		})
	}
}

// TestRetryAfter429: a 429 with Retry-After: 2 is waited for in-process and
// succeeds without using a durable attempt: the delivery has exactly one
// Attempt (status 200, no error) whose latency includes the 2 s wait, and
// the target saw the second request at least 2 s after the first. Longer
// Retry-After values, and a 429 without one, go back to the outbox.
func TestRetryAfter429(t *testing.T) {
	t.Parallel()
	t.Run("in-process", func(t *testing.T) {
		t.Parallel()
		rc, srv := serve(t, func(n int, r *http.Request, w http.ResponseWriter) int {
			if n == 0 {
				w.Header().Set("Retry-After", "2")
				return status(w, 429, "slow down")
			}
			return status(w, 200, "ok")
		})
		db := openDB(t, nil)
		start(t, db, map[string]*connectors.Outbound{"crm": outbound("crm", srv.URL)}, Config{})
		d := httpDelivery("crm", "T1", srv.URL+"/t", `{}`)
		enqueue(t, db, d)
		got := waitFinal(t, db, d.ID)
		if got.State != store.DeliverySucceeded || len(got.Attempts) != 1 {
			t.Fatalf("want succeeded with one attempt:\n%s", describe(got))
		}
		a := got.Attempts[0]
		if a.Status != 200 || a.Error != "" || a.LatencyMS < 2000 {
			t.Errorf("attempt: status %d error %q latency %.0fms; want 200, no error, >= 2000ms", a.Status, a.Error, a.LatencyMS)
		}
		reqs := rc.requests()
		if len(reqs) != 2 {
			t.Fatalf("target saw %d requests, want 2", len(reqs))
		}
		if gap := reqs[1].at.Sub(reqs[0].at); gap < 2*time.Second {
			t.Errorf("retried after %v, before Retry-After", gap)
		}
		if reqs[0].header.Get("Idempotency-Key") != reqs[1].header.Get("Idempotency-Key") {
			t.Error("idempotency key changed between tries")
		}
	})
	tests := []struct {
		name       string
		retryAfter string
		code       int
		wantWait   time.Duration
	}{
		{"429 with long Retry-After goes to the outbox", "120", 429, 120 * time.Second},
		{"429 without Retry-After waits at least a minute", "", 429, time.Minute},
		{"429 with Retry-After 0 after in-process tries waits a minute", "0", 429, time.Minute},
		{"503 with long Retry-After", "30", 503, 30 * time.Second},
		{"Retry-After capped by the connector", "86400", 503, 10 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rc, srv := serve(t, func(n int, r *http.Request, w http.ResponseWriter) int {
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				return status(w, tt.code, "later")
			})
			clk := newFakeClock()
			db := openDB(t, clk.Now)
			out := outbound("crm", srv.URL)
			out.Retry.MaxRetryAfter = 10 * time.Minute
			start(t, db, map[string]*connectors.Outbound{"crm": out}, Config{Now: clk.Now})
			d := httpDelivery("crm", "T1", srv.URL+"/t", `{}`)
			enqueue(t, db, d)
			got := waitFor(t, db, d.ID, "one attempt, pending", func(d *store.Delivery) bool {
				return len(d.Attempts) == 1 && d.State == store.DeliveryPending
			})
			if want := clk.Now().Add(tt.wantWait); !got.NextAt.Equal(want) {
				t.Errorf("next attempt at %v, want %v (now + %v)", got.NextAt, want, tt.wantWait)
			}
			if got.Attempts[0].Status != tt.code || !strings.HasPrefix(got.Reason, "retrying: HTTP "+strconv.Itoa(tt.code)) {
				t.Errorf("attempt %+v reason %q", got.Attempts[0], got.Reason)
			}
			wantTries := 1
			if tt.retryAfter == "0" {
				wantTries = 3 // retried in-process at once, twice
			}
			if n := len(rc.requests()); n != wantTries {
				t.Errorf("target saw %d requests, want %d", n, wantTries)
			}
		})
	}
}

// TestHangingTarget: a target that does not answer within the connector's
// timeout is retried from the outbox (timeouts are not retried in-process).
func TestHangingTarget(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	defer close(release)
	rc, srv := serve(t, func(n int, r *http.Request, w http.ResponseWriter) int {
		if n < 2 {
			select {
			case <-r.Context().Done():
			case <-release:
			}
			return -1
		}
		return status(w, 200, "ok")
	})
	db := openDB(t, nil)
	out := outbound("crm", srv.URL)
	out.Timeout = 300 * time.Millisecond
	out.Retry.Schedule = slices.Repeat([]time.Duration{10 * time.Millisecond}, 10)
	start(t, db, map[string]*connectors.Outbound{"crm": out}, Config{})
	d := httpDelivery("crm", "T1", srv.URL+"/t", `{}`)
	enqueue(t, db, d)
	got := waitFinal(t, db, d.ID)
	// Two hanging requests, one attempt each (no in-process retry of a
	// timeout), then success. (A very slow machine could time out the
	// third request too: that only adds an attempt.)
	if got.State != store.DeliverySucceeded || len(got.Attempts) < 3 {
		t.Fatalf("want success after two timed-out attempts:\n%s", describe(got))
	}
	for _, a := range got.Attempts[:len(got.Attempts)-1] {
		if a.Status != 0 || !strings.Contains(a.Error, "Timeout") || a.LatencyMS < 300 {
			t.Errorf("timed-out attempt: %+v", a)
		}
	}
	if n := len(rc.requests()); n != len(got.Attempts) {
		t.Errorf("target saw %d requests for %d attempts: timeouts must not be retried in-process", n, len(got.Attempts))
	}
}

// TestPermanentFailures: 4xx fails at once with the response kept; 410
// disables the target; 3xx is not followed.
func TestPermanentFailures(t *testing.T) {
	t.Parallel()
	elsewhere := atomic.Int32{}
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	tests := []struct {
		name       string
		code       int
		body       string
		location   string
		wantReason string
		wantGone   bool
	}{
		{"400 is dead at once, body kept", 400, `{"error":"priority: invalid value 'urgentest'"}`, "", "rejected: HTTP 400 Bad Request", false},
		{"422 is dead at once", 422, `{"details":"bad"}`, "", "rejected: HTTP 422 Unprocessable Entity", false},
		{"501 is not retried", 501, "nope", "", "rejected: HTTP 501 Not Implemented", false},
		{"410 disables the target", 410, `{"error":"hook removed"}`, "", "target gone (410): subscription disabled", true},
		{"302 is not followed", 302, "", other.URL + "/moved", "redirect not followed (Location: " + other.URL + "/moved)", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rc, srv := serve(t, func(n int, r *http.Request, w http.ResponseWriter) int {
				if tt.location != "" {
					w.Header().Set("Location", tt.location)
				}
				return status(w, tt.code, tt.body)
			})
			db := openDB(t, nil)
			var gone []*store.Delivery
			var mu sync.Mutex
			start(t, db, map[string]*connectors.Outbound{"crm": outbound("crm", srv.URL)}, Config{
				OnGone: func(d *store.Delivery) { mu.Lock(); gone = append(gone, d); mu.Unlock() },
			})
			d := httpDelivery("crm", "T1", srv.URL+"/hook", `{}`)
			next := httpDelivery("crm", "T1", srv.URL+"/hook", `{"n":2}`)
			enqueue(t, db, d, next)
			got := waitFinal(t, db, d.ID)
			if got.State != store.DeliveryFailed || got.Reason != tt.wantReason {
				t.Fatalf("want failed with %q:\n%s", tt.wantReason, describe(got))
			}
			if len(got.Attempts) != 1 || got.Attempts[0].Status != tt.code || got.Attempts[0].Response != tt.body {
				t.Errorf("attempt should keep status and body:\n%s", describe(got))
			}
			// The dead delivery no longer holds its reference's queue.
			waitFinal(t, db, next.ID)
			if n := len(rc.requests()); n != 2 {
				t.Errorf("target saw %d requests, want 2 (no retries)", n)
			}
			if tt.wantGone { // OnGone runs right after the outcome is committed
				for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
					mu.Lock()
					n := len(gone)
					mu.Unlock()
					if n >= 2 {
						break
					}
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if tt.wantGone {
				if len(gone) != 2 || gone[0].ID != d.ID || gone[0].State != store.DeliveryFailed || gone[0].Reason != tt.wantReason || len(gone[0].Attempts) != 1 {
					t.Errorf("OnGone calls: %d, first %+v", len(gone), gone)
				}
			} else if len(gone) != 0 {
				t.Errorf("OnGone called %d times", len(gone))
			}
		})
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("a redirect was followed %d times", n)
	}
}

// TestOrderingPerReference: 100 updates to each of three tickets arrive in
// creation order, one at a time per ticket, with a flaky target.
func TestOrderingPerReference(t *testing.T) {
	t.Parallel()
	const refs, perRef = 3, 100
	var (
		mu       sync.Mutex
		inFlight = map[string]int{}
		overlap  []string
		got      = map[string][]int{}
	)
	_, srv := serve(t, func(n int, r *http.Request, w http.ResponseWriter) int {
		ref := r.Header.Get("X-Ref")
		seq, _ := strconv.Atoi(r.URL.Query().Get("seq"))
		mu.Lock()
		inFlight[ref]++
		if inFlight[ref] > 1 {
			overlap = append(overlap, fmt.Sprintf("%s seq %d", ref, seq))
		}
		mu.Unlock()
		time.Sleep(time.Millisecond)
		// Flaky: every third request fails and is retried in-process at
		// once (Retry-After: 0); every tenth fails with a Retry-After too
		// long for in-process retries, so it goes back to the outbox.
		code := 200
		switch {
		case n%10 == 5:
			code = 503
			w.Header().Set("Retry-After", "60")
		case n%3 == 1:
			code = 503
			w.Header().Set("Retry-After", "0")
		}
		mu.Lock()
		inFlight[ref]--
		if code == 200 {
			got[ref] = append(got[ref], seq)
		}
		mu.Unlock()
		return status(w, code, "")
	})
	db := openDB(t, nil)
	out := outbound("crm", srv.URL)
	out.Retry.Schedule = slices.Repeat([]time.Duration{time.Millisecond}, 20)
	out.Retry.MaxRetryAfter = 5 * time.Millisecond
	start(t, db, map[string]*connectors.Outbound{"crm": out}, Config{Workers: 16})
	var all []*store.Delivery
	// Interleave the references so creation order differs from reference order.
	for i := range perRef {
		var batch []*store.Delivery
		for r := range refs {
			ref := fmt.Sprintf("T%d", r)
			d := httpDelivery("crm", ref, fmt.Sprintf("%s/t?seq=%d", srv.URL, i), `{}`)
			d.Request.Headers["X-Ref"] = ref
			batch = append(batch, d)
		}
		enqueue(t, db, batch...)
		all = append(all, batch...)
	}
	for _, d := range all {
		if got := waitFinal(t, db, d.ID); got.State != store.DeliverySucceeded {
			t.Fatalf("delivery failed:\n%s", describe(got))
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(overlap) > 0 {
		t.Errorf("requests of one reference overlapped: %v", overlap)
	}
	for r := range refs {
		ref := fmt.Sprintf("T%d", r)
		seqs := got[ref]
		if len(seqs) != perRef {
			t.Fatalf("%s: %d deliveries arrived, want %d", ref, len(seqs), perRef)
		}
		for i, s := range seqs {
			if s != i {
				t.Fatalf("%s: arrival %d is seq %d: out of order: %v", ref, i, s, seqs)
			}
		}
	}
}

// TestReferencesInParallel: different references are sent at the same time:
// the target answers only once all of them are in flight together.
func TestReferencesInParallel(t *testing.T) {
	t.Parallel()
	const n = 6
	var arrived sync.WaitGroup
	arrived.Add(n)
	all := make(chan struct{})
	go func() { arrived.Wait(); close(all) }()
	var together atomic.Int32
	_, srv := serve(t, func(_ int, r *http.Request, w http.ResponseWriter) int {
		arrived.Done()
		select {
		case <-all:
			together.Add(1)
		case <-time.After(10 * time.Second):
		}
		return status(w, 200, "")
	})
	db := openDB(t, nil)
	out := outbound("crm", srv.URL)
	out.Timeout = 15 * time.Second
	start(t, db, map[string]*connectors.Outbound{"crm": out}, Config{Workers: 8})
	var ds []*store.Delivery
	for i := range n {
		ds = append(ds, httpDelivery("crm", fmt.Sprintf("T%d", i), srv.URL+"/t", `{}`))
	}
	enqueue(t, db, ds...)
	for _, d := range ds {
		waitFinal(t, db, d.ID)
	}
	if got := together.Load(); got != n {
		t.Errorf("%d of %d references were in flight together", got, n)
	}
}

// metricValue reads one sample from a registry.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return 0
}

// TestBreakerThrottles: after Failures failed attempts the breaker opens;
// deliveries held back by it go back to the outbox with their attempts
// untouched; after the cool-down one probe closes it again.
func TestBreakerThrottles(t *testing.T) {
	t.Parallel()
	var healthy atomic.Bool
	rc, srv := serve(t, func(n int, r *http.Request, w http.ResponseWriter) int {
		if healthy.Load() {
			return status(w, 200, "")
		}
		return status(w, 500, "broken")
	})
	clk := newRunningClock()
	db := openDB(t, clk.Now)
	out := outbound("crm", srv.URL)
	out.Concurrency = 1 // admissions one at a time: the count of failures is exact
	out.Breaker = connectors.BreakerConfig{Failures: 2, ErrorRatio: 1, MinRequests: 1000, Window: time.Minute, Cooldown: 10 * time.Minute}
	out.Retry.Schedule = []time.Duration{time.Millisecond, time.Millisecond, time.Millisecond}
	reg := prometheus.NewRegistry()
	start(t, db, map[string]*connectors.Outbound{"crm": out}, Config{Now: clk.Now, Registerer: reg})
	var ds []*store.Delivery
	for i := range 5 {
		ds = append(ds, httpDelivery("crm", fmt.Sprintf("T%d", i), srv.URL+"/t", `{}`))
	}
	enqueue(t, db, ds...)
	attempts := 0
	for _, d := range ds {
		got := waitFor(t, db, d.ID, "held back by the open breaker", func(d *store.Delivery) bool {
			return d.State == store.DeliveryPending && d.Reason == "throttled: circuit breaker open"
		})
		if got.NextAt.Before(clk.Now().Add(9 * time.Minute)) {
			t.Errorf("held back until %v, want the cool-down", got.NextAt)
		}
		attempts += len(got.Attempts)
	}
	if attempts != 2 {
		t.Errorf("%d attempts charged, want 2 (only the ones that were sent)", attempts)
	}
	if n := len(rc.requests()); n != 6 {
		t.Errorf("target saw %d requests, want 6 (2 attempts of 3 tries)", n)
	}
	if v := metricValue(t, reg, "hookline_breaker_open", map[string]string{"connector": "crm"}); v != 1 {
		t.Errorf("hookline_breaker_open = %v, want 1", v)
	}
	if v := metricValue(t, reg, "hookline_deliveries_total", map[string]string{"connector": "crm", "outcome": "throttled"}); v < 5 {
		t.Errorf("throttled count %v, want at least 5", v)
	}

	// Cool-down over, target healthy: a probe closes the breaker and all go.
	healthy.Store(true)
	clk.Advance(11 * time.Minute)
	for _, d := range ds {
		got := waitFinal(t, db, d.ID)
		if got.State != store.DeliverySucceeded {
			t.Fatalf("after recovery:\n%s", describe(got))
		}
		attempts += 1
	}
	total := 0
	for _, d := range ds {
		got, _ := db.Delivery(d.ID)
		total += len(got.Attempts)
	}
	if total != 7 {
		t.Errorf("%d attempts in all, want 7 (2 failed + 5 successes)", total)
	}
	if v := metricValue(t, reg, "hookline_breaker_open", map[string]string{"connector": "crm"}); v != 0 {
		t.Errorf("hookline_breaker_open = %v after recovery, want 0", v)
	}
}

// TestConcurrencyCap: at most Concurrency requests of a connector are in
// flight; deliveries over the cap wait for a slot (on their worker, at most
// a second) and then go back to the outbox, uncharged.
func TestConcurrencyCap(t *testing.T) {
	t.Parallel()
	var cur, peak atomic.Int32
	hold := 1500 * time.Millisecond
	_, srv := serve(t, func(n int, r *http.Request, w http.ResponseWriter) int {
		c := cur.Add(1)
		for p := peak.Load(); c > p && !peak.CompareAndSwap(p, c); p = peak.Load() {
		}
		if n < 2 {
			time.Sleep(hold) // the first two outlast the one-second wait for a slot
		}
		cur.Add(-1)
		return status(w, 200, "")
	})
	db := openDB(t, nil)
	out := outbound("crm", srv.URL)
	out.Concurrency = 2
	reg := prometheus.NewRegistry()
	start(t, db, map[string]*connectors.Outbound{"crm": out}, Config{Workers: 8, Registerer: reg})
	var ds []*store.Delivery
	for i := range 12 {
		ds = append(ds, httpDelivery("crm", fmt.Sprintf("T%d", i), srv.URL+"/t", `{}`))
	}
	enqueue(t, db, ds...)
	for _, d := range ds {
		if got := waitFinal(t, db, d.ID); got.State != store.DeliverySucceeded || len(got.Attempts) != 1 {
			t.Fatalf("want sent once:\n%s", describe(got))
		}
	}
	if p := peak.Load(); p > 2 {
		t.Errorf("%d requests in flight at once, cap is 2", p)
	}
	// While the first two hung, the claimed others waited a second on their
	// workers, then went back to the outbox.
	if v := metricValue(t, reg, "hookline_deliveries_total", map[string]string{"connector": "crm", "outcome": "throttled"}); v < 1 {
		t.Errorf("throttled count %v: nothing went back to the outbox", v)
	}
}

// TestRateLimit: with a frozen clock, a bucket of 3 tokens at 1/s lets
// exactly 3 deliveries through; the rest wait in the outbox uncharged until
// time moves on.
func TestRateLimit(t *testing.T) {
	t.Parallel()
	rc, srv := serve(t, func(n int, r *http.Request, w http.ResponseWriter) int { return status(w, 200, "") })
	clk := newFakeClock()
	db := openDB(t, clk.Now)
	out := outbound("crm", srv.URL)
	out.RateLimit = 1
	out.Burst = 3
	start(t, db, map[string]*connectors.Outbound{"crm": out}, Config{Now: clk.Now})
	var ds []*store.Delivery
	for i := range 10 {
		ds = append(ds, httpDelivery("crm", fmt.Sprintf("T%d", i), srv.URL+"/t", `{}`))
	}
	enqueue(t, db, ds...)
	// check waits until wantSent deliveries succeeded and the others are
	// held back by the rate limit, uncharged.
	check := func(wantSent int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			sent, throttled := 0, 0
			for _, d := range ds {
				got, err := db.Delivery(d.ID)
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case got.State == store.DeliverySucceeded:
					sent++
				case got.State == store.DeliveryPending && got.Reason == "throttled: rate limit":
					throttled++
					if len(got.Attempts) != 0 {
						t.Fatalf("throttled delivery was charged %d attempts", len(got.Attempts))
					}
				}
			}
			if sent > wantSent || len(rc.requests()) > wantSent {
				t.Fatalf("sent %d (target saw %d), want %d", sent, len(rc.requests()), wantSent)
			}
			if sent == wantSent && throttled == len(ds)-wantSent && len(rc.requests()) == wantSent {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("sent %d, throttled %d; want %d sent", sent, throttled, wantSent)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	check(3)
	// Frozen time: nothing more goes, however long we wait in real time.
	time.Sleep(300 * time.Millisecond)
	check(3)
	clk.Advance(2 * time.Second)
	time.Sleep(300 * time.Millisecond)
	check(5)
	clk.Advance(time.Hour) // the bucket holds at most Burst tokens
	check(8)
	clk.Advance(2 * time.Second)
	check(10)
	for _, d := range ds {
		if got := waitFinal(t, db, d.ID); got.State != store.DeliverySucceeded || len(got.Attempts) != 1 {
			t.Fatalf("want every delivery sent once:\n%s", describe(got))
		}
	}
}

// TestEgressRefused: without an allow list a loopback target is refused at
// once with a clear reason and no request leaves; the metadata address is
// refused even with allow_private and a loopback allow list.
func TestEgressRefused(t *testing.T) {
	t.Parallel()
	rc, srv := serve(t, func(n int, r *http.Request, w http.ResponseWriter) int { return status(w, 200, "") })
	_, port, _ := strings.Cut(strings.TrimPrefix(srv.URL, "http://"), ":")
	tests := []struct {
		name         string
		allow        []string
		allowPrivate bool
		url          string
		wantReason   string
	}{
		{"loopback without allow", []string{"192.0.2.0/24"}, false, srv.URL + "/x",
			"egress to 127.0.0.1 refused: loopback address; allow it with egress.allow or allow_private"},
		{"localhost resolves to loopback", []string{"192.0.2.0/24"}, false, "http://localhost:" + port + "/x",
			"refused: loopback address"},
		{"metadata with allow_private", nil, true, "http://169.254.169.254/latest/meta-data/",
			"egress to 169.254.169.254 refused: cloud metadata address; allow it with egress.allow"},
		{"metadata with loopback allowed", nil, false, "http://169.254.169.254/latest/meta-data/",
			"egress to 169.254.169.254 refused: cloud metadata address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := openDB(t, nil)
			out := outbound("crm", srv.URL)
			out.AllowPrivate = tt.allowPrivate
			cfg := Config{}
			for _, p := range tt.allow {
				cfg.EgressAllow = append(cfg.EgressAllow, mustPrefix(p))
			}
			start(t, db, map[string]*connectors.Outbound{"crm": out}, cfg)
			d := httpDelivery("crm", "T1", tt.url, `{}`)
			enqueue(t, db, d)
			got := waitFinal(t, db, d.ID)
			if got.State != store.DeliveryFailed || !strings.Contains(got.Reason, tt.wantReason) || len(got.Attempts) != 1 {
				t.Fatalf("want failed with %q:\n%s", tt.wantReason, describe(got))
			}
		})
	}
	if n := len(rc.requests()); n != 0 {
		t.Errorf("a refused request reached the target %d times", n)
	}
}

// TestLogAction: log deliveries append lines in order; escapes are refused.
func TestLogAction(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "logs")
	db := openDB(t, nil)
	start(t, db, nil, Config{LogDir: dir})
	logDelivery := func(file, line string) *store.Delivery {
		return &store.Delivery{
			Connector: "zendesk", Reference: "T1", Action: "log",
			Update:  event.Update{Kind: event.KindLog, Log: &event.LogLine{File: file, Line: line}},
			Request: store.Request{Method: "LOG", URL: "file:" + file, Body: []byte(line)},
		}
	}
	var ds []*store.Delivery
	for i := range 20 {
		ds = append(ds, logDelivery("rules/solved.log", fmt.Sprintf("line %d", i)))
	}
	bad := logDelivery("../outside.log", "escape")
	abs := logDelivery("/tmp/abs.log", "escape")
	enqueue(t, db, ds...)
	enqueue(t, db, bad, abs)
	for _, d := range ds {
		if got := waitFinal(t, db, d.ID); got.State != store.DeliverySucceeded || len(got.Attempts) != 1 {
			t.Fatalf("log delivery:\n%s", describe(got))
		}
	}
	for _, d := range []*store.Delivery{bad, abs} {
		got := waitFinal(t, db, d.ID)
		if got.State != store.DeliveryFailed || !strings.Contains(got.Reason, ErrLogPath.Error()) {
			t.Errorf("escape %s:\n%s", d.Request.URL, describe(got))
		}
	}
	f, err := os.Open(filepath.Join(dir, "rules", "solved.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	i := 0
	for sc.Scan() {
		if want := fmt.Sprintf("line %d", i); sc.Text() != want {
			t.Fatalf("line %d is %q, want %q", i, sc.Text(), want)
		}
		i++
	}
	if i != 20 {
		t.Fatalf("%d lines, want 20", i)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "outside.log")); !os.IsNotExist(err) {
		t.Errorf("escape wrote a file: %v", err)
	}

	// Without a log directory, log deliveries fail with a reason.
	db2 := openDB(t, nil)
	start(t, db2, nil, Config{})
	d := logDelivery("a.log", "x")
	enqueue(t, db2, d)
	if got := waitFinal(t, db2, d.ID); got.State != store.DeliveryFailed || !strings.Contains(got.Reason, ErrNoLogDir.Error()) {
		t.Errorf("no log dir:\n%s", describe(got))
	}
}

// TestWebhookAndCapture: call_webhook deliveries carry no connector auth and
// may use a connector that is not configured; captures come from the
// response; unknown connectors fail with a reason.
func TestWebhookAndCapture(t *testing.T) {
	t.Parallel()
	rc, srv := serve(t, func(n int, r *http.Request, w http.ResponseWriter) int {
		w.Header().Set("Content-Type", "application/json")
		return status(w, 201, `{"ticket":{"id":4711,"status":"open"},"tags":["a","b"]}`)
	})
	db := openDB(t, nil)
	out := outbound("crm", srv.URL)
	out.Actions["create"] = &connectors.Action{Name: "create", Method: "POST", Success: []int{201},
		Capture: map[string]string{"ticket_id": "ticket.id", "first_tag": "tags.0", "missing": "nope.nope"}}
	reg := prometheus.NewRegistry()
	start(t, db, map[string]*connectors.Outbound{"crm": out}, Config{Registerer: reg})

	create := httpDelivery("crm", "T1", srv.URL+"/tickets", `{}`)
	create.Action = "create"
	hook := httpDelivery("crm", "T2", srv.URL+"/hook", `{"x":1}`)
	hook.Action = ""
	hook.Update.Kind = event.KindCallWebhook
	adhoc := httpDelivery("webhooks", "", srv.URL+"/adhoc", `{"y":2}`)
	adhoc.Action = ""
	adhoc.Update.Kind = event.KindCallWebhook
	enqueue(t, db, create, hook, adhoc)

	got := waitFinal(t, db, create.ID)
	if got.State != store.DeliverySucceeded || got.Captured["ticket_id"] != "4711" || got.Captured["first_tag"] != "a" {
		t.Errorf("capture:\n%s\ncaptured %v", describe(got), got.Captured)
	}
	if _, ok := got.Captured["missing"]; ok {
		t.Errorf("a missing path was captured: %v", got.Captured)
	}
	for _, d := range []*store.Delivery{hook, adhoc} {
		if got := waitFinal(t, db, d.ID); got.State != store.DeliverySucceeded {
			t.Errorf("webhook %s:\n%s", d.Request.URL, describe(got))
		}
	}
	if v := metricValue(t, reg, "hookline_deliveries_total", map[string]string{"connector": "crm", "outcome": "succeeded"}); v != 2 {
		t.Errorf("succeeded count for crm = %v, want 2", v)
	}
	if v := metricValue(t, reg, "hookline_delivery_seconds", map[string]string{"connector": "webhooks"}); v != 1 {
		t.Errorf("latency samples for webhooks = %v, want 1", v)
	}
	for _, r := range rc.requests() {
		auth := r.header.Get("Authorization")
		switch r.path {
		case "/tickets":
			if auth != "Bearer s3cret" {
				t.Errorf("action request without auth: %q", auth)
			}
		case "/hook", "/adhoc":
			if auth != "" {
				t.Errorf("call_webhook %s carried the connector's credentials: %q", r.path, auth)
			}
			if r.header.Get("Idempotency-Key") == "" {
				t.Errorf("call_webhook %s without Idempotency-Key", r.path)
			}
		default:
			t.Errorf("unexpected request to %s", r.path)
		}
	}
}

// TestUnsendable: deliveries that no retry can fix fail at once.
func TestUnsendable(t *testing.T) {
	t.Parallel()
	rc, srv := serve(t, func(n int, r *http.Request, w http.ResponseWriter) int { return status(w, 200, "") })
	db := openDB(t, nil)
	good := outbound("crm", srv.URL)
	badAuth := outbound("signed", srv.URL)
	badAuth.Auth = connectors.Auth{Type: connectors.AuthHMAC, Header: "X-Sig", Algorithm: "md4", Secret: "k"}
	start(t, db, map[string]*connectors.Outbound{"crm": good, "signed": badAuth}, Config{})
	tests := []struct {
		d          *store.Delivery
		wantReason string
		attempts   int
	}{
		// The reason names scheme://host only: a path or query may be a credential.
		{httpDelivery("crm", "T1", "ftp://user:pw@example.com/hooks/s3cr3t?token=s3cr3t", `{}`), `cannot send to ftp://example.com: not an http(s) URL`, 1},
		{httpDelivery("crm", "T5", "mailto:s3cr3t@example.com", `{}`), `cannot send to (unparsable URL): not an http(s) URL`, 1},
		{httpDelivery("crm", "T2", "http:///nohost", `{}`), `not an http(s) URL`, 1},
		{httpDelivery("signed", "T3", srv.URL+"/x", `{}`), `authorize: connector signed: sign request: unknown algorithm "md4"`, 1},
		{httpDelivery("nope", "T4", srv.URL+"/x", `{}`), `unknown outbound connector "nope"`, 0},
	}
	for _, tt := range tests {
		enqueue(t, db, tt.d)
	}
	for _, tt := range tests {
		got := waitFinal(t, db, tt.d.ID)
		if got.State != store.DeliveryFailed || !strings.Contains(got.Reason, tt.wantReason) || len(got.Attempts) != tt.attempts {
			t.Errorf("want failed with %q and %d attempts:\n%s", tt.wantReason, tt.attempts, describe(got))
		}
		if d := describe(got); strings.Contains(d, "s3cr3t") || strings.Contains(d, "pw@") {
			t.Errorf("the URL's credentials reached the delivery's reason or attempts:\n%s", d)
		}
	}
	if n := len(rc.requests()); n != 0 {
		t.Errorf("target saw %d requests, want none", n)
	}
}

// TestUnsendableHeaderFailsWithoutBreakerVerdict: a request whose header
// net/http cannot send (a line break or control character in the value, a
// name that is not a token) fails at once with the reason; it is never
// retried and never counts against the connector's breaker, so the
// connector's other deliveries still go.
func TestUnsendableHeaderFailsWithoutBreakerVerdict(t *testing.T) {
	t.Parallel()
	rc, srv := serve(t, func(n int, r *http.Request, w http.ResponseWriter) int { return status(w, 200, "") })
	db := openDB(t, nil)
	out := outbound("crm", srv.URL)
	out.Breaker = connectors.BreakerConfig{Failures: 2, ErrorRatio: 1, MinRequests: 1000, Window: time.Minute, Cooldown: 10 * time.Minute}
	reg := prometheus.NewRegistry()
	start(t, db, map[string]*connectors.Outbound{"crm": out}, Config{Registerer: reg})
	tests := []struct {
		name, value, wantReason string
	}{
		{"X-Subject", "hi\r\nX-Injected: 1", `header X-Subject: value holds a line break`},
		{"X-Subject", "hi\nthere", `header X-Subject: value holds a line break`},
		{"X-Subject", "nul\x00byte", `header X-Subject: value holds a control character`},
		{"X Subject", "ok", `header name "X Subject" is not a valid HTTP header name`},
	}
	var ds []*store.Delivery
	for i, tt := range tests {
		d := httpDelivery("crm", fmt.Sprintf("T%d", i), srv.URL+"/x", `{}`)
		d.Request.Headers[tt.name] = tt.value
		ds = append(ds, d)
	}
	enqueue(t, db, ds...)
	for i, tt := range tests {
		got := waitFinal(t, db, ds[i].ID)
		if got.State != store.DeliveryFailed || !strings.Contains(got.Reason, tt.wantReason) || len(got.Attempts) != 1 {
			t.Errorf("%s: %q: want failed at once with %q:\n%s", tt.name, tt.value, tt.wantReason, describe(got))
		}
	}
	good := httpDelivery("crm", "T-good", srv.URL+"/x", `{}`)
	enqueue(t, db, good)
	if got := waitFinal(t, db, good.ID); got.State != store.DeliverySucceeded {
		t.Errorf("a valid delivery after the unsendable ones:\n%s", describe(got))
	}
	if v := metricValue(t, reg, "hookline_breaker_open", map[string]string{"connector": "crm"}); v != 0 {
		t.Errorf("hookline_breaker_open = %v, want 0: unsendable requests are not the connector's failures", v)
	}
	if n := len(rc.requests()); n != 1 {
		t.Errorf("target saw %d requests, want 1 (the valid one)", n)
	}
}

// TestRunStops: Run returns after cancel; a send still running after the
// drain timeout is interrupted and goes back to the outbox uncharged.
func TestRunStops(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	defer close(release)
	arrived := make(chan struct{}, 1)
	_, srv := serve(t, func(n int, r *http.Request, w http.ResponseWriter) int {
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-release:
		}
		return -1
	})
	db := openDB(t, nil)
	out := outbound("crm", srv.URL)
	out.Timeout = time.Minute
	r := start(t, db, map[string]*connectors.Outbound{"crm": out}, Config{DrainTimeout: 100 * time.Millisecond})
	d := httpDelivery("crm", "T1", srv.URL+"/t", `{}`)
	enqueue(t, db, d)
	r.d.Notify()
	<-arrived
	r.stop(t)
	got, err := db.Delivery(d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.DeliveryPending || len(got.Attempts) != 0 || !strings.Contains(got.Reason, "interrupted by shutdown") {
		t.Fatalf("after shutdown:\n%s", describe(got))
	}
	if err := r.d.Run(context.Background()); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run: %v, want ErrRunning", err)
	}
}

// TestSetOutbounds: config reloads while deliveries flow (run with -race).
func TestSetOutbounds(t *testing.T) {
	t.Parallel()
	_, srv := serve(t, func(n int, r *http.Request, w http.ResponseWriter) int { return status(w, 200, "") })
	db := openDB(t, nil)
	r := start(t, db, map[string]*connectors.Outbound{"crm": outbound("crm", srv.URL)}, Config{})
	var ds []*store.Delivery
	for i := range 50 {
		ds = append(ds, httpDelivery("crm", fmt.Sprintf("T%d", i%5), srv.URL+"/t", `{}`))
	}
	enqueue(t, db, ds...)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			o := outbound("crm", srv.URL)
			o.Concurrency = 1 + i%4
			o.RateLimit = float64(1000 + i)
			r.d.SetOutbounds(map[string]*connectors.Outbound{"crm": o, "other": outbound("other", srv.URL)})
			time.Sleep(time.Millisecond)
		}
	}()
	for _, d := range ds {
		if got := waitFinal(t, db, d.ID); got.State != store.DeliverySucceeded {
			t.Errorf("during reloads:\n%s", describe(got))
		}
	}
	close(stop)
	wg.Wait()
	// Removing the connector: its deliveries fail with a reason.
	r.d.SetOutbounds(map[string]*connectors.Outbound{})
	d := httpDelivery("crm", "T9", srv.URL+"/t", `{}`)
	enqueue(t, db, d)
	r.d.Notify()
	if got := waitFinal(t, db, d.ID); got.State != store.DeliveryFailed || !strings.Contains(got.Reason, "unknown outbound connector") {
		t.Errorf("removed connector:\n%s", describe(got))
	}
}

func TestNewConfig(t *testing.T) {
	db := openDB(t, nil)
	if _, err := New(nil, nil, Config{}); !errors.Is(err, ErrConfig) {
		t.Errorf("nil store: %v", err)
	}
	if _, err := New(db, nil, Config{Workers: -1}); !errors.Is(err, ErrConfig) {
		t.Errorf("negative workers: %v", err)
	}
	if _, err := New(db, nil, Config{EgressAllow: []netipPrefix{{}}}); !errors.Is(err, ErrConfig) {
		t.Errorf("invalid prefix: %v", err)
	}
	reg := prometheus.NewRegistry()
	if _, err := New(db, nil, Config{Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(db, nil, Config{Registerer: reg}); err == nil {
		t.Error("registering the metrics twice should fail")
	}
	d, err := New(db, nil, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if d.cfg.Workers != 32 || d.cfg.MaxIdle != time.Second || d.cfg.DrainTimeout != 10*time.Second {
		t.Errorf("defaults: %+v", d.cfg)
	}
}

// A dead letter retried by hand gets the whole retry schedule again: the
// attempts it already had do not count against it.
func TestRetriedDeadLetterGetsAFullSchedule(t *testing.T) {
	t.Parallel()
	var retried atomic.Bool
	var sinceRetry atomic.Int64
	_, srv := serve(t, func(n int, r *http.Request, w http.ResponseWriter) int {
		// Down until the retry; then down for seven more requests (more
		// than one attempt's in-process tries), then up.
		if !retried.Load() || sinceRetry.Add(1) <= 7 {
			return status(w, 503, "down")
		}
		return status(w, 200, "ok")
	})
	db := openDB(t, nil)
	start(t, db, map[string]*connectors.Outbound{"crm": outbound("crm", srv.URL)}, Config{})
	d := httpDelivery("crm", "T1", srv.URL+"/t", `{}`)
	enqueue(t, db, d)
	dead := waitFinal(t, db, d.ID)
	if dead.State != store.DeliveryFailed {
		t.Fatalf("want a dead letter first:\n%s", describe(dead))
	}
	retried.Store(true)
	if err := db.RetryDelivery(d.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	got := waitFinal(t, db, d.ID)
	if got.State != store.DeliverySucceeded || got.RetriedFrom != len(dead.Attempts) || got.AttemptsSinceRetry() < 2 {
		t.Fatalf("after the retry, want succeeded on a later attempt of a new schedule (retried from %d):\n%s", len(dead.Attempts), describe(got))
	}
}

// A slow connector at its concurrency cap holds no more than half the
// workers: deliveries to another connector, claimed behind a backlog of
// the slow one's, go out while the slow target is still on its first few
// requests. (With every worker waiting up to a second for the slow
// connector's slot, they waited until the claimed backlog ahead of them
// had been bounced, second by second.)
func TestSlowConnectorDoesNotHoldUpTheOthers(t *testing.T) {
	t.Parallel()
	var slowDone atomic.Int64
	_, slow := serve(t, func(n int, r *http.Request, w http.ResponseWriter) int {
		time.Sleep(time.Second)
		slowDone.Add(1)
		return status(w, 200, "ok")
	})
	_, fast := serve(t, func(n int, r *http.Request, w http.ResponseWriter) int { return status(w, 200, "ok") })
	db := openDB(t, nil)
	slowOut := outbound("slow", slow.URL)
	slowOut.Concurrency = 1
	var ds []*store.Delivery
	for i := range 100 {
		ds = append(ds, httpDelivery("slow", fmt.Sprint("S", i), slow.URL+"/t", `{}`))
	}
	enqueue(t, db, ds...)
	var fastIDs []string
	for i := range 10 {
		d := httpDelivery("fast", fmt.Sprint("F", i), fast.URL+"/t", `{}`)
		enqueue(t, db, d)
		fastIDs = append(fastIDs, d.ID)
	}
	start(t, db, map[string]*connectors.Outbound{"slow": slowOut, "fast": outbound("fast", fast.URL)}, Config{Workers: 4})
	for _, id := range fastIDs {
		if got := waitFinal(t, db, id); got.State != store.DeliverySucceeded {
			t.Fatalf("fast delivery:\n%s", describe(got))
		}
	}
	if n := slowDone.Load(); n > 5 {
		t.Fatalf("the fast connector's deliveries waited for %d slow requests of a second each", n)
	}
}

// A 2xx whose body is cut off is not sent again (the target acted): an
// action that captures from the body succeeds without its captures; one
// whose success_when needs the body fails, not retried, saying why. Each
// target sees exactly one request.
func TestCutOffSuccessBodyIsNotSentAgain(t *testing.T) {
	t.Parallel()
	rc, srv := serve(t, func(n int, r *http.Request, w http.ResponseWriter) int {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(201)
		_, _ = io.WriteString(w, `{"ticket":{"id":47`)
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close() // the rest never comes
		}
		return 201
	})
	db := openDB(t, nil)
	out := outbound("crm", srv.URL)
	out.Actions["create"] = &connectors.Action{Name: "create", Method: "POST", Success: []int{201},
		Capture: map[string]string{"ticket_id": "ticket.id"}}
	out.Actions["check"] = &connectors.Action{Name: "check", Method: "POST", Success: []int{201},
		SuccessWhen: &connectors.SuccessWhen{Path: "ok", Equals: true}}
	start(t, db, map[string]*connectors.Outbound{"crm": out}, Config{})
	create := httpDelivery("crm", "T1", srv.URL+"/create", `{}`)
	create.Action = "create"
	check := httpDelivery("crm", "T2", srv.URL+"/check", `{}`)
	check.Action = "check"
	enqueue(t, db, create, check)
	if got := waitFinal(t, db, create.ID); got.State != store.DeliverySucceeded || len(got.Attempts) != 1 ||
		!strings.Contains(got.Attempts[0].Error, "read response body") || got.Captured != nil {
		t.Errorf("capture from a cut-off body:\n%s", describe(got))
	}
	if got := waitFinal(t, db, check.ID); got.State != store.DeliveryFailed || len(got.Attempts) != 1 || !strings.Contains(got.Reason, "not retried") {
		t.Errorf("success_when on a cut-off body:\n%s", describe(got))
	}
	if n := len(rc.requests()); n != 2 {
		t.Errorf("the targets saw %d requests, want 2 (one each)", n)
	}
}

// A delivery waiting for its connector's concurrency slot when the
// dispatcher stops goes back to the outbox uncharged, even if the slot
// comes free while in-flight sends drain: it does not start then.
func TestWaitingDeliveryDoesNotStartAtShutdown(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var started atomic.Int64
	_, srv := serve(t, func(n int, r *http.Request, w http.ResponseWriter) int {
		started.Add(1)
		<-release
		return status(w, 200, "ok")
	})
	db := openDB(t, nil)
	out := outbound("crm", srv.URL)
	out.Concurrency = 1
	first, second := httpDelivery("crm", "A", srv.URL+"/t", `{}`), httpDelivery("crm", "B", srv.URL+"/t", `{}`)
	enqueue(t, db, first, second)
	r := start(t, db, map[string]*connectors.Outbound{"crm": out}, Config{Workers: 2})
	waitFor(t, db, first.ID, "one in flight", func(d *store.Delivery) bool { return started.Load() == 1 })
	time.Sleep(50 * time.Millisecond) // the other waits for the slot (or, if not yet, is not started at all)
	r.cancel()
	close(release) // the first ends while the dispatcher drains: the slot comes free
	r.stop(t)
	if n := started.Load(); n != 1 {
		t.Fatalf("the target saw %d sends, want 1: the waiting delivery started during shutdown", n)
	}
	states := map[string]int{}
	for _, d := range []*store.Delivery{first, second} {
		got, err := db.Delivery(d.ID)
		if err != nil {
			t.Fatal(err)
		}
		states[fmt.Sprint(got.State, "/", len(got.Attempts))]++
	}
	if states["succeeded/1"] != 1 || states["pending/0"] != 1 {
		t.Fatalf("after shutdown: %v, want one sent and one back in the outbox uncharged", states)
	}
}

// TestStragglerIsNotTheProbe: a send that started while the breaker was
// closed and ends while the half-open probe is out is not the probe: its
// success does not close the breaker; the probe's does.
func TestStragglerIsNotTheProbe(t *testing.T) {
	t.Parallel()
	arrived := make(chan string, 8)
	release := map[string]chan struct{}{"/a": make(chan struct{}), "/c": make(chan struct{})}
	let := map[string]bool{} // released
	letGo := func(path string) { let[path] = true; close(release[path]) }
	_, srv := serve(t, func(n int, r *http.Request, w http.ResponseWriter) int {
		arrived <- r.URL.Path
		if ch := release[r.URL.Path]; ch != nil {
			<-ch
			return status(w, 200, "")
		}
		return status(w, 500, "broken")
	})
	clk := newFakeClock()
	db := openDB(t, clk.Now)
	out := outbound("crm", srv.URL)
	out.Concurrency = 2
	out.Retry.Schedule = []time.Duration{} // a 500 fails at once
	out.Retry.RetryOn = []int{}            // and is not retried in process
	out.Breaker = connectors.BreakerConfig{Failures: 1, ErrorRatio: 1, MinRequests: 1000, Window: time.Minute, Cooldown: time.Minute}
	r := start(t, db, map[string]*connectors.Outbound{"crm": out}, Config{Now: clk.Now})
	// On a failure, let held requests go before the dispatcher stops and
	// the server closes (cleanups run last in, first out).
	t.Cleanup(func() {
		for path := range release {
			if !let[path] {
				letGo(path)
			}
		}
	})
	arrive := func(want string) {
		t.Helper()
		select {
		case got := <-arrived:
			if got != want {
				t.Fatalf("request to %s, want %s", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no request to %s", want)
		}
	}
	tg := func() *target {
		r.d.mu.RLock()
		defer r.d.mu.RUnlock()
		return r.d.targets["crm"]
	}

	a := httpDelivery("crm", "A", srv.URL+"/a", `{}`)
	enqueue(t, db, a)
	arrive("/a") // the straggler-to-be, held by the target
	b := httpDelivery("crm", "B", srv.URL+"/b", `{}`)
	enqueue(t, db, b)
	arrive("/b")
	if got := waitFinal(t, db, b.ID); got.State != store.DeliveryFailed {
		t.Fatalf("B:\n%s", describe(got))
	}
	if !tg().breakerOpen() {
		t.Fatal("breaker not open after a failure with Failures=1")
	}

	clk.Advance(2 * time.Minute) // cool-down over: the next send is the probe
	c := httpDelivery("crm", "C", srv.URL+"/c", `{}`)
	enqueue(t, db, c)
	arrive("/c")
	letGo("/a") // the straggler succeeds while the probe is out
	if got := waitFinal(t, db, a.ID); got.State != store.DeliverySucceeded {
		t.Fatalf("A:\n%s", describe(got))
	}
	if !tg().breakerOpen() {
		t.Fatal("the straggler's success closed the breaker while the probe was out")
	}
	letGo("/c")
	if got := waitFinal(t, db, c.ID); got.State != store.DeliverySucceeded {
		t.Fatalf("C:\n%s", describe(got))
	}
	if tg().breakerOpen() {
		t.Fatal("the probe's success did not close the breaker")
	}
}

// A delivery the gateway withdraws (its REST-hook subscription was
// removed) is cancelled with the reason and never sent.
func TestWithdrawnDeliveryIsNotSent(t *testing.T) {
	rc, srv := serve(t, func(n int, r *http.Request, w http.ResponseWriter) int { return status(w, 200, "ok") })
	db := openDB(t, nil)
	start(t, db, map[string]*connectors.Outbound{"crm": outbound("crm", srv.URL)}, Config{
		Withdrawn: func(d *store.Delivery) string {
			if d.Reference == "gone" {
				return "unsubscribed"
			}
			return ""
		},
	})
	gone, kept := httpDelivery("crm", "gone", srv.URL+"/x", `{}`), httpDelivery("crm", "kept", srv.URL+"/y", `{}`)
	enqueue(t, db, gone)
	enqueue(t, db, kept)
	if got := waitFinal(t, db, gone.ID); got.State != store.DeliveryCancelled || got.Reason != "unsubscribed" || len(got.Attempts) != 0 {
		t.Fatalf("withdrawn delivery:\n%s", describe(got))
	}
	if got := waitFinal(t, db, kept.ID); got.State != store.DeliverySucceeded {
		t.Fatalf("other delivery:\n%s", describe(got))
	}
	for _, r := range rc.requests() {
		if strings.HasSuffix(r.path, "/x") {
			t.Fatalf("the withdrawn delivery was sent: %s", r.path)
		}
	}
}
