package store

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookline/hookline/event"
)

// TestEncoderFieldsPinned lists every field the hand-written encoder
// writes, with its JSON tag. A field added to (or renamed in) the model
// fails here: encode it in jsonenc.go, then add it below.
func TestEncoderFieldsPinned(t *testing.T) {
	tests := []struct {
		typ  reflect.Type
		tags []string
	}{
		{reflect.TypeFor[event.Event](), []string{"id", "inbox_id,omitempty", "connector", "type", "entity", "reference",
			"occurred_at", "received_at", "actor", "fields", "changes,omitempty", "vars,omitempty", "raw,omitempty",
			"causation", "rule,omitempty"}},
		{reflect.TypeFor[event.Actor](), []string{"type,omitempty", "id,omitempty", "name,omitempty", "email,omitempty"}},
		{reflect.TypeFor[event.Change](), []string{"from", "to"}},
		{reflect.TypeFor[event.Causation](), []string{"hops", "delivery_id,omitempty", "echo,omitempty", "echoed_fields,omitempty"}},
		{reflect.TypeFor[event.EntityKey](), []string{"connector", "entity", "reference"}},
		{reflect.TypeFor[event.Snapshot](), []string{"key", "fields", "fields_at,omitempty", "version", "created_at", "updated_at",
			"status_since,omitzero", "last_activity_at,omitzero", "last_customer_message_at,omitzero",
			"last_agent_message_at,omitzero", "agent_replies", "customer_messages", "unanswered_customer_messages",
			"fired,omitempty", "clocks,omitempty", "vars,omitempty"}},
		{reflect.TypeFor[event.RuleClock](), []string{"since,omitzero", "paused_at,omitzero", "paused_total", "done,omitempty"}},
		{reflect.TypeFor[StoredEvent](), []string{"event", "trace,omitempty"}},
		{reflect.TypeFor[Delivery](), []string{"id", "connector", "entity", "reference", "rule_id", "event_id", "action",
			"update", "request", "state", "attempts,omitempty", "next_at", "created_at", "updated_at", "reason,omitempty",
			"captured,omitempty", "hops", "retried_from,omitempty", "queue,omitempty"}},
		{reflect.TypeFor[Request](), []string{"method", "url", "headers,omitempty", "body,omitempty"}},
		{reflect.TypeFor[Attempt](), []string{"at", "status", "latency_ms", "error,omitempty", "response,omitempty"}},
		{reflect.TypeFor[event.Update](), []string{"kind", "rule", "event_id", "connector", "entity,omitempty",
			"reference,omitempty", "set,omitempty", "add_tags,omitempty", "remove_tags,omitempty", "webhook,omitempty",
			"message,omitempty", "log,omitempty", "hops", "vars,omitempty", "state_of,omitempty"}},
		{reflect.TypeFor[event.WebhookCall](), []string{"url", "method", "headers,omitempty", "body,omitempty"}},
		{reflect.TypeFor[event.Message](), []string{"text", "to,omitempty"}},
		{reflect.TypeFor[event.LogLine](), []string{"file", "line"}},
		{reflect.TypeFor[InboxItem](), []string{"id", "connector", "received_at", "method", "path", "headers",
			"query,omitempty", "content_type", "body", "raw_body,omitempty", "dedupe_key", "state", "reason,omitempty",
			"event_ids,omitempty", "processed_at,omitzero"}},
		{reflect.TypeFor[outcome](), []string{"state", "reason,omitempty", "event_ids,omitempty", "processed_at,omitzero"}},
	}
	for _, tt := range tests {
		var got []string
		for i := range tt.typ.NumField() {
			got = append(got, tt.typ.Field(i).Tag.Get("json"))
		}
		if !equalStrings(got, tt.tags) {
			t.Errorf("%s fields changed: %q, the encoder knows %q", tt.typ, got, tt.tags)
		}
	}
}

