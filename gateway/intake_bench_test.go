package gateway

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookline/hookline/store"
)

// The gateway benchmarks run a real gateway on loopback with the benchmark
// configs (bench/configs: the shipped generic connector and one rule) and
// post fixture-like ticket updates to /hooks/generic, each with its own id.
// They are the profiling side of bench/load (which drives the built
// binary): run them with -cpuprofile, e.g.
//
//	go test ./gateway -run '^$' -bench 'Intake/conns=64' -benchtime 100000x -cpuprofile /tmp/cpu.out
//	go tool pprof -top /tmp/cpu.out
const benchConfigs = "../bench/configs"

// benchBody is one webhook of the benchmark: status "new" matches no rule,
// "open" matches the benchmark rule (one delivery). The ticket is ref; a
// ticket posted again (ref != seq) carries seq as "n", so that no two
// bodies are the same (the generic connector dedupes by body hash).
func benchBody(dst []byte, run string, ref, seq int64, status string) []byte {
	dst = append(dst, `{"type":"ticket.updated","id":"`...)
	dst = append(dst, run...)
	dst = append(dst, '-')
	dst = strconv.AppendInt(dst, ref, 10)
	if ref != seq {
		dst = append(dst, `","n":"`...)
		dst = strconv.AppendInt(dst, seq, 10)
	}
	dst = append(dst, `","status":"`...)
	dst = append(dst, status...)
	return append(dst, `","priority":"high","subject":"Order 4711 has not arrived yet",`+
		`"text":"Hello, I ordered a pair of running shoes two weeks ago and the tracking page still says the parcel is at the depot. Could you check what happened?",`+
		`"tags":["shipping","vip"],"group":"support-tier-1","owner":"agent-17","channel":"email",`+
		`"customer":{"name":"Ana Ruiz","email":"ana.ruiz@example.com","phone":"+34600111222"},`+
		`"actor":{"type":"customer","id":"cust-5521","name":"Ana Ruiz"},`+
		`"order_id":"4711","occurred_at":"2026-03-02T09:15:00Z"}`...)
}

// rawPoster is a minimal keep-alive HTTP/1.1 client: the benchmark shares
// the cores with the gateway, and net/http's client would cost more CPU
// than the handler under test.
type rawPoster struct {
	nc   net.Conn
	r    *bufio.Reader
	head []byte
}

func newRawPoster(addr, path string) (*rawPoster, error) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: ", path, addr)
	return &rawPoster{nc: nc, r: bufio.NewReader(nc), head: []byte(head)}, nil
}

func (p *rawPoster) post(req, body []byte) ([]byte, int, error) {
	req = append(req[:0], p.head...)
	req = strconv.AppendInt(req, int64(len(body)), 10)
	req = append(req, "\r\n\r\n"...)
	req = append(req, body...)
	if _, err := p.nc.Write(req); err != nil {
		return req, 0, err
	}
	line, err := p.r.ReadSlice('\n')
	if err != nil || len(line) < 12 {
		return req, 0, fmt.Errorf("status line %q: %v", line, err)
	}
	status, _ := strconv.Atoi(string(line[9:12]))
	length := 0
	for {
		line, err := p.r.ReadSlice('\n')
		if err != nil {
			return req, 0, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
			length, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
		}
	}
	_, err = p.r.Discard(length)
	return req, status, err
}

// benchGateway starts the benchmark gateway; sink is GENERIC_TARGET_URL.
func benchGateway(b *testing.B, sink string) *testServer {
	b.Helper()
	return startServer(b, benchConfigs, map[string]string{"GENERIC_TARGET_URL": sink}, nil)
}

// postLoad posts n webhooks over conns connections and returns each ack's
// latency. With refs > 0 they update refs tickets in turn; with 0 each is
// a ticket of its own.
func postLoad(b *testing.B, addr string, conns, n, refs int, status string) []time.Duration {
	b.Helper()
	run := fmt.Sprintf("G%x", time.Now().UnixNano())
	var seq atomic.Int64
	lats := make([][]time.Duration, conns)
	var wg sync.WaitGroup
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := newRawPoster(addr, "/hooks/generic")
			if err != nil {
				b.Error(err)
				return
			}
			defer p.nc.Close()
			var req, body []byte
			for {
				i := seq.Add(1)
				if i > int64(n) {
					return
				}
				ref := i
				if refs > 0 {
					ref = 1 + (i-1)%int64(refs)
				}
				body = benchBody(body[:0], run, ref, i, status)
				t0 := time.Now()
				var st int
				req, st, err = p.post(req, body)
				if err != nil || st != http.StatusAccepted {
					b.Errorf("post: status %d, %v", st, err)
					return
				}
				lats[w] = append(lats[w], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	return slices.Concat(lats...)
}

// reportLatency adds p50 and p99 in milliseconds to the benchmark's output.
func reportLatency(b *testing.B, prefix string, lats []time.Duration) {
	if len(lats) == 0 {
		return
	}
	slices.Sort(lats)
	at := func(p float64) float64 {
		return float64(lats[min(len(lats)-1, int(p*float64(len(lats))))].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.50), prefix+"p50-ms")
	b.ReportMetric(at(0.99), prefix+"p99-ms")
}

// BenchmarkIntake posts b.N webhooks to a running gateway (fsync on) over
// 16, 64 and 256 connections and reports durable acks/s and the ack
// latency. The pipeline maps and stores every event behind the acks, as it
// does in production; the events match no rule.
func BenchmarkIntake(b *testing.B) {
	for _, conns := range []int{16, 64, 256} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			ts := benchGateway(b, "http://127.0.0.1:9/unused")
			b.ReportAllocs()
			b.ResetTimer()
			lats := postLoad(b, ts.Addr(), conns, b.N, 0, "new")
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "acks/s")
			reportLatency(b, "ack-", lats)
		})
	}
}

// BenchmarkWholePath posts b.N webhooks that the benchmark rule turns into
// one delivery each, over 64 connections as fast as they are acked, and
// measures until a local sink has received every delivery: whole-path
// events/s (webhook -> inbox -> pipeline -> outbox -> dispatcher -> sink).
// Every webhook is a new ticket.
func BenchmarkWholePath(b *testing.B) { wholePath(b, 0) }

// BenchmarkWholePathUpdates is BenchmarkWholePath with the webhooks
// updating 10,000 tickets in turn, so that past the first 10,000 each
// event loads, diffs and rewrites a stored snapshot, as on a help desk
// where most webhooks update tickets that exist (4 updates per ticket at
// 40,000 events keeps under the firing cap of 20 per hour).
func BenchmarkWholePathUpdates(b *testing.B) { wholePath(b, 10000) }

func wholePath(b *testing.B, refs int) {
	var got atomic.Int64
	done := make(chan struct{})
	var want atomic.Int64
	sink := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
		if got.Add(1) == want.Load() {
			close(done)
		}
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = sink.Serve(ln) }()
	defer sink.Shutdown(context.Background())
	ts := benchGateway(b, "http://"+ln.Addr().String()+"/hookline")
	want.Store(int64(b.N))
	b.ReportAllocs()
	b.ResetTimer()
	postLoad(b, ts.Addr(), 64, b.N, refs, "open")
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("sink got %d of %d deliveries", got.Load(), b.N)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	st, err := ts.Store().Stats()
	if err != nil {
		b.Fatal(err)
	}
	if st.Deliveries[store.DeliverySucceeded] < b.N-1000 {
		b.Logf("store: %+v", st)
	}
}
