package schemas_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hookline/hookline/internal/yamlconf"
	"github.com/hookline/hookline/mapping"
	"github.com/hookline/hookline/schemas"
)

const fixtures = "../testdata/fixtures"

func newRegistry(t testing.TB) *schemas.Registry {
	t.Helper()
	r, err := schemas.New()
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r
}

func read(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNames(t *testing.T) {
	r := newRegistry(t)
	want := []string{"slack-event.json", "whatsapp-cloud-webhook.json", "zendesk-ticket-event.json", "zendesk-trigger.json", "zendesk-webhook.json"}
	if got := r.Names(); !slices.Equal(got, want) {
		t.Errorf("Names() = %v, want %v", got, want)
	}
	if got := r.ConfigNames(); !slices.Equal(got, []string{"connector.schema.json", "gateway.schema.json", "rules.schema.json", "test.schema.json"}) {
		t.Errorf("ConfigNames() = %v", got)
	}
	for _, n := range []string{"zendesk-ticket-event.json", "zendesk-ticket-event", "slack-event"} {
		if !r.Has(n) {
			t.Errorf("Has(%q) = false", n)
		}
	}
	for _, n := range []string{"", "zendesk", "connector.schema.json", "payload/slack-event.json"} {
		if r.Has(n) {
			t.Errorf("Has(%q) = true", n)
		}
	}
}

// The connector schema's enum of payload schema names must list exactly the
// embedded payload schemas.
func TestConnectorSchemaListsPayloadSchemas(t *testing.T) {
	src, err := schemas.ConfigSchema("connector.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Defs struct {
			Inbound struct {
				Properties struct {
					Schema struct {
						Enum []string `json:"enum"`
					} `json:"schema"`
				} `json:"properties"`
			} `json:"inbound"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(src, &doc); err != nil {
		t.Fatal(err)
	}
	got := doc.Defs.Inbound.Properties.Schema.Enum
	slices.Sort(got)
	if want := newRegistry(t).Names(); !slices.Equal(got, want) {
		t.Errorf("connector.schema.json inbound.schema enum = %v, want %v", got, want)
	}
}

func TestFixturesValidate(t *testing.T) {
	r := newRegistry(t)
	cases := []struct{ schema, fixture string }{
		{"whatsapp-cloud-webhook.json", "whatsapp-cloud-text-message.json"},
		{"whatsapp-cloud-webhook.json", "whatsapp-cloud-interactive-button-reply.json"},
		{"whatsapp-cloud-webhook.json", "whatsapp-cloud-status-sent.json"},
		{"zendesk-ticket-event.json", "zendesk-event-user-active-changed.json"},
		{"zendesk-webhook.json", "zendesk-event-user-active-changed.json"},
		{"slack-event.json", "slack-url-verification.json"},
		{"slack-event.json", "slack-event-callback-message.json"},
	}
	for _, tc := range cases {
		t.Run(tc.fixture, func(t *testing.T) {
			body := read(t, filepath.Join(fixtures, tc.fixture))
			if err := r.ValidateJSON(tc.schema, body); err != nil {
				t.Errorf("ValidateJSON: %v", err)
			}
			var doc any
			if err := json.Unmarshal(body, &doc); err != nil {
				t.Fatal(err)
			}
			if err := r.Validate(tc.schema, doc); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

// mutate decodes a fixture, applies f, and re-encodes it.
func mutate(t *testing.T, fixture string, f func(doc map[string]any)) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(read(t, filepath.Join(fixtures, fixture)), &doc); err != nil {
		t.Fatal(err)
	}
	f(doc)
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func obj(v any, keys ...any) map[string]any {
	for _, k := range keys {
		switch x := k.(type) {
		case string:
			v = v.(map[string]any)[x]
		case int:
			v = v.([]any)[x]
		}
	}
	return v.(map[string]any)
}

func TestValidationErrors(t *testing.T) {
	r := newRegistry(t)
	wa := "whatsapp-cloud-text-message.json"
	zd := "zendesk-event-user-active-changed.json"
	msg := func(doc map[string]any) map[string]any {
		return obj(doc, "entry", 0, "changes", 0, "value", "messages", 0)
	}
	cases := []struct {
		name    string
		schema  string
		body    []byte
		pointer string
		reason  string // substring
	}{
		{"zendesk missing detail.id", "zendesk-ticket-event.json",
			mutate(t, zd, func(d map[string]any) { delete(obj(d, "detail"), "id") }), "/detail/id", "missing property"},
		{"zendesk missing detail", "zendesk-ticket-event.json",
			mutate(t, zd, func(d map[string]any) { delete(d, "detail") }), "/detail", "missing property"},
		{"zendesk bad time", "zendesk-ticket-event.json",
			mutate(t, zd, func(d map[string]any) { d["time"] = "yesterday" }), "/time", "date-time"},
		{"zendesk bad type", "zendesk-webhook.json",
			mutate(t, zd, func(d map[string]any) { d["type"] = "zen:event-type:Nope" }), "/type", "pattern"},
		{"zendesk ticket event with user subject", "zendesk-ticket-event.json",
			mutate(t, zd, func(d map[string]any) { d["type"] = "zen:event-type:ticket.status_changed" }), "/subject", "pattern"},
		{"zendesk ticket tags not a list", "zendesk-webhook.json",
			mutate(t, zd, func(d map[string]any) {
				d["type"], d["subject"] = "zen:event-type:ticket.tags_changed", "zen:ticket:1"
				obj(d, "detail")["tags"] = "a b"
			}), "/detail/tags", "expected array"},
		{"trigger body without ticket id", "zendesk-webhook.json",
			[]byte(`{"event": "ticket.updated", "ticket": {"status": "open"}}`), "/ticket/id", "missing property"},
		{"trigger body without ticket", "zendesk-webhook.json",
			[]byte(`{"event": "ticket.updated"}`), "/ticket", "missing property"},
		{"whatsapp wrong object", "whatsapp-cloud-webhook.json",
			mutate(t, wa, func(d map[string]any) { d["object"] = "page" }), "/object", "whatsapp_business_account"},
		{"whatsapp message without from", "whatsapp-cloud-webhook.json",
			mutate(t, wa, func(d map[string]any) { delete(msg(d), "from") }), "/entry/0/changes/0/value/messages/0/from", "missing property"},
		{"whatsapp numeric timestamp", "whatsapp-cloud-webhook.json",
			mutate(t, wa, func(d map[string]any) { msg(d)["timestamp"] = 1749416383 }), "/entry/0/changes/0/value/messages/0/timestamp", "expected string"},
		{"whatsapp messages without metadata", "whatsapp-cloud-webhook.json",
			mutate(t, wa, func(d map[string]any) { delete(obj(d, "entry", 0, "changes", 0, "value"), "metadata") }), "/entry/0/changes/0/value/metadata", "missing property"},
		{"whatsapp empty entry", "whatsapp-cloud-webhook.json",
			[]byte(`{"object": "whatsapp_business_account", "entry": []}`), "/entry", "minimum 1 items"},
		{"slack callback without event_id", "slack-event.json",
			mutate(t, "slack-event-callback-message.json", func(d map[string]any) { delete(d, "event_id") }), "/event_id", "missing property"},
		{"slack verification without challenge", "slack-event.json",
			[]byte(`{"type": "url_verification", "token": "x"}`), "/challenge", "missing property"},
		{"not an object", "slack-event.json", []byte(`[1,2]`), "", "expected object"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := r.ValidateJSON(tc.schema, tc.body)
			var ve *schemas.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("ValidateJSON = %v, want a *ValidationError", err)
			}
			if ve.Pointer != tc.pointer || !strings.Contains(ve.Reason, tc.reason) {
				t.Errorf("got pointer %q reason %q, want pointer %q reason containing %q", ve.Pointer, ve.Reason, tc.pointer, tc.reason)
			}
			if ve.Schema != tc.schema {
				t.Errorf("Schema = %q, want %q", ve.Schema, tc.schema)
			}
			if strings.Contains(ve.Reason, "\n") {
				t.Errorf("reason is not one line: %q", ve.Reason)
			}
		})
	}
}

func TestValidateErrors(t *testing.T) {
	r := newRegistry(t)
	if err := r.ValidateJSON("nope.json", []byte(`{}`)); !errors.Is(err, schemas.ErrUnknownSchema) {
		t.Errorf("unknown schema: %v", err)
	}
	if err := r.Validate("nope", map[string]any{}); !errors.Is(err, schemas.ErrUnknownSchema) {
		t.Errorf("unknown schema: %v", err)
	}
	for _, body := range []string{`{"type":`, `{} {}`, ``} {
		if err := r.ValidateJSON("slack-event.json", []byte(body)); !errors.Is(err, schemas.ErrInvalidJSON) {
			t.Errorf("ValidateJSON(%q) = %v, want ErrInvalidJSON", body, err)
		}
	}
	var ve *schemas.ValidationError
	err := r.Validate("slack-event.json", map[string]any{"type": []string{"x"}})
	if !errors.As(err, &ve) {
		t.Errorf("non-JSON Go value: %v", err)
	}
	if _, err := schemas.ConfigSchema("nope.json"); !errors.Is(err, schemas.ErrUnknownSchema) {
		t.Errorf("ConfigSchema(nope): %v", err)
	}
}

// yamlDoc parses a YAML config file (defaults of ${ENV} references applied)
// into JSON-shaped values.
func yamlDoc(t *testing.T, file string, src []byte) any {
	t.Helper()
	root, errs := yamlconf.Parse(file, src, yamlconf.NoEnv)
	if len(errs) > 0 {
		t.Fatalf("parse %s: %v", file, errs)
	}
	v, err := yamlconf.ToValue(root)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestShippedConnectorsValidate(t *testing.T) {
	r := newRegistry(t)
	files, err := filepath.Glob("../configs/connectors/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"generic.yaml", "whatsapp.yaml", "zendesk.yaml"} {
		if !slices.Contains(files, filepath.Join("../configs/connectors", name)) {
			t.Errorf("configs/connectors/%s is missing", name)
		}
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.yaml") {
			continue // config tests (test.schema.json, TestShippedConfigTestsValidate)
		}
		t.Run(filepath.Base(f), func(t *testing.T) {
			if err := r.ValidateConfig("connector", yamlDoc(t, f, read(t, f))); err != nil {
				t.Errorf("%s: %v", f, err)
			}
		})
	}
}

// mediaIDPaths is a path list of the shipped whatsapp.yaml the mistake
// cases below break.
const mediaIDPaths = "path: [image.id, video.id, audio.id, document.id, sticker.id]"

func TestConnectorSchemaRefusesMistakes(t *testing.T) {
	r := newRegistry(t)
	src := string(read(t, "../configs/connectors/whatsapp.yaml"))
	cases := []struct {
		name, from, to, pointer string
	}{
		{"misspelt top-level key", "\noutbound:\n", "\noutbund:\n", ""},
		{"unknown verify scheme", "scheme: meta\n    secret", "scheme: metta\n    secret", "/inbound/verify/scheme"},
		{"unknown auth key", "type: bearer\n", "type: bearer\n    secret: x\n", "/outbound/auth"},
		{"bad connector name", "connector: whatsapp", "connector: WhatsApp", "/connector"},
		{"bad dedupe", "dedupe: body", "dedupe: bodyy", "/inbound/dedupe"},
		{"fallback_window with a body source", "dedupe: body", "dedupe: { body: true, fallback_window: 10m }", "/inbound/dedupe"},
		{"bad payload schema", "schema: whatsapp-cloud-webhook.json", "schema: whatsapp.json", "/inbound/schema"},
		{"meta handshake without token", "    verify_token: \"${WHATSAPP_VERIFY_TOKEN:-dev-insecure-verify-token}\"\n", "", "/inbound/handshake/verify_token"},
		{"empty path list", mediaIDPaths, "path: []", "/inbound/events/0/fields/media.id/path"},
		{"number in a path list", mediaIDPaths, "path: [image.id, 7]", "/inbound/events/0/fields/media.id/path/1"},
		{"fallback with value", mediaIDPaths, "value: x\n          fallback: image.id", "/inbound/events/0/fields/media.id"},
		{"fallback without a source", mediaIDPaths, "fallback: image.id", "/inbound/events/0/fields/media.id/path"},
		{"misspelt fallback", mediaIDPaths, "path: image.id\n          fallbak: video.id", "/inbound/events/0/fields/media.id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(src, tc.from) {
				t.Fatalf("whatsapp.yaml no longer contains %q", tc.from)
			}
			broken := strings.Replace(src, tc.from, tc.to, 1)
			err := r.ValidateConfig("connector.schema.json", yamlDoc(t, "broken.yaml", []byte(broken)))
			var ve *schemas.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("ValidateConfig = %v, want a *ValidationError", err)
			}
			if ve.Pointer != tc.pointer {
				t.Errorf("pointer %q (%s), want %q", ve.Pointer, ve.Reason, tc.pointer)
			}
		})
	}
}

// The gateway file shape the lead documented.
const gatewaySample = `
listen: ":8080"
data_dir: "./data"
admin_token: "${HOOKLINE_ADMIN_TOKEN:-}"
body_limit: 1MiB
timezone: "UTC"
intake: { dedupe_window: 72h }
delivery: { workers: 32, log_dir: "./data/logs", fingerprint_window: 10m }
loop_guard: { max_hops: 5, max_firings_per_hour: 20 }
egress: { allow: ["127.0.0.0/8"] }
enums: { priority: [low, normal, high, urgent] }
calendars: { support: { timezone: Europe/Rome, hours: { mon-fri: "09:00-18:00" }, holidays: ["2026-12-25"] } }
connectors: ["connectors/*.yaml"]
rules: ["rules/*.yaml"]
`

func TestGatewaySchema(t *testing.T) {
	r := newRegistry(t)
	if err := r.ValidateConfig("gateway", yamlDoc(t, "gateway.yaml", []byte(gatewaySample))); err != nil {
		t.Errorf("documented gateway file: %v", err)
	}
	if _, err := os.Stat("../configs/gateway.yaml"); err == nil {
		if err := r.ValidateConfig("gateway", yamlDoc(t, "../configs/gateway.yaml", read(t, "../configs/gateway.yaml"))); err != nil {
			t.Errorf("configs/gateway.yaml: %v", err)
		}
	}
	cases := []struct{ from, to, pointer string }{
		{"body_limit: 1MiB", "body_limit: 1 megabyte", "/body_limit"},
		{"dedupe_window: 72h", "dedupe_window: 3 days", "/intake/dedupe_window"},
		{"workers: 32", "workers: 0", "/delivery/workers"},
		{"timezone: \"UTC\"", "timezone: \"UTC\"\ntimezon: x", ""},
		{"\"127.0.0.0/8\"", "\"localhost\"", "/egress/allow/0"},
		{"mon-fri: \"09:00-18:00\"", "weekdays: \"09:00-18:00\"", "/calendars/support/hours/weekdays"},
	}
	for _, tc := range cases {
		broken := strings.Replace(gatewaySample, tc.from, tc.to, 1)
		err := r.ValidateConfig("gateway.schema.json", yamlDoc(t, "gateway.yaml", []byte(broken)))
		var ve *schemas.ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("%s: ValidateConfig = %v, want a *ValidationError", tc.to, err)
			continue
		}
		if ve.Pointer != tc.pointer {
			t.Errorf("%s: pointer %q (%s), want %q", tc.to, ve.Pointer, ve.Reason, tc.pointer)
		}
	}
}

func FuzzValidateJSON(f *testing.F) {
	for _, name := range []string{"whatsapp-cloud-text-message.json", "zendesk-event-user-active-changed.json", "slack-event-callback-message.json"} {
		f.Add(read(f, filepath.Join(fixtures, name)))
	}
	f.Add([]byte(`{"ticket": {"id": "1"}}`))
	f.Add([]byte(`[]`))
	r := newRegistry(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, name := range r.Names() {
			err := r.ValidateJSON(name, body)
			var ve *schemas.ValidationError
			if err != nil && !errors.As(err, &ve) && !errors.Is(err, schemas.ErrInvalidJSON) {
				t.Fatalf("%s: unexpected error kind: %v", name, err)
			}
			if ve != nil && strings.Contains(ve.Reason, "\n") {
				t.Fatalf("%s: multi-line reason %q", name, ve.Reason)
			}
		}
	})
}

func BenchmarkValidateWhatsApp(b *testing.B) {
	r := newRegistry(b)
	body := read(b, filepath.Join(fixtures, "whatsapp-cloud-text-message.json"))
	b.ReportAllocs()
	for b.Loop() {
		if err := r.ValidateJSON("whatsapp-cloud-webhook.json", body); err != nil {
			b.Fatal(err)
		}
	}
}

// The connector schema's value spec mapping lists exactly the keys the
// mapping compiler accepts there (it names them for a misspelt key), and it
// refuses and accepts the same path-list and fallback forms.
func TestConnectorValueSpecMatchesMappingCompiler(t *testing.T) {
	src, err := schemas.ConfigSchema("connector.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Defs struct {
			ValueSpec struct {
				OneOf []struct {
					Properties map[string]any `json:"properties"`
				} `json:"oneOf"`
			} `json:"valueSpec"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(src, &doc); err != nil {
		t.Fatal(err)
	}
	var schemaKeys []string
	for _, alt := range doc.Defs.ValueSpec.OneOf {
		for k := range alt.Properties {
			schemaKeys = append(schemaKeys, k)
		}
	}
	slices.Sort(schemaKeys)

	compile := func(spec string) yamlconf.Errors {
		t.Helper()
		y := "- type: t.x\n  entity: e\n  reference: { value: r }\n  fields:\n    x: " + spec + "\n"
		n, perrs := yamlconf.Parse("m.yaml", []byte(y), nil)
		if len(perrs) > 0 {
			t.Fatalf("parse %q: %v", spec, perrs)
		}
		_, errs := mapping.Compile("m.yaml", "c", n)
		return errs
	}
	errs := compile("{ path: a, pahh: b }")
	var compilerKeys []string
	for _, e := range errs {
		if _, rest, ok := strings.Cut(e.Msg, "(valid: "); ok {
			list, _, _ := strings.Cut(rest, ")")
			compilerKeys = strings.Split(list, ", ")
		}
	}
	slices.Sort(compilerKeys)
	if !slices.Equal(schemaKeys, compilerKeys) {
		t.Errorf("value spec keys: schema %v, compiler %v", schemaKeys, compilerKeys)
	}

	r := newRegistry(t)
	for _, tc := range []struct {
		spec string
		ok   bool
	}{
		{"{ path: [a, b.c, $header.X-Id, $query.id] }", true},
		{"{ path: [a], default: d, map: { x: y } }", true},
		{"{ path: a, fallback: { template: '{{ .Path \"b\" }}' } }", true},
		{"{ path: [a, b], fallback: { path: [c], fallback: d } }", true},
		{"{ path: [] }", false},
		{"{ path: [a, 1] }", false},
		{"{ path: [a, [b]] }", false},
		{"{ fallback: a }", false},
		{"{ value: 1, fallback: a }", false},
		{"{ path: a, fallback: null }", false},
		{"{ path: a, fallback: { fallback: b } }", false},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			compilerOK := len(compile(tc.spec)) == 0
			conn := "connector: c\ninbound:\n  verify: { scheme: none }\n  events:\n    - type: t.x\n      entity: e\n      reference: { value: r }\n      fields:\n        x: " + tc.spec + "\n"
			verr := r.ValidateConfig("connector.schema.json", yamlDoc(t, "c.yaml", []byte(conn)))
			schemaOK := verr == nil
			if compilerOK != tc.ok || schemaOK != tc.ok {
				t.Errorf("compiler accepts: %v, schema accepts: %v (%v), want %v", compilerOK, schemaOK, verr, tc.ok)
			}
		})
	}
}
