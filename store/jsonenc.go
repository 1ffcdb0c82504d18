package store

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/internal/jsonenc"
)

// A hand-written JSON encoder for the records the intake and the pipeline
// write for every webhook and event (InboxItem, StoredEvent,
// event.Snapshot, Delivery). encoding/json spends most of
// its time on reflection and on sorting map keys through reflect.Value;
// this encoder produces the same bytes (TestEncoderMatchesEncodingJSON and
// FuzzEncodeValue compare them) for the value types events hold, and falls
// back to encoding/json for any other type. jsonenc_test.go also pins the
// fields of those structs: a field added to one of them fails that test
// until it is encoded here too.

// encoder is the hand-written encoder with its scratch memory, reused
// from one record to the next so that encoding allocates nothing once the
// buffers have grown: buf holds the record being encoded, keys is a stack
// of map keys being sorted (nested maps push above their parent's), raw
// compacts raw JSON. The zero value is ready to use. An encoder is not
// safe for concurrent use: the DB keeps one for its write transactions,
// which bbolt runs one at a time, and one for the EventWriter's goroutine;
// Accept's callers each use their own (inboxItem).
type encoder struct {
	buf  []byte
	keys []string
	raw  bytes.Buffer
}

// maxKeptBuf bounds the scratch an encoder keeps between records: a rare
// huge record does not pin its buffer for the life of the process.
const maxKeptBuf = 1 << 20

// finish ends one record: it keeps the grown buffer b for the next one
// (unless it is huge) and forgets the keys of maps that an error left on
// the stack. The returned record is valid until the next call.
func (en *encoder) finish(b []byte, err error) ([]byte, error) {
	en.release(0)
	if en.raw.Cap() > maxKeptBuf {
		en.raw = bytes.Buffer{}
	}
	if err != nil {
		return nil, err
	}
	if cap(b) <= maxKeptBuf {
		en.buf = b[:0]
	} else {
		en.buf = nil
	}
	return b, nil
}

// storedEvent returns the JSON of StoredEvent{Event: e, Trace: trace},
// valid until the encoder's next call. The trace is a json.RawMessage
// (compacted and escaped, as encoding/json stores one), nil for none, or
// any other value, encoded with encoding/json (a nil pointer as null).
func (en *encoder) storedEvent(e *event.Event, trace any) ([]byte, error) {
	b := append(en.buf[:0], `{"event":`...)
	var err error
	if b, err = en.appendEvent(b, e); err != nil {
		return en.finish(nil, err)
	}
	switch t := trace.(type) {
	case nil:
	case json.RawMessage:
		if len(t) > 0 {
			b = append(b, `,"trace":`...)
			if b, err = en.appendRaw(b, t); err != nil {
				return en.finish(nil, err)
			}
		}
	default:
		// encoding/json's output is already compact and escaped: it is
		// appended as it is, not through appendRaw.
		en.raw.Reset()
		if err := json.NewEncoder(&en.raw).Encode(t); err != nil {
			return en.finish(nil, fmt.Errorf("encode trace of event %s: %w", e.ID, err))
		}
		b = append(b, `,"trace":`...)
		b = append(b, bytes.TrimSuffix(en.raw.Bytes(), []byte("\n"))...)
	}
	return en.finish(append(b, '}'), nil)
}

