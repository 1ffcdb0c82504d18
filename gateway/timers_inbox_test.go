package gateway

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/store"
)

// acceptGeneric stores a generic post in the inbox as the intake does
// (202), received now on srv's clock, without processing it.
func acceptGeneric(t *testing.T, srv *Server, now time.Time, body string) {
	t.Helper()
	_, err := srv.db.Accept(context.Background(), &store.InboxItem{Connector: "generic", ReceivedAt: now, Method: "POST",
		Path: "/hooks/generic", ContentType: "application/json", Body: []byte(body), DedupeKey: body}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
}

// drainInbox runs the pipeline's batches until no item is pending.
func drainInbox(t *testing.T, srv *Server) {
	t.Helper()
	for {
		b := srv.pipe.read("", 1000)
		if b.err != nil {
			t.Fatal(b.err)
		}
		if len(b.items) == 0 {
			return
		}
		if _, err := srv.pipe.drain(b); err != nil {
			t.Fatal(err)
		}
	}
}

func timerFiredEvents(t *testing.T, db *store.DB, ref string) int {
	t.Helper()
	evs, _, err := db.ListEvents(store.EventFilter{Connector: "generic", Entity: "ticket", Reference: ref, Type: event.TypeTimerFired})
	if err != nil {
		t.Fatal(err)
	}
	return len(evs)
}

// A timer fires only after the webhooks received before its due time. T-1
// goes pending at 10:00 (pending-1h due 11:00); its "open" webhook is
// accepted (202) at 10:30, behind other posts, and still pending when the
// scheduler runs at 12:00: in the intake journal of a gateway with a
// backlog, or in bbolt after a crash and a restart. The scheduler must not
// re-check T-1's rule on a snapshot that misses it. T-2's timer, due 10:15
// before every pending post, fires meanwhile; T-1's waits, and once the
// pipeline has applied the post it has nothing to fire.
func TestTimerWaitsForWebhooksReceivedBeforeItsDueTime(t *testing.T) {
	for _, tc := range []struct {
		name    string
		restart bool // the gateway stops with the posts pending (Open moves them into bbolt)
		backlog int  // posts of other tickets accepted before T-1's
	}{
		{"journal", false, 0},
		{"journal behind a backlog", false, 40},
		{"restart", true, 0},
		{"restart behind a backlog", true, 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
			clock := newFakeClock(t0.Add(-45 * time.Minute))
			cfg, data := timerConfig(t, timerRules), t.TempDir()
			open := func() *Server {
				srv, err := New(Options{ConfigPath: cfg, DataDir: data, Env: testEnv(nil), Now: clock.now})
				if err != nil {
					t.Fatal(err)
				}
				return srv
			}
			srv := open()
			defer func() { srv.Close() }()
			acceptGeneric(t, srv, clock.now(), `{"type": "ticket.updated", "id": "T-2", "status": "pending"}`)
			drainInbox(t, srv)
			clock.set(t0)
			acceptGeneric(t, srv, clock.now(), `{"type": "ticket.updated", "id": "T-1", "status": "pending"}`)
			drainInbox(t, srv)
			if c := timerCount(t, srv.db); c != 2 {
				t.Fatalf("%d timers armed, want 2", c)
			}

			clock.set(t0.Add(30 * time.Minute))
			for i := range tc.backlog {
				acceptGeneric(t, srv, clock.now(), fmt.Sprintf(`{"type": "ticket.updated", "id": "X-%03d", "status": "new"}`, i))
			}
			acceptGeneric(t, srv, clock.now(), `{"type": "ticket.updated", "id": "T-1", "status": "open"}`)
			if tc.restart {
				if err := srv.Close(); err != nil {
					t.Fatal(err)
				}
				srv = open()
			}

			clock.set(t0.Add(2 * time.Hour))
			n, behind, err := srv.sched.fireDue()
			if err != nil {
				t.Fatal(err)
			}
			if n != 1 || !behind.Equal(t0.Add(30*time.Minute)) {
				t.Fatalf("first batch fired %d timers up to %s, want T-2's alone, up to the oldest pending post (%s)", n, behind, t0.Add(30*time.Minute))
			}
			if got := timerFiredEvents(t, srv.db, "T-2"); got != 1 {
				t.Fatalf("T-2's timer fired %d times, want once", got)
			}
			if got := timerFiredEvents(t, srv.db, "T-1"); got != 0 {
				t.Fatalf("T-1's timer fired %d times before T-1's open post (10:30, before its 11:00 due time) was applied", got)
			}
			if c := timerCount(t, srv.db); c != 1 {
				t.Fatalf("%d timers armed, want T-1's, held back", c)
			}

			drainInbox(t, srv)
			n, behind, err = srv.sched.fireDue()
			if err != nil || n != 0 || !behind.IsZero() {
				t.Fatalf("after the pipeline caught up: fired %d, behind %s, err %v; want nothing (T-1 is open)", n, behind, err)
			}
			if c := timerCount(t, srv.db); c != 0 {
				t.Fatalf("%d timers left, want none: T-1's open post ended its episode", c)
			}
			if got := timerFiredEvents(t, srv.db, "T-1"); got != 0 {
				t.Fatalf("T-1's timer fired %d times", got)
			}
			st, err := srv.db.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if got := st.Deliveries["pending"]; got != 1 {
				t.Fatalf("%d deliveries, want 1 (T-2's set_priority)", got)
			}
		})
	}
}

