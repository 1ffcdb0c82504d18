package mapping

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/internal/yamlconf"
)

var receivedAt = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func compileSrc(t testing.TB, src string) (*Mapper, yamlconf.Errors) {
	t.Helper()
	node, perrs := yamlconf.Parse("c.yaml", []byte(src), nil)
	if len(perrs) > 0 {
		t.Fatalf("parse: %v", perrs)
	}
	return Compile("c.yaml", "conn", node)
}

func mustCompile(t testing.TB, src string) *Mapper {
	t.Helper()
	m, errs := compileSrc(t, src)
	if len(errs) > 0 {
		t.Fatalf("compile:\n%v", errs)
	}
	return m
}

func mustMap(t testing.TB, m *Mapper, in Input) []*event.Event {
	t.Helper()
	if in.ReceivedAt.IsZero() {
		in.ReceivedAt = receivedAt
	}
	evs, err := m.Map(in)
	if err != nil {
		t.Fatalf("map: %v", err)
	}
	return evs
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixturesDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fieldEntry builds a one-entry mapping whose field x is spec.
func fieldEntry(spec string) string {
	return "- type: t.x\n  entity: e\n  reference: { value: r }\n  fields:\n    x: " + spec + "\n"
}

// checkFieldX maps in with m, a mapper of fieldEntry, and checks that it
// gives one event whose field x is want (nil: x absent) and whose other
// fields include extra; it returns the event.
func checkFieldX(t *testing.T, m *Mapper, in Input, want any, extra map[string]any) *event.Event {
	t.Helper()
	evs := mustMap(t, m, in)
	if len(evs) != 1 {
		t.Fatalf("got %d events", len(evs))
	}
	got, ok := evs[0].Fields["x"]
	if want == nil {
		if ok {
			t.Errorf("field x = %#v, want absent", got)
		}
	} else if !reflect.DeepEqual(got, want) {
		t.Errorf("field x = %#v (%T), want %#v", got, got, want)
	}
	for k, w := range extra {
		if !reflect.DeepEqual(evs[0].Fields[k], w) {
			t.Errorf("field %s = %#v, want %#v", k, evs[0].Fields[k], w)
		}
	}
	return evs[0]
}

// fieldCase is one row of a value-spec table: spec is field x's spec in
// fieldEntry, mapped with the table's payload and the row's header and
// query; want and extra are checkFieldX's.
type fieldCase struct {
	name   string
	spec   string
	header map[string][]string
	query  map[string][]string
	want   any // nil: field x absent
	extra  map[string]any
}

// runFieldCases runs each row as a subtest of checkFieldX; then, when
// check is set, check on the event.
func runFieldCases(t *testing.T, payload string, tests []fieldCase, check func(t *testing.T, tc fieldCase, ev *event.Event)) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := checkFieldX(t, mustCompile(t, fieldEntry(tc.spec)), Input{Body: []byte(payload), Header: tc.header, Query: tc.query}, tc.want, tc.extra)
			if check != nil {
				check(t, tc, ev)
			}
		})
	}
}

func TestValueSpecs(t *testing.T) {
	const payload = `{
		"a": "A", "n": 42, "big": 9007199254740993, "f": 1.5, "t": true, "nil": null, "empty": "",
		"tags": ["x", "y"], "mixed": [1, "b"], "obj": {"k": "v", "deep": {"z": 1}, "skip": null},
		"items": [{"id": 1, "name": "one"}, {"id": 2, "name": "two"}],
		"dot.key": "dotted", "$lit": "dollar", "status": "OPEN", "code": 2, "flag": false,
		"codef": 120.0, "codee": 1.2e2, "codefrac": 2.50, "codes": [100.0, 1e2, 7],
		"list": ["OPEN", "GONE", "DROP"]
	}`
	tests := []fieldCase{
		{name: "plain path", spec: "a", want: "A"},
		{name: "number is float64", spec: "n", want: 42.0},
		{name: "fraction", spec: "f", want: 1.5},
		{name: "bool", spec: "t", want: true},
		{name: "absent path", spec: "nope.deeper", want: nil},
		{name: "null in a path list is absent", spec: "{ path: [nil] }", want: nil}, // a plain path keeps it: TestExplicitNullFields
		{name: "empty string is present", spec: "empty", want: ""},
		{name: "path mapping form", spec: "{ path: a }", want: "A"},
		{name: "default when absent", spec: "{ path: nope, default: d }", want: "d"},
		{name: "default when null", spec: "{ path: nil, default: 7 }", want: 7.0},
		{name: "default unused when present", spec: "{ path: a, default: d }", want: "A"},
		{name: "constant", spec: "{ value: whatsapp }", want: "whatsapp"},
		{name: "constant number", spec: "{ value: 3 }", want: 3.0},
		{name: "constant list", spec: "{ value: [p, q] }", want: []string{"p", "q"}},
		{name: "template", spec: `{ template: '{{ .Path "a" }}-{{ .Path "n" }}' }`, want: "A-42"},
		{name: "plain string template", spec: `'{{ .Path "a" }}!'`, want: "A!"},
		{name: "template keeps big number digits", spec: `'{{ .Path "big" }}'`, want: "9007199254740993"},
		{name: "template empty is absent", spec: `'{{ .Path "nope" }}'`, want: nil},
		{name: "template empty takes default", spec: `{ template: '{{ .Path "nope" }}', default: dflt }`, want: "dflt"},
		{name: "template root", spec: `'{{ .Root "items.1.name" }}'`, want: "two"},
		{name: "template header", spec: `'{{ .Header "x-kind" }}'`, header: map[string][]string{"X-Kind": {"k1", "k2"}}, want: "k1"},
		{name: "template query", spec: `'{{ .Query "src" }}'`, query: map[string][]string{"src": {"zap"}}, want: "zap"},
		{name: "template functions", spec: `'{{ lower (.Path "status") }} {{ json (.Path "tags") }} {{ default "none" (.Path "nope") }}'`, want: `open ["x","y"] none`},
		{name: "map hit", spec: "{ path: status, map: { OPEN: open } }", want: "open"},
		{name: "map miss passes through", spec: "{ path: a, map: { OPEN: open } }", want: "A"},
		{name: "map miss takes map_default", spec: "{ path: a, map: { OPEN: open }, map_default: other }", want: "other"},
		{name: "map to null drops", spec: "{ path: status, map: { OPEN: null } }", want: nil},
		{name: "map to null then default", spec: "{ path: status, map: { OPEN: null }, default: d }", want: "d"},
		{name: "map numeric key", spec: "{ path: code, map: { 1: low, 2: high } }", want: "high"},
		{name: "map number with a fraction", spec: `{ path: codef, map: { "100": open, "120": closed }, map_default: unknown }`, want: "closed"},
		{name: "map number with an exponent", spec: `{ path: codee, map: { "100": open, "120": closed }, map_default: unknown }`, want: "closed"},
		{name: "map number not whole keeps its digits", spec: `{ path: codefrac, map: { "2.50": half, "2": two } }`, want: "half"},
		{name: "map unquoted key with a fraction", spec: `{ path: code, map: { 1.0: low, 2.0: high } }`, want: "high"},
		{name: "map unquoted key with an exponent", spec: `{ path: codef, map: { 1.2e2: closed } }`, want: "closed"},
		{name: "map quoted key stays as written", spec: `{ path: code, map: { "2.0": high }, map_default: none }`, want: "none"},
		{name: "map list of numbers", spec: `{ path: codes, map: { "100": open } }`, want: []any{"open", "open", 7.0}},
		{name: "map bool key", spec: "{ path: flag, map: { false: no, true: yes } }", want: "no"},
		{name: "map list element-wise", spec: "{ path: list, map: { OPEN: open, DROP: null } }", want: []string{"open", "GONE"}},
		{name: "map not applied to default", spec: "{ path: nope, map: { d: mapped }, default: d }", want: "d"},
		{name: "string array stays []string", spec: "tags", want: []string{"x", "y"}},
		{name: "mixed array stays []any", spec: "mixed", want: []any{1.0, "b"}},
		{name: "gjson array of fields", spec: "items.#.name", want: []string{"one", "two"}},
		{name: "gjson query", spec: `'items.#(id==2).name'`, want: "two"},
		{name: "escaped dot", spec: `'dot\.key'`, want: "dotted"},
		{name: "escaped dollar", spec: `'\$lit'`, want: "dollar"},
		{name: "modifier", spec: "tags.@reverse", want: []string{"y", "x"}},
		{name: "root prefix", spec: "$root.a", want: "A"},
		{name: "header", spec: "$header.x-kind", header: map[string][]string{"X-Kind": {"k1"}}, want: "k1"},
		{name: "header not canonical in input", spec: "$header.X-Kind", header: map[string][]string{"x-kind": {"k9"}}, want: "k9"},
		{name: "header absent", spec: "$header.X-Other", header: map[string][]string{"X-Kind": {"k1"}}, want: nil},
		{name: "query", spec: "$query.src", query: map[string][]string{"src": {"zap", "make"}}, want: "zap"},
		{name: "object flattens", spec: "obj", want: nil, extra: map[string]any{"x.k": "v", "x.deep.z": 1.0}},
	}
	runFieldCases(t, payload, tests, func(t *testing.T, tc fieldCase, ev *event.Event) {
		if tc.extra == nil && len(ev.Fields) > 1 {
			t.Errorf("unexpected fields %v", ev.Fields)
		}
	})
}

