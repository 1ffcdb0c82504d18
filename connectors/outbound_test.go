package connectors

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/event"
)

// captured is one request a test server received.
type captured struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   []byte
}

// sink starts a loopback server that records requests and answers status
// with body.
func sink(t *testing.T, status int, body string) (*httptest.Server, <-chan captured) {
	t.Helper()
	ch := make(chan captured, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ch <- captured{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Body: b}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

// send renders u through o, authorizes it and sends it the way delivery
// does; it returns what the server received and the response status.
func send(t *testing.T, o *Outbound, u *event.Update, deliveryID string, ch <-chan captured) (captured, int) {
	t.Helper()
	req, err := o.Render(u, deliveryID, nil)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	hreq, err := http.NewRequest(req.Method, req.URL, bytes.NewReader(req.Body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range req.Headers {
		hreq.Header.Set(k, v)
	}
	if err := o.Authorize(hreq, req.Body, req.Action, deliveryID, time.Now()); err != nil {
		t.Fatalf("Authorize: %v", err)
	}
	client := &http.Client{Timeout: o.Timeout}
	resp, err := client.Do(hreq)
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	resp.Body.Close()
	select {
	case c := <-ch:
		return c, resp.StatusCode
	case <-time.After(10 * time.Second):
		t.Fatal("the server received nothing")
	}
	return captured{}, 0
}

// jsonEqual compares a body with the expected JSON value.
func jsonEqual(t *testing.T, body []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(body, &g); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, body)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad expectation: %v", err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("body\n%s\nwant\n%s", body, want)
	}
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func TestShippedZendeskUpdateTicket(t *testing.T) {
	srv, ch := sink(t, 200, `{"ticket": {"id": 5158, "updated_at": "2026-03-02T12:00:01Z"}}`)
	c := loadShipped(t, "zendesk", map[string]string{
		"ZENDESK_BASE_URL":  srv.URL,
		"ZENDESK_EMAIL":     "ops@acme.test",
		"ZENDESK_API_TOKEN": "tok-123",
	})
	o := c.Outbound
	if o.BaseURL != srv.URL || o.RateLimit != 10 || o.Burst != 20 || o.Timeout != DefaultTimeout {
		t.Errorf("outbound settings: base %q rate %v burst %d timeout %v", o.BaseURL, o.RateLimit, o.Burst, o.Timeout)
	}
	cases := []struct {
		name string
		u    event.Update
		want string
	}{
		{
			name: "everything",
			u: event.Update{
				Kind: event.KindUpdateEntity, RuleID: "r1", EventID: "ev1", Connector: "zendesk", Entity: "ticket", Reference: "5158",
				Set: map[string]any{
					"status": "on_hold", "priority": "urgent", "group": "360000111", "owner": float64(8447388090494),
					"subject": `Refund "asap"`, "custom.360005": "gold", "custom.360001": true,
				},
				AddTags:    []string{"abandoned_conversation", "vip"},
				RemoveTags: []string{"waiting"},
			},
			want: `{"ticket": {"status": "hold", "priority": "urgent", "group_id": 360000111, "assignee_id": 8447388090494,
				"subject": "Refund \"asap\"", "additional_tags": ["abandoned_conversation", "vip"], "remove_tags": ["waiting"],
				"custom_fields": [{"id": 360001, "value": true}, {"id": 360005, "value": "gold"}]}}`,
		},
		{
			name: "only status",
			u:    event.Update{Kind: event.KindUpdateEntity, RuleID: "r2", Connector: "zendesk", Entity: "ticket", Reference: "5158", Set: map[string]any{"status": "solved"}},
			want: `{"ticket": {"status": "solved"}}`,
		},
		{
			name: "only tags",
			u:    event.Update{Kind: event.KindUpdateEntity, RuleID: "r3", Connector: "zendesk", Entity: "ticket", Reference: "5158", AddTags: []string{"abandoned_conversation"}},
			want: `{"ticket": {"additional_tags": ["abandoned_conversation"]}}`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, status := send(t, o, &tc.u, "dlv-"+tc.name, ch)
			if status != 200 || !o.Actions["update_ticket"].IsSuccess(status) {
				t.Errorf("status %d", status)
			}
			if got.Method != http.MethodPut || got.Path != "/api/v2/tickets/5158.json" {
				t.Errorf("request %s %s", got.Method, got.Path)
			}
			if a := got.Header.Get("Authorization"); a != basic("ops@acme.test/token", "tok-123") {
				t.Errorf("Authorization %q", a)
			}
			if ct := got.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if a := got.Header.Get("Accept"); a != "application/json" {
				t.Errorf("Accept %q", a)
			}
			jsonEqual(t, got.Body, tc.want)
		})
	}
	if got := o.Actions["update_ticket"].Capture["updated_at"]; got != "ticket.updated_at" {
		t.Errorf("capture = %q", got)
	}
}

func TestShippedZendeskDefaults(t *testing.T) {
	c := loadShipped(t, "zendesk", nil)
	if c.Outbound.BaseURL != "https://example.zendesk.com" {
		t.Errorf("default base_url %q", c.Outbound.BaseURL)
	}
	c = loadShipped(t, "zendesk", map[string]string{"ZENDESK_SUBDOMAIN": "acme"})
	if c.Outbound.BaseURL != "https://acme.zendesk.com" {
		t.Errorf("base_url from ZENDESK_SUBDOMAIN: %q", c.Outbound.BaseURL)
	}
	if c.Outbound.Auth.Username != "agent@example.com/token" || c.Outbound.Auth.Password != "dev-insecure-zendesk-api-token" {
		t.Errorf("default auth %+v", c.Outbound.Auth)
	}
}

func TestShippedZendeskRenderErrors(t *testing.T) {
	c := loadShipped(t, "zendesk", nil)
	o := c.Outbound
	_, err := o.Render(&event.Update{Kind: event.KindUpdateEntity, Connector: "zendesk", Entity: "ticket", Reference: "1", Set: map[string]any{"owner": "senior_support"}}, "d1", nil)
	if !errors.Is(err, ErrRender) || !strings.Contains(err.Error(), "action update_ticket") || !strings.Contains(err.Error(), `"senior_support" is not a number`) {
		t.Errorf("owner name without a value map: %v", err)
	}
	_, err = o.Render(&event.Update{Kind: event.KindSendMessage, Connector: "zendesk", Reference: "1", Message: &event.Message{Text: "hi"}}, "d1", nil)
	if !errors.Is(err, ErrUnknownAction) || !strings.Contains(err.Error(), "connector zendesk") || !strings.Contains(err.Error(), "send_message") {
		t.Errorf("send_message on zendesk: %v", err)
	}
	_, err = o.Render(&event.Update{Kind: event.KindUpdateEntity, Connector: "zendesk", Entity: "user", Reference: "1"}, "d1", nil)
	if !errors.Is(err, ErrUnknownAction) || !strings.Contains(err.Error(), "update_user or update") {
		t.Errorf("update of an entity without action: %v", err)
	}
	// A reference can never leave its path segment.
	req, err := o.Render(&event.Update{Kind: event.KindUpdateEntity, Connector: "zendesk", Entity: "ticket", Reference: "../users/1", Set: map[string]any{"status": "open"}}, "d1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if req.URL != "https://example.zendesk.com/api/v2/tickets/..%2Fusers%2F1.json" {
		t.Errorf("escaped URL %q", req.URL)
	}
}

func TestShippedWhatsAppSendMessage(t *testing.T) {
	srv, ch := sink(t, 200, `{"messaging_product":"whatsapp","messages":[{"id":"wamid.OUT1"}]}`)
	c := loadShipped(t, "whatsapp", map[string]string{"WHATSAPP_GRAPH_URL": srv.URL + "/v21.0", "WHATSAPP_ACCESS_TOKEN": "EAAG-test"})
	o := c.Outbound
	vars := map[string]string{"PHONE_NUMBER_ID": "106540352242922", "CUSTOMER_WA_ID": "16505551234"}
	cases := []struct {
		name string
		msg  event.Message
		to   string
	}{
		{"to the chat", event.Message{Text: "We're on it \u2014 \"order\" 1042\n"}, "16505551234"},
		{"explicit recipient", event.Message{Text: "hello", To: "393331234567"}, "393331234567"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := &event.Update{Kind: event.KindSendMessage, RuleID: "ack", Connector: "whatsapp", Entity: "chat", Reference: "16505551234", Message: &tc.msg, Vars: vars}
			got, status := send(t, o, u, "dlv-1", ch)
			if status != 200 {
				t.Errorf("status %d", status)
			}
			if got.Method != http.MethodPost || got.Path != "/v21.0/106540352242922/messages" {
				t.Errorf("request %s %s", got.Method, got.Path)
			}
			if a := got.Header.Get("Authorization"); a != "Bearer EAAG-test" {
				t.Errorf("Authorization %q", a)
			}
			want, _ := json.Marshal(map[string]any{
				"messaging_product": "whatsapp", "recipient_type": "individual", "to": tc.to, "type": "text",
				"text": map[string]any{"preview_url": false, "body": tc.msg.Text},
			})
			jsonEqual(t, got.Body, string(want))
		})
	}
	_, err := o.Render(&event.Update{Kind: event.KindSendMessage, Connector: "whatsapp", Reference: "1", Message: &event.Message{Text: "x"}}, "d", nil)
	if !errors.Is(err, ErrRender) || !strings.Contains(err.Error(), "action send_message") || !strings.Contains(err.Error(), `unknown variable "PHONE_NUMBER_ID"`) {
		t.Errorf("send without PHONE_NUMBER_ID: %v", err)
	}
}

func TestShippedGenericOutbound(t *testing.T) {
	srv, ch := sink(t, 200, `{"status":"success"}`)
	c := loadShipped(t, "generic", map[string]string{"GENERIC_TARGET_URL": srv.URL + "/catch/123"})
	o := c.Outbound
	if !o.AllowPrivate {
		t.Error("the generic example must allow its loopback default")
	}
	u := &event.Update{
		Kind: event.KindUpdateEntity, RuleID: "escalate", EventID: "01EV", Connector: "generic", Entity: "ticket", Reference: "T-1",
		Set: map[string]any{"priority": "high"}, AddTags: []string{"escalated"}, Vars: map[string]string{"REFERENCE": "T-1"},
	}
	got, _ := send(t, o, u, "01DLV", ch)
	if got.Method != http.MethodPost || got.Path != "/catch/123" {
		t.Errorf("request %s %s", got.Method, got.Path)
	}
	if got.Header.Get("Authorization") != "" || got.Header.Get("X-Hookline-Rule") != "escalate" {
		t.Errorf("headers %v", got.Header)
	}
	jsonEqual(t, got.Body, `{"kind": "update_entity", "delivery_id": "01DLV", "rule": "escalate", "event_id": "01EV", "connector": "generic",
		"entity": "ticket", "reference": "T-1", "set": {"priority": "high"}, "add_tags": ["escalated"], "remove_tags": [],
		"vars": {"REFERENCE": "T-1"}}`)

	u = &event.Update{Kind: event.KindSendMessage, RuleID: "reply", EventID: "01EW", Connector: "generic", Entity: "chat", Reference: "C-9", Message: &event.Message{Text: "thanks"}}
	got, _ = send(t, o, u, "01DLW", ch)
	jsonEqual(t, got.Body, `{"kind": "send_message", "delivery_id": "01DLW", "rule": "reply", "event_id": "01EW", "entity": "chat",
		"reference": "C-9", "to": "", "text": "thanks", "vars": {}}`)
}

func TestRenderKinds(t *testing.T) {
	c := loadShipped(t, "generic", nil)
	o := c.Outbound
	if _, err := o.Render(&event.Update{Kind: event.KindLog, Log: &event.LogLine{File: "a.log", Line: "x"}}, "d", nil); !errors.Is(err, ErrNotHTTP) {
		t.Errorf("log: %v", err)
	}
	if _, err := o.Render(&event.Update{Kind: "teleport"}, "d", nil); !errors.Is(err, ErrUnknownKind) {
		t.Errorf("unknown kind: %v", err)
	}
	if _, err := (*Outbound)(nil).Render(&event.Update{Kind: event.KindSendMessage, Connector: "x"}, "d", nil); !errors.Is(err, ErrNoOutbound) {
		t.Errorf("nil outbound: %v", err)
	}
	wh := &event.Update{Kind: event.KindCallWebhook, RuleID: "notify", Webhook: &event.WebhookCall{
		URL: "https://example.org/notify?x=1", Headers: map[string]string{"x-custom": "1"}, Body: "plain text",
	}}
	for _, out := range []*Outbound{o, nil} {
		req, err := out.Render(wh, "d", nil)
		if err != nil {
			t.Fatalf("call_webhook: %v", err)
		}
		want := &Request{Method: "POST", URL: "https://example.org/notify?x=1", Headers: map[string]string{"X-Custom": "1"}, Body: []byte("plain text")}
		if !reflect.DeepEqual(req, want) {
			t.Errorf("call_webhook = %+v, want %+v", req, want)
		}
		// No auth for an arbitrary URL.
		hreq, _ := http.NewRequest(req.Method, req.URL, nil)
		if err := out.Authorize(hreq, req.Body, req.Action, "d", time.Now()); err != nil || len(hreq.Header) != 0 {
			t.Errorf("call_webhook authorized: %v %v", err, hreq.Header)
		}
	}
	for _, bad := range []string{"ftp://example.org/x", "/relative", "http://"} {
		_, err := o.Render(&event.Update{Kind: event.KindCallWebhook, Webhook: &event.WebhookCall{URL: bad}}, "d", nil)
		if !errors.Is(err, ErrRender) {
			t.Errorf("call_webhook %q: %v", bad, err)
		}
	}
	_, err := o.Render(&event.Update{Kind: event.KindCallWebhook, Webhook: &event.WebhookCall{URL: "https://x.org", Headers: map[string]string{"X-A": "1\r\nX-B: 2"}}}, "d", nil)
	if !errors.Is(err, ErrRender) {
		t.Errorf("header injection: %v", err)
	}
}

// outboundYAML builds a connector file with only an outbound section.
func outboundFile(section string) string {
	return "connector: t\noutbound:\n" + section
}

func TestRenderTemplates(t *testing.T) {
	src := outboundFile(`  base_url: https://api.example.com/v1/
  value_maps:
    priority: { high: "3", low: "1" }
  actions:
    update:
      method: patch
      path: 'items/{{ .PathEscape .Reference }}?via={{ .QueryEscape (.Var "SOURCE") }}'
      headers:
        X-Delivery: "{{ .DeliveryID }}"
        X-Has-Status: '{{ .Has "status" }}'
      body: '{"p": {{ json (.Field "priority") }}, "n": {{ .Number (.Field "priority") }}, "raw": {{ json .Update.Set.priority }}, "missing": {{ json (.Field "nope") }}}'
    send_message:
      headers:
        Content-Type: text/plain
      body: 'Hello {{ .Message.Text }'
`)
	_, errs := tryLoad(t, "t.yaml", src, nil)
	if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), "t.yaml:17:13: body: template: 1: unexpected \"}\" in operand") {
		t.Fatalf("broken template: %v", errs)
	}
	src = strings.Replace(src, "{{ .Message.Text }'", "{{ .Message.Text }} {'", 1)
	c := loadYAML(t, "t.yaml", src, nil)
	o := c.Outbound
	req, err := o.Render(&event.Update{Kind: event.KindUpdateEntity, Entity: "item", Reference: "a b/c", Set: map[string]any{"priority": "high"}, Vars: map[string]string{"SOURCE": "x&y"}}, "D1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if req.Method != "PATCH" || req.URL != "https://api.example.com/v1/items/a%20b%2Fc?via=x%26y" || req.Action != "update" {
		t.Errorf("request %s %s (%s)", req.Method, req.URL, req.Action)
	}
	if req.Headers["X-Delivery"] != "D1" || req.Headers["X-Has-Status"] != "false" || req.Headers["Content-Type"] != "application/json" {
		t.Errorf("headers %v", req.Headers)
	}
	jsonEqual(t, req.Body, `{"p": "3", "n": 3, "raw": "high", "missing": ""}`)

	// A plain-text body is not checked as JSON.
	req, err = o.Render(&event.Update{Kind: event.KindSendMessage, Reference: "r", Message: &event.Message{Text: "x"}}, "D2", nil)
	if err != nil || string(req.Body) != "Hello x {" {
		t.Errorf("text body %q %v", req.Body, err)
	}
	// A JSON body that is not JSON is refused, naming the action.
	c2 := loadYAML(t, "t2.yaml", outboundFile(`  base_url: https://api.example.com
  actions:
    update: { body: '{"name": "{{ .Field "name" }}"}' }
`), nil)
	_, err = c2.Outbound.Render(&event.Update{Kind: event.KindUpdateEntity, Reference: "r", Set: map[string]any{"name": `Ann "The Hammer"`}}, "D", nil)
	if !errors.Is(err, ErrRender) || !strings.Contains(err.Error(), "connector t: action update") || !strings.Contains(err.Error(), "not valid JSON") {
		t.Errorf("invalid JSON body: %v", err)
	}
	// A rendered absolute URL may not leave the base URL's host.
	c3 := loadYAML(t, "t3.yaml", outboundFile(`  base_url: https://api.example.com
  actions:
    update: { path: '{{ .Var "NEXT" }}' }
`), nil)
	_, err = c3.Outbound.Render(&event.Update{Kind: event.KindUpdateEntity, Reference: "r", Vars: map[string]string{"NEXT": "https://evil.example.net/x"}}, "D", nil)
	if !errors.Is(err, ErrRender) || !strings.Contains(err.Error(), "leaves the connector's base_url") {
		t.Errorf("host escape: %v", err)
	}
	req, err = c3.Outbound.Render(&event.Update{Kind: event.KindUpdateEntity, Reference: "r", Vars: map[string]string{"NEXT": "https://api.example.com/next?page=2"}}, "D", nil)
	if err != nil || req.URL != "https://api.example.com/next?page=2" {
		t.Errorf("same-host absolute URL: %v %v", req, err)
	}
}

