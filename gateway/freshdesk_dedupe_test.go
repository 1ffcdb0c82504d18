package gateway

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// A Freshdesk body carries no change stamp, so a ticket set Open ->
// Pending -> Open (a mis-click undone) posts a third body byte-identical to
// the first. It is a new change, not a retry: the ticket must end open.
// Only the same body posted again within a second (two automation rules
// firing on one update) counts as one delivery.
func TestFreshdeskStatusChangedBackIsNotADuplicate(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	ts := startServer(t, copyConfigs(t), nil, clock)
	headers := map[string]string{"Content-Type": "application/json", "X-Hookline-Token": "dev-insecure-freshdesk-webhook-token"}
	body := func(status string) []byte {
		return []byte(`{"event": "ticket.updated", "ticket": {"id": "4711", "subject": "Refund", "status": "` + status + `", "priority": "Medium", "tags": "refund"}}`)
	}
	for i, status := range []string{"Open", "Pending", "Open"} {
		if i > 0 {
			advance(20 * time.Second)
		}
		r := do(t, "POST", ts.URL+"/hooks/freshdesk", body(status), headers)
		m := r.JSON(t)
		if r.Status != 202 || m["duplicate"] == true {
			t.Fatalf("post %d (status %s, a new change): %d %s, want 202 and no duplicate", i+1, status, r.Status, r.Body)
		}
		waitFinished(t, ts.URL, m["id"].(string))
	}
	ent := do(t, "GET", ts.URL+"/api/v1/entities/freshdesk/ticket/4711", nil, nil)
	if !strings.Contains(string(ent.Body), `"status":"open"`) {
		t.Errorf("ticket 4711 is open on Freshdesk; the snapshot says: %s", ent.Body)
	}

	advance(300 * time.Millisecond)
	again := do(t, "POST", ts.URL+"/hooks/freshdesk", body("Open"), headers)
	if again.JSON(t)["duplicate"] != true {
		t.Errorf("the same body again 300ms later (two rules on one update): %d %s, want a duplicate", again.Status, again.Body)
	}
}
