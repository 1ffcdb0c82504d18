package delivery

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hookline/hookline/connectors"
	"github.com/hookline/hookline/store"
)

// benchDispatch enqueues b.N deliveries spread over refs references and
// measures until a local sink answering 200 at once has them all and the
// store has recorded every outcome.
func benchDispatch(b *testing.B, refs, workers int) {
	var hits atomic.Int64
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	defer sink.Close()
	db := openDB(b, nil)
	out := outbound("sink", sink.URL)
	out.Concurrency = workers
	const batch = 1000
	for i := 0; i < b.N; i += batch {
		var ds []*store.Delivery
		for j := i; j < min(i+batch, b.N); j++ {
			ref := ""
			if refs > 0 {
				ref = fmt.Sprintf("T%d", j%refs)
			}
			ds = append(ds, httpDelivery("sink", ref, sink.URL+"/t", `{"status":"solved"}`))
		}
		enqueue(b, db, ds...)
	}
	b.ResetTimer()
	cpu0 := cpuTime()
	t0 := time.Now()
	start(b, db, map[string]*connectors.Outbound{"sink": out}, Config{Workers: workers, MaxIdle: 10 * time.Millisecond})
	for {
		st, err := db.Stats()
		if err != nil {
			b.Fatal(err)
		}
		if st.Deliveries[store.DeliverySucceeded] == b.N {
			break
		}
		if st.Deliveries[store.DeliveryFailed] > 0 {
			b.Fatalf("deliveries failed: %+v", st)
		}
		time.Sleep(2 * time.Millisecond)
	}
	el := time.Since(t0)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "deliveries/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/delivery")
	if got := hits.Load(); got != int64(b.N) {
		b.Fatalf("sink got %d requests, want %d", got, b.N)
	}
}

// BenchmarkDispatch measures deliveries per second to a local sink.
func BenchmarkDispatch(b *testing.B) {
	for _, c := range []struct{ refs, workers int }{{0, 32}, {0, 128}, {1000, 128}, {1, 32}} {
		b.Run(fmt.Sprintf("refs=%d/workers=%d", c.refs, c.workers), func(b *testing.B) { benchDispatch(b, c.refs, c.workers) })
	}
}

// cpuTime is the process's user+system CPU time so far (the sink and the
// store included): on a shared machine it is steadier than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
