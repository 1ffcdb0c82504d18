package mapping

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/yamlconf"
)

// TestDocExample compiles the full example of doc.go and maps Meta's
// WhatsApp samples with it, so the documentation cannot drift from the code.
func TestDocExample(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	text := string(src)
	start := strings.Index(text, "//\tinbound:")
	end := strings.Index(text, "// # Entry keys")
	if start < 0 || end < start {
		t.Fatal("example not found in doc.go")
	}
	var yml strings.Builder
	for _, ln := range strings.Split(text[start:end], "\n") {
		if rest, ok := strings.CutPrefix(ln, "//\t"); ok {
			yml.WriteString(rest + "\n")
		}
	}
	root, errs := yamlconf.Parse("doc.go", []byte(yml.String()), nil)
	if len(errs) > 0 {
		t.Fatalf("parse: %v", errs)
	}
	m, errs := Compile("doc.go", "whatsapp", yamlconf.Lookup(yamlconf.Lookup(root, "inbound"), "events"))
	if len(errs) > 0 {
		t.Fatalf("compile:\n%v", errs)
	}
	hdr := map[string][]string{"X-Hub-Signature-256": {"sha256=x"}}
	tests := []struct {
		fixture string
		fields  map[string]any
	}{
		{"whatsapp-cloud-text-message.json", map[string]any{
			"channel": "whatsapp", "text": "Does it come in another color?", "message_type": "text",
			"customer.phone": "16505551234", "customer.name": "Sheena Nelson",
			"business.phone_number_id": "106540352242922", "tags": []string{"whatsapp"},
		}},
		{"whatsapp-cloud-interactive-button-reply.json", map[string]any{
			"channel": "whatsapp", "text": "Cancel", "message_type": "button",
			"customer.phone": "16505551234", "customer.name": "Sheena Nelson",
			"business.phone_number_id": "106540352242922", "tags": []string{"whatsapp"},
		}},
	}
	for _, tc := range tests {
		evs := mustMap(t, m, Input{Body: readFixture(t, tc.fixture), Header: hdr})
		if len(evs) != 1 {
			t.Fatalf("%s: %d events", tc.fixture, len(evs))
		}
		e := evs[0]
		if e.Type != "message.received" || e.Actor.Name != "Sheena Nelson" || e.Vars["REPLY_TO"] != "106540352242922:16505551234" {
			t.Errorf("%s: %+v", tc.fixture, e)
		}
		if !reflect.DeepEqual(e.Fields, tc.fields) {
			t.Errorf("%s: fields\n got %#v\nwant %#v", tc.fixture, e.Fields, tc.fields)
		}
	}
	// A Zendesk ticket event (assembled from the documented envelope).
	zd := `{"type":"zen:event-type:ticket.status_changed","detail":{"id":"35"},"time":"2025-01-02T03:04:05Z","event":{"previous":"OPEN","current":"SOLVED"}}`
	evs := mustMap(t, m, Input{Body: []byte(zd)})
	if len(evs) != 1 {
		t.Fatalf("zendesk: %d events", len(evs))
	}
	if e := evs[0]; e.Reference != "35" || e.Fields["status"] != "solved" || e.Changes["status"].From != "open" ||
		e.Changes["status"].To != "solved" || e.Vars["TICKET_REFERENCE"] != "35" || e.OccurredAt.Format(time.RFC3339) != "2025-01-02T03:04:05Z" {
		t.Errorf("zendesk: %+v", e)
	}
	// The status sample has no messages: unmapped. Without the signature
	// header the match fails: unmapped too.
	if evs := mustMap(t, m, Input{Body: readFixture(t, "whatsapp-cloud-status-sent.json"), Header: hdr}); len(evs) != 0 {
		t.Errorf("status: %v", refs(evs))
	}
	if evs := mustMap(t, m, Input{Body: readFixture(t, "whatsapp-cloud-text-message.json")}); len(evs) != 0 {
		t.Errorf("unsigned: %v", refs(evs))
	}
}
