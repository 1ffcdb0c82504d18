package connectors

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/connectors/verify"
	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/mapping"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// goldenCase posts one payload through a shipped connector: signed with the
// connector's development secret, verified, schema-checked, deduplicated and
// mapped. The golden file holds the dedupe key and the events.
type goldenCase struct {
	golden    string            // testdata/golden/<golden>.json
	connector string            // configs/connectors/<connector>.yaml
	payload   string            // a published fixture or an assembled payload
	form      bool              // body is application/x-www-form-urlencoded
	headers   map[string]string // extra request headers
	query     string
}

func goldenCases() []goldenCase {
	fx := func(name string) string { return filepath.Join(fixturesDir, name) }
	td := func(name string) string { return filepath.Join("testdata", "payloads", name) }
	zdHeaders := func(id string) map[string]string {
		return map[string]string{"X-Zendesk-Webhook-Invocation-Id": id, "X-Zendesk-Webhook-Id": "01HWEBHOOK"}
	}
	return []goldenCase{
		// Published fixtures.
		{golden: "whatsapp-text-message", connector: "whatsapp", payload: fx("whatsapp-cloud-text-message.json")},
		{golden: "whatsapp-interactive-button-reply", connector: "whatsapp", payload: fx("whatsapp-cloud-interactive-button-reply.json")},
		{golden: "whatsapp-status-sent", connector: "whatsapp", payload: fx("whatsapp-cloud-status-sent.json")},
		{golden: "zendesk-user-active-changed", connector: "zendesk", payload: fx("zendesk-event-user-active-changed.json"), headers: zdHeaders("8400001")},
		{golden: "generic-standard-webhooks-contact-created", connector: "generic", payload: fx("standard-webhooks-spec-example-contact-created.json")},
		{golden: "generic-zapier-sample-recipe", connector: "generic", payload: fx("zapier-rest-hook-sample-recipe.json"), headers: map[string]string{"Idempotency-Key": "zap-123"}},
		// Assembled payloads (see testdata/payloads/README.md).
		{golden: "whatsapp-image-message", connector: "whatsapp", payload: td("whatsapp-cloud-image-message.json")},
		{golden: "whatsapp-two-contacts", connector: "whatsapp", payload: td("whatsapp-cloud-two-contacts.json")},
		{golden: "zendesk-ticket-status-changed", connector: "zendesk", payload: td("zendesk-ticket-status-changed.json"), headers: zdHeaders("8400002")},
		{golden: "zendesk-ticket-priority-changed", connector: "zendesk", payload: td("zendesk-ticket-priority-changed.json"), headers: zdHeaders("8400003")},
		{golden: "zendesk-ticket-created", connector: "zendesk", payload: td("zendesk-ticket-created.json"), headers: zdHeaders("8400004")},
		{golden: "zendesk-ticket-agent-assignment-changed", connector: "zendesk", payload: td("zendesk-ticket-agent-assignment-changed.json"), headers: zdHeaders("8400005")},
		{golden: "zendesk-ticket-group-assignment-changed", connector: "zendesk", payload: td("zendesk-ticket-group-assignment-changed.json"), headers: zdHeaders("8400006")},
		{golden: "zendesk-ticket-tags-changed", connector: "zendesk", payload: td("zendesk-ticket-tags-changed.json"), headers: zdHeaders("8400007")},
		{golden: "zendesk-ticket-comment-added", connector: "zendesk", payload: td("zendesk-ticket-comment-added.json"), headers: zdHeaders("8400008")},
		{golden: "zendesk-trigger-abandoned-conversation", connector: "zendesk", payload: td("zendesk-trigger-abandoned-conversation.json"), headers: zdHeaders("8400009")},
		{golden: "zendesk-trigger-minimal", connector: "zendesk", payload: td("zendesk-trigger-minimal.json"), headers: zdHeaders("8400010")},
		{golden: "generic-ticket", connector: "generic", payload: td("generic-ticket.json")},
		{golden: "generic-form", connector: "generic", payload: td("generic-form.form"), form: true, query: "source=make"},
	}
}

