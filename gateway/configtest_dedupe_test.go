package gateway

import (
	"testing"
	"time"
)

// A post that goes through the intake checks is deduplicated as the
// gateway's intake does: the same dedupe key (the connector's header or
// path, else the body hash) within its window is answered 200 duplicate
// and nothing is processed, on the simulated clock. The generic connector
// dedupes on Idempotency-Key for intake.dedupe_window (72h) and on the
// body hash for its fallback_window (10m).
func TestConfigTestIntakeDedupe(t *testing.T) {
	runExpectCases(t, []expectCase{
		{name: "a retry with the same Idempotency-Key", pass: true, tests: `
  - name: retried
    connector: generic
    intake: true
    headers: { Idempotency-Key: k-1 }
    payload: { type: ticket.updated, reference: T1, status: open }
    expect: { matched: [x-notify], duplicate: false }
    steps:
      - advance: 1m
        payload: { type: ticket.updated, reference: T1, status: open }
        expect: { duplicate: true, matched: [], events: [], actions: [] }
      - advance: 71h58m
        payload: { type: ticket.updated, reference: T1, status: open, text: changed }
        expect: { duplicate: true }
`},
		{name: "the key's window ends on the simulated clock", pass: true, tests: `
  - name: retried after the window
    connector: generic
    intake: true
    headers: { Idempotency-Key: k-1 }
    payload: { type: ticket.updated, reference: T1, status: open }
    expect: { matched: [x-notify] }
    steps:
      - advance: 72h
        payload: { type: ticket.updated, reference: T1, status: open }
        expect: { duplicate: false, events: [ { type: ticket.updated } ] }
      - advance: 1h
        payload: { type: ticket.updated, reference: T1, status: open }
        expect: { duplicate: true }
`},
		{name: "another key is another post", pass: true, tests: `
  - name: two keys
    connector: generic
    intake: true
    headers: { Idempotency-Key: k-1 }
    payload: { type: ticket.updated, reference: T1, status: open }
    expect: { matched: [x-notify] }
    steps:
      - headers: { Idempotency-Key: k-2 }
        payload: { type: ticket.updated, reference: T1, status: open }
        expect: { duplicate: false, events: [ { type: ticket.updated } ] }
`},
		{name: "without the header the body hash counts for fallback_window", pass: true, tests: `
  - name: body hash
    connector: generic
    intake: true
    payload: { type: ticket.updated, reference: T1, status: open }
    expect: { matched: [x-notify] }
    steps:
      - advance: 9m59s
        payload: { type: ticket.updated, reference: T1, status: open }
        expect: { duplicate: true }
      - advance: 1s
        payload: { type: ticket.updated, reference: T1, status: open }
        expect: { duplicate: false, events: [ { type: ticket.updated } ] }
`},
		{name: "a post without intake is remembered, a step with intake is deduplicated", pass: true, tests: `
  - name: the audit's case
    connector: generic
    headers: { Idempotency-Key: k-1 }
    payload: { type: ticket.updated, reference: T1, status: open }
    expect: { matched: [x-notify] }
    steps:
      - advance: 1m
        payload: { type: ticket.updated, reference: T1, status: open }
        intake: true
        expect: { duplicate: true, matched: [] }
`},
		{name: "without intake nothing is deduplicated", pass: true, tests: `
  - name: no intake
    connector: generic
    headers: { Idempotency-Key: k-1 }
    payload: { type: ticket.updated, reference: T1, status: open }
    expect: { matched: [x-notify] }
    steps:
      - payload: { type: ticket.updated, reference: T1, status: open }
        expect: { events: [ { type: ticket.updated } ] }
`},
		{name: "expect duplicate turns the intake checks on", pass: true, tests: `
  - name: implied intake
    connector: generic
    headers: { Idempotency-Key: k-1 }
    payload: { type: ticket.updated, reference: T1, status: open }
    expect: { matched: [x-notify] }
    steps:
      - payload: { type: ticket.updated, reference: T1, status: open }
        expect: { duplicate: true }
`},
		{name: "a duplicate nobody expected", tests: `
  - name: unexpected
    connector: generic
    intake: true
    headers: { Idempotency-Key: k-1 }
    payload: { type: ticket.updated, reference: T1, status: open }
    expect: { matched: [x-notify] }
    steps:
      - advance: 1m
        payload: { type: ticket.updated, reference: T1, status: open }
        expect: { matched: [] }
`, failures: []string{`step 1 at `, `the gateway answers this post 200 duplicate and processes nothing: its dedupe key "k-1" was posted at 2026-01-05T10:00:00Z, within its window 72h0m0s (expect duplicate: true to assert it)`}},
		{name: "a duplicate expected to make events", tests: `
  - name: events of a duplicate
    connector: generic
    intake: true
    headers: { Idempotency-Key: k-1 }
    payload: { type: ticket.updated, reference: T1, status: open }
    expect: { matched: [x-notify] }
    steps:
      - advance: 1m
        payload: { type: ticket.updated, reference: T1, status: open }
        expect: { duplicate: true, matched: [x-notify], events: [ { type: ticket.updated } ], actions: [ { rule: x-notify } ] }
`, failures: []string{
			`events: want 1, but the post is a duplicate: the gateway processes nothing`,
			`actions: want 1, but the post is a duplicate: the gateway processes nothing`,
			`matched: want ["x-notify"], but the post is a duplicate: the gateway processes nothing`}},
		{name: "a duplicate expected that is processed", tests: `
  - name: not a duplicate
    connector: generic
    intake: true
    headers: { Idempotency-Key: k-1 }
    payload: { type: ticket.updated, reference: T1, status: open }
    expect: { duplicate: true }
`, failures: []string{`duplicate: want the gateway to answer the post 200 duplicate, but it processed it`}},
		{name: "a post expected processed that is a duplicate", tests: `
  - name: duplicate false
    connector: generic
    intake: true
    headers: { Idempotency-Key: k-1 }
    payload: { type: ticket.updated, reference: T1, status: open }
    expect: { matched: [x-notify] }
    steps:
      - payload: { type: ticket.updated, reference: T1, status: open }
        expect: { duplicate: false }
`, failures: []string{`duplicate: want the post processed, but the gateway answers it 200 duplicate: its dedupe key "k-1" was posted at 2026-01-05T10:00:00Z`}},
	})
}

