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

// concurrencyWait is how long a delivery waits in the outbox when its
// connector is at its concurrency cap (no one can say when a slot frees).
const concurrencyWait = 50 * time.Millisecond

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
	limiter  *rate.Limiter // nil: no rate limit
	breaker  *breaker
}

// admission is the answer of target.admit.
type admission struct {
	ok     bool
	wait   time.Duration
	reason string
	cfg    *targetConfig
}

// admit checks the concurrency cap, the token bucket and the breaker, in
// that order, and on success takes a concurrency slot (give it back with
// done). A refusal consumes nothing.
func (t *target) admit(now time.Time) admission {
	t.mu.Lock()
	defer t.mu.Unlock()
	cfg := t.cfg
	if t.inflight >= cfg.concurrency {
		return admission{wait: concurrencyWait, reason: "throttled: concurrency limit reached", cfg: cfg}
	}
	var r *rate.Reservation
	if t.limiter != nil {
		r = t.limiter.ReserveN(now, 1)
		if !r.OK() {
			return admission{wait: time.Second, reason: "throttled: rate limit", cfg: cfg}
		}
		if d := r.DelayFrom(now); d > 0 {
			r.CancelAt(now)
			return admission{wait: d, reason: "throttled: rate limit", cfg: cfg}
		}
	}
	if ok, wait := t.breaker.allow(now); !ok {
		if r != nil {
			r.CancelAt(now)
		}
		return admission{wait: wait, reason: "throttled: circuit breaker " + t.breaker.state.String(), cfg: cfg}
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
