package gateway

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
)

// An admin's way back for webhooks the config could not take: a generic
// webhook without any reference path the connector knows fails; it shows
// in the inbox list; once the mapping learns the payload's path and the
// config is reloaded, a bulk replay processes it into an event with that
// reference. Replays of a processed item, of an unknown one and bad
// filters are refused with their reasons.
func TestReplayInboxAfterTheMappingIsFixed(t *testing.T) {
	dir := copyConfigs(t)
	ts := startServer(t, dir, nil, nil)
	r := do(t, "POST", ts.URL+"/hooks/generic", []byte(`{"type": "ticket.updated", "ticket_number": "T-77", "status": "open"}`),
		map[string]string{"Content-Type": "application/json"})
	if r.Status != 202 {
		t.Fatalf("post: %d %s", r.Status, r.Body)
	}
	id := r.JSON(t)["id"].(string)
	item := waitFinished(t, ts.URL, id)
	if item["state"] != "failed" {
		t.Fatalf("a webhook without a reference: %v (%v), want failed", item["state"], item["reason"])
	}
	list := do(t, "GET", ts.URL+"/api/v1/inbox?connector=generic&state=failed", nil, nil).JSON(t)
	if items := list["items"].([]any); len(items) != 1 || items[0].(map[string]any)["id"] != id || items[0].(map[string]any)["reason"] == "" {
		t.Fatalf("failed generic webhooks: %v", list)
	}

	// The fix: the reference is also found at ticket_number.
	editFile(t, filepath.Join(dir, "connectors", "generic.yaml"), "path: [reference, id, data.id,", "path: [reference, id, data.id, ticket_number,")
	if r := do(t, "POST", ts.URL+"/api/v1/config/reload", nil, nil); r.Status != 200 {
		t.Fatalf("reload: %d %s", r.Status, r.Body)
	}
	replayAt := time.Now().Truncate(time.Millisecond)
	r = do(t, "POST", ts.URL+"/api/v1/inbox/replay?connector=generic", nil, nil)
	if m := r.JSON(t); r.Status != 200 || m["replayed"] != 1.0 || m["ids"].([]any)[0] != id || m["more"] != false || m["next_cursor"] != "" {
		t.Fatalf("bulk replay: %d %s", r.Status, r.Body)
	}
	waitFor(t, "the replayed webhook processed", func() bool {
		item = do(t, "GET", ts.URL+"/api/v1/inbox/"+id, nil, nil).JSON(t)
		return item["state"] == "processed"
	})
	evs := item["event_ids"].([]any)
	ev := do(t, "GET", ts.URL+"/api/v1/events/"+evs[0].(string), nil, nil).JSON(t)["event"].(map[string]any)
	if ev["reference"] != "T-77" || ev["inbox_id"] != id {
		t.Fatalf("event of the replayed webhook: %v", ev)
	}
	// Its id says when it was made (at the replay), not when the webhook
	// arrived: it lists among the new events and retention keeps it.
	if made := ulid.MustParse(ev["id"].(string)).Timestamp(); made.Before(replayAt) || !ulid.MustParse(id).Timestamp().Before(replayAt) {
		t.Fatalf("event id made at %s, webhook received at %s, replayed at %s", made, ulid.MustParse(id).Timestamp(), replayAt)
	}

	for _, tt := range []struct {
		method, path string
		status       int
		reason       string
	}{
		{"POST", "/api/v1/inbox/" + id + "/replay", 409, "only failed and unmapped items are replayed"},
		{"POST", "/api/v1/inbox/no-such-id/replay", 404, "no inbox item no-such-id"},
		{"GET", "/api/v1/inbox?state=done", 400, "want one of pending, processed, unmapped, failed"},
		{"POST", "/api/v1/inbox/replay?state=processed", 400, "only failed and unmapped webhooks are replayed"},
	} {
		if r := do(t, tt.method, ts.URL+tt.path, nil, nil); r.Status != tt.status || !strings.Contains(string(r.Body), tt.reason) {
			t.Errorf("%s %s: %d %s, want %d with %q", tt.method, tt.path, r.Status, r.Body, tt.status, tt.reason)
		}
	}
}
