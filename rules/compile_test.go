package rules

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/yamlconf"
)

// TestConditionConfigErrors: wrong types and misspellings are config errors
// at file:line:column with the nearest valid name, never a silent false.
func TestConditionConfigErrors(t *testing.T) {
	cases := []struct {
		cond string
		want []string
	}{
		{`{ field: survey_rating, gt: "abc" }`, []string{`gt: expected a number (survey_rating is a number field), got "abc"`}},
		{`{ field: custom.score, gt: "abc" }`, []string{`gt: expected a number, a duration like 15m or an RFC 3339 timestamp, got "abc"`}},
		{`{ field: tags, includes: { a: b } }`, []string{"includes: expected a word or a list of words, got a mapping"}},
		{`{ field: custom.labels, includes: { a: b } }`, []string{"includes: expected a word or a list of words, got a mapping"}},
		{`{ field: status, includes: [a] }`, []string{"includes cannot be used on status", "use in or not_in"}},
		{`{ field: status, gt: open }`, []string{"gt cannot be used on status", "ordered enum"}},
		{`{ field: priority, gt: hihg }`, []string{`"hihg" is not a priority value; did you mean "high"?`}},
		{`{ field: priority, is: urgnet }`, []string{`did you mean "urgent"?`}},
		{`{ field: priority, changed_to: [high, medium] }`, []string{`"medium" is not a priority value`}},
		{`{ field: status_since, is: x }`, []string{"is cannot be used on status_since", "duration"}},
		{`{ field: agent_replies, gt: 15m }`, []string{`agent_replies is a number field; gt "15m" is a duration`}},
		{`{ field: status_since, gt: 5 }`, []string{"status_since is a timestamp field", "like 5m"}},
		{`{ field: survey_rating, is: bad }`, []string{`survey_rating is a number field; is "bad" is not a number`}},
		{`{ field: survey_rating, contains: x }`, []string{"contains cannot be used on survey_rating"}},
		{`{ field: tags, is: vip }`, []string{"is cannot be used on tags", "includes"}},
		{`{ field: tags, gt: 3 }`, []string{"tags have no order"}},
		{`{ field: status, iss: open }`, []string{`unknown condition key "iss"; did you mean "is"?`}},
		{`{ field: status, chnaged_to: open }`, []string{`did you mean "changed_to"?`}},
		{`{ feild: status, is: open }`, []string{`did you mean "field"?`}},
		{`{ field: status, is: [a, b] }`, []string{"is takes one value; to test several use in or not_in"}},
		{`{ field: status, is: ~ }`, []string{"null is not a value to compare with"}},
		{`{ field: status, is: { a: 1 } }`, []string{"is: expected a value, got a mapping"}},
		{`{ field: text, matches: "(" }`, []string{"matches: invalid regular expression: missing closing )"}},
		{`{ field: status, is: open, in: [a] }`, []string{"one operator per condition"}},
		{`{ field: status }`, []string{`condition on field "status" has no operator`}},
		{`{ tz: Europe/Madrid }`, []string{"condition has no operator (tz: only sets the time zone"}},
		{`{ is: open }`, []string{"is needs a field:"}},
		{`{ field: "a b", is: open }`, []string{"field: expected a field path"}},
		{`{ field: actor.typ, is: agent }`, []string{`unknown field "actor.typ"; did you mean "actor.type"?`}},
		{`{ field: event.kind, is: x }`, []string{`unknown field "event.kind"`}},
		{`{ field: agent_replies, changed: true }`, []string{"changed: agent_replies carries no changes"}},
		{`{ field: status, changed: yes }`, []string{"changed: expected true or false"}},
		{`{ field: status, present: 1 }`, []string{"present: expected true or false"}},
		{`{ field: survey_rating, between: [1] }`, []string{"between: expected [low, high]"}},
		{`{ field: survey_rating, between: [5, 1] }`, []string{"between: low end 5 is above high end 1"}},
		{`{ field: custom.x, between: [5, 10m] }`, []string{"between: both ends must be of the same kind"}},
		{`{ field: text, contains: "" }`, []string{"contains: expected a word or a list of words"}},
		{`{ field: text, contains: [] }`, []string{"contains: empty list"}},
		{`{ field: status, in: [] }`, []string{"in: empty list"}},
		{`{ field: owner, in: { list: x } }`, []string{"in: expected a list of values or { field: <a list field> }"}},
		{`{ not: [ { field: status, is: open } ] }`, []string{"not: takes one condition"}},
		{`{ all: [] }`, []string{"all: empty list of conditions"}},
		{`{ any: { field: status, is: open } }`, []string{"any: expected a list of conditions, got a mapping"}},
		{`{ all: [ { field: status, is: open } ], field: x }`, []string{"all: must be the only key"}},
		{`{ time_of_day: "25:00-03:00" }`, []string{`time_of_day: expected a window like "09:00-17:30"`}},
		{`{ time_of_day: "9-17" }`, []string{`time_of_day: expected a window`}},
		{`{ time_of_day: "09:00-09:00" }`, []string{"the window \"09:00-09:00\" is empty"}},
		{`{ time_of_day: "09:00-17:00", tz: Mars/Base }`, []string{`unknown time zone "Mars/Base"`}},
		{`{ time_of_day: "09:00-17:00", field: status }`, []string{"time_of_day takes no field"}},
		{`{ day_of_week: [mon, tuesdy] }`, []string{`unknown day "tuesdy"; did you mean "tue"?`}},
		{`{ day_of_week: mon-frj }`, []string{`unknown day "frj"`}},
		{`{ field: status, is: open, tz: UTC }`, []string{"tz: only applies to time_of_day and day_of_week"}},
		{`open`, []string{"expected a condition like { field: status, is: open }"}},
	}
	for _, tc := range cases {
		t.Run(tc.cond, func(t *testing.T) {
			got := compileFails(t, oneRule(tc.cond), Options{})
			if !strings.HasPrefix(got, "rules.yaml:4:") {
				t.Errorf("error not positioned on line 4:\n%s", got)
			}
			mustContain(t, got, tc.want...)
		})
	}
}