func TestMatchOperators(t *testing.T) {
	const payload = `{"type": "zen:event-type:ticket.created", "n": 5, "s": "5", "tags": ["vip", "new"],
		"nil": null, "text": "Hello World", "flag": true, "nums": [1, 2]}`
	hdr := map[string][]string{"X-Event-Kind": {"ticket"}}
	q := map[string][]string{"token": {"abc"}}
	tests := []struct {
		match string
		want  bool
	}{
		{`{ path: type, equals: "zen:event-type:ticket.created" }`, true},
		{`{ path: type, equals: other }`, false},
		{`{ path: n, equals: 5 }`, true},
		{`{ path: n, equals: "5" }`, true},
		{`{ path: s, equals: 5 }`, true},
		{`{ path: flag, equals: true }`, true},
		{`{ path: nope, equals: x }`, false},
		{`{ path: tags, equals: [new, vip] }`, true},
		{`{ path: type, not_equals: other }`, true},
		{`{ path: nope, not_equals: x }`, true},
		{`{ path: n, in: [1, 5, 9] }`, true},
		{`{ path: n, in: [1, 9] }`, false},
		{`{ path: nope, in: [1] }`, false},
		{`{ path: n, not_in: [1, 9] }`, true},
		{`{ path: nope, not_in: [1] }`, true},
		{`{ path: type, exists: true }`, true},
		{`{ path: nope, exists: true }`, false},
		{`{ path: nope, exists: false }`, true},
		{`{ path: nil, exists: false }`, true},
		{`{ path: type, matches: "^zen:event-type:ticket\\." }`, true},
		{`{ path: type, matches: "^user" }`, false},
		{`{ path: n, matches: "^[0-9]+$" }`, true},
		{`{ path: tags, matches: "^vi" }`, true},
		{`{ path: nums, matches: "^2$" }`, true},
		{`{ path: nope, matches: ".*" }`, false},
		{`{ path: text, contains: World }`, true},
		{`{ path: text, contains: world }`, false},
		{`{ path: tags, contains: vip }`, true},
		{`{ path: nums, contains: 2 }`, true},
		{`{ path: tags, contains: old }`, false},
		{`{ header: x-event-kind, equals: ticket }`, true},
		{`{ header: X-Missing, exists: false }`, true},
		{`{ path: $header.X-Event-Kind, in: [ticket, chat] }`, true},
		{`{ query: token, equals: abc }`, true},
		{`{ path: $root.n, equals: 5 }`, true},
		{`[ { path: n, equals: 5 }, { path: s, equals: "5" } ]`, true},
		{`[ { path: n, equals: 5 }, { path: s, equals: "6" } ]`, false},
		{`{ any: [ { path: n, equals: 6 }, { path: s, equals: "5" } ] }`, true},
		{`{ any: [ { path: n, equals: 6 }, { path: s, equals: "6" } ] }`, false},
		{`{ all: [ { path: n, equals: 5 }, { not: { path: tags, contains: old } } ] }`, true},
		{`{ not: { path: n, equals: 5 } }`, false},
		{`{ not: [ { path: n, equals: 5 }, { path: s, equals: "6" } ] }`, true},
		{`{ any: { path: n, equals: 5 } }`, true},
	}
	for _, tc := range tests {
		t.Run(tc.match, func(t *testing.T) {
			m := mustCompile(t, "- match: "+tc.match+"\n  type: t.x\n  entity: e\n  reference: { value: r }\n")
			evs := mustMap(t, m, Input{Body: []byte(payload), Header: hdr, Query: q})
			if got := len(evs) == 1; got != tc.want {
				t.Errorf("matched = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestOccurredAt(t *testing.T) {
	at := func(h, m, sec, ns int) time.Time { return time.Date(2024, 3, 1, h, m, sec, ns, time.UTC) }
	const unread = "unread" // the receive time, with a warning
	tests := []struct {
		name string
		json string // value of "ts"
		want time.Time
		warn string // "unread": a warning naming the value
	}{
		{"rfc3339", `"2024-03-01T10:20:30Z"`, at(10, 20, 30, 0), ""},
		{"rfc3339 offset", `"2024-03-01T12:20:30+02:00"`, at(10, 20, 30, 0), ""},
		{"rfc3339 nano", `"2024-03-01T10:20:30.123456789Z"`, at(10, 20, 30, 123456789), ""},
		{"rfc3339 millis with offset", `"2024-03-01T12:20:30.250+02:00"`, at(10, 20, 30, 250000000), ""},
		{"offset without colon", `"2024-03-01T10:20:30+0000"`, at(10, 20, 30, 0), ""},
		{"negative offset without colon", `"2024-03-01T05:20:30.5-0500"`, at(10, 20, 30, 500000000), ""},
		{"offset in hours (PostgreSQL)", `"2024-03-01 12:20:30.123+02"`, at(10, 20, 30, 123000000), ""},
		{"offset in hours after a space", `"2024-03-01 03:20:30 -07"`, at(10, 20, 30, 0), ""},
		{"space instead of T", `"2024-03-01 10:20:30Z"`, at(10, 20, 30, 0), ""},
		{"space and offset", `"2024-03-01 12:20:30+02:00"`, at(10, 20, 30, 0), ""},
		{"space before the offset (Ruby)", `"2024-03-01 12:20:30 +0200"`, at(10, 20, 30, 0), ""},
		{"UTC spelt out", `"2024-03-01 10:20:30 UTC"`, at(10, 20, 30, 0), ""},
		{"lower-case t and z", `"2024-03-01t10:20:30z"`, at(10, 20, 30, 0), ""},
		{"minutes only (Zendesk _with_timestamp)", `"2024-03-01T10:20Z"`, at(10, 20, 0, 0), ""},
		{"minutes only with offset", `"2024-03-01T12:20+02:00"`, at(10, 20, 0, 0), ""},
		{"surrounding spaces", `" 2024-03-01T10:20:30Z "`, at(10, 20, 30, 0), ""},
		{"unix seconds number", `1749416383`, time.Unix(1749416383, 0).UTC(), ""},
		{"unix seconds string", `"1749416383"`, time.Unix(1749416383, 0).UTC(), ""},
		{"unix seconds fraction", `"1596183880.004200"`, time.Unix(1596183880, 4200000).UTC(), ""},
		{"unix seconds fraction number", `1596183880.5`, time.Unix(1596183880, 500000000).UTC(), ""},
		{"unix millis number", `1749416383123`, time.UnixMilli(1749416383123).UTC(), ""},
		{"unix millis string", `"1749416383123"`, time.UnixMilli(1749416383123).UTC(), ""},
		{"unix micros", `1749416383123456`, time.UnixMicro(1749416383123456).UTC(), ""},
		{"unix nanos", `1749416383123456789`, time.Unix(0, 1749416383123456789).UTC(), ""},
		{"exponent", `1.7494163831e9`, time.Unix(1749416383, 100000000).UTC(), ""},
		{"zero (not set)", `0`, receivedAt, `0`},
		{"zero text", `"0"`, receivedAt, `"0"`},
		{"zero with a fraction", `0.000`, receivedAt, `0`},
		{"negative", `-1749416383`, receivedAt, `-1749416383`},
		{"negative fraction", `"-0.5"`, receivedAt, `"-0.5"`},
		{"negative exponent", `-1.7e9`, receivedAt, `-1700000000`},
		{"absent", ``, receivedAt, ""},
		{"null", `null`, receivedAt, ""},
		{"garbage", `"yesterday"`, receivedAt, `"yesterday"`},
		{"no time zone", `"2024-03-01T10:20:30"`, receivedAt, `"2024-03-01T10:20:30"`},
		{"a zone abbreviation other than UTC", `"2024-03-01 10:20:30 CET"`, receivedAt, `"2024-03-01 10:20:30 CET"`},
		{"date only", `"2024-03-01"`, receivedAt, `"2024-03-01"`},
		{"day first", `"01/03/2024 10:20"`, receivedAt, `"01/03/2024 10:20"`},
		{"empty text", `""`, receivedAt, `""`},
		{"object", `{"a":1}`, receivedAt, `{"a":1}`},
		{"bool", `true`, receivedAt, `true`},
		{"huge", `1e300`, receivedAt, `1e300`},
	}
	m := mustCompile(t, "- name: timed\n  type: t.x\n  entity: e\n  reference: { value: r }\n  occurred_at: ts\n")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := `{}`
			if tc.json != "" {
				body = `{"ts": ` + tc.json + `}`
			}
			evs, warns, err := m.MapWithWarnings(Input{Body: []byte(body), ReceivedAt: receivedAt})
			if err != nil || len(evs) != 1 {
				t.Fatalf("map: %d events, %v", len(evs), err)
			}
			if got := evs[0].OccurredAt; !got.Equal(tc.want) || got.Location() != time.UTC {
				t.Errorf("occurred_at = %v, want %v (UTC)", got, tc.want)
			}
			if tc.warn == "" {
				if len(warns) != 0 {
					t.Errorf("warnings %v, want none", warns)
				}
				return
			}
			want := `mapping entry "timed", occurred_at: ` + tc.warn + ` is not a time Hookline reads (RFC 3339, or Unix seconds or milliseconds); the event took the time it was received`
			if len(warns) != 1 || warns[0].Event != 0 || warns[0].Message != want {
				t.Errorf("warnings %+v, want event 0: %s", warns, want)
			}
		})
	}
}

// Warnings name the event they belong to, and Map leaves them out.
func TestMapWarningsPerEvent(t *testing.T) {
	m := mustCompile(t, "- each: items\n  type: t.x\n  entity: e\n  reference: id\n  occurred_at: ts\n")
	body := []byte(`{"items": [{"id": "a", "ts": "2024-03-01T10:20:30Z"}, {"id": "b", "ts": "soon"}, {"id": "c"}]}`)
	evs, warns, err := m.MapWithWarnings(Input{Body: body, ReceivedAt: receivedAt})
	if err != nil || len(evs) != 3 {
		t.Fatalf("map: %d events, %v", len(evs), err)
	}
	want := `mapping entry "events[0]" at items[1], occurred_at: "soon" is not a time Hookline reads (RFC 3339, or Unix seconds or milliseconds); the event took the time it was received`
	if len(warns) != 1 || warns[0].Event != 1 || warns[0].Message != want {
		t.Errorf("warnings %+v", warns)
	}
	if plain, err := m.Map(Input{Body: body, ReceivedAt: receivedAt}); err != nil || len(plain) != 3 {
		t.Errorf("Map: %d events, %v", len(plain), err)
	}
}

// fanOut is a WhatsApp-shaped payload with 2 entries x 1 change x 2 messages.
const fanOut = `{"object":"whatsapp_business_account","entry":[
 {"id":"E1","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"P1"},
   "contacts":[{"profile":{"name":"Ann"},"wa_id":"111"}],
   "messages":[{"id":"m1","from":"111","text":{"body":"hi"}},{"id":"m2","from":"111","text":{"body":"there"}}]}}]},
 {"id":"E2","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"P2"},
   "contacts":[{"profile":{"name":"Bob"},"wa_id":"222"}],
   "messages":[{"id":"m3","from":"222","text":{"body":"yo"}},{"id":"m4","from":"222","text":{"body":"bye"}}]}}]}]}`

func TestEachFanOut(t *testing.T) {
	const fields = `
  type: message.received
  entity: message
  reference: id
  fields:
    text: text.body
    phone: $parent.value.metadata.phone_number_id
    name: $parent.value.contacts.0.profile.name
    entry: $parent.$parent.id
    object: $root.object
`
	forms := map[string]string{
		"hash path":    "- each: entry.#.changes.#.value.messages" + fields,
		"level list":   "- each: [entry, changes, value.messages]" + fields,
		"named levels": "- each: [{ path: entry, as: e }, { path: changes, as: change }, value.messages]" + strings.NewReplacer("$parent.$parent.", "$e.", "$parent.", "$change.").Replace(fields),
	}
	want := []map[string]any{
		{"ref": "m1", "text": "hi", "phone": "P1", "name": "Ann", "entry": "E1"},
		{"ref": "m2", "text": "there", "phone": "P1", "name": "Ann", "entry": "E1"},
		{"ref": "m3", "text": "yo", "phone": "P2", "name": "Bob", "entry": "E2"},
		{"ref": "m4", "text": "bye", "phone": "P2", "name": "Bob", "entry": "E2"},
	}
	for name, src := range forms {
		t.Run(name, func(t *testing.T) {
			evs := mustMap(t, mustCompile(t, src), Input{Body: []byte(fanOut)})
			if len(evs) != len(want) {
				t.Fatalf("got %d events, want %d", len(evs), len(want))
			}
			for i, w := range want {
				e := evs[i]
				if e.Reference != w["ref"] {
					t.Errorf("event %d reference %q, want %q", i, e.Reference, w["ref"])
				}
				for _, k := range []string{"text", "phone", "name", "entry"} {
					if e.Fields[k] != w[k] {
						t.Errorf("event %d field %s = %v, want %v", i, k, e.Fields[k], w[k])
					}
				}
				if e.Fields["object"] != "whatsapp_business_account" {
					t.Errorf("event %d object = %v", i, e.Fields["object"])
				}
			}
			// Each event keeps the message that produced it, not the payload.
			for i, want := range []string{`{"id":"m1","from":"111","text":{"body":"hi"}}`, `{"id":"m2","from":"111","text":{"body":"there"}}`,
				`{"id":"m3","from":"222","text":{"body":"yo"}}`, `{"id":"m4","from":"222","text":{"body":"bye"}}`} {
				if string(evs[i].Raw) != want {
					t.Errorf("event %d raw %s, want %s", i, evs[i].Raw, want)
				}
			}
		})
	}
}

func TestEachShapes(t *testing.T) {
	tests := []struct {
		name, each, body string
		want             []string // references
	}{
		{"payload is the array", `"#"`, `[{"id":"a"},{"id":"b"}]`, []string{"a", "b"}},
		{"payload array then nested", `"#.items"`, `[{"items":[{"id":"a"}]},{"items":[{"id":"b"},{"id":"c"}]}]`, []string{"a", "b", "c"}},
		{"trailing hash", `items.#`, `{"items":[{"id":"a"},{"id":"b"}]}`, []string{"a", "b"}},
		{"nested arrays flattened", `items`, `{"items":[[{"id":"a"}],[{"id":"b"},[{"id":"c"}]]]}`, []string{"a", "b", "c"}},
		{"object is one element", `item`, `{"item":{"id":"a"}}`, []string{"a"}},
		{"absent is none", `items`, `{"other":[]}`, nil},
		{"empty array is none", `items`, `{"items":[]}`, nil},
		{"null elements skipped", `items`, `{"items":[null,{"id":"a"},null]}`, []string{"a"}},
		{"scalar root", `items`, `"just a string"`, nil},
		{"gjson query level", `'items.#(kind=="x")#'`, `{"items":[{"kind":"x","id":"a"},{"kind":"y","id":"b"},{"kind":"x","id":"c"}]}`, []string{"a", "c"}},
		{"this level", `[items, "@this"]`, `{"items":[{"id":"a"}]}`, []string{"a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := mustCompile(t, "- each: "+tc.each+"\n  type: t.x\n  entity: e\n  reference: id\n")
			evs := mustMap(t, m, Input{Body: []byte(tc.body)})
			var got []string
			for _, e := range evs {
				got = append(got, e.Reference)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("references %v, want %v", got, tc.want)
			}
		})
	}
}

func TestWhereFiltersElements(t *testing.T) {
	m := mustCompile(t, `
- name: text-only
  each: entry.#.changes.#.value.messages
  where: [ { path: text.body, matches: "^(hi|yo)$" }, { path: $parent.value.metadata.phone_number_id, equals: P2 } ]
  type: message.received
  entity: message
  reference: id
`)
	evs := mustMap(t, m, Input{Body: []byte(fanOut)})
	if len(evs) != 1 || evs[0].Reference != "m3" {
		t.Fatalf("got %v", refs(evs))
	}
}

func refs(evs []*event.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Type+"/"+e.Reference)
	}
	return out
}

