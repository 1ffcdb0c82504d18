package connectors

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/mapping"
)

// TestInboundMaxEvents: inbound.max_events caps the events of one payload
// (a generated WhatsApp-like payload over it fails with the count), the
// default applies without it, and a cap below 1 is refused at its position.
func TestInboundMaxEvents(t *testing.T) {
	src := func(maxEvents string) string {
		return "connector: a\ninbound:\n  verify: { scheme: none }\n" + maxEvents +
			"  events:\n    - { each: messages, type: message.received, entity: message, reference: id }\n"
	}
	payload := func(n int) []byte {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf(`{"id":"wamid.%d"}`, i)
		}
		return []byte(`{"messages":[` + strings.Join(ids, ",") + `]}`)
	}
	tests := []struct {
		name     string
		setting  string
		messages int
		wantErr  string
	}{
		{"default, at the cap", "", mapping.DefaultMaxEvents, ""},
		{"default, over", "", mapping.DefaultMaxEvents + 1, fmt.Sprintf("the payload maps to %d events, more than the cap of %d", mapping.DefaultMaxEvents+1, mapping.DefaultMaxEvents)},
		{"raised, under", "  max_events: 5000\n", 5000, ""},
		{"lowered, over", "  max_events: 3\n", 4, "the payload maps to 4 events, more than the cap of 3 (inbound.max_events of connector a)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := loadYAML(t, "t.yaml", src(tt.setting), nil)
			evs, err := c.Inbound.Mapper.Map(mapping.Input{Body: payload(tt.messages), ReceivedAt: time.Now()})
			if tt.wantErr == "" {
				if err != nil || len(evs) != tt.messages {
					t.Fatalf("Map = %d events, %v; want %d", len(evs), err, tt.messages)
				}
				return
			}
			if !errors.Is(err, mapping.ErrTooManyEvents) || !strings.Contains(err.Error(), tt.wantErr) || len(evs) != 0 {
				t.Fatalf("Map = %d events, %v; want an error containing %q", len(evs), err, tt.wantErr)
			}
		})
	}
	_, errs := tryLoad(t, "t.yaml", src("  max_events: 0\n"), nil)
	if got, want := errorLines(errs), "t.yaml:4:15: max_events must be at least 1 (the most events one payload may map to; default 1000)"; got != want {
		t.Errorf("errors:\n%s\nwant:\n%s", got, want)
	}
}

// TestInboundMaxFields: inbound.max_fields caps the fields of one event (a
// payload whose keys all become fields fails with the count), the default
// applies without it; inbound.max_entity_fields is kept for the gateway;
// caps below 1 are refused at their position.
func TestInboundMaxFields(t *testing.T) {
	src := func(settings string) string {
		return "connector: a\ninbound:\n  verify: { scheme: none }\n" + settings +
			"  events:\n    - { name: all, type: ticket.updated, entity: ticket, reference: id, fields: { custom: \"@this\" } }\n"
	}
	payload := func(n int) []byte {
		keys := []string{`"id":"T-1"`}
		for i := range n - 1 {
			keys = append(keys, fmt.Sprintf(`"k%d":%d`, i, i))
		}
		return []byte("{" + strings.Join(keys, ",") + "}")
	}
	tests := []struct {
		name    string
		setting string
		fields  int
		wantErr string
	}{
		{"default, at the cap", "", mapping.DefaultMaxFields, ""},
		{"default, over", "", mapping.DefaultMaxFields + 1, fmt.Sprintf(`mapping entry "all" maps an event of %d fields, more than the cap of %d (inbound.max_fields of connector a)`, mapping.DefaultMaxFields+1, mapping.DefaultMaxFields)},
		{"raised, under", "  max_fields: 5000\n", 5000, ""},
		{"lowered, over", "  max_fields: 3\n", 4, `maps an event of 4 fields, more than the cap of 3 (inbound.max_fields of connector a); nothing was mapped`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := loadYAML(t, "t.yaml", src(tt.setting), nil)
			evs, err := c.Inbound.Mapper.Map(mapping.Input{Body: payload(tt.fields), ReceivedAt: time.Now()})
			if tt.wantErr == "" {
				if err != nil || len(evs) != 1 || len(evs[0].Fields) != tt.fields {
					t.Fatalf("Map = %d events, %v; want one of %d fields", len(evs), err, tt.fields)
				}
				return
			}
			if !errors.Is(err, mapping.ErrTooManyFields) || !strings.Contains(err.Error(), tt.wantErr) || len(evs) != 0 {
				t.Fatalf("Map = %d events, %v; want an error containing %q", len(evs), err, tt.wantErr)
			}
		})
	}
	if c := loadYAML(t, "t.yaml", src(""), nil); c.Inbound.MaxEntityFields != DefaultMaxEntityFields {
		t.Errorf("MaxEntityFields = %d, want the default %d", c.Inbound.MaxEntityFields, DefaultMaxEntityFields)
	}
	if c := loadYAML(t, "t.yaml", src("  max_entity_fields: 200\n"), nil); c.Inbound.MaxEntityFields != 200 {
		t.Errorf("MaxEntityFields = %d, want 200", c.Inbound.MaxEntityFields)
	}
	_, errs := tryLoad(t, "t.yaml", src("  max_fields: 0\n  max_entity_fields: -1\n"), nil)
	want := "t.yaml:4:15: max_fields must be at least 1 (the most fields one event may have; default 1000)\n" +
		"t.yaml:5:22: max_entity_fields must be at least 1 (the most fields one entity's snapshot may hold; default 10000)"
	if got := errorLines(errs); got != want {
		t.Errorf("errors:\n%s\nwant:\n%s", got, want)
	}
}
