package gateway

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestIntakeStatusCodes(t *testing.T) {
	ts := startServer(t, copyConfigs(t), nil, nil)
	msg := readFixture(t, "whatsapp-cloud-text-message.json")
	good := metaSignature("test-whatsapp-secret", msg)
	jsonCT := map[string]string{"Content-Type": "application/json"}

	tests := []struct {
		name       string
		path       string
		body       []byte
		headers    map[string]string
		wantStatus int
		wantReason string
	}{
		{"unknown connector", "/hooks/nope", []byte(`{}`), jsonCT, 404, `unknown connector "nope"`},
		{"unsupported content type", "/hooks/generic", []byte(`hello`), map[string]string{"Content-Type": "text/plain"}, 415, `unsupported content type "text/plain"`},
		{"missing content type", "/hooks/generic", []byte(`{}`), map[string]string{"Content-Type": ""}, 415, "unsupported content type"},
		{"malformed JSON", "/hooks/generic", []byte(`{"a": `), jsonCT, 400, "malformed JSON body"},
		{"malformed form", "/hooks/generic", []byte(`a=%zz`), map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 400, "malformed form body"},
		{"too large", "/hooks/generic", []byte(`{"pad":"` + strings.Repeat("x", 1<<20) + `"}`), jsonCT, 413, "exceeds the limit of 1048576 bytes"},
		{"missing signature", "/hooks/whatsapp", msg, jsonCT, 401, "X-Hub-Signature-256"},
		{"bad signature", "/hooks/whatsapp", msg, map[string]string{"Content-Type": "application/json", "X-Hub-Signature-256": metaSignature("wrong", msg)}, 401, "signature"},
		{"tampered body", "/hooks/whatsapp", append([]byte(" "), msg...), map[string]string{"Content-Type": "application/json", "X-Hub-Signature-256": good}, 401, "signature"},
		{"accepted", "/hooks/whatsapp", msg, map[string]string{"Content-Type": "application/json", "X-Hub-Signature-256": good}, 202, ""},
		{"form accepted", "/hooks/generic", []byte(`type=ticket.updated&id=9&tag=a&tag=b`), map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 202, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, "POST", ts.URL+tt.path, tt.body, tt.headers)
			if r.Status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.Status, tt.wantStatus, r.Body)
			}
			m := r.JSON(t)
			if tt.wantReason != "" {
				reason, _ := m["error"].(string)
				if !strings.Contains(reason, tt.wantReason) {
					t.Fatalf("reason %q lacks %q", reason, tt.wantReason)
				}
				if strings.Contains(reason, strings.TrimPrefix(good, "sha256=")) {
					t.Fatalf("reason echoes the expected signature: %q", reason)
				}
			} else if id, _ := m["id"].(string); len(id) != 26 {
				t.Fatalf("want a ULID id, got %v", m)
			}
		})
	}
}

func TestSchemaViolationAnswers422WithPointer(t *testing.T) {
	ts := startServer(t, copyConfigs(t), nil, nil)
	body := []byte(`{"type": "zen:event-type:ticket.status_changed", "account_id": 1, "id": "x", "time": "2026-01-01T00:00:00Z",
		"zendesk_event_version": "2022-11-06", "subject": "zen:ticket:1", "detail": "not an object", "event": {}}`)
	stamp := time.Now().UTC().Format(time.RFC3339)
	r := do(t, "POST", ts.URL+"/hooks/zendesk", body, map[string]string{
		"Content-Type":                          "application/json",
		"X-Zendesk-Webhook-Signature":           zendeskSignature("test-zendesk-secret", stamp, body),
		"X-Zendesk-Webhook-Signature-Timestamp": stamp,
	})
	if r.Status != 422 {
		t.Fatalf("status %d, want 422: %s", r.Status, r.Body)
	}
	m := r.JSON(t)
	if m["pointer"] != "/detail" {
		t.Fatalf("pointer = %v, want /detail (%s)", m["pointer"], r.Body)
	}
}