func TestAbsentPaths(t *testing.T) {
	m := mustCompile(t, `
- type: ticket.updated
  entity: ticket
  reference: id
  occurred_at: when
  actor: { type: agent, id: agent.id, name: agent.name, email: agent.email }
  fields:
    status: status
    owner: owner
    tags: tags
  changes:
    status: { from: previous.status }
    owner: { from: previous.owner, to: owner }
    priority: { from: previous.priority, to: priority }
  vars: { OWNER: owner, ID: id }
`)
	tests := []struct {
		name, body string
		fields     map[string]any
		changes    map[string]event.Change
		vars       map[string]string
		actor      event.Actor
	}{
		{
			name:   "only the reference",
			body:   `{"id": "7"}`,
			fields: map[string]any{},
			vars:   map[string]string{"ID": "7"},
			actor:  event.Actor{Type: "agent"},
		},
		{
			name:    "from absent, to present",
			body:    `{"id": 7, "status": "open", "owner": null, "agent": {"id": 3, "name": "Al"}}`,
			fields:  map[string]any{"status": "open", "owner": nil}, // null, absent from the changes
			changes: map[string]event.Change{"status": {From: nil, To: "open"}},
			vars:    map[string]string{"ID": "7"},
			actor:   event.Actor{Type: "agent", ID: "3", Name: "Al"},
		},
		{
			name:    "equal sides are no change, differing are",
			body:    `{"id": "7", "status": "open", "previous": {"status": "open", "owner": "bo", "priority": 2}, "owner": "al", "priority": "2"}`,
			fields:  map[string]any{"status": "open", "owner": "al"},
			changes: map[string]event.Change{"owner": {From: "bo", To: "al"}},
			vars:    map[string]string{"ID": "7", "OWNER": "al"},
			actor:   event.Actor{Type: "agent"},
		},
		{
			name:    "to absent, from present",
			body:    `{"id": "7", "previous": {"owner": "bo"}}`,
			fields:  map[string]any{},
			changes: map[string]event.Change{"owner": {From: "bo", To: nil}},
			vars:    map[string]string{"ID": "7"},
			actor:   event.Actor{Type: "agent"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs := mustMap(t, m, Input{Body: []byte(tc.body)})
			if len(evs) != 1 {
				t.Fatalf("got %d events", len(evs))
			}
			e := evs[0]
			if !reflect.DeepEqual(e.Fields, tc.fields) {
				t.Errorf("fields %#v, want %#v", e.Fields, tc.fields)
			}
			if !reflect.DeepEqual(e.Changes, tc.changes) {
				t.Errorf("changes %#v, want %#v", e.Changes, tc.changes)
			}
			if !reflect.DeepEqual(e.Vars, tc.vars) {
				t.Errorf("vars %#v, want %#v", e.Vars, tc.vars)
			}
			if e.Actor != tc.actor {
				t.Errorf("actor %#v, want %#v", e.Actor, tc.actor)
			}
			if !e.OccurredAt.Equal(receivedAt) {
				t.Errorf("occurred_at %v, want the receive time", e.OccurredAt)
			}
		})
	}
}

