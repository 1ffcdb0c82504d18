package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookline/hookline/gateway"
	"github.com/hookline/hookline/internal/yamlconf"
)

// startGateway runs a real gateway with the benchmark configs on a
// loopback port; its deliveries go to sinkURL.
func startGateway(t testing.TB, sinkURL string) string {
	t.Helper()
	srv, err := gateway.New(gateway.Options{
		ConfigPath: "../configs/gateway.yaml",
		Listen:     "127.0.0.1:0",
		DataDir:    t.TempDir(),
		Env:        yamlconf.MapEnv(map[string]string{"GENERIC_TARGET_URL": sinkURL + "/hookline"}),
	})
	if err != nil {
		t.Fatalf("start gateway: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway: %v", err)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for srv.Addr() == "" {
		if time.Now().After(deadline) {
			t.Fatal("gateway did not start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return srv.Addr()
}

// TestWholePathRunMatchesEveryDelivery drives a real gateway for about a
// second, open loop: every acknowledged webhook's delivery reaches the
// sink and is matched to it by reference.
func TestWholePathRunMatchesEveryDelivery(t *testing.T) {
	cfg := config{Mode: "whole", Conns: 8, Duration: 800 * time.Millisecond, Warmup: 200 * time.Millisecond,
		Rate: 200, SinkAddr: "127.0.0.1:0", Drain: 20 * time.Second, Connector: "generic", Label: "test"}
	// The gateway needs the sink's address, so it starts once the sink is up.
	cfg.sinkReady = func(url string) (string, error) { return startGateway(t, url), nil }
	var out bytes.Buffer
	rep, err := run(cfg, &out)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors != 0 || rep.FirstError != "" {
		t.Fatalf("errors: %d, first: %s", rep.Errors, rep.FirstError)
	}
	// 200/s for 0.8 s measured (plus the warm-up): about 160 webhooks.
	if rep.Acks < 120 || rep.Acks > 170 {
		t.Fatalf("acks %d, want about 160 (200/s for 0.8 s)", rep.Acks)
	}
	if rep.Undelivered != 0 || rep.Duplicates != 0 || rep.Delivered < rep.Acks {
		t.Fatalf("delivered %d of %d acked (+warm-up), undelivered %d, duplicates %d", rep.Delivered, rep.Acks, rep.Undelivered, rep.Duplicates)
	}
	if rep.EndToEnd.N != rep.Acks || rep.EndToEnd.P50 <= 0 || rep.EndToEnd.Max < rep.EndToEnd.P99 {
		t.Fatalf("end-to-end latencies %+v for %d acks", rep.EndToEnd, rep.Acks)
	}
	if !strings.Contains(out.String(), "end to end") {
		t.Fatalf("report:\n%s", out.String())
	}

	// The JSON line and the table made from it.
	file := filepath.Join(t.TempDir(), "results.jsonl")
	if err := appendJSON(file, rep); err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	if err := printTable(file, &table); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(table.String()), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[2], "| whole test | 8 | 200 |") {
		t.Fatalf("table:\n%s", table.String())
	}
}

// TestIntakeRun drives intake closed loop for half a second.
func TestIntakeRun(t *testing.T) {
	addr := startGateway(t, "http://127.0.0.1:9")
	var out bytes.Buffer
	rep, err := run(config{Mode: "intake", Target: addr, Connector: "generic", Conns: 4,
		Duration: 500 * time.Millisecond, Warmup: 100 * time.Millisecond, PID: os.Getpid()}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors != 0 || rep.Acks == 0 || rep.Ack.N != rep.Acks || rep.Ack.P50 <= 0 || rep.AcksPerSec <= 0 {
		t.Fatalf("report %+v", rep)
	}
	if rep.GatewayCPU < 0 {
		t.Fatalf("gateway CPU not measured for pid %d", os.Getpid())
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	tests := []config{
		{Mode: "intake", Conns: 0, Duration: time.Second},
		{Mode: "intake", Conns: 1, Duration: 0},
		{Mode: "whole", Conns: 1, Duration: time.Second, Rate: -1},
		{Mode: "nope", Conns: 1, Duration: time.Second},
	}
	for _, cfg := range tests {
		if _, err := run(cfg, &bytes.Buffer{}); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
}

func TestSinkSeqOf(t *testing.T) {
	s := &sink{run: "Babc", at: make([]atomic.Int64, 10)}
	tests := []struct {
		ref  string
		seq  int
		okay bool
	}{
		{"Babc-3", 3, true},
		{"Babc-9", 9, true},
		{"Babc-10", 0, false}, // past the capacity
		{"Babd-3", 0, false},  // another run
		{"Babc-", 0, false},
		{"Babc-x", 0, false},
		{"Babc3", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		seq, ok := s.seqOf(tt.ref)
		if ok != tt.okay || seq != tt.seq {
			t.Errorf("seqOf(%q) = %d, %v; want %d, %v", tt.ref, seq, ok, tt.seq, tt.okay)
		}
	}
}
