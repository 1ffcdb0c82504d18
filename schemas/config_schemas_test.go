package schemas_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/gateway"
	"github.com/hookline/hookline/internal/yamlconf"
	"github.com/hookline/hookline/rules"
	"github.com/hookline/hookline/schemas"
)

// yamlValue decodes one YAML document with gopkg.in/yaml.v3 into `any` and
// normalizes it into JSON-shaped values (what an editor's YAML language
// server validates): mappings with string keys, []any, and scalars.
func yamlValue(t testing.TB, src []byte) any {
	t.Helper()
	v, err := decodeYAML(src)
	if err != nil {
		t.Fatalf("parse YAML: %v", err)
	}
	return v
}

// decodeYAML is yamlValue without a test: timestamps stay the text written
// (2026-12-25 stays "2026-12-25", as JSON has no time type), anchors and
// aliases are expanded, and non-string keys become text.
func decodeYAML(src []byte) (any, error) {
	var n yaml.Node
	if err := yaml.Unmarshal(src, &n); err != nil {
		return nil, err
	}
	textTimestamps(&n)
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, err
	}
	return normalizeYAML(v), nil
}

// textTimestamps retags unquoted timestamps as strings.
func textTimestamps(n *yaml.Node) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!timestamp" {
		n.Tag = "!!str"
	}
	for _, c := range n.Content {
		textTimestamps(c)
	}
}

func normalizeYAML(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalizeYAML(e)
		}
		return out
	case map[any]any:
		// Keys that are not strings in YAML (1:, true:, null:) are text in JSON.
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = normalizeYAML(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalizeYAML(e)
		}
		return out
	}
	// Other values are the scalars yaml.v3 decodes into `any`: string, int,
	// float64, bool, nil.
	return v
}

func TestYAMLNormalization(t *testing.T) {
	got := yamlValue(t, []byte("a: &x { 1: one, true: yes }\nb: *x\nc: [2026-01-05T10:00:00Z, 2026-12-25, 1.5, 7, null]\nd: { <<: *x, e: 2026-01-05 }\nf: { ~: n }\n"))
	want := map[string]any{
		"a": map[string]any{"1": "one", "true": "yes"},
		"b": map[string]any{"1": "one", "true": "yes"},
		"c": []any{"2026-01-05T10:00:00Z", "2026-12-25", 1.5, 7, nil},
		"d": map[string]any{"1": "one", "true": "yes", "e": "2026-01-05"},
		"f": map[string]any{"<nil>": "n"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("yamlValue = %#v, want %#v", got, want)
	}
}

// shippedRuleFiles returns configs/rules/*.yaml without the config tests.
func shippedRuleFiles(t *testing.T) []string {
	t.Helper()
	all, err := filepath.Glob("../configs/rules/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range all {
		if !strings.HasSuffix(f, "_test.yaml") {
			out = append(out, f)
		}
	}
	if !slices.Contains(out, filepath.Join("../configs/rules", "zendesk-messaging-sessions.yaml")) {
		t.Fatalf("configs/rules/zendesk-messaging-sessions.yaml is missing (found %v)", out)
	}
	return out
}

// shippedTestFiles returns every configs/**/*_test.yaml.
func shippedTestFiles(t *testing.T) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir("../configs", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, "_test.yaml") {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(out, filepath.Join("../configs/rules", "zendesk-messaging-sessions_test.yaml")) {
		t.Fatalf("configs/rules/zendesk-messaging-sessions_test.yaml is missing (found %v)", out)
	}
	return out
}

func TestConfigNamesIncludeRulesAndTests(t *testing.T) {
	r := newRegistry(t)
	names := r.ConfigNames()
	for _, n := range []string{"rules.schema.json", "test.schema.json"} {
		if !slices.Contains(names, n) {
			t.Errorf("ConfigNames() = %v, missing %s", names, n)
		}
		if _, err := schemas.ConfigSchema(n); err != nil {
			t.Errorf("ConfigSchema(%s): %v", n, err)
		}
	}
	// The short names work like connector and gateway.
	if err := r.ValidateConfig("rules", map[string]any{"rules": []any{}}); err != nil {
		t.Errorf("ValidateConfig(rules, empty list): %v", err)
	}
	if err := r.ValidateConfig("test", map[string]any{"tests": []any{}}); err != nil {
		t.Errorf("ValidateConfig(test, empty list): %v", err)
	}
}

// Every shipped rules file validates against rules.schema.json, and every
// shipped config test file against test.schema.json. The gateway's loader
// (and its rules compiler) is the authority and accepts configs/ as a whole:
// a shipped file that fails here is a schema bug.
func TestShippedRuleFilesValidate(t *testing.T) {
	r := newRegistry(t)
	b := loadShippedConfig(t)
	for _, f := range union(shippedRuleFiles(t), b.RuleFiles) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if err := r.ValidateConfig("rules.schema.json", yamlValue(t, read(t, f))); err != nil {
				t.Errorf("%s: %v", f, err)
			}
		})
	}
}

func TestShippedConfigTestsValidate(t *testing.T) {
	r := newRegistry(t)
	b := loadShippedConfig(t)
	for _, f := range union(shippedTestFiles(t), b.TestFiles) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if err := r.ValidateConfig("test.schema.json", yamlValue(t, read(t, f))); err != nil {
				t.Errorf("%s: %v", f, err)
			}
		})
	}
}