// appendEvent appends e as encoding/json would (nil: null).
func (en *encoder) appendEvent(b []byte, e *event.Event) ([]byte, error) {
	if e == nil {
		return append(b, "null"...), nil
	}
	var err error
	b = append(b, `{"id":`...)
	b = appendString(b, e.ID)
	if e.InboxID != "" {
		b = append(b, `,"inbox_id":`...)
		b = appendString(b, e.InboxID)
	}
	b = append(b, `,"connector":`...)
	b = appendString(b, e.Connector)
	b = append(b, `,"type":`...)
	b = appendString(b, e.Type)
	b = append(b, `,"entity":`...)
	b = appendString(b, e.Entity)
	b = append(b, `,"reference":`...)
	b = appendString(b, e.Reference)
	b = append(b, `,"occurred_at":`...)
	if b, err = appendTime(b, e.OccurredAt); err != nil {
		return nil, err
	}
	b = append(b, `,"received_at":`...)
	if b, err = appendTime(b, e.ReceivedAt); err != nil {
		return nil, err
	}
	b = append(b, `,"actor":`...)
	b = appendActor(b, e.Actor)
	b = append(b, `,"fields":`...)
	if b, err = en.appendMap(b, e.Fields); err != nil {
		return nil, err
	}
	if len(e.Changes) > 0 {
		b = append(b, `,"changes":`...)
		if b, err = appendObject(en, b, e.Changes, en.appendChange); err != nil {
			return nil, err
		}
	}
	if len(e.Vars) > 0 {
		b = append(b, `,"vars":`...)
		b = en.appendStringMap(b, e.Vars)
	}
	if len(e.Raw) > 0 {
		b = append(b, `,"raw":`...)
		if b, err = en.appendRaw(b, e.Raw); err != nil {
			return nil, err
		}
	}
	b = append(b, `,"causation":{"hops":`...)
	b = strconv.AppendInt(b, int64(e.Causation.Hops), 10)
	if e.Causation.DeliveryID != "" {
		b = append(b, `,"delivery_id":`...)
		b = appendString(b, e.Causation.DeliveryID)
	}
	if e.Causation.Echo {
		b = append(b, `,"echo":true`...)
	}
	if len(e.Causation.EchoedFields) > 0 {
		b = append(b, `,"echoed_fields":`...)
		if b, err = appendStrings(b, e.Causation.EchoedFields); err != nil {
			return nil, err
		}
	}
	b = append(b, '}')
	if e.Rule != "" {
		b = append(b, `,"rule":`...)
		b = appendString(b, e.Rule)
	}
	return append(b, '}'), nil
}

func appendActor(b []byte, a event.Actor) []byte {
	b = append(b, '{')
	first := true
	field := func(name, v string) {
		if v == "" {
			return
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, `":`...)
		b = appendString(b, v)
	}
	field("type", a.Type)
	field("id", a.ID)
	field("name", a.Name)
	field("email", a.Email)
	return append(b, '}')
}

// snapshot returns the JSON of s as encoding/json would, valid until the
// encoder's next call.
func (en *encoder) snapshot(s *event.Snapshot) ([]byte, error) {
	b, err := en.appendSnapshot(en.buf[:0], s)
	return en.finish(b, err)
}

// appendSnapshot appends s as encoding/json would.
func (en *encoder) appendSnapshot(b []byte, s *event.Snapshot) ([]byte, error) {
	var err error
	b = append(b, `{"key":`...)
	b = appendEntityKey(b, s.Key)
	b = append(b, `,"fields":`...)
	if b, err = en.appendMap(b, s.Fields); err != nil {
		return nil, err
	}
	if len(s.FieldsAt) > 0 {
		b = append(b, `,"fields_at":`...)
		if b, err = appendObject(en, b, s.FieldsAt, appendTime); err != nil {
			return nil, err
		}
	}
	b = append(b, `,"version":`...)
	b = strconv.AppendUint(b, s.Version, 10)
	times := [...]struct {
		name    string
		t       time.Time
		omitted bool
	}{
		{"created_at", s.CreatedAt, false},
		{"updated_at", s.UpdatedAt, false},
		{"status_since", s.StatusSince, true},
		{"last_activity_at", s.LastActivityAt, true},
		{"last_customer_message_at", s.LastCustomerMessageAt, true},
		{"last_agent_message_at", s.LastAgentMessageAt, true},
	}
	for _, t := range times {
		if t.omitted && t.t.IsZero() {
			continue
		}
		b = append(b, `,"`...)
		b = append(b, t.name...)
		b = append(b, `":`...)
		if b, err = appendTime(b, t.t); err != nil {
			return nil, err
		}
	}
	b = append(b, `,"agent_replies":`...)
	b = strconv.AppendInt(b, int64(s.AgentReplies), 10)
	b = append(b, `,"customer_messages":`...)
	b = strconv.AppendInt(b, int64(s.CustomerMessages), 10)
	b = append(b, `,"unanswered_customer_messages":`...)
	b = strconv.AppendInt(b, int64(s.UnansweredCustomerMessages), 10)
	if len(s.Fired) > 0 {
		b = append(b, `,"fired":`...)
		if b, err = appendObject(en, b, s.Fired, appendTimes); err != nil {
			return nil, err
		}
	}
	if len(s.Clocks) > 0 {
		b = append(b, `,"clocks":`...)
		if b, err = appendObject(en, b, s.Clocks, appendClock); err != nil {
			return nil, err
		}
	}
	if len(s.Vars) > 0 {
		b = append(b, `,"vars":`...)
		b = en.appendStringMap(b, s.Vars)
	}
	return append(b, '}'), nil
}