// Simulation.Post reports a duplicate with no events, matches, actions or
// timer changes, and keeps the first post's time: a duplicate does not
// renew the key.
func TestSimulationIntakeDuplicate(t *testing.T) {
	b, errs := Load(copyConfigs(t), testEnv(nil))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	start := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	sim := NewSimulation(b, start)
	post := func() *SimResult {
		t.Helper()
		res, err := sim.Post(SimRequest{Connector: "generic", Intake: true, Headers: map[string]string{"idempotency-key": "k-9"},
			Payload: []byte(`{"type":"ticket.updated","reference":"T9","status":"open"}`)})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if first := post(); first.Duplicate != nil || len(first.Events) != 1 {
		t.Fatalf("first post: duplicate %+v, %d events; want processed", first.Duplicate, len(first.Events))
	}
	for _, advance := range []time.Duration{time.Hour, 70 * time.Hour} {
		if _, err := sim.Advance(advance); err != nil {
			t.Fatal(err)
		}
		res := post()
		if res.Duplicate == nil || len(res.Events) != 0 || len(res.Matched) != 0 || len(res.Actions) != 0 || res.Unmapped {
			t.Fatalf("after %s: duplicate %+v, events %d, matched %v, actions %d, unmapped %v; want a duplicate that processes nothing",
				advance, res.Duplicate, len(res.Events), res.Matched, len(res.Actions), res.Unmapped)
		}
		if d := res.Duplicate; d.Key != "k-9" || !d.PostedAt.Equal(start) || d.Window != "72h0m0s" {
			t.Errorf("after %s: duplicate %+v, want key k-9 posted at %s, window 72h", advance, d, start)
		}
	}
	if _, err := sim.Advance(time.Hour); err != nil { // 72h after the first post
		t.Fatal(err)
	}
	if res := post(); res.Duplicate != nil || len(res.Events) != 1 {
		t.Fatalf("72h after the first post: duplicate %+v, %d events; want processed", res.Duplicate, len(res.Events))
	}
}
