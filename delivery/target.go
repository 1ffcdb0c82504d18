package delivery

import (
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"golang.org/x/time/rate"

	"github.com/hookline/hookline/connectors"
)

// Concurrency cap waits. A delivery whose connector is at its cap waits
// for a slot on its worker (it is claimed, in_flight in the store, and
// bounded by Config.Workers) for at most maxSlotWait; then it goes back to
// the outbox for concurrencyWait. Bouncing at once would make every claim
// pull the saturated connector's backlog through bbolt again and again.
// The waiters queue: a slot given back goes to the one that has waited
// longest, and wakes only that one. A delivery whose slot would likely
// come later than maxSlotWait (the connector's recent latency times the
// waiters ahead, over its cap) does not wait at all: it goes back to the
// outbox at once, due about when its slot would have come (at least
// maxSlotWait, at most maxBounceWait), so that a slow target does not hold
// up the workers, and the claimed deliveries behind them, of every other
// connector. A fast target at its cap turns its slots over in
// milliseconds: its deliveries wait, as bouncing them costs the whole
// path far more (two outbox writes each).
const (
	maxSlotWait     = time.Second
	maxBounceWait   = 10 * time.Second
	concurrencyWait = 50 * time.Millisecond
)

// targetConfig is the immutable view of one outbound connector a send uses.
// A config reload replaces it as a whole.
type targetConfig struct {
	// out is nil for a connector that is not configured (call_webhook and log
	// deliveries still go, with default settings).
	out         *connectors.Outbound
	retry       connectors.RetryPolicy
	concurrency int
	timeout     time.Duration
	client      *retryablehttp.Client
	transport   *http.Transport
}

// target is the live state of one outbound connector: its limits and its
// HTTP client. It survives config reloads so that in-flight counts, the
// token bucket and the breaker carry over.
type target struct {
	name string
	// webhook is set on the target of call_webhook deliveries to one
	// destination (Dispatcher.webhookTarget): name is their connector's.
	webhook bool

	mu       sync.Mutex
	cfg      *targetConfig
	inflight int
	waiters  []*slotWaiter // at the cap, first come first served
	latency  time.Duration // moving average of the sends' latency (0: none yet)
	limiter  *rate.Limiter // nil: no rate limit
	rateNext time.Time     // when the next delivery held back by the limiter is due
	breaker  *breaker
	// users counts the deliveries a call_webhook target was handed out
	// to (Dispatcher.webhookTarget) that have not ended yet; lastUsed is
	// when the last one ended, or when the target was made. A target in
	// use or used recently is never dropped (Dispatcher.sweepWebhooksLocked).
	users    int
	lastUsed time.Time
}

// Reasons of deliveries held back by a connector's limits.
const (
	reasonConcurrency = "throttled: concurrency limit reached"
	reasonRate        = "throttled: rate limit"
	reasonBreaker     = "throttled: circuit breaker "
)

// admission is the answer of target.admit.
type admission struct {
	ok bool
	// full is set when the connector is at its concurrency cap: wait for
	// a slot with queueSlot.
	full   bool
	wait   time.Duration
	reason string
	cfg    *targetConfig
	// ticket is the breaker's for an admitted request: give it back to
	// done with the outcome.
	ticket breakerTicket
}

// admit checks the concurrency cap, the token bucket and the breaker, in
// that order, and on success takes a concurrency slot (give it back with
// done). A refusal consumes nothing. Deliveries held back by the token
// bucket are spread one token interval apart, so that they do not all
// come back at the same moment. A slot given back goes to a waiting
// delivery at once (grantLocked), so while any wait the cap is reached
// and a newcomer does not pass them.
func (t *target) admit(now time.Time) admission {
	t.mu.Lock()
	defer t.mu.Unlock()
	cfg := t.cfg
	if t.inflight >= cfg.concurrency {
		// The slot would likely come after maxSlotWait: do not hold a
		// worker for it (see maxBounceWait).
		if exp := t.latency * time.Duration(len(t.waiters)+1) / time.Duration(cfg.concurrency); exp >= maxSlotWait {
			return admission{wait: min(exp, maxBounceWait), reason: reasonConcurrency, cfg: cfg}
		}
		return admission{full: true, wait: concurrencyWait, reason: reasonConcurrency, cfg: cfg}
	}
	adm := t.limitsLocked(now)
	if adm.ok {
		t.inflight++
	}
	return adm
}

