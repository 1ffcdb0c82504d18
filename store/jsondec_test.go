package store

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/event"
)

// decodeSnapshotWants checks decodeSnapshot against json.Unmarshal on data:
// the same error or not, and the same snapshot.
func decodeSnapshotWants(t *testing.T, data []byte) {
	t.Helper()
	var want, got event.Snapshot
	werr := json.Unmarshal(data, &want)
	if werr == nil {
		upgradeSnapshot(data, &want) // what decodeSnapshot adds to any decoder
	}
	gerr := decodeSnapshot(data, &got)
	if (werr != nil) != (gerr != nil) {
		t.Fatalf("decode %q: error %v, encoding/json: %v", data, gerr, werr)
	}
	if werr == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("decode %q:\n got %#v\nwant %#v", data, got, want)
	}
}

// fastSnapshot reports whether the fast path takes data whole.
func fastSnapshot(data []byte) bool {
	d := jsonDecoder{b: data}
	var s event.Snapshot
	return d.snapshot(&s) && d.atEnd()
}

// storedSnapshots are snapshots as the pipeline writes them, encoded by
// the store's encoder.
func storedSnapshots(t testing.TB) [][]byte {
	at := time.Date(2026, 3, 2, 9, 15, 0, 123456789, time.FixedZone("CET", 3600))
	fields := richFields()
	// Values of types a decoded snapshot never holds: encoded, they read
	// back as their JSON counterparts.
	delete(fields, "other")
	snaps := []*event.Snapshot{
		{},
		{Key: event.EntityKey{Connector: "generic", Entity: "ticket", Reference: "T-1"}, Fields: map[string]any{}, Version: 1,
			CreatedAt: at, UpdatedAt: at},
		{
			Key: event.EntityKey{Connector: "generic", Entity: "ticket", Reference: "T<1> \"é\""}, Fields: fields, Version: 1<<63 + 5,
			FieldsAt:  map[string]time.Time{"status": at, "subject": at.Add(-time.Hour).UTC(), "k\"ey<": at},
			CreatedAt: at, UpdatedAt: at.Add(time.Second), StatusSince: at.UTC(), LastActivityAt: at,
			LastCustomerMessageAt: at, LastAgentMessageAt: at, AgentReplies: 3, CustomerMessages: -4, UnansweredCustomerMessages: 7,
			Fired:  map[string][]time.Time{"r2": {at, at.Add(time.Hour)}, "r1": nil, "r0": {}, "r<3>": {at}},
			Clocks: map[string]*event.RuleClock{"b": {Since: at, PausedAt: at, PausedTotal: -time.Minute, Done: true}, "a": {}, "n": nil},
			Vars:   map[string]string{"TICKET_REFERENCE": "T-1", "Q": "a\"b"},
		},
		{Fields: map[string]any{
			"ints":   []any{0.0, -0.0, 1.0, -1.0, 999999999999999.0, 1e15, -1e15, 12345678901234567.0, 1e300, -2.5e-300},
			"deep":   map[string]any{"a": map[string]any{"b": []any{[]any{map[string]any{"c": nil}}, []any{}}}},
			"escape": "\\ \" / \b \f \n \r \t \x00 \x1f",
			"astral": "𝄞 😀 \u2028",
		}},
	}
	en := new(encoder)
	var out [][]byte
	for _, s := range snaps {
		b, err := en.snapshot(s)
		if err != nil {
			t.Fatalf("encode snapshot: %v", err)
		}
		out = append(out, append([]byte(nil), b...))
	}
	return out
}

func TestDecodeSnapshotTakesWhatTheStoreWrites(t *testing.T) {
	for i, data := range storedSnapshots(t) {
		if !fastSnapshot(data) {
			t.Errorf("snapshot %d: the fast path refused %s", i, data)
		}
		decodeSnapshotWants(t, data)
	}
}

