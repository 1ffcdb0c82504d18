package gateway

import (
	"path/filepath"
	"testing"
)

// Unquoted integers in a config test keep their digits: a 17-digit id in a
// payload maps to the reference a real webhook gives, and an expectation
// that differs in the last digit fails.
func TestConfigTestLongIntegersKeepTheirDigits(t *testing.T) {
	dir := copyConfigs(t)
	writeFile(t, filepath.Join(dir, "rules", "numbers.yaml"), `rules:
  - id: numbers-solve
    on: [ticket.updated]
    connector: zendesk
    when: { field: custom.numbers, is: "yes" }
    then:
      - set_status: solved
`)
	cases := []struct {
		name, test string
		pass       bool
	}{
		{"payload id, right reference", `
    connector: generic
    payload: { type: ticket.updated, id: 12345678901234567, status: open }
    expect:
      events: [ { reference: "12345678901234567" } ]`, true},
		{"payload id, unquoted expectation", `
    connector: generic
    payload: { type: ticket.updated, id: 12345678901234567, status: open }
    expect:
      events: [ { reference: 12345678901234567 } ]`, true},
		{"payload id, wrong expectation", `
    connector: generic
    payload: { type: ticket.updated, id: 12345678901234567, status: open }
    expect:
      events: [ { reference: 12345678901234568 } ]`, false},
		{"action reference, wrong expectation", `
    connector: zendesk
    event: { type: ticket.updated, entity: ticket, reference: "12345678901234567", fields: { custom.numbers: "yes", status: open } }
    expect:
      actions:
        - { rule: numbers-solve, reference: 12345678901234568 }`, false},
		{"action reference, right expectation", `
    connector: zendesk
    event: { type: ticket.updated, entity: ticket, reference: "12345678901234567", fields: { custom.numbers: "yes", status: open } }
    expect:
      actions:
        - { rule: numbers-solve, reference: 12345678901234567 }`, true},
		{"short numbers still compare as numbers", `
    connector: zendesk
    event: { type: ticket.updated, entity: ticket, reference: "77", fields: { custom.numbers: "yes", status: open, custom.n: 5 } }
    expect:
      events: [ { reference: 77, fields: { custom.n: 5.0 } } ]`, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			outcomes := runTestFile(t, dir, filepath.Join(dir, "rules", "numbers_test.yaml"), "tests:\n  - name: case"+tc.test+"\n", 1)
			if outcomes[0].Passed() != tc.pass {
				t.Fatalf("passed = %v, want %v: %v", outcomes[0].Passed(), tc.pass, outcomes[0].Failures)
			}
		})
	}
}