// limitsLocked checks the token bucket and the breaker (t.mu held). A
// refusal consumes nothing.
func (t *target) limitsLocked(now time.Time) admission {
	cfg := t.cfg
	var r *rate.Reservation
	if t.limiter != nil {
		r = t.limiter.ReserveN(now, 1)
		if !r.OK() {
			return admission{wait: time.Second, reason: reasonRate, cfg: cfg}
		}
		if d := r.DelayFrom(now); d > 0 {
			r.CancelAt(now)
			wait := max(d, t.rateNext.Sub(now))
			interval := time.Duration(float64(time.Second) / float64(t.limiter.Limit()))
			t.rateNext = now.Add(wait + interval)
			return admission{wait: wait, reason: reasonRate, cfg: cfg}
		}
	}
	ok, ticket, wait := t.breaker.allow(now)
	if !ok {
		if r != nil {
			r.CancelAt(now)
		}
		return admission{wait: wait, reason: reasonBreaker + t.breaker.state.String(), cfg: cfg}
	}
	return admission{ok: true, cfg: cfg, ticket: ticket}
}

// slotWaiter is one delivery waiting for a concurrency slot. ready is
// closed when a slot has been handed to it (granted, under target.mu).
type slotWaiter struct {
	ready   chan struct{}
	granted bool
}

// queueSlot puts a delivery at the end of the queue for a concurrency
// slot. Wait on the waiter's ready, then check the other limits with
// admitGranted; a waiter that stops waiting calls leaveSlot.
func (t *target) queueSlot() *slotWaiter {
	w := &slotWaiter{ready: make(chan struct{})}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.waiters = append(t.waiters, w)
	t.grantLocked() // a slot may have come free meanwhile
	return w
}

// admitGranted checks the token bucket and the breaker for a waiter that
// holds a slot; on a refusal the slot goes to the next waiter.
func (t *target) admitGranted(now time.Time) admission {
	t.mu.Lock()
	defer t.mu.Unlock()
	adm := t.limitsLocked(now)
	if !adm.ok {
		t.releaseLocked()
	}
	return adm
}

// leaveSlot takes w out of the queue. It reports whether w had been
// granted a slot meanwhile: then the caller holds that slot, and keep
// tells whether it goes on with it (false: the slot goes to the next
// waiter).
func (t *target) leaveSlot(w *slotWaiter, keep bool) (granted bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if w.granted {
		if !keep {
			t.releaseLocked()
		}
		return true
	}
	for i, q := range t.waiters {
		if q == w {
			t.waiters = slices.Delete(t.waiters, i, i+1)
			break
		}
	}
	return false
}

// releaseLocked gives a slot back, to the longest waiting delivery if
// any (t.mu held).
func (t *target) releaseLocked() {
	t.inflight--
	t.grantLocked()
}

// grantLocked hands free slots to the waiters, longest waiting first
// (t.mu held).
func (t *target) grantLocked() {
	for len(t.waiters) > 0 && t.inflight < t.cfg.concurrency {
		w := t.waiters[0]
		t.waiters[0] = nil
		t.waiters = t.waiters[1:]
		t.inflight++
		w.granted = true
		close(w.ready)
	}
	if len(t.waiters) == 0 {
		t.waiters = nil // let the drained queue's array go
	}
}