// appendTime appends t as time.Time.MarshalJSON does: quoted RFC 3339
// with nanoseconds (AppendFormat has a fast path for that layout, the
// one MarshalJSON uses), refusing what MarshalJSON refuses: years outside
// 0..9999 and zone offsets of 24 hours or more. It allocates nothing.
func appendTime(b []byte, t time.Time) ([]byte, error) {
	n0 := len(b) + 1
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	// The checks of the standard library's appendStrictRFC3339.
	switch {
	case len(b) < n0+len("9999-") || b[n0+len("9999")] != '-':
		return nil, fmt.Errorf("json: error calling MarshalJSON for type time.Time: year outside of range [0,9999]")
	case b[len(b)-1] != 'Z':
		c := b[len(b)-len("Z07:00")]
		h := b[len(b)-len("07:00"):]
		if ('0' <= c && c <= '9') || 10*(h[0]-'0')+(h[1]-'0') >= 24 {
			return nil, fmt.Errorf("json: error calling MarshalJSON for type time.Time: timezone hour outside of range [0,23]")
		}
	}
	return append(b, '"'), nil
}

// appendRaw appends raw JSON as encoding/json does with a RawMessage:
// compacted, with <, >, & and U+2028/U+2029 escaped.
func (en *encoder) appendRaw(b []byte, raw []byte) ([]byte, error) {
	compact := &en.raw
	compact.Reset()
	if err := json.Compact(compact, raw); err != nil {
		return nil, fmt.Errorf("json: error calling MarshalJSON for type json.RawMessage: %w", err)
	}
	if !needsHTMLEscape(compact.Bytes()) {
		return append(b, compact.Bytes()...), nil
	}
	out := bytes.NewBuffer(b)
	json.HTMLEscape(out, compact.Bytes())
	return out.Bytes(), nil
}

func needsHTMLEscape(p []byte) bool {
	for i, c := range p {
		if c == '<' || c == '>' || c == '&' {
			return true
		}
		if c == 0xE2 && i+2 < len(p) && p[i+1] == 0x80 && p[i+2]&^1 == 0xA8 {
			return true
		}
	}
	return false
}

// sortedKeys pushes m's keys, in encoding/json's order, on the
// encoder's key stack and returns them with the stack mark to release
// them at. A nested map pushes above them: when that grows the stack,
// keys keeps the old array, whose entries do not change.
func sortedKeys[V any](en *encoder, m map[string]V) (keys []string, mark int) {
	mark = len(en.keys)
	for k := range m {
		en.keys = append(en.keys, k)
	}
	keys = en.keys[mark:]
	slices.Sort(keys)
	return keys, mark
}

// release pops the key stack down to mark (clearing the entries, so that
// the stack does not keep strings alive).
func (en *encoder) release(mark int) {
	clear(en.keys[mark:])
	en.keys = en.keys[:mark]
}