// richFields holds every kind of value an event's fields carry, with the
// characters that need escaping.
func richFields() map[string]any {
	return map[string]any{
		"status":   "open",
		"subject":  `He said "<b>hi</b>" & left` + "\n\t\u2028\u2029\x01\x7f é 😀",
		"bad_utf8": "a\xffb\xc3",
		"priority": nil,
		"score":    4.5,
		"tiny":     1e-7,
		"huge":     1e21,
		"neg":      -0.000001,
		"int":      42.0,
		"count":    7,
		"big":      int64(1) << 60,
		"flag":     true,
		"tags":     []any{"vip", "b<>", 3.0, nil, false, map[string]any{"z": 1.0, "a": "x"}},
		"list":     []string{"a", "&"},
		"empty":    []any{},
		"nil_list": []any(nil),
		"customer": map[string]any{"name": "Ana", "email": "ana@example.com", "nested": map[string]any{}},
		"strmap":   map[string]string{"b": "2", "a": "1"},
		"when":     time.Date(2026, 3, 2, 9, 15, 0, 123, time.FixedZone("CET", 3600)),
		"other":    struct{ X int }{X: 1}, // not a normalized type: encoding/json
		"k\"ey<":   "escaped key",
		"":         "empty key",
	}
}

func TestEncoderMatchesEncodingJSON(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 15, 0, 0, time.UTC)
	events := []*event.Event{
		nil,
		{},
		{
			ID: "01JNQ", InboxID: "01JNP", Connector: "generic", Type: "ticket.updated", Entity: "ticket", Reference: "T-1",
			OccurredAt: at, ReceivedAt: at.Add(time.Nanosecond), Actor: event.Actor{Type: "customer", Email: "a@b.c"},
			Fields:    richFields(),
			Changes:   map[string]event.Change{"status": {From: "new", To: "open"}, "tags": {From: nil, To: []any{"x"}}},
			Vars:      map[string]string{"REFERENCE": "T-1", "B": "<&>"},
			Raw:       json.RawMessage(" {\"a\" : [1, 2,\n3], \"h\":\"<x>&\u2028\"} "),
			Causation: event.Causation{Hops: 2, DeliveryID: "01JD", Echo: true, EchoedFields: []string{"status", "tags"}},
			Rule:      "r1",
		},
		{ID: "x", Fields: map[string]any{}, Changes: map[string]event.Change{}, Vars: map[string]string{}, Raw: json.RawMessage{}},
	}
	traces := []json.RawMessage{nil, json.RawMessage(`{"matched": ["r1"], "rules": [ {"rule":"r1"} ]}`)}
	// One encoder for everything, twice over: its reused buffers and key
	// stack must not leak from one record into the next.
	en := new(encoder)
	for pass := range 2 {
		for i, e := range events {
			for _, tr := range traces {
				want, werr := json.Marshal(StoredEvent{Event: e, Trace: tr})
				got, gerr := en.storedEvent(e, tr)
				if (werr != nil) != (gerr != nil) || !bytes.Equal(got, want) {
					t.Errorf("pass %d event %d:\n got %s (%v)\nwant %s (%v)", pass, i, got, gerr, want, werr)
				}
			}
		}
	}
	if len(en.keys) != 0 {
		t.Errorf("key stack holds %d keys after encoding", len(en.keys))
	}
	snaps := []*event.Snapshot{
		{},
		{
			Key: event.EntityKey{Connector: "generic", Entity: "ticket", Reference: "T<1>"}, Fields: richFields(), Version: 9,
			FieldsAt:  map[string]time.Time{"status": at, "k\"ey<": at.Add(-time.Minute), "": at.In(time.FixedZone("CET", 3600))},
			CreatedAt: at, UpdatedAt: at.Add(time.Second), StatusSince: at, LastActivityAt: at,
			LastCustomerMessageAt: at, LastAgentMessageAt: at, AgentReplies: 3, CustomerMessages: 4, UnansweredCustomerMessages: 2,
			Fired:  map[string][]time.Time{"r2": {at, at.Add(time.Hour)}, "r1": nil, "r0": {}},
			Clocks: map[string]*event.RuleClock{"b": {Since: at, PausedAt: at, PausedTotal: time.Minute, Done: true}, "a": {}, "n": nil},
			Vars:   map[string]string{"TICKET_REFERENCE": "T-1", "Q": "a\"b"},
		},
		{Fields: map[string]any{}, FieldsAt: map[string]time.Time{}},
		{FieldsAt: map[string]time.Time{"bad": time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}},
	}
	for i, s := range snaps {
		want, werr := json.Marshal(s)
		got, gerr := en.snapshot(s)
		if (werr != nil) != (gerr != nil) || !bytes.Equal(got, want) {
			t.Errorf("snapshot %d:\n got %s (%v)\nwant %s (%v)", i, got, gerr, want, werr)
		}
	}
}

