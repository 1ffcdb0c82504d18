package gateway

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/rules"
	"github.com/hookline/hookline/store"
)

// prunedMetric reads hookline_pruned_total{kind} from GET /metrics (0 when
// the series is absent).
func prunedMetric(t *testing.T, url, kind string) int {
	t.Helper()
	return int(metricValue(t, url, `hookline_pruned_total{kind="`+kind+`"}`))
}

// End to end: webhooks become inbox items, events and deliveries; as the
// (fake) clock moves past each retention, housekeeping running on its own
// prunes that history, and only it.
func TestHousekeepingPrunesHistory(t *testing.T) {
	target := newRecorder(t, nil)
	env := map[string]string{"GENERIC_TARGET_URL": target.srv.URL}
	cfg := timerConfig(t, `rules:
  - id: prioritise
    on: [ticket.updated]
    connector: generic
    when: { field: status, is: open }
    then: [ { set_priority: high } ]
`)
	writeFile(t, filepath.Join(cfg, "gateway.yaml"), `listen: "127.0.0.1:0"
connectors: ["connectors/*.yaml"]
rules: ["rules/*.yaml"]
intake: { dedupe_window: 1h }
retention:
  inbox: 30d
  events: 60d
  deliveries: 30d
  interval: 20ms
`)
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	clock := newFakeClock(t0)
	gw, _ := runServer(t, cfg, t.TempDir(), env, clock.now)
	if got := gw.Bundle().File.Retention.Interval; got != 20*time.Millisecond {
		t.Fatalf("interval %v", got)
	}

	const n = 5
	var inboxIDs []string
	for i := range n {
		r := do(t, "POST", gw.URL+"/hooks/generic", fmt.Appendf(nil, `{"type": "ticket.updated", "id": "T-%d", "status": "open"}`, i),
			map[string]string{"Content-Type": "application/json"})
		if r.Status != 202 {
			t.Fatalf("post: %d %s", r.Status, r.Body)
		}
		inboxIDs = append(inboxIDs, r.JSON(t)["id"].(string))
	}
	stats := func() store.Stats {
		st, err := gw.db.Stats()
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	waitFor(t, "every update to be delivered", func() bool {
		st := stats()
		return st.InboxPending == 0 && st.Deliveries[store.DeliverySucceeded] == n
	})
	events := func() []store.StoredEvent {
		evs, _, err := gw.db.ListEvents(store.EventFilter{Connector: "generic"})
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
	if len(events()) != n {
		t.Fatalf("%d events, want %d", len(events()), n)
	}
	// Housekeeping has run many times by now and pruned no history.
	time.Sleep(100 * time.Millisecond)
	for _, id := range inboxIDs {
		if _, err := gw.db.Inbox(id); err != nil {
			t.Fatalf("inbox item %s pruned too early: %v", id, err)
		}
	}

	// Housekeeping counts a kind's records after its prune has committed:
	// wait for the counters, not only for the records to be gone.
	clock.add(31 * 24 * time.Hour)
	waitFor(t, "inbox items and deliveries to be pruned", func() bool {
		return stats().Deliveries[store.DeliverySucceeded] == 0 && prunedMetric(t, gw.URL, "inbox") == n &&
			prunedMetric(t, gw.URL, "deliveries") == n
	})
	for _, id := range inboxIDs {
		if _, err := gw.db.Inbox(id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("inbox item %s: %v, want ErrNotFound", id, err)
		}
	}
	if ds, _, err := gw.db.ListDeliveries(store.DeliveryFilter{}); err != nil || len(ds) != 0 {
		t.Errorf("deliveries left: %d, %v", len(ds), err)
	}
	if got := len(events()); got != n {
		t.Errorf("%d events left, want all %d (kept 60 days)", got, n)
	}
	if got := prunedMetric(t, gw.URL, "deliveries"); got != n {
		t.Errorf("hookline_pruned_total{kind=deliveries} = %d, want %d", got, n)
	}
	// The fingerprints of the deliveries expired long ago, and so did the
	// dedupe keys.
	if prunedMetric(t, gw.URL, "fingerprints") == 0 || prunedMetric(t, gw.URL, "dedupe") != n {
		t.Errorf("fingerprints pruned %d, dedupe keys pruned %d (want %d)", prunedMetric(t, gw.URL, "fingerprints"), prunedMetric(t, gw.URL, "dedupe"), n)
	}

	clock.add(30 * 24 * time.Hour)
	waitFor(t, "events to be pruned", func() bool { return len(events()) == 0 && prunedMetric(t, gw.URL, "events") == n })
	if got := prunedMetric(t, gw.URL, "events"); got != n {
		t.Errorf("hookline_pruned_total{kind=events} = %d, want %d", got, n)
	}
	// Snapshots are state, not history.
	for i := range n {
		if _, err := gw.db.Entity(event.EntityKey{Connector: "generic", Entity: "ticket", Reference: fmt.Sprint("T-", i)}); err != nil {
			t.Errorf("entity T-%d: %v", i, err)
		}
	}
	// The gateway still works after pruning.
	postGeneric(t, gw.URL, `{"type": "ticket.updated", "id": "T-new", "status": "open"}`)
	waitFor(t, "the new update to be delivered", func() bool { return stats().Deliveries[store.DeliverySucceeded] == 1 })
}

// With retention set to forever nothing of the history is pruned, while
// expired dedupe keys still are.
func TestHousekeepingKeepsForever(t *testing.T) {
	cfg := timerConfig(t, "rules: []\n")
	writeFile(t, filepath.Join(cfg, "gateway.yaml"), `listen: "127.0.0.1:0"
connectors: ["connectors/*.yaml"]
rules: ["rules/*.yaml"]
retention: { inbox: forever, events: 0, deliveries: forever }
`)
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	clock := newFakeClock(t0)
	gw, _ := runServer(t, cfg, t.TempDir(), nil, clock.now)
	postGeneric(t, gw.URL, `{"type": "ticket.updated", "id": "T-1", "status": "open"}`)
	waitFor(t, "the item to be processed", func() bool {
		st, err := gw.db.Stats()
		return err == nil && st.InboxPending == 0
	})
	clock.add(10 * 365 * 24 * time.Hour)
	h := gw.newHousekeeper()
	got := h.run(context.Background())
	if len(got) != 1 || got[pruneDedupe] != 1 {
		t.Fatalf("pruned %v, want only the expired dedupe key", got)
	}
	evs, _, err := gw.db.ListEvents(store.EventFilter{})
	if err != nil || len(evs) != 1 {
		t.Fatalf("events after ten years: %d, %v", len(evs), err)
	}
}

func TestRuleFiringsKeep(t *testing.T) {
	compile := func(src string) *rules.Set {
		t.Helper()
		b, errs := Load(timerConfig(t, src), testEnv(nil))
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		return b.Rules
	}
	cases := []struct {
		name, rules string
		want        time.Duration
	}{
		{"no limits", "rules: []\n", time.Hour},
		{"short limit", `rules:
  - id: r
    on: [ticket.updated]
    connector: generic
    then: [ { set_priority: high } ]
    limit: { max: 1, per: 10m, scope: rule }
`, time.Hour},
		{"day-long limits", `rules:
  - id: r
    on: [ticket.updated]
    connector: generic
    then: [ { set_priority: high } ]
    limit: { max: 1, per: 24h, scope: rule }
  - id: s
    on: [ticket.updated]
    connector: generic
    then: [ { set_priority: low } ]
    limit: { max: 3, per: 2d }
`, 48 * time.Hour},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ruleFiringsKeep(compile(tc.rules)); got != tc.want {
				t.Errorf("ruleFiringsKeep = %v, want %v", got, tc.want)
			}
		})
	}
	if got := ruleFiringsKeep(nil); got != time.Hour {
		t.Errorf("ruleFiringsKeep(nil) = %v", got)
	}
}