func TestOrderAndStop(t *testing.T) {
	src := `
- name: first
  match: { path: kind, equals: a }
  type: t.first
  entity: e
  reference: id
- name: second
  match: { path: kind, in: [a, b] }
  type: t.second
  entity: e
  reference: id
  stop: true
- name: third
  type: t.third
  entity: e
  reference: id
`
	m := mustCompile(t, src)
	tests := []struct {
		body string
		want []string
	}{
		{`{"kind":"a","id":"1"}`, []string{"t.first/1", "t.second/1"}},
		{`{"kind":"b","id":"1"}`, []string{"t.second/1"}},
		{`{"kind":"c","id":"1"}`, []string{"t.third/1"}},
	}
	for _, tc := range tests {
		if got := refs(mustMap(t, m, Input{Body: []byte(tc.body)})); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.body, got, tc.want)
		}
	}
	// stop applies when the match held, even if each finds no element.
	m = mustCompile(t, `
- { name: fan, each: items, type: t.item, entity: e, reference: id, stop: true }
- { name: rest, type: t.rest, entity: e, reference: { value: x } }
`)
	if got := refs(mustMap(t, m, Input{Body: []byte(`{"items":[]}`)})); got != nil {
		t.Errorf("got %v after a matching stop entry", got)
	}
}

func TestVarsAndTypes(t *testing.T) {
	m := mustCompile(t, `
- { type: ticket.created, entity: ticket, reference: id, vars: { TICKET_REFERENCE: id, B: x } }
- { type: { path: kind }, entity: ticket, reference: id, vars: { A: y } }
- { type: ticket.created, entity: ticket, reference: id }
- { type: { value: chat.started }, entity: chat, reference: id }
- { type: { path: t, map: { a: contact.created, b: null }, map_default: contact.updated, default: contact.other }, entity: c, reference: id }
- { type: { path: t, map: { a: never.listed } }, entity: c, reference: id }
- { type: 'x.{{ .Path "t" }}', entity: c, reference: id }
- { type: { value: B, map: { B: mapped.const } }, entity: c, reference: id }
`)
	if got, want := m.Vars(), []string{"A", "B", "TICKET_REFERENCE"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Vars() = %v, want %v", got, want)
	}
	if got, want := m.Types(), []string{"chat.started", "contact.created", "contact.other", "contact.updated", "mapped.const", "ticket.created"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Types() = %v, want %v", got, want)
	}
	m.Types()[0] = "mutated"
	if m.Types()[0] != "chat.started" {
		t.Error("Types returns the Mapper's own slice")
	}
}

func TestTemplateVarsAndFields(t *testing.T) {
	m := mustCompile(t, `
- type: t.x
  entity: e
  reference: '%%ID%%-%%SUFFIX%%'
  vars:
    ID: id
    SUFFIX: { value: z }
    BOTH: '{{ .Var "ID" }}/%%SUFFIX%%'
    OPT: nope
  fields:
    a: name
    b: '{{ .Field "a" }}+{{ .Fields.a }}+{{ .Var "OPT" }}'
    obj: obj
    d: '{{ .Field "obj.k" }}'
  changes:
    a: { from: '{{ .Field "d" }}' }
`)
	evs := mustMap(t, m, Input{Body: []byte(`{"id": 12, "name": "N", "obj": {"k": "K"}}`)})
	e := evs[0]
	if e.Reference != "12-z" || e.Vars["BOTH"] != "12/z" {
		t.Errorf("reference %q vars %v", e.Reference, e.Vars)
	}
	if _, ok := e.Vars["OPT"]; ok {
		t.Error("absent var is set")
	}
	if e.Fields["b"] != "N+N+" || e.Fields["d"] != "K" {
		t.Errorf("b = %v, d = %v", e.Fields["b"], e.Fields["d"])
	}
	if c := e.Changes["a"]; c.From != "K" || c.To != "N" {
		t.Errorf("change of a = %+v, want K -> N (changes see every field)", c)
	}
}

// A .Field name that is never computed before the template runs (misspelt,
// defined later, read from vars) always renders "": a compile error, as
// .Var's is.
func TestTemplateFieldNamesChecked(t *testing.T) {
	tests := []struct{ name, entry, want string }{
		{"misspelt", "fields:\n    priority: pr\n    s: '{{ .Field \"priorty\" }}'",
			`c.yaml:6:8: fields.s: template uses .Field "priorty", which this entry does not define; did you mean "priority"? (fields: priority, s)`},
		{"defined later", "fields:\n    s: '{{ .Field \"status\" }}'\n    status: st",
			`c.yaml:5:8: fields.s: template uses .Field "status" before it is computed (fields are computed in file order): it is always empty here; move this field below it`},
		{"itself", "fields:\n    s: '{{ .Field \"s\" }}'",
			`c.yaml:5:8: fields.s: template uses .Field "s" before it is computed (fields are computed in file order): it is always empty here; move this field below it`},
		{"in vars", "vars:\n    V: '{{ .Field \"status\" }}'\n  fields:\n    status: st",
			`c.yaml:5:8: vars.V: template uses .Field "status", but vars are computed before fields: it is always empty here`},
		{"no fields", "actor:\n    name: '{{ .Field \"name\" }}'",
			`c.yaml:5:11: actor.name: template uses .Field "name", but this entry has no fields`},
		{"in a fallback", "fields:\n    s: { path: a, fallback: { template: '{{ .Field \"t\" }}' } }\n    t: b",
			`c.yaml:5:41: fields.s.fallback: template uses .Field "t" before it is computed (fields are computed in file order): it is always empty here; move this field below it`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, errs := compileSrc(t, "- type: t.x\n  entity: e\n  reference: id\n  "+tc.entry+"\n")
			if m != nil || errs.Error() != tc.want {
				t.Errorf("errors\n got: %v\nwant: %s", errs, tc.want)
			}
		})
	}
}