// union returns the cleaned paths of a and b, without duplicates, sorted.
func union(a, b []string) []string {
	var out []string
	for _, p := range append(slices.Clone(a), b...) {
		if p = filepath.Clean(p); !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// loadShippedConfig loads configs/ with the gateway's own loader (no
// environment: every ${VAR:-default} takes its default), which must accept it.
func loadShippedConfig(t *testing.T) *gateway.Bundle {
	t.Helper()
	b, errs := gateway.Load("../configs", yamlconf.NoEnv)
	if len(errs) > 0 {
		t.Fatalf("the gateway refuses configs/: %v", errs)
	}
	if len(b.RuleFiles) == 0 || len(b.TestFiles) == 0 {
		t.Fatalf("configs/ has rule files %v and test files %v", b.RuleFiles, b.TestFiles)
	}
	return b
}

// calendarsSample is the calendars: node of a gateway.yaml, for rules that
// name a calendar.
const calendarsSample = `support: { timezone: Europe/Rome, hours: { mon-fri: "09:00-18:00" }, holidays: ["2026-12-25"] }`

// compileOptions are the rules compiler's options as the gateway sets them
// for configs/: the shipped connectors' names and the calendar "support".
func compileOptions(t testing.TB) rules.Options {
	t.Helper()
	calNode, errs := yamlconf.Parse("gateway.yaml", []byte(calendarsSample), yamlconf.NoEnv)
	if len(errs) > 0 {
		t.Fatalf("calendars: %v", errs)
	}
	cals, errs := rules.ParseCalendars("gateway.yaml", calNode)
	if len(errs) > 0 {
		t.Fatalf("calendars: %v", errs)
	}
	return rules.Options{Calendars: cals, Connectors: connectorNames(t)}
}

// compileRules compiles one rules file the way the gateway does.
func compileRules(opts rules.Options, name string, src []byte) yamlconf.Errors {
	root, errs := yamlconf.Parse(name, src, yamlconf.NoEnv)
	if len(errs) > 0 {
		return errs
	}
	_, errs = rules.Compile([]rules.File{{Name: name, Node: root}}, opts)
	return errs
}

// connectorNames returns the names of the shipped connectors.
func connectorNames(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob("../configs/connectors/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		doc, _ := yamlValue(t, read(t, f)).(map[string]any)
		if name, ok := doc["connector"].(string); ok {
			names = append(names, name)
		}
	}
	if !slices.Contains(names, "zendesk") || !slices.Contains(names, "generic") {
		t.Fatalf("connector names %v lack zendesk or generic", names)
	}
	return names
}

// validateRules validates a rules document and returns the schema's verdict.
func validateRules(t testing.TB, r *schemas.Registry, src string) *schemas.ValidationError {
	t.Helper()
	err := r.ValidateConfig("rules.schema.json", yamlValue(t, []byte(src)))
	if err == nil {
		return nil
	}
	var ve *schemas.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("ValidateConfig = %v, want a *ValidationError", err)
	}
	if strings.Contains(ve.Reason, "\n") {
		t.Errorf("reason is not one line: %q", ve.Reason)
	}
	return ve
}

// rulesSample uses most of the rule syntax; the broken documents below are
// made from it by one replacement each.
const rulesSample = `rules:
  - id: pending-too-long
    name: Pending too long
    description: Waiting tickets get attention.
    enabled: true
    on: [ticket.updated, ticket.status_changed]
    connector: zendesk
    timezone: Europe/Rome
    when:
      all:
        - { field: status, is: pending }
        - { field: priority, in: [low, normal] }
        - any:
            - { time_of_day: "09:00-18:00", tz: America/New_York }
            - not: { day_of_week: weekend }
        - { field: subject, matches: "^Re: " }
    then:
      - set_priority: high
      - add_tags: [waited]
      - update_ticket: { reference: "%%TICKET_REFERENCE%%", status: open }
      - call_webhook: { url: "https://ops.example.com/t/{{ .Event.Reference | pathescape }}", method: POST, body: { ticket: "%%TICKET_REFERENCE%%" } }
      - log: { file: after-hours.log, line: "{{ .Event.Reference }}" }
    deliver_to: zendesk
    limit: { max: 1, per: 24h, scope: item }
    once_per_item: false
    on_own_changes: false
`

type brokenDoc struct {
	name     string
	from, to string
	pointer  string
	reason   string // substring of the reason
}

var brokenRules = []brokenDoc{
	{"unknown operator", "{ field: status, is: pending }", "{ field: status, iss: pending }", "/rules/0/when/all/0", "'iss' not allowed"},
	{"unknown operator in a nested any", `{ time_of_day: "09:00-18:00", tz: America/New_York }`, `{ time_of_days: "09:00-18:00", tz: America/New_York }`, "/rules/0/when/all/2/any/0", "'time_of_days' not allowed"},
	{"unknown action", "- set_priority: high", "- set_prio: high", "/rules/0/then/0", "'set_prio' not allowed"},
	{"bad limit duration", "per: 24h", "per: 24hours", "/rules/0/limit/per", "does not match pattern"},
	{"limit duration without unit", "per: 24h", "per: 3600", "/rules/0/limit/per", "expected string"},
	{"two operators", "{ field: status, is: pending }", "{ field: status, is: pending, is_not: open }", "/rules/0/when/all/0", "maximum 2 properties"},
	{"operator without field", "{ field: status, is: pending }", "{ is: pending }", "/rules/0/when/all/0/field", "missing property"},
	{"field without operator", "{ field: status, is: pending }", "{ field: status }", "/rules/0/when/all/0", "minimum 2 properties"},
	{"tz on a field condition", "{ field: status, is: pending }", "{ field: status, is: pending, tz: UTC }", "/rules/0/when/all/0/tz", "not allowed"},
	{"tree key with other keys", "- not: { day_of_week: weekend }", "- { not: { day_of_week: weekend }, field: status }", "/rules/0/when/all/2/any/1", "maximum 1 properties"},
	{"not takes one mapping", "- not: { day_of_week: weekend }", "- not: [ { day_of_week: weekend } ]", "/rules/0/when/all/2/any/1/not", "expected object"},
	{"field on time_of_day", `{ time_of_day: "09:00-18:00", tz: America/New_York }`, `{ time_of_day: "09:00-18:00", field: status }`, "/rules/0/when/all/2/any/0/field", "value must be one of"},
	{"empty in list", "in: [low, normal]", "in: []", "/rules/0/when/all/1/in", "minimum 1 items"},
	{"is with a list", "is: pending", "is: [pending, open]", "/rules/0/when/all/0/is", "expected string"},
	{"is null", "is: pending", "is: null", "/rules/0/when/all/0/is", "expected string"},
	{"bad time_of_day", `time_of_day: "09:00-18:00"`, `time_of_day: "9-18"`, "/rules/0/when/all/2/any/0/time_of_day", "does not match pattern"},
	{"bad day_of_week", "day_of_week: weekend", "day_of_week: weekends", "/rules/0/when/all/2/any/1/not/day_of_week", "does not match pattern"},
	{"bad regular expression", `matches: "^Re: "`, `matches: "(unclosed"`, "/rules/0/when/all/3/matches", "regex"},
	{"unknown actor field", "{ field: status, is: pending }", "{ field: actor.role, is: pending }", "/rules/0/when/all/0/field", "value must be one of"},
	{"bad field path", "{ field: status, is: pending }", "{ field: \"status name\", is: pending }", "/rules/0/when/all/0/field", "does not match pattern"},
	{"between with three bounds", "{ field: subject, matches: \"^Re: \" }", "{ field: survey_rating, between: [1, 2, 3] }", "/rules/0/when/all/3/between", "maximum 2 items"},
	{"manual with event types", "on: [ticket.updated, ticket.status_changed]", "on: [manual, ticket.updated]", "/rules/0/on", "maximum 1 items"},
	{"bad event type", "on: [ticket.updated, ticket.status_changed]", "on: [ticket updated]", "/rules/0/on/0", "does not match pattern"},
	{"no event types", "on: [ticket.updated, ticket.status_changed]", "on: []", "/rules/0/on", "minimum 1 items"},
	{"missing then", "    then:\n", "    than:\n", "/rules/0/then", "missing property"},
	{"missing id", "  - id: pending-too-long\n    name:", "  - name:", "/rules/0/id", "missing property"},
	{"bad id", "id: pending-too-long", "id: \"pending too long\"", "/rules/0/id", "does not match pattern"},
	{"unknown rule key", "    timezone: Europe/Rome\n", "    timezone: Europe/Rome\n    timezon: UTC\n", "/rules/0", "'timezon' not allowed"},
	{"unknown root key", "rules:\n", "rulez:\n", "", "'rulez' not allowed"},
	{"no actions", "    then:\n      - set_priority: high\n      - add_tags: [waited]\n      - update_ticket: { reference: \"%%TICKET_REFERENCE%%\", status: open }\n      - call_webhook: { url: \"https://ops.example.com/t/{{ .Event.Reference | pathescape }}\", method: POST, body: { ticket: \"%%TICKET_REFERENCE%%\" } }\n      - log: { file: after-hours.log, line: \"{{ .Event.Reference }}\" }\n", "    then: []\n", "/rules/0/then", "minimum 1 items"},
	{"two actions in one item", "- set_priority: high", "- { set_priority: high, set_group: tier2 }", "/rules/0/then/0", "maximum 1 properties"},
	{"priority cleared", "- set_priority: high", "- set_priority: null", "/rules/0/then/0/set_priority", "expected string"},
	{"set_fields unknown field", "- set_priority: high", "- set_fields: { prio: high }", "/rules/0/then/0/set_fields", "'prio' not allowed"},
	{"empty tag list", "add_tags: [waited]", "add_tags: []", "/rules/0/then/1/add_tags", "minimum 1 items"},
	{"update_ticket without a field", `{ reference: "%%TICKET_REFERENCE%%", status: open }`, `{ reference: "%%TICKET_REFERENCE%%" }`, "/rules/0/then/2/update_ticket/status", "missing property"},
	{"update_ticket without reference", `{ reference: "%%TICKET_REFERENCE%%", status: open }`, `{ status: open }`, "/rules/0/then/2/update_ticket/reference", "missing property"},
	{"update_ticket literal reference too long", `reference: "%%TICKET_REFERENCE%%"`, `reference: "` + strings.Repeat("R", 300) + `"`, "/rules/0/then/2/update_ticket/reference", "length must be <= 256"},
	{"update_ticket unknown key", "status: open }", "status: open, state: open }", "/rules/0/then/2/update_ticket", "'state' not allowed"},
	{"call_webhook without scheme", "https://ops.example.com/t/{{ .Event.Reference | pathescape }}", "ops.example.com/t/x", "/rules/0/then/3/call_webhook/url", "does not match pattern"},
	{"call_webhook template in the host", "https://ops.example.com/t/", "https://{{ .Fields.host }}/t/", "/rules/0/then/3/call_webhook/url", "does not match pattern"},
	{"call_webhook URL all a variable", "https://ops.example.com/t/{{ .Event.Reference | pathescape }}", "%%CALLBACK_URL%%", "/rules/0/then/3/call_webhook/url", "does not match pattern"},
	{"call_webhook bad method", "method: POST", "method: SEND", "/rules/0/then/3/call_webhook/method", "value must be one of"},
	{"log without line", `line: "{{ .Event.Reference }}"`, `lines: "{{ .Event.Reference }}"`, "/rules/0/then/4/log/line", "missing property"},
	{"bad limit scope", "scope: item", "scope: items", "/rules/0/limit/scope", "value must be one of"},
	{"limit max 0", "max: 1,", "max: 0,", "/rules/0/limit/max", "must be >= 1"},
	{"limit without per", "max: 1, per: 24h,", "max: 1,", "/rules/0/limit/per", "missing property"},
	{"bad deliver_to", "deliver_to: zendesk", "deliver_to: [zendesk]", "/rules/0/deliver_to", "expected string"},
	{"allow_retrigger without limit", "    limit: { max: 1, per: 24h, scope: item }\n", "    allow_retrigger: true\n", "/rules/0/limit", "missing property"},
	{"bad for duration", "    once_per_item: false\n", "    once_per_item: false\n    for: 2 days\n", "/rules/0/for", "does not match pattern"},
	{"bad idle duration", "    once_per_item: false\n", "    once_per_item: false\n    idle: 30\n", "/rules/0/idle", "expected string"},
	{"for and idle together", "    once_per_item: false\n", "    once_per_item: false\n    for: 48h\n    idle: 30m\n", "/rules/0/idle", "not allowed"},
	{"since without for", "    once_per_item: false\n", "    once_per_item: false\n    since: last_customer_message_at\n", "/rules/0/for", "missing property"},
	{"within with one bound", "    once_per_item: false\n", "    once_per_item: false\n    for: 5m\n    within: [5m]\n", "/rules/0/within", "minimum 2 items"},
	{"within with a bad bound", "    once_per_item: false\n", "    once_per_item: false\n    for: 5m\n    within: [5m, 15 minutes]\n", "/rules/0/within/1", "does not match pattern"},
	{"pause_when unknown operator", "    once_per_item: false\n", "    once_per_item: false\n    for: 48h\n    pause_when: { field: status, equals: snoozed }\n", "/rules/0/pause_when", "'equals' not allowed"},
	{"for: true without within", "    once_per_item: false\n", "    once_per_item: false\n    for: true\n", "/rules/0/within", "missing property"},
	{"within without for or idle", "    once_per_item: false\n", "    once_per_item: false\n    within: [5m, 15m]\n", "/rules/0/for", "missing property"},
	{"calendar without for or idle", "    once_per_item: false\n", "    once_per_item: false\n    calendar: support\n", "/rules/0/for", "missing property"},
	{"idle with since", "    once_per_item: false\n", "    once_per_item: false\n    idle: 1h\n    since: status_since\n", "/rules/0/since", "not allowed"},
	{"time-based manual rule", "on: [ticket.updated, ticket.status_changed]", "on: manual\n    for: 1h", "/rules/0/on", "not failed"},
	{"time-based rule on its own timers", "on: [ticket.updated, ticket.status_changed]", "on: [ticket.updated, timer.fired]\n    for: 1h", "/rules/0/on", "not failed"},
	{"since on an actor field", "    once_per_item: false\n", "    once_per_item: false\n    for: 1h\n    since: actor.name\n", "/rules/0/since", "not failed"},
	{"after a field that is not a timestamp", "{ field: subject, matches: \"^Re: \" }", "{ field: last_customer_message_at, after: vars.SENT }", "/rules/0/when/all/3/after", "not failed"},
	{"bad calendar name", "    once_per_item: false\n", "    once_per_item: false\n    for: 8h\n    calendar: \"support hours\"\n", "/rules/0/calendar", "does not match pattern"},
}

func TestRulesSchemaRefusesMistakes(t *testing.T) {
	r := newRegistry(t)
	if ve := validateRules(t, r, rulesSample); ve != nil {
		t.Fatalf("the sample is refused: %v", ve)
	}
	opts := compileOptions(t)
	if errs := compileRules(opts, "sample.yaml", []byte(rulesSample)); len(errs) > 0 {
		t.Fatalf("the rules compiler refuses the sample: %v", errs)
	}
	for _, tc := range brokenRules {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(rulesSample, tc.from) {
				t.Fatalf("the sample does not contain %q", tc.from)
			}
			broken := strings.Replace(rulesSample, tc.from, tc.to, 1)
			ve := validateRules(t, r, broken)
			if ve == nil {
				t.Fatalf("schema accepts the broken document:\n%s", broken)
			}
			if ve.Pointer != tc.pointer || !strings.Contains(ve.Reason, tc.reason) {
				t.Errorf("pointer %q reason %q, want pointer %q reason containing %q", ve.Pointer, ve.Reason, tc.pointer, tc.reason)
			}
			if ve.Schema != "rules.schema.json" {
				t.Errorf("Schema = %q", ve.Schema)
			}
			// The compiler, the authority, refuses it too.
			if errs := compileRules(opts, "broken.yaml", []byte(broken)); len(errs) == 0 {
				t.Errorf("the rules compiler accepts what the schema refuses:\n%s", broken)
			}
		})
	}
}

