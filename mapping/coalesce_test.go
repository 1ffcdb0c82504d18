package mapping

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TestPathLists covers `path: [a, b, ...]`: the first path whose value is
// present and not empty wins, and map, map_default and default work after
// it.
func TestPathLists(t *testing.T) {
	const payload = `{
		"a": "A", "n": 0, "empty": "", "f": false, "t": true, "nil": null, "arr": [], "obj": {},
		"tags": ["x", "y"], "status": "OPEN", "o": {"k": "v"}, "data": {"id": 7}
	}`
	tests := []fieldCase{
		{name: "first present", spec: "{ path: [a, status] }", want: "A"},
		{name: "skips absent", spec: "{ path: [nope, a] }", want: "A"},
		{name: "skips null", spec: "{ path: [nil, a] }", want: "A"},
		{name: "skips empty string", spec: "{ path: [empty, a] }", want: "A"},
		{name: "skips false", spec: "{ path: [f, a] }", want: "A"},
		{name: "skips empty list", spec: "{ path: [arr, a] }", want: "A"},
		{name: "skips empty object", spec: "{ path: [obj, a] }", want: "A"},
		{name: "zero is present", spec: "{ path: [n, a] }", want: 0.0},
		{name: "true is present", spec: "{ path: [t, a] }", want: true},
		{name: "keeps the value's type", spec: "{ path: [nope, tags] }", want: []string{"x", "y"}},
		{name: "nested path", spec: "{ path: [data.ref, data.id] }", want: 7.0},
		{name: "object flattens", spec: "{ path: [nope, o] }", extra: map[string]any{"x.k": "v"}},
		{name: "one path: empty counts as absent", spec: "{ path: [empty] }", want: nil},
		{name: "all absent", spec: "{ path: [nope, empty, nil] }", want: nil},
		{name: "all absent takes default", spec: "{ path: [nope, empty], default: d }", want: "d"},
		{name: "map after the list", spec: "{ path: [nope, status], map: { OPEN: open } }", want: "open"},
		{name: "map_default after the list", spec: "{ path: [nope, a], map: { OPEN: open }, map_default: other }", want: "other"},
		{name: "map drops, default", spec: "{ path: [status, a], map: { OPEN: null }, default: d }", want: "d"},
		{name: "map drops, no next path", spec: "{ path: [status, a], map: { OPEN: null } }", want: nil},
		{name: "root prefix", spec: "{ path: [nope, $root.a] }", want: "A"},
		{name: "header", spec: "{ path: [nope, $header.x-request-id] }", header: map[string][]string{"X-Request-Id": {"rq-1"}}, want: "rq-1"},
		{name: "empty header skipped", spec: "{ path: [$header.X-A, $header.X-B] }", header: map[string][]string{"X-A": {""}, "X-B": {"b"}}, want: "b"},
		{name: "query", spec: "{ path: [nope, $query.id] }", query: map[string][]string{"id": {"q7"}}, want: "q7"},
		{name: "payload before query", spec: "{ path: [a, $query.id] }", query: map[string][]string{"id": {"q7"}}, want: "A"},
	}
	runFieldCases(t, payload, tests, nil)
}