func TestOutboundDefaultsAndOverrides(t *testing.T) {
	c := loadYAML(t, "d.yaml", outboundFile(`  base_url: https://api.example.com
  actions: { update: {} }
`), nil)
	o := c.Outbound
	if o.Timeout != 15*time.Second || o.Concurrency != 16 || o.RateLimit != 0 || o.Burst != 1 || o.AllowPrivate || o.Auth.Type != AuthNone {
		t.Errorf("defaults: %+v", o)
	}
	if !reflect.DeepEqual(o.Retry, DefaultRetryPolicy()) || !reflect.DeepEqual(o.Breaker, DefaultBreakerConfig()) {
		t.Errorf("retry %+v breaker %+v", o.Retry, o.Breaker)
	}
	if len(o.Retry.Schedule) != 10 || o.Retry.Schedule[9] != 24*time.Hour {
		t.Errorf("default schedule %v", o.Retry.Schedule)
	}
	a := o.Actions["update"]
	if a.Method != "POST" || !a.IsSuccess(204) || a.IsSuccess(301) || a.IsSuccess(404) {
		t.Errorf("default action %+v", a)
	}
	c = loadYAML(t, "o.yaml", outboundFile(`  base_url: http://10.0.0.5:8080/api
  timeout: 3s
  concurrency: 4
  rate_limit: 2.5
  allow_private: true
  retry: { schedule: [1s, 1m], jitter: 0, max_retry_after: 10m, retry_on: [429, 503] }
  breaker: { failures: 3, error_ratio: 0.25, min_requests: 8, window: 1m, cooldown: 2d }
  actions:
    update: { method: DELETE, success: [200, 404] }
`), nil)
	o = c.Outbound
	want := RetryPolicy{Schedule: []time.Duration{time.Second, time.Minute}, Jitter: 0, MaxRetryAfter: 10 * time.Minute, RetryOn: []int{429, 503}}
	if !reflect.DeepEqual(o.Retry, want) {
		t.Errorf("retry %+v", o.Retry)
	}
	if (o.Breaker != BreakerConfig{Failures: 3, ErrorRatio: 0.25, MinRequests: 8, Window: time.Minute, Cooldown: 48 * time.Hour}) {
		t.Errorf("breaker %+v", o.Breaker)
	}
	if o.Timeout != 3*time.Second || o.Concurrency != 4 || o.RateLimit != 2.5 || o.Burst != 3 || !o.AllowPrivate {
		t.Errorf("overrides %+v", o)
	}
	if a := o.Actions["update"]; a.Method != "DELETE" || !a.IsSuccess(404) || a.IsSuccess(201) {
		t.Errorf("action %+v", a)
	}
	c = loadYAML(t, "n.yaml", outboundFile(`  base_url: https://x.example
  retry: { schedule: [] }
  actions: { update: {} }
`), nil)
	if s := c.Outbound.Retry.Schedule; s == nil || len(s) != 0 {
		t.Errorf("schedule: [] must mean no durable retries, got %#v", s)
	}
}

