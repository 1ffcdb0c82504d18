package gateway

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hookline/hookline/store"
)

// A rule's own-entity update sent through another connector (deliver_to)
// is checked for no-ops and rendered against the event's entity, not
// against whatever the target connector knows under the same reference;
// update_ticket with connector: names that connector's ticket and is
// checked against it.
func TestDeliverToReadsTheUpdatedEntity(t *testing.T) {
	tests := []struct {
		name          string
		rule          string
		genericStatus string // status of generic's own, unrelated ticket 1234
		desk2Status   string // status of desk2's ticket 1234 in its webhook
		wantSent      bool
	}{
		{"set_status through deliver_to: the desk2 ticket is pending", `
    when: { field: status, is: pending }
    then: [ { set_status: open } ]
    deliver_to: generic`, "open", "pending", true},
		{"set_status through deliver_to: the desk2 ticket is already open", `
    when: { field: status, is: open }
    then: [ { set_status: open } ]
    deliver_to: generic`, "pending", "open", false},
		{"update_ticket without connector through deliver_to", `
    when: { field: status, is: pending }
    then: [ { update_ticket: { reference: "{{ .Event.Reference }}", status: open } } ]
    deliver_to: generic`, "open", "pending", true},
		{"update_ticket naming generic's ticket", `
    when: { field: status, is: pending }
    then: [ { update_ticket: { connector: generic, reference: "1234", status: open } } ]`, "open", "pending", false},
		{"update_ticket naming generic's ticket that differs", `
    when: { field: status, is: pending }
    then: [ { update_ticket: { connector: generic, reference: "1234", status: open } } ]`, "solved", "pending", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := newRecorder(t, nil)
			env := map[string]string{"GENERIC_TARGET_URL": target.srv.URL}
			cfg := timerConfig(t, "rules:\n  - id: reopen-desk2\n    on: [ticket.updated]\n    connector: desk2"+tt.rule+"\n")
			g, err := os.ReadFile(filepath.Join(cfg, "connectors", "generic.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			// The request shows the state the update was rendered against.
			generic := strings.Replace(string(g), `"set": {{ json .Set }},`, `"set": {{ json .Set }}, "current_status": {{ json (index .Current "status") }},`, 1)
			if generic == string(g) {
				t.Fatal("generic.yaml: update body not found")
			}
			writeFile(t, filepath.Join(cfg, "connectors", "generic.yaml"), generic)
			d2 := strings.Replace(string(g), "connector: generic", "connector: desk2", 1)
			d2 = strings.Replace(d2, "${GENERIC_TOKEN:-}", "${DESK2_TOKEN:-}", 1)
			writeFile(t, filepath.Join(cfg, "connectors", "desk2.yaml"), d2)
			gw, _ := runServer(t, cfg, t.TempDir(), env, nil)

			// Another system's ticket 1234, known through the generic connector.
			postGeneric(t, gw.URL, `{"type":"ticket.updated","id":"1234","status":"`+tt.genericStatus+`"}`)
			waitEntityVersion(t, gw.URL, "generic", "ticket", "1234", 1)
			if r := do(t, "POST", gw.URL+"/hooks/desk2", []byte(`{"type":"ticket.updated","id":"1234","status":"`+tt.desk2Status+`"}`),
				map[string]string{"Content-Type": "application/json"}); r.Status != 202 {
				t.Fatalf("post: %d %s", r.Status, r.Body)
			}
			waitEntityVersion(t, gw.URL, "desk2", "ticket", "1234", 1)
			evs, _, err := gw.db.ListEvents(store.EventFilter{Connector: "desk2"})
			if err != nil || len(evs) != 1 {
				t.Fatalf("desk2 events: %d, %v", len(evs), err)
			}
			var tr EventTrace
			if err := json.Unmarshal(evs[0].Trace, &tr); err != nil {
				t.Fatal(err)
			}
			if !tt.wantSent {
				if len(tr.Deliveries) != 0 || len(tr.Suppressed) != 1 {
					t.Fatalf("deliveries %v, suppressed %v: want the update dropped as a no-op", tr.Deliveries, tr.Suppressed)
				}
				return
			}
			if len(tr.Deliveries) != 1 {
				t.Fatalf("deliveries %v, suppressed %v: want one update sent", tr.Deliveries, tr.Suppressed)
			}
			waitFor(t, "the update", func() bool { return len(target.requests()) == 1 })
			body := target.requests()[0].Body
			if set, _ := body["set"].(map[string]any); set["status"] != "open" {
				t.Errorf("set = %v, want status open", body["set"])
			}
			want := tt.desk2Status
			if strings.Contains(tt.rule, "connector: generic") {
				want = tt.genericStatus
			}
			if body["current_status"] != want {
				t.Errorf(".Current status = %v, want %s (the updated ticket's)", body["current_status"], want)
			}
		})
	}
}

// The echo of an update sent through deliver_to comes back from the
// platform whose entity it changed (the event's connector, desk2): it is
// recognised as Hookline's own there, and its delivery's change is
// not claimed for the unrelated ticket the sending connector (generic)
// knows under the same reference.
func TestDeliverToEchoIsRecognisedOnTheUpdatedEntity(t *testing.T) {
	target := newRecorder(t, nil)
	env := map[string]string{"GENERIC_TARGET_URL": target.srv.URL}
	cfg := timerConfig(t, `rules:
  - id: reopen-desk2
    on: [ticket.updated]
    connector: desk2
    when: { field: status, is: pending }
    then: [ { set_status: open } ]
    deliver_to: generic
`)
	g, err := os.ReadFile(filepath.Join(cfg, "connectors", "generic.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// Without custom.* (every key of the payload), an echo's only change
	// is the status.
	generic := strings.Replace(string(g), "        custom: \"@this\"\n", "", 1)
	if generic == string(g) {
		t.Fatal("generic.yaml: custom fields not found")
	}
	writeFile(t, filepath.Join(cfg, "connectors", "generic.yaml"), generic)
	d2 := strings.Replace(generic, "connector: generic", "connector: desk2", 1)
	d2 = strings.Replace(d2, "${GENERIC_TOKEN:-}", "${DESK2_TOKEN:-}", 1)
	writeFile(t, filepath.Join(cfg, "connectors", "desk2.yaml"), d2)
	gw, _ := runServer(t, cfg, t.TempDir(), env, nil)

	postDesk2 := func(status string) {
		t.Helper()
		if r := do(t, "POST", gw.URL+"/hooks/desk2", []byte(`{"type":"ticket.updated","id":"1234","status":"`+status+`"}`),
			map[string]string{"Content-Type": "application/json"}); r.Status != 202 {
			t.Fatalf("post: %d %s", r.Status, r.Body)
		}
	}
	postDesk2("pending")
	waitEntityVersion(t, gw.URL, "desk2", "ticket", "1234", 1)
	waitFor(t, "the update", func() bool { return len(target.requests()) == 1 })

	// generic's own ticket 1234 (another system's) moves to open too.
	postGeneric(t, gw.URL, `{"type":"ticket.updated","id":"1234","status":"open"}`)
	waitEntityVersion(t, gw.URL, "generic", "ticket", "1234", 1)
	// The platform echoes the update on desk2.
	postDesk2("open")
	waitEntityVersion(t, gw.URL, "desk2", "ticket", "1234", 2)

	last := func(conn string) *store.StoredEvent {
		t.Helper()
		evs, _, err := gw.db.ListEvents(store.EventFilter{Connector: conn})
		if err != nil || len(evs) == 0 {
			t.Fatalf("%s events: %d, %v", conn, len(evs), err)
		}
		latest := &evs[0]
		for i := range evs {
			if evs[i].Event.ID > latest.Event.ID {
				latest = &evs[i]
			}
		}
		return latest
	}
	if ev := last("desk2").Event; !ev.Causation.Echo || ev.Actor.Type != "gateway" {
		t.Errorf("desk2's echo: echo=%v actor=%s, want it recognised as Hookline's own", ev.Causation.Echo, ev.Actor.Type)
	}
	if ev := last("generic").Event; ev.Causation.Echo || ev.Actor.Type == "gateway" || len(ev.Causation.EchoedFields) > 0 {
		t.Errorf("generic's unrelated ticket: echo=%v actor=%s echoed_fields=%v, want a person's change", ev.Causation.Echo, ev.Actor.Type, ev.Causation.EchoedFields)
	}
}

// An update sent through deliver_to that is not echoed yet keeps the
// field it changes unsettled on the entity it updates: a later update
// back to the value the snapshot still shows is sent, not dropped as a
// no-op.
func TestDeliverToUnsettledFieldIsNotANoOp(t *testing.T) {
	target := newRecorder(t, nil)
	env := map[string]string{"GENERIC_TARGET_URL": target.srv.URL}
	cfg := timerConfig(t, `rules:
  - id: solve-low
    on: [ticket.updated]
    connector: desk2
    when: { field: priority, is: low }
    then: [ { set_status: solved } ]
    deliver_to: generic
  - id: reopen-high
    on: [ticket.updated]
    connector: desk2
    when: { field: priority, is: high }
    then: [ { set_status: open } ]
    deliver_to: generic
`)
	g, err := os.ReadFile(filepath.Join(cfg, "connectors", "generic.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	d2 := strings.Replace(string(g), "connector: generic", "connector: desk2", 1)
	d2 = strings.Replace(d2, "${GENERIC_TOKEN:-}", "${DESK2_TOKEN:-}", 1)
	writeFile(t, filepath.Join(cfg, "connectors", "desk2.yaml"), d2)
	gw, _ := runServer(t, cfg, t.TempDir(), env, nil)
	post := func(body string) {
		t.Helper()
		if r := do(t, "POST", gw.URL+"/hooks/desk2", []byte(body), map[string]string{"Content-Type": "application/json"}); r.Status != 202 {
			t.Fatalf("post: %d %s", r.Status, r.Body)
		}
	}
	post(`{"type":"ticket.updated","id":"1234","status":"open","priority":"low"}`)
	waitFor(t, "the solve", func() bool { return len(target.requests()) == 1 })
	// No echo yet: the snapshot still says open, our solve may be landing.
	post(`{"type":"ticket.updated","id":"1234","priority":"high"}`)
	waitEntityVersion(t, gw.URL, "desk2", "ticket", "1234", 2)
	waitFor(t, "the reopen", func() bool { return len(target.requests()) == 2 })
	if set, _ := target.requests()[1].Body["set"].(map[string]any); set["status"] != "open" {
		t.Errorf("second update set %v, want status open", target.requests()[1].Body["set"])
	}
}
