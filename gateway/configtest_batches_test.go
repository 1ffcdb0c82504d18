package gateway

import (
	"path/filepath"
	"strings"
	"testing"
)

// Timers that come due at different times inside one advance fire in
// separate batches, as the scheduler fires them: a later timer's update
// that repeats an earlier one's is sent, not dropped as a no-op. Timers
// due at the same instant share a batch.
func TestConfigTestAdvanceFiresTimersInTheirOwnBatches(t *testing.T) {
	dir := copyConfigs(t)
	writeFile(t, filepath.Join(dir, "rules", "x_timers.yaml"), `rules:
  - id: t-a
    on: [ticket.*]
    connector: generic
    when: { field: status, is: pending }
    for: 1h
    then: [ { set_priority: high } ]
  - id: t-b
    on: [ticket.*]
    connector: generic
    when: { field: status, is: pending }
    for: 2h
    then: [ { set_priority: high }, { add_tags: [late] } ]
  - id: t-c
    on: [ticket.*]
    connector: generic
    when: { field: status, is: pending }
    for: 2h
    then: [ { set_priority: high } ]
`)
	tests := `tests:
  - name: one advance of 3h
    connector: generic
    payload: { type: ticket.updated, reference: T1, status: pending }
    expect: { matched: [] }
    steps:
      - advance: 3h
        expect:
          matched: [t-a, t-b, t-c]
          actions:
            - { rule: t-a, set: { priority: high } }
            - { rule: t-b, set: { priority: high }, add_tags: [late] }
          suppressed: 1
  - name: two advances of 90m
    connector: generic
    payload: { type: ticket.updated, reference: T1, status: pending }
    expect: { matched: [] }
    steps:
      - advance: 90m
        expect: { matched: [t-a] }
      - advance: 90m
        expect:
          matched: [t-b, t-c]
          actions:
            - { rule: t-b, set: { priority: high }, add_tags: [late] }
          suppressed: 1
`
	for _, o := range runTestFile(t, dir, filepath.Join(dir, "rules", "x_timers_test.yaml"), tests, 2) {
		if !o.Passed() {
			t.Errorf("%s: %s", o.Case, strings.Join(o.Failures, "\n"))
		}
	}
}
