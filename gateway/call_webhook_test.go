package gateway

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// configWithRules copies the shipped configs with rules as the only rule file.
func configWithRules(t *testing.T, rules string) string {
	t.Helper()
	dir := copyConfigs(t)
	files, err := filepath.Glob(filepath.Join(dir, "rules", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(dir, "rules", "rules.yaml"), rules)
	return dir
}

// A sender controls the reference; a rule that escapes it with pathescape
// keeps it one path segment of the call_webhook URL, whatever it holds.
func TestCallWebhookReferenceStaysOnePathSegment(t *testing.T) {
	ops := newRecorder(t, nil)
	cfg := configWithRules(t, `rules:
  - id: notify-ops
    on: ticket.updated
    connector: generic
    then:
      - call_webhook:
          url: "`+ops.srv.URL+`/t/{{ .Event.Reference | pathescape }}?ref={{ .Event.Reference | queryescape }}"
          body: { ticket: "{{ .Event.Reference }}" }
`)
	ts := startServer(t, cfg, nil, nil)
	r := do(t, "POST", ts.URL+"/hooks/generic",
		[]byte(`{"type":"ticket.updated","id":"../admin/users?role=owner&delete=all#x","status":"open"}`),
		map[string]string{"Content-Type": "application/json"})
	if r.Status != 202 {
		t.Fatalf("post: %d %s", r.Status, r.Body)
	}
	waitFor(t, "the call_webhook to arrive", func() bool { return len(ops.requests()) > 0 })
	got := ops.requests()[0]
	const want = "/t/..%2Fadmin%2Fusers%3Frole=owner&delete=all%23x?ref=..%2Fadmin%2Fusers%3Frole%3Downer%26delete%3Dall%23x"
	if got.URI != want {
		t.Errorf("request URI %q, want %q", got.URI, want)
	}
	if got.Path != "/t/../admin/users?role=owner&delete=all#x" {
		t.Errorf("decoded path %q, want the reference as one segment", got.Path)
	}
}

// A payload value that flows into a call_webhook header and holds a line
// break cannot be sent: the delivery is stored failed with the reason at
// once, never sent or retried, and never counts against the circuit
// breaker of the connector, whose other deliveries still go.
func TestCallWebhookUnsendableHeaderFailsAtOnce(t *testing.T) {
	ops := newRecorder(t, nil)
	cfg := configWithRules(t, `rules:
  - id: notify-ops
    on: ticket.updated
    connector: generic
    then:
      - call_webhook:
          url: "`+ops.srv.URL+`/hook"
          headers: { X-Subject: "{{ .Field \"subject\" }}" }
          body: { ticket: "{{ .Event.Reference }}" }
`)
	ts := startServer(t, cfg, nil, nil)
	post := func(ref, subject string) {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"type": "ticket.updated", "id": ref, "subject": subject})
		if r := do(t, "POST", ts.URL+"/hooks/generic", body, map[string]string{"Content-Type": "application/json"}); r.Status != 202 {
			t.Fatalf("post: %d %s", r.Status, r.Body)
		}
	}
	for _, ref := range []string{"T-a", "T-b", "T-c", "T-d", "T-e", "T-f"} {
		post(ref, "hi\r\nX-Injected: 1")
	}
	type delivery struct {
		ID, State, Reason, Reference string
		Attempts                     []struct{ Error string }
	}
	var list struct{ Deliveries []delivery }
	waitFor(t, "six deliveries", func() bool {
		decodeJSON(t, do(t, "GET", ts.URL+"/api/v1/deliveries?connector=generic", nil, nil).Body, &list)
		return len(list.Deliveries) == 6
	})
	for _, d := range list.Deliveries {
		if d.State != "failed" || len(d.Attempts) != 0 ||
			!strings.Contains(d.Reason, "call_webhook of rule notify-ops: header X-Subject: value holds a line break") {
			t.Errorf("delivery %s of %s: state %s, %d attempts, reason %q; want failed at once, never sent, with the header named",
				d.ID, d.Reference, d.State, len(d.Attempts), d.Reason)
		}
	}
	post("T-good", "all fine")
	waitFor(t, "the valid call_webhook to arrive", func() bool { return len(ops.requests()) == 1 })
	if got := ops.requests()[0].Header.Get("X-Subject"); got != "all fine" {
		t.Errorf("X-Subject = %q", got)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(ops.requests()); n != 1 {
		t.Errorf("the ops endpoint got %d requests, want 1", n)
	}
	m := string(do(t, "GET", ts.URL+"/metrics", nil, nil).Body)
	if strings.Contains(m, `hookline_breaker_open{connector="generic"} 1`) {
		t.Errorf("unsendable webhooks opened the circuit breaker of connector generic")
	}
}
