package connectors

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/connectors/verify"
)

// minimalEvents is a valid events list for inbound test files.
const minimalEvents = `  events:
    - { type: x.received, entity: x, reference: id }
`

func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name string
		src  string
		env  map[string]string
		want string // the exact error lines
	}{
		{
			name: "misspelt top-level key",
			src:  "connector: a\ninbond:\n  verify: { scheme: none }\n",
			want: `t.yaml:1:1: a connector needs an inbound section, an outbound section, or both
t.yaml:2:1: unknown key "inbond"; did you mean "inbound"? (valid: connector, description, inbound, outbound)`,
		},
		{
			name: "bad connector name",
			src:  "connector: Zen Desk\noutbound: { base_url: 'https://x.example', actions: { update: {} } }\n",
			want: `t.yaml:1:12: connector name "Zen Desk" must match ^[a-z0-9_-]+$ (lower-case letters, digits, _ and -)`,
		},
		{
			name: "missing connector name",
			src:  "outbound: { base_url: 'https://x.example', actions: { update: {} } }\n",
			want: `t.yaml:1:1: missing required key "connector" (the connector's name, used in /hooks/{name})`,
		},
		{
			name: "inbound without verify and events",
			src:  "connector: a\ninbound:\n  schema: slack-event.json\n",
			want: `t.yaml:3:3: missing required key "verify": every inbound connector says how requests are authenticated (scheme: none accepts anything)
t.yaml:3:3: missing required key "events" (the mappings from payloads to events)`,
		},
		{
			name: "misspelt verify scheme",
			src:  "connector: a\ninbound:\n  verify:\n    scheme: githb\n    secret: s\n" + minimalEvents,
			want: `t.yaml:4:13: verify: unknown verify scheme "githb"; did you mean "github"?`,
		},
		{
			name: "misspelt verify key",
			src:  "connector: a\ninbound:\n  verify: { scheme: token, header: X-T, secret: s, allow_unsigend: true }\n" + minimalEvents,
			want: `t.yaml:3:52: unknown key "allow_unsigend"; did you mean "allow_unsigned"? (valid: algorithm, encoding, header, prefix, public_url, query, scheme, secret, secrets, tolerance, allow_unsigned)`,
		},
		{
			name: "empty secret without allow_unsigned",
			src:  "connector: a\ninbound:\n  verify:\n    scheme: meta\n    secret: \"${APP_SECRET:-}\"\n" + minimalEvents,
			want: `t.yaml:5:13: verify scheme meta: the secret is empty (set its environment variable), or add allow_unsigned: true to accept unsigned requests while no secret is set`,
		},
		{
			name: "empty rotation slot",
			src:  "connector: a\ninbound:\n  verify:\n    scheme: meta\n    secrets: [\"${NEW:-}\", old]\n" + minimalEvents,
			want: `t.yaml:5:15: verify scheme meta: secrets[0] is empty (is its environment variable set?)`,
		},
		{
			name: "field the scheme does not use",
			src:  "connector: a\ninbound:\n  verify:\n    scheme: meta\n    secret: s\n    prefix: 'sha1='\n" + minimalEvents,
			want: `t.yaml:6:5: verify: verify scheme "meta": invalid verify config: field "prefix" does not apply to this scheme`,
		},
		{
			name: "unknown payload schema",
			src:  "connector: a\ninbound:\n  verify: { scheme: none }\n  schema: zendesk-tiket-event.json\n" + minimalEvents,
			want: `t.yaml:4:11: unknown schema "zendesk-tiket-event.json"; did you mean "zendesk-ticket-event.json"? (available: slack-event.json, whatsapp-cloud-webhook.json, zendesk-ticket-event.json, zendesk-trigger.json, zendesk-webhook.json)`,
		},
		{
			name: "bad dedupe forms",
			src:  "connector: a\ninbound:\n  verify: { scheme: none }\n  dedupe: heder:X-Id\n" + minimalEvents,
			want: `t.yaml:4:11: dedupe: expected header:<Name>, path:<payload.path> or body, got "heder:X-Id"; did you mean "header"?`,
		},
		{
			name: "dedupe long form with two sources",
			src:  "connector: a\ninbound:\n  verify: { scheme: none }\n  dedupe: { header: X-Id, path: id }\n" + minimalEvents,
			want: `t.yaml:4:11: dedupe: give exactly one of header, path, body`,
		},
		{
			name: "dedupe bad window",
			src:  "connector: a\ninbound:\n  verify: { scheme: none }\n  dedupe: { path: id, window: soon }\n" + minimalEvents,
			want: `t.yaml:4:31: expected a duration like 15m, 48h or 2d, got "soon"`,
		},
		{
			name: "dedupe fallback window with a body source",
			src:  "connector: a\ninbound:\n  verify: { scheme: none }\n  dedupe: { body: true, fallback_window: 10m }\n" + minimalEvents,
			want: `t.yaml:4:42: dedupe: fallback_window applies to header and path sources, whose key falls back to the body hash; for body use window`,
		},
		{
			name: "dedupe fallback window not positive",
			src:  "connector: a\ninbound:\n  verify: { scheme: none }\n  dedupe: { header: X-Id, fallback_window: 0s }\n" + minimalEvents,
			want: `t.yaml:4:44: dedupe: fallback_window must be positive`,
		},
		{
			name: "body limit",
			src:  "connector: a\ninbound:\n  verify: { scheme: none }\n  body_limit: 1 gigantic\n" + minimalEvents,
			want: `t.yaml:4:15: body_limit: expected a size like 1MiB, 512KiB or 1048576, got "1 gigantic"`,
		},
		{
			name: "handshake",
			src:  "connector: a\ninbound:\n  verify: { scheme: none }\n  handshake: { scheme: mета }\n" + minimalEvents,
			want: `t.yaml:4:24: unknown handshake scheme "mета"; did you mean "meta"? (valid: meta, slack)`,
		},
		{
			name: "meta handshake with empty token",
			src:  "connector: a\ninbound:\n  verify: { scheme: none }\n  handshake: { scheme: meta, verify_token: \"${VT:-}\" }\n" + minimalEvents,
			want: `t.yaml:4:44: handshake scheme meta: verify_token is empty (is its environment variable set?)`,
		},
		{
			name: "mapping errors come through with positions",
			src:  "connector: a\ninbound:\n  verify: { scheme: none }\n  events:\n    - { type: x.y, entity: x, referense: id }\n",
			want: `t.yaml:5:7: missing required key "reference": every event needs the platform's key of its entity (use reference: { value: ... } for a constant)
t.yaml:5:31: unknown key "referense"; did you mean "reference"? (valid: actor, changes, each, entity, fields, match, name, occurred_at, reference, stop, type, vars, where)`,
		},
		{
			name: "action fields problems",
			src: `connector: a
outbound:
  base_url: https://x.example
  actions:
    update_ticket: { fields: [status, status, "Bad Name", custom.*, { a: 1 }] }
    update: { fields: status }
    send_message: { fields: [status] }
`,
			want: `t.yaml:5:39: fields: status is listed twice
t.yaml:5:47: fields: "Bad Name" is not a field name (like status, custom.region, custom.* for every custom field, tags for add_tags/remove_tags)
t.yaml:5:69: fields: a mapping is not a field name (like status, custom.region, custom.* for every custom field, tags for add_tags/remove_tags)
t.yaml:6:23: fields: expected a list of field names (e.g. [status, priority, tags, custom.*]), got "status"
t.yaml:7:29: fields: only update actions (update, update_<entity>) carry an update's fields; send_message does not`,
		},
		{
			name: "outbound problems",
			src: `connector: a
outbound:
  base_url: "${BASE:-example.com}"
  auth: { type: basik, user: me }
  timeout: -1s
  retry: { schedule: [5s, 0s], jitter: 2, retry_on: [429, 1000] }
  breaker: { error_ratio: 0 }
  actions:
    Update: { method: GET }
    update_ticket: { method: FETCH, success: [99], body: { a: 1 } }
`,
			want: `t.yaml:3:13: base_url: "example.com" needs an http:// or https:// scheme
t.yaml:4:17: unknown auth type "basik"; did you mean "basic"? (valid: none, basic, bearer, header, hmac, standard-webhooks)
t.yaml:4:24: unknown key "user" (valid: algorithm, encoding, header, password, prefix, secret, token, type, username, value)
t.yaml:5:12: timeout must be positive
t.yaml:6:27: retry delay must be positive
t.yaml:6:40: jitter must be between 0 and 1 (0.2 = +-20%)
t.yaml:6:59: retry_on: 1000 is not an HTTP status code
t.yaml:7:27: error_ratio must be above 0 and at most 1
t.yaml:9:5: action name "Update" must be lower-case letters, digits and _ (like update_ticket)
t.yaml:10:30: unknown method "FETCH"; did you mean "PATCH"? (valid: GET, POST, PUT, PATCH, DELETE)
t.yaml:10:47: success: 99 is not an HTTP status code
t.yaml:10:58: body: expected a string template (write it as a | block), got a mapping`,
		},
		{
			name: "retry delays beyond 30 days",
			src: `connector: a
outbound:
  base_url: https://x.example
  retry: { schedule: [5s, 721h, 2200000h], max_retry_after: 8760h }
  actions: { update: {} }
`,
			want: `t.yaml:4:27: retry delay 721h0m0s is longer than 720h (30 days)
t.yaml:4:33: retry delay 2200000h0m0s is longer than 720h (30 days)
t.yaml:4:61: max_retry_after 8760h0m0s is longer than 720h (30 days)`,
		},
		{
			name: "retry_errors problems",
			src: `connector: a
outbound:
  base_url: https://x.example
  retry:
    retry_errors: { path: "error..code", codes: [] }
  actions: { update: {} }
`,
			want: `t.yaml:5:27: retry_errors.path: empty part before '.' at position 7`,
		},
		{
			name: "success_when path with a mapping prefix",
			src: `connector: a
outbound:
  base_url: https://x.example
  actions:
    update:
      success_when: { path: $root.ok, equals: true }
`,
			want: `t.yaml:6:29: success_when.path: a plain path from the top of the document; $ prefixes are not allowed here (a literal $ key is written \$)`,
		},
		{
			name: "retry_errors path with a mapping prefix",
			src: `connector: a
outbound:
  base_url: https://x.example
  retry:
    retry_errors: { path: $root.error.code, codes: ["4"] }
  actions: { update: {} }
`,
			want: `t.yaml:5:27: retry_errors.path: a plain path from the top of the document; $ prefixes are not allowed here (a literal $ key is written \$)`,
		},
		{
			name: "retry_errors without codes",
			src: `connector: a
outbound:
  base_url: https://x.example
  retry:
    retry_errors: { path: error.code, codes: [] }
  actions: { update: {} }
`,
			want: `t.yaml:5:46: retry_errors.codes: expected the platform's error codes worth retrying, e.g. [130429]`,
		},
		{
			name: "auth fields",
			src: `connector: a
outbound:
  base_url: https://x.example
  auth: { type: bearer, token: "${TOKEN:-}", username: me }
  actions: { update: {} }
`,
			want: `t.yaml:4:32: auth type bearer: token is empty (is its environment variable set?)
t.yaml:4:46: auth type bearer does not use "username" (it uses: type, token)`,
		},
		{
			name: "standard-webhooks secret",
			src: `connector: a
outbound:
  base_url: https://x.example
  auth: { type: standard-webhooks, secret: "whsec_not base64!" }
  actions: { update: {} }
`,
			want: `t.yaml:4:44: standard-webhooks secret: expected whsec_ followed by base64 (the signing key), got something else`,
		},
		{
			name: "outbound without actions",
			src:  "connector: a\noutbound:\n  base_url: https://x.example/api?key=1\n",
			want: `t.yaml:3:3: missing required key "actions" (named requests such as update_ticket or send_message)
t.yaml:3:13: base_url: "https://x.example/api?key=1": put query parameters in the action path, not in base_url`,
		},
		{
			name: "duplicate keys in outbound maps",
			src: `connector: a
outbound:
  base_url: https://x.example
  headers:
    X-Team: a
    X-Team: b
  value_maps:
    status:
      open: new
      open: pending
    status: { solved: closed }
  actions:
    update:
      headers: { X-Req: "1", X-Req: "2" }
      capture:
        id: ticket.id
        id: data.id
`,
			want: `t.yaml:6:5: key "X-Team" appears twice (first at line 5, column 5)
t.yaml:10:7: key "open" appears twice (first at line 9, column 7)
t.yaml:11:5: key "status" appears twice (first at line 8, column 5)
t.yaml:14:30: key "X-Req" appears twice (first at line 14, column 18)
t.yaml:17:9: key "id" appears twice (first at line 16, column 9)`,
		},
		{
			name: "header names that differ in case only",
			src: `connector: a
outbound:
  base_url: https://x.example
  headers:
    X-Team: a
    x-team: b
  actions:
    update:
      headers: { X-Req: "1", X-REQ: "2" }
`,
			want: `t.yaml:6:5: header "x-team" is the same as "X-Team" at line 5, column 5 (header names ignore case)
t.yaml:9:30: header "X-REQ" is the same as "X-Req" at line 9, column 18 (header names ignore case)`,
		},
		{
			name: "dedupe payload path syntax",
			src:  "connector: a\ninbound:\n  verify: { scheme: none }\n  dedupe: path:event.#(id==1\n" + minimalEvents,
			want: `t.yaml:4:11: dedupe: invalid payload path "event.#(id==1": unclosed '(' at position 8`,
		},
		{
			name: "dedupe long-form payload path syntax",
			src:  "connector: a\ninbound:\n  verify: { scheme: none }\n  dedupe: { path: 'data.@revers' }\n" + minimalEvents,
			want: `t.yaml:4:19: dedupe: invalid payload path "data.@revers": unknown modifier @revers; did you mean "reverse"?`,
		},
		{
			name: "dedupe path with a mapping prefix",
			src:  "connector: a\ninbound:\n  verify: { scheme: none }\n  dedupe: path:$root.id\n" + minimalEvents,
			want: `t.yaml:4:11: dedupe: invalid payload path "$root.id": a plain path from the top of the document; $ prefixes are not allowed here (a literal $ key is written \$)`,
		},
		{
			name: "reply status not a success",
			src:  "connector: a\ninbound:\n  verify: { scheme: none }\n  reply: { status: 302, content_type: text/xml }\n" + minimalEvents,
			want: `t.yaml:4:20: reply: status 302 is not a success; a webhook taken is answered 2xx (200 to 299)`,
		},
		{
			name: "reply without status",
			src:  "connector: a\ninbound:\n  verify: { scheme: none }\n  reply: { content_type: text/xml }\n" + minimalEvents,
			want: `t.yaml:4:10: reply: missing required key "status" (200 to 299)`,
		},
		{
			name: "reply without content type",
			src:  "connector: a\ninbound:\n  verify: { scheme: none }\n  reply: { status: 200, body: ok }\n" + minimalEvents,
			want: `t.yaml:4:10: reply: missing required key "content_type" (the media type of body, e.g. text/xml)`,
		},
		{
			name: "reply content type not a media type",
			src:  "connector: a\ninbound:\n  verify: { scheme: none }\n  reply: { status: 200, content_type: \"text xml\" }\n" + minimalEvents,
			want: `t.yaml:4:39: reply: content_type "text xml" is not a media type like text/xml: mime: expected slash after first token`,
		},
		{
			name: "reply body with 204",
			src:  "connector: a\ninbound:\n  verify: { scheme: none }\n  reply: { status: 204, content_type: text/plain, body: ok }\n" + minimalEvents,
			want: `t.yaml:4:57: reply: status 204 (No Content) sends no body; drop body or answer 200`,
		},
		{
			name: "reply misspelt key",
			src:  "connector: a\ninbound:\n  verify: { scheme: none }\n  reply: { status: 200, content-type: text/xml }\n" + minimalEvents,
			want: `t.yaml:4:25: unknown key "content-type"; did you mean "content_type"? (valid: body, content_type, status)`,
		},
		{
			name: "reply status not a number",
			src:  "connector: a\ninbound:\n  verify: { scheme: none }\n  reply: { status: ok, content_type: text/xml }\n" + minimalEvents,
			want: `t.yaml:4:20: expected a whole number, got "ok"`,
		},
		{
			name: "unset variable without default",
			src:  "connector: a\noutbound:\n  base_url: ${API_URL}\n  actions: { update: {} }\n",
			want: `t.yaml:3:13: environment variable API_URL is not set (give a default with ${API_URL:-value})`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, errs := tryLoad(t, "t.yaml", tc.src, tc.env)
			if c != nil {
				t.Errorf("Load returned a connector along with errors")
			}
			if got := errorLines(errs); got != tc.want {
				t.Errorf("errors:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestLoadEmpty(t *testing.T) {
	c, errs := Load("e.yaml", nil, LoadOptions{})
	if c != nil || len(errs) != 1 || errs[0].Error() != "e.yaml: empty connector file (expected connector:, inbound: and/or outbound:)" {
		t.Errorf("empty file: %v", errs)
	}
}

// The shipped connectors load with the development defaults, and with real
// secrets from the environment.
func TestShippedInbound(t *testing.T) {
	g := loadShipped(t, "generic", nil)
	if !g.Inbound.Unsigned || g.Inbound.Scheme != "token" || g.Inbound.HandshakeScheme() != "" {
		t.Errorf("generic without GENERIC_TOKEN: unsigned=%v scheme=%q", g.Inbound.Unsigned, g.Inbound.Scheme)
	}
	req := &verify.Request{Method: "POST", Header: http.Header{}, Query: url.Values{}, Body: []byte(`{}`), Now: time.Now()}
	if err := g.Inbound.Verifier.Verify(req); err != nil {
		t.Errorf("unsigned generic refused a post: %v", err)
	}
	g = loadShipped(t, "generic", map[string]string{"GENERIC_TOKEN": "tkn"})
	if g.Inbound.Unsigned {
		t.Error("generic with GENERIC_TOKEN is still unsigned")
	}
	if err := g.Inbound.Verifier.Verify(req); !errors.Is(err, verify.ErrUnauthorized) {
		t.Errorf("generic with a token accepted a post without it: %v", err)
	}
	withHeader := *req
	withHeader.Header = http.Header{"X-Hookline-Token": {"tkn"}}
	withQuery := *req
	withQuery.Query = url.Values{"token": {"tkn"}}
	for _, r := range []*verify.Request{&withHeader, &withQuery} {
		if err := g.Inbound.Verifier.Verify(r); err != nil {
			t.Errorf("generic refused the right token: %v", err)
		}
	}

	w := loadShipped(t, "whatsapp", map[string]string{"WHATSAPP_APP_SECRET": "real-secret"})
	body := readFile(t, fixturesDir+"/whatsapp-cloud-text-message.json")
	signed := &verify.Request{Method: "POST", Header: signHeaders("meta", "real-secret", body, time.Now()), Body: body, Now: time.Now()}
	if err := w.Inbound.Verifier.Verify(signed); err != nil {
		t.Errorf("whatsapp refused a post signed with WHATSAPP_APP_SECRET: %v", err)
	}
	devSigned := &verify.Request{Method: "POST", Header: signHeaders("meta", devWhatsAppSecret, body, time.Now()), Body: body, Now: time.Now()}
	if err := w.Inbound.Verifier.Verify(devSigned); !errors.Is(err, verify.ErrUnauthorized) {
		t.Errorf("whatsapp accepted the development secret although WHATSAPP_APP_SECRET is set: %v", err)
	}
	if w.Inbound.Schema != "whatsapp-cloud-webhook.json" || w.Inbound.Dedupe.Source != DedupeBody {
		t.Errorf("whatsapp inbound %+v", w.Inbound)
	}

	z := loadShipped(t, "zendesk", nil)
	if z.Inbound.Dedupe != (Dedupe{Source: DedupeHeader, Name: "X-Zendesk-Webhook-Invocation-Id"}) || z.Inbound.Unsigned {
		t.Errorf("zendesk inbound %+v", z.Inbound)
	}
	zbody := readFile(t, fixturesDir+"/zendesk-event-user-active-changed.json")
	stale := time.Now().Add(-time.Hour)
	zreq := &verify.Request{Method: "POST", Header: signHeaders("zendesk", devZendeskSecret, zbody, stale), Body: zbody, Now: time.Now()}
	if err := z.Inbound.Verifier.Verify(zreq); !errors.Is(err, verify.ErrUnauthorized) {
		t.Errorf("zendesk accepted a stale signature: %v", err)
	}
}

func TestLoadInboundOptions(t *testing.T) {
	c := loadYAML(t, "i.yaml", `connector: shop
description: in-house shop
inbound:
  verify:
    scheme: hmac
    header: X-Shop-Signature
    secrets: ["${NEW_SECRET:-}", "old-secret"]
    allow_unsigned: true
  schema: slack-event
  dedupe: { path: event_id, window: 24h, fallback_window: 10m }
  body_limit: 256KiB
  handshake: { scheme: slack }
  reply: { status: 200, content_type: "text/plain; charset=utf-8", body: "ok" }
`+minimalEvents, nil)
	in := c.Inbound
	if c.Name != "shop" || c.Description != "in-house shop" || c.File != "i.yaml" || c.Outbound != nil {
		t.Errorf("connector %+v", c)
	}
	if in.Unsigned || in.Scheme != "hmac" || in.Schema != "slack-event.json" || in.BodyLimit != 256<<10 || in.HandshakeScheme() != HandshakeSlack {
		t.Errorf("inbound %+v", in)
	}
	if in.Dedupe != (Dedupe{Source: DedupePath, Name: "event_id", Window: 24 * time.Hour, FallbackWindow: 10 * time.Minute}) {
		t.Errorf("dedupe %+v", in.Dedupe)
	}
	if in.Mapper == nil {
		t.Error("no mapper")
	}
	if r := in.Reply; r == nil || r.Status != 200 || r.ContentType != "text/plain; charset=utf-8" || string(r.Body) != "ok" {
		t.Errorf("reply %+v", r)
	}
	// allow_unsigned with one rotation slot filled: the empty slot is unused,
	// requests must be signed with the other.
	body := []byte(`{"id": 1}`)
	h := http.Header{}
	h.Set("X-Shop-Signature", hmacHex("old-secret", body))
	if err := in.Verifier.Verify(&verify.Request{Method: "POST", Header: h, Body: body, Now: time.Now()}); err != nil {
		t.Errorf("old secret refused: %v", err)
	}
	if err := in.Verifier.Verify(&verify.Request{Method: "POST", Header: http.Header{}, Body: body, Now: time.Now()}); err == nil {
		t.Error("unsigned request accepted although a secret is set")
	}
	c = loadYAML(t, "n.yaml", "connector: open\ninbound:\n  verify: { scheme: none }\n"+minimalEvents, nil)
	if !c.Inbound.Unsigned || c.Inbound.Scheme != "none" || c.Inbound.Reply != nil {
		t.Errorf("scheme none: %+v", c.Inbound)
	}
}

func TestDedupeKey(t *testing.T) {
	body := []byte(`{"id": "evt_1", "detail": {"id": 42, "obj": {"a": 1}}, "empty": ""}`)
	bodyHash := (Dedupe{Source: DedupeBody}).Key(nil, body)
	if len(bodyHash) != 64 || strings.Trim(bodyHash, "0123456789abcdef") != "" {
		t.Fatalf("body hash %q is not SHA-256 hex", bodyHash)
	}
	h := http.Header{}
	h.Set("X-Zendesk-Webhook-Invocation-Id", " inv-7 ")
	cases := []struct {
		name string
		src  string
		h    http.Header
		want string
	}{
		{"header", "header:X-Zendesk-Webhook-Invocation-Id", h, "inv-7"},
		{"header case-insensitive", "header:x-zendesk-webhook-invocation-id", h, "inv-7"},
		{"header non-canonical map key", "header:X-Request-Id", http.Header{"x-request-id": {"rq-1"}}, "rq-1"},
		{"absent header falls back to body hash", "header:Idempotency-Key", h, bodyHash},
		{"path string", "path:id", nil, "evt_1"},
		{"path number", "path:detail.id", nil, "42"},
		{"path object", "path:detail.obj", nil, `{"a": 1}`},
		{"absent path falls back", "path:nope", nil, bodyHash},
		{"empty value falls back", "path:empty", nil, bodyHash},
		{"body", "body", h, bodyHash},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, msg := parseDedupe(tc.src)
			if msg != "" {
				t.Fatal(msg)
			}
			if got := d.Key(tc.h, body); got != tc.want {
				t.Errorf("Key = %q, want %q", got, tc.want)
			}
			if d.String() != tc.src && !strings.EqualFold(d.String(), tc.src) {
				t.Errorf("String() = %q, want %q", d.String(), tc.src)
			}
		})
	}
	if (Dedupe{Source: DedupeBody}).Key(nil, []byte(`{"a":1}`)) == bodyHash {
		t.Error("different bodies share a hash")
	}
}

func TestParseSize(t *testing.T) {
	cases := []struct {
		in   string
		want int64
	}{
		{"1048576", 1 << 20}, {"1MiB", 1 << 20}, {"512KiB", 512 << 10}, {"2 MB", 2_000_000}, {"10KB", 10_000},
		{"1GiB", 1 << 30}, {"100B", 100}, {" 64 KiB ", 64 << 10}, {"1_000", 1000},
	}
	for _, tc := range cases {
		if got, err := ParseSize(tc.in); err != nil || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "0", "-1MiB", "1.5MiB", "MiB", "1 TB", "9223372036854775807GiB", "1e6"} {
		if got, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", bad, got)
		}
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"1MiB", "1048576", "2 MB", "", "x", "99999999999999999999GiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err == nil && n <= 0 {
			t.Fatalf("ParseSize(%q) = %d without error", s, n)
		}
	})
}

func FuzzParseDedupe(f *testing.F) {
	for _, s := range []string{"body", "header:X-Id", "path:detail.id", "path:", "header:bad name", "x"} {
		f.Add(s, []byte(`{"detail": {"id": 1}}`))
	}
	f.Fuzz(func(t *testing.T, src string, body []byte) {
		d, msg := parseDedupe(src)
		if msg != "" {
			return
		}
		if k := d.Key(http.Header{"X-Id": {"v"}}, body); k == "" {
			t.Fatalf("empty dedupe key for %q", src)
		}
	})
}

func BenchmarkDedupeKeyBody(b *testing.B) {
	body := readFile(b, fixturesDir+"/whatsapp-cloud-text-message.json")
	d := Dedupe{Source: DedupeBody}
	b.ReportAllocs()
	for b.Loop() {
		_ = d.Key(nil, body)
	}
}