func TestDeliveryEncoderMatchesEncodingJSON(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 15, 0, 0, time.UTC)
	ds := []*Delivery{
		{},
		{
			ID: "01JD", Connector: "generic", Entity: "ticket", Reference: "T<1>", RuleID: "r", EventID: "01JE", Action: "update",
			Update: event.Update{Kind: event.KindUpdateEntity, RuleID: "r", EventID: "01JE", Connector: "generic", Entity: "ticket",
				Reference: "T<1>", Set: richFields(), AddTags: []string{"a", "<b>"}, RemoveTags: []string{"c"},
				Webhook: &event.WebhookCall{URL: "http://x/&", Method: "POST", Headers: map[string]string{"B": "2", "A": "1"}, Body: "{}"},
				Message: &event.Message{Text: "hi\n", To: "+34"}, Log: &event.LogLine{File: "a.log", Line: "l"}, Hops: 2,
				Vars: map[string]string{"X": "<y>"}, StateOf: &event.EntityKey{Connector: "desk<2>", Entity: "ticket", Reference: "T\"1"}},
			Request: Request{Method: "POST", URL: "http://127.0.0.1/x?a=1&b=2", Headers: map[string]string{"Content-Type": "application/json"},
				Body: []byte(`{"status":"pending","b":"\u00e9"}` + "\xff")},
			State: DeliveryInFlight,
			Attempts: []Attempt{{At: at, Status: 503, LatencyMS: 1.234, Error: "HTTP 503", Response: "<html>busy</html>"},
				{At: at.Add(time.Second), Status: 200, LatencyMS: 1e-7}},
			NextAt: at, CreatedAt: at, UpdatedAt: at.Add(time.Millisecond), Reason: "retrying: x",
			Captured: map[string]string{"id": "5"}, Hops: 2, RetriedFrom: 3,
		},
		{Update: event.Update{Set: map[string]any{}, AddTags: []string{}}, Request: Request{Headers: map[string]string{}, Body: []byte{}},
			Attempts: []Attempt{}, Captured: map[string]string{}},
	}
	for i, d := range ds {
		want, werr := json.Marshal(d)
		got, gerr := new(encoder).delivery(d)
		if (werr != nil) != (gerr != nil) || !bytes.Equal(got, want) {
			t.Errorf("delivery %d:\n got %s (%v)\nwant %s (%v)", i, got, gerr, want, werr)
		}
	}
}

func TestOutcomeEncoderMatchesEncodingJSON(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 15, 0, 5, time.FixedZone("X", -3*3600-30*60))
	outs := []outcome{
		{},
		{State: InboxProcessed, EventIDs: []string{"01A", "01B"}, ProcessedAt: at},
		{State: InboxFailed, Reason: `bad <payload> & "quotes"` + "\n\xff", ProcessedAt: at.UTC()},
		{State: InboxUnmapped, EventIDs: []string{}},
	}
	en := new(encoder)
	for i, o := range outs {
		want, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		got, err := en.finish(en.appendOutcomeFields(append(en.buf[:0], '{'), o))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("outcome %d:\n got %s (%v)\nwant %s", i, got, err, want)
		}
	}
}