func TestAcceptedWebhookBecomesEvents(t *testing.T) {
	ts := startServer(t, copyConfigs(t), nil, nil)
	for _, fx := range []string{"whatsapp-cloud-text-message.json", "whatsapp-cloud-interactive-button-reply.json", "whatsapp-cloud-status-sent.json"} {
		body := readFixture(t, fx)
		r := do(t, "POST", ts.URL+"/hooks/whatsapp", body, map[string]string{"Content-Type": "application/json", "X-Hub-Signature-256": metaSignature("test-whatsapp-secret", body)})
		if r.Status != 202 {
			t.Fatalf("%s: status %d: %s", fx, r.Status, r.Body)
		}
		inbox := waitFinished(t, ts.URL, r.JSON(t)["id"].(string))
		if inbox["state"] != "processed" {
			t.Fatalf("%s: inbox state %v (%v)", fx, inbox["state"], inbox["reason"])
		}
		ids := inbox["event_ids"].([]any)
		if len(ids) == 0 {
			t.Fatalf("%s: no events", fx)
		}
		ev := do(t, "GET", ts.URL+"/api/v1/events/"+ids[0].(string), nil, nil).JSON(t)
		e := ev["event"].(map[string]any)
		if e["connector"] != "whatsapp" || e["reference"] == "" || e["type"] == "" {
			t.Fatalf("%s: event %v", fx, e)
		}
	}
	list := do(t, "GET", ts.URL+"/api/v1/events?connector=whatsapp&limit=2", nil, nil).JSON(t)
	if evs := list["events"].([]any); len(evs) != 2 || list["next_cursor"] == "" {
		t.Fatalf("paging: %d events, cursor %v", len(evs), list["next_cursor"])
	}
}

func TestUnmappedPayloadIsKept(t *testing.T) {
	ts := startServer(t, copyConfigs(t), nil, nil)
	// Valid, signed, schema-conform, but a change no WhatsApp mapping knows.
	body := []byte(`{"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "account_alerts", "value": {}}]}]}`)
	r := do(t, "POST", ts.URL+"/hooks/whatsapp", body, map[string]string{"Content-Type": "application/json", "X-Hub-Signature-256": metaSignature("test-whatsapp-secret", body)})
	if r.Status != 202 {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	id := r.JSON(t)["id"].(string)
	waitFor(t, "unmapped", func() bool {
		return do(t, "GET", ts.URL+"/api/v1/inbox/"+id, nil, nil).JSON(t)["state"] == "unmapped"
	})
}

func TestDuplicateIsAnsweredButNotProcessedTwice(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC).UnixNano())
	ts := startServer(t, copyConfigs(t), nil, func() time.Time { return time.Unix(0, clock.Load()).UTC() })
	body := []byte(`{"type": "ticket.updated", "id": "D-1", "status": "open"}`)
	h := map[string]string{"Content-Type": "application/json"}
	first := do(t, "POST", ts.URL+"/hooks/generic", body, h)
	if first.Status != 202 {
		t.Fatalf("first: %d %s", first.Status, first.Body)
	}
	firstID := first.JSON(t)["id"]
	second := do(t, "POST", ts.URL+"/hooks/generic", body, h)
	m := second.JSON(t)
	if second.Status != 200 || m["duplicate"] != true || m["id"] != firstID {
		t.Fatalf("repeat inside the window: %d %s", second.Status, second.Body)
	}
	// Past the 72h window the same body is new again.
	clock.Add(int64(73 * time.Hour))
	third := do(t, "POST", ts.URL+"/hooks/generic", body, h)
	if third.Status != 202 || third.JSON(t)["id"] == firstID {
		t.Fatalf("repeat after the window: %d %s", third.Status, third.Body)
	}
	waitFor(t, "both processed", func() bool {
		evs := do(t, "GET", ts.URL+"/api/v1/events?connector=generic&reference=D-1&entity=ticket", nil, nil).JSON(t)["events"].([]any)
		return len(evs) == 2
	})
}

func TestWhatsAppHandshake(t *testing.T) {
	ts := startServer(t, copyConfigs(t), nil, nil)
	r := do(t, "GET", ts.URL+"/hooks/whatsapp?hub.mode=subscribe&hub.verify_token=test-verify-token&hub.challenge=1158201444", nil, nil)
	if r.Status != 200 || string(r.Body) != "1158201444" {
		t.Fatalf("handshake: %d %q", r.Status, r.Body)
	}
	r = do(t, "GET", ts.URL+"/hooks/whatsapp?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1", nil, nil)
	if r.Status != 403 {
		t.Fatalf("wrong token: %d %q", r.Status, r.Body)
	}
}

