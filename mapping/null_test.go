package mapping

import (
	"reflect"
	"testing"

	"github.com/hookline/hookline/event"
)

// An explicit JSON null at a field's plain single path, and a null member
// of an object a field flattens, is present with the value null (a
// platform's "owner": null: the ticket is unassigned); everywhere else
// null stays absent.
func TestExplicitNullFields(t *testing.T) {
	body := `{"owner":null,"alt":"bob","obj":{"owner":null,"s":"x","deep":{"n":null}},"prev":"alice","list":[null,1]}`
	for _, tc := range []struct {
		name string
		spec string
		want map[string]any // the event's fields; a key with nil is present as null
	}{
		{"plain path", "owner", map[string]any{"x": nil}},
		{"plain path, absent key", "missing", map[string]any{}},
		{"explicit path key", "{ path: owner }", map[string]any{"x": nil}},
		{"flattened object", "obj", map[string]any{"x.owner": nil, "x.s": "x", "x.deep.n": nil}},
		{"whole payload", `"@this"`, map[string]any{"x.owner": nil, "x.alt": "bob", "x.obj.owner": nil, "x.obj.s": "x",
			"x.obj.deep.n": nil, "x.prev": "alice", "x.list": []any{nil, float64(1)}}},
		{"path list moves on", "{ path: [owner, alt] }", map[string]any{"x": "bob"}},
		{"path list of nulls", "{ path: [owner, obj.owner] }", map[string]any{}},
		{"fallback applies", "{ path: owner, fallback: alt }", map[string]any{"x": "bob"}},
		{"default applies", "{ path: owner, default: nobody }", map[string]any{"x": "nobody"}},
		{"map keeps it absent", "{ path: owner, map: { a: b } }", map[string]any{}},
		{"map_default keeps it absent", "{ path: owner, map: { a: b }, map_default: z }", map[string]any{}},
		{"split keeps it absent", `{ path: owner, split: "," }`, map[string]any{}},
		{"template renders empty", `'{{ .Path "owner" }}'`, map[string]any{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := mustCompile(t, fieldEntry(tc.spec))
			evs := mustMap(t, m, Input{Body: []byte(body)})
			if len(evs) != 1 {
				t.Fatalf("got %d events", len(evs))
			}
			if !reflect.DeepEqual(evs[0].Fields, tc.want) {
				t.Errorf("fields = %#v, want %#v", evs[0].Fields, tc.want)
			}
		})
	}
}

// A plain path above the current element (a shared path, cached, not the
// fast path) keeps an explicit null too, and a match condition's exists
// keeps its documented meaning (null is not present).
func TestExplicitNullSharedPathAndExists(t *testing.T) {
	m := mustCompile(t, `
- match: { path: owner, exists: true }
  type: t.present
  entity: e
  reference: { value: r }
- each: items
  type: t.x
  entity: e
  reference: id
  fields:
    owner: $root.owner
    text: { template: '[{{ .Field "owner" }}]' }
`)
	evs := mustMap(t, m, Input{Body: []byte(`{"owner":null,"items":[{"id":"a"},{"id":"b"}]}`)})
	if len(evs) != 2 {
		t.Fatalf("got %d events, want 2 (exists: true must not hold for null)", len(evs))
	}
	for _, e := range evs {
		want := map[string]any{"owner": nil, "text": "[]"}
		if !reflect.DeepEqual(e.Fields, want) {
			t.Errorf("%s fields = %#v, want %#v", e.Reference, e.Fields, want)
		}
	}
}

// A change whose to is the event's own field: a null field is a change to
// null when from is present, and no change when from is absent too.
func TestExplicitNullFieldChange(t *testing.T) {
	m := mustCompile(t, `
- type: t.x
  entity: e
  reference: { value: r }
  fields: { owner: owner }
  changes: { owner: { from: prev } }
`)
	for _, tc := range []struct {
		body string
		want map[string]event.Change
	}{
		{`{"owner":null,"prev":"alice"}`, map[string]event.Change{"owner": {From: "alice", To: nil}}},
		{`{"owner":null}`, nil},
	} {
		evs := mustMap(t, m, Input{Body: []byte(tc.body)})
		if len(evs) != 1 {
			t.Fatalf("got %d events", len(evs))
		}
		if !reflect.DeepEqual(evs[0].Changes, tc.want) {
			t.Errorf("%s: changes = %#v, want %#v", tc.body, evs[0].Changes, tc.want)
		}
	}
}
