package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/store"
)

// fakeClock is a settable clock shared by a test and the gateway.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.set(t)
	return c
}

func (c *fakeClock) now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func (c *fakeClock) add(d time.Duration) { c.ns.Add(int64(d)) }

const timerRules = `rules:
  - id: pending-1h
    on: [ticket.*]
    connector: generic
    when: { field: status, is: pending }
    for: 1h
    then: [ { set_priority: high } ]
  - id: idle-chat
    on: [chat.*]
    connector: generic
    idle: true
    within: [5m, 15m]
    then: [ { add_tags: [idle] } ]
`

// timerConfig writes a config dir with the generic connector and rules.
func timerConfig(t *testing.T, rules string) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"connectors", "rules"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	generic, err := os.ReadFile("../configs/connectors/generic.yaml")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "connectors", "generic.yaml"), string(generic))
	writeFile(t, filepath.Join(dir, "rules", "timers.yaml"), rules)
	writeFile(t, filepath.Join(dir, "gateway.yaml"), "listen: \"127.0.0.1:0\"\nconnectors: [\"connectors/*.yaml\"]\nrules: [\"rules/*.yaml\"]\n")
	return dir
}

// runServer runs a gateway on dataDir until the returned stop is called.
func runServer(t *testing.T, cfg, dataDir string, env map[string]string, now func() time.Time) (*testServer, func()) {
	t.Helper()
	srv, err := New(Options{ConfigPath: cfg, Listen: "127.0.0.1:0", DataDir: dataDir, Env: testEnv(env), Now: now})
	if err != nil {
		t.Fatalf("start gateway: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	waitFor(t, "the gateway to start", func() bool { return srv.Addr() != "" && srv.ready.Load() })
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway run: %v", err)
		}
	}
	t.Cleanup(stop)
	return &testServer{Server: srv, URL: "http://" + srv.Addr()}, stop
}

func postGeneric(t *testing.T, url, body string) {
	t.Helper()
	if r := do(t, "POST", url+"/hooks/generic", []byte(body), map[string]string{"Content-Type": "application/json"}); r.Status != 202 {
		t.Fatalf("post: %d %s", r.Status, r.Body)
	}
}

func timerCount(t *testing.T, db *store.DB) int {
	t.Helper()
	st, err := db.Stats()
	if err != nil {
		t.Fatal(err)
	}
	return st.Timers
}

