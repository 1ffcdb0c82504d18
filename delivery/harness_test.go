package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hookline/hookline/connectors"
	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/store"
)

// fakeClock is a clock shared by the store and the dispatcher that tests
// move by hand: frozen, or running with real time plus the jumps.
type fakeClock struct {
	mu      sync.Mutex
	t       time.Time
	running bool
	since   time.Time // real time of the last reading base (running clocks)
}

// newFakeClock returns a frozen clock an hour ahead of real time.
func newFakeClock() *fakeClock { return &fakeClock{t: time.Now().Add(time.Hour).Truncate(time.Second)} }

// newRunningClock returns a clock that runs with real time, an hour ahead.
func newRunningClock() *fakeClock {
	c := newFakeClock()
	c.running, c.since = true, time.Now()
	return c
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		return c.t.Add(time.Since(c.since))
	}
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// loopback is the egress allow list of the tests.
var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// noJitter is a Rand that draws the middle of the jitter range (factor 1).
func noJitter() float64 { return 0.5 }

// openDB opens a real bbolt store in a temp dir.
func openDB(t testing.TB, now func() time.Time) *store.DB {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "hookline.db"), store.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// outbound returns a test connector posting to base with fast retries.
func outbound(name, base string) *connectors.Outbound {
	return &connectors.Outbound{
		Name:        name,
		BaseURL:     base,
		Auth:        connectors.Auth{Type: connectors.AuthBearer, Token: "s3cret"},
		Timeout:     5 * time.Second,
		Concurrency: 16,
		Retry: connectors.RetryPolicy{
			Schedule:      []time.Duration{10 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond},
			Jitter:        0.2,
			MaxRetryAfter: time.Hour,
			RetryOn:       []int{408, 429, 500, 502, 503, 504},
		},
		Breaker: connectors.BreakerConfig{Failures: 1000, ErrorRatio: 1, MinRequests: 1000000, Window: time.Minute, Cooldown: time.Second},
		Actions: map[string]*connectors.Action{
			"update": {Name: "update", Method: "POST"},
		},
	}
}

// httpDelivery returns an update delivery of connector for reference.
func httpDelivery(connector, reference, url string, body string) *store.Delivery {
	return &store.Delivery{
		Connector: connector,
		Entity:    "ticket",
		Reference: reference,
		RuleID:    "rule-1",
		EventID:   "ev-1",
		Action:    "update",
		Update:    event.Update{Kind: event.KindUpdateEntity, Connector: connector, Entity: "ticket", Reference: reference, Hops: 1},
		Request: store.Request{
			Method:  "POST",
			URL:     url,
			Headers: map[string]string{"Content-Type": "application/json"},
			Body:    []byte(body),
		},
		Hops: 1,
	}
}

// enqueue adds deliveries in one transaction (ids assigned in order).
func enqueue(t testing.TB, db *store.DB, ds ...*store.Delivery) {
	t.Helper()
	err := db.Update(func(tx *store.Tx) error {
		for _, d := range ds {
			if err := tx.AddDelivery(d); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// running is a dispatcher running in the background.
type running struct {
	d      *Dispatcher
	cancel context.CancelFunc
	done   chan error
}

// start builds and runs a dispatcher; it is stopped at cleanup.
func start(t testing.TB, db *store.DB, outs map[string]*connectors.Outbound, cfg Config) *running {
	t.Helper()
	if cfg.Rand == nil {
		cfg.Rand = noJitter
	}
	if cfg.EgressAllow == nil {
		cfg.EgressAllow = loopback
	}
	if cfg.MaxIdle == 0 {
		cfg.MaxIdle = 50 * time.Millisecond
	}
	if cfg.Logger == nil && testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	d, err := New(db, outs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{d: d, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- d.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels Run and waits for it to return.
func (r *running) stop(t testing.TB) {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok && err != nil {
			t.Errorf("Run: %v", err)
		}
		if ok {
			close(r.done)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// waitFor polls the delivery until cond holds or the deadline passes.
func waitFor(t testing.TB, db *store.DB, id string, what string, cond func(*store.Delivery) bool) *store.Delivery {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last *store.Delivery
	for time.Now().Before(deadline) {
		d, err := db.Delivery(id)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		if d != nil {
			last = d
			if cond(d) {
				return d
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("delivery %s: timed out waiting for %s; last: %s", id, what, describe(last))
	return nil
}

// waitFinal waits until the delivery is succeeded, failed or cancelled.
func waitFinal(t testing.TB, db *store.DB, id string) *store.Delivery {
	t.Helper()
	return waitFor(t, db, id, "a final state", func(d *store.Delivery) bool {
		return d.State == store.DeliverySucceeded || d.State == store.DeliveryFailed || d.State == store.DeliveryCancelled
	})
}

func describe(d *store.Delivery) string {
	if d == nil {
		return "<none>"
	}
	s := fmt.Sprintf("state=%s reason=%q next_at=%s attempts=%d", d.State, d.Reason, d.NextAt.Format(time.RFC3339Nano), len(d.Attempts))
	for i, a := range d.Attempts {
		s += fmt.Sprintf("\n  #%d status=%d error=%q response=%q", i, a.Status, a.Error, a.Response)
	}
	return s
}

type netipPrefix = netip.Prefix

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
