package mapping

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// fuzzMapping exercises every kind of spec and condition.
const fuzzMapping = `
- name: messages
  match:
    any:
      - { path: object, equals: whatsapp_business_account }
      - { header: X-Kind, in: [wa, whatsapp] }
  each: [entry, { path: changes, as: change }, value.messages]
  where: { not: { path: type, matches: "^(reaction|unsupported)$" } }
  type: { path: type, map: { text: message.received, interactive: message.received }, map_default: message.other }
  entity: message
  reference: id
  occurred_at: timestamp
  actor: { type: customer, id: from, name: $change.value.contacts.0.profile.name }
  fields:
    text: { template: '{{ with .Path "text.body" }}{{ . }}{{ else }}{{ .Path "interactive.button_reply.title" }}{{ end }}' }
    tags: { path: tags, map: { a: b } }
    phone: $parent.value.metadata.phone_number_id
    all: $root.entry.#.id
    raw: context
  changes:
    status: { from: previous, to: { path: current, default: x } }
  vars: { PHONE: from, R: '%%PHONE%%-{{ .Root "object" }}' }
- name: statuses
  match: { path: entry.0.changes.0.value.statuses, exists: true }
  each: entry.#.changes.#.value.statuses
  type: message.status
  entity: message
  reference: { path: id, default: none }
  occurred_at: timestamp
  fields: { status: status, pricing: pricing }
- name: generic
  match: { not: { path: object, exists: true } }
  type: { path: [type, event, $header.X-Kind], default: generic.received }
  entity: { path: entity, fallback: { template: '{{ with .Path "type" }}{{ before "." (print .) }}{{ end }}' }, default: record }
  reference: { path: [reference, data.id, $query.id], fallback: { template: '{{ .Path "id" }}', fallback: $header.X-Kind }, default: unknown }
  occurred_at: { path: time, default: 0 }
  fields: { subject: name, custom: detail, n: '{{ json (.Path "@this") }}' }
  stop: true
`

func FuzzMap(f *testing.F) {
	for _, name := range []string{
		"whatsapp-cloud-text-message.json", "whatsapp-cloud-interactive-button-reply.json",
		"whatsapp-cloud-status-sent.json", "zendesk-event-user-active-changed.json",
		"zapier-rest-hook-sample-recipe.json", "slack-event-callback-message.json",
		"slack-url-verification.json",
	} {
		b, err := os.ReadFile(fixturesDir + "/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		``, `null`, `[]`, `"str{"`, `{"entry":[[[]]]}`, `{"entry":[{"changes":[{"value":{"messages":[null,1,"x",{"id":""}]}}]}]}`,
		`{"object":"whatsapp_business_account","entry":{"changes":{"value":{"messages":{"id":"m","timestamp":"1e400"}}}}}`,
		`{"id":1e999,"time":"-0.5","detail":{"a":{"b":[1,{"c":null}]}}}`, `{"id":"\u0000\ud800"}`, `[{"id":1},{"id":2}]`,
		`{"type":"ticket.updated","entity":"","reference":false,"data":{"id":[]}}`, `{"event":{},"type":[],"entity":{"a":1},"id":0}`,
	} {
		f.Add([]byte(s))
	}
	m := mustCompile(f, fuzzMapping)
	f.Fuzz(func(t *testing.T, body []byte) {
		in := Input{Body: body, Header: map[string][]string{"X-Kind": {"wa"}}, ReceivedAt: receivedAt}
		evs, err := m.Map(in)
		if err != nil {
			if evs != nil {
				t.Fatal("events with an error")
			}
			if !errors.Is(err, ErrNotJSON) && !errors.Is(err, ErrNoReference) && !errors.Is(err, ErrNoType) && !errors.Is(err, ErrTemplate) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		for _, e := range evs {
			if e.Type == "" || e.Entity == "" || e.Reference == "" {
				t.Fatalf("event without type, entity or reference: %+v", e)
			}
			if e.Fields == nil || !json.Valid(e.Raw) || !bytes.Contains(body, e.Raw) || e.OccurredAt.IsZero() {
				t.Fatalf("bad event: %+v", e)
			}
		}
	})
}

// FuzzDirectFields checks the fast path of plain-path fields against the
// general one: putResult must store exactly what putField(resultValue(r))
// stores (putField(fieldValue(r)) with keepNull), for any JSON value at any
// path.
func FuzzDirectFields(f *testing.F) {
	for _, s := range []string{
		`{"a":1}`, `{"a":{"b":{"c":[1,"x",null,{"d":true}]}},"e":null,"f":{}}`, `[]`, `[1,2]`, `["a","b"]`, `"s"`, `1e999`, `-0`,
		`{"a":{"x":1},"a":2}`, `{"a":2,"a":{"x":1}}`, `{"a":1,"a":null}`, `{"\u0061":1,"a":2}`, `{"a\\.b":{"c\"d":"e\u00e9\ud800"}}`,
		"{\"k\":\"bad \xff utf8\",\"\xfe\":1}", `{"n":12345678901234567890,"m":1.5e-400,"o":-1E+2}`,
		`{"l1":{"l2":{"l3":{"l4":{"l5":{"l6":{"l7":{"l8":{"l9":{"l10":1}}}}}}}}}}`,
		strings.Repeat("[", 10001) + strings.Repeat("]", 10001), strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
		`{"x":` + strings.Repeat(`{"a":`, 10000) + `1` + strings.Repeat("}", 10000) + `}`,
		`{"s":"` + strings.Repeat("[", 30000) + `"}`,
	} {
		f.Add([]byte(s), "@this")
	}
	f.Add([]byte(`{"a":{"b":[{"c":1}]}}`), "a.b.0")
	f.Add([]byte(`{"x":null,"y":{"z":null}}`), "x")
	f.Add([]byte(`{"s":" null "}`), "s|@fromstr")
	f.Add([]byte(`{"a":[{"id":1},{"id":"x"}]}`), "a.#.id")
	// Results gjson builds from the path that are not (only) JSON.
	f.Add([]byte(`{"s":"{"}`), "s|@fromstr")
	f.Add([]byte(`{"s":"[1]]"}`), "s|@fromstr")
	f.Add([]byte(`{"s":"{\"a\":1} x"}`), "s|@fromstr")
	f.Add([]byte(`{}`), "[!nan]")
	f.Fuzz(func(t *testing.T, body []byte, path string) {
		if !gjson.ValidBytes(body) || checkGJSON(path) != nil {
			return
		}
		r := gjson.ParseBytes(body).Get(path)
		for _, keepNull := range []bool{false, true} {
			want := map[string]any{}
			v, wantOK := resultValue(r)
			if keepNull {
				v, wantOK = fieldValue(r)
			}
			if wantOK {
				putField(want, "x", v)
			}
			got := map[string]any{}
			gotOK := putResult(got, "x", r, mayBreak(path), keepNull)
			if gotOK != wantOK || !reflect.DeepEqual(got, want) {
				t.Fatalf("path %q of %q (keepNull %v):\n got %v %#v\nwant %v %#v", path, body, keepNull, gotOK, got, wantOK, want)
			}
		}
	})
}