// Timers that came due while the gateway was down fire once when it starts
// again; a further restart fires nothing: each overdue timer's event, its
// delivery and the timer's removal were one transaction.
func TestOverdueTimersFireOnceAfterRestart(t *testing.T) {
	target := newRecorder(t, nil)
	env := map[string]string{"GENERIC_TARGET_URL": target.srv.URL}
	cfg, data := timerConfig(t, timerRules), t.TempDir()
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	clock := newFakeClock(t0)
	const n = 40

	gw, stop := runServer(t, cfg, data, env, clock.now)
	for i := range n {
		postGeneric(t, gw.URL, fmt.Sprintf(`{"type": "ticket.updated", "id": "T-%02d", "status": "pending"}`, i))
	}
	waitFor(t, "every ticket's timer to be armed", func() bool { return timerCount(t, gw.db) == n })
	var listed struct{ Timers []store.Timer }
	decodeJSON(t, do(t, "GET", gw.URL+"/api/v1/timers?rule=pending-1h&limit=1000", nil, nil).Body, &listed)
	if len(listed.Timers) != n || !listed.Timers[0].Due.Equal(t0.Add(time.Hour)) {
		t.Fatalf("GET /api/v1/timers: %d timers, first %+v", len(listed.Timers), listed.Timers[0])
	}
	var ent struct {
		Entity *event.Snapshot
		Timers []store.Timer
	}
	decodeJSON(t, do(t, "GET", gw.URL+"/api/v1/entities/generic/ticket/T-07", nil, nil).Body, &ent)
	if len(ent.Timers) != 1 || ent.Timers[0].Rule != "pending-1h" || ent.Entity.Clocks["pending-1h"] == nil {
		t.Fatalf("entity endpoint: %+v", ent)
	}
	stop()

	clock.add(3 * time.Hour) // the gateway was down when the timers came due
	gw, stop = runServer(t, cfg, data, env, clock.now)
	waitFor(t, "the overdue timers to fire", func() bool { return timerCount(t, gw.db) == 0 })
	waitFor(t, "their updates to reach the target", func() bool { return len(target.requests()) >= n })
	stop()

	gw, stop = runServer(t, cfg, data, env, clock.now)
	defer stop()
	if c := timerCount(t, gw.db); c != 0 {
		t.Fatalf("%d timers left after firing", c)
	}
	perRef := map[string]int{}
	for _, r := range target.requests() {
		if r.Body["rule"] != "pending-1h" {
			t.Fatalf("unexpected request %+v", r)
		}
		perRef[fmt.Sprint(r.Body["reference"])]++
	}
	for i := range n {
		ref := fmt.Sprintf("T-%02d", i)
		if perRef[ref] != 1 {
			t.Errorf("%s was updated %d times, want once", ref, perRef[ref])
		}
		evs, _, err := gw.db.ListEvents(store.EventFilter{Connector: "generic", Entity: "ticket", Reference: ref, Type: event.TypeTimerFired})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 1 || evs[0].Event.Rule != "pending-1h" || !evs[0].Event.OccurredAt.Equal(t0.Add(time.Hour)) || !evs[0].Event.ReceivedAt.Equal(t0.Add(3*time.Hour)) {
			t.Fatalf("%s: timer.fired events %+v", ref, evs)
		}
		var tr EventTrace
		if err := json.Unmarshal(evs[0].Trace, &tr); err != nil || len(tr.Matched) != 1 || len(tr.Deliveries) != 1 {
			t.Fatalf("%s: trace %s", ref, evs[0].Trace)
		}
		snap, err := gw.db.Entity(event.EntityKey{Connector: "generic", Entity: "ticket", Reference: ref})
		if err != nil || !snap.Clocks["pending-1h"].Done || len(snap.Fired["pending-1h"]) != 1 {
			t.Fatalf("%s: snapshot %+v %v", ref, snap, err)
		}
		// The timer.fired event carries the ticket's last variables.
		if evs[0].Event.Vars["REFERENCE"] != ref {
			t.Fatalf("%s: vars %v", ref, evs[0].Event.Vars)
		}
	}
}