func TestErrorPositionColumn(t *testing.T) {
	got := compileFails(t, oneRule(`{ field: survey_rating, gt: "abc" }`), Options{})
	// `    when: { field: survey_rating, gt: "abc" }`: "abc" starts at column 39.
	if !strings.HasPrefix(got, `rules.yaml:4:39: gt: expected a number`) {
		t.Errorf("got %q", got)
	}
}

func TestRuleConfigErrors(t *testing.T) {
	known := Options{Connectors: []string{"zendesk", "spoki", "smartertrack"}}
	cases := []struct {
		name string
		src  string
		opts Options
		want []string
	}{
		{"unknown rule key", "rules:\n  - id: r\n    on: x.y\n    than: [ { set_status: open } ]\n", Options{}, []string{`rules.yaml:4:5: unknown key "than"; did you mean "then"?`, `missing required key "then"`}},
		{"for and idle together", "rules:\n  - id: r\n    on: x.y\n    for: 48h\n    idle: 1h\n    then: [ { set_status: open } ]\n", Options{}, []string{`rules.yaml:5:11: rule "r": for: and idle: cannot be combined`}},
		{"missing id", "rules:\n  - on: x.y\n    then: [ { set_status: open } ]\n", Options{}, []string{`missing required key "id"`}},
		{"missing on", "rules:\n  - id: r\n    then: [ { set_status: open } ]\n", Options{}, []string{`missing required key "on"`}},
		{"bad id", "rules:\n  - id: \"a b\"\n    on: x.y\n    then: [ { set_status: open } ]\n", Options{}, []string{`rules.yaml:2:9: rule id "a b"`}},
		{"duplicate id", "rules:\n  - id: r\n    on: x.y\n    then: [ { set_status: open } ]\n  - id: r\n    on: x.y\n    then: [ { set_status: open } ]\n", Options{}, []string{`rules.yaml:5:9: rule id "r" is already used at rules.yaml:2:5`}},
		{"bad event type", "rules:\n  - id: r\n    on: [\"ticket created\"]\n    then: [ { set_status: open } ]\n", Options{}, []string{`invalid event type pattern "ticket created"`}},
		{"manual with types", "rules:\n  - id: r\n    on: [manual, ticket.created]\n    then: [ { set_status: open } ]\n", Options{}, []string{"`on: manual` marks a rule that only runs on demand"}},
		{"unknown connector", "rules:\n  - id: r\n    on: x.y\n    connector: zendsek\n    then: [ { set_status: open } ]\n", known, []string{`rules.yaml:4:16: connector: unknown connector "zendsek"; did you mean "zendesk"?`}},
		{"unknown deliver_to", "rules:\n  - id: r\n    on: x.y\n    deliver_to: spok\n    then: [ { set_status: open } ]\n", known, []string{`deliver_to: unknown connector "spok"; did you mean "spoki"?`}},
		{"bad timezone", "rules:\n  - id: r\n    on: x.y\n    timezone: Europe/Roma\n    then: [ { set_status: open } ]\n", Options{}, []string{`rules.yaml:4:15: unknown time zone "Europe/Roma"`}},
		{"limit max", "rules:\n  - id: r\n    on: x.y\n    limit: { max: 0, per: 1h }\n    then: [ { set_status: open } ]\n", Options{}, []string{"limit max must be at least 1"}},
		{"limit per", "rules:\n  - id: r\n    on: x.y\n    limit: { max: 1, per: soon }\n    then: [ { set_status: open } ]\n", Options{}, []string{`limit per: expected a positive duration like 1h or 24h, got "soon"`}},
		{"limit scope", "rules:\n  - id: r\n    on: x.y\n    limit: { max: 1, per: 1h, scope: itme }\n    then: [ { set_status: open } ]\n", Options{}, []string{`unknown scope "itme"; did you mean "item"?`}},
		{"limit unknown key", "rules:\n  - id: r\n    on: x.y\n    limit: { max: 1, pr: 1h }\n    then: [ { set_status: open } ]\n", Options{}, []string{`unknown key "pr"; did you mean "per"?`}},
		{"allow_retrigger needs a limit", "rules:\n  - id: r\n    on: x.y\n    allow_retrigger: true\n    then: [ { set_status: open } ]\n", Options{}, []string{"rules.yaml:4:22: rule \"r\": allow_retrigger: true needs a limit"}},
		{"no actions", "rules:\n  - id: r\n    on: x.y\n    then: []\n", Options{}, []string{"then: needs at least one action"}},
		{"root key", "rulez:\n  - id: r\n", Options{}, []string{`unknown key "rulez"; did you mean "rules"?`}},
		{"enabled not bool", "rules:\n  - id: r\n    on: x.y\n    enabled: maybe\n    then: [ { set_status: open } ]\n", Options{}, []string{"expected true or false"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mustContain(t, compileFails(t, tc.src, tc.opts), tc.want...)
		})
	}
}

