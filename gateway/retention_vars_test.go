package gateway

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/hookline/hookline/store"
)

// A time-based rule renders its templates with the entity's last vars
// (%%REFERENCE%%) also when events retention pruned the entity's events
// before its timer fired: the snapshot keeps them.
func TestTimerRendersVarsAfterEventsArePruned(t *testing.T) {
	t.Run("events kept 90d (control)", func(t *testing.T) { timerVarsAfterPruning(t, "90d") })
	t.Run("events kept 1h", func(t *testing.T) { timerVarsAfterPruning(t, "1h") })
}

func timerVarsAfterPruning(t *testing.T, keep string) {
	target := newRecorder(t, nil)
	env := map[string]string{"GENERIC_TARGET_URL": target.srv.URL}
	cfg := timerConfig(t, `rules:
  - id: stale
    on: [ticket.*]
    connector: generic
    when: { field: status, is: pending }
    for: 3h
    then:
      - update_ticket: { reference: "%%REFERENCE%%", priority: high }
`)
	writeFile(t, filepath.Join(cfg, "gateway.yaml"), `listen: "127.0.0.1:0"
connectors: ["connectors/*.yaml"]
rules: ["rules/*.yaml"]
retention:
  events: `+keep+`
  interval: 20ms
`)
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	clock := newFakeClock(t0)
	gw, _ := runServer(t, cfg, t.TempDir(), env, clock.now)
	postGeneric(t, gw.URL, `{"type": "ticket.updated", "id": "T-1", "status": "pending"}`)
	waitFor(t, "the timer", func() bool { return timerCount(t, gw.db) == 1 })

	clock.add(2 * time.Hour) // the webhook's event is older than events: 1h
	if keep == "1h" {
		waitFor(t, "the event to be pruned", func() bool {
			evs, _, _ := gw.db.ListEvents(store.EventFilter{})
			return len(evs) == 0
		})
	}
	clock.add(time.Hour + time.Second) // the 3h timer comes due
	waitFor(t, "the timer to fire", func() bool { return timerCount(t, gw.db) == 0 })
	time.Sleep(300 * time.Millisecond)

	evs, _, _ := gw.db.ListEvents(store.EventFilter{Type: "timer.fired"})
	for _, e := range evs {
		t.Logf("timer.fired trace: %s", e.Trace)
	}
	if got := target.requests(); len(got) != 1 || got[0].Body["reference"] != "T-1" {
		t.Fatalf("the 3h rule sent %d requests (%+v); want one update of T-1: the entity's last event, "+
			"whose vars the timer needs, was pruned by events retention", len(got), got)
	}
}
