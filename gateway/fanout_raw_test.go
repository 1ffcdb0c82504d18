package gateway

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/hookline/hookline/store"
)

// A WhatsApp batch of statuses fans out to one event per status. Each
// event keeps as raw the status that produced it, not the whole batch: the
// events of one webhook together hold about the body once (the inbox item
// keeps the whole body), and listing them answers about that much, not
// events x body (measured before: 300 events held 92.9 MB of raw).
func TestFanOutEventsKeepTheirElementAsRaw(t *testing.T) {
	const n = 300
	pad := strings.Repeat("x", 900)
	statuses := make([]string, n)
	for i := range statuses {
		statuses[i] = fmt.Sprintf(`{"id":"wamid.%d","status":"failed","timestamp":"1750030073","recipient_id":"1650555%04d","errors":[{"code":131026,"title":"%s%d"}]}`, i, i, pad, i)
	}
	body := []byte(`{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"phone_number_id":"106540352242922"},"statuses":[` +
		strings.Join(statuses, ",") + `]}}]}]}`)

	srv, err := New(Options{ConfigPath: copyConfigs(t), Listen: "127.0.0.1:0", DataDir: t.TempDir(), Env: testEnv(nil)})
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, srv)
	base := "http://" + srv.Addr()
	r := do(t, "POST", base+"/hooks/whatsapp", body, map[string]string{
		"Content-Type": "application/json", "X-Hub-Signature-256": metaSignature("test-whatsapp-secret", body)})
	if r.Status != 202 {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	id, _ := r.JSON(t)["id"].(string)
	if item := waitFinished(t, base, id); item["state"] != store.InboxProcessed {
		t.Fatalf("inbox item %v", item)
	}

	evs, _, err := srv.Store().ListEvents(store.EventFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != n {
		t.Fatalf("%d events, want %d", len(evs), n)
	}
	want := make(map[string]string, n) // reference -> its status element
	for i, s := range statuses {
		want[fmt.Sprintf("1650555%04d", i)] = s // the reference is the recipient
	}
	stored := 0
	for _, se := range evs {
		e := se.Event
		stored += len(e.Raw)
		if string(e.Raw) != want[e.Reference] {
			t.Fatalf("event %s (%s) raw is %d bytes, want its status element (%d bytes)", e.ID, e.Reference, len(e.Raw), len(want[e.Reference]))
		}
		if e.InboxID != id {
			t.Fatalf("event %s inbox_id %q, want %q: the whole body must stay reachable", e.ID, e.InboxID, id)
		}
	}
	if stored > len(body) {
		t.Fatalf("one %d-byte webhook stored %d bytes of raw in its %d events", len(body), stored, len(evs))
	}

	list := do(t, "GET", base+"/api/v1/events?limit=1000", nil, nil)
	if list.Status != 200 {
		t.Fatalf("list status %d: %s", list.Status, list.Body)
	}
	var page struct {
		Events []struct {
			Raw json.RawMessage `json:"raw"`
		} `json:"events"`
	}
	if err := json.Unmarshal(list.Body, &page); err != nil || len(page.Events) != n {
		t.Fatalf("list: %d events, err %v", len(page.Events), err)
	}
	listed := 0
	for _, e := range page.Events {
		if len(e.Raw) == 0 {
			t.Fatal("a listed event has no raw")
		}
		listed += len(e.Raw)
	}
	if listed > len(body) {
		t.Fatalf("listing the events of one %d-byte webhook answered %d bytes of raw", len(body), listed)
	}
}
