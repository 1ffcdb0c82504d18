// Command load is Hookline's load generator. It owns the benchmark side of
// issues 2 (intake) and 4 (whole path): it posts fixture-like JSON webhooks
// to a running gateway's generic connector, each with its own id, and
// measures what comes back.
//
// Intake mode (-mode intake) is closed loop: -conns keep-alive connections
// each post, wait for the answer and post again, for -duration after a
// -warmup. It reports durable acks per second (202 answers) and the ack
// latency p50/p90/p99/max. By default its events match no rule (status
// "new"), so no deliveries are made; the gateway still maps and stores
// every event behind the acks, as it always does.
//
// Whole-path mode (-mode whole) starts a sink HTTP server (-sink) that
// answers 200 at once, posts events the benchmark rule turns into one
// delivery each (status "open" -> set_status pending, sent by the generic
// connector to GENERIC_TARGET_URL, which must point at the sink), and
// matches each delivery to its webhook by the reference in the delivered
// body. With -rate R it is open loop: request i is due at start + i/R
// whatever happened to the others, a late request's ack latency counts
// from when it was due, and -conns only bounds how many are outstanding.
// With -rate 0 it is closed loop on -conns connections (the most the
// gateway takes). It reports acks/s, deliveries/s while the load ran, the
// backlog left when the load stopped and how long it took to drain, and
// the end-to-end latency from each ack to the sink's receipt of its
// delivery (p50/p90/p99/max).
//
// Both modes print the 1-minute load average before and after, and the
// CPU the gateway used (-pid) and the generator itself used, as cores, so
// a number taken on a busy machine can be recognised as such. -json FILE
// appends the report as one JSON line; -table FILE prints such a file as
// a Markdown table (bench/run.sh uses both).
//
// The HTTP client is a minimal keep-alive HTTP/1.1 writer and reader (see
// conn): the generator shares the cores with the gateway, and its cost per
// request is part of every number.
package main