// armDirect runs events through the pipeline's handleEvent in one
// transaction, as the pipeline does for a batch of webhooks.
func armDirect(t *testing.T, srv *Server, now time.Time, evs []*event.Event) {
	t.Helper()
	var earliest time.Time
	err := srv.db.Update(func(tx *store.Tx) error {
		bs := newBatchState(tx, srv.bundle.Load(), now)
		for _, ev := range evs {
			ev.ID = srv.ids.New(now)
			if _, err := srv.pipe.handleEvent(bs, ev, ""); err != nil {
				return err
			}
		}
		earliest = bs.earliest
		return bs.save()
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.pipe.committed(true, batchResult{earliest: earliest})
}

func chatEvent(ref string, at time.Time) *event.Event {
	return &event.Event{Connector: "generic", Type: "chat.message_received", Entity: "chat", Reference: ref, OccurredAt: at, ReceivedAt: at,
		Actor: event.Actor{Type: event.ActorCustomer}, Fields: map[string]any{"text": "hi"}, Vars: map[string]string{"REFERENCE": ref}}
}

// Many timers with spread due times: the scheduler fires exactly the due
// ones, in due order, batch by batch, each once; a timer fired past its
// within: window acts on nothing; moved timers fire at their new time.
func TestSchedulerFiresManyTimersInDueOrder(t *testing.T) {
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	clock := newFakeClock(t0)
	srv, err := New(Options{ConfigPath: timerConfig(t, timerRules), DataDir: t.TempDir(), Env: testEnv(nil), Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var mu sync.Mutex
	var fired []store.Timer
	srv.sched.fired = func(tm store.Timer, at time.Time) {
		mu.Lock()
		fired = append(fired, tm)
		mu.Unlock()
	}
	srv.sched.batch = 100
	const n = 1000
	// Chat i is last active at t0 + i/2 seconds: its idle timer is due 5 minutes later.
	step := 500 * time.Millisecond
	var evs []*event.Event
	for i := range n {
		evs = append(evs, chatEvent(fmt.Sprintf("C-%04d", i), t0.Add(time.Duration(i)*step)))
	}
	clock.set(t0.Add(n * step))
	armDirect(t, srv, clock.now(), evs)
	if c := timerCount(t, srv.db); c != n {
		t.Fatalf("%d timers armed, want %d", c, n)
	}
	// Chat 0 talks again: its timer moves to the end.
	armDirect(t, srv, clock.now(), []*event.Event{chatEvent("C-0000", clock.now())})

	// Half of the timers come due; the scheduler takes them in batches of 100.
	clock.set(t0.Add(5*time.Minute + (n/2-1)*step))
	total := 0
	for {
		k, _, err := srv.sched.fireDue()
		if err != nil {
			t.Fatal(err)
		}
		total += k
		if k < 100 {
			break
		}
	}
	if total != n/2-1 || len(fired) != n/2-1 {
		t.Fatalf("fired %d (%d reported), want %d", total, len(fired), n/2-1)
	}
	if !sort.SliceIsSorted(fired, func(i, j int) bool { return fired[i].Due.Before(fired[j].Due) }) {
		t.Fatal("timers fired out of due order")
	}
	if fired[0].Key.Reference != "C-0001" {
		t.Fatalf("first fired %s: the moved timer of C-0000 fired at its old time", fired[0].Key.Reference)
	}
	// The rest come due long after their window (the gateway was slow):
	// they fire, are consumed, and act on nothing.
	clock.add(time.Hour)
	for {
		k, _, err := srv.sched.fireDue()
		if err != nil {
			t.Fatal(err)
		}
		if k == 0 {
			break
		}
	}
	if len(fired) != n || timerCount(t, srv.db) != 0 {
		t.Fatalf("fired %d, %d timers left", len(fired), timerCount(t, srv.db))
	}
	seen := map[string]bool{}
	for _, tm := range fired {
		if seen[tm.Key.Reference] {
			t.Fatalf("%s fired twice", tm.Key.Reference)
		}
		seen[tm.Key.Reference] = true
	}
	st, err := srv.db.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Deliveries["pending"]; got != n/2-1 {
		t.Fatalf("%d deliveries, want %d (late timers must not act)", got, n/2-1)
	}
	late, _, err := srv.db.ListEvents(store.EventFilter{Connector: "generic", Entity: "chat", Reference: "C-0999", Type: event.TypeTimerFired})
	if err != nil || len(late) != 1 {
		t.Fatalf("late event: %v %v", late, err)
	}
	var tr EventTrace
	_ = json.Unmarshal(late[0].Trace, &tr)
	if len(tr.Rules) != 1 || !contains(tr.Rules[0].Skipped, "fired late") {
		t.Fatalf("late trace %s", late[0].Trace)
	}
}

// A timer armed earlier than the scheduler sleeps for wakes it.
func TestSchedulerWakesForAnEarlierTimer(t *testing.T) {
	s := &scheduler{wake: make(chan struct{}, 1)}
	due := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	s.sleepUntil.Store(due.UnixNano())
	s.armed(due.Add(time.Minute))
	if len(s.wake) != 0 {
		t.Fatal("a later timer woke the scheduler")
	}
	s.armed(due.Add(-time.Second))
	if len(s.wake) != 1 {
		t.Fatal("an earlier timer did not wake the scheduler")
	}
	s.armed(due.Add(-2 * time.Second)) // already awake: no second wake-up queued, no block
	if len(s.wake) != 1 {
		t.Fatal("wake-ups pile up")
	}
}

// A running gateway fires a short timer with the real clock once the
// webhook armed it (the scheduler is woken by the pipeline).
func TestRunningGatewayFiresTimer(t *testing.T) {
	target := newRecorder(t, nil)
	rules := "rules:\n  - id: pending-short\n    on: [ticket.*]\n    connector: generic\n    when: { field: status, is: pending }\n    for: 300ms\n    then: [ { set_priority: high } ]\n"
	gw, stop := runServer(t, timerConfig(t, rules), t.TempDir(), map[string]string{"GENERIC_TARGET_URL": target.srv.URL}, nil)
	defer stop()
	postGeneric(t, gw.URL, `{"type": "ticket.updated", "id": "R-1", "status": "pending"}`)
	postGeneric(t, gw.URL, `{"type": "ticket.updated", "id": "R-2", "status": "pending"}`)
	postGeneric(t, gw.URL, `{"type": "ticket.updated", "id": "R-2", "status": "open"}`)
	waitFor(t, "the update of R-1", func() bool { return len(target.requests()) == 1 })
	r := target.requests()[0]
	if r.Body["reference"] != "R-1" || r.Body["rule"] != "pending-short" {
		t.Fatalf("request %+v", r.Body)
	}
	waitFor(t, "no timer left", func() bool { return timerCount(t, gw.db) == 0 })
	evs, _, err := gw.db.ListEvents(store.EventFilter{Type: event.TypeTimerFired})
	if err != nil || len(evs) != 1 || evs[0].Event.Reference != "R-1" {
		t.Fatalf("timer.fired events: %+v %v", evs, err)
	}
}

// The dry-run API advances its clock too.
func TestDryRunAdvancesClock(t *testing.T) {
	gw, stop := runServer(t, timerConfig(t, timerRules), t.TempDir(), nil, nil)
	defer stop()
	body := `{"connector": "generic", "payload": {"type": "ticket.updated", "id": "D-1", "status": "pending"}, "now": "2026-01-05T10:00:00Z", "advance": "61m"}`
	r := do(t, "POST", gw.URL+"/api/v1/rules/test", []byte(body), map[string]string{"Content-Type": "application/json"})
	var res SimResult
	decodeJSON(t, r.Body, &res)
	if r.Status != 200 || len(res.Matched) != 1 || res.Matched[0] != "pending-1h" || len(res.Events) != 2 || res.Events[1].Type != event.TypeTimerFired {
		t.Fatalf("dry run %d: %s", r.Status, r.Body)
	}
	if timerCount(t, gw.db) != 0 {
		t.Fatal("a dry run armed a real timer")
	}
}

// Config test steps: the clock advances through timers in due order, each
// step's expectations cover that step only, and a failing step is named
// with its position.
func TestConfigTestSteps(t *testing.T) {
	cfg := timerConfig(t, timerRules)
	tests := `tests:
  - name: pending ticket
    connector: generic
    payload: { type: ticket.updated, id: S-1, status: pending }
    expect: { matched: [], timers: [ { rule: pending-1h, due: "2026-01-05T11:00:00Z" } ] }
    steps:
      - advance: 59m
        expect: { matched: [], now: "2026-01-05T10:59:00Z" }
      - advance: 1m
        expect: { matched: [pending-1h], events: [ { type: timer.fired, rule: pending-1h } ], timers: [] }
  - name: a wrong expectation in a step
    connector: generic
    payload: { type: ticket.updated, id: S-2, status: pending }
    steps:
      - advance: 30m
        payload: { type: ticket.updated, id: S-2, status: open }
        expect: { matched: [pending-1h] }
  - name: a step with nothing to do
    connector: generic
    payload: { type: ticket.updated, id: S-3, status: pending }
    steps:
      - expect: { matched: [] }
`
	file := filepath.Join(cfg, "rules", "timers_test.yaml")
	outcomes := runTestFile(t, cfg, file, tests, 3)
	if !outcomes[0].Passed() {
		t.Fatalf("case 1 failed: %v", outcomes[0].Failures)
	}
	if f := outcomes[1].Failures; len(f) == 0 || !contains(f[0], "step 1 at "+file+":15:9: matched rules differ") {
		t.Fatalf("case 2 failures: %q", f)
	}
	if f := outcomes[2].Failures; len(f) != 1 || !contains(f[0], "a step needs advance:, or a payload, fixture or event") {
		t.Fatalf("case 3 failures: %q", f)
	}
}