// done gives back the concurrency slot taken by admit (or granted to a
// waiter) and counts the outcome for the breaker, with the ticket of the
// request's admission. It reports whether the breaker is now open.
func (t *target) done(now time.Time, ticket breakerTicket, v verdict, latency time.Duration) (open bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	// The moving average of the sends' latency (weight 1/8) that admit
	// weighs a wait for a slot with.
	switch {
	case latency <= 0:
	case t.latency == 0:
		t.latency = latency
	default:
		t.latency += (latency - t.latency) / 8
	}
	t.breaker.record(now, ticket, v)
	t.releaseLocked()
	return t.breaker.state != breakerClosed
}

// acquire counts one more delivery using the target.
func (t *target) acquire() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.users++
}

// release counts the end, at now, of a delivery acquire counted.
func (t *target) release(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.users--
	if now.After(t.lastUsed) {
		t.lastUsed = now
	}
}

// idleFor reports whether the target may be dropped at now: no delivery
// has used it for at least idle, none is using it, in flight or waiting
// for a slot, and its breaker is closed with no failure in its window. A
// streak of failures too short to open the breaker is forgotten with it.
func (t *target) idleFor(now time.Time, idle time.Duration) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.users > 0 || t.inflight > 0 || len(t.waiters) > 0 || now.Sub(t.lastUsed) < idle {
		return false
	}
	if t.breaker.state != breakerClosed || t.breaker.probing {
		return false
	}
	_, failures := t.breaker.counts(now)
	return failures == 0
}

// breakerOpen reports whether the breaker is not closed.
func (t *target) breakerOpen() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.breaker.state != breakerClosed
}

// newTarget builds the state of a connector.
func newTarget(name string, out *connectors.Outbound, allow []netip.Prefix, rnd func() float64, now func() time.Time, at time.Time) *target {
	t := &target{name: name, lastUsed: at}
	var bc connectors.BreakerConfig
	if out != nil {
		bc = out.Breaker
	}
	t.breaker = newBreaker(bc)
	t.configure(out, allow, rnd, now, at)
	return t
}

// configure applies (new) settings, keeping in-flight counts, bucket and
// breaker state. The old transport's idle connections are closed.
func (t *target) configure(out *connectors.Outbound, allow []netip.Prefix, rnd func() float64, now func() time.Time, at time.Time) {
	cfg := buildTargetConfig(out, allow, rnd, now)
	var limit rate.Limit
	burst := 0
	if out != nil && out.RateLimit > 0 {
		limit = rate.Limit(out.RateLimit)
		burst = out.Burst
		if burst <= 0 {
			burst = max(1, int(out.RateLimit))
		}
	}
	t.mu.Lock()
	old := t.cfg
	t.cfg = cfg
	switch {
	case limit == 0:
		t.limiter = nil
	case t.limiter == nil:
		t.limiter = rate.NewLimiter(limit, burst)
	default:
		t.limiter.SetLimitAt(at, limit)
		t.limiter.SetBurstAt(at, burst)
	}
	if out != nil {
		t.breaker.setConfig(out.Breaker)
	}
	t.grantLocked() // a higher cap frees slots at once
	t.mu.Unlock()
	if old != nil && old.transport != nil {
		old.transport.CloseIdleConnections()
	}
}

// config returns the current settings.
func (t *target) config() *targetConfig {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cfg
}

// buildTargetConfig resolves defaults and builds the connector's client.
func buildTargetConfig(out *connectors.Outbound, allow []netip.Prefix, rnd func() float64, now func() time.Time) *targetConfig {
	cfg := &targetConfig{out: out, concurrency: defaultConcurrency, timeout: defaultTimeout}
	allowPrivate := false
	var rp connectors.RetryPolicy
	if out != nil {
		rp = out.Retry
		if out.Concurrency > 0 {
			cfg.concurrency = out.Concurrency
		}
		if out.Timeout > 0 {
			cfg.timeout = out.Timeout
		}
		allowPrivate = out.AllowPrivate
	}
	cfg.retry = retryPolicy(rp)
	cfg.transport = newTransport(egressGuard{allowPrivate: allowPrivate, allow: allow}, cfg.concurrency)
	cfg.client = newRetryClient(cfg.transport, cfg.timeout, cfg.retry.RetryOn, rnd, now)
	return cfg
}