// validRules are documents both the schema and the compiler accept; together
// they use every operator and every action the schema lists.
var validRules = []struct {
	name string
	src  string
}{
	{"minimal", "rules:\n  - { id: r, on: ticket.created, then: { set_status: open } }\n"},
	{"empty file", "rules: []\n"},
	{"null rules", "rules:\n"},
	{"every operator", `rules:
  - id: ops
    on: "*"
    connector: [zendesk, spoki]
    when:
      - { field: status, is: open }
      - { field: status, is_not: 3 }
      - { field: group, in: tier1 }
      - { field: owner, in: { field: custom.on_leave } }
      - { field: owner, not_in: [a, b] }
      - { field: status, changed: true }
      - { field: status, changed_to: [open, pending] }
      - { field: status, changed_from: new }
      - { field: priority, not_changed: true }
      - { field: text, contains: [billing, "credit card"] }
      - { field: subject, not_contains: spam }
      - { field: text, contains_any: [refund, cancel] }
      - { field: customer.email, matches: "@example\\.com$" }
      - { field: survey_rating, gt: 1 }
      - { field: survey_rating, gte: 1.5 }
      - { field: status_since, lt: 48h }
      - { field: priority, lte: high }
      - { field: last_activity_at, between: [15m, 2d] }
      - { field: custom.when, gt: "2026-01-05T10:00:00Z" }
      - { field: owner, present: true }
      - { field: group, absent: false }
      - { field: tags, includes: [vip, gold] }
      - { field: tags, includes_all: vip }
      - { field: tags, excludes: [no_automation] }
      - { field: actor.type, is: customer }
      - { field: event.connector, is: zendesk }
      - { field: vars.ORDER_ID, present: true }
      - { time_of_day: "22:00-24:00" }
      - { day_of_week: [Mon-Fri, "sat, sunday"], tz: Europe/Rome }
      - any: [ { field: status, is: open }, [ { field: priority, is: high } ] ]
      - not: { all: [ { field: status, is: solved } ] }
    then:
      - add_tags: tagged
    limit: { max: 2, per: 1w, scope: rule }
    allow_retrigger: true
`},
	{"every action", `rules:
  - id: acts
    on: [manual]
    deliver_to: generic
    then:
      - set_status: solved
      - set_priority: "{{ .Field \"priority\" }}"
      - set_owner: null
      - set_group: tier2
      - set_category: billing
      - set_channel: email
      - set_fields: { custom.order_id: "%%ORDER_ID%%", custom.score: 5, custom.list: [1, 2], custom.map: { a: b } }
      - add_tags: [a, b]
      - remove_tags: spam
      - update_ticket: { reference: "%%TICKET_REFERENCE%%", priority: high, category: null, owner: x, connector: spoki }
      - call_webhook: "https://ops.example.com/ping"
      - call_webhook:
          url: "https://${CALLBACK_HOST:-ops.example.com}/cb/{{ .Var \"CALLBACK_ID\" | pathescape }}?ref={{ .Event.Reference | queryescape }}"
          method: get
          headers: { X-Source: hookline, X-Count: 2 }
          body: "raw {{ .Event.Reference }}"
      - send_message: "We are on it, {{ .Event.Actor.Name }}"
      - send_message: { text: hello, to: "%%PHONE%%" }
      - log: { file: a.log, line: "{{ .Rule }}" }
`},
	{"set_fields writes the model fields", `rules:
  - id: sf
    on: chat.ended
    then:
      - set_fields: { status: solved, priority: low, owner: null, group: g, category: c, channel: email }
`},
	{"a single action mapping and a list of event types with wildcards", `rules:
  - id: w
    on: ["*.created", ticket.*]
    enabled: false
    when: { any: [ { field: status, is: open }, { field: status, is: new } ] }
    then: { add_tags: [seen] }
`},
	{"time-based keys", `rules:
  - id: pending-48h
    on: [ticket.*]
    when: { field: status, is: pending }
    for: 48h
    since: status_since
    within: [48h, 72h]
    pause_when: { field: status, is: snoozed }
    then: [ { set_priority: high } ]
  - id: stuck
    on: [ticket.*]
    when: { field: owner, present: true }
    idle: 1.5d
    then: [ { set_group: escalations } ]
  - id: unanswered
    on: [ticket.*]
    when:
      all:
        - { field: last_customer_message_at, after: last_agent_message_at }
        - not: { field: last_agent_message_at, before: custom.callback_requested_at }
    for: 4h
    since: custom.callback_requested_at
    then: [ { add_tags: unanswered } ]
  - id: chat-idle-window
    on: [chat.*]
    when: { field: status, is: active }
    idle: true
    within: [5m, 15m]
    then: [ { set_group: rescue } ]
  - id: waiting-window
    on: [ticket.*]
    when: { field: status, is: waiting }
    for: true
    within: [60m, 120m]
    calendar: support
    then: [ { set_status: active } ]
`},
	{"calendar", `rules:
  - id: business-hours
    on: [ticket.*]
    when: { field: status, is: pending }
    for: 8h
    calendar: support
    then: [ { set_priority: high } ]
`},
}