// appendObject appends m as encoding/json does a map: keys sorted, each
// value by value (nil m: null).
func appendObject[V any](en *encoder, b []byte, m map[string]V, value func([]byte, V) ([]byte, error)) ([]byte, error) {
	if m == nil {
		return append(b, "null"...), nil
	}
	b = append(b, '{')
	keys, mark := sortedKeys(en, m)
	defer en.release(mark)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		var err error
		if b, err = value(b, m[k]); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// appendMap appends a map[string]any (nil: null).
func (en *encoder) appendMap(b []byte, m map[string]any) ([]byte, error) {
	return appendObject(en, b, m, en.appendValue)
}

func (en *encoder) appendStringMap(b []byte, m map[string]string) []byte {
	b, _ = appendObject(en, b, m, appendStringValue) // strings always encode
	return b
}

func appendStringValue(b []byte, s string) ([]byte, error) { return appendString(b, s), nil }

// appendClock appends a rule clock (nil: null).
func appendClock(b []byte, c *event.RuleClock) ([]byte, error) {
	if c == nil {
		return append(b, "null"...), nil
	}
	var err error
	b = append(b, '{')
	if !c.Since.IsZero() {
		b = append(b, `"since":`...)
		if b, err = appendTime(b, c.Since); err != nil {
			return nil, err
		}
		b = append(b, ',')
	}
	if !c.PausedAt.IsZero() {
		b = append(b, `"paused_at":`...)
		if b, err = appendTime(b, c.PausedAt); err != nil {
			return nil, err
		}
		b = append(b, ',')
	}
	b = append(b, `"paused_total":`...)
	b = strconv.AppendInt(b, int64(c.PausedTotal), 10)
	if c.Done {
		b = append(b, `,"done":true`...)
	}
	return append(b, '}'), nil
}

// appendList appends xs as encoding/json does a slice: each element by
// elem, in brackets (nil: null).
func appendList[T any](b []byte, xs []T, elem func([]byte, T) ([]byte, error)) ([]byte, error) {
	if xs == nil {
		return append(b, "null"...), nil
	}
	b = append(b, '[')
	for i, x := range xs {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = elem(b, x); err != nil {
			return nil, err
		}
	}
	return append(b, ']'), nil
}

// appendTimes appends a list of times (nil: null).
func appendTimes(b []byte, ts []time.Time) ([]byte, error) { return appendList(b, ts, appendTime) }

// appendStrings appends a []string as encoding/json does (nil: null).
func appendStrings(b []byte, vs []string) ([]byte, error) {
	return appendList(b, vs, appendStringValue)
}

// appendChange appends a change as {"from":...,"to":...}.
func (en *encoder) appendChange(b []byte, c event.Change) ([]byte, error) {
	b = append(b, `{"from":`...)
	b, err := en.appendValue(b, c.From)
	if err != nil {
		return nil, err
	}
	b = append(b, `,"to":`...)
	if b, err = en.appendValue(b, c.To); err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

// appendValue appends one value of an event's fields, changes or
// variables; types other than those normalized values hold go through
// encoding/json.
func (en *encoder) appendValue(b []byte, v any) ([]byte, error) {
	var err error
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendString(b, x), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case float64:
		return appendFloat(b, x)
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case map[string]any:
		return en.appendMap(b, x)
	case map[string]string:
		return en.appendStringMap(b, x), nil
	case []any:
		return appendList(b, x, en.appendValue)
	case []string:
		return appendStrings(b, x)
	case time.Time:
		return appendTime(b, x)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, data...), nil
}

// appendFloat formats f like encoding/json (ES6 number formatting).
func appendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		_, err := json.Marshal(f)
		return nil, err
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b) - start
		if n >= 4 && b[len(b)-4] == 'e' && b[len(b)-3] == '-' && b[len(b)-2] == '0' {
			b[len(b)-2] = b[len(b)-1]
			b = b[:len(b)-1]
		}
	}
	return b, nil
}

// appendString appends s quoted as encoding/json does (jsonenc.AppendString).
func appendString(b []byte, s string) []byte { return jsonenc.AppendString(b, s) }

// delivery returns the JSON of d as encoding/json would, valid until the
// encoder's next call.
func (en *encoder) delivery(d *Delivery) ([]byte, error) {
	b, err := en.appendDelivery(en.buf[:0], d)
	return en.finish(b, err)
}

