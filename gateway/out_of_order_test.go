package gateway

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/hookline/hookline/store"
)

// entityView reads an entity through the admin API (nil when 404).
func entityView(t *testing.T, base, conn, ent, ref string) map[string]any {
	t.Helper()
	r := do(t, "GET", base+"/api/v1/entities/"+conn+"/"+ent+"/"+ref, nil, nil)
	if r.Status == 404 {
		return nil
	}
	if r.Status != 200 {
		t.Fatalf("entity: %d %s", r.Status, r.Body)
	}
	return r.JSON(t)["entity"].(map[string]any)
}

// waitEntityVersion waits until the entity's snapshot reached version v
// and returns it.
func waitEntityVersion(t *testing.T, base, conn, ent, ref string, v int) map[string]any {
	t.Helper()
	var e map[string]any
	waitFor(t, fmt.Sprintf("entity version %d", v), func() bool {
		e = entityView(t, base, conn, ent, ref)
		return e != nil && int(e["version"].(float64)) >= v
	})
	return e
}

// An older webhook processed after a newer one (the platform retried it)
// does not roll the entity back: status and its times stay the newer
// ones, no rule sees a transition that never happened, and no timer is
// armed on a state the ticket has left.
func TestOlderWebhookDoesNotRollSnapshotBack(t *testing.T) {
	target := newRecorder(t, nil)
	env := map[string]string{"GENERIC_TARGET_URL": target.srv.URL}
	cfg := timerConfig(t, `rules:
  - id: reopened
    on: [ticket.updated]
    connector: generic
    when: { field: status, changed_to: pending }
    then: [ { add_tags: [reopened] } ]
  - id: pending-1h
    on: [ticket.*]
    connector: generic
    when: { field: status, is: pending }
    for: 1h
    then: [ { set_priority: high } ]
`)
	clock := newFakeClock(time.Date(2026, 1, 5, 10, 10, 0, 0, time.UTC))
	gw, _ := runServer(t, cfg, t.TempDir(), env, clock.now)

	// Platform: pending at 10:00, solved at 10:05; the 10:05 webhook comes first.
	postGeneric(t, gw.URL, `{"type":"ticket.updated","id":"T1","status":"solved","occurred_at":"2026-01-05T10:05:00Z"}`)
	waitEntityVersion(t, gw.URL, "generic", "ticket", "T1", 1)
	postGeneric(t, gw.URL, `{"type":"ticket.updated","id":"T1","status":"pending","occurred_at":"2026-01-05T10:00:00Z"}`)
	e := waitEntityVersion(t, gw.URL, "generic", "ticket", "T1", 2)
	time.Sleep(300 * time.Millisecond)
	if st := e["fields"].(map[string]any)["status"]; st != "solved" {
		t.Errorf("status = %v, want solved (the platform's latest state, 10:05)", st)
	}
	for field, want := range map[string]string{
		"status_since": "2026-01-05T10:05:00Z",
		"updated_at":   "2026-01-05T10:05:00Z",
		"created_at":   "2026-01-05T10:00:00Z", // the entity's earliest event
	} {
		if got, _ := e[field].(string); got != want {
			t.Errorf("%s = %v, want %s", field, e[field], want)
		}
	}
	if at, _ := e["fields_at"].(map[string]any)["status"].(string); at != "2026-01-05T10:05:00Z" {
		t.Errorf("fields_at = %v, want status as of 2026-01-05T10:05:00Z", e["fields_at"])
	}
	if n := len(target.requests()); n != 0 {
		t.Errorf("%d deliveries sent: rule reopened fired on solved->pending, a transition that never happened", n)
	}
	if n := timerCount(t, gw.db); n != 0 {
		t.Errorf("%d timers armed: pending-1h on a ticket that is solved", n)
	}
}

// Message counters with messages out of order: a late agent reply (older
// than the customer's last message) does not answer it; a late customer
// message (older than the agent's reply) was answered by it.
func TestOutOfOrderMessagesCountUnanswered(t *testing.T) {
	tests := []struct {
		name          string
		first, second string
		want          float64
	}{
		{"late agent reply", `{"type":"chat.message_received","id":"C1","text":"still broken?","occurred_at":"2026-01-05T10:05:00Z"}`,
			`{"type":"chat.message_sent","id":"C1","text":"we are on it","occurred_at":"2026-01-05T10:00:00Z"}`, 1},
		{"late customer message", `{"type":"chat.message_sent","id":"C1","text":"fixed","occurred_at":"2026-01-05T10:05:00Z"}`,
			`{"type":"chat.message_received","id":"C1","text":"is it fixed?","occurred_at":"2026-01-05T10:00:00Z"}`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := timerConfig(t, "rules: []\n")
			clock := newFakeClock(time.Date(2026, 1, 5, 10, 10, 0, 0, time.UTC))
			gw, _ := runServer(t, cfg, t.TempDir(), nil, clock.now)
			postGeneric(t, gw.URL, tt.first)
			waitEntityVersion(t, gw.URL, "generic", "chat", "C1", 1)
			postGeneric(t, gw.URL, tt.second)
			e := waitEntityVersion(t, gw.URL, "generic", "chat", "C1", 2)
			if got := e["unanswered_customer_messages"].(float64); got != tt.want {
				t.Errorf("unanswered_customer_messages = %v, want %v (last customer %v, last agent %v)", got, tt.want,
					e["last_customer_message_at"], e["last_agent_message_at"])
			}
		})
	}
}

