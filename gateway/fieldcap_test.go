package gateway

import (
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hookline/hookline/connectors"
	"github.com/hookline/hookline/event"
)

// A sender chooses the keys of a generic payload (custom: "@this" maps
// every top-level key to custom.<key>) and an entity's snapshot keeps every
// field it was ever sent. inbound.max_fields caps the fields of one event
// and inbound.max_entity_fields those of one snapshot: a payload over
// either fails with the reason, and stored data is never truncated.
func TestEntityFieldCaps(t *testing.T) {
	cfg := configWithRules(t, "rules: []\n")
	editFile(t, filepath.Join(cfg, "connectors", "generic.yaml"), "  dedupe: { header: Idempotency-Key, fallback_window: 10m }\n",
		"  dedupe: { header: Idempotency-Key, fallback_window: 10m }\n  max_fields: 30\n  max_entity_fields: 50\n")
	ts := startServer(t, cfg, nil, nil)
	// post sends ref a payload of n keys prefix0..; the event has n+2 fields
	// (custom.type and custom.id too).
	post := func(ref, prefix string, n int, value string) map[string]any {
		t.Helper()
		var b strings.Builder
		b.WriteString(`{"type":"ticket.updated","id":"` + ref + `"`)
		for k := range n {
			b.WriteString(`,"` + prefix + strconv.Itoa(k) + `":"` + value + `"`)
		}
		b.WriteString("}")
		r := do(t, "POST", ts.URL+"/hooks/generic", []byte(b.String()), map[string]string{"Content-Type": "application/json"})
		if r.Status != 202 {
			t.Fatalf("post: %d %s", r.Status, r.Body)
		}
		id, _ := r.JSON(t)["id"].(string)
		return waitFinished(t, ts.URL, id)
	}
	fields := func(ref string) int {
		t.Helper()
		var ent struct{ Entity *event.Snapshot }
		decodeJSON(t, do(t, "GET", ts.URL+"/api/v1/entities/generic/ticket/"+ref, nil, nil).Body, &ent)
		if ent.Entity == nil {
			return 0
		}
		return len(ent.Entity.Fields)
	}
	steps := []struct {
		what          string
		ref, prefix   string
		keys          int
		value         string
		wantReason    string // "" for processed
		wantFieldsOfT int    // fields of T-1's snapshot after the step
	}{
		{"an event over max_fields", "T-1", "x", 40, "1",
			`mapping: too many fields in one event: mapping entry "generic" maps an event of 42 fields, more than the cap of 30 (inbound.max_fields of connector generic); nothing was mapped`, 0},
		{"a first event", "T-1", "a", 20, "1", "", 22},
		{"new fields up to the cap", "T-1", "b", 28, "1", "", 50},
		{"one new field past the cap", "T-1", "c", 1, "1",
			`event 0 of the payload (ticket.updated on generic/ticket/T-1) would grow the entity's snapshot to 51 fields, more than the cap of 50 (inbound.max_entity_fields of connector generic); nothing was applied`, 50},
		{"known fields still update", "T-1", "a", 20, "2", "", 50},
		{"the cap is per entity", "T-2", "c", 20, "1", "", 50},
	}
	for _, s := range steps {
		item := post(s.ref, s.prefix, s.keys, s.value)
		reason, _ := item["reason"].(string)
		switch {
		case s.wantReason == "" && item["state"] != "processed":
			t.Errorf("%s: item %v (%s), want processed", s.what, item["state"], reason)
		case s.wantReason != "" && (item["state"] != "failed" || reason != s.wantReason):
			t.Errorf("%s: item %v with reason\n%q\nwant failed with\n%q", s.what, item["state"], reason, s.wantReason)
		}
		if got := fields("T-1"); got != s.wantFieldsOfT {
			t.Errorf("%s: T-1 has %d fields, want %d", s.what, got, s.wantFieldsOfT)
		}
	}
}

// A dry run decides as the pipeline does: a payload that would grow the
// entity's snapshot past max_entity_fields is refused with the reason.
func TestDryRunAppliesEntityFieldCap(t *testing.T) {
	cfg := configWithRules(t, "rules: []\n")
	editFile(t, filepath.Join(cfg, "connectors", "generic.yaml"), "  dedupe: { header: Idempotency-Key, fallback_window: 10m }\n",
		"  dedupe: { header: Idempotency-Key, fallback_window: 10m }\n  max_entity_fields: 50\n")
	ts := startServer(t, cfg, nil, nil)
	known := map[string]any{}
	for k := range 45 {
		known["custom.k"+strconv.Itoa(k)] = "v"
	}
	run := func(keys int) response {
		payload := map[string]any{"type": "ticket.updated", "id": "T-1"}
		for k := range keys {
			payload["n"+strconv.Itoa(k)] = "v"
		}
		body, _ := json.Marshal(map[string]any{"connector": "generic", "payload": payload, "snapshot": map[string]any{"fields": known}})
		return do(t, "POST", ts.URL+"/api/v1/rules/test", body, map[string]string{"Content-Type": "application/json"})
	}
	if r := run(2); r.Status != 200 {
		t.Fatalf("within the cap: %d %s", r.Status, r.Body)
	}
	if r := run(10); r.Status != 400 || !strings.Contains(string(r.Body), "max_entity_fields") {
		t.Fatalf("over the cap: %d %s, want 400 naming max_entity_fields", r.Status, r.Body)
	}
}

// A null field (a platform's "owner": null) adds nothing to a snapshot
// that does not hold it (event.Apply stores nothing for it), so it does
// not count against inbound.max_entity_fields; a null for a field the
// snapshot holds only clears it.
func TestEntityFieldCapNullsAddNothing(t *testing.T) {
	b := &Bundle{Connectors: map[string]*connectors.Connector{
		"generic": {Inbound: &connectors.Inbound{MaxEntityFields: 2}},
	}}
	snap := &event.Snapshot{Fields: map[string]any{"owner": "alice", "status": "open"}}
	snapshotOf := func(event.EntityKey) (*event.Snapshot, error) { return snap, nil }
	ev := func(fields map[string]any) *event.Event {
		return &event.Event{Connector: "generic", Type: "ticket.updated", Entity: "ticket", Reference: "T1", Fields: fields}
	}
	for _, tc := range []struct {
		what   string
		fields map[string]any
		over   bool
	}{
		{"nulls for fields the snapshot lacks", map[string]any{"owner": nil, "custom.owner": nil, "group": nil}, false},
		{"a new field with a value", map[string]any{"group": "g1"}, true},
	} {
		reason, err := entityFieldsOver(b, []*event.Event{ev(tc.fields)}, snapshotOf)
		if err != nil {
			t.Fatal(err)
		}
		if (reason != "") != tc.over {
			t.Errorf("%s: reason %q, want over the cap: %v", tc.what, reason, tc.over)
		}
	}
}
