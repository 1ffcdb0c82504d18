package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/store"
)

// pendingRule is a for: rule on generic tickets held pending for dur (YAML
// duration), with extra time keys (each a line of the rule).
func pendingRule(id, dur string, extra ...string) string {
	s := "  - id: " + id + "\n    on: [ticket.*]\n    connector: generic\n    when: { field: status, is: pending }\n    for: " + dur + "\n"
	for _, e := range extra {
		s += "    " + e + "\n"
	}
	return s + "    then: [ { set_priority: high } ]\n"
}

func rulesFile(rs ...string) string { return "rules:\n" + strings.Join(rs, "") }

func ticketKey(ref string) event.EntityKey {
	return event.EntityKey{Connector: "generic", Entity: "ticket", Reference: ref}
}

func pendingTicket(ref string, at time.Time) *event.Event {
	return &event.Event{Connector: "generic", Type: "ticket.updated", Entity: "ticket", Reference: ref, OccurredAt: at, ReceivedAt: at,
		Actor: event.Actor{Type: event.ActorAgent}, Fields: map[string]any{"status": "pending"}, Vars: map[string]string{"REFERENCE": ref}}
}

// timerOf returns the timer of a ticket and rule, or nil.
func timerOf(t *testing.T, db *store.DB, ref, rule string) *store.Timer {
	t.Helper()
	var tm *store.Timer
	err := db.View(func(tx *store.Tx) error {
		var err error
		tm, err = tx.Timer(ticketKey(ref), rule)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func listTimers(t *testing.T, url, rule string) []store.Timer {
	t.Helper()
	var listed struct{ Timers []store.Timer }
	decodeJSON(t, do(t, "GET", url+"/api/v1/timers?rule="+rule+"&limit=1000", nil, nil).Body, &listed)
	return listed.Timers
}

func storedSignatures(t *testing.T, db *store.DB) map[string]string {
	t.Helper()
	sigs, found, err := db.TimingSignatures()
	if err != nil || !found {
		t.Fatalf("stored signatures: %v (found %v)", err, found)
	}
	return sigs
}

// (a) A pending ticket armed a for: 48h timer; the rule is edited to 1h and
// the config reloaded: the timer moves to since+1h, and once the clock
// passes it the rule fires and its update is delivered.
func TestReloadMovesTimerOfShortenedRule(t *testing.T) {
	target := newRecorder(t, nil)
	env := map[string]string{"GENERIC_TARGET_URL": target.srv.URL}
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	clock := newFakeClock(t0)
	cfg := timerConfig(t, rulesFile(pendingRule("pending-long", "48h")))
	gw, stop := runServer(t, cfg, t.TempDir(), env, clock.now)
	defer stop()
	gw.retime.wait() // the start-up check

	postGeneric(t, gw.URL, `{"type": "ticket.updated", "id": "T-1", "status": "pending"}`)
	waitFor(t, "the 48h timer", func() bool { return timerCount(t, gw.db) == 1 })
	if ts := listTimers(t, gw.URL, "pending-long"); len(ts) != 1 || !ts[0].Due.Equal(t0.Add(48*time.Hour)) {
		t.Fatalf("before the edit: %+v", ts)
	}
	before := storedSignatures(t, gw.db)["pending-long"]

	clock.add(10 * time.Minute)
	writeFile(t, filepath.Join(cfg, "rules", "timers.yaml"), rulesFile(pendingRule("pending-long", "1h")))
	if err := gw.Reload(); err != nil {
		t.Fatal(err)
	}
	gw.retime.wait()
	ts := listTimers(t, gw.URL, "pending-long")
	if len(ts) != 1 || !ts[0].Due.Equal(t0.Add(time.Hour)) || !ts[0].ArmedAt.Equal(clock.now()) {
		t.Fatalf("after the edit: %+v, want due %v armed at %v", ts, t0.Add(time.Hour), clock.now())
	}
	if after := storedSignatures(t, gw.db)["pending-long"]; after == before || after != gw.Bundle().Rules.TimingSignature("pending-long") {
		t.Fatalf("stored signature %q (was %q)", after, before)
	}
	if len(target.requests()) != 0 {
		t.Fatal("the rule fired before its new due time")
	}

	clock.add(time.Hour)
	gw.sched.notify()
	waitFor(t, "the update of T-1", func() bool { return len(target.requests()) == 1 })
	if r := target.requests()[0]; r.Body["reference"] != "T-1" || r.Body["rule"] != "pending-long" {
		t.Fatalf("request %+v", r.Body)
	}
	waitFor(t, "the timer to be consumed", func() bool { return timerCount(t, gw.db) == 0 })
}

// (b) Removing a time-based rule cancels its timers (and drops its clock
// from the snapshots); (d) the timers of an unchanged rule are not
// written: due and armed-at stay as they were.
func TestReloadCancelsTimersOfRemovedRule(t *testing.T) {
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	clock := newFakeClock(t0)
	cfg := timerConfig(t, rulesFile(pendingRule("pending-long", "48h"), pendingRule("pending-short", "2h")))
	gw, stop := runServer(t, cfg, t.TempDir(), nil, clock.now)
	defer stop()
	gw.retime.wait()
	for i := range 3 {
		armDirect(t, gw.Server, clock.now(), []*event.Event{pendingTicket(fmt.Sprintf("T-%d", i), t0)})
	}
	if c := timerCount(t, gw.db); c != 6 {
		t.Fatalf("%d timers armed, want 6", c)
	}
	keep := listTimers(t, gw.URL, "pending-short")

	var reports []retimeReport
	var mu sync.Mutex
	gw.retime.finished = func(rep retimeReport, err error) {
		if err != nil {
			t.Errorf("retime: %v", err)
		}
		mu.Lock()
		reports = append(reports, rep)
		mu.Unlock()
	}
	clock.add(time.Minute)
	writeFile(t, filepath.Join(cfg, "rules", "timers.yaml"), rulesFile(pendingRule("pending-short", "2h")))
	if err := gw.Reload(); err != nil {
		t.Fatal(err)
	}
	gw.retime.wait()
	if ts := listTimers(t, gw.URL, "pending-long"); len(ts) != 0 {
		t.Fatalf("timers of the removed rule left: %+v", ts)
	}
	for i := range 3 {
		snap, err := gw.db.Entity(ticketKey(fmt.Sprintf("T-%d", i)))
		if err != nil || snap.Clocks["pending-long"] != nil || snap.Clocks["pending-short"] == nil {
			t.Fatalf("clocks of T-%d: %+v %v", i, snap.Clocks, err)
		}
	}
	if got := listTimers(t, gw.URL, "pending-short"); fmt.Sprint(got) != fmt.Sprint(keep) {
		t.Fatalf("unchanged rule's timers were rewritten:\n got %+v\nwant %+v", got, keep)
	}
	if sigs := storedSignatures(t, gw.db); len(sigs) != 1 || sigs["pending-short"] == "" {
		t.Fatalf("stored signatures %v", sigs)
	}
	mu.Lock()
	if len(reports) != 1 || fmt.Sprint(reports[0].Rules) != "[pending-long]" || *reports[0].Counts["pending-long"] != (retimeCount{Cancelled: 3}) || reports[0].Counts["pending-short"] != nil {
		t.Fatalf("report %+v", reports)
	}
	mu.Unlock()

	// An edit that does not touch the timing (another action) walks nothing.
	writeFile(t, filepath.Join(cfg, "rules", "timers.yaml"), rulesFile(strings.Replace(pendingRule("pending-short", "2h"), "high", "urgent", 1)))
	if err := gw.Reload(); err != nil {
		t.Fatal(err)
	}
	gw.retime.wait()
	mu.Lock()
	defer mu.Unlock()
	if len(reports) != 2 || reports[1].Rules != nil || len(reports[1].Counts) != 0 {
		t.Fatalf("report of an edit without timing changes %+v", reports[1])
	}
}

// (c) The rule file is edited while the gateway is down: the timer is
// retimed when it starts on the same data directory.
func TestRestartRetimesTimers(t *testing.T) {
	target := newRecorder(t, nil)
	env := map[string]string{"GENERIC_TARGET_URL": target.srv.URL}
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	clock := newFakeClock(t0)
	cfg, data := timerConfig(t, rulesFile(pendingRule("pending-long", "48h"))), t.TempDir()
	gw, stop := runServer(t, cfg, data, env, clock.now)
	postGeneric(t, gw.URL, `{"type": "ticket.updated", "id": "T-1", "status": "pending"}`)
	waitFor(t, "the 48h timer", func() bool { return timerCount(t, gw.db) == 1 })
	stop()

	writeFile(t, filepath.Join(cfg, "rules", "timers.yaml"), rulesFile(pendingRule("pending-long", "3h")))
	clock.add(time.Hour)
	gw, stop = runServer(t, cfg, data, env, clock.now)
	defer stop()
	gw.retime.wait()
	if ts := listTimers(t, gw.URL, "pending-long"); len(ts) != 1 || !ts[0].Due.Equal(t0.Add(3*time.Hour)) {
		t.Fatalf("after the restart: %+v, want due %v", ts, t0.Add(3*time.Hour))
	}
	clock.add(2 * time.Hour)
	gw.sched.notify()
	waitFor(t, "the update of T-1", func() bool { return len(target.requests()) == 1 })
}

// (e) A calendar edited in gateway.yaml moves the timers of the rules on
// it, to the due time the new hours give.
func TestCalendarEditRetimes(t *testing.T) {
	// Monday 5 January 2026, 16:00 UTC.
	t0 := time.Date(2026, 1, 5, 16, 0, 0, 0, time.UTC)
	clock := newFakeClock(t0)
	cfg := timerConfig(t, rulesFile(pendingRule("pending-business", "4h", "calendar: support"), pendingRule("pending-wall", "4h")))
	gatewayYAML := func(hours string) string {
		return "listen: \"127.0.0.1:0\"\nconnectors: [\"connectors/*.yaml\"]\nrules: [\"rules/*.yaml\"]\n" +
			"calendars:\n  support:\n    timezone: UTC\n    hours: { mon-fri: \"" + hours + "\" }\n"
	}
	writeFile(t, filepath.Join(cfg, "gateway.yaml"), gatewayYAML("09:00-18:00"))
	gw, stop := runServer(t, cfg, t.TempDir(), nil, clock.now)
	defer stop()
	gw.retime.wait()
	armDirect(t, gw.Server, t0, []*event.Event{pendingTicket("T-1", t0)})
	// 2h on Monday, 2h on Tuesday from 09:00.
	if tm := timerOf(t, gw.db, "T-1", "pending-business"); tm == nil || !tm.Due.Equal(time.Date(2026, 1, 6, 11, 0, 0, 0, time.UTC)) {
		t.Fatalf("armed %+v", tm)
	}
	wall := timerOf(t, gw.db, "T-1", "pending-wall")

	clock.add(time.Minute)
	writeFile(t, filepath.Join(cfg, "gateway.yaml"), gatewayYAML("09:00-20:00"))
	if err := gw.Reload(); err != nil {
		t.Fatal(err)
	}
	gw.retime.wait()
	// 4h on Monday until 20:00.
	if tm := timerOf(t, gw.db, "T-1", "pending-business"); tm == nil || !tm.Due.Equal(time.Date(2026, 1, 5, 20, 0, 0, 0, time.UTC)) {
		t.Fatalf("after the calendar edit: %+v", tm)
	}
	if tm := timerOf(t, gw.db, "T-1", "pending-wall"); *tm != *wall {
		t.Fatalf("a rule off the calendar was touched: %+v, was %+v", tm, wall)
	}
}

// retimeServer builds a server (not running) over rules with n pending
// tickets armed at t0, and starts its retimer on ctx.
func retimeServer(t *testing.T, cfg string, n int, t0 time.Time, clock *fakeClock) *Server {
	t.Helper()
	srv, err := New(Options{ConfigPath: cfg, DataDir: t.TempDir(), Env: testEnv(nil), Now: clock.now,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	var evs []*event.Event
	for i := range n {
		evs = append(evs, pendingTicket(fmt.Sprintf("T-%03d", i), t0.Add(time.Duration(i)*time.Second)))
	}
	armDirect(t, srv, clock.now(), evs)
	return srv
}

// checkDues asserts that every ticket's timer of rule is due dur after its
// clock started.
func checkDues(t *testing.T, srv *Server, n int, rule string, t0 time.Time, dur time.Duration) {
	t.Helper()
	for i := range n {
		ref := fmt.Sprintf("T-%03d", i)
		want := t0.Add(time.Duration(i)*time.Second + dur)
		if tm := timerOf(t, srv.db, ref, rule); tm == nil || !tm.Due.Equal(want) {
			t.Fatalf("%s: timer %+v, want due %v", ref, tm, want)
		}
	}
}

// A job cut short (here: cancelled after its first transaction) leaves the
// rule marked, so the next job walks it again even when the config went
// back to the timing the signatures were stored under; an earlier due time
// wakes the scheduler.
func TestInterruptedRetimeIsRedone(t *testing.T) {
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	clock := newFakeClock(t0.Add(time.Minute))
	cfg := timerConfig(t, rulesFile(pendingRule("pending", "48h")))
	const n = 20
	srv := retimeServer(t, cfg, n, t0, clock)
	r := srv.retime
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r.start(ctx)
	r.wait()
	original := storedSignatures(t, srv.db)["pending"]

	writeFile(t, filepath.Join(cfg, "rules", "timers.yaml"), rulesFile(pendingRule("pending", "1h")))
	if err := srv.Reload(); err != nil {
		t.Fatal(err)
	}
	r.wait() // the job Reload started moved every timer to 1h; back to 48h:
	writeFile(t, filepath.Join(cfg, "rules", "timers.yaml"), rulesFile(pendingRule("pending", "48h")))
	if err := srv.Reload(); err != nil {
		t.Fatal(err)
	}
	r.wait()
	checkDues(t, srv, n, "pending", t0, 48*time.Hour)

	// Now interrupt: batches of 2, cancelled once the first batch woke the
	// scheduler with its earlier due time.
	writeFile(t, filepath.Join(cfg, "rules", "timers.yaml"), rulesFile(pendingRule("pending", "1h")))
	r.mu.Lock()
	r.base = nil // keep Reload from starting a job: this test runs it by hand
	r.mu.Unlock()
	if err := srv.Reload(); err != nil {
		t.Fatal(err)
	}
	var woke []time.Time
	jobCtx, stopJob := context.WithCancel(context.Background())
	r.batch, r.page = 2, 5
	r.armed = func(due time.Time) { woke = append(woke, due); stopJob() }
	if _, err := r.run(jobCtx); err != context.Canceled {
		t.Fatalf("interrupted job: %v", err)
	}
	if len(woke) != 1 || !woke[0].Equal(t0.Add(time.Hour)) {
		t.Fatalf("scheduler woken with %v, want once for %v", woke, t0.Add(time.Hour))
	}
	if tm := timerOf(t, srv.db, "T-000", "pending"); !tm.Due.Equal(t0.Add(time.Hour)) {
		t.Fatalf("first batch not applied: %+v", tm)
	}
	if tm := timerOf(t, srv.db, "T-019", "pending"); !tm.Due.Equal(t0.Add(19*time.Second + 48*time.Hour)) {
		t.Fatalf("a timer past the interruption moved: %+v", tm)
	}
	if sig := storedSignatures(t, srv.db)["pending"]; sig != retimeDirty {
		t.Fatalf("stored signature after the interruption %q", sig)
	}

	// The admin reverts the edit: the signature equals the one stored
	// before, but the rule is marked, so the moved timers move back.
	writeFile(t, filepath.Join(cfg, "rules", "timers.yaml"), rulesFile(pendingRule("pending", "48h")))
	if err := srv.Reload(); err != nil {
		t.Fatal(err)
	}
	r.armed = nil
	rep, err := r.run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkDues(t, srv, n, "pending", t0, 48*time.Hour)
	if c := rep.Counts["pending"]; c == nil || c.Moved != 2 || c.Unchanged != n-2 {
		t.Fatalf("redo report %+v", c)
	}
	if sig := storedSignatures(t, srv.db)["pending"]; sig != original {
		t.Fatalf("stored signature %q, want %q", sig, original)
	}
}

// Reloads in quick succession while jobs run: each cancels the running
// job; when the last has finished every timer follows the last config.
func TestReloadsDuringRetime(t *testing.T) {
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	clock := newFakeClock(t0.Add(time.Hour)) // after every ticket's event
	cfg := timerConfig(t, rulesFile(pendingRule("pending", "48h")))
	const n = 300
	srv := retimeServer(t, cfg, n, t0, clock)
	r := srv.retime
	r.batch, r.page = 7, 50
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r.start(ctx)
	r.wait()
	durs := []string{"1h", "3h", "2h", "5h", "4h"}
	for _, d := range durs {
		writeFile(t, filepath.Join(cfg, "rules", "timers.yaml"), rulesFile(pendingRule("pending", d)))
		if err := srv.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	r.wait()
	checkDues(t, srv, n, "pending", t0, 4*time.Hour)
	if sig := storedSignatures(t, srv.db)["pending"]; sig != srv.Bundle().Rules.TimingSignature("pending") {
		t.Fatalf("stored signature %q", sig)
	}
	if c := timerCount(t, srv.db); c != n {
		t.Fatalf("%d timers, want %d", c, n)
	}
}

// A store without signatures (a data directory from before them) has
// every timer checked once; timers of rules no longer in the config are
// cancelled, the others kept.
func TestFirstStartChecksEveryTimer(t *testing.T) {
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	clock := newFakeClock(t0.Add(time.Minute))
	cfg := timerConfig(t, rulesFile(pendingRule("pending", "48h")))
	srv := retimeServer(t, cfg, 3, t0, clock)
	if err := srv.db.Update(func(tx *store.Tx) error {
		if err := tx.PutTimer(store.Timer{Key: ticketKey("T-000"), Rule: "long-gone", Due: t0.Add(time.Hour), ArmedAt: t0}); err != nil {
			return err
		}
		// A store from before signatures were kept.
		return tx.ForgetTimingSignatures()
	}); err != nil {
		t.Fatal(err)
	}
	if _, found, err := srv.db.TimingSignatures(); err != nil || found {
		t.Fatalf("signatures before the first job: %v %v", found, err)
	}
	rep, err := srv.retime.run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.All || *rep.Counts["pending"] != (retimeCount{Unchanged: 3}) || *rep.Counts["long-gone"] != (retimeCount{Cancelled: 1}) {
		t.Fatalf("report %+v", rep)
	}
	checkDues(t, srv, 3, "pending", t0, 48*time.Hour)
	if tm := timerOf(t, srv.db, "T-000", "long-gone"); tm != nil {
		t.Fatalf("timer of an unknown rule kept: %+v", tm)
	}
	if sigs := storedSignatures(t, srv.db); len(sigs) != 1 || sigs["pending"] == "" {
		t.Fatalf("stored %v", sigs)
	}
}

// A new data directory records the rules' signatures at once: nothing is
// armed yet, so no start-up walk is needed later, however many timers the
// gateway arms before its first restart.
func TestNewStoreSeedsSignatures(t *testing.T) {
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	clock := newFakeClock(t0.Add(time.Minute))
	cfg := timerConfig(t, rulesFile(pendingRule("pending", "48h")))
	srv := retimeServer(t, cfg, 3, t0, clock)
	sigs := storedSignatures(t, srv.db)
	if len(sigs) != 1 || sigs["pending"] != srv.bundle.Load().Rules.TimingSignature("pending") {
		t.Fatalf("stored %v right after New", sigs)
	}
	rep, err := srv.retime.run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.All || len(rep.Rules) != 0 || len(rep.Counts) != 0 {
		t.Fatalf("a job on a seeded store walked timers: %+v", rep)
	}
}

// (f) A rule whose since: field is edited measures its armed episodes
// from the new field at once, not only from each entity's next event; a
// field the entity does not have ends its episode.
func TestSinceEditRetimes(t *testing.T) {
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	clock := newFakeClock(t0)
	cfg := timerConfig(t, rulesFile(pendingRule("pending-since", "2h", "since: status_since")))
	gw, stop := runServer(t, cfg, t.TempDir(), nil, clock.now)
	defer stop()
	gw.retime.wait()
	// Pending at 10:00, then another update at 10:30: status_since stays
	// 10:00, last_activity_at moves to 10:30.
	later := pendingTicket("T-1", t0.Add(30*time.Minute))
	later.Fields["priority"] = "low"
	armDirect(t, gw.Server, t0.Add(30*time.Minute), []*event.Event{pendingTicket("T-1", t0), later})
	if tm := timerOf(t, gw.db, "T-1", "pending-since"); tm == nil || !tm.Due.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("armed %+v, want due 12:00", tm)
	}

	reload := func(since string) {
		t.Helper()
		writeFile(t, filepath.Join(cfg, "rules", "timers.yaml"), rulesFile(pendingRule("pending-since", "2h", "since: "+since)))
		if err := gw.Reload(); err != nil {
			t.Fatal(err)
		}
		gw.retime.wait()
	}
	clock.add(time.Hour)
	reload("last_activity_at")
	if tm := timerOf(t, gw.db, "T-1", "pending-since"); tm == nil || !tm.Due.Equal(t0.Add(150*time.Minute)) {
		t.Fatalf("after since: last_activity_at: %+v, want due 12:30", tm)
	}
	snap, err := gw.db.Entity(ticketKey("T-1"))
	if err != nil || snap.Clocks["pending-since"] == nil || !snap.Clocks["pending-since"].Since.Equal(t0.Add(30*time.Minute)) {
		t.Fatalf("the clock was not restarted from the new field: %+v, %v", snap, err)
	}

	reload("last_customer_message_at") // the ticket has no customer message
	if tm := timerOf(t, gw.db, "T-1", "pending-since"); tm != nil {
		t.Fatalf("a timer measured from a field the entity lacks: %+v", tm)
	}
	if snap, _ := gw.db.Entity(ticketKey("T-1")); snap.Clocks["pending-since"] != nil {
		t.Fatalf("the episode did not end: %+v", snap.Clocks)
	}
}
