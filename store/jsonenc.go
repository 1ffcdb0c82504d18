package store

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/hookline/hookline/event"
)

// A hand-written JSON encoder for the records the pipeline writes for
// every event (StoredEvent, event.Snapshot). encoding/json spends most of
// its time on reflection and on sorting map keys through reflect.Value;
// this encoder produces the same bytes (TestEncoderMatchesEncodingJSON and
// FuzzEncodeValue compare them) for the value types events hold, and falls
// back to encoding/json for any other type. jsonenc_test.go also pins the
// fields of the model's structs: a field added to event.Event or
// event.Snapshot fails that test until it is encoded here too.

// encodeStoredEvent returns the JSON of StoredEvent{Event: e, Trace: trace}.
func encodeStoredEvent(e *event.Event, trace json.RawMessage) ([]byte, error) {
	b := make([]byte, 0, 2048)
	b = append(b, `{"event":`...)
	var err error
	if b, err = appendEvent(b, e); err != nil {
		return nil, err
	}
	if len(trace) > 0 {
		b = append(b, `,"trace":`...)
		if b, err = appendRaw(b, trace); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// appendEvent appends e as encoding/json would (nil: null).
func appendEvent(b []byte, e *event.Event) ([]byte, error) {
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
	if b, err = appendMap(b, e.Fields); err != nil {
		return nil, err
	}
	if len(e.Changes) > 0 {
		b = append(b, `,"changes":{`...)
		for i, k := range sortedKeys(e.Changes) {
			if i > 0 {
				b = append(b, ',')
			}
			c := e.Changes[k]
			b = appendString(b, k)
			b = append(b, `:{"from":`...)
			if b, err = appendValue(b, c.From); err != nil {
				return nil, err
			}
			b = append(b, `,"to":`...)
			if b, err = appendValue(b, c.To); err != nil {
				return nil, err
			}
			b = append(b, '}')
		}
		b = append(b, '}')
	}
	if len(e.Vars) > 0 {
		b = append(b, `,"vars":`...)
		b = appendStringMap(b, e.Vars)
	}
	if len(e.Raw) > 0 {
		b = append(b, `,"raw":`...)
		if b, err = appendRaw(b, e.Raw); err != nil {
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

// encodeSnapshot returns the JSON of s as encoding/json would.
func encodeSnapshot(s *event.Snapshot) ([]byte, error) {
	b := make([]byte, 0, 1024)
	var err error
	b = append(b, `{"key":{"connector":`...)
	b = appendString(b, s.Key.Connector)
	b = append(b, `,"entity":`...)
	b = appendString(b, s.Key.Entity)
	b = append(b, `,"reference":`...)
	b = appendString(b, s.Key.Reference)
	b = append(b, `},"fields":`...)
	if b, err = appendMap(b, s.Fields); err != nil {
		return nil, err
	}
	b = append(b, `,"version":`...)
	b = strconv.AppendUint(b, s.Version, 10)
	times := []struct {
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
	if len(s.Fired) > 0 {
		b = append(b, `,"fired":{`...)
		for i, k := range sortedKeys(s.Fired) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			ts := s.Fired[k]
			if ts == nil {
				b = append(b, "null"...)
				continue
			}
			b = append(b, '[')
			for j, t := range ts {
				if j > 0 {
					b = append(b, ',')
				}
				if b, err = appendTime(b, t); err != nil {
					return nil, err
				}
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	if len(s.Clocks) > 0 {
		b = append(b, `,"clocks":{`...)
		for i, k := range sortedKeys(s.Clocks) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			c := s.Clocks[k]
			if c == nil {
				b = append(b, "null"...)
				continue
			}
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
			b = append(b, '}')
		}
		b = append(b, '}')
	}
	return append(b, '}'), nil
}

// appendTime appends t as time.Time.MarshalJSON does (it refuses years
// outside 0..9999 and zone hours past 23, and so does this).
func appendTime(b []byte, t time.Time) ([]byte, error) {
	data, err := t.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("json: error calling MarshalJSON for type time.Time: %w", err)
	}
	return append(b, data...), nil
}

// appendRaw appends raw JSON as encoding/json does with a RawMessage:
// compacted, with <, >, & and U+2028/U+2029 escaped.
func appendRaw(b []byte, raw []byte) ([]byte, error) {
	var compact bytes.Buffer
	compact.Grow(len(raw))
	if err := json.Compact(&compact, raw); err != nil {
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

// sortedKeys returns m's keys in encoding/json's order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// appendMap appends a map[string]any (nil: null).
func appendMap(b []byte, m map[string]any) ([]byte, error) {
	if m == nil {
		return append(b, "null"...), nil
	}
	b = append(b, '{')
	var err error
	for i, k := range sortedKeys(m) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		if b, err = appendValue(b, m[k]); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

func appendStringMap(b []byte, m map[string]string) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	b = append(b, '{')
	for i, k := range sortedKeys(m) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendString(b, m[k])
	}
	return append(b, '}')
}

// appendValue appends one value of an event's fields, changes or
// variables; types other than those normalized values hold go through
// encoding/json.
func appendValue(b []byte, v any) ([]byte, error) {
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
		return appendMap(b, x)
	case map[string]string:
		return appendStringMap(b, x), nil
	case []any:
		if x == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendValue(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case []string:
		if x == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, e)
		}
		return append(b, ']'), nil
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

const hexDigits = "0123456789abcdef"

// appendString appends s quoted as encoding/json does with HTML escaping:
// <, >, & and U+2028/U+2029 as \u escapes, invalid UTF-8 as U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// encodeDelivery returns the JSON of d as encoding/json would.
func encodeDelivery(d *Delivery) ([]byte, error) {
	b := make([]byte, 0, 1024+len(d.Request.Body)*4/3)
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
	if b, err = appendUpdate(b, &d.Update); err != nil {
		return nil, err
	}
	b = append(b, `,"request":{"method":`...)
	b = appendString(b, d.Request.Method)
	b = append(b, `,"url":`...)
	b = appendString(b, d.Request.URL)
	if len(d.Request.Headers) > 0 {
		b = append(b, `,"headers":`...)
		b = appendStringMap(b, d.Request.Headers)
	}
	if len(d.Request.Body) > 0 {
		b = append(b, `,"body":"`...)
		b = base64.StdEncoding.AppendEncode(b, d.Request.Body)
		b = append(b, '"')
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
		b = appendStringMap(b, d.Captured)
	}
	b = append(b, `,"hops":`...)
	b = strconv.AppendInt(b, int64(d.Hops), 10)
	return append(b, '}'), nil
}

// appendUpdate appends an event.Update as encoding/json would.
func appendUpdate(b []byte, u *event.Update) ([]byte, error) {
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
		if b, err = appendMap(b, u.Set); err != nil {
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
		if b, err = appendValue(b, l.v); err != nil {
			return nil, err
		}
	}
	if w := u.Webhook; w != nil {
		b = append(b, `,"webhook":{"url":`...)
		b = appendString(b, w.URL)
		b = append(b, `,"method":`...)
		b = appendString(b, w.Method)
		if len(w.Headers) > 0 {
			b = append(b, `,"headers":`...)
			b = appendStringMap(b, w.Headers)
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
		b = appendStringMap(b, u.Vars)
	}
	return append(b, '}'), nil
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