func TestDecodeSnapshotMatchesEncodingJSON(t *testing.T) {
	cases := []struct {
		name string
		data string
		fast bool // the fast path takes it
	}{
		{"whitespace everywhere", " {\n\t\"key\" : { \"connector\" : \"c\" , \"entity\":\"e\",\"reference\":\"r\" } ,\r\n \"fields\" : { \"a\" : [ 1 , true , null ] } , \"version\" : 3 } \n", true},
		{"null members", `{"fields":null,"created_at":null,"fired":null,"clocks":null}`, true},
		{"duplicate field key keeps the last", `{"fields":{"a":1,"a":"two"}}`, true},
		{"escaped key in fields", `{"fields":{"\u0061\n":"x"}}`, true},
		{"surrogate pair", `{"fields":{"s":"\ud834\udd1e"}}`, true},
		{"exponent", `{"fields":{"n":1E+2,"m":-0.5e-3,"z":-0}}`, true},
		{"nanosecond offset time", `{"created_at":"2026-03-02T09:15:00.000000001+05:30"}`, true},
		{"empty fired list", `{"fired":{"r":[]}}`, true},
		{"field times", `{"fields":{"a":1},"fields_at":{"a":"2026-03-02T09:15:00Z","\u00e9":"2026-03-02T09:15:00.5+01:00"}}`, true},
		{"null field times", `{"fields_at":null}`, true},
		{"empty field times", `{"fields_at":{}}`, true},
		{"duplicate field time", `{"fields_at":{"a":"2026-03-02T09:15:00Z","a":"2026-03-02T09:16:00Z"}}`, false},
		{"null field time", `{"fields_at":{"a":null}}`, false},
		{"field time as a number", `{"fields_at":{"a":5}}`, false},
		{"field times not an object", `{"fields_at":["2026-03-02T09:15:00Z"]}`, false},
		{"duplicate fields_at member", `{"fields_at":{},"fields_at":{}}`, false},

		{"differently cased key", `{"Version":4}`, false},
		{"unknown key", `{"version":4,"extra":{"x":1}}`, false},
		{"duplicate member", `{"version":4,"version":5}`, false},
		{"duplicate fields member merges", `{"fields":{"a":1},"fields":{"b":2}}`, false},
		{"duplicate fired rule", `{"fired":{"r":["2026-03-02T09:15:00Z"],"r":[]}}`, false},
		{"duplicate clock", `{"clocks":{"r":{"done":true},"r":null}}`, false},
		{"duplicate clock member", `{"clocks":{"r":{"done":true,"done":false}}}`, false},
		{"duplicate key member", `{"key":{"entity":"a","entity":"b"}}`, false},
		{"lone surrogate", `{"fields":{"s":"\ud834x"}}`, false},
		{"low surrogate first", `{"fields":{"s":"\udd1e\ud834"}}`, false},
		{"invalid UTF-8", "{\"fields\":{\"s\":\"a\xffb\"}}", false},
		{"control character in a string", "{\"fields\":{\"s\":\"a\x01b\"}}", false},
		{"escaped key member", `{"\u0076ersion":4}`, false},
		{"escaped time", `{"created_at":"2026-03-02T09:15:00\u005a"}`, false},
		{"bad time", `{"created_at":"yesterday"}`, false},
		{"time as a number", `{"created_at":5}`, false},
		{"fraction version", `{"version":1.5}`, false},
		{"negative version", `{"version":-1}`, false},
		{"version out of range", `{"version":18446744073709551616}`, false},
		{"count out of range", `{"agent_replies":9223372036854775808}`, false},
		{"count as a string", `{"agent_replies":"3"}`, false},
		{"number out of range", `{"fields":{"n":1e400}}`, false},
		{"leading zero", `{"fields":{"n":01}}`, false},
		{"plus sign", `{"fields":{"n":+1}}`, false},
		{"bare fraction", `{"fields":{"n":.5}}`, false},
		{"hex number", `{"fields":{"n":0x10}}`, false},
		{"NaN", `{"fields":{"n":NaN}}`, false},
		{"dangling exponent", `{"fields":{"n":1e}}`, false},
		{"fields not an object", `{"fields":[1]}`, false},
		{"null fired list", `{"fired":{"r":null}}`, true},
		{"null time in a fired list", `{"fired":{"r":[null]}}`, false},
		{"null clock member", `{"clocks":{"r":{"done":null}}}`, false},
		{"null key", `{"key":null}`, false},
		{"trailing garbage", `{"version":1} x`, false},
		{"trailing comma", `{"version":1,}`, false},
		{"unterminated", `{"fields":{"a":"b`, false},
		{"truncated literal", `{"fields":{"a":tru}}`, false},
		{"null document", `null`, false},
		{"empty", ``, false},
		{"too deep", `{"fields":{"a":` + strings.Repeat("[", 300) + strings.Repeat("]", 300) + `}}`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := fastSnapshot([]byte(c.data)); got != c.fast {
				t.Errorf("fast path took it: %v, want %v", got, c.fast)
			}
			decodeSnapshotWants(t, []byte(c.data))
		})
	}
}

func FuzzDecodeSnapshot(f *testing.F) {
	for _, data := range storedSnapshots(f) {
		f.Add(data)
	}
	f.Add([]byte(`{"fields":{"a":[1,{"b":"\u00e9\ud83d\ude00"}],"c":-0.0e1},"clocks":{"r":{"paused_total":5}}}`))
	f.Add([]byte(`{"Fields":{"a":1},"fired":{"x":["2026-03-02T09:15:00Z"]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		decodeSnapshotWants(t, data)
	})
}

func BenchmarkDecodeSnapshot(b *testing.B) {
	data := storedSnapshots(b)[2]
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var s event.Snapshot
			if err := decodeSnapshot(data, &s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var s event.Snapshot
			if err := json.Unmarshal(data, &s); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// A snapshot written before unanswered_customer_messages existed reads as
// one unanswered message when the customer wrote after the agent side, so
// a "first reply" rule (is: 1) does not fire on the next message.
func TestSnapshotWithoutUnansweredCount(t *testing.T) {
	for body, want := range map[string]int{
		`{"key":{"connector":"c","entity":"t","reference":"1"},"fields":{},"version":1,"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z","last_customer_message_at":"2026-01-02T00:00:00Z","last_agent_message_at":"2026-01-01T00:00:00Z","agent_replies":1,"customer_messages":3}`: 1,
		`{"key":{"connector":"c","entity":"t","reference":"1"},"fields":{},"version":1,"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z","last_customer_message_at":"2026-01-01T00:00:00Z","last_agent_message_at":"2026-01-02T00:00:00Z","agent_replies":1,"customer_messages":3}`: 0,
		`{"key":{"connector":"c","entity":"t","reference":"1"},"fields":{},"version":1,"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z","last_customer_message_at":"2026-01-02T00:00:00Z","agent_replies":0,"customer_messages":3,"unanswered_customer_messages":3}`:               3,
	} {
		var s event.Snapshot
		if err := decodeSnapshot([]byte(body), &s); err != nil {
			t.Fatal(err)
		}
		if s.UnansweredCustomerMessages != want {
			t.Errorf("%s: unanswered %d, want %d", body, s.UnansweredCustomerMessages, want)
		}
	}
}
