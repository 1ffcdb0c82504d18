package mapping

import (
	"strings"
	"testing"

	"github.com/hookline/hookline/event"
)

// lookup finds the element of a list whose key equals a value of the
// current element, and takes a part of it.
func TestLookup(t *testing.T) {
	const payload = `{
		"contacts": [
			{"wa_id": "111", "profile": {"name": "Ann"}, "n": 1},
			{"wa_id": "222", "profile": {"name": "Bob"}, "n": 2},
			{"wa_id": "222", "profile": {"name": "Bob again"}}
		],
		"one": {"wa_id": "111", "profile": {"name": "Solo"}},
		"from": "222", "ann": "111", "stranger": "999", "num": 2, "numtext": "2", "empty": "",
		"obj": {"x": 1}
	}`
	lookup := func(in, key, equals, get string, extra string) string {
		s := "{ lookup: { in: " + in + ", key: " + key + ", equals: " + equals
		if get != "" {
			s += ", get: " + get
		}
		return s + " }" + extra + " }"
	}
	tests := []fieldCase{
		{name: "second contact", spec: lookup("contacts", "wa_id", "from", "profile.name", ""), want: "Bob"},
		{name: "first contact", spec: lookup("contacts", "wa_id", "ann", "profile.name", ""), want: "Ann"},
		{name: "no match is absent", spec: lookup("contacts", "wa_id", "stranger", "profile.name", ""), want: nil},
		{name: "no match takes default", spec: lookup("contacts", "wa_id", "stranger", "profile.name", ", default: unknown"), want: "unknown"},
		{name: "no match takes fallback", spec: lookup("contacts", "wa_id", "stranger", "profile.name", ", fallback: { value: fb }"), want: "fb"},
		{name: "absent value sought is absent", spec: lookup("contacts", "wa_id", "nope", "profile.name", ""), want: nil},
		{name: "empty value sought is absent", spec: lookup("contacts", "wa_id", "empty", "profile.name", ""), want: nil},
		{name: "a number matches by its text", spec: lookup("contacts", "n", "num", "wa_id", ""), want: "222"},
		{name: "numeric text matches a number", spec: lookup("contacts", "n", "numtext", "profile.name", ""), want: "Bob"},
		{name: "without get the element", spec: lookup("contacts", "wa_id", "ann", "", ""), want: nil,
			extra: map[string]any{"x.wa_id": "111", "x.profile.name": "Ann", "x.n": 1.0}},
		{name: "an object is a list of one", spec: lookup("one", "wa_id", "ann", "profile.name", ""), want: "Solo"},
		{name: "absent list", spec: lookup("nope", "wa_id", "ann", "profile.name", ""), want: nil},
		{name: "list that is not a list of objects", spec: lookup("from", "wa_id", "ann", "profile.name", ""), want: nil},
		{name: "value sought is an object", spec: lookup("contacts", "wa_id", "obj", "profile.name", ""), want: nil},
		{name: "map applies", spec: lookup("contacts", "wa_id", "ann", "profile.name", ", map: { Ann: Anne }"), want: "Anne"},
		{name: "root prefix and header", spec: lookup("$root.contacts", "wa_id", "$header.X-Wa", "profile.name", ""),
			header: map[string][]string{"X-Wa": {"111"}}, want: "Ann"},
	}
	runFieldCases(t, payload, tests, func(t *testing.T, tc fieldCase, ev *event.Event) {})
}

// Under each, the list and the value sought come from different levels:
// every message of a WhatsApp batch is named after its own contact.
func TestLookupUnderEach(t *testing.T) {
	m := mustCompile(t, `
- each: [entry, { path: changes, as: change }, value.messages]
  type: message.received
  entity: chat
  reference: from
  actor:
    id: from
    name: { lookup: { in: $change.value.contacts, key: wa_id, equals: from, get: profile.name } }
`)
	body := `{"entry": [{"changes": [{"value": {
		"contacts": [{"wa_id": "111", "profile": {"name": "Ann"}}, {"wa_id": "222", "profile": {"name": "Bob"}}],
		"messages": [{"from": "222"}, {"from": "111"}, {"from": "333"}]}}]}]}`
	evs := mustMap(t, m, Input{Body: []byte(body)})
	var got []string
	for _, ev := range evs {
		got = append(got, ev.Actor.ID+"="+ev.Actor.Name)
	}
	if strings.Join(got, " ") != "222=Bob 111=Ann 333=" {
		t.Errorf("actors %v", got)
	}
}

func TestLookupCompileErrors(t *testing.T) {
	tests := []struct{ spec, want string }{
		{"{ lookup: { in: contacts, key: wa_id } }", `c.yaml:5:18: fields.x: lookup: missing required key "equals"`},
		{"{ lookup: { key: wa_id, equals: from } }", `c.yaml:5:18: fields.x: lookup: missing required key "in"`},
		{"{ lookup: { in: contacts, equals: from } }", `c.yaml:5:18: fields.x: lookup: missing required key "key"`},
		{"{ lookup: { in: contacts, key: wa_id, equals: from, gett: a } }", `c.yaml:5:60: unknown key "gett"; did you mean "get"? (valid: equals, get, in, key)`},
		{"{ lookup: { in: 'contacts.#(', key: wa_id, equals: from } }", `c.yaml:5:24: fields.x: lookup: in: path "contacts.#(": unclosed '(' at position 11`},
		{"{ lookup: { in: $header.X, key: wa_id, equals: from } }", `c.yaml:5:24: fields.x: lookup: in: $header.X is not a list of the payload`},
		{"{ lookup: { in: contacts, key: $root.id, equals: from } }", `c.yaml:5:39: fields.x: lookup: key: "$root.id": key and get are paths inside each element of the list; $ prefixes are not allowed here`},
		{"{ lookup: { in: contacts, key: wa_id, equals: from, get: a. } }", `c.yaml:5:65: fields.x: lookup: get: "a.": path ends with '.'`},
		{"{ lookup: { in: contacts, key: wa_id, equals: $nope.x } }", `c.yaml:5:54: fields.x: lookup: equals: path "$nope.x": unknown path prefix "$nope"`},
		{"{ lookup: { in: contacts, key: wa_id, equals: from }, path: a }", `c.yaml:5:8: fields.x: takes one of path, value, template or lookup, got path and lookup`},
		{"{ lookup: contacts }", `c.yaml:5:18: fields.x: lookup: expected { in, key, equals, get }, got "contacts"`},
	}
	for _, tt := range tests {
		_, errs := compileSrc(t, fieldEntry(tt.spec))
		if !strings.HasPrefix(errs.Error(), tt.want) {
			t.Errorf("%s:\n got %v\nwant %s", tt.spec, errs, tt.want)
		}
	}
}
