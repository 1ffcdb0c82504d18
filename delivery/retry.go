package delivery

import (
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hookline/hookline/connectors"
)

// Defaults of the outbound connector settings delivery reads, for zero
// values (the connector loader applies the same ones).
const (
	defaultTimeout     = connectors.DefaultTimeout
	defaultConcurrency = connectors.DefaultConcurrency
	defaultJitter      = connectors.DefaultJitter
	// min429Wait is the least a 429 sends a delivery back to the outbox for.
	min429Wait = 60 * time.Second
)

// In-process retry layer (go-retryablehttp).
const (
	quickRetries       = 2
	quickWaitMin       = 100 * time.Millisecond
	quickWaitMax       = time.Second
	maxQuickRetryAfter = 5 * time.Second
)

// retryPolicy returns p with defaults in place of unset fields. A wholly
// zero policy is the default policy; otherwise a nil Schedule or RetryOn and
// a zero MaxRetryAfter take the default, while an empty non-nil Schedule
// (no durable retries) and a zero Jitter (none) are kept, as the connector
// loader produces them.
func retryPolicy(p connectors.RetryPolicy) connectors.RetryPolicy {
	def := connectors.DefaultRetryPolicy()
	if p.Schedule == nil && p.Jitter == 0 && p.MaxRetryAfter == 0 && p.RetryOn == nil {
		def.RetryErrors = p.RetryErrors
		return def
	}
	if p.Schedule == nil {
		p.Schedule = def.Schedule
	}
	p.Jitter = min(max(p.Jitter, 0), 1)
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = def.MaxRetryAfter
	}
	if p.RetryOn == nil {
		p.RetryOn = def.RetryOn
	}
	return p
}

// class is what a response status means for a delivery.
type class int

const (
	classSuccess  class = iota // the action's success codes (default 2xx)
	classRetry                 // in RetryOn: retried
	classGone                  // 410: the target is gone
	classRedirect              // 3xx: not followed, failed
	classReject                // anything else: failed at once
)

// classify maps a status code to its class. Success codes win over the rest,
// so an action may declare a 3xx or 410 as success.
func classify(status int, success, retryOn []int) class {
	switch {
	case len(success) > 0 && slices.Contains(success, status):
		return classSuccess
	case len(success) == 0 && status >= 200 && status <= 299:
		return classSuccess
	case status == http.StatusGone:
		return classGone
	case status >= 300 && status <= 399:
		return classRedirect
	case slices.Contains(retryOn, status):
		return classRetry
	}
	return classReject
}

// connectorFailure reports whether a status counts against the circuit
// breaker: 5xx and 429 do, everything else shows the target is up.
func connectorFailure(status int) bool {
	return status >= 500 || status == http.StatusTooManyRequests
}

// parseRetryAfter parses a Retry-After value: delay seconds or an HTTP date.
// A date in the past gives 0. ok is false when v is empty or malformed.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if v[0] >= '0' && v[0] <= '9' {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			// Longer than int64 seconds is "effectively forever".
			if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
				return time.Duration(1<<63 - 1), true
			}
			return 0, false
		}
		if n > int64((1<<63-1)/time.Second) {
			return time.Duration(1<<63 - 1), true
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	if d := t.Sub(now); d > 0 {
		return d, true
	}
	return 0, true
}

// jittered returns base scaled by a factor in [1-jitter, 1+jitter) drawn
// from r in [0, 1), saturated to 0..the largest Duration: a product out of
// int64's range would otherwise convert to anything, a negative wait
// among others (the connector loader bounds schedule steps at
// connectors.MaxRetryDelay, but policies built in code are not loaded).
func jittered(base time.Duration, jitter, r float64) time.Duration {
	if r < 0 {
		r = 0
	}
	if r >= 1 {
		r = 0.999999
	}
	f := 1 + jitter*(2*r-1)
	w := float64(base) * f
	switch {
	case w >= maxDurationFloat || math.IsNaN(w):
		return time.Duration(math.MaxInt64)
	case w <= 0:
		return 0
	}
	return time.Duration(w)
}

// maxDurationFloat is 2^63, the first float64 beyond a Duration's range
// (float64(math.MaxInt64) rounds up to it).
const maxDurationFloat = float64(1 << 63)

// retryDecision is when a failed delivery should be tried again.
type retryDecision struct {
	giveUp bool
	wait   time.Duration
}

// nextRetry decides the durable retry of a delivery whose attempt number
// n+1 (n = attempts made before it) just failed retryably. status is the
// last HTTP status (0 for network errors); retryAfter is the response's
// Retry-After when hasRA. After len(Schedule) retries it gives up.
func nextRetry(p connectors.RetryPolicy, n, status int, retryAfter time.Duration, hasRA bool, r float64) retryDecision {
	if n >= len(p.Schedule) {
		return retryDecision{giveUp: true}
	}
	wait := jittered(p.Schedule[n], p.Jitter, r)
	if hasRA {
		wait = max(wait, min(retryAfter, p.MaxRetryAfter))
	}
	if status == http.StatusTooManyRequests {
		wait = max(wait, min429Wait)
	}
	return retryDecision{wait: max(wait, 0)}
}

// quickBackoff is the wait before in-process retry i (0-based): the
// response's Retry-After when it is at most maxQuickRetryAfter, else
// exponential from quickWaitMin, capped at quickWaitMax, with +-20% jitter.
func quickBackoff(i int, resp *http.Response, now time.Time, r float64) time.Duration {
	if resp != nil {
		if ra, ok := parseRetryAfter(resp.Header.Get("Retry-After"), now); ok && ra <= maxQuickRetryAfter {
			return ra
		}
	}
	d := quickWaitMin << min(i, 10)
	d = min(d, quickWaitMax)
	return min(jittered(d, defaultJitter, r), quickWaitMax)
}
