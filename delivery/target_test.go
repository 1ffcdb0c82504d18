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

	a0 := tg.admit(t0)
	if !a0.ok {
		t.Fatalf("first admit refused: %+v", a0)
	}
	// Bucket empty: held back, spread one token interval (100ms) apart.
	for i, want := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond} {
		a := tg.admit(t0)
		if a.ok || a.full || a.reason != reasonRate || a.wait != want {
			t.Fatalf("rate refusal %d: %+v, want wait %v", i, a, want)
		}
	}
	// A token later, one more goes: two in flight, the cap.
	a1 := tg.admit(t0.Add(100 * time.Millisecond))
	if !a1.ok {
		t.Fatalf("admit after a token interval: %+v", a1)
	}
	a := tg.admit(t0.Add(time.Second))
	if a.ok || !a.full || a.reason != reasonConcurrency {
		t.Fatalf("at the cap: %+v", a)
	}
	// Giving a slot back hands it to the waiter; the failure opens the
	// breaker, so the waiter is refused and the slot is free again.
	w := tg.queueSlot()
	if open := tg.done(t0.Add(time.Second), a0.ticket, verdictFailure, 0); !open {
		t.Fatal("breaker not open after a failure with Failures=1")
	}
	select {
	case <-w.ready:
	default:
		t.Fatal("the waiter got no slot when one was given back")
	}
	a = tg.admitGranted(t0.Add(2 * time.Second))
	if a.ok || a.full || a.reason != reasonBreaker+"open" || a.wait != 59*time.Second {
		t.Fatalf("breaker open: %+v", a)
	}
	if tg.inflight != 1 {
		t.Fatalf("in flight %d after the refused waiter, want 1", tg.inflight)
	}
	if a := tg.admit(t0.Add(2 * time.Second)); a.ok || a.full || a.reason != reasonBreaker+"open" {
		t.Fatalf("newcomer while the breaker is open: %+v", a)
	}
	// The breaker refusal did not use the token it found.
	if tokens := tg.limiter.TokensAt(t0.Add(2 * time.Second)); tokens < 1 {
		t.Fatalf("breaker refusal consumed a token: %v left", tokens)
	}
	// After the cool-down one probe goes; its success closes the breaker.
	p := tg.admit(t0.Add(62 * time.Second))
	if !p.ok {
		t.Fatalf("probe refused: %+v", p)
	}
	// The straggler (a1, sent before the breaker opened) ends during the
	// probe: its success is not the probe's.
	if open := tg.done(t0.Add(63*time.Second), a1.ticket, verdictSuccess, 0); !open {
		t.Fatal("a straggler's success during the probe closed the breaker")
	}
	if a := tg.admit(t0.Add(63 * time.Second)); a.ok || a.reason != reasonBreaker+"half-open" {
		t.Fatalf("second request during the probe: %+v", a)
	}
	if open := tg.done(t0.Add(63*time.Second), p.ticket, verdictSuccess, 0); open {
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

// TestTargetSlotQueue checks the queue of deliveries waiting at the
// concurrency cap: a slot given back goes to the longest waiting, and only
// to it; newcomers do not pass the queue; a waiter that leaves frees its
// place, or the slot it was handed; a higher cap on reload lets waiters
// go at once.
func TestTargetSlotQueue(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	out := &connectors.Outbound{Name: "crm", Concurrency: 2}
	tg := newTarget("crm", out, nil, noJitter, time.Now, t0)
	ready := func(w *slotWaiter) bool {
		select {
		case <-w.ready:
			return true
		default:
			return false
		}
	}
	for i := range 2 {
		if a := tg.admit(t0); !a.ok {
			t.Fatalf("admit %d under the cap: %+v", i, a)
		}
	}
	w1, w2, w3 := tg.queueSlot(), tg.queueSlot(), tg.queueSlot()
	if ready(w1) || ready(w2) || ready(w3) {
		t.Fatal("a waiter got a slot while the cap was reached")
	}
	// With sends of 800 ms on 2 slots, a fourth waiter would get its slot
	// in about 1.6 s: it is sent back, due then, and not queued.
	tg.latency = 800 * time.Millisecond
	if a := tg.admit(t0); a.ok || a.full || a.wait != 1600*time.Millisecond || len(tg.waiters) != 3 {
		t.Fatalf("a delivery whose slot would come after %s: %+v, %d waiting; want sent back for 1.6s, not queued", maxSlotWait, a, len(tg.waiters))
	}
	tg.latency = 0
	tg.done(t0, 0, verdictSuccess, 0)
	if !ready(w1) || ready(w2) || ready(w3) {
		t.Fatalf("one slot back: ready %v %v %v, want only the first", ready(w1), ready(w2), ready(w3))
	}
	if tg.inflight != 2 {
		t.Fatalf("in flight %d after the hand-off, want 2", tg.inflight)
	}
	// w2 gives up before its turn: w3 is next.
	if tg.leaveSlot(w2, true) {
		t.Fatal("leaveSlot reported a slot w2 was never handed")
	}
	if a := tg.admitGranted(t0); !a.ok { // w1 sends
		t.Fatalf("granted waiter refused: %+v", a)
	}
	tg.done(t0, 0, verdictSuccess, 0)
	if ready(w2) || !ready(w3) {
		t.Fatal("the slot did not skip the waiter that left")
	}
	// A newcomer finds the cap reached while w4 waits, even right after a
	// slot comes back: it goes to w4.
	w4 := tg.queueSlot()
	tg.done(t0, 0, verdictSuccess, 0)
	if !ready(w4) {
		t.Fatal("w4 not handed the slot")
	}
	if a := tg.admit(t0); a.ok || !a.full {
		t.Fatalf("newcomer at the cap: %+v", a)
	}
	// A waiter handed a slot just as it gives up and does not keep it
	// passes the slot on.
	w5 := tg.queueSlot()
	tg.done(t0, 0, verdictSuccess, 0) // w3's send ends: w5 gets the slot
	if !tg.leaveSlot(w5, false) {
		t.Fatal("leaveSlot did not report the slot w5 was handed")
	}
	if tg.inflight != 1 {
		t.Fatalf("in flight %d, want 1 (w4 only)", tg.inflight)
	}
	// Reload with a higher cap: queued waiters go at once.
	if a := tg.admit(t0); !a.ok {
		t.Fatalf("admit with a free slot: %+v", a)
	}
	w6, w7, w8 := tg.queueSlot(), tg.queueSlot(), tg.queueSlot()
	tg.configure(&connectors.Outbound{Name: "crm", Concurrency: 4}, nil, noJitter, time.Now, t0)
	if !ready(w6) || !ready(w7) || ready(w8) {
		t.Fatalf("cap 4 with 2 in flight: ready %v %v %v, want the first two", ready(w6), ready(w7), ready(w8))
	}
	if tg.inflight != 4 || len(tg.waiters) != 1 {
		t.Fatalf("in flight %d, waiting %d; want 4 and 1", tg.inflight, len(tg.waiters))
	}
}

// TestTargetIdleFor: a call_webhook target may be dropped only when no
// delivery has used it for the idle time, none is using it, and its
// breaker is closed with no recent failure.
func TestTargetIdleFor(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	const idle = time.Hour
	tests := []struct {
		name  string
		setup func(tg *target) // at t0
		at    time.Duration    // after t0
		want  bool
	}{
		{name: "made now", at: 0, want: false},
		{name: "made 59 minutes ago, never used", at: 59 * time.Minute, want: false},
		{name: "made an hour ago, never used", at: time.Hour, want: true},
		{name: "used 30 minutes ago", at: 90 * time.Minute, want: false, setup: func(tg *target) {
			tg.acquire()
			tg.release(t0.Add(time.Hour))
		}},
		{name: "used 2 hours ago", at: 3 * time.Hour, want: true, setup: func(tg *target) {
			tg.acquire()
			tg.release(t0.Add(time.Hour))
		}},
		{name: "handed out, not admitted yet", at: 2 * time.Hour, want: false, setup: func(tg *target) { tg.acquire() }},
		{name: "send in flight", at: 2 * time.Hour, want: false, setup: func(tg *target) {
			if !tg.admit(t0).ok {
				t.Fatal("admit refused")
			}
		}},
		{name: "breaker open", at: 2 * time.Hour, want: false, setup: func(tg *target) { openBreaker(t, tg, t0) }},
		{name: "breaker half-open, probe out", at: 2 * time.Hour, want: false, setup: func(tg *target) {
			openBreaker(t, tg, t0)
			if ok, _, _ := tg.breaker.allow(t0.Add(time.Hour)); !ok {
				t.Fatal("no probe after the cool-down")
			}
		}},
		{name: "breaker closed again by a probe", at: 2 * time.Hour, want: true, setup: func(tg *target) {
			openBreaker(t, tg, t0)
			adm := tg.admit(t0.Add(time.Minute))
			if !adm.ok {
				t.Fatalf("probe refused: %+v", adm)
			}
			tg.done(t0.Add(time.Minute), adm.ticket, verdictSuccess, time.Millisecond)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := newTarget("rest_hooks", nil, nil, noJitter, time.Now, t0)
			tg.webhook = true
			if tt.setup != nil {
				tt.setup(tg)
			}
			if got := tg.idleFor(t0.Add(tt.at), idle); got != tt.want {
				t.Fatalf("idleFor at t0+%v = %v, want %v", tt.at, got, tt.want)
			}
		})
	}
}

// openBreaker opens tg's breaker (default settings: 5 failures in a row)
// at now with failed sends.
func openBreaker(t *testing.T, tg *target, now time.Time) {
	t.Helper()
	for range connectors.DefaultBreakerConfig().Failures {
		adm := tg.admit(now)
		if !adm.ok {
			t.Fatalf("admit refused before the breaker opened: %+v", adm)
		}
		tg.done(now, adm.ticket, verdictFailure, time.Millisecond)
	}
	if !tg.breakerOpen() {
		t.Fatal("breaker not open after the failures")
	}
}