// Rule firings recorded for a rule-scope limit survive housekeeping for
// as long as the limit's window needs them.
func TestHousekeepingKeepsRuleFiringsForTheirWindow(t *testing.T) {
	cfg := timerConfig(t, `rules:
  - id: daily
    on: [ticket.updated]
    connector: generic
    then: [ { set_priority: high } ]
    limit: { max: 1, per: 24h, scope: rule }
`)
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	clock := newFakeClock(t0)
	srv, err := New(Options{ConfigPath: cfg, DataDir: t.TempDir(), Env: testEnv(nil), Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if err := srv.db.Update(func(tx *store.Tx) error { return tx.RecordRuleFiring("daily", t0) }); err != nil {
		t.Fatal(err)
	}
	h := srv.newHousekeeper()
	firings := func() int {
		var n int
		if err := srv.db.View(func(tx *store.Tx) error {
			var err error
			n, err = tx.RuleFirings("daily", t0.Add(-time.Hour))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	clock.add(23 * time.Hour)
	h.run(context.Background())
	if firings() != 1 {
		t.Fatal("a firing inside the rule's 24h window was pruned")
	}
	clock.add(2 * time.Hour)
	if got := h.run(context.Background()); got[pruneRuleFirings] != 1 || firings() != 0 {
		t.Fatalf("pruned %v; %d firings left, want the old one gone", got, firings())
	}
}
