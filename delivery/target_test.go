package delivery

import (
	"testing"
	"time"

	"github.com/hookline/hookline/connectors"
)

// TestTargetAdmit checks the order of the limits and that refusals take
// nothing: a concurrency slot, a token, the breaker's probe.
func TestTargetAdmit(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	out := &connectors.Outbound{
		Name: "crm", Concurrency: 2, RateLimit: 10, Burst: 1,
		Breaker: connectors.BreakerConfig{Failures: 1, Cooldown: time.Minute},
	}
	tg := newTarget("crm", out, nil, noJitter, time.Now, t0)

	a := tg.admit(t0)
	if !a.ok {
		t.Fatalf("first admit refused: %+v", a)
	}
	// Bucket empty: held back, spread one token interval (100ms) apart.
	for i, want := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond} {
		a := tg.admit(t0)
		if a.ok || a.full || a.reason != reasonRate || a.wait != want {
			t.Fatalf("rate refusal %d: %+v, want wait %v", i, a, want)
		}
	}
	// A token later, one more goes: two in flight, the cap.
	if a := tg.admit(t0.Add(100 * time.Millisecond)); !a.ok {
		t.Fatalf("admit after a token interval: %+v", a)
	}
	a = tg.admit(t0.Add(time.Second))
	if a.ok || !a.full || a.reason != reasonConcurrency || a.freed == nil {
		t.Fatalf("at the cap: %+v", a)
	}
	// Giving a slot back wakes the waiters; the failure opens the breaker.
	if open := tg.done(t0.Add(time.Second), verdictFailure); !open {
		t.Fatal("breaker not open after a failure with Failures=1")
	}
	select {
	case <-a.freed:
	default:
		t.Fatal("freed not closed when a slot was given back")
	}
	a = tg.admit(t0.Add(2 * time.Second))
	if a.ok || a.full || a.reason != reasonBreaker+"open" || a.wait != 59*time.Second {
		t.Fatalf("breaker open: %+v", a)
	}
	// The breaker refusal did not use the token it found.
	if tokens := tg.limiter.TokensAt(t0.Add(2 * time.Second)); tokens < 1 {
		t.Fatalf("breaker refusal consumed a token: %v left", tokens)
	}
	tg.done(t0.Add(2*time.Second), verdictSuccess) // the straggler changes nothing
	if !tg.breakerOpen() {
		t.Fatal("a success while open closed the breaker")
	}
	// After the cool-down one probe goes; its success closes the breaker.
	p := tg.admit(t0.Add(62 * time.Second))
	if !p.ok {
		t.Fatalf("probe refused: %+v", p)
	}
	if a := tg.admit(t0.Add(63 * time.Second)); a.ok || a.reason != reasonBreaker+"half-open" {
		t.Fatalf("second request during the probe: %+v", a)
	}
	if open := tg.done(t0.Add(63*time.Second), verdictSuccess); open {
		t.Fatal("probe success did not close the breaker")
	}

	// Reload: a lower cap applies at once, the in-flight count carries over.
	tg.configure(&connectors.Outbound{Name: "crm", Concurrency: 1}, nil, noJitter, time.Now, t0.Add(70*time.Second))
	if a := tg.admit(t0.Add(70 * time.Second)); !a.ok {
		t.Fatalf("after reload: %+v", a)
	}
	if a := tg.admit(t0.Add(70 * time.Second)); !a.full {
		t.Fatalf("after reload, cap 1: %+v", a)
	}
	if tg.limiter != nil {
		t.Fatal("rate limit 0 after reload should remove the limiter")
	}
}