// TestEncoderErrors: values encoding/json refuses are refused too.
func TestEncoderErrors(t *testing.T) {
	tests := []struct {
		name string
		e    *event.Event
	}{
		{"NaN field", &event.Event{Fields: map[string]any{"x": math.NaN()}}},
		{"infinite change", &event.Event{Changes: map[string]event.Change{"x": {To: math.Inf(1)}}}},
		{"year 10000", &event.Event{OccurredAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{"invalid raw", &event.Event{Raw: json.RawMessage(`{"a":`)}},
		{"channel value", &event.Event{Fields: map[string]any{"c": make(chan int)}}},
		{"negative year", &event.Event{ReceivedAt: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{"zone hour 24", &event.Event{Fields: map[string]any{"t": time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("", 24*3600))}}},
		{"zone hour -25", &event.Event{OccurredAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("", -25*3600-60))}},
		{"error in nested map", &event.Event{Fields: map[string]any{"a": map[string]any{"b": map[string]any{"c": math.Inf(-1)}}, "z": 1.0}}},
	}
	good := &event.Event{ID: "ok", Fields: richFields(), OccurredAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("", 23*3600+59*60))}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := json.Marshal(StoredEvent{Event: tt.e}); err == nil {
				t.Fatal("encoding/json accepts it; the case is wrong")
			}
			en := new(encoder)
			if _, err := en.storedEvent(tt.e, nil); err == nil {
				t.Fatal("encoder accepted what encoding/json refuses")
			}
			// The encoder is fine after a failure.
			want, err := json.Marshal(StoredEvent{Event: good})
			if err != nil {
				t.Fatal(err)
			}
			if got, err := en.storedEvent(good, nil); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("after the failure:\n got %s (%v)\nwant %s", got, err, want)
			}
		})
	}
}

// FuzzEncodeValue compares the encoder with encoding/json on strings (as
// keys and values) and numbers.
func FuzzEncodeValue(f *testing.F) {
	f.Add("plain", 1.5)
	f.Add("<script>&\u2028\u2029", 1e-7)
	f.Add("\x00\x1f\"\\\xff\xfe", -1e21)
	f.Add(strings.Repeat("é", 40), 123456789.0)
	f.Add("", 0.0)
	f.Fuzz(func(t *testing.T, s string, x float64) {
		v := map[string]any{s: s, "n": x, "l": []any{s, x}, "m": map[string]string{s: s}}
		want, werr := json.Marshal(v)
		got, gerr := new(encoder).appendValue(nil, v)
		if (werr != nil) != (gerr != nil) {
			t.Fatalf("errors differ: %v vs %v", gerr, werr)
		}
		if werr == nil && !bytes.Equal(got, want) {
			t.Fatalf("\n got %s\nwant %s", got, want)
		}
	})
}

// inboxItems are inbox items in every shape the encoder must match:
// empty, nil and empty maps and bodies, escaped strings, several values
// per header, and a finished item's outcome.
func inboxItems() []*InboxItem {
	at := time.Date(2026, 3, 2, 9, 15, 0, 123, time.FixedZone("CET", 3600))
	return []*InboxItem{
		{},
		{ID: "01JNP", Connector: "generic", ReceivedAt: at, Method: "POST", Path: "/hooks/generic",
			Headers: map[string][]string{"X-B": {"2", "<&>"}, "Content-Type": {"application/json"}, "X-Nil": nil, "X-Empty": {}},
			Query:   map[string][]string{"a": {"1"}, "b\"": {"\u2028"}}, ContentType: "application/json",
			Body: []byte(`{"id":"e1","status":"open"}`), RawBody: []byte("a=1&b=<2>\xff"), DedupeKey: "e1\x00<x>",
			State: InboxPending},
		{ID: "x", Headers: map[string][]string{}, Query: map[string][]string{}, Body: []byte{}, RawBody: []byte{},
			State: InboxProcessed, Reason: "no rule", EventIDs: []string{"01A", "01B"}, ProcessedAt: at.Add(time.Hour)},
		{ID: "y", State: InboxFailed, EventIDs: []string{}, Body: []byte("\x00\x01binary")},
		{ID: "z", ReceivedAt: at, Headers: map[string][]string{"": {""}}, State: InboxPending,
			ProcessedAt: time.Time{}.In(time.FixedZone("X", 7200))}, // zero with a zone: omitted
	}
}

