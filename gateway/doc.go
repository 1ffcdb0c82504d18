// Package gateway wires Hookline together: it loads and reloads the config
// (gateway.yaml plus the connector and rule files it names), runs the
// pipeline that turns inbox items into events, rule decisions and outbox
// deliveries, and serves the Fiber app: webhook intake under /hooks, the admin
// API under /api/v1, health checks and Prometheus metrics.
//
// # Data flow
//
//	POST /hooks/{connector}  intake.go    verify, limit, parse, schema, dedupe, inbox (group commit) -> 202 (or inbound.reply)
//	pipeline worker          pipeline.go  map -> snapshot diff -> loop guards -> rules -> outbox, one tx per batch
//	delivery dispatcher      (package delivery) sends the outbox
//	admin API                api.go       events, inbox, entities, rules test/run, deliveries, timers
//
// Everything hangs off a Server built from a Bundle (the compiled config);
// there is no package-level state. A config reload builds a new Bundle and
// swaps it in only when it validates; the running gateway keeps its last good
// config otherwise.
package gateway