func TestMapErrors(t *testing.T) {
	tests := []struct {
		name, src, body string
		is              error
		msg             string
	}{
		{
			name: "not json", src: "- { type: t.x, entity: e, reference: id }\n", body: `{"id": `,
			is: ErrNotJSON, msg: "mapping: payload is not JSON (7 bytes)",
		},
		{
			name: "empty body", src: "- { type: t.x, entity: e, reference: id }\n", body: ``,
			is: ErrNotJSON, msg: "mapping: payload is not JSON (0 bytes)",
		},
		{
			name: "reference absent", src: "- { name: ticket-status, type: t.x, entity: e, reference: detail.id }\n", body: `{"detail": {}}`,
			is: ErrNoReference, msg: `mapping entry "ticket-status", reference: path "detail.id" is absent or empty: mapping: event reference is absent`,
		},
		{
			name: "reference empty in fan-out", src: "- { each: entry.#.changes, type: t.x, entity: e, reference: id }\n",
			body: `{"entry": [{"changes": [{"id": "a"}]}, {"changes": [{"id": "b"}, {"id": ""}]}]}`,
			is:   ErrNoReference, msg: `mapping entry "events[0]" at entry[1].changes[1], reference: path "id" is absent or empty: mapping: event reference is absent`,
		},
		{
			name: "each skips nulls, the element keeps its index", src: "- { each: messages, type: t.x, entity: e, reference: id }\n",
			body: `{"messages": [null, {"id": "m1"}, {"text": "no id"}]}`,
			is:   ErrNoReference, msg: `mapping entry "events[0]" at messages[2], reference: path "id" is absent or empty: mapping: event reference is absent`,
		},
		{
			name: "each flattens nested arrays, the index names each", src: "- { each: [entry, { path: messages, as: m }], type: t.x, entity: e, reference: id }\n",
			body: `{"entry": [null, {"messages": [[{"id": "a"}], [null, {"id": "b"}, {"x": 1}]]}]}`,
			is:   ErrNoReference, msg: `mapping entry "events[0]" at entry[1].messages[1][2], reference: path "id" is absent or empty: mapping: event reference is absent`,
		},
		{
			name: "dynamic type absent", src: "- { type: { path: kind }, entity: e, reference: id }\n", body: `{"id": 1}`,
			is: ErrNoType, msg: `mapping entry "events[0]", type: path "kind" is absent or empty: mapping: event type or entity is absent`,
		},
		{
			name: "template fails", src: "- { type: t.x, entity: e, reference: id, fields: { s: '{{ .Var (lower \"X\") }}' } }\n", body: `{"id": 1}`,
			is: ErrTemplate, msg: `mapping entry "events[0]", fields.s: mapping: template failed: 1:3: executing "fields.s" at <.Var>: error calling Var: unknown variable "x" (this entry defines: )`,
		},
		{
			name: "template dynamic bad path", src: "- { type: t.x, entity: e, reference: id, fields: { s: '{{ .Path (printf \"a..%s\" \"b\") }}' } }\n", body: `{"id": 1}`,
			is: ErrTemplate, msg: `mapping entry "events[0]", fields.s: mapping: template failed: 1:3: executing "fields.s" at <.Path>: error calling Path: path "a..b": empty part before '.' at position 3`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := mustCompile(t, tc.src)
			evs, err := m.Map(Input{Body: []byte(tc.body), ReceivedAt: receivedAt})
			if err == nil {
				t.Fatalf("no error; events %v", refs(evs))
			}
			if evs != nil {
				t.Errorf("events returned with an error: %v", refs(evs))
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			if err.Error() != tc.msg {
				t.Errorf("error\n got %s\nwant %s", err, tc.msg)
			}
		})
	}
}

