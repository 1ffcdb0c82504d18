package delivery

import (
	"net/http"
	"net/netip"
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
const (
	maxSlotWait     = time.Second
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

	mu       sync.Mutex
	cfg      *targetConfig
	inflight int
	freed    chan struct{} // closed and replaced when a slot is given back
	limiter  *rate.Limiter // nil: no rate limit
	rateNext time.Time     // when the next delivery held back by the limiter is due
	breaker  *breaker
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
	// full is set when the connector is at its concurrency cap; freed is
	// closed when a slot is given back.
	full   bool
	freed  <-chan struct{}
	wait   time.Duration
	reason string
	cfg    *targetConfig
}

// admit checks the concurrency cap, the token bucket and the breaker, in
// that order, and on success takes a concurrency slot (give it back with
// done). A refusal consumes nothing. Deliveries held back by the token
// bucket are spread one token interval apart, so that they do not all
// come back at the same moment.
func (t *target) admit(now time.Time) admission {
	t.mu.Lock()
	defer t.mu.Unlock()
	cfg := t.cfg
	if t.inflight >= cfg.concurrency {
		if t.freed == nil {
			t.freed = make(chan struct{})
		}
		return admission{full: true, freed: t.freed, wait: concurrencyWait, reason: reasonConcurrency, cfg: cfg}
	}
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
	if ok, wait := t.breaker.allow(now); !ok {
		if r != nil {
			r.CancelAt(now)
		}
		return admission{wait: wait, reason: reasonBreaker + t.breaker.state.String(), cfg: cfg}
	}
	t.inflight++
	return admission{ok: true, cfg: cfg}
}

// done gives back the concurrency slot taken by admit and counts the
// outcome for the breaker. It reports whether the breaker is now open.
func (t *target) done(now time.Time, v verdict) (open bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.inflight--
	if t.freed != nil {
		close(t.freed)
		t.freed = nil
	}
	t.breaker.record(now, v)
	return t.breaker.state != breakerClosed
}

// breakerOpen reports whether the breaker is not closed.
func (t *target) breakerOpen() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.breaker.state != breakerClosed
}

// newTarget builds the state of a connector.
func newTarget(name string, out *connectors.Outbound, allow []netip.Prefix, rnd func() float64, now func() time.Time, at time.Time) *target {
	t := &target{name: name}
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