// TestPathListsUnderEach resolves path lists against each levels, $parent
// and named levels.
func TestPathListsUnderEach(t *testing.T) {
	m := mustCompile(t, `
- each: [{ path: groups, as: g }, items]
  type: t.x
  entity: e
  reference: { path: [id, $parent.gid, $g.name] }
  fields:
    label: { path: [label, $parent.label, $root.label] }
`)
	body := `{"label": "root", "groups": [
		{"gid": "G1", "label": "group", "items": [{"id": "i1", "label": "item"}, {"label": ""}]},
		{"name": "second", "items": [{}]}
	]}`
	evs := mustMap(t, m, Input{Body: []byte(body)})
	var got []string
	for _, e := range evs {
		got = append(got, e.Reference+"/"+e.Fields["label"].(string))
	}
	want := []string{"i1/item", "G1/group", "second/root"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
}

// TestFallback covers `fallback:`: another value spec used only when the
// source is absent (empty counts as absent), before default.
func TestFallback(t *testing.T) {
	const payload = `{"type": "ticket.updated", "entity": "", "a": "A", "status": "OPEN", "n": 5, "f": false}`
	tests := []fieldCase{
		{name: "source present", spec: "{ path: a, fallback: status }", want: "A"},
		{name: "source absent", spec: "{ path: nope, fallback: status }", want: "OPEN"},
		{name: "empty source falls back", spec: "{ path: entity, fallback: a }", want: "A"},
		{name: "false source falls back", spec: "{ path: f, fallback: a }", want: "A"},
		{name: "zero is no reason to fall back", spec: "{ path: n, fallback: a }", want: 5.0},
		{name: "template fallback", spec: `{ path: entity, fallback: { template: '{{ before "." (.Path "type") }}' } }`, want: "ticket"},
		{name: "template fallback not run when present", spec: `{ path: a, fallback: { template: '{{ .Path (print "b" ".") }}' } }`, want: "A"},
		{name: "fallback has its own map", spec: "{ path: nope, map: { OPEN: mapped-outer }, fallback: { path: status, map: { OPEN: open } } }", want: "open"},
		{name: "outer map not applied to fallback", spec: "{ path: nope, map: { OPEN: mapped-outer }, fallback: status }", want: "OPEN"},
		{name: "map drop brings fallback", spec: "{ path: status, map: { OPEN: null }, fallback: a }", want: "A"},
		{name: "both absent take default", spec: "{ path: nope, fallback: { path: [nope2, entity] }, default: d }", want: "d"},
		{name: "both absent, no default", spec: "{ path: nope, fallback: nope2 }", want: nil},
		{name: "fallback constant", spec: "{ path: nope, fallback: { value: c } }", want: "c"},
		{name: "chained fallbacks", spec: "{ path: nope, fallback: { path: nope2, fallback: { path: [entity, a] } } }", want: "A"},
		{name: "path list then header fallback", spec: "{ path: [nope, entity], fallback: $header.Idempotency-Key }", header: map[string][]string{"Idempotency-Key": {"k-1"}}, want: "k-1"},
		{name: "template source falls back", spec: `{ template: '{{ .Path "nope" }}', fallback: a }`, want: "A"},
	}
	runFieldCases(t, payload, tests, nil)
}

// TestFallbackInRequiredKeys uses the new forms where type, entity and
// reference need a value, and checks the error when none is found.
func TestFallbackInRequiredKeys(t *testing.T) {
	m := mustCompile(t, `
- type: { path: [type, event], default: generic.received }
  entity: { path: entity, fallback: item }
  reference: { path: [reference, id], fallback: $header.X-Request-Id }
  actor: { type: { path: actor.type, fallback: system } }
`)
	evs := mustMap(t, m, Input{Body: []byte(`{"event": "order.paid", "entity": "", "id": ""}`), Header: map[string][]string{"X-Request-Id": {"rq-9"}}})
	if e := evs[0]; e.Type != "order.paid" || e.Entity != "item" || e.Reference != "rq-9" || e.Actor.Type != "system" {
		t.Errorf("event %s %s %s actor %q", e.Type, e.Entity, e.Reference, e.Actor.Type)
	}
	_, err := m.Map(Input{Body: []byte(`{"id": ""}`), ReceivedAt: receivedAt})
	if !errors.Is(err, ErrNoReference) {
		t.Fatalf("err = %v, want ErrNoReference", err)
	}
	want := `reference: paths "reference", "id" are all absent or empty (and so is its fallback)`
	if !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want it to say %q", err, want)
	}
}

// TestFallbackTypes checks that Types knows the outcomes of a type whose
// fallback is closed, and treats an open fallback as open.
func TestFallbackTypes(t *testing.T) {
	m := mustCompile(t, `
- name: closed
  type: { path: kind, map: { a: t.a }, map_default: t.other, fallback: { path: [k2], map: { b: t.b }, map_default: t.none } }
  entity: e
  reference: id
- name: open
  type: { path: kind, map: { a: t.c }, map_default: t.d, fallback: { path: k3 } }
  entity: e
  reference: id
- name: const fallback
  type: { path: kind, map: { a: t.e }, map_default: t.f, fallback: t.g }
  entity: e
  reference: id
`)
	want := []string{"t.a", "t.b", "t.e", "t.f", "t.g", "t.none", "t.other"}
	if got := m.Types(); !reflect.DeepEqual(got, want) {
		t.Errorf("Types() = %v, want %v", got, want)
	}
}