func BenchmarkRenderZendeskUpdate(b *testing.B) {
	c := loadShipped(b, "zendesk", nil)
	u := &event.Update{
		Kind: event.KindUpdateEntity, Connector: "zendesk", Entity: "ticket", Reference: "5158",
		Set: map[string]any{"status": "solved", "priority": "high"}, AddTags: []string{"abandoned_conversation"},
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Outbound.Render(u, "01DLV", nil); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzRenderJSONBodies: whatever text rules put in an update, the shipped
// JSON bodies stay valid JSON and carry the text unchanged.
func FuzzRenderJSONBodies(f *testing.F) {
	f.Add("solved", `Refund "asap"`, "vip", "hello\n\u2028</script>")
	f.Add("", "", "", "")
	f.Add("on_hold", "\x00\xff", "a,b", `{{ .Reference }}`)
	z := loadShipped(f, "zendesk", nil).Outbound
	w := loadShipped(f, "whatsapp", nil).Outbound
	f.Fuzz(func(t *testing.T, status, subject, tag, text string) {
		u := &event.Update{Kind: event.KindUpdateEntity, Entity: "ticket", Reference: "1",
			Set: map[string]any{"status": status, "subject": subject}, AddTags: []string{tag}}
		req, err := z.Render(u, "d", nil)
		if err != nil {
			t.Fatalf("zendesk: %v", err)
		}
		var zb struct {
			Ticket struct {
				Status, Subject string
				AdditionalTags  []string `json:"additional_tags"`
			}
		}
		if err := json.Unmarshal(req.Body, &zb); err != nil {
			t.Fatalf("zendesk body is not JSON: %v\n%s", err, req.Body)
		}
		wantStatus := event.String(z.MapValue("status", status))
		if zb.Ticket.Status != viaJSON(wantStatus) || zb.Ticket.Subject != viaJSON(subject) ||
			len(zb.Ticket.AdditionalTags) != 1 || zb.Ticket.AdditionalTags[0] != viaJSON(tag) {
			t.Fatalf("zendesk body does not carry the values: %s", req.Body)
		}
		m := &event.Update{Kind: event.KindSendMessage, Reference: "1", Message: &event.Message{Text: text}, Vars: map[string]string{"PHONE_NUMBER_ID": "1"}}
		req, err = w.Render(m, "d", nil)
		if err != nil {
			t.Fatalf("whatsapp: %v", err)
		}
		var wb struct{ Text struct{ Body string } }
		if err := json.Unmarshal(req.Body, &wb); err != nil || wb.Text.Body != viaJSON(text) {
			t.Fatalf("whatsapp body %s: %v", req.Body, err)
		}
	})
}

// viaJSON is s after a JSON round trip (invalid UTF-8 bytes become U+FFFD).
func viaJSON(s string) string {
	b, _ := json.Marshal(s)
	var out string
	_ = json.Unmarshal(b, &out)
	return out
}

// TestShippedUpdateActionsRefuseChangesTheyCannotCarry: an update setting a
// field the shipped update action does not carry (a rule's set_channel or
// set_category on Zendesk) fails the render, naming the field, instead of
// sending an update without it ({"ticket": {}}) that would be recorded as a
// success.
func TestShippedUpdateActionsRefuseChangesTheyCannotCarry(t *testing.T) {
	tags := []string{"vip"}
	cases := []struct {
		connector, entity string
		set               map[string]any
		addTags           []string
		want              string
	}{
		{"zendesk", "ticket", map[string]any{"channel": "email"}, nil, "cannot set channel"},
		{"zendesk", "ticket", map[string]any{"category": "billing"}, nil, "cannot set category"},
		{"zendesk", "ticket", map[string]any{"ticket_type": "incident"}, nil, "cannot set ticket_type"},
		{"zendesk", "ticket", map[string]any{"status": "open", "channel": "email", "category": "billing"}, nil, "cannot set category, channel"},
		{"zendesk", "ticket", nil, nil, "the update changes nothing"},
		{"freshdesk", "ticket", map[string]any{"channel": "email"}, nil, "cannot set channel"},
		{"freshdesk", "ticket", map[string]any{"category": "billing"}, nil, "cannot set category"},
		{"spoki", "ticket", map[string]any{"channel": "email"}, nil, "cannot set channel"},
		{"spoki", "ticket", map[string]any{"status": "open"}, tags, "cannot add or remove tags"},
		{"intercom", "chat", map[string]any{"priority": "high"}, nil, "cannot set priority"},
		{"intercom", "chat", nil, tags, "cannot add or remove tags"},
	}
	for _, tc := range cases {
		o := loadShipped(t, tc.connector, nil).Outbound
		u := &event.Update{Kind: event.KindUpdateEntity, Connector: tc.connector, Entity: tc.entity, Reference: "5158", Set: tc.set, AddTags: tc.addTags,
			Vars: map[string]string{"CUSTOMER_PHONE": "+39333"}}
		req, err := o.Render(u, "d", &event.Snapshot{Fields: map[string]any{"tags": []any{"new"}}})
		if !errors.Is(err, ErrRender) || !strings.Contains(err.Error(), tc.want) || req != nil {
			body := ""
			if req != nil {
				body = string(req.Body)
			}
			t.Errorf("%s %v tags %v: Render = %s, %v; want no request and an error containing %q", tc.connector, tc.set, tc.addTags, body, err, tc.want)
		}
	}
	// What the actions carry still renders, custom fields included.
	for _, tc := range []struct {
		connector string
		set       map[string]any
		want      string
	}{
		{"zendesk", map[string]any{"custom.360005": "gold"}, `{"ticket": {"custom_fields": [{"id": 360005, "value": "gold"}]}}`},
		{"freshdesk", map[string]any{"ticket_type": "Incident", "custom.cf_region": "EU"}, `{"type": "Incident", "custom_fields": {"cf_region": "EU"}}`},
	} {
		o := loadShipped(t, tc.connector, nil).Outbound
		req, err := o.Render(&event.Update{Kind: event.KindUpdateEntity, Connector: tc.connector, Entity: "ticket", Reference: "5158", Set: tc.set}, "d", nil)
		if err != nil {
			t.Fatalf("%s %v: %v", tc.connector, tc.set, err)
		}
		jsonEqual(t, req.Body, tc.want)
	}
}

// TestShippedUpdateActionsUnassign: a rule clears the owner or group with
// null (set_owner: null); the platforms unassign with JSON null (Zendesk
// assignee_id / group_id, Freshdesk responder_id / group_id) or "0"
// (Intercom).
func TestShippedUpdateActionsUnassign(t *testing.T) {
	cases := []struct {
		connector, entity, field string
		want                     string
	}{
		{"zendesk", "ticket", "owner", `{"ticket": {"assignee_id": null}}`},
		{"zendesk", "ticket", "group", `{"ticket": {"group_id": null}}`},
		{"freshdesk", "ticket", "owner", `{"responder_id": null}`},
		{"freshdesk", "ticket", "group", `{"group_id": null}`},
		{"intercom", "chat", "owner", `{"message_type": "assignment", "type": "admin", "admin_id": "dev-intercom-admin-id", "assignee_id": "0"}`},
		{"intercom", "chat", "group", `{"message_type": "assignment", "type": "team", "admin_id": "dev-intercom-admin-id", "assignee_id": "0"}`},
	}
	for _, tc := range cases {
		o := loadShipped(t, tc.connector, nil).Outbound
		u := &event.Update{Kind: event.KindUpdateEntity, Connector: tc.connector, Entity: tc.entity, Reference: "5158", Set: map[string]any{tc.field: nil}}
		req, err := o.Render(u, "d", nil)
		if err != nil {
			t.Errorf("%s: clear %s: %v", tc.connector, tc.field, err)
			continue
		}
		jsonEqual(t, req.Body, tc.want)
	}
}

// TestShippedZendeskRetriesConflicts: Zendesk answers 409 Conflict when two
// updates of a ticket collide and asks to retry; the connector retries it,
// and keeps retrying the default statuses.
func TestShippedZendeskRetriesConflicts(t *testing.T) {
	got := loadShipped(t, "zendesk", nil).Outbound.Retry
	for _, status := range append([]int{409}, DefaultRetryPolicy().RetryOn...) {
		if !slices.Contains(got.RetryOn, status) {
			t.Errorf("zendesk retry_on %v lacks %d", got.RetryOn, status)
		}
	}
	if !slices.Equal(got.Schedule, DefaultRetryPolicy().Schedule) {
		t.Errorf("zendesk retry schedule %v, want the default", got.Schedule)
	}
}

// TestShippedSpokiNeedsCustomerPhone: Spoki's automation runs for a
// contact; an event without CUSTOMER_PHONE fails the render instead of
// starting it with "phone": "".
func TestShippedSpokiNeedsCustomerPhone(t *testing.T) {
	o := loadShipped(t, "spoki", nil).Outbound
	u := &event.Update{Kind: event.KindUpdateEntity, Connector: "spoki", Entity: "ticket", Reference: "ORD-1234",
		Set: map[string]any{"status": "resolved"}, Vars: map[string]string{"TICKET_REFERENCE": "ORD-1234"}}
	req, err := o.Render(u, "d", nil)
	if !errors.Is(err, ErrRender) || !strings.Contains(err.Error(), `unknown variable "CUSTOMER_PHONE"`) {
		t.Errorf("Spoki update without a contact phone: %v, %v", req, err)
	}
	u.Vars["CUSTOMER_PHONE"] = "+39333"
	req, err = o.Render(u, "d", nil)
	if err != nil {
		t.Fatal(err)
	}
	var body struct{ Phone string }
	if err := json.Unmarshal(req.Body, &body); err != nil || body.Phone != "+39333" {
		t.Errorf("phone %q (%v) in %s", body.Phone, err, req.Body)
	}
}

// TestShippedActionsRefuseDotSegments: a reference or variable "." or ".."
// would be a dot segment that the target's server (or a proxy) resolves,
// moving the request to another endpoint (PUT /api/v2/tickets/.. is PUT
// /api/v2). Every shipped action refuses to render it.
func TestShippedActionsRefuseDotSegments(t *testing.T) {
	outs := shippedOutbounds(t)
	vars := map[string]string{"PHONE_NUMBER_ID": "..", "BUSINESS_ADDRESS": "whatsapp:+15550001111", "CUSTOMER_PHONE": "+1"}
	cases := []struct {
		conn string
		u    *event.Update
	}{
		{"freshdesk", &event.Update{Kind: event.KindSendMessage, Entity: "ticket", Reference: "..", Message: &event.Message{Text: "hi"}, Vars: vars}},
		{"freshdesk", &event.Update{Kind: event.KindUpdateEntity, Entity: "ticket", Reference: "..", Set: map[string]any{"status": "open"}, Vars: vars}},
		{"intercom", &event.Update{Kind: event.KindSendMessage, Entity: "chat", Reference: "..", Message: &event.Message{Text: "hi"}, Vars: vars}},
		{"intercom", &event.Update{Kind: event.KindSendMessage, Entity: "chat", Reference: "1", Message: &event.Message{Text: "hi", To: "."}, Vars: vars}},
		{"intercom", &event.Update{Kind: event.KindUpdateEntity, Entity: "chat", Reference: "..", Set: map[string]any{"status": "open"}, Vars: vars}},
		{"whatsapp", &event.Update{Kind: event.KindSendMessage, Entity: "chat", Reference: "+1", Message: &event.Message{Text: "hi"}, Vars: vars}},
	}
	for _, c := range cases {
		o := outs[c.conn]
		if o == nil {
			t.Fatalf("no outbound %s", c.conn)
		}
		req, err := o.Render(c.u, "01DLV", nil)
		if !errors.Is(err, ErrRender) || !strings.Contains(err.Error(), "dot segment") {
			url := ""
			if req != nil {
				url = req.URL
			}
			t.Errorf("%s %s reference %q: Render = %q, %v; want a dot segment error", c.conn, c.u.Kind, c.u.Reference, url, err)
		}
	}
}

// TestShippedWhatsAppRetriesThrottling: Meta's throttling codes in a 400
// are retried, on the default schedule and statuses.
func TestShippedWhatsAppRetriesThrottling(t *testing.T) {
	got := loadShipped(t, "whatsapp", nil).Outbound.Retry
	def := DefaultRetryPolicy()
	if !slices.Equal(got.Schedule, def.Schedule) || !slices.Equal(got.RetryOn, def.RetryOn) {
		t.Errorf("whatsapp retry %+v, want the default schedule and statuses", got)
	}
	for body, want := range map[string]bool{
		`{"error":{"message":"(#130429) Rate limit hit","code":130429}}`: true,
		`{"error":{"code":131056}}`:                                      true,
		`{"error":{"code":131026}}`:                                      false, // message undeliverable
		`{"error":{"code":100}}`:                                         false, // invalid parameter
		`{}`:                                                             false,
	} {
		if _, retry := got.RetryErrors.Retry([]byte(body)); retry != want {
			t.Errorf("retry of %s: %v, want %v", body, retry, want)
		}
	}
}
