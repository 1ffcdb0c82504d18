// Package connectors owns connector files: it compiles one
// configs/connectors/*.yaml file into a Connector with an Inbound half (how a
// platform's webhooks are authenticated, schema-checked, deduplicated,
// answered during handshakes and mapped to events) and an Outbound half (how
// updates decided by rules are rendered into HTTP requests and authenticated
// for the platform's API). Signature schemes live in the verify subpackage,
// mapping in package mapping, payload schemas in package schemas; this
// package ties them to one file. It does no network I/O: delivery sends what
// Render produced, after Authorize.
//
// # Connector files
//
// A file is parsed by yamlconf.Parse (which expands ${ENV} and
// ${ENV:-default}, nested defaults included) and compiled by Load, which
// reports every problem as file:line:column with the nearest valid name:
//
//	connector: zendesk                 # ^[a-z0-9_-]+$; webhooks go to /hooks/zendesk
//	description: ...
//	inbound:
//	  verify:                          # verify.Config, plus allow_unsigned
//	    scheme: zendesk                # hmac|github|meta|standard-webhooks|token|none|zendesk|slack|twilio
//	    secret: "${ZENDESK_WEBHOOK_SECRET}"
//	    allow_unsigned: false          # true: accept unsigned posts while every secret is empty
//	  schema: zendesk-webhook.json     # a payload schema of package schemas (optional)
//	  dedupe: header:X-Zendesk-Webhook-Invocation-Id   # or path:detail.id, body,
//	                                   # or { header|path: ..., body: true, window: 24h };
//	                                   # a path is a plain gjson path, checked like mapping paths
//	  body_limit: 1MiB                 # optional; default the gateway's
//	  handshake: { scheme: meta, verify_token: "${VERIFY_TOKEN}" }   # or { scheme: slack }
//	  events: [...]                    # the mapping (package mapping)
//	outbound:
//	  base_url: https://example.zendesk.com
//	  auth: { type: basic, username: ..., password: ... }
//	  headers: { Accept: application/json }
//	  timeout: 15s
//	  value_maps: { priority: { high: "3" } }
//	  retry: { schedule: [5s, 30s, 2m], jitter: 0.2, max_retry_after: 1h, retry_on: [429, 503] }
//	  concurrency: 16
//	  rate_limit: 10                   # requests per second; burst: 20
//	  breaker: { failures: 5, error_ratio: 0.5, min_requests: 20, window: 30s, cooldown: 30s }
//	  allow_private: false
//	  actions:
//	    update_ticket: { method: PUT, path: ..., headers: {...}, body: ..., success: [200], capture: { id: ticket.id },
//	                     fields: [status, priority, owner, tags, custom.*] }
//
// An empty secret is a config error at the secret's position, unless
// allow_unsigned is true: then, while every secret is empty, requests are
// accepted unverified and Inbound.Unsigned is true so that the gateway warns
// at start-up. Once a secret is set, signatures are required.
//
// # Dedupe and handshakes
//
// Dedupe.Key returns the request's dedupe key: a header's value, a payload
// path's value (gjson), or the SHA-256 of the body; an absent header or path
// falls back to the body hash, so an exact retry is always recognized.
//
// Inbound.Handshake answers Meta's GET verification (hub.mode, hub.verify_token
// compared in constant time, hub.challenge echoed as text/plain; 403 on a
// wrong token) and Slack's url_verification POST (the gateway calls it for
// POSTs only after the signature verified).
//
// # Outbound rendering
//
// Render turns an event.Update into a Request: update_entity uses the action
// "update_<entity>" (update_ticket) or else "update"; send_message uses
// "send_message"; call_webhook is rendered from the update alone (no base
// URL, no auth); log is not HTTP (ErrNotHTTP). The path is appended to
// base_url (a rendered absolute URL must stay on base_url's host and under
// its path, and no path may hold a dot segment "." or ".."). Headers are
// the connector's defaults overridden by the action's. A body gets
// Content-Type application/json unless a header says otherwise, and a JSON body
// must render valid JSON or Render fails with an error naming the action (its
// excerpt of the body with credentials redacted). An update action that lists
// its fields refuses an update setting anything else, or nothing
// (Action.CheckUpdate); any update action refuses to send a JSON body of
// nothing but empty objects ({"ticket": {}}): a change is never dropped
// silently.
//
// Templates are Go text/template with %%NAME%% as shorthand for
// {{ .Var "NAME" }}. Dot is a *TemplateData:
//
//	.Reference .Entity .Connector .DeliveryID
//	.Set            the update's fields with the connector's value maps applied
//	.AddTags .RemoveTags   never nil
//	.Message        .Message.Text, .Message.To (send_message)
//	.Update         the raw event.Update (.Update.RuleID, .Update.EventID, .Update.Set, ...)
//	.Vars           the event's template variables
//	.Var "NAME"     a variable; an unknown one fails the render (never a hole in a request)
//	.Field "status" a value-mapped field set by the update, "" when not set
//	.Has "status"   whether the update sets it
//	.Custom         the custom.* fields, keyed without the prefix
//	.Number v       v as a JSON number literal, nil (a field cleared with null) as null;
//	                fails for anything else
//	.PathEscape v   v escaped as one URL path segment ("." and ".." encoded);
//	                .QueryEscape v for a query value
//
// and the functions json (JSON-encode any value: strings are quoted and
// escaped), lower, upper, trim, default, join.
//
// Build JSON bodies by writing the structure literally and every value with
// json (or .Number for numeric ids), never by pasting raw text. To emit only
// the keys an update sets, keep a separator variable:
//
//	body: |
//	  {"ticket": {
//	    {{- $sep := "" }}
//	    {{- if .Has "status" }}{{ $sep }}"status": {{ json (.Field "status") }}{{ $sep = "," }}{{ end }}
//	    {{- if .Has "group" }}{{ $sep }}"group_id": {{ .Number (.Field "group") }}{{ $sep = "," }}{{ end }}
//	    {{- if .AddTags }}{{ $sep }}"additional_tags": {{ json .AddTags }}{{ $sep = "," }}{{ end }}
//	  }}
//
// Value maps translate our normalized values into the platform's
// (value_maps: { status: { on_hold: hold } }); values a map does not list
// pass through unchanged.
//
// # Auth and signing
//
// Authorize applies auth at send time, after the request was read from the
// outbox, so that credentials are never stored with it: basic, bearer, header
// (any name and value), hmac (the configured header, default
// X-Hookline-Signature, carries prefix + hex or base64 HMAC of the body, the
// way the inbound hmac scheme checks it) and standard-webhooks v1
// (webhook-id = the delivery id, webhook-timestamp = now,
// webhook-signature = v1,<base64 HMAC-SHA256 of id.timestamp.body>).
// call_webhook requests get no auth: their URL is arbitrary.
package connectors
