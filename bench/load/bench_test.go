package main

import (
	"bytes"
	"os"
	"strconv"
	"testing"
	"time"
)

// BenchmarkWholePathOpenLoop runs the whole-path scenario (open loop at
// 5,000 webhooks/s, or HOOKLINE_BENCH_RATE, for 5 s) against a gateway in this process, so that
// -cpuprofile shows where the gateway spends its time under that load:
//
//	go test ./bench/load -run '^$' -bench WholePathOpenLoop -benchtime 1x -cpuprofile /tmp/whole.out
func BenchmarkWholePathOpenLoop(b *testing.B) {
	for range b.N {
		cfg := config{Mode: "whole", Conns: 64, Duration: 5 * time.Second, Warmup: time.Second,
			Rate: benchRate(), SinkAddr: "127.0.0.1:0", Drain: time.Minute, Connector: "generic"}
		cfg.sinkReady = func(url string) (string, error) { return startGateway(b, url), nil }
		var out bytes.Buffer
		rep, err := run(cfg, &out)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(rep.AcksPerSec, "acks/s")
		b.ReportMetric(rep.DeliveredPerSec, "delivered/s")
		b.ReportMetric(rep.EndToEnd.P99, "e2e-p99-ms")
		b.Log("\n" + out.String())
	}
}

// benchRate is the offered rate of BenchmarkWholePathOpenLoop:
// HOOKLINE_BENCH_RATE, default 5000 webhooks/s.
func benchRate() float64 {
	if v, err := strconv.ParseFloat(os.Getenv("HOOKLINE_BENCH_RATE"), 64); err == nil && v > 0 {
		return v
	}
	return 5000
}