func TestRulesSchemaAcceptsValidDocuments(t *testing.T) {
	r := newRegistry(t)
	opts := compileOptions(t)
	for _, tc := range validRules {
		t.Run(tc.name, func(t *testing.T) {
			if ve := validateRules(t, r, tc.src); ve != nil {
				t.Errorf("schema refuses a valid document: %v", ve)
			}
			if errs := compileRules(opts, "valid.yaml", []byte(tc.src)); len(errs) > 0 {
				t.Errorf("the rules compiler refuses it: %v", errs)
			}
		})
	}
}

// schemaDoc is a decoded schema file.
type schemaDoc map[string]any

func loadSchema(t testing.TB, name string) schemaDoc {
	t.Helper()
	src, err := schemas.ConfigSchema(name)
	if err != nil {
		t.Fatal(err)
	}
	var d schemaDoc
	if err := json.Unmarshal(src, &d); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return d
}

// props returns the property names of the subschema at path (keys of nested
// objects, e.g. "$defs", "rule").
func (d schemaDoc) props(t testing.TB, path ...string) []string {
	t.Helper()
	var cur any = map[string]any(d)
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			t.Fatalf("schema path %v: %q is not an object", path, p)
		}
		cur = m[p]
	}
	m, _ := cur.(map[string]any)
	ps, _ := m["properties"].(map[string]any)
	if ps == nil {
		t.Fatalf("schema path %v has no properties", path)
	}
	out := make([]string, 0, len(ps))
	for k := range ps {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// compilerList compiles src, expects an error containing marker (like
// "(operators: ") and returns the comma-separated list that follows it up
// to the closing parenthesis.
func compilerList(t *testing.T, src, marker string) []string {
	t.Helper()
	errs := compileRules(compileOptions(t), "probe.yaml", []byte(src))
	for _, e := range errs {
		_, rest, ok := strings.Cut(e.Msg, marker)
		if !ok {
			continue
		}
		list, _, _ := strings.Cut(rest, ")")
		out := strings.Split(list, ", ")
		sort.Strings(out)
		return out
	}
	t.Fatalf("no compiler error with %q for:\n%s\ngot: %v", marker, src, errs)
	return nil
}

// The schema lists exactly the keys, operators and actions the compiler
// knows: the compiler names them in its errors for an unknown one.
func TestRulesSchemaMatchesCompiler(t *testing.T) {
	d := loadSchema(t, "rules.schema.json")
	rule := "rules:\n  - { id: r, on: ticket.updated, then: [ %s ], %s }\n"
	cases := []struct {
		what        string
		src, marker string
		schemaPath  []string
		skip        []string // schema keys the compiler does not list there
	}{
		{"rule keys", fmt.Sprintf(rule, "{ set_status: open }", "zzz: 1"), "(valid: ", []string{"$defs", "rule"}, nil},
		{"operators", fmt.Sprintf(rule, "{ set_status: open }", "when: { field: status, zzz: 1 }"), "(operators: ", []string{"$defs", "conditionMapping"},
			[]string{"all", "any", "not", "field", "tz"}},
		{"actions", fmt.Sprintf(rule, "{ zzz: 1 }", "enabled: true"), "(actions: ", []string{"$defs", "action"}, nil},
		{"limit keys", fmt.Sprintf(rule, "{ set_status: open }", "limit: { max: 1, per: 1h, zzz: 1 }"), "(valid: ", []string{"$defs", "limit"}, nil},
		{"update_ticket keys", fmt.Sprintf(rule, "{ update_ticket: { reference: R, status: open, zzz: 1 } }", "enabled: true"), "(valid: ", []string{"$defs", "updateTicket"}, nil},
		{"call_webhook keys", fmt.Sprintf(rule, `{ call_webhook: { url: "https://x", zzz: 1 } }`, "enabled: true"), "(valid: ", []string{"$defs", "webhook"}, nil},
		{"log keys", fmt.Sprintf(rule, "{ log: { file: a, line: b, zzz: 1 } }", "enabled: true"), "(valid: ", []string{"$defs", "action", "properties", "log"}, nil},
		{"send_message keys", fmt.Sprintf(rule, "{ send_message: { text: a, zzz: 1 } }", "enabled: true"), "(valid: ", []string{"$defs", "action", "properties", "send_message", "then"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.what, func(t *testing.T) {
			compiler := compilerList(t, tc.src, tc.marker)
			var schema []string
			for _, k := range d.props(t, tc.schemaPath...) {
				if !slices.Contains(tc.skip, k) {
					schema = append(schema, k)
				}
			}
			for _, k := range compiler {
				if !slices.Contains(schema, k) {
					t.Errorf("the compiler knows %q, the schema does not", k)
				}
			}
			for _, k := range schema {
				if !slices.Contains(compiler, k) {
					t.Errorf("the schema lists %q, the compiler does not know it (compiler: %v)", k, compiler)
				}
			}
		})
	}
}

// Every key, operator and action the schema lists is used by the sample or
// a valid document above, so each one is checked against the compiler.
func TestValidRulesCoverTheSchema(t *testing.T) {
	d := loadSchema(t, "rules.schema.json")
	var all strings.Builder
	all.WriteString(rulesSample)
	for _, tc := range validRules {
		all.WriteString(tc.src)
	}
	for _, path := range [][]string{{"$defs", "conditionMapping"}, {"$defs", "action"}, {"$defs", "rule"}} {
		for _, k := range d.props(t, path...) {
			if !strings.Contains(all.String(), k+":") {
				t.Errorf("no valid document uses %s %q", path[1], k)
			}
		}
	}
}

// The structural checks of a condition (a field operator needs field:, and
// only one) name every operator that takes a field: the list in the leaf
// branch is the operators minus the tree keys and the time-of-day ones.
func TestConditionOperatorListsAgree(t *testing.T) {
	d := loadSchema(t, "rules.schema.json")
	var want []string
	for _, k := range d.props(t, "$defs", "conditionMapping") {
		if !slices.Contains([]string{"all", "any", "not", "field", "tz", "time_of_day", "day_of_week"}, k) {
			want = append(want, k)
		}
	}
	cm := d["$defs"].(map[string]any)["conditionMapping"].(map[string]any)
	leaf := cm["else"].(map[string]any)["else"].(map[string]any)["if"].(map[string]any)["anyOf"].([]any)
	var got []string
	for _, alt := range leaf {
		req := alt.(map[string]any)["required"].([]any)
		if len(req) != 1 {
			t.Fatalf("leaf branch alternative %v: want one required operator", alt)
		}
		got = append(got, req[0].(string))
	}
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Errorf("leaf branch lists operators %v, the condition's properties are %v", got, want)
	}
}

// testSample is a config test file using most of the syntax, including the
// time steps.
const testSample = `tests:
  - name: a pending ticket gets priority high after 48 hours
    connector: zendesk
    headers: { X-Trace: "1" }
    query: { event: ticket_updated }
    content_type: application/json
    payload: { event: ticket.updated, ticket: { id: "1042", status: pending } }
    snapshot:
      fields: { status: open, priority: normal }
      last_agent_message_at: "2026-01-05T09:05:00Z"
      agent_replies: 1
      fired: { r1: ["2026-01-05T07:40:00Z"] }
    now: "2026-01-05T10:00:00Z"
    expect:
      unmapped: false
      events:
        - { type: ticket.updated, reference: "1042", changes: { status: { from: open, to: pending }, priority: null } }
      matched: [r1]
      not_matched: [r2]
      actions:
        - { kind: update_entity, rule: r1, connector: zendesk, set: { priority: high }, add_tags: [waited] }
        - { kind: call_webhook, webhook: { url: "https://x", method: POST, body: '{"a":1}' } }
      suppressed: 0
      errors: 0
    steps:
      - advance: 48h
        expect: { matched: [r1] }
      - event: { connector: zendesk, type: ticket.updated, entity: ticket, reference: "1042", actor: { type: agent }, vars: { TICKET_REFERENCE: "1042" } }
        expect: { matched: [] }
  - name: a form payload from a fixture
    connector: smartertrack
    content_type: application/x-www-form-urlencoded
    fixture: testdata/ticket.form
    expect:
      matched: t1
`

var brokenTests = []brokenDoc{
	{name: "unknown case key", from: "connector: zendesk\n    headers", to: "conector: zendesk\n    headers", pointer: "/tests/0", reason: "'conector' not allowed"},
	{name: "expect key misspelt", from: "matched: [r1]\n      not_matched", to: "matchd: [r1]\n      not_matched", pointer: "/tests/0/expect", reason: "'matchd' not allowed"},
	{name: "bad now", from: `now: "2026-01-05T10:00:00Z"`, to: `now: "2026-01-05 10:00"`, pointer: "/tests/0/now", reason: "date-time"},
	{name: "bad advance", from: "advance: 48h", to: "advance: 2 days", pointer: "/tests/0/steps/0/advance", reason: "does not match pattern"},
	{name: "unknown step key", from: "advance: 48h\n", to: "advance: 48h\n        wait: 1h\n", pointer: "/tests/0/steps/0", reason: "'wait' not allowed"},
	{name: "empty step", from: "      - advance: 48h\n        expect: { matched: [r1] }\n", to: "      - expect: { matched: [r1] }\n", pointer: "/tests/0/steps/0/advance", reason: "missing property"},
	{name: "bad timer expectation", from: "      suppressed: 0\n", to: "      timers: [ { rule: r1, when: \"2026-01-07T10:00:00Z\" } ]\n      suppressed: 0\n", pointer: "/tests/0/expect/timers/0", reason: "'when' not allowed"},
	{name: "bad expected clock", from: "      suppressed: 0\n", to: "      now: tomorrow\n      suppressed: 0\n", pointer: "/tests/0/expect/now", reason: "date-time"},
	{name: "query not a mapping", from: "query: { event: ticket_updated }", to: "query: event=ticket_updated", pointer: "/tests/0/query", reason: "expected object"},
	{name: "number variable", from: `TICKET_REFERENCE: "1042"`, to: "TICKET_REFERENCE: 1042", pointer: "/tests/0/steps/1/event/vars/TICKET_REFERENCE", reason: "expected string"},
	{name: "no payload, fixture or event", from: "    payload: { event: ticket.updated, ticket: { id: \"1042\", status: pending } }\n", to: "", pointer: "/tests/0/payload", reason: "missing property"},
	{name: "missing name", from: "  - name: a form payload from a fixture\n    connector", to: "  - connector", pointer: "/tests/1/name", reason: "missing property"},
	{name: "unknown action kind", from: "kind: update_entity", to: "kind: update", pointer: "/tests/0/expect/actions/0/kind", reason: "value must be one of"},
	{name: "unknown action key", from: "set: { priority: high }", to: "sets: { priority: high }", pointer: "/tests/0/expect/actions/0", reason: "'sets' not allowed"},
	{name: "unknown webhook key", from: "method: POST", to: "verb: POST", pointer: "/tests/0/expect/actions/1/webhook", reason: "'verb' not allowed"},
	{name: "unknown event key", from: "changes: { status:", to: "change: { status:", pointer: "/tests/0/expect/events/0", reason: "'change' not allowed"},
	{name: "bad change", from: "{ from: open, to: pending }", to: "{ from: open, too: pending }", pointer: "/tests/0/expect/events/0/changes/status", reason: "'too' not allowed"},
	{name: "negative count", from: "suppressed: 0", to: "suppressed: -1", pointer: "/tests/0/expect/suppressed", reason: "must be >= 0"},
	{name: "fired not a time", from: `r1: ["2026-01-05T07:40:00Z"]`, to: `r1: ["yesterday"]`, pointer: "/tests/0/snapshot/fired/r1/0", reason: "date-time"},
	{name: "agent_replies not a number", from: "agent_replies: 1", to: "agent_replies: one", pointer: "/tests/0/snapshot/agent_replies", reason: "expected integer"},
	{name: "expect null", from: "    expect:\n      matched: t1\n", to: "    expect:\n", pointer: "/tests/1/expect", reason: "expected object"},
	{name: "root key misspelt", from: "tests:\n", to: "test:\n", pointer: "/tests", reason: "missing property"},
	{name: "reference not quoted", from: `reference: "1042", actor`, to: `reference: 1042, actor`, pointer: "/tests/0/steps/1/event/reference", reason: "expected string"},
}

func TestTestSchemaRefusesMistakes(t *testing.T) {
	r := newRegistry(t)
	if err := r.ValidateConfig("test.schema.json", yamlValue(t, []byte(testSample))); err != nil {
		t.Fatalf("the sample is refused: %v", err)
	}
	for _, tc := range brokenTests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(testSample, tc.from) {
				t.Fatalf("the sample does not contain %q", tc.from)
			}
			broken := strings.Replace(testSample, tc.from, tc.to, 1)
			err := r.ValidateConfig("test", yamlValue(t, []byte(broken)))
			var ve *schemas.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("ValidateConfig = %v, want a *ValidationError", err)
			}
			if ve.Pointer != tc.pointer || !strings.Contains(ve.Reason, tc.reason) {
				t.Errorf("pointer %q reason %q, want pointer %q reason containing %q", ve.Pointer, ve.Reason, tc.pointer, tc.reason)
			}
		})
	}
}