func TestAdminTokenRequiredWhenSet(t *testing.T) {
	ts := startServer(t, copyConfigs(t), map[string]string{"HOOKLINE_ADMIN_TOKEN": "s3cret"}, nil)
	if r := do(t, "GET", ts.URL+"/api/v1/events", nil, nil); r.Status != 401 {
		t.Fatalf("no token: %d", r.Status)
	}
	if r := do(t, "GET", ts.URL+"/api/v1/events", nil, map[string]string{"Authorization": "Bearer s3cret"}); r.Status != 200 {
		t.Fatalf("token: %d %s", r.Status, r.Body)
	}
	if r := do(t, "GET", ts.URL+"/healthz", nil, nil); r.Status != 200 {
		t.Fatalf("healthz: %d", r.Status)
	}
}

func decodeJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
}

func TestGetWebhookWithQueryPayload(t *testing.T) {
	ts := startServer(t, copyConfigs(t), nil, nil)
	url := ts.URL + "/hooks/smartertrack?token=dev-insecure-smartertrack-token&event=ticket_priority_changed&id=4711&priority=Urgent&old_priority=Normal"
	r := do(t, "GET", url, nil, nil)
	if r.Status != 202 {
		t.Fatalf("GET webhook: %d %s", r.Status, r.Body)
	}
	inbox := waitFinished(t, ts.URL, r.JSON(t)["id"].(string))
	if inbox["state"] != "processed" {
		t.Fatalf("state %v: %v", inbox["state"], inbox["reason"])
	}
	body, _ := json.Marshal(inbox["body"])
	if strings.Contains(string(body), "dev-insecure-smartertrack-token") || strings.Contains(string(body), `"token"`) {
		t.Fatalf("the token reached the stored payload: %s", body)
	}
	ev := do(t, "GET", ts.URL+"/api/v1/events/"+inbox["event_ids"].([]any)[0].(string), nil, nil).JSON(t)["event"].(map[string]any)
	if ev["type"] != "ticket.priority_changed" || ev["reference"] != "4711" {
		t.Fatalf("event %v", ev)
	}
	// A GET to a connector without accept_get is refused.
	if r := do(t, "GET", ts.URL+"/hooks/generic?id=1", nil, nil); r.Status != 405 {
		t.Fatalf("generic GET: %d %s", r.Status, r.Body)
	}
	// Same query with a wrong token: refused.
	if r := do(t, "GET", strings.Replace(url, "dev-insecure-smartertrack-token", "nope", 1), nil, nil); r.Status != 401 {
		t.Fatalf("wrong token: %d %s", r.Status, r.Body)
	}
}

func TestHeadProbeOfAWebhookURL(t *testing.T) {
	ts := startServer(t, copyConfigs(t), nil, nil)
	if r := do(t, "HEAD", ts.URL+"/hooks/generic", nil, nil); r.Status != 200 {
		t.Fatalf("HEAD known connector: %d", r.Status)
	}
	if r := do(t, "HEAD", ts.URL+"/hooks/nope", nil, nil); r.Status != 404 {
		t.Fatalf("HEAD unknown connector: %d", r.Status)
	}
}

