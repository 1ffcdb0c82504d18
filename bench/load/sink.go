package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/gjson"
)

// sink stands in for a platform's API: it answers every POST 200 at once
// and records when the delivery of each benchmark webhook first arrived,
// found by the reference in the delivered body ("<run>-<seq>").
type sink struct {
	run    string
	clock  *clock
	at     []atomic.Int64 // first receipt per seq, nanoseconds since clock start + 1 (0: none)
	srv    *http.Server
	ln     net.Listener
	bufs   sync.Pool
	first  atomic.Int64 // first receipts
	dups   atomic.Int64 // receipts of a seq already received (at-least-once retries)
	others atomic.Int64 // bodies without a reference of this run
}

// newSink listens on addr (port 0 picks one) for a run's deliveries.
func newSink(addr, run string, c *clock, capacity int) (*sink, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("sink listen %s: %w", addr, err)
	}
	s := &sink{run: run, clock: c, at: make([]atomic.Int64, capacity), ln: ln}
	s.bufs.New = func() any { return new(bytes.Buffer) }
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Println("sink:", err)
		}
	}()
	return s, nil
}

// URL is the sink's base URL.
func (s *sink) URL() string { return "http://" + s.ln.Addr().String() }

func (s *sink) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
}

// ServeHTTP records one delivery.
func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := s.clock.now()
	buf := s.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	_, _ = io.Copy(buf, r.Body)
	s.record(buf.Bytes(), now)
	s.bufs.Put(buf)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", "2")
	_, _ = w.Write([]byte("{}"))
}

// record notes the receipt of body at now (clock nanoseconds).
func (s *sink) record(body []byte, now int64) {
	seq, ok := s.seqOf(gjson.GetBytes(body, "reference").Str)
	if !ok {
		s.others.Add(1)
		return
	}
	if s.at[seq].CompareAndSwap(0, now+1) {
		s.first.Add(1)
		return
	}
	s.dups.Add(1)
}

// seqOf parses "<run>-<seq>" for this run.
func (s *sink) seqOf(ref string) (int, bool) {
	rest, ok := strings.CutPrefix(ref, s.run)
	if !ok || len(rest) < 2 || rest[0] != '-' {
		return 0, false
	}
	n, err := strconv.Atoi(rest[1:])
	if err != nil || n < 0 || n >= len(s.at) {
		return 0, false
	}
	return n, true
}

// receivedAt returns when seq's delivery first arrived (clock nanoseconds).
func (s *sink) receivedAt(seq int) (int64, bool) {
	v := s.at[seq].Load()
	return v - 1, v != 0
}

// clock gives monotonic nanoseconds since its start, cheap to store.
type clock struct{ t0 time.Time }

func newClock() *clock { return &clock{t0: time.Now()} }

func (c *clock) now() int64 { return int64(time.Since(c.t0)) }
