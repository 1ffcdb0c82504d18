package gateway

import (
	"path/filepath"
	"strings"
	"testing"
)

// configTestRules are rules the expectation tests below post to: one whose
// action renders, one whose action cannot when a Spoki message has no id.
const configTestRules = `rules:
  - id: x-notify
    on: [ticket.*]
    connector: generic
    when: { field: status, is: open }
    then:
      - call_webhook: { url: "https://ops.example.com/notify" }
      - add_tags: [seen]
  - id: x-broken
    on: [chat.*]
    connector: spoki
    when: { field: text, contains: refund }
    then:
      - call_webhook: { url: "https://ops.example.com/x/%%MESSAGE_ID%%" }
`

// expectCase is one config test case and what its outcome must say.
type expectCase struct {
	name  string
	tests string
	// pass: the case must pass; else each of failures must be in one of
	// its failure messages.
	pass     bool
	failures []string
}

func runExpectCases(t *testing.T, cases []expectCase) {
	t.Helper()
	dir := copyConfigs(t)
	writeFile(t, filepath.Join(dir, "rules", "x_rules.yaml"), configTestRules)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := runTestFile(t, dir, filepath.Join(dir, "rules", "x_test.yaml"), "tests:\n"+c.tests, 1)[0]
			all := strings.Join(o.Failures, "\n")
			if c.pass && !o.Passed() {
				t.Fatalf("failed:\n%s", all)
			}
			if !c.pass && o.Passed() {
				t.Fatalf("passed, want a failure saying %q", c.failures)
			}
			for _, want := range c.failures {
				if !strings.Contains(all, want) {
					t.Errorf("failures do not say %q:\n%s", want, all)
				}
			}
		})
	}
}

// A rule error (an action that does not render) fails a case that does not
// expect errors: a negative expectation (not_matched, actions: []) would
// otherwise pass while the rule's conditions held.
func TestConfigTestRuleErrorsFailTheCase(t *testing.T) {
	runExpectCases(t, []expectCase{
		{name: "not_matched passes by the error", tests: `
  - name: broken
    connector: spoki
    query: { event: message_received }
    payload: { message: { contact: { phone: "+391" }, text: "I want a refund" } }
    expect: { not_matched: [x-broken], actions: [] }
`, failures: []string{"rule x-broken: ", `unknown variable "MESSAGE_ID"`}},
		{name: "in a step", tests: `
  - name: broken later
    connector: generic
    payload: { type: ticket.updated, reference: T1, status: open }
    expect: { matched: [x-notify] }
    steps:
      - connector: spoki
        query: { event: message_received }
        payload: { message: { contact: { phone: "+391" }, text: "I want a refund" } }
        expect: { matched: [] }
`, failures: []string{"step 1", "rule x-broken: "}},
		{name: "errors expected", pass: true, tests: `
  - name: broken, and said so
    connector: spoki
    query: { event: message_received }
    payload: { message: { contact: { phone: "+391" }, text: "I want a refund" } }
    expect: { matched: [], errors: 1 }
`},
	})
}

// A case or step that asserts nothing is an error at its position (an
// expect: indented one level too deep becomes a payload key and the case
// used to pass); a step that only sets the scene for a later one may
// leave the asserting to it.
func TestConfigTestCaseThatAssertsNothing(t *testing.T) {
	runExpectCases(t, []expectCase{
		{name: "expect indented into the payload", tests: `
  - name: indented
    connector: generic
    payload:
      type: ticket.updated
      reference: T1
      status: open
      expect:
        matched: [x-notify]
`, failures: []string{"x_test.yaml:3:5: case asserts nothing, but its payload has a key expect at ", "x_test.yaml:9:7: is expect: indented one level too deep?"}},
		{name: "no expect at all", tests: `
  - name: nothing
    connector: generic
    payload: { type: ticket.updated, reference: T1, status: open }
    expect: {}
`, failures: []string{"x_test.yaml:3:5: case asserts nothing: give expect:"}},
		{name: "a last step without expect", tests: `
  - name: steps
    connector: generic
    payload: { type: ticket.updated, reference: T1, status: open }
    expect: { matched: [x-notify] }
    steps:
      - advance: 1h
`, failures: []string{"x_test.yaml:8:9: step 1 asserts nothing: give expect:"}},
		{name: "a step's expect indented into its payload", tests: `
  - name: steps
    connector: generic
    payload: { type: ticket.updated, reference: T1, status: open }
    steps:
      - payload:
          type: ticket.updated
          reference: T1
          expect: { matched: [] }
      - advance: 1h
        expect: { matched: [] }
`, failures: []string{"x_test.yaml:7:9: step 1 asserts nothing, but its payload has a key expect at"}},
		{name: "a case and steps that assert nothing", tests: `
  - name: no expectations at all
    connector: generic
    payload: { type: ticket.updated, reference: T1, status: open }
    steps:
      - advance: 1h
`, failures: []string{"step 1 asserts nothing"}},
		{name: "a scene-setting step", pass: true, tests: `
  - name: steps
    connector: generic
    payload: { type: ticket.updated, reference: T1, status: pending }
    steps:
      - advance: 1h
        payload: { type: ticket.updated, reference: T1, status: open }
      - advance: 1h
        expect: { matched: [] }
`},
	})
}