func TestInboxItemEncoderMatchesEncodingJSON(t *testing.T) {
	en := new(encoder)
	for i, item := range inboxItems() {
		want, werr := json.Marshal(item)
		got, gerr := inboxItem(newEncoderPool(), item)
		if werr != nil || gerr != nil || !bytes.Equal(got, want) {
			t.Errorf("item %d:\n got %s (%v)\nwant %s (%v)", i, got, gerr, want, werr)
		}
		// The write path's encoder, reused from one item to the next.
		got, gerr = en.finish(en.appendInboxItem(en.buf[:0], item))
		if gerr != nil || !bytes.Equal(got, want) {
			t.Errorf("item %d, reused encoder:\n got %s (%v)\nwant %s", i, got, gerr, want)
		}
	}
	// Accept keeps the slice: little spare room in it, even when escaping
	// (six bytes for each <) outgrows the size estimate.
	escaped := &InboxItem{Headers: map[string][]string{"X": {strings.Repeat("<", 4096)}}, Body: []byte(strings.Repeat("x", 1<<16))}
	for _, item := range append(inboxItems(), escaped) {
		if got, err := inboxItem(newEncoderPool(), item); err != nil || cap(got)-len(got) > len(got)/4 {
			t.Errorf("inbox item of %d bytes in a slice of %d (%v)", len(got), cap(got), err)
		}
	}
	for _, bad := range []*InboxItem{
		{ReceivedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{ProcessedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("", 24*3600))},
	} {
		if _, werr := json.Marshal(bad); werr == nil {
			t.Fatalf("encoding/json takes %+v", bad)
		}
		if _, err := inboxItem(newEncoderPool(), bad); err == nil {
			t.Errorf("%+v encoded; encoding/json refuses it", bad)
		}
		if _, err := en.finish(en.appendInboxItem(en.buf[:0], bad)); err == nil {
			t.Errorf("%+v encoded by the reused encoder", bad)
		}
	}
	// The reused encoder is sound after those errors.
	for i, item := range inboxItems() {
		want, _ := json.Marshal(item)
		if got, err := en.finish(en.appendInboxItem(en.buf[:0], item)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("item %d after errors:\n got %s (%v)\nwant %s", i, got, err, want)
		}
	}
}

// finishedItem gives the bytes json.Marshal gives for the item finished,
// both for an item as Accept wrote it (its pending tail replaced) and for
// any other (decoded and encoded again).
func TestFinishedItemMatchesEncodingJSON(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 15, 0, 0, time.UTC)
	outs := []outcome{
		{State: InboxProcessed, EventIDs: []string{"01A", "<b>"}, ProcessedAt: at},
		{State: InboxFailed, Reason: "internal error while x: \"y\" <z>", ProcessedAt: at},
		{State: InboxUnmapped},
	}
	en := new(encoder)
	for i, item := range inboxItems() {
		stored, err := json.Marshal(item)
		if err != nil {
			t.Fatal(err)
		}
		for j, out := range outs {
			got, wasPending, err := finishedItem(en, stored, out)
			done := *item
			done.State, done.Reason, done.EventIDs, done.ProcessedAt = out.State, out.Reason, out.EventIDs, out.ProcessedAt
			want, _ := json.Marshal(&done)
			if err != nil || !bytes.Equal(got, want) || wasPending != (item.State == InboxPending) {
				t.Errorf("item %d outcome %d:\n got %s (pending %v, %v)\nwant %s (pending %v)", i, j, got, wasPending, err, want, item.State == InboxPending)
			}
		}
	}
}