// zendeskOnlyConfig is a config dir with the shipped zendesk connector and
// the given rules only.
func zendeskOnlyConfig(t *testing.T, rules string) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"connectors", "rules"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	zd, err := os.ReadFile("../configs/connectors/zendesk.yaml")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "connectors", "zendesk.yaml"), string(zd))
	writeFile(t, filepath.Join(dir, "rules", "r.yaml"), rules)
	writeFile(t, filepath.Join(dir, "gateway.yaml"), "listen: \"127.0.0.1:0\"\nconnectors: [\"connectors/*.yaml\"]\nrules: [\"rules/*.yaml\"]\n")
	return dir
}

// zendeskTicketEvent builds a Zendesk event-subscription webhook of ticket
// 5158 from the test payload of kind, with the ticket's current state in
// detail and, when given, the event's previous and current values.
func zendeskTicketEvent(t *testing.T, kind, id, at, status, priority, prev, cur string) []byte {
	t.Helper()
	raw, err := os.ReadFile("../connectors/testdata/payloads/zendesk-ticket-" + kind + ".json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	m["id"], m["time"] = id, at
	d := m["detail"].(map[string]any)
	d["status"], d["priority"], d["updated_at"] = status, priority, at
	if prev != "" || cur != "" {
		m["event"] = map[string]any{"previous": prev, "current": cur}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ruleMatches counts the stored events whose trace matched rule.
func ruleMatches(t *testing.T, db *store.DB, rule string) (n int, types []string) {
	t.Helper()
	evs, _, err := db.ListEvents(store.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		var tr EventTrace
		if err := json.Unmarshal(e.Trace, &tr); err != nil {
			t.Fatal(err)
		}
		if slices.Contains(tr.Matched, rule) {
			n++
			types = append(types, e.Event.Type)
		}
	}
	return n, types
}

// One save on Zendesk that changes status and priority posts
// status_changed and priority_changed, both with the whole current ticket
// in detail: a rule on the priority change fires once, whichever webhook
// comes first.
func TestZendeskOneSaveFiresRuleOnce(t *testing.T) {
	for _, order := range []string{"status first", "priority first"} {
		t.Run(order, func(t *testing.T) {
			cfg := zendeskOnlyConfig(t, `rules:
  - id: escalated
    on: [ticket.*]
    connector: zendesk
    when: { field: priority, changed_to: high }
    then:
      - log: { file: escalated.log, line: "{{ .Event.Reference }} escalated" }
  - id: opened
    on: [ticket.*]
    connector: zendesk
    when: { field: status, changed_to: open }
    then:
      - log: { file: opened.log, line: "{{ .Event.Reference }} opened" }
`)
			gw := startServer(t, cfg, nil, nil)
			post := func(body []byte, inv string) {
				t.Helper()
				if r := postZendesk(t, gw, body, time.Now().UTC().Format(time.RFC3339), inv); r.Status != 202 {
					t.Fatalf("post: %d %s", r.Status, r.Body)
				}
			}
			post(zendeskTicketEvent(t, "created", "E0", "2026-03-02T09:00:00Z", "NEW", "LOW", "", ""), "inv-0")
			waitEntityVersion(t, gw.URL, "zendesk", "ticket", "5158", 1)
			// 09:15, one save: status NEW -> OPEN and priority LOW -> HIGH.
			status := zendeskTicketEvent(t, "status-changed", "E1", "2026-03-02T09:15:00Z", "OPEN", "HIGH", "NEW", "OPEN")
			priority := zendeskTicketEvent(t, "priority-changed", "E2", "2026-03-02T09:15:00Z", "OPEN", "HIGH", "LOW", "HIGH")
			if order == "priority first" {
				status, priority = priority, status
			}
			post(status, "inv-1")
			waitEntityVersion(t, gw.URL, "zendesk", "ticket", "5158", 2)
			post(priority, "inv-2")
			waitEntityVersion(t, gw.URL, "zendesk", "ticket", "5158", 3)
			time.Sleep(200 * time.Millisecond)
			for _, rule := range []string{"escalated", "opened"} {
				if n, types := ruleMatches(t, gw.db, rule); n != 1 {
					t.Errorf("rule %s matched %d times (on %v) for one change, want once", rule, n, types)
				}
			}
		})
	}
}
