package gateway

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/store"
)

// solveThenNotify solves a flagged ticket, and notifies on a solve: the
// second rule must not fire on the echo of the first one's update.
const solveThenNotify = `rules:
  - id: parity-solve
    on: [ticket.updated]
    connector: zendesk
    when: { field: custom.parity, is: "yes" }
    then:
      - set_status: solved
  - id: parity-on-solved
    on: [ticket.status_changed]
    connector: zendesk
    when: { field: status, changed_to: solved }
    then:
      - call_webhook: { url: "https://ops.example.com/solved" }
`

func parityEvent(typ string, fields map[string]any) *event.Event {
	return &event.Event{Connector: "zendesk", Type: typ, Entity: "ticket", Reference: "77",
		Fields: fields, Vars: map[string]string{"TICKET_REFERENCE": "77"}}
}

// The echo of a run's own update is marked in a dry run and a config test
// as the pipeline marks it: an on_own_changes: false rule fires in none.
func TestDryRunMarksTheEchoOfItsOwnUpdate(t *testing.T) {
	dir := copyConfigs(t)
	writeFile(t, filepath.Join(dir, "rules", "parity.yaml"), solveThenNotify)

	// The pipeline.
	ts := startServer(t, dir, nil, nil)
	if err := ts.ApplyEvents([]*event.Event{parityEvent("ticket.updated", map[string]any{"custom.parity": "yes", "status": "open"})}); err != nil {
		t.Fatal(err)
	}
	echo := parityEvent("ticket.status_changed", map[string]any{"status": "solved"})
	if err := ts.ApplyEvents([]*event.Event{echo}); err != nil {
		t.Fatal(err)
	}
	ds, _, err := ts.Store().ListDeliveries(store.DeliveryFilter{Rule: "parity-on-solved"})
	if err != nil {
		t.Fatal(err)
	}
	if !echo.Causation.Echo || len(ds) != 0 {
		t.Fatalf("pipeline: echo %v, %d deliveries of parity-on-solved", echo.Causation.Echo, len(ds))
	}

	// A dry run with the same two events.
	b, errs := Load(dir, testEnv(nil))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	sim := NewSimulation(b, time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC))
	first, err := sim.Post(SimRequest{Connector: "zendesk", Event: parityEvent("ticket.updated", map[string]any{"custom.parity": "yes", "status": "open"})})
	if err != nil || len(first.Actions) != 1 {
		t.Fatalf("first event: %v %+v", err, first)
	}
	second, err := sim.Post(SimRequest{Connector: "zendesk", Event: parityEvent("ticket.status_changed", map[string]any{"status": "solved"})})
	if err != nil {
		t.Fatal(err)
	}
	if len(second.Matched) != 0 || len(second.Actions) != 0 || !second.Events[0].Causation.Echo {
		t.Fatalf("dry run: the echo fired %v, actions %+v, echo %v", second.Matched, second.Actions, second.Events[0].Causation.Echo)
	}
	// A person solving it again later is not an echo: the fingerprint was consumed.
	sim.Post(SimRequest{Connector: "zendesk", Event: parityEvent("ticket.status_changed", map[string]any{"status": "open"})})
	third, err := sim.Post(SimRequest{Connector: "zendesk", Event: parityEvent("ticket.status_changed", map[string]any{"status": "solved"})})
	if err != nil || len(third.Matched) != 1 {
		t.Fatalf("a person's solve: %v, matched %v", err, third.Matched)
	}

	// A config test with the same steps.
	tests := `tests:
  - name: our own solve comes back from Zendesk
    connector: zendesk
    event: { type: ticket.updated, entity: ticket, reference: "77", fields: { custom.parity: "yes", status: open } }
    expect:
      matched: [parity-solve]
    steps:
      - name: Zendesk echoes the status we set
        event: { type: ticket.status_changed, entity: ticket, reference: "77", fields: { status: solved } }
        expect:
          not_matched: [parity-on-solved]
`
	outcomes := runTestFile(t, dir, filepath.Join(dir, "rules", "parity_test.yaml"), tests, 1)
	if !outcomes[0].Passed() {
		t.Errorf("config test: the echo fired parity-on-solved: %v", outcomes[0].Failures)
	}
}

// Two rules that write the same value on one event: the pipeline sends one
// delivery (the second is a no-op over the first, queued), and so does a
// dry run.
func TestDryRunSeesUpdatesQueuedForTheEntity(t *testing.T) {
	dir := copyConfigs(t)
	writeFile(t, filepath.Join(dir, "rules", "parity.yaml"), `rules:
  - id: parity-a
    on: [ticket.updated]
    connector: zendesk
    then: [ { set_status: solved }, { add_tags: [done] } ]
  - id: parity-b
    on: [ticket.updated]
    connector: zendesk
    then: [ { set_status: solved } ]
  - id: parity-c
    on: [ticket.updated]
    connector: zendesk
    then: [ { add_tags: [done, checked] } ]
`)
	b, errs := Load(dir, testEnv(nil))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	mk := func() *event.Event {
		return parityEvent("ticket.updated", map[string]any{"status": "open", "tags": []string{"vip"}})
	}
	res, err := Simulate(b, SimRequest{Connector: "zendesk", Event: mk()}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, dir, nil, nil)
	if err := ts.ApplyEvents([]*event.Event{mk()}); err != nil {
		t.Fatal(err)
	}
	var deliveries []*store.Delivery
	for _, rule := range []string{"parity-a", "parity-b", "parity-c"} {
		ds, _, err := ts.Store().ListDeliveries(store.DeliveryFilter{Rule: rule})
		if err != nil {
			t.Fatal(err)
		}
		deliveries = append(deliveries, ds...)
	}
	if len(deliveries) != 2 || len(res.Actions) != 2 || len(res.Suppressed) != 1 {
		t.Fatalf("pipeline: %d deliveries; dry run: %d actions %+v, suppressed %v", len(deliveries), len(res.Actions), res.Actions, res.Suppressed)
	}
	if c := res.Actions[1]; c.RuleID != "parity-c" || len(c.AddTags) != 1 || c.AddTags[0] != "checked" {
		t.Errorf("dry run: parity-c's update is %+v, want only the tag checked", c)
	}
	// A later webhook is a new batch: what was queued before has been sent.
	sim := NewSimulation(b, time.Now())
	sim.Post(SimRequest{Connector: "zendesk", Event: mk()})
	again, err := sim.Post(SimRequest{Connector: "zendesk", Event: mk()})
	if err != nil || len(again.Actions) != 2 {
		t.Fatalf("second webhook: %v, actions %+v suppressed %v", err, again.Actions, again.Suppressed)
	}
}