// FuzzEncodeInboxItem compares the inbox item encoder with encoding/json
// on arbitrary strings, bodies, times and zones, with shape's bits
// choosing nil, empty or filled maps and lists, and then the finished
// item finishedItem makes of that JSON with json.Marshal's of the item
// finished.
func FuzzEncodeInboxItem(f *testing.F) {
	f.Add("X-Id", "e1", []byte(`{"a":1}`), "e1", int64(1767225600), int32(0), uint16(0xffff))
	f.Add("<&>", "\u2028\xff", []byte{}, "", int64(-62135596801), int32(3600), uint16(0))
	f.Add("", "", []byte(nil), "\x00", int64(253402300800), int32(-86400), uint16(0x5555))
	f.Fuzz(func(t *testing.T, name, value string, body []byte, key string, sec int64, offset int32, shape uint16) {
		at := time.Unix(sec, int64(offset)).In(time.FixedZone("", int(offset)))
		pick := func(bit int) int { return int(shape>>(2*bit)) & 3 } // 0 nil, 1 empty, 2-3 filled
		strs := func(bit int, vs ...string) []string {
			switch pick(bit) {
			case 0:
				return nil
			case 1:
				return []string{}
			}
			return vs
		}
		smap := func(bit int, k string, vs []string) map[string][]string {
			switch pick(bit) {
			case 0:
				return nil
			case 1:
				return map[string][]string{}
			}
			return map[string][]string{k: vs, "b": nil}
		}
		bytesOf := func(bit int) []byte {
			switch pick(bit) {
			case 0:
				return nil
			case 1:
				return []byte{}
			}
			return body
		}
		item := &InboxItem{ID: key, Connector: name, ReceivedAt: at, Method: value,
			Headers: smap(0, name, strs(1, value, key)), Query: smap(2, value, strs(3, name)),
			Body: bytesOf(4), RawBody: bytesOf(5), DedupeKey: key, State: value, Reason: name, EventIDs: strs(6, key, value)}
		if pick(7) == 3 {
			item.ProcessedAt = at
		}
		want, werr := json.Marshal(item)
		got, gerr := inboxItem(newEncoderPool(), item)
		if (werr != nil) != (gerr != nil) {
			t.Fatalf("errors differ: %v vs %v", gerr, werr)
		}
		if werr != nil {
			return
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("\n got %s\nwant %s", got, want)
		}
		// Finishing a stored item that is not pending decodes and encodes
		// it again, which writes an invalid byte's \ufffd as the character
		// itself: compare what the JSON says, not its bytes.
		out := outcome{State: InboxProcessed, Reason: value, EventIDs: strs(7, name), ProcessedAt: at}
		finished, _, ferr := finishedItem(new(encoder), want, out)
		var stored, gotItem InboxItem
		if err := json.Unmarshal(want, &stored); err != nil {
			t.Fatal(err)
		}
		stored.State, stored.Reason, stored.EventIDs, stored.ProcessedAt = out.State, out.Reason, out.EventIDs, out.ProcessedAt
		want, werr = json.Marshal(&stored)
		if (werr != nil) != (ferr != nil) {
			t.Fatalf("finished: errors differ: %v vs %v", ferr, werr)
		}
		if werr != nil {
			return
		}
		var wantItem InboxItem
		if err := json.Unmarshal(finished, &gotItem); err != nil {
			t.Fatalf("finished item is not JSON: %v: %s", err, finished)
		}
		_ = json.Unmarshal(want, &wantItem)
		if !reflect.DeepEqual(gotItem, wantItem) {
			t.Fatalf("finished:\n got %s\nwant %s", finished, want)
		}
	})
}

// newEncoderPool is a pool of encoders as a DB has (DB.encoders).
func newEncoderPool() *sync.Pool {
	return &sync.Pool{New: func() any { return new(encoder) }}
}