// appendDelivery appends d as encoding/json would.
func (en *encoder) appendDelivery(b []byte, d *Delivery) ([]byte, error) {
	var err error
	b = append(b, `{"id":`...)
	b = appendString(b, d.ID)
	b = appendStrField(b, "connector", d.Connector, false)
	b = appendStrField(b, "entity", d.Entity, false)
	b = appendStrField(b, "reference", d.Reference, false)
	b = appendStrField(b, "rule_id", d.RuleID, false)
	b = appendStrField(b, "event_id", d.EventID, false)
	b = appendStrField(b, "action", d.Action, false)
	b = append(b, `,"update":`...)
	if b, err = en.appendUpdate(b, &d.Update); err != nil {
		return nil, err
	}
	b = append(b, `,"request":{"method":`...)
	b = appendString(b, d.Request.Method)
	b = append(b, `,"url":`...)
	b = appendString(b, d.Request.URL)
	if len(d.Request.Headers) > 0 {
		b = append(b, `,"headers":`...)
		b = en.appendStringMap(b, d.Request.Headers)
	}
	if len(d.Request.Body) > 0 {
		b = append(b, `,"body":`...)
		b = appendBase64(b, d.Request.Body)
	}
	b = append(b, '}')
	b = appendStrField(b, "state", d.State, false)
	if len(d.Attempts) > 0 {
		b = append(b, `,"attempts":[`...)
		for i := range d.Attempts {
			a := &d.Attempts[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"at":`...)
			if b, err = appendTime(b, a.At); err != nil {
				return nil, err
			}
			b = append(b, `,"status":`...)
			b = strconv.AppendInt(b, int64(a.Status), 10)
			b = append(b, `,"latency_ms":`...)
			if b, err = appendFloat(b, a.LatencyMS); err != nil {
				return nil, err
			}
			b = appendStrField(b, "error", a.Error, true)
			b = appendStrField(b, "response", a.Response, true)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	for _, t := range [...]struct {
		name string
		t    time.Time
	}{{"next_at", d.NextAt}, {"created_at", d.CreatedAt}, {"updated_at", d.UpdatedAt}} {
		b = append(b, ',', '"')
		b = append(b, t.name...)
		b = append(b, '"', ':')
		if b, err = appendTime(b, t.t); err != nil {
			return nil, err
		}
	}
	b = appendStrField(b, "reason", d.Reason, true)
	if len(d.Captured) > 0 {
		b = append(b, `,"captured":`...)
		b = en.appendStringMap(b, d.Captured)
	}
	b = append(b, `,"hops":`...)
	b = strconv.AppendInt(b, int64(d.Hops), 10)
	if d.RetriedFrom != 0 {
		b = append(b, `,"retried_from":`...)
		b = strconv.AppendInt(b, int64(d.RetriedFrom), 10)
	}
	b = appendStrField(b, "queue", d.Queue, true)
	return append(b, '}'), nil
}

// appendUpdate appends an event.Update as encoding/json would.
func (en *encoder) appendUpdate(b []byte, u *event.Update) ([]byte, error) {
	var err error
	b = append(b, `{"kind":`...)
	b = appendString(b, u.Kind)
	b = appendStrField(b, "rule", u.RuleID, false)
	b = appendStrField(b, "event_id", u.EventID, false)
	b = appendStrField(b, "connector", u.Connector, false)
	b = appendStrField(b, "entity", u.Entity, true)
	b = appendStrField(b, "reference", u.Reference, true)
	if len(u.Set) > 0 {
		b = append(b, `,"set":`...)
		if b, err = en.appendMap(b, u.Set); err != nil {
			return nil, err
		}
	}
	for _, l := range [...]struct {
		name string
		v    []string
	}{{"add_tags", u.AddTags}, {"remove_tags", u.RemoveTags}} {
		if len(l.v) == 0 {
			continue
		}
		b = append(b, ',', '"')
		b = append(b, l.name...)
		b = append(b, '"', ':')
		b, _ = appendStrings(b, l.v) // strings always encode
	}
	if w := u.Webhook; w != nil {
		b = append(b, `,"webhook":{"url":`...)
		b = appendString(b, w.URL)
		b = append(b, `,"method":`...)
		b = appendString(b, w.Method)
		if len(w.Headers) > 0 {
			b = append(b, `,"headers":`...)
			b = en.appendStringMap(b, w.Headers)
		}
		b = appendStrField(b, "body", w.Body, true)
		b = append(b, '}')
	}
	if m := u.Message; m != nil {
		b = append(b, `,"message":{"text":`...)
		b = appendString(b, m.Text)
		b = appendStrField(b, "to", m.To, true)
		b = append(b, '}')
	}
	if l := u.Log; l != nil {
		b = append(b, `,"log":{"file":`...)
		b = appendString(b, l.File)
		b = append(b, `,"line":`...)
		b = appendString(b, l.Line)
		b = append(b, '}')
	}
	b = append(b, `,"hops":`...)
	b = strconv.AppendInt(b, int64(u.Hops), 10)
	if len(u.Vars) > 0 {
		b = append(b, `,"vars":`...)
		b = en.appendStringMap(b, u.Vars)
	}
	if k := u.StateOf; k != nil {
		b = append(b, `,"state_of":`...)
		b = appendEntityKey(b, *k)
	}
	return append(b, '}'), nil
}

// appendEntityKey appends k as encoding/json would.
func appendEntityKey(b []byte, k event.EntityKey) []byte {
	b = append(b, `{"connector":`...)
	b = appendString(b, k.Connector)
	b = append(b, `,"entity":`...)
	b = appendString(b, k.Entity)
	b = append(b, `,"reference":`...)
	b = appendString(b, k.Reference)
	return append(b, '}')
}

// appendStrField appends `,"name":"v"` as encoding/json would, or nothing
// when omit is set (omitempty) and v is empty.
func appendStrField(b []byte, name, v string, omit bool) []byte {
	if omit && v == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendString(b, v)
}

// appendOutcomeFields appends the members of an outcome as encoding/json
// writes them after the opening brace, and the closing brace.
func (en *encoder) appendOutcomeFields(b []byte, o outcome) ([]byte, error) {
	b = append(b, `"state":`...)
	b = appendString(b, o.State)
	b = appendStrField(b, "reason", o.Reason, true)
	var err error
	if len(o.EventIDs) > 0 {
		b = append(b, `,"event_ids":`...)
		b, _ = appendStrings(b, o.EventIDs) // strings always encode
	}
	if !o.ProcessedAt.IsZero() {
		b = append(b, `,"processed_at":`...)
		if b, err = appendTime(b, o.ProcessedAt); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// inboxItem returns the JSON of item as encoding/json would, in a slice
// of its own. It encodes with an encoder of pool (their scratch, the
// sorted header keys among it, is reused across webhooks) and copies the
// record out at its exact size.
func inboxItem(pool *sync.Pool, item *InboxItem) ([]byte, error) {
	en := pool.Get().(*encoder)
	defer pool.Put(en)
	b, err := en.inboxRecord(item)
	if err != nil {
		return nil, err
	}
	return bytes.Clone(b), nil
}

// inboxRecord returns the JSON of item as encoding/json would, valid until
// the encoder's next call.
func (en *encoder) inboxRecord(item *InboxItem) ([]byte, error) {
	return en.finish(en.appendInboxItem(en.buf[:0], item))
}

// appendInboxItem appends item as encoding/json would.
func (en *encoder) appendInboxItem(b []byte, item *InboxItem) ([]byte, error) {
	var err error
	b = append(b, `{"id":`...)
	b = appendString(b, item.ID)
	b = appendStrField(b, "connector", item.Connector, false)
	b = append(b, `,"received_at":`...)
	if b, err = appendTime(b, item.ReceivedAt); err != nil {
		return nil, err
	}
	b = appendStrField(b, "method", item.Method, false)
	b = appendStrField(b, "path", item.Path, false)
	b = append(b, `,"headers":`...)
	b = en.appendStringsMap(b, item.Headers)
	if len(item.Query) > 0 {
		b = append(b, `,"query":`...)
		b = en.appendStringsMap(b, item.Query)
	}
	b = appendStrField(b, "content_type", item.ContentType, false)
	b = append(b, `,"body":`...)
	b = appendBase64(b, item.Body)
	if len(item.RawBody) > 0 {
		b = append(b, `,"raw_body":`...)
		b = appendBase64(b, item.RawBody)
	}
	b = appendStrField(b, "dedupe_key", item.DedupeKey, false)
	b = append(b, ',')
	return en.appendOutcomeFields(b, outcome{State: item.State, Reason: item.Reason, EventIDs: item.EventIDs, ProcessedAt: item.ProcessedAt})
}

// appendStringsMap appends a map[string][]string (request headers, query
// parameters) as encoding/json does: keys sorted, a nil map or list null.
func (en *encoder) appendStringsMap(b []byte, m map[string][]string) []byte {
	b, _ = appendObject(en, b, m, appendStrings) // strings always encode
	return b
}

// appendBase64 appends a []byte as encoding/json does: base64 (standard,
// padded) in quotes, null for nil.
func appendBase64(b, p []byte) []byte {
	if p == nil {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, p)
	return append(b, '"')
}