func TestCompileCollectsAllErrorsAcrossFiles(t *testing.T) {
	a, _ := yamlconf.Parse("a.yaml", []byte("rules:\n  - id: x\n    on: t.u\n    then: [ { set_staus: open } ]\n"), nil)
	b, _ := yamlconf.Parse("b.yaml", []byte("rules:\n  - id: x\n    on: t.u\n    then: [ { set_status: open } ]\n  - id: y\n    on: t.u\n    when: { field: status, si: open }\n    then: [ { set_status: open } ]\n"), nil)
	s, errs := Compile([]File{{Name: "a.yaml", Node: a}, {Name: "b.yaml", Node: b}, {Name: "empty.yaml"}}, Options{})
	if s != nil {
		t.Fatal("set returned with errors")
	}
	got := errs.Error()
	mustContain(t, got,
		`a.yaml:4:15: unknown action "set_staus"; did you mean "set_status"?`,
		`b.yaml:7:28: unknown condition key "si"; did you mean "is"?`)
	// The duplicate id is only detected among rules that compiled: a's x had errors but still holds its id.
	if !strings.Contains(got, `b.yaml:2:9: rule id "x" is already used at a.yaml:2:5`) {
		t.Errorf("duplicate across files not reported:\n%s", got)
	}
	if errs[0].Pos.File != "a.yaml" {
		t.Errorf("errors not sorted by file: %v", errs)
	}
}

func TestCompileInfo(t *testing.T) {
	src := `rules:
  - id: first
    name: First rule
    description: does things
    on: [ticket.created, "chat.*"]
    connector: [zendesk, spoki]
    deliver_to: zendesk
    limit: { max: 2, per: 1h, scope: rule }
    once_per_item: true
    on_own_changes: true
    then: [ { set_status: open } ]
  - id: second
    enabled: false
    on: manual
    then: [ { set_priority: high } ]
`
	s := mustCompile(t, src, Options{})
	rs := s.Rules()
	if len(rs) != 2 || rs[0].ID != "first" || rs[1].ID != "second" {
		t.Fatalf("rules = %+v", rs)
	}
	r := s.Rule("first")
	if r.Name != "First rule" || r.Description != "does things" || !r.Enabled || r.DeliverTo != "zendesk" ||
		!r.OncePerItem || !r.OnOwnChanges || r.Limit == nil || r.Limit.Max != 2 || r.Limit.Scope != ScopeRule ||
		len(r.On) != 2 || len(r.Connectors) != 2 || r.Pos.String() != "rules.yaml:2:5" {
		t.Errorf("first = %+v", r)
	}
	if r2 := s.Rule("second"); r2.Enabled || !r2.Manual {
		t.Errorf("second = %+v", r2)
	}
	if s.Rule("nope") != nil {
		t.Error("unknown id returned a rule")
	}
}

