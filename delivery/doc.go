// Package delivery owns the outbound half of Hookline's pipeline: the
// workers that take due deliveries from the store's outbox and send them.
//
// A Dispatcher claims due deliveries (only the head of each (connector,
// reference) queue is ever due, so per-entity order is the store's
// guarantee), checks the connector's limits, sends the rendered request
// and records the outcome. One loop does all of the dispatcher's store
// writes: each turn records the outcomes that arrived and claims new work
// in ONE transaction (store.DB.FinishAndClaim), so a delivery costs a share
// of one commit, and whatever arrives during a commit goes into the next.
//
// The loop claims ahead, up to 16 x Config.Workers deliveries (at most
// 1000): the ones without a free worker wait in memory, in flight in the
// store. bbolt's single writer is shared with the pipeline, whose batch
// transactions can be long, and without claiming ahead the workers would
// sit idle until the dispatcher's next turn. At shutdown the waiting ones
// go back to the outbox, uncharged; after a crash the store recovers them
// as pending like any in-flight delivery.
//
// # Limits
//
// Each outbound connector has a concurrency cap, a token-bucket rate limit
// (golang.org/x/time/rate) and a circuit breaker. A delivery that has to wait
// on the token bucket or the breaker goes back to the outbox as pending with
// a later due time and no attempt recorded: throttled work stays in bbolt,
// not in memory, and it does not use up the delivery's attempts. Deliveries
// held back by the token bucket are spread one token interval apart; those
// held back by an open breaker are due when its cool-down ends.
//
// The concurrency cap is the one short wait: a claimed delivery whose
// connector is at its cap waits on its worker (it is in_flight in the store,
// and the waiters are bounded by the claim-ahead limit) for a slot, at most
// one second, and only then goes back to the outbox. Bouncing it at once would
// make every claim pull a saturated connector's backlog through bbolt again.
// The waiters queue: a slot given back goes to the one that has waited
// longest (and wakes only it), and a newcomer does not pass them.
//
// # Retries
//
// There is exactly one in-process retry layer (go-retryablehttp): at most two
// quick retries, 100ms to 1s apart, for connection errors and retryable
// statuses, honouring a Retry-After of up to 5s. Anything longer goes back to
// the outbox, due after the connector's schedule (default 5s, 30s, 2m, 10m,
// 30m, 1h, 3h, 6h, 12h, 24h, +-20% jitter), the response's Retry-After
// (capped at the connector's maximum) and at least 60s after a 429. Each
// durable attempt is one store.Attempt; in-process retries are part of it.
// Timeouts are not retried in-process (the request already waited the whole
// timeout); they go back to the outbox.
//
// Outcomes: the action's success codes (default 2xx) succeed and capture
// values from the response body; 3xx fails at once (redirects are never
// followed); 410 Gone fails at once and calls Config.OnGone; other 4xx and
// non-retryable 5xx fail at once with the response kept.
//
// # Egress
//
// Every connector has its own http.Transport whose dialer checks the address
// actually being connected to, after DNS resolution, so DNS rebinding cannot
// slip past: loopback, private, link-local, shared (CGNAT), unspecified,
// multicast and reserved addresses are refused unless the connector allows
// private targets or an egress allow prefix covers the address. Cloud
// metadata addresses (169.254.169.254, fd00:ec2::254) are refused even with
// allow_private; only an explicit egress allow prefix opens them. A refusal
// is a permanent failure. See CheckEgress. Dispatcher.CheckEgress applies
// a connector's policy to a host ahead of time (the gateway refuses REST-hook
// subscriptions with it); the check at connect time still decides.
//
// # Log actions
//
// Deliveries of kind log (Request{Method: "LOG", URL: "file:<relative
// path>", Body: line}) append the line and a newline to a file below
// Config.LogDir, opened with O_APPEND and fsync'd. The path is resolved
// with os.Root, so neither ".." nor a symbolic link can leave the directory.
//
// # Caveats
//
// Config.Rand and Config.OnGone are called from several goroutines. OnGone
// runs on the goroutine that commits outcomes and claims work: keep it
// short.
package delivery
