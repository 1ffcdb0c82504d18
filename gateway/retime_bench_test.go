package gateway

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hookline/hookline/event"
)

// BenchmarkRetime measures a retime job over 20,000 armed timers of one
// edited rule (every timer moves), and the walk when nothing changed.
func BenchmarkRetime(b *testing.B) {
	const n = 20000
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	clock := newFakeClock(t0)
	cfg := timerConfigB(b, rulesFile(pendingRule("pending", "48h")))
	srv, err := New(Options{ConfigPath: cfg, DataDir: b.TempDir(), Env: testEnv(nil), Now: clock.now})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	for i := 0; i < n; i += 2000 {
		var evs []*event.Event
		for j := i; j < i+2000; j++ {
			ev := pendingTicket(fmt.Sprintf("T-%06d", j), t0)
			ev.ID = srv.ids.New(t0)
			evs = append(evs, ev)
		}
		if err := srv.ApplyEvents(evs); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := srv.retime.run(context.Background()); err != nil {
		b.Fatal(err)
	}
	durs := []string{"1h", "2h"}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if err := os.WriteFile(filepath.Join(cfg, "rules", "timers.yaml"), []byte(rulesFile(pendingRule("pending", durs[i%2]))), 0o644); err != nil {
			b.Fatal(err)
		}
		srv.retime.mu.Lock()
		srv.retime.base = nil
		srv.retime.mu.Unlock()
		if err := srv.Reload(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		rep, err := srv.retime.run(context.Background())
		if err != nil || rep.Counts["pending"].Moved != n {
			b.Fatalf("%+v %v", rep.Counts["pending"], err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/timer")
}

// timerConfigB is timerConfig for benchmarks.
func timerConfigB(b *testing.B, rules string) string {
	b.Helper()
	dir := b.TempDir()
	generic, err := os.ReadFile("../configs/connectors/generic.yaml")
	if err != nil {
		b.Fatal(err)
	}
	files := map[string]string{
		"connectors/generic.yaml": string(generic),
		"rules/timers.yaml":       rules,
		"gateway.yaml":            "listen: \"127.0.0.1:0\"\nconnectors: [\"connectors/*.yaml\"]\nrules: [\"rules/*.yaml\"]\n",
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return dir
}