// goldenOutput is what a golden file holds.
type goldenOutput struct {
	DedupeKey string         `json:"dedupe_key"`
	Events    []*event.Event `json:"events"`
}

func TestGolden(t *testing.T) {
	receivedAt := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	connectors := map[string]*Connector{}
	for _, name := range []string{"generic", "zendesk", "whatsapp"} {
		connectors[name] = loadShipped(t, name, nil)
	}
	secrets := map[string]string{"whatsapp": devWhatsAppSecret, "zendesk": devZendeskSecret}
	seen := map[string]bool{}
	for _, tc := range goldenCases() {
		t.Run(tc.golden, func(t *testing.T) {
			seen[tc.golden+".json"] = true
			c := connectors[tc.connector]
			raw := readFile(t, tc.payload)
			body := raw
			var form url.Values
			if tc.form {
				var err error
				if body, form, err = verify.DecodeForm(raw); err != nil {
					t.Fatalf("DecodeForm: %v", err)
				}
			}
			h := signHeaders(c.Inbound.Scheme, secrets[tc.connector], raw, receivedAt)
			for k, v := range tc.headers {
				h.Set(k, v)
			}
			query, _ := url.ParseQuery(tc.query)
			req := &verify.Request{Method: http.MethodPost, URL: "https://hooks.example.com/hooks/" + tc.connector, Header: h, Query: query, Body: raw, Form: form, Now: receivedAt}
			if err := c.Inbound.Verifier.Verify(req); err != nil {
				t.Fatalf("verify with the development secret: %v", err)
			}
			if !c.Inbound.Unsigned {
				tampered := *req
				tampered.Body = append(bytes.Clone(raw), ' ')
				if err := c.Inbound.Verifier.Verify(&tampered); !errors.Is(err, verify.ErrUnauthorized) {
					t.Errorf("tampered body accepted: %v", err)
				}
			}
			if resp, handled := c.Inbound.Handshake(req); handled {
				t.Fatalf("a webhook POST was taken for a handshake: %+v", resp)
			}
			if c.Inbound.Schema != "" {
				if err := testRegistry(t).ValidateJSON(c.Inbound.Schema, body); err != nil {
					t.Fatalf("schema %s: %v", c.Inbound.Schema, err)
				}
			}
			events, err := c.Inbound.Mapper.Map(mapping.Input{Body: body, Header: h, Query: query, ReceivedAt: receivedAt})
			if err != nil {
				t.Fatalf("Map: %v", err)
			}
			if len(events) == 0 {
				t.Fatalf("payload is unmapped")
			}
			for _, e := range events {
				if !json.Valid(e.Raw) || !bytes.Contains(body, e.Raw) {
					t.Errorf("event Raw is neither the payload nor a part of it (the element of an each entry)")
				}
				e.Raw = nil
			}
			got, err := json.MarshalIndent(goldenOutput{DedupeKey: c.Inbound.Dedupe.Key(h, body), Events: events}, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", "golden", tc.golden+".json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./connectors -run TestGolden -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("events differ from %s (run with -update after checking):\n--- got\n%s\n--- want\n%s", path, got, want)
			}
		})
	}
	if !*update {
		files, _ := filepath.Glob(filepath.Join("testdata", "golden", "*.json"))
		for _, f := range files {
			if !seen[filepath.Base(f)] {
				t.Errorf("stale golden file %s has no test case", f)
			}
		}
	}
}

// Every file in configs/connectors loads with the development defaults.
func TestShippedFilesLoad(t *testing.T) {
	files := shippedFiles(t)
	if len(files) < 3 {
		t.Fatalf("connector files: %v", files)
	}
	names := map[string]string{}
	for _, f := range files {
		c := loadYAML(t, f, string(readFile(t, f)), nil)
		if prev, dup := names[c.Name]; dup {
			t.Errorf("%s and %s both define connector %q", prev, f, c.Name)
		}
		names[c.Name] = f
		if want := strings.TrimSuffix(filepath.Base(f), ".yaml"); c.Name != want {
			t.Errorf("%s defines connector %q; name the file after it", f, c.Name)
		}
	}
}
