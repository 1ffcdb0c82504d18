package gateway

import (
	"path/filepath"
	"testing"
)

// Dry runs and config tests count a rule's `limit: { scope: rule }` over
// every entity of the run, as the pipeline counts it in the store: the
// rule stops firing once the limit is reached, for events and for timers,
// and fires again once the window has passed.
func TestConfigTestAppliesRuleScopeLimit(t *testing.T) {
	cfg := timerConfig(t, `rules:
  - id: escalate-twice-an-hour
    on: [ticket.updated]
    connector: generic
    when: { field: status, is: open }
    then: [ { set_priority: high } ]
    limit: { max: 2, per: 1h, scope: rule }
  - id: pending-once-a-day
    on: [ticket.*]
    connector: generic
    when: { field: status, is: pending }
    for: 1h
    then: [ { set_priority: urgent } ]
    limit: { max: 1, per: 24h, scope: rule }
`)
	tests := `tests:
  - name: two firings an hour over all tickets
    connector: generic
    payload: { type: ticket.updated, id: L-1, status: open }
    expect: { matched: [escalate-twice-an-hour] }
    steps:
      - payload: { type: ticket.updated, id: L-2, status: open }
        expect: { matched: [escalate-twice-an-hour] }
      - payload: { type: ticket.updated, id: L-3, status: open }
        expect: { matched: [] }
      - advance: 59m
        payload: { type: ticket.updated, id: L-4, status: open }
        expect: { matched: [] }
      - advance: 2m
        payload: { type: ticket.updated, id: L-5, status: open }
        expect: { matched: [escalate-twice-an-hour] }
  - name: one timer firing a day over all tickets
    connector: generic
    payload: { type: ticket.updated, id: P-1, status: pending }
    steps:
      - payload: { type: ticket.updated, id: P-2, status: pending }
      - advance: 1h
        expect: { matched: [pending-once-a-day] }
`
	file := filepath.Join(cfg, "rules", "limits_test.yaml")
	for i, o := range runTestFile(t, cfg, file, tests, 2) {
		if !o.Passed() {
			t.Errorf("case %d (%s): %q", i+1, o.Case, o.Failures)
		}
	}
}
