package delivery

import (
	"time"

	"github.com/hookline/hookline/connectors"
)

// breakerBuckets is how many slices the error-ratio window is kept in.
const breakerBuckets = 10

// breakerConfig returns c with defaults in place of zero values.
func breakerConfig(c connectors.BreakerConfig) connectors.BreakerConfig {
	def := connectors.DefaultBreakerConfig()
	if c.Failures <= 0 {
		c.Failures = def.Failures
	}
	if c.ErrorRatio <= 0 {
		c.ErrorRatio = def.ErrorRatio
	}
	if c.MinRequests <= 0 {
		c.MinRequests = def.MinRequests
	}
	if c.Window <= 0 {
		c.Window = def.Window
	}
	if c.Cooldown <= 0 {
		c.Cooldown = def.Cooldown
	}
	return c
}

// breakerState is the state of a circuit breaker.
type breakerState int

const (
	breakerClosed breakerState = iota
	breakerOpen
	breakerHalfOpen
)

// String names the state.
func (s breakerState) String() string {
	switch s {
	case breakerOpen:
		return "open"
	case breakerHalfOpen:
		return "half-open"
	}
	return "closed"
}

// verdict is how one finished request counts for the breaker.
type verdict int

const (
	verdictSuccess verdict = iota // the target answered (2xx, 3xx, 4xx other than 429)
	verdictFailure                // network error, timeout, 5xx, 429
	verdictNeutral                // no verdict (refused locally, interrupted): frees a probe only
)

// breakerBucket counts outcomes of one slice of the window.
type breakerBucket struct {
	start     time.Time
	successes int
	failures  int
}

// breakerTicket is handed out by allow with every request it lets through
// and given back to record with the request's outcome: it is the breaker's
// epoch when the request went (see breaker.epoch).
type breakerTicket uint64

// breaker is a circuit breaker for one outbound connector. It opens after
// Failures consecutive failures, or when at least MinRequests requests in the
// last Window failed with a ratio of ErrorRatio or more. After Cooldown it
// lets one probe through (half-open); the probe's success closes it, its
// failure opens it again. It is not safe for concurrent use: the caller
// holds a lock. Time comes in as arguments.
//
// Requests still out when the breaker opens (stragglers) finish later,
// maybe while the probe is out or after it has closed the breaker again.
// Their outcomes say nothing about the target now and must not pass for
// the probe's: every trip starts a new epoch, and record ignores an
// outcome whose ticket is from an older one. In half-open state only the
// probe holds a ticket of the current epoch.
type breaker struct {
	cfg         connectors.BreakerConfig
	state       breakerState
	consecutive int
	buckets     [breakerBuckets]breakerBucket
	openedAt    time.Time
	probing     bool
	epoch       uint64 // trips so far
}

// newBreaker returns a closed breaker with cfg (defaults applied).
func newBreaker(cfg connectors.BreakerConfig) *breaker {
	return &breaker{cfg: breakerConfig(cfg)}
}

// setConfig changes the settings and keeps the state (config reload).
func (b *breaker) setConfig(cfg connectors.BreakerConfig) { b.cfg = breakerConfig(cfg) }

// allow reports whether a request may go now, with the ticket to give
// record with its outcome; when not, wait is how long the caller should
// hold it back. In half-open state the first caller gets the probe and the
// others wait for its outcome.
func (b *breaker) allow(now time.Time) (ok bool, ticket breakerTicket, wait time.Duration) {
	switch b.state {
	case breakerOpen:
		if until := b.openedAt.Add(b.cfg.Cooldown).Sub(now); until > 0 {
			return false, 0, until
		}
		b.state = breakerHalfOpen
		b.probing = false
		fallthrough
	case breakerHalfOpen:
		if b.probing {
			return false, 0, b.probeWait()
		}
		b.probing = true
		return true, breakerTicket(b.epoch), 0
	}
	return true, breakerTicket(b.epoch), 0
}

// probeWait is how long requests wait while a half-open probe is out.
func (b *breaker) probeWait() time.Duration { return min(b.cfg.Cooldown, time.Second) }

// record counts the outcome of a request that allow let through with
// ticket. The outcome of a request that went before the last trip changes
// nothing: while open, during the probe, or after the probe closed the
// breaker again.
func (b *breaker) record(now time.Time, ticket breakerTicket, v verdict) {
	if uint64(ticket) != b.epoch {
		return // a straggler from before the breaker last opened
	}
	switch b.state {
	case breakerHalfOpen:
		if !b.probing {
			return // cannot happen: only the probe holds this epoch's ticket
		}
		switch v {
		case verdictSuccess:
			b.reset()
		case verdictFailure:
			b.trip(now)
		case verdictNeutral:
			b.probing = false
		}
		return
	case breakerOpen:
		return // cannot happen: the trip started a new epoch
	}
	switch v {
	case verdictSuccess:
		b.consecutive = 0
		b.bucket(now).successes++
	case verdictFailure:
		b.consecutive++
		b.bucket(now).failures++
		if b.consecutive >= b.cfg.Failures || b.ratioExceeded(now) {
			b.trip(now)
		}
	}
}

// trip opens the breaker at now.
func (b *breaker) trip(now time.Time) {
	b.state = breakerOpen
	b.openedAt = now
	b.probing = false
	b.epoch++
}

// reset closes the breaker and forgets the window.
func (b *breaker) reset() {
	b.state = breakerClosed
	b.consecutive = 0
	b.probing = false
	b.buckets = [breakerBuckets]breakerBucket{}
}

// slice is the length of one bucket.
func (b *breaker) slice() time.Duration {
	return max(b.cfg.Window/breakerBuckets, time.Nanosecond)
}

// bucket returns the bucket for now, emptied if it held an older slice.
func (b *breaker) bucket(now time.Time) *breakerBucket {
	s := b.slice()
	start := now.Truncate(s)
	i := int((start.UnixNano() / int64(s)) % breakerBuckets)
	if i < 0 {
		i += breakerBuckets
	}
	bk := &b.buckets[i]
	if !bk.start.Equal(start) {
		*bk = breakerBucket{start: start}
	}
	return bk
}

// counts returns the outcomes inside the window ending at now.
func (b *breaker) counts(now time.Time) (successes, failures int) {
	from := now.Add(-b.cfg.Window)
	for _, bk := range b.buckets {
		if bk.start.IsZero() || !bk.start.After(from.Add(-b.slice())) || bk.start.After(now) {
			continue
		}
		successes += bk.successes
		failures += bk.failures
	}
	return successes, failures
}

// ratioExceeded reports whether the window holds enough requests with a
// high enough error ratio to open the breaker.
func (b *breaker) ratioExceeded(now time.Time) bool {
	s, f := b.counts(now)
	total := s + f
	return total >= b.cfg.MinRequests && float64(f)/float64(total) >= b.cfg.ErrorRatio
}