// A test file with no case is an error: it passed, testing nothing.
func TestConfigTestFileWithoutCases(t *testing.T) {
	dir := copyConfigs(t)
	b, errs := Load(dir, testEnv(nil))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	for _, content := range []string{"tests: []\n", "tests:\n"} {
		file := filepath.Join(dir, "rules", "empty_test.yaml")
		writeFile(t, file, content)
		outcomes, errs := RunConfigTests(b, []string{file}, testEnv(nil))
		if len(outcomes) != 0 || len(errs) != 1 || !strings.Contains(errs.Error(), file+":1:") || !strings.Contains(errs.Error(), "at least one case") {
			t.Errorf("%q: outcomes %v errors %v, want one error at the file's line 1", content, outcomes, errs)
		}
	}
}

// An expected zero value (echo: false, remove_tags: []) matches a field
// the JSON leaves out (omitempty); a non-zero one still fails.
func TestConfigTestZeroValuesMatchOmittedFields(t *testing.T) {
	runExpectCases(t, []expectCase{
		{name: "zero values", pass: true, tests: `
  - name: a person's change is not an echo
    connector: generic
    payload: { type: ticket.updated, reference: T1, status: open }
    expect:
      events: [ { causation: { echo: false, delivery_id: "", echoed_fields: [] }, rule: "" } ]
      actions: [ { rule: x-notify, kind: call_webhook }, { rule: x-notify, remove_tags: [], set: {} } ]
`},
		{name: "a non-zero value", tests: `
  - name: an echo
    connector: generic
    payload: { type: ticket.updated, reference: T1, status: open }
    expect:
      events: [ { causation: { echo: true } } ]
`, failures: []string{`events[0].causation.echo: want true, got nothing`}},
	})
}

// A failure of an expected event, action or timer starts with the
// file:line:column of the expected value it concerns; a count mismatch
// still compares the items both lists have and names the missing and extra
// ones compactly instead of dumping what was made.
func TestConfigTestFailuresPointAtTheExpectation(t *testing.T) {
	runExpectCases(t, []expectCase{
		{name: "a missing key and a missing event", tests: `
  - name: where did it differ
    connector: generic
    payload: { type: ticket.updated, reference: T1, status: open }
    expect:
      actions:
        - { rule: x-notify, kind: call_webhook }
        - { rule: x-notify, add_tags: [seen], set: { status: open } }
      events:
        - { type: ticket.updated, reference: T2 }
        - { type: ticket.created }
`, failures: []string{
			`x_test.yaml:9:52: actions[1].set: want {"status":"open"}, got nothing`,
			`x_test.yaml:11:9: events: want 2, got 1`,
			`x_test.yaml:11:46: events[0].reference: want "T2", got "T1"`,
			`x_test.yaml:12:11: events[1]: missing: want {"type":"ticket.created"}`,
		}},
		{name: "an extra action and a list of another length", tests: `
  - name: one too many
    connector: generic
    payload: { type: ticket.updated, reference: T1, status: open }
    expect:
      actions:
        - rule: x-notify
          kind: call_webhook
          webhook: { url: "https://ops.example.com/other" }
      events: [ { fields: { tags: [a, b] } } ]
`, failures: []string{
			`x_test.yaml:8:9: actions: want 1, got 2`,
			`x_test.yaml:10:27: actions[0].webhook.url: want "https://ops.example.com/other", got "https://ops.example.com/notify"`,
			`x_test.yaml:8:9: actions[1]: extra: rule x-notify update_entity generic/ticket/T1`,
			`x_test.yaml:11:35: events[0].fields.tags: want ["a","b"], got nothing`,
		}},
		{name: "timers", tests: `
  - name: no timer
    connector: generic
    payload: { type: ticket.updated, reference: T1, status: open }
    expect:
      timers:
        - { rule: x-notify, due: "2026-01-06T10:00:00Z" }
`, failures: []string{
			`x_test.yaml:8:9: timers: want 1, got 0`,
			`x_test.yaml:8:11: timers[0]: missing: want {"due":"2026-01-06T10:00:00Z","rule":"x-notify"}`,
		}},
	})
}

// The count line no longer dumps every made item's JSON.
func TestConfigTestCountMismatchIsCompact(t *testing.T) {
	dir := copyConfigs(t)
	writeFile(t, filepath.Join(dir, "rules", "x_rules.yaml"), configTestRules)
	o := runTestFile(t, dir, filepath.Join(dir, "rules", "x_test.yaml"), `tests:
  - name: two events wanted
    connector: generic
    payload: { type: ticket.updated, reference: T1, status: open }
    expect: { events: [ { type: ticket.updated }, { type: ticket.created } ] }
`, 1)[0]
	all := strings.Join(o.Failures, "\n")
	if strings.Contains(all, `"received_at"`) || !strings.Contains(all, "events: want 2, got 1") {
		t.Errorf("failures:\n%s\nwant the count and the missing item, without the made events' JSON", all)
	}
}
