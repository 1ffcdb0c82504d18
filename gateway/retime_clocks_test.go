package gateway

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/store"
)

// clockOf returns the rule's clock in a ticket's stored snapshot, or nil.
func clockOf(t *testing.T, db *store.DB, ref, rule string) *event.RuleClock {
	t.Helper()
	snap, err := db.Entity(ticketKey(ref))
	if err != nil || snap == nil {
		t.Fatalf("entity %s: %v (%v)", ref, snap, err)
	}
	return snap.Clocks[rule]
}

func snoozedTicket(ref string, at time.Time) *event.Event {
	ev := pendingTicket(ref, at)
	ev.Fields["custom.snoozed"] = true
	return ev
}

// A clock paused under a pause_when that a reload removes resumes with the
// reload, on an entity that gets no further event: the time it stood
// paused counts as paused, its timer moves to the due time that gives, and
// the rule fires then.
func TestReloadResumesClockPausedUnderRemovedPauseWhen(t *testing.T) {
	target := newRecorder(t, nil)
	env := map[string]string{"GENERIC_TARGET_URL": target.srv.URL}
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	clock := newFakeClock(t0)
	const pause = "pause_when: { field: custom.snoozed, is: true }"
	cfg := timerConfig(t, rulesFile(pendingRule("pending", "1h", pause), pendingRule("other", "3h", pause)))
	gw, stop := runServer(t, cfg, t.TempDir(), env, clock.now)
	defer stop()
	gw.retime.wait()

	armDirect(t, gw.Server, clock.now(), []*event.Event{pendingTicket("T-1", t0)})
	clock.add(30 * time.Minute)
	armDirect(t, gw.Server, clock.now(), []*event.Event{snoozedTicket("T-1", clock.now())})
	if c := clockOf(t, gw.db, "T-1", "pending"); c == nil || !c.PausedAt.Equal(t0.Add(30*time.Minute)) {
		t.Fatalf("clock while snoozed: %+v", c)
	}

	clock.add(time.Hour)
	writeFile(t, filepath.Join(cfg, "rules", "timers.yaml"), rulesFile(pendingRule("pending", "1h"), pendingRule("other", "3h", pause)))
	if err := gw.Reload(); err != nil {
		t.Fatal(err)
	}
	gw.retime.wait()
	if c := clockOf(t, gw.db, "T-1", "pending"); c == nil || !c.PausedAt.IsZero() || c.PausedTotal != time.Hour {
		t.Fatalf("clock after the reload: %+v, want resumed with an hour paused", c)
	}
	if tm := timerOf(t, gw.db, "T-1", "pending"); tm == nil || !tm.Due.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("timer after the reload: %+v, want due %v", tm, t0.Add(2*time.Hour))
	}
	// The rule whose pause_when stayed keeps its clock paused.
	if c := clockOf(t, gw.db, "T-1", "other"); c == nil || !c.PausedAt.Equal(t0.Add(30*time.Minute)) {
		t.Fatalf("clock of the unchanged rule: %+v, want still paused", c)
	}

	clock.add(30 * time.Minute)
	gw.sched.notify()
	waitFor(t, "the update of T-1", func() bool { return len(target.requests()) == 1 })
	if r := target.requests()[0]; r.Body["reference"] != "T-1" || r.Body["rule"] != "pending" {
		t.Fatalf("request %+v", r.Body)
	}
}

// A reload that takes a connector out of a time-based rule's connector
// filter ends the rule's clocks on that connector's entities and cancels
// their timers, running and paused clocks alike, without another event.
func TestReloadEndsClocksOfConnectorLeftOutOfRule(t *testing.T) {
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	clock := newFakeClock(t0)
	const pause = "pause_when: { field: custom.snoozed, is: true }"
	cfg := timerConfig(t, rulesFile(pendingRule("pending", "1h", pause), pendingRule("kept", "2h")))
	generic, err := os.ReadFile(filepath.Join(cfg, "connectors", "generic.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(cfg, "connectors", "other.yaml"), strings.Replace(string(generic), "\nconnector: generic\n", "\nconnector: other\n", 1))
	gw, stop := runServer(t, cfg, t.TempDir(), nil, clock.now)
	defer stop()
	gw.retime.wait()

	armDirect(t, gw.Server, clock.now(), []*event.Event{pendingTicket("T-1", t0), snoozedTicket("T-2", t0)})
	if timerOf(t, gw.db, "T-1", "pending") == nil || clockOf(t, gw.db, "T-2", "pending") == nil {
		t.Fatal("no clocks before the reload")
	}

	clock.add(10 * time.Minute)
	moved := strings.Replace(pendingRule("pending", "1h", pause), "connector: generic", "connector: other", 1)
	writeFile(t, filepath.Join(cfg, "rules", "timers.yaml"), rulesFile(moved, pendingRule("kept", "2h")))
	if err := gw.Reload(); err != nil {
		t.Fatal(err)
	}
	gw.retime.wait()
	for _, ref := range []string{"T-1", "T-2"} {
		if c := clockOf(t, gw.db, ref, "pending"); c != nil {
			t.Errorf("%s: clock of pending left behind: %+v", ref, c)
		}
		if tm := timerOf(t, gw.db, ref, "pending"); tm != nil {
			t.Errorf("%s: timer of pending left behind: %+v", ref, tm)
		}
		if tm := timerOf(t, gw.db, ref, "kept"); tm == nil || !tm.Due.Equal(t0.Add(2*time.Hour)) {
			t.Errorf("%s: timer of the unchanged rule: %+v", ref, tm)
		}
	}
}
