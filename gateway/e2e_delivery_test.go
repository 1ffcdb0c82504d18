package gateway

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// recorder is a test server standing in for a platform's API.
type recorder struct {
	mu   sync.Mutex
	reqs []recorded
	srv  *httptest.Server
}

type recorded struct {
	Method, Path string
	URI          string // the request URI as sent, escapes kept
	Header       http.Header
	Body         map[string]any
}

func newRecorder(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, body []byte)) *recorder {
	rec := &recorder{}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(body, &m)
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, recorded{Method: r.Method, Path: r.URL.Path, URI: r.RequestURI, Header: r.Header.Clone(), Body: m})
		rec.mu.Unlock()
		if answer != nil {
			answer(w, r, body)
			return
		}
		w.WriteHeader(200)
		io.WriteString(w, `{}`)
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (r *recorder) requests() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.reqs...)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestZendeskWebhookToZendeskUpdate: a Zendesk ticket event comes in, a rule
// fires, and the update reaches a server standing in for the Zendesk API with
// the right method, path, auth and body.
func TestZendeskWebhookToZendeskUpdate(t *testing.T) {
	api := newRecorder(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ticket": {"id": 5158, "updated_at": "2026-03-02T09:15:05Z"}}`)
	})
	dir := copyConfigs(t)
	writeFile(t, filepath.Join(dir, "rules", "e2e.yaml"), `rules:
  - id: reopened-vip-gets-urgent
    on: [ticket.status_changed]
    connector: zendesk
    when:
      all:
        - { field: status, changed_to: open }
        - { field: tags, includes: vip }
    then:
      - set_priority: urgent
      - add_tags: [reopened]
`)
	ts := startServer(t, dir, map[string]string{
		"ZENDESK_BASE_URL": api.srv.URL, "ZENDESK_EMAIL": "bot@example.com", "ZENDESK_API_TOKEN": "tok-123",
		"HOOKLINE_EGRESS_ALLOW": "127.0.0.0/8",
	}, nil)

	body := zendeskReopened(t)
	stamp := time.Now().UTC().Format(time.RFC3339)
	r := postZendesk(t, ts, body, stamp, "inv-1")
	if r.Status != 202 {
		t.Fatalf("webhook: %d %s", r.Status, r.Body)
	}
	waitFor(t, "the update at the Zendesk stand-in", func() bool { return len(api.requests()) == 1 })
	got := api.requests()[0]
	if got.Method != "PUT" || got.Path != "/api/v2/tickets/5158.json" {
		t.Fatalf("request %s %s", got.Method, got.Path)
	}
	wantAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte("bot@example.com/token:tok-123"))
	if got.Header.Get("Authorization") != wantAuth {
		t.Fatalf("auth %q, want %q", got.Header.Get("Authorization"), wantAuth)
	}
	if got.Header.Get("Idempotency-Key") == "" || got.Header.Get(HeaderHops) != "1" {
		t.Fatalf("headers %v", got.Header)
	}
	ticket, _ := got.Body["ticket"].(map[string]any)
	if ticket["priority"] != "urgent" || fmt.Sprint(ticket["additional_tags"]) != "[reopened]" || len(ticket) != 2 {
		t.Fatalf("body %v", got.Body)
	}
	// The delivery is visible with its attempt and the captured value.
	var list struct {
		Deliveries []struct {
			ID       string            `json:"id"`
			State    string            `json:"state"`
			Captured map[string]string `json:"captured"`
			Attempts []map[string]any  `json:"attempts"`
		} `json:"deliveries"`
	}
	waitFor(t, "delivery succeeded", func() bool {
		decodeJSON(t, do(t, "GET", ts.URL+"/api/v1/deliveries?connector=zendesk", nil, nil).Body, &list)
		return len(list.Deliveries) == 1 && list.Deliveries[0].State == "succeeded"
	})
	if d := list.Deliveries[0]; d.ID != got.Header.Get("Idempotency-Key") || len(d.Attempts) != 1 || d.Captured["updated_at"] != "2026-03-02T09:15:05Z" {
		t.Fatalf("delivery %+v", d)
	}
	// A retried webhook (same invocation id) is not processed again.
	r = postZendesk(t, ts, body, stamp, "inv-1")
	if r.Status != 200 || r.JSON(t)["duplicate"] != true {
		t.Fatalf("retry: %d %s", r.Status, r.Body)
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(api.requests()); n != 1 {
		t.Fatalf("a duplicate webhook caused %d updates", n)
	}
}
