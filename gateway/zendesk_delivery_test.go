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

// zendeskReopened is the Zendesk status_changed webhook of ticket 5158
// (SOLVED -> OPEN), built from the test payload.
func zendeskReopened(t *testing.T) []byte {
	t.Helper()
	payload, err := os.ReadFile("../connectors/testdata/payloads/zendesk-ticket-status-changed.json")
	if err != nil {
		t.Fatal(err)
	}
	return []byte(strings.NewReplacer(`"status": "SOLVED"`, `"status": "OPEN"`, `"previous": "OPEN", "current": "SOLVED"`, `"previous": "SOLVED", "current": "OPEN"`).Replace(string(payload)))
}

// postZendesk posts body to the zendesk connector signed with the test
// secret at stamp (RFC 3339), with invocation id inv.
func postZendesk(t *testing.T, ts *testServer, body []byte, stamp, inv string) response {
	t.Helper()
	return do(t, "POST", ts.URL+"/hooks/zendesk", body, map[string]string{
		"Content-Type":                          "application/json",
		"X-Zendesk-Webhook-Signature":           zendeskSignature("test-zendesk-secret", stamp, body),
		"X-Zendesk-Webhook-Signature-Timestamp": stamp,
		"X-Zendesk-Webhook-Invocation-Id":       inv,
	})
}

// postZendeskReopened posts zendeskReopened, signed now, with invocation
// id inv, and wants it accepted.
func postZendeskReopened(t *testing.T, ts *testServer, inv string) {
	t.Helper()
	if r := postZendesk(t, ts, zendeskReopened(t), time.Now().UTC().Format(time.RFC3339), inv); r.Status != 202 {
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
	d := reopenedTicketDelivery(t, api, `rules:
  - id: move-to-email
    on: [ticket.status_changed]
    connector: zendesk
    when: { field: status, changed_to: open }
    then:
      - set_channel: email
      - set_category: billing
`)
	if d.State != "failed" || !strings.Contains(d.Reason, "cannot set category, channel") {
		t.Errorf("delivery %s, reason %q; want failed: cannot set category, channel", d.State, d.Reason)
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
	d := reopenedTicketDelivery(t, api, `rules:
  - id: urgent
    on: [ticket.status_changed]
    connector: zendesk
    when: { field: status, changed_to: open }
    then:
      - set_priority: urgent
`)
	if d.State != "succeeded" || len(api.requests()) != 2 {
		t.Errorf("after a 409: delivery %s (%s) with %d requests; want succeeded after a retry", d.State, d.Reason, len(api.requests()))
	}
}

// reopenedTicketDelivery runs the shipped configs plus rules against api
// (the Zendesk stand-in), posts the reopened ticket, and returns its one
// delivery once it is final (succeeded, failed or cancelled).
func reopenedTicketDelivery(t *testing.T, api *recorder, rules string) listedDelivery {
	t.Helper()
	dir := copyConfigs(t)
	writeFile(t, filepath.Join(dir, "rules", "e2e.yaml"), rules)
	ts := startServer(t, dir, map[string]string{"ZENDESK_BASE_URL": api.srv.URL, "HOOKLINE_EGRESS_ALLOW": "127.0.0.0/8"}, nil)
	postZendeskReopened(t, ts, "inv-1")
	var ds []listedDelivery
	waitFor(t, "the delivery finished", func() bool {
		ds = listDeliveries(t, ts.URL, "zendesk")
		return len(ds) == 1 && ds[0].State != "pending" && ds[0].State != "in_flight"
	})
	return ds[0]
}