func TestWarnings(t *testing.T) {
	src := `rules:
  - id: r
    on: ticket.updated
    when: { field: stauts, is: open }
    then:
      - update_ticket: { reference: "T-1", status: open }
`
	s := mustCompile(t, src, Options{})
	got := s.Warnings().Error()
	mustContain(t, got,
		`rules.yaml:4:20: field "stauts" is not a field of the common model; did you mean "status"?`,
		`rules.yaml:6:37: update_ticket.reference "T-1" is literal`)
}

// TestAliasExpansionIsBounded: YAML aliases cannot make a rule expand
// exponentially (2^12 conditions here); compiling stops at the node budget.
// (A file whose aliases add more than 100,000 nodes, 2^20 conditions, is
// refused by yamlconf.Parse, before the compiler sees it.)
func TestAliasExpansionIsBounded(t *testing.T) {
	var when strings.Builder
	when.WriteString("        - &a0 { field: status, is: open }\n")
	for i := 1; i <= 12; i++ {
		fmt.Fprintf(&when, "        - &a%d { all: [ *a%d, *a%d ] }\n", i, i-1, i-1)
	}
	src := "rules:\n  - id: r\n    on: x.y\n    when:\n      all:\n" + when.String() + "    then: [ { set_status: open } ]\n"
	mustContain(t, compileFails(t, src, Options{}), `rule "r" is too large: its conditions and values expand to more than 10000 nodes`)

	var bomb strings.Builder
	bomb.WriteString("      - log: { file: &b0 [a, b], line: x }\n")
	for i := 1; i <= 12; i++ {
		fmt.Fprintf(&bomb, "      - log: { file: &b%d [ *b%d, *b%d ], line: x }\n", i, i-1, i-1)
	}
	fmt.Fprintf(&bomb, "      - set_fields: { custom.x: *b12 }\n      - call_webhook: { url: \"https://x\", body: *b12 }\n")
	got := compileFails(t, "rules:\n  - id: r\n    on: x.y\n    then:\n"+bomb.String(), Options{})
	mustContain(t, got, "set_fields.custom.x: the value expands to more than 10000 nodes", `rule "r" is too large`)
}

func TestEmptyRuleIDIsRefused(t *testing.T) {
	for _, src := range []string{
		"rules:\n  - id: \"\"\n    on: ticket.updated\n    then: [ { set_status: open } ]\n",
		"rules:\n  - id:\n    on: ticket.updated\n    then: [ { set_status: open } ]\n",
	} {
		mustContain(t, compileFails(t, src, Options{}), "rule id must not be empty")
	}
}

func TestTypeMatches(t *testing.T) {
	for _, tc := range []struct {
		pattern, typ string
		want         bool
	}{
		{"ticket.created", "ticket.created", true},
		{"ticket.created", "ticket.create", false},
		{"ticket.*", "ticket.created", true},
		{"ticket.*", "chat.created", false},
		{"*", "anything.at_all", true},
		{"*.status_changed", "chat.status_changed", true},
		{"*.status_changed", "chat.updated", false},
		{"t*.c*", "ticket.created", true},
	} {
		if got := typeMatches(tc.pattern, tc.typ); got != tc.want {
			t.Errorf("typeMatches(%q, %q) = %v, want %v", tc.pattern, tc.typ, got, tc.want)
		}
	}
}

// A connector repeated in a rule's filter is listed once (with a warning):
// the rule is considered, and fires, once per event.
func TestRepeatedConnectorFiresOnce(t *testing.T) {
	for _, filter := range []string{"[zendesk, zendesk]", "[zendesk, spoki, zendesk]"} {
		s, errs := compileSrc(t, `rules:
  - id: r
    on: [ticket.updated]
    connector: `+filter+`
    then:
      - call_webhook: { url: "https://ops.example.com/x" }
`, Options{})
		if s == nil || len(errs) > 0 {
			t.Fatalf("%s: %v", filter, errs)
		}
		res := s.Evaluate(Input{Event: mkEvent("ticket.updated", nil), Now: time.Now()})
		if len(res.Matched) != 1 || len(res.Updates) != 1 || len(res.Trace) != 1 {
			t.Errorf("%s: matched %v, %d updates, trace %+v", filter, res.Matched, len(res.Updates), res.Trace)
		}
		if w := s.Warnings().Error(); !strings.Contains(w, `connector "zendesk" is listed twice`) {
			t.Errorf("%s: warnings %q", filter, w)
		}
	}
}