// yamlKeys returns the yaml keys of a struct type (the names the strict
// config decoder accepts), sorted.
func yamlKeys(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// elemStruct returns the struct type behind a field type ([]T, *T, T).
func elemStruct(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Slice || t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// The test schema lists exactly the keys of the gateway's TestFile,
// TestCase, TestStep and TestExpect (what its strict decoder accepts).
func TestTestSchemaMatchesTestRunner(t *testing.T) {
	d := loadSchema(t, "test.schema.json")
	caseType := reflect.TypeFor[gateway.TestCase]()
	steps, ok := caseType.FieldByName("Steps")
	if !ok {
		t.Fatalf("gateway.TestCase has no Steps")
	}
	cases := []struct {
		typ  reflect.Type
		path []string
	}{
		{reflect.TypeFor[gateway.TestFile](), nil},
		{caseType, []string{"$defs", "case"}},
		{elemStruct(steps.Type), []string{"$defs", "step"}},
		{reflect.TypeFor[gateway.TestExpect](), []string{"$defs", "expect"}},
	}
	for _, tc := range cases {
		t.Run(tc.typ.String(), func(t *testing.T) {
			if got, want := d.props(t, tc.path...), yamlKeys(tc.typ); !slices.Equal(got, want) {
				t.Errorf("schema %v lists %v, %s accepts %v", tc.path, got, tc.typ, want)
			}
		})
	}
}

// jsonKeys returns the JSON names of a struct type's fields, sorted.
func jsonKeys(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// The events, snapshots and actions of test files are the JSON of the
// common model: the schema lists exactly its keys.
func TestTestSchemaMatchesEventModel(t *testing.T) {
	d := loadSchema(t, "test.schema.json")
	actions := []string{"$defs", "expectedAction", "properties"}
	cases := []struct {
		typ  reflect.Type
		path []string
	}{
		{reflect.TypeFor[event.Event](), []string{"$defs", "eventInput"}},
		{reflect.TypeFor[event.Event](), []string{"$defs", "expectedEvent"}},
		{reflect.TypeFor[event.Actor](), []string{"$defs", "actor"}},
		{reflect.TypeFor[event.Causation](), []string{"$defs", "causation"}},
		{reflect.TypeFor[event.Change](), []string{"$defs", "change"}},
		{reflect.TypeFor[event.Update](), []string{"$defs", "expectedAction"}},
		{reflect.TypeFor[event.WebhookCall](), append(slices.Clone(actions), "webhook", "then")},
		{reflect.TypeFor[event.Message](), append(slices.Clone(actions), "message", "then")},
		{reflect.TypeFor[event.LogLine](), append(slices.Clone(actions), "log", "then")},
		{reflect.TypeFor[event.Snapshot](), []string{"$defs", "snapshotInput"}},
		{reflect.TypeFor[event.EntityKey](), []string{"$defs", "snapshotInput", "properties", "key"}},
		{reflect.TypeFor[event.RuleClock](), []string{"$defs", "snapshotInput", "properties", "clocks", "additionalProperties"}},
	}
	// What the test runner compares expectations with.
	sim := reflect.TypeFor[gateway.SimResult]()
	for field, want := range map[string]reflect.Type{"Events": cases[0].typ, "Actions": cases[5].typ, "Snapshots": cases[9].typ} {
		f, ok := sim.FieldByName(field)
		if !ok {
			t.Fatalf("gateway.SimResult has no field %s", field)
		}
		ft := f.Type
		if ft.Kind() == reflect.Map {
			ft = ft.Elem()
		}
		if got := elemStruct(ft); got != want {
			t.Errorf("gateway.SimResult.%s holds %s, the schema describes %s", field, got, want)
		}
	}
	// Expected timers are the JSON of the simulation's armed timers.
	timers, ok := sim.FieldByName("Timers")
	if !ok {
		t.Fatalf("gateway.SimResult has no field Timers")
	}
	timer := elemStruct(timers.Type)
	cases = append(cases, struct {
		typ  reflect.Type
		path []string
	}{timer, []string{"$defs", "expectedTimer"}})
	if f, ok := timer.FieldByName("Key"); ok {
		cases = append(cases, struct {
			typ  reflect.Type
			path []string
		}{f.Type, []string{"$defs", "expectedTimer", "properties", "key", "then"}})
	}
	// What a case gives (its event and snapshot) is decoded strictly by
	// the test runner: the schema refuses unknown keys too.
	for _, path := range [][]string{{"$defs", "eventInput"}, {"$defs", "snapshotInput"}, {"$defs", "actor"}, {"$defs", "causation"}, {"$defs", "change"}} {
		var cur any = map[string]any(d)
		for _, p := range path {
			cur = cur.(map[string]any)[p]
		}
		if closed, _ := cur.(map[string]any)["additionalProperties"].(bool); closed || cur.(map[string]any)["additionalProperties"] == nil {
			t.Errorf("schema %v allows unknown keys (additionalProperties is not false)", path)
		}
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.path[1:], "."), func(t *testing.T) {
			want := jsonKeys(tc.typ)
			if got := d.props(t, tc.path...); !slices.Equal(got, want) {
				t.Errorf("schema %v lists %v, %s has %v", tc.path, got, tc.typ, want)
			}
		})
	}
}

// The schemas' own examples and patterns: durations the rules compiler
// accepts pass the shared duration pattern, and the ones it refuses fail.
func TestDurationPattern(t *testing.T) {
	r := newRegistry(t)
	cases := []struct {
		d  string
		ok bool
	}{
		{"90s", true}, {"15m", true}, {"1h30m", true}, {"48h", true}, {"2d", true}, {"1.5d", true},
		{"1w", true}, {"500ms", true}, {"1.5h", true}, {".5h", true}, {"0", true},
		{"+5m", true}, {"1e1d", true},
		{"48", false}, {"2 days", false}, {"1d12h", false}, {"h", false}, {"", false}, {"24hours", false}, {"-5m", false}, {"5M", false},
	}
	for _, tc := range cases {
		doc := map[string]any{"rules": []any{map[string]any{
			"id": "r", "on": "ticket.updated", "then": []any{map[string]any{"set_status": "open"}},
			"limit": map[string]any{"max": 1, "per": tc.d},
		}}}
		err := r.ValidateConfig("rules", doc)
		if (err == nil) != tc.ok {
			t.Errorf("per: %q: schema error %v, want ok=%v", tc.d, err, tc.ok)
		}
		d, perr := yamlconf.ParseDuration(tc.d)
		if compilerOK := perr == nil && d > 0; compilerOK != tc.ok && tc.d != "0" {
			t.Errorf("per: %q: the compiler's ParseDuration says ok=%v, want %v", tc.d, compilerOK, tc.ok)
		}
	}
}

// scalarTyping matches a schema complaint about the YAML type of a scalar
// (a number or boolean where text is expected, "true" or 1 for a boolean,
// null for text): the loader reads any scalar's text there, the schema asks
// for the canonical type so that editors suggest it.
var scalarTyping = regexp.MustCompile(`^expected (string|number|integer|boolean|null)( or (string|number|integer|boolean|null))*, but got (string|number|boolean|null)$`)

// FuzzRulesSchemaAgreesWithCompiler: validation never fails with anything but
// a *ValidationError with a one-line reason, and a rules document that the
// compiler accepts is never refused by the schema (the schema may be laxer:
// it does not know field types, enum orders or templates), except for the
// canonical typing of scalars (scalarTyping).
func FuzzRulesSchemaAgreesWithCompiler(f *testing.F) {
	f.Add([]byte(rulesSample))
	f.Add([]byte(""))
	f.Add([]byte("rules:\n  id: single\n  on: ticket.created\n  then: { set_status: open }\n"))
	for _, tc := range validRules {
		f.Add([]byte(tc.src))
	}
	for _, tc := range brokenRules {
		f.Add([]byte(strings.Replace(rulesSample, tc.from, tc.to, 1)))
	}
	r := newRegistry(f)
	opts := compileOptions(f)
	f.Fuzz(func(t *testing.T, src []byte) {
		doc, err := decodeYAML(src)
		if err != nil {
			return
		}
		err = r.ValidateConfig("rules", doc)
		var ve *schemas.ValidationError
		if err != nil && !errors.As(err, &ve) {
			t.Fatalf("unexpected error kind: %v", err)
		}
		if ve == nil {
			return
		}
		if strings.Contains(ve.Reason, "\n") {
			t.Fatalf("multi-line reason %q", ve.Reason)
		}
		if scalarTyping.MatchString(ve.Reason) {
			return
		}
		if errs := compileRules(opts, "fuzz.yaml", src); len(errs) == 0 {
			t.Fatalf("the compiler accepts what the schema refuses (%v):\n%s", ve, src)
		}
	})
}