func TestSecretNames(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"Authorization", true}, {"X-Hookline-Token", true}, {"token", true}, {"X-Api-Key", true},
		{"APIKEY", true}, {"api_key", true}, {"Cookie", true}, {"Set-Cookie", true}, {"X-Client-Secret", true},
		{"db_password", true}, {"PASSWD", true},
		{"Content-Type", false}, {"X-Hub-Signature-256", false}, {"Idempotency-Key", false}, {"api", false},
		{"key", false}, {"", false}, {"tok", false}, {"X-Request-Id", false},
	}
	for _, tt := range tests {
		if got := isSecretName(tt.name); got != tt.want {
			t.Errorf("isSecretName(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestInboxKeepsNoCredentials(t *testing.T) {
	ts := startServer(t, copyConfigs(t), nil, nil)
	r := do(t, "POST", ts.URL+"/hooks/generic?token=q-secret&page=2", []byte(`{"type":"ticket.updated","id":"77"}`), map[string]string{
		"Content-Type":  "application/json",
		"Authorization": "Bearer h-secret",
		"X-Api-Key":     "k-secret",
		"X-Trace":       "kept",
	})
	if r.Status != 202 {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("answer content type %q", ct)
	}
	id, _ := r.JSON(t)["id"].(string)
	got := do(t, "GET", ts.URL+"/api/v1/inbox/"+id, nil, nil)
	if got.Status != 200 {
		t.Fatalf("inbox %s: %d %s", id, got.Status, got.Body)
	}
	body := string(got.Body)
	for _, secret := range []string{"q-secret", "h-secret", "k-secret"} {
		if strings.Contains(body, secret) {
			t.Errorf("inbox item keeps %s: %s", secret, body)
		}
	}
	for _, kept := range []string{`"X-Trace":["kept"]`, `"page":["2"]`, `"Authorization":["[redacted]"]`, `"token":["[redacted]"]`} {
		if !strings.Contains(body, kept) {
			t.Errorf("inbox item lacks %s: %s", kept, body)
		}
	}
}

// List endpoints answer an empty list, not null, when nothing matches:
// clients (Zapier's field pickers among them) iterate over them.
func TestEmptyListsAreLists(t *testing.T) {
	ts := startServer(t, copyConfigs(t), nil, nil)
	for path, key := range map[string]string{
		"/api/v1/events?connector=nobody":     "events",
		"/api/v1/deliveries?connector=nobody": "deliveries",
		"/api/v1/timers?rule=nobody":          "timers",
		"/api/v1/subscriptions":               "subscriptions",
	} {
		r := do(t, "GET", ts.URL+path, nil, nil)
		if r.Status != 200 {
			t.Fatalf("%s: %d %s", path, r.Status, r.Body)
		}
		if !strings.Contains(string(r.Body), `"`+key+`":[]`) {
			t.Errorf("%s: want %q as an empty list: %s", path, key, r.Body)
		}
	}
}

// Without HOOKLINE_ADMIN_TOKEN the admin API answers direct requests from
// loopback only: not one a reverse proxy on the same host forwarded.
func TestAdminAPIWithoutTokenIsLoopbackOnly(t *testing.T) {
	ts := startServer(t, copyConfigs(t), nil, nil)
	if r := do(t, "GET", ts.URL+"/api/v1/events", nil, nil); r.Status != 200 {
		t.Fatalf("direct request from loopback: %d %s", r.Status, r.Body)
	}
	for _, h := range []string{"X-Forwarded-For", "Forwarded", "X-Real-IP", "X-Forwarded-Host", "Via"} {
		r := do(t, "GET", ts.URL+"/api/v1/events", nil, map[string]string{h: "203.0.113.7"})
		if r.Status != 403 || !strings.Contains(string(r.Body), "came through a proxy") {
			t.Errorf("request with %s: %d %s, want 403 naming the proxy", h, r.Status, r.Body)
		}
	}
	if r := do(t, "POST", ts.URL+"/hooks/generic", []byte(`{"type":"ping"}`), map[string]string{"Content-Type": "application/json", "X-Forwarded-For": "203.0.113.7"}); r.Status != 202 {
		t.Errorf("webhook through a proxy: %d %s; the intake is not the admin API", r.Status, r.Body)
	}
	for _, c := range []struct {
		ip   string
		want bool
	}{{"127.0.0.1", true}, {"::1", true}, {"10.0.0.8", false}, {"203.0.113.7", false}, {"", false}} {
		if ok, why := directFromLoopback(net.ParseIP(c.ip), func(string, ...string) string { return "" }); ok != c.want {
			t.Errorf("peer %q: allowed %v (%s), want %v", c.ip, ok, why, c.want)
		}
	}
}

// A bodiless POST without a Content-Type (SmarterTrack's Call Web Page as a
// POST, its parameters in the URL) is an empty form: taken, and mapped from
// the query like the same request with a form Content-Type.
func TestBodilessPostWithoutContentTypeIsAnEmptyForm(t *testing.T) {
	ts := startServer(t, copyConfigs(t), nil, nil)
	u := ts.URL + "/hooks/smartertrack?token=dev-insecure-smartertrack-token&event=ticket_priority_changed&id=78&priority=high&old_priority=low"
	r := do(t, "POST", u, nil, nil)
	if r.Status != 202 {
		t.Fatalf("bodiless POST without Content-Type: %d %s; want 202", r.Status, r.Body)
	}
	inbox := waitFinished(t, ts.URL, r.JSON(t)["id"].(string))
	if inbox["state"] != "processed" {
		t.Fatalf("state %v: %v", inbox["state"], inbox["reason"])
	}
	ev := do(t, "GET", ts.URL+"/api/v1/events/"+inbox["event_ids"].([]any)[0].(string), nil, nil).JSON(t)["event"].(map[string]any)
	if ev["type"] != "ticket.priority_changed" || ev["reference"] != "78" {
		t.Fatalf("event %v", ev)
	}
	// A body without a Content-Type is still refused: its format is unknown.
	if r := do(t, "POST", u, []byte("id=79"), nil); r.Status != 415 {
		t.Fatalf("body without Content-Type: %d %s; want 415", r.Status, r.Body)
	}
}

// Twilio set to "HTTP GET" (accept_get on the twilio connector) signs the
// full URL only; the gateway took the query for a form and signed it twice,
// refusing every genuine request.
func TestTwilioGetWebhookIsVerifiedOverItsURL(t *testing.T) {
	dir := copyConfigs(t)
	editFile(t, filepath.Join(dir, "connectors", "twilio.yaml"), "  dedupe: body\n", "  dedupe: body\n  accept_get: true\n")
	ts := startServer(t, dir, nil, nil)
	q := url.Values{"MessageSid": {"SM9"}, "From": {"whatsapp:+14158675309"}, "To": {"whatsapp:+18005551212"}, "Body": {"hello"}}
	u := ts.URL + "/hooks/twilio?" + q.Encode()
	sign := func(u string) string {
		m := hmac.New(sha1.New, []byte("dev-insecure-twilio-auth-token"))
		m.Write([]byte(u))
		return base64.StdEncoding.EncodeToString(m.Sum(nil))
	}
	if r := do(t, "GET", u, nil, map[string]string{"X-Twilio-Signature": sign(u)}); r.Status != 200 {
		t.Fatalf("Twilio GET signed over its URL: %d %s; want 200 (the connector's TwiML reply)", r.Status, r.Body)
	}
	forged := strings.Replace(u, "hello", "bye", 1)
	if r := do(t, "GET", forged, nil, map[string]string{"X-Twilio-Signature": sign(u)}); r.Status != 401 {
		t.Fatalf("Twilio GET whose query differs from the signed one: %d %s; want 401", r.Status, r.Body)
	}
}

// Twilio's "A message comes in" webhook expects TwiML back: the twilio
// connector's inbound.reply answers 200 text/xml with an empty <Response>,
// for the accepted message and for its redelivery alike (a JSON answer
// makes Twilio log error 12300 on every message).
func TestTwilioMessageIsAnsweredWithTwiML(t *testing.T) {
	ts := startServer(t, "../configs", nil, nil)
	u := ts.URL + "/hooks/twilio"
	form := url.Values{"MessageSid": {"SM10"}, "AccountSid": {"AC1"}, "From": {"whatsapp:+14158675309"}, "To": {"whatsapp:+18005551212"}, "Body": {"hello"}, "NumMedia": {"0"}}
	signed := u
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		signed += k + form.Get(k)
	}
	m := hmac.New(sha1.New, []byte("dev-insecure-twilio-auth-token"))
	m.Write([]byte(signed))
	headers := map[string]string{
		"Content-Type":       "application/x-www-form-urlencoded",
		"X-Twilio-Signature": base64.StdEncoding.EncodeToString(m.Sum(nil)),
	}
	const twiml = `<?xml version="1.0" encoding="UTF-8"?><Response></Response>`
	for _, attempt := range []string{"first delivery", "redelivery"} {
		r := do(t, "POST", u, []byte(form.Encode()), headers)
		if r.Status != 200 || r.Header.Get("Content-Type") != "text/xml" || string(r.Body) != twiml {
			t.Fatalf("%s: %d %q %s; want 200 text/xml %s", attempt, r.Status, r.Header.Get("Content-Type"), r.Body, twiml)
		}
	}
	items := do(t, "GET", ts.URL+"/api/v1/inbox?connector=twilio", nil, nil).JSON(t)["items"].([]any)
	if len(items) != 1 {
		t.Fatalf("inbox holds %d twilio items, want the message once: %v", len(items), items)
	}
}
