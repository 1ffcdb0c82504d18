package gateway

import (
	"path/filepath"
	"strings"
	"testing"
)

// A timer that fires after an entity's last event carried no vars renders
// with the vars of the last event that had some (the snapshot's), as the
// scheduler's LastEventVars gives them; a case's snapshot: { vars } is the
// entity's prior state and so serves a timer too.
func TestConfigTestTimerVarsFromSnapshot(t *testing.T) {
	dir := copyConfigs(t)
	tests := `tests:
  - name: vars of the last event that had some
    connector: spoki
    event: { type: ticket.status_changed, entity: ticket, reference: ORD-2002, fields: { status: Waiting }, vars: { TICKET_REFERENCE: ORD-2002, CUSTOMER_PHONE: "+393331234567" } }
    steps:
      - advance: 1h
        event: { type: ticket.note_added, entity: ticket, reference: ORD-2002, fields: { status: Waiting } }
        expect: { matched: [] }
      - advance: 23h
        expect:
          matched: [s2-escalate-waiting-ticket]
          actions: [ { rule: s2-escalate-waiting-ticket, vars: { TICKET_REFERENCE: ORD-2002 } } ]
  - name: vars of the case's snapshot
    connector: spoki
    snapshot: { fields: { status: Open }, vars: { TICKET_REFERENCE: ORD-2003 } }
    event: { type: ticket.status_changed, entity: ticket, reference: ORD-2003, fields: { status: Waiting } }
    expect: { matched: [] }
    steps:
      - advance: 24h
        expect:
          matched: [s2-escalate-waiting-ticket]
          actions: [ { rule: s2-escalate-waiting-ticket, vars: { TICKET_REFERENCE: ORD-2003 } } ]
`
	for _, o := range runTestFile(t, dir, filepath.Join(dir, "rules", "timer_vars_test.yaml"), tests, 2) {
		if !o.Passed() {
			t.Errorf("%s: %s", o.Case, strings.Join(o.Failures, "\n"))
		}
	}
}