// TestDerivedFrom: fields declared derived_from another ride with it
// (Mapper.DerivedFrom); the common model's status_category still does.
func TestDerivedFrom(t *testing.T) {
	m := mustCompile(t, "- type: t.x\n  entity: e\n  reference: id\n  fields:\n    owner: a\n    owner_email: { path: b, derived_from: owner }\n")
	for _, tc := range []struct {
		field, source string
		ok            bool
	}{{"owner_email", "owner", true}, {"status_category", "status", true}, {"owner", "", false}} {
		if source, ok := m.DerivedFrom(tc.field); source != tc.source || ok != tc.ok {
			t.Errorf("DerivedFrom(%q) = %q, %v; want %q, %v", tc.field, source, ok, tc.source, tc.ok)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name, src string
		want      string
	}{
		{
			name: "unknown entry key",
			src:  "- type: t.x\n  entity: e\n  refrence: id\n",
			want: `c.yaml:1:3: missing required key "reference": every event needs the platform's key of its entity (use reference: { value: ... } for a constant)` + "\n" +
				`c.yaml:3:3: unknown key "refrence"; did you mean "reference"? (valid: actor, changes, each, entity, fields, match, name, occurred_at, reference, stop, type, vars, where)`,
		},
		{
			name: "derived_from outside fields",
			src:  "- type: t.x\n  entity: e\n  reference: { path: id, derived_from: owner }\n",
			want: `c.yaml:3:40: reference: derived_from applies to an event field's own spec (fields: { owner_email: { path: ..., derived_from: owner } })`,
		},
		{
			name: "derived_from itself",
			src:  "- type: t.x\n  entity: e\n  reference: id\n  fields:\n    owner: { path: a, derived_from: owner }\n",
			want: `c.yaml:5:37: fields.owner: derived_from names the field itself`,
		},
		{
			name: "derived_from two sources",
			src: "- type: t.x\n  entity: e\n  reference: id\n  fields:\n    mail: { path: a, derived_from: owner }\n" +
				"- type: t.y\n  entity: e\n  reference: id\n  fields:\n    mail: { path: b, derived_from: group }\n",
			want: `c.yaml:10:36: fields.mail: derived_from "group", but line 5 declares "owner"`,
		},
		{
			name: "unknown operator",
			src:  "- match: { path: type, eqals: x }\n  type: t.x\n  entity: e\n  reference: id\n",
			want: `c.yaml:1:24: unknown key "eqals"; did you mean "equals"? (valid: all, any, contains, equals, exists, header, in, matches, not, not_equals, not_in, path, query)`,
		},
		{
			name: "bad regex",
			src:  "- match: { path: type, matches: \"([a-z\" }\n  type: t.x\n  entity: e\n  reference: id\n",
			want: "c.yaml:1:33: matches: invalid RE2 pattern \"([a-z\": error parsing regexp: missing closing ]: `[a-z`",
		},
		{
			name: "bad template",
			src:  "- type: t.x\n  entity: e\n  reference: id\n  fields:\n    s: { template: '{{ .Path \"a\" ' }\n",
			want: `c.yaml:5:20: fields.s: template: 1: unclosed action`,
		},
		{
			name: "template unknown function",
			src:  "- type: t.x\n  entity: e\n  reference: id\n  fields:\n    s: '{{ lowr (.Path \"a\") }}'\n",
			want: `c.yaml:5:8: fields.s: template: 1: function "lowr" not defined; did you mean "lower"?`,
		},
		{
			name: "template unknown method",
			src:  "- type: t.x\n  entity: e\n  reference: id\n  fields:\n    s: '{{ .Pth \"a\" }}'\n",
			want: `c.yaml:5:8: fields.s: template uses .Pth, which does not exist; did you mean ".Path"? (available: .Field, .Fields, .Header, .Path, .Query, .Root, .Var)`,
		},
		{
			name: "template unknown var",
			src:  "- type: t.x\n  entity: e\n  reference: '%%TICKET_REFERNCE%%'\n  vars: { TICKET_REFERENCE: id }\n",
			want: `c.yaml:3:14: reference: template uses unknown variable "TICKET_REFERNCE"; did you mean "TICKET_REFERENCE"? (this entry defines: TICKET_REFERENCE)`,
		},
		{
			name: "var used before defined",
			src:  "- type: t.x\n  entity: e\n  reference: id\n  vars: { A: '%%B%%', B: id }\n",
			want: `c.yaml:4:14: vars.A: template uses variable "B" before it is defined (vars are evaluated in file order)`,
		},
		{
			name: "template bad literal path",
			src:  "- type: t.x\n  entity: e\n  reference: '{{ .Path \"$parnt.id\" }}'\n  each: items\n",
			want: `c.yaml:3:14: reference: template: .Path "$parnt.id": unknown path prefix "$parnt"; did you mean "$parent"? (valid: $header, $parent, $query, $root; a literal $ key is written \$)`,
		},
		{
			name: "map on non-scalar",
			src:  "- type: t.x\n  entity: e\n  reference: id\n  fields:\n    status: { path: s, map: { OPEN: [open] } }\n",
			want: `c.yaml:5:37: fields.status: map value for "OPEN" must be a scalar, got a list`,
		},
		{
			name: "map on a list constant",
			src:  "- type: t.x\n  entity: e\n  reference: id\n  fields:\n    status: { value: [a], map: { a: b } }\n",
			want: `c.yaml:5:32: fields.status: map applies to scalar values, but value is a list`,
		},
		{
			name: "map_default without map",
			src:  "- type: t.x\n  entity: e\n  reference: id\n  fields: { s: { path: s, map_default: x } }\n",
			want: `c.yaml:4:40: fields.s: map_default needs map`,
		},
		{
			name: "empty type and entity",
			src:  "- type: \"\"\n  entity: { value: \"  \" }\n  reference: id\n",
			want: "c.yaml:1:9: type must not be empty\nc.yaml:2:11: entity must not be empty",
		},
		{
			name: "missing type, entity and reference",
			src:  "- name: x\n",
			want: `c.yaml:1:3: missing required key "type": the event type, like ticket.status_changed` + "\n" +
				`c.yaml:1:3: missing required key "entity": the entity type, like ticket or message` + "\n" +
				`c.yaml:1:3: missing required key "reference": every event needs the platform's key of its entity (use reference: { value: ... } for a constant)`,
		},
		{
			name: "path syntax",
			src:  "- type: t.x\n  entity: e\n  reference: detail..id\n  fields: { a: 'items.#(id==1', b: 'x.@revers', c: 'x.' }\n",
			want: `c.yaml:3:14: reference: path "detail..id": empty part before '.' at position 8` + "\n" +
				`c.yaml:4:16: fields.a: path "items.#(id==1": unclosed '(' at position 8` + "\n" +
				`c.yaml:4:36: fields.b: path "x.@revers": unknown modifier @revers; did you mean "reverse"?` + "\n" +
				`c.yaml:4:52: fields.c: path "x.": path ends with '.'`,
		},
		{
			name: "prefix paths",
			src:  "- type: t.x\n  entity: e\n  reference: $root.\n  fields: { a: $header, b: $query., c: '$header.X Y' }\n",
			want: `c.yaml:3:14: reference: path "$root.": path ends with '.'` + "\n" +
				`c.yaml:4:16: fields.a: path "$header": $header needs a name, as in $header.Name` + "\n" +
				`c.yaml:4:28: fields.b: path "$query.": path ends with '.'` + "\n" +
				`c.yaml:4:40: fields.c: path "$header.X Y": invalid header name "X Y"`,
		},
		{
			name: "each path syntax and prefix",
			src:  "- each: 'entry.#.$root.x'\n  type: t.x\n  entity: e\n  reference: id\n",
			want: `c.yaml:1:9: each "entry.#.$root.x": each paths are relative to the enclosing level; $ prefixes are not allowed here`,
		},
		{
			name: "each list errors",
			src: "- each: []\n  type: t.x\n  entity: e\n  reference: id\n" +
				"- each: [ { as: x } ]\n  type: t.x\n  entity: e\n  reference: id\n" +
				"- each: [ { path: a, as: x }, { path: b, as: x } ]\n  type: t.x\n  entity: e\n  reference: id\n" +
				"- each: { path: a }\n  type: t.x\n  entity: e\n  reference: id\n" +
				"- each: [ a, { path: b, ass: y } ]\n  type: t.x\n  entity: e\n  reference: id\n" +
				"- each: [ 'a..b' ]\n  type: t.x\n  entity: e\n  reference: id\n",
			want: `c.yaml:1:9: each: empty list of levels` + "\n" +
				`c.yaml:5:11: each level: needs path (a string)` + "\n" +
				`c.yaml:9:46: each level: name "x" is used twice` + "\n" +
				`c.yaml:13:9: each: expected a path or a list of levels, got a mapping` + "\n" +
				`c.yaml:17:25: unknown key "ass"; did you mean "as"? (valid: as, path)` + "\n" +
				`c.yaml:21:11: each level "a..b": empty part before '.' at position 3`,
		},
		{
			name: "too many parents",
			src:  "- each: items\n  type: t.x\n  entity: e\n  reference: $parent.$parent.id\n",
			want: `c.yaml:4:14: reference: path "$parent.$parent.id": 2 × $parent goes above the payload: each has 1 level(s) here`,
		},
		{
			name: "parent without each and in match",
			src:  "- match: { path: $parent.x, exists: true }\n  type: t.x\n  entity: e\n  reference: $parent.id\n",
			want: `c.yaml:1:18: path "$parent.x": $parent needs each (there is no enclosing element here)` + "\n" +
				`c.yaml:4:14: reference: path "$parent.id": $parent needs each (there is no enclosing element here)`,
		},
		{
			name: "number where a path is expected",
			src:  "- type: t.x\n  entity: e\n  reference: id\n  fields: { priority: 1 }\n",
			want: `c.yaml:4:23: fields.priority: 1 would be read as a path; write { value: 1 } for a constant, or quote it for a path`,
		},
		{
			name: "spec with two sources",
			src:  "- type: t.x\n  entity: e\n  reference: { path: id, value: x }\n",
			want: `c.yaml:3:14: reference: takes one of path, value, template or lookup, got path and value`,
		},
		{
			name: "unknown spec key",
			src:  "- type: t.x\n  entity: e\n  reference: { path: id, defualt: x }\n",
			want: `c.yaml:3:26: unknown key "defualt"; did you mean "default"? (valid: default, derived_from, fallback, lookup, map, map_default, path, split, template, value)`,
		},
		{
			name: "condition with two operators",
			src:  "- match: { path: a, equals: x, exists: true }\n  type: t.x\n  entity: e\n  reference: id\n",
			want: `c.yaml:1:40: a condition takes one operator, got equals and exists; combine conditions in a list or with all/any`,
		},
		{
			name: "condition in with a scalar",
			src:  "- match: { path: a, in: x }\n  type: t.x\n  entity: e\n  reference: id\n",
			want: `c.yaml:1:25: in: expected a list of values, got "x"`,
		},
		{
			name: "unknown actor type and key",
			src:  "- type: t.x\n  entity: e\n  reference: id\n  actor: { type: custmer, mail: m }\n",
			want: `c.yaml:4:27: unknown key "mail"; did you mean "email"? (valid: email, id, name, type)`,
		},
		{
			name: "actor type constant",
			src:  "- type: t.x\n  entity: e\n  reference: id\n  actor: { type: custmer }\n",
			want: `c.yaml:4:18: actor.type: unknown actor type "custmer"; did you mean "customer"? (valid: agent, customer, gateway, system)`,
		},
		{
			name: "bad field and var names",
			src:  "- type: t.x\n  entity: e\n  reference: id\n  fields: { 'a b': x, c.: y }\n  vars: { 1X: id }\n",
			want: `c.yaml:4:13: fields: "a b" is not a field name (dot-separated parts of letters, digits, _ and -)` + "\n" +
				`c.yaml:4:23: fields: "c." is not a field name (dot-separated parts of letters, digits, _ and -)` + "\n" +
				`c.yaml:5:11: vars: "1X" is not a variable name (letters, digits and _, not starting with a digit)`,
		},
		{
			name: "change without to or field",
			src:  "- type: t.x\n  entity: e\n  reference: id\n  changes: { status: { from: prev } }\n",
			want: `c.yaml:4:22: changes.status: needs to, or a field "status" in fields to take it from`,
		},
		{
			name: "duplicate entry names",
			src:  "- { name: a, type: t.x, entity: e, reference: id }\n- { name: a, type: t.y, entity: e, reference: id }\n",
			want: `c.yaml:2:11: entry name "a" is already used at line 1`,
		},
		{
			name: "reserved level name",
			src:  "- each: [ { path: items, as: root } ]\n  type: t.x\n  entity: e\n  reference: id\n",
			want: `c.yaml:1:30: each level: "root" is reserved for $root; choose another name`,
		},
		{
			name: "actor types of a map",
			src:  "- type: t.x\n  entity: e\n  reference: id\n  actor:\n    type: { path: author.role, map: { end_user: custmer, admin: agnet, bot: ~ }, map_default: sytem, default: agent }\n",
			want: `c.yaml:5:11: actor.type: map value for "admin": unknown actor type "agnet"; did you mean "agent"? (valid: agent, customer, gateway, system)` + "\n" +
				`c.yaml:5:11: actor.type: map value for "end_user": unknown actor type "custmer"; did you mean "customer"? (valid: agent, customer, gateway, system)` + "\n" +
				`c.yaml:5:11: actor.type: map_default: unknown actor type "sytem"; did you mean "system"? (valid: agent, customer, gateway, system)`,
		},
		{
			name: "actor type default and fallback",
			src:  "- type: t.x\n  entity: e\n  reference: id\n  actor:\n    type: { path: role, default: custmer, fallback: { path: kind, default: agnt } }\n",
			want: `c.yaml:5:11: actor.type: default: unknown actor type "custmer"; did you mean "customer"? (valid: agent, customer, gateway, system)` + "\n" +
				`c.yaml:5:11: actor.type.fallback: default: unknown actor type "agnt"; did you mean "agent"? (valid: agent, customer, gateway, system)`,
		},
		{
			name: "actor type gateway from the payload",
			src:  "- type: t.x\n  entity: e\n  reference: id\n  actor:\n    type: { path: role, map: { me: gateway }, default: system }\n",
			want: `c.yaml:5:11: actor.type: map value for "me": actor type "gateway" marks Hookline's own changes (rules skip them) and may only be a constant actor.type, not a value the payload selects; use customer, agent or system`,
		},
		{
			name: "not a list",
			src:  "type: t.x\n",
			want: `c.yaml:1:1: inbound.events: expected a list of event mappings, got a mapping`,
		},
		{
			name: "occurred_at constant",
			src:  "- type: t.x\n  entity: e\n  reference: id\n  occurred_at: { value: soon }\n",
			want: `c.yaml:4:16: occurred_at: soon is not an RFC 3339 time or a Unix timestamp`,
		},
		{
			name: "type with spaces",
			src:  "- type: ticket created\n  entity: e\n  reference: id\n",
			want: `c.yaml:1:9: type "ticket created" must not contain spaces`,
		},
		{
			name: "equals null",
			src:  "- match: { path: a, equals: null }\n  type: t.x\n  entity: e\n  reference: id\n",
			want: `c.yaml:1:29: equals: null is not a value here; use exists: false for an absent or null value`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, errs := compileSrc(t, tc.src)
			if len(errs) == 0 {
				t.Fatal("compiled without errors")
			}
			if m != nil {
				t.Error("a Mapper was returned with errors")
			}
			if got := errs.Error(); got != tc.want {
				t.Errorf("errors\n got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestCompileEmpty(t *testing.T) {
	for _, src := range []string{"", "~\n"} {
		node, _ := yamlconf.Parse("c.yaml", []byte(src), nil)
		m, errs := Compile("c.yaml", "conn", node)
		if len(errs) > 0 || m == nil {
			t.Fatalf("%q: %v", src, errs)
		}
		evs, err := m.Map(Input{Body: []byte(`{"a":1}`)})
		if err != nil || len(evs) != 0 {
			t.Errorf("%q: events %v err %v", src, refs(evs), err)
		}
		if len(m.Vars()) != 0 || len(m.Types()) != 0 {
			t.Errorf("vars %v types %v", m.Vars(), m.Types())
		}
	}
}

// TestRawOfEachEvent: an event mapped from the whole payload keeps the
// whole body as Raw (one copy shared by all such events); an event of an
// `each` entry keeps the element that produced it, so that a payload
// fanned out to many events is not stored once per event.
func TestRawOfEachEvent(t *testing.T) {
	const body = `{"kind":"batch","items":[{"id":"a","n":1}, {"id":"b","n":[2,3]},"c",null,[{"id":"d"}]],
  "one":{"id":"o"}}`
	tests := []struct {
		name, src string
		want      []string // Raw of each event, in order
	}{
		{"no each: the whole body", "- { type: t.x, entity: e, reference: kind }\n", []string{body}},
		{"two entries without each share the body", "- { type: t.x, entity: e, reference: kind }\n- { type: t.y, entity: e, reference: kind }\n",
			[]string{body, body}},
		{"each: the element, nested arrays flattened, nulls skipped", "- { each: items, type: t.x, entity: e, reference: '{{ .Path \"id\" }}-' }\n",
			[]string{`{"id":"a","n":1}`, `{"id":"b","n":[2,3]}`, `"c"`, `{"id":"d"}`}},
		{"each over an object: that object", "- { each: one, type: t.x, entity: e, reference: id }\n", []string{`{"id":"o"}`}},
		{"each mixed with a whole-payload entry", "- { type: t.x, entity: e, reference: kind }\n- { each: items, where: { path: n, exists: true }, type: t.y, entity: e, reference: id }\n",
			[]string{body, `{"id":"a","n":1}`, `{"id":"b","n":[2,3]}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs := mustMap(t, mustCompile(t, tt.src), Input{Body: []byte(body)})
			if len(evs) != len(tt.want) {
				t.Fatalf("%d events, want %d", len(evs), len(tt.want))
			}
			for i, e := range evs {
				if string(e.Raw) != tt.want[i] {
					t.Errorf("event %d raw %s, want %s", i, e.Raw, tt.want[i])
				}
			}
		})
	}
	// A fan-out stores about the body once, however many events it makes.
	var b strings.Builder
	b.WriteString(`{"items":[`)
	for i := range 1000 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":"%d","pad":"%s"}`, i, strings.Repeat("x", 100))
	}
	b.WriteString(`]}`)
	evs := mustMap(t, mustCompile(t, "- { each: items, type: t.x, entity: e, reference: id }\n"), Input{Body: []byte(b.String())})
	total := 0
	for _, e := range evs {
		total += len(e.Raw)
	}
	if len(evs) != 1000 || total > b.Len() {
		t.Errorf("%d events hold %d bytes of raw for a %d-byte body", len(evs), total, b.Len())
	}
}

func TestRawIsACopy(t *testing.T) {
	m := mustCompile(t, "- { type: t.x, entity: e, reference: id }\n")
	body := []byte(`{"id":"1"}`)
	evs := mustMap(t, m, Input{Body: body})
	copy(body, `{"id":"2"}`)
	if string(evs[0].Raw) != `{"id":"1"}` {
		t.Errorf("Raw follows the caller's buffer: %s", evs[0].Raw)
	}
	if !json.Valid(evs[0].Raw) {
		t.Error("Raw is not JSON")
	}
}

func TestConcurrentMap(t *testing.T) {
	src, err := os.ReadFile("testdata/whatsapp-text.txt")
	if err != nil {
		t.Fatal(err)
	}
	g := parseGolden(string(src))
	mapping, _ := g.get("mapping.yaml")
	m := mustCompile(t, mapping)
	bodies := [][]byte{
		readFixture(t, "whatsapp-cloud-text-message.json"),
		readFixture(t, "whatsapp-cloud-interactive-button-reply.json"),
		readFixture(t, "whatsapp-cloud-status-sent.json"),
	}
	hdr := map[string][]string{"X-Hub-Signature-256": {"sha256=x"}}
	want := make([]string, len(bodies))
	for i, b := range bodies {
		want[i] = renderEvents(mustMap(t, m, Input{Body: b, Header: hdr}), b)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				k := (w + i) % len(bodies)
				evs, err := m.Map(Input{Body: bodies[k], Header: hdr, ReceivedAt: receivedAt})
				if err != nil {
					t.Error(err)
					return
				}
				if got := renderEvents(evs, bodies[k]); got != want[k] {
					t.Errorf("concurrent result differs for body %d", k)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestCheckGJSON(t *testing.T) {
	valid := []string{
		"a", "a.b", "a.0.b", `a\.b`, `\$x`, "a|b", "a.#", "items.#.name", "a.*", "a?c",
		`items.#(id==1).name`, `items.#(name%"a*")#.id`, `friends.#(nets.#(=="fb"))#.first`,
		`items.#(name=="x.y").id`, "@reverse", "a.@reverse", `a.@join:{"preserve":true}`, "a.@this.b",
		"[a,b]", "{a,b.c}", "{\"k\":a}", "!true", `!"x"`, `!{"a":[1,null]}`, "![1,2]", "!-4.5e3", "!12", "@this|!null", "!x", "a|!x", "a.!true", `\!x`,
	}
	for _, p := range valid {
		if err := checkGJSON(p); err != nil {
			t.Errorf("%q: %v", p, err)
		}
	}
	invalid := map[string]string{
		"":            "empty path",
		"..a":         "JSON-lines paths (starting with ..) are not supported",
		"a..b":        "empty part before '.' at position 3",
		".a":          "empty part before '.' at position 1",
		"a.":          "path ends with '.'",
		"a|":          "path ends with '|'",
		`a\`:          "path ends with a lone backslash",
		"a.#(b==1":    "unclosed '(' at position 4",
		`a.#(b=="x)`:  "unclosed string starting at position 4",
		"a.#(b==1]":   "unexpected ']' at position 9",
		"a.@xyzzy123": "unknown modifier @xyzzy123",
		"a.@pretty:{": "unclosed '{' at position 11",
		"[a,b":        "unclosed '[' at position 1",
		"!{":          "unclosed '{' at position 2",
		"!nan":        `literal "nan" at position 1 is not JSON`,
		"a|!TRUE":     `literal "TRUE" at position 3 is not JSON`,
		`!"x`:         "unclosed string starting at position 2",
		"!1.a":        `literal "1.a" at position 1 is not JSON`,
		"!+5":         `literal "+5" at position 1 is not JSON`,
		"![1,]":       `literal "[1,]" at position 1 is not JSON`,
	}
	for p, want := range invalid {
		if err := checkGJSON(p); err == nil || err.Error() != want {
			t.Errorf("%q: got %v, want %s", p, err, want)
		}
	}
}

// A result gjson made from the path rather than found in the body (a
// literal, a multipath) that is not JSON stores nothing and counts as
// absent, on the fast path as on the general one.
func TestPutResultBrokenLiteral(t *testing.T) {
	r := gjson.Result{Type: gjson.JSON, Raw: "{", Index: 0}
	if _, ok := resultValue(r); ok {
		t.Fatal("resultValue decoded broken JSON")
	}
	fields := map[string]any{}
	if putResult(fields, "x", r, true, true) || len(fields) != 0 {
		t.Fatalf("putResult of broken JSON: stored %v", fields)
	}
}

// TestHostilePayloads maps deeply nested payloads of about a megabyte: each
// and field values must stay linear (a quadratic walk takes many minutes
// here), and nothing panics.
func TestHostilePayloads(t *testing.T) {
	m := mustCompile(t, "- { each: '#', type: t.x, entity: e, reference: { value: r }, fields: { x: '@this', y: '$root', z: a } }\n")
	const depth = 100000
	tests := []struct {
		name   string
		body   string
		events int
		fields []string
	}{
		{"arrays in arrays", strings.Repeat("[", depth) + `{"a":1}` + strings.Repeat("]", depth), 0, nil},
		{"shallow nesting fans out", "[[[" + `{"a":1}` + "]]]", 1, []string{"x.a", "y", "z"}},
		{"deep array value", `{"a":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}`, 1, nil},
		{"deep object value", `{"a":` + strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth) + `}`, 1, nil},
		{"nesting json accepts", `{"a":` + strings.Repeat(`{"b":`, 20) + "1" + strings.Repeat("}", 20) + `}`, 1,
			[]string{"x.a.b.b.b.b.b.b.b", "y.a.b.b.b.b.b.b.b", "z.b.b.b.b.b.b.b.b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs := mustMap(t, m, Input{Body: []byte(tc.body)})
			if len(evs) != tc.events {
				t.Fatalf("%d events, want %d", len(evs), tc.events)
			}
			if len(evs) == 0 {
				return
			}
			var got []string
			for k := range evs[0].Fields {
				got = append(got, k)
			}
			sort.Strings(got)
			if !reflect.DeepEqual(got, tc.fields) {
				t.Errorf("fields %v, want %v", got, tc.fields)
			}
		})
	}
}

// TestSharedPathsLinear fans out 10,000 elements of a payload padded to
// 2 MiB, with fields that read the payload and the enclosing element: those
// are read once per enclosing element, not once per element (which would
// scan about 20 GB here: the test then runs for minutes instead of a blink).
func TestSharedPathsLinear(t *testing.T) {
	const n = 10000
	var b strings.Builder
	b.WriteString(`{"entry":[{"id":"E","changes":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"id":"c` + strconv.Itoa(i) + `"}`)
	}
	b.WriteString(`]}],"pad":"` + strings.Repeat("x", 2<<20) + `","last":"L"}`)
	m := mustCompile(t, `
- each: entry.#.changes
  type: t.x
  entity: e
  reference: id
  fields:
    missing: $root.missing
    last: $root.last
    parent_missing: $parent.missing
    entry: $parent.id
    tmpl: '{{ .Root "last" }}{{ .Path "$root.nope" }}{{ .Path "$parent.nope" }}'
`).WithMaxEvents(n)
	evs := mustMap(t, m, Input{Body: []byte(b.String())})
	if len(evs) != n {
		t.Fatalf("%d events", len(evs))
	}
	for _, i := range []int{0, n - 1} {
		want := map[string]any{"last": "L", "entry": "E", "tmpl": "L"}
		if !reflect.DeepEqual(evs[i].Fields, want) || evs[i].Reference != "c"+strconv.Itoa(i) {
			t.Errorf("event %d: %s %v", i, evs[i].Reference, evs[i].Fields)
		}
	}
}

// One ticket id spelled as different JSON numbers (1000000, 1000000.0,
// 1e6, "1000000") is one reference, so one entity; other numbers keep
// their exact text (fractions, and ids too large for a float64).
func TestNumericReferenceSpellings(t *testing.T) {
	m := mustCompile(t, `
- type: ticket.updated
  entity: ticket
  reference: id
  vars: { ID: id }
`)
	for _, tc := range []struct{ payload, want string }{
		{`{"id": 1000000}`, "1000000"},
		{`{"id": 1000000.0}`, "1000000"},
		{`{"id": 1e6}`, "1000000"},
		{`{"id": 1E+6}`, "1000000"},
		{`{"id": "1000000"}`, "1000000"},
		{`{"id": 1.5}`, "1.5"},
		{`{"id": 12345678901234567890}`, "12345678901234567890"},
		{`{"id": 1.2345678901234567e19}`, "1.2345678901234567e19"},
	} {
		evs := mustMap(t, m, Input{Body: []byte(tc.payload)})
		if len(evs) != 1 || evs[0].Reference != tc.want || evs[0].Vars["ID"] != tc.want {
			t.Errorf("%s: reference %q, var %q; want %q", tc.payload, evs[0].Reference, evs[0].Vars["ID"], tc.want)
		}
	}
}

// A template prints a number as plain digits when it is whole (as
// references do), whatever its size or the way the payload spelt it (a
// payload's own digits otherwise stay as they were sent).
func TestTemplatePrintsWholeNumbers(t *testing.T) {
	m := mustCompile(t, `
- type: t.x
  entity: e
  reference: id
  vars:
    AMOUNT: '{{ .Path "amount" }}'
  fields:
    amount: amount
    rate: rate
    tiny: tiny
    text: '{{ .Field "amount" }}|{{ .Fields.amount }}|{{ .Field "rate" }}|{{ .Field "tiny" }}|{{ .Path "amount" }}'
`)
	tests := []struct{ body, text, amountVar string }{
		{`{"id": 1, "amount": 1000000, "rate": 0.25, "tiny": 0.0000001}`, "1000000|1000000|0.25|1e-07|1000000", "1000000"},
		{`{"id": 1, "amount": 1e6, "rate": 12.5, "tiny": 3}`, "1000000|1000000|12.5|3|1000000", "1000000"},
		{`{"id": 1, "amount": 123456789012, "rate": 1234.5678, "tiny": -2000000}`, "123456789012|123456789012|1234.5678|-2000000|123456789012", "123456789012"},
	}
	for _, tt := range tests {
		ev := mustMap(t, m, Input{Body: []byte(tt.body)})[0]
		if ev.Fields["text"] != tt.text || ev.Vars["AMOUNT"] != tt.amountVar {
			t.Errorf("%s: text %q AMOUNT %q, want %q and %q", tt.body, ev.Fields["text"], ev.Vars["AMOUNT"], tt.text, tt.amountVar)
		}
	}
}

// Types lists what a connector can produce, and TypesClosed says whether
// that is all: a type read from the payload is open unless a map_default
// closes it or the entry's match pins the values of the same path.
func TestTypesClosed(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		types     string
		closed    bool
	}{
		{"constant", `- { type: a.b, entity: x, reference: id }`, "a.b", true},
		{"path", `- { type: { path: kind }, entity: x, reference: id }`, "", false},
		{"map with default", `- { type: { path: kind, map: { x: a.x }, map_default: a.other }, entity: x, reference: id }`, "a.other a.x", true},
		{"map pinned by in", `- { match: { path: kind, in: [x, y] }, type: { path: kind, map: { x: a.x } }, entity: x, reference: id }`, "a.x y", true},
		{"map pinned by equals in all", `- { match: { all: [ { path: ok, exists: true }, { path: kind, equals: x } ] }, type: { path: kind, map: { x: a.x } }, entity: x, reference: id }`, "a.x", true},
		{"map, match on another path", `- { match: { path: other, in: [x] }, type: { path: kind, map: { x: a.x } }, entity: x, reference: id }`, "", false},
		{"map pinned inside any", `- { match: { any: [ { path: kind, in: [x] }, { path: k2, in: [y] } ] }, type: { path: kind, map: { x: a.x } }, entity: x, reference: id }`, "", false},
		{"one open entry opens all", "- { type: a.b, entity: x, reference: id }\n- { type: { path: kind }, entity: x, reference: id }", "a.b", false},
		{"pinned to a number", `- { match: { path: kind, in: [1] }, type: { path: kind, map: { "1": a.x } }, entity: x, reference: id }`, "", false},
		{"pinned value mapped to null", `- { match: { path: kind, in: [x, y] }, type: { path: kind, map: { x: a.x, y: null }, default: a.d }, entity: x, reference: id }`, "", false},
	} {
		m := mustCompile(t, tc.src)
		if got := strings.Join(m.Types(), " "); got != tc.types || m.TypesClosed() != tc.closed {
			t.Errorf("%s: Types %q closed %v, want %q %v", tc.name, got, m.TypesClosed(), tc.types, tc.closed)
		}
	}
}