func TestPathListAndFallbackCompileErrors(t *testing.T) {
	tests := []struct {
		name, spec, want string
	}{
		{"empty list", "{ path: [] }", `c.yaml:5:16: fields.x: path: empty list; give one path or more (the first with a non-empty value wins)`},
		{"number element", "{ path: [a, 1] }", `c.yaml:5:20: fields.x: path[1]: expected a path (a string), got "1"`},
		{"list element", "{ path: [a, [b]] }", `c.yaml:5:20: fields.x: path[1]: expected a path (a string), got a list`},
		{"null element", "{ path: [a, null] }", `c.yaml:5:20: fields.x: path[1]: expected a path (a string), got null`},
		{"template element", `{ path: [a, '{{ .Path "b" }}'] }`, `c.yaml:5:20: fields.x: path[1]: "{{ .Path \"b\" }}" is a template, not a path; use fallback: { template: ... } for a computed value`},
		{"bad path element", "{ path: [a, 'b.'] }", `c.yaml:5:20: fields.x: path "b.": path ends with '.'`},
		{"unknown prefix element", "{ path: [a, $parnt.b] }", `c.yaml:5:20: fields.x: path "$parnt.b": unknown path prefix "$parnt"; did you mean "$parent"? (valid: $header, $parent, $query, $root; a literal $ key is written \$)`},
		{"mapping as path", "{ path: { a: b } }", `c.yaml:5:16: fields.x: path: expected a string or a list of paths, got a mapping`},
		{"fallback without a source", "{ fallback: a }", `c.yaml:5:8: fields.x: fallback needs a source to fall back from: add path, template or lookup (a fallback alone is just its own value spec)`},
		{"fallback with value", "{ value: v, fallback: a }", `c.yaml:5:30: fields.x: fallback does not go with value (a constant is never absent); use default`},
		{"null fallback", "{ path: a, fallback: null }", `c.yaml:5:29: fields.x: fallback: null is the same as no fallback`},
		{"bad fallback", "{ path: a, fallback: { path: [] } }", `c.yaml:5:37: fields.x.fallback: path: empty list; give one path or more (the first with a non-empty value wins)`},
		{"misspelt fallback", "{ path: a, falback: b }", `c.yaml:5:19: unknown key "falback"; did you mean "fallback"? (valid: default, derived_from, fallback, lookup, map, map_default, path, split, template, value)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, errs := compileSrc(t, fieldEntry(tc.spec))
			if len(errs) == 0 || m != nil {
				t.Fatalf("compiled: %v", errs)
			}
			if got := errs.Error(); got != tc.want {
				t.Errorf("errors\n got: %s\nwant: %s", got, tc.want)
			}
		})
	}
	// An actor type constant in a fallback is checked like one in type.
	_, errs := compileSrc(t, "- type: t.x\n  entity: e\n  reference: id\n  actor: { type: { path: a, fallback: agnt } }\n")
	if want := `c.yaml:4:18: actor.type.fallback: unknown actor type "agnt"; did you mean "agent"?`; len(errs) != 1 || !strings.HasPrefix(errs.Error(), want) {
		t.Errorf("errors %v, want one starting %q", errs, want)
	}
}

// TestDocsFallbackExample runs the fallback example of docs/connectors.md.
func TestDocsFallbackExample(t *testing.T) {
	m := mustCompile(t, `
- type: t.x
  entity:
    path: entity
    fallback:
      template: '{{ with .Path "type" }}{{ if contains "." . }}{{ before "." . }}{{ end }}{{ end }}'
    default: item
  reference: { value: r }
`)
	for body, want := range map[string]string{
		`{"entity": "chat", "type": "ticket.updated"}`: "chat",
		`{"entity": "", "type": "ticket.updated"}`:     "ticket",
		`{"type": "ticket.updated"}`:                   "ticket",
		`{"type": "undotted"}`:                         "item",
		`{}`:                                           "item",
	} {
		if got := mustMap(t, m, Input{Body: []byte(body)})[0].Entity; got != want {
			t.Errorf("%s: entity %q, want %q", body, got, want)
		}
	}
}