// A running gateway restarted with posts pending fires the timers they
// held back once its pipeline has applied them (it wakes the scheduler),
// and not those whose episode the posts ended.
func TestRestartFiresHeldTimersAfterTheInbox(t *testing.T) {
	target := newRecorder(t, nil)
	env := map[string]string{"GENERIC_TARGET_URL": target.srv.URL}
	cfg, data := timerConfig(t, timerRules), t.TempDir()
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	clock := newFakeClock(t0)

	gw, stop := runServer(t, cfg, data, env, clock.now)
	postGeneric(t, gw.URL, `{"type": "ticket.updated", "id": "T-1", "status": "pending"}`)
	postGeneric(t, gw.URL, `{"type": "ticket.updated", "id": "T-3", "status": "pending"}`)
	waitFor(t, "the timers to be armed", func() bool { return timerCount(t, gw.db) == 2 })
	stop()

	// Accepted at 10:30 while the gateway was down for the pipeline (a
	// crash after the 202s): other tickets, then T-1 going back to open.
	clock.set(t0.Add(30 * time.Minute))
	db, err := store.Open(data+"/hookline.db", store.Options{Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		body := fmt.Sprintf(`{"type": "ticket.updated", "id": "X-%03d", "status": "new"}`, i)
		if _, err := db.Accept(context.Background(), &store.InboxItem{Connector: "generic", Method: "POST", Path: "/hooks/generic",
			ContentType: "application/json", Body: []byte(body), DedupeKey: body}, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	body := `{"type": "ticket.updated", "id": "T-1", "status": "open"}`
	if _, err := db.Accept(context.Background(), &store.InboxItem{Connector: "generic", Method: "POST", Path: "/hooks/generic",
		ContentType: "application/json", Body: []byte(body), DedupeKey: body}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	clock.set(t0.Add(2 * time.Hour))
	gw, stop = runServer(t, cfg, data, env, clock.now)
	defer stop()
	waitFor(t, "T-3's timer to fire", func() bool { return timerCount(t, gw.db) == 0 && len(target.requests()) >= 1 })
	for _, r := range target.requests() {
		if r.Body["reference"] != "T-3" {
			t.Fatalf("unexpected update %v: T-1 was open since 10:30, before its timer's 11:00 due time", r.Body)
		}
	}
	if got := timerFiredEvents(t, gw.db, "T-1"); got != 0 {
		t.Fatalf("T-1's timer fired %d times", got)
	}
}

// The pipeline wakes the scheduler after a batch only while due timers
// wait for the inbox.
func TestInboxMovedWakesOnlyAWaitingScheduler(t *testing.T) {
	s := &scheduler{wake: make(chan struct{}, 1)}
	s.inboxMoved()
	if len(s.wake) != 0 {
		t.Fatal("a pipeline batch woke a scheduler that waits for no inbox item")
	}
	s.behindInbox.Store(true)
	s.inboxMoved()
	s.inboxMoved() // no second wake-up queued, no block
	if len(s.wake) != 1 {
		t.Fatalf("%d wake-ups queued, want 1", len(s.wake))
	}
}
