package gateway

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// listedDelivery is a delivery as the admin API lists it.
type listedDelivery struct {
	ID       string           `json:"id"`
	Rule     string           `json:"rule"`
	State    string           `json:"state"`
	Reason   string           `json:"reason"`
	Attempts []map[string]any `json:"attempts"`
}

// listDeliveries returns the deliveries of connector from the admin API.
func listDeliveries(t *testing.T, base, connector string) []listedDelivery {
	t.Helper()
	var list struct {
		Deliveries []listedDelivery `json:"deliveries"`
	}
	decodeJSON(t, do(t, "GET", base+"/api/v1/deliveries?connector="+connector, nil, nil).Body, &list)
	return list.Deliveries
}

// postZendeskReopened posts a signed Zendesk status_changed webhook (SOLVED
// -> OPEN) of ticket 5158 with invocation id inv.
func postZendeskReopened(t *testing.T, ts *testServer, inv string) {
	t.Helper()
	payload, err := os.ReadFile("../connectors/testdata/payloads/zendesk-ticket-status-changed.json")
	if err != nil {
		t.Fatal(err)
	}
	body := strings.NewReplacer(`"status": "SOLVED"`, `"status": "OPEN"`, `"previous": "OPEN", "current": "SOLVED"`, `"previous": "SOLVED", "current": "OPEN"`).Replace(string(payload))
	stamp := time.Now().UTC().Format(time.RFC3339)
	r := do(t, "POST", ts.URL+"/hooks/zendesk", []byte(body), map[string]string{
		"Content-Type":                          "application/json",
		"X-Zendesk-Webhook-Signature":           zendeskSignature("test-zendesk-secret", stamp, []byte(body)),
		"X-Zendesk-Webhook-Signature-Timestamp": stamp,
		"X-Zendesk-Webhook-Invocation-Id":       inv,
	})
	if r.Status != 202 {
		t.Fatalf("webhook: %d %s", r.Status, r.Body)
	}
}

// TestZendeskUnsupportedChangeFailsTheDelivery: a rule whose change the
// Zendesk update_ticket action cannot carry (set_channel, set_category)
// fails its delivery with the reason, and nothing is sent (before, an empty
// {"ticket": {}} was sent and the delivery succeeded).
func TestZendeskUnsupportedChangeFailsTheDelivery(t *testing.T) {
	api := newRecorder(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ticket": {"id": 5158, "updated_at": "2026-03-02T09:15:05Z"}}`)
	})
	dir := copyConfigs(t)
	writeFile(t, filepath.Join(dir, "rules", "e2e.yaml"), `rules:
  - id: move-to-email
    on: [ticket.status_changed]
    connector: zendesk
    when: { field: status, changed_to: open }
    then:
      - set_channel: email
      - set_category: billing
`)
	ts := startServer(t, dir, map[string]string{"ZENDESK_BASE_URL": api.srv.URL, "HOOKLINE_EGRESS_ALLOW": "127.0.0.0/8"}, nil)
	postZendeskReopened(t, ts, "inv-unsupported-1")
	var ds []listedDelivery
	waitFor(t, "the delivery finished", func() bool {
		ds = listDeliveries(t, ts.URL, "zendesk")
		return len(ds) == 1 && ds[0].State != "pending" && ds[0].State != "in_flight"
	})

	if ds[0].State != "failed" || !strings.Contains(ds[0].Reason, "cannot set category, channel") {
		t.Errorf("delivery %s, reason %q; want failed: cannot set category, channel", ds[0].State, ds[0].Reason)
	}
	if reqs := api.requests(); len(reqs) != 0 {
		t.Errorf("sent %d requests, first %s %s %v", len(reqs), reqs[0].Method, reqs[0].Path, reqs[0].Body)
	}
}

// TestZendeskConflictIsRetried: Zendesk answers 409 Conflict when two
// updates of one ticket collide and asks to retry; the delivery is retried
// and succeeds instead of failing at once.
func TestZendeskConflictIsRetried(t *testing.T) {
	var calls atomic.Int32
	api := newRecorder(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		w.Header().Set("Content-Type", "application/json")
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusConflict)
			io.WriteString(w, `{"error": "UpdateConflict", "description": "Ticket was updated by another request, please retry"}`)
			return
		}
		io.WriteString(w, `{"ticket": {"id": 5158, "updated_at": "2026-03-02T09:15:05Z"}}`)
	})
	dir := copyConfigs(t)
	writeFile(t, filepath.Join(dir, "rules", "e2e.yaml"), `rules:
  - id: urgent
    on: [ticket.status_changed]
    connector: zendesk
    when: { field: status, changed_to: open }
    then:
      - set_priority: urgent
`)
	ts := startServer(t, dir, map[string]string{"ZENDESK_BASE_URL": api.srv.URL, "HOOKLINE_EGRESS_ALLOW": "127.0.0.0/8"}, nil)
	postZendeskReopened(t, ts, "inv-conflict-1")
	var ds []listedDelivery
	waitFor(t, "the delivery finished", func() bool {
		ds = listDeliveries(t, ts.URL, "zendesk")
		return len(ds) == 1 && (ds[0].State == "succeeded" || ds[0].State == "failed")
	})
	if ds[0].State != "succeeded" || len(api.requests()) != 2 {
		t.Errorf("after a 409: delivery %s (%s) with %d requests; want succeeded after a retry", ds[0].State, ds[0].Reason, len(api.requests()))
	}
}
