package store

import (
	"encoding/binary"
	"encoding/json"
	"slices"
	"strconv"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// dueIndex returns the due index as "offset name" strings, the offset
// from t0 in minutes, in index order.
func dueIndex(t *testing.T, db *DB, t0 time.Time) []string {
	t.Helper()
	var out []string
	if err := db.bolt.View(func(btx *bolt.Tx) error {
		return btx.Bucket([]byte(bucketTimersDue)).ForEach(func(k, _ []byte) error {
			e, name, err := parseDueKey(k)
			if err != nil {
				return err
			}
			at := fromNanos(e.at)
			ref, err := parseTimerRecordKey(recordKey(name))
			if err != nil {
				return err
			}
			out = append(out, at.Sub(t0).String()+" "+ref.Key.String()+"#"+ref.Rule)
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// settle runs DueTimers at now in a write transaction, as the scheduler
// does, and consumes what it returns (DeleteTimer), as a firing does.
func settle(t *testing.T, db *testDB, now time.Time) []string {
	t.Helper()
	var fired []Timer
	db.update(func(tx *Tx) error {
		var err error
		if fired, err = tx.DueTimers(now, 0); err != nil {
			return err
		}
		for _, tm := range fired {
			if err := tx.DeleteTimer(tm.Key, tm.Rule); err != nil {
				return err
			}
		}
		return nil
	})
	if err := checkCounters(db.DB); err != nil {
		t.Fatal(err)
	}
	return timerIDs(fired)
}

// A timer moved later or cancelled keeps its due index entry (no write
// outside the entity's own records); the entry is settled when it comes
// due: moved to the real due time, or dropped with the tombstone. Only a
// timer moved earlier than its entry writes a new one.
func TestTimerIndexIsSettledLazily(t *testing.T) {
	db := mustOpen(t)
	t0 := db.clock.Now()
	put := func(ref, rule string, due time.Duration) {
		db.update(func(tx *Tx) error {
			return tx.PutTimer(Timer{Key: ticket(ref), Rule: rule, Due: t0.Add(due), ArmedAt: t0})
		})
	}
	put("1", "idle", 10*time.Minute)
	put("2", "pending", 20*time.Minute)
	put("3", "pending", 30*time.Minute)
	start := []string{"10m0s zendesk/ticket/1#idle", "20m0s zendesk/ticket/2#pending", "30m0s zendesk/ticket/3#pending"}
	if got := dueIndex(t, db.DB, t0); !slices.Equal(got, start) {
		t.Fatalf("index after arming\n got %v\nwant %v", got, start)
	}

	// Moved later (idle re-armed by activity) and cancelled: the index
	// does not change.
	put("1", "idle", 40*time.Minute)
	db.update(func(tx *Tx) error { return tx.DeleteTimer(ticket("2"), "pending") })
	if got := dueIndex(t, db.DB, t0); !slices.Equal(got, start) {
		t.Fatalf("index after a move later and a cancel\n got %v\nwant %v", got, start)
	}
	if err := checkCounters(db.DB); err != nil {
		t.Fatal(err)
	}
	db.update(func(tx *Tx) error {
		if tm, err := tx.Timer(ticket("2"), "pending"); tm != nil || err != nil {
			t.Errorf("cancelled timer reads as %+v, %v", tm, err)
		}
		if of, err := tx.TimersOf(ticket("2")); len(of) != 0 || err != nil {
			t.Errorf("TimersOf a cancelled timer's entity: %v, %v", timerIDs(of), err)
		}
		if tm, err := tx.Timer(ticket("1"), "idle"); err != nil || tm == nil || !tm.Due.Equal(t0.Add(40*time.Minute)) {
			t.Errorf("moved timer reads as %+v, %v", tm, err)
		}
		return nil
	})
	if st, _ := db.Stats(); st.Timers != 2 {
		t.Fatalf("stats timers %d, want 2", st.Timers)
	}
	// Listings show real due times, in due order, whatever the entries.
	all, err := db.Timers(TimerFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := timerIDs(all), []string{"zendesk/ticket/3#pending", "zendesk/ticket/1#idle"}; !slices.Equal(got, want) {
		t.Fatalf("timers in due order\n got %v\nwant %v", got, want)
	}
	if early, _ := db.Timers(TimerFilter{DueBefore: t0.Add(35 * time.Minute)}); !slices.Equal(timerIDs(early), []string{"zendesk/ticket/3#pending"}) {
		t.Fatalf("timers due before 35m: %v", timerIDs(early))
	}
	if due, _ := db.DueTimers(t0.Add(25*time.Minute), 0); len(due) != 0 {
		t.Fatalf("read-only due timers at 25m: %v", timerIDs(due))
	}

	// Re-arming the cancelled timer later reuses its entry.
	put("2", "pending", 50*time.Minute)
	if got := dueIndex(t, db.DB, t0); !slices.Equal(got, start) {
		t.Fatalf("index after re-arming a cancelled timer later\n got %v\nwant %v", got, start)
	}
	db.update(func(tx *Tx) error { return tx.DeleteTimer(ticket("2"), "pending") })

	// At 25m the two first entries come due: nothing fires, the moved
	// timer gets its entry at 40m, the cancelled one is gone.
	if fired := settle(t, db, t0.Add(25*time.Minute)); len(fired) != 0 {
		t.Fatalf("fired at 25m: %v", fired)
	}
	want := []string{"30m0s zendesk/ticket/3#pending", "40m0s zendesk/ticket/1#idle"}
	if got := dueIndex(t, db.DB, t0); !slices.Equal(got, want) {
		t.Fatalf("index after settling at 25m\n got %v\nwant %v", got, want)
	}

	// Moved earlier than its entry: the entry moves with it.
	put("3", "pending", 5*time.Minute)
	want = []string{"5m0s zendesk/ticket/3#pending", "40m0s zendesk/ticket/1#idle"}
	if got := dueIndex(t, db.DB, t0); !slices.Equal(got, want) {
		t.Fatalf("index after a move earlier\n got %v\nwant %v", got, want)
	}
	if fired := settle(t, db, t0.Add(40*time.Minute)); !slices.Equal(fired, []string{"zendesk/ticket/3#pending", "zendesk/ticket/1#idle"}) {
		t.Fatalf("fired at 40m: %v", fired)
	}
	if got := dueIndex(t, db.DB, t0); len(got) != 0 {
		t.Fatalf("index after firing everything: %v", got)
	}
	if st, _ := db.Stats(); st.Timers != 0 {
		t.Fatalf("stats timers %d, want 0", st.Timers)
	}
}

// A firing that arms its timer again (a rule whose clock needs more time)
// gets a new entry; a timer the transaction took but left armed gets its
// entry back, so it stays due.
func TestDueTimersTakesEntriesForTheFiring(t *testing.T) {
	db := mustOpen(t)
	t0 := db.clock.Now()
	db.update(func(tx *Tx) error {
		for _, ref := range []string{"1", "2"} {
			if err := tx.PutTimer(Timer{Key: ticket(ref), Rule: "r", Due: t0, ArmedAt: t0}); err != nil {
				return err
			}
		}
		return nil
	})
	db.update(func(tx *Tx) error {
		due, err := tx.DueTimers(t0, 0)
		if err != nil || len(due) != 2 {
			t.Fatalf("due %v, %v", timerIDs(due), err)
		}
		if err := tx.DeleteTimer(ticket("1"), "r"); err != nil {
			return err
		}
		return tx.PutTimer(Timer{Key: ticket("1"), Rule: "r", Due: t0.Add(time.Hour), ArmedAt: t0})
	})
	want := []string{"0s zendesk/ticket/2#r", "1h0m0s zendesk/ticket/1#r"}
	if got := dueIndex(t, db.DB, t0); !slices.Equal(got, want) {
		t.Fatalf("index after the firing\n got %v\nwant %v", got, want)
	}
	if err := checkCounters(db.DB); err != nil {
		t.Fatal(err)
	}
	if due, _ := db.DueTimers(t0, 0); !slices.Equal(timerIDs(due), []string{"zendesk/ticket/2#r"}) {
		t.Fatalf("due after the firing: %v", timerIDs(due))
	}
}

// A store written before schema 3 (timers in their own bucket) opens with
// every timer behind its entity, the due index as it was, the old bucket
// gone and the store marked with this build's schema.
func TestOpenSchema2StoreMovesTimers(t *testing.T) {
	db := mustOpen(t)
	t0 := db.clock.Now()
	n := migrateBatch + 5 // more than one transaction's worth
	if err := db.bolt.Update(func(btx *bolt.Tx) error {
		old, err := btx.CreateBucket([]byte(bucketTimersV2))
		if err != nil {
			return err
		}
		oldDue, err := btx.CreateBucket([]byte(bucketTimersDueV3))
		if err != nil {
			return err
		}
		for i := range n {
			tm := Timer{Key: ticket(strconv.Itoa(i)), Rule: "pending", Due: t0.Add(time.Duration(i) * time.Second), ArmedAt: t0}
			name, err := timerKey(tm.Key, tm.Rule)
			if err != nil {
				return err
			}
			v, _ := json.Marshal(tm)
			if err := old.Put(name, v); err != nil {
				return err
			}
			if err := oldDue.Put(timeKey(tm.Due, name), present()); err != nil {
				return err
			}
		}
		b := make([]byte, 8)
		binary.BigEndian.PutUint64(b, 2)
		if err := btx.Bucket([]byte(bucketMeta)).Put([]byte(metaVersion), b); err != nil {
			return err
		}
		return addCount(btx.Bucket([]byte(bucketMeta)), countTimers, int64(n))
	}); err != nil {
		t.Fatal(err)
	}
	db.reopen()
	if v := storedVersion(t, db.DB); v != schemaVersion || schemaVersion < 4 {
		t.Fatalf("schema version %d (this build %d), want this build's, at least 4", v, schemaVersion)
	}
	if err := db.bolt.View(func(btx *bolt.Tx) error {
		for _, old := range []string{bucketTimersV2, bucketTimersDueV3} {
			if btx.Bucket([]byte(old)) != nil {
				t.Errorf("the old bucket %s is still there", old)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := checkCounters(db.DB); err != nil {
		t.Fatal(err)
	}
	all, err := db.Timers(TimerFilter{Limit: 1000})
	if err != nil || len(all) != 1000 || !all[999].Due.Equal(t0.Add(999*time.Second)) {
		t.Fatalf("timers after the move: %d, %v", len(all), err)
	}
	if st, _ := db.Stats(); st.Timers != n {
		t.Fatalf("stats timers %d, want %d", st.Timers, n)
	}
	var fired []Timer
	db.update(func(tx *Tx) error {
		fired, err = tx.DueTimers(t0.Add(time.Duration(n)*time.Second), 1000)
		return err
	})
	if len(fired) != 1000 {
		t.Fatalf("fired %d in one batch, want 1000", len(fired))
	}
}
