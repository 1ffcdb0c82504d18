package store

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/hookline/hookline/event"
)

// fakeClock is a settable clock for Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// testDB is an open store in a temp dir that can be reopened.
type testDB struct {
	*DB
	t     testing.TB
	path  string
	clock *fakeClock
	// applyWait is Options.applyWait (zero: the default).
	applyWait time.Duration
}

// mustOpen creates a store in t.TempDir() with a fake clock; it is closed
// at the end of the test.
func mustOpen(t testing.TB) *testDB {
	t.Helper()
	return mustOpenDelayed(t, 0)
}

// mustOpenJournaling is mustOpen with an applier that moves journaled
// records into bbolt only when asked (flushJournal, Close) or after an
// hour: accepted items stay in the journal for the whole test.
func mustOpenJournaling(t testing.TB) *testDB {
	t.Helper()
	return mustOpenDelayed(t, time.Hour)
}

func mustOpenDelayed(t testing.TB, applyWait time.Duration) *testDB {
	t.Helper()
	tdb := &testDB{t: t, path: filepath.Join(t.TempDir(), "data", "hookline.db"), clock: newClock(), applyWait: applyWait}
	tdb.open()
	t.Cleanup(func() {
		if err := tdb.DB.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return tdb
}

func (tdb *testDB) open() {
	tdb.t.Helper()
	db, err := Open(tdb.path, Options{Now: tdb.clock.Now, LockTimeout: 100 * time.Millisecond, applyWait: tdb.applyWait})
	if err != nil {
		tdb.t.Fatalf("open: %v", err)
	}
	tdb.DB = db
}

// reopen closes and opens the same file again.
func (tdb *testDB) reopen() {
	tdb.t.Helper()
	if err := tdb.DB.Close(); err != nil {
		tdb.t.Fatalf("close: %v", err)
	}
	tdb.open()
}

func (tdb *testDB) update(fn func(tx *Tx) error) {
	tdb.t.Helper()
	if err := tdb.Update(fn); err != nil {
		tdb.t.Fatalf("update: %v", err)
	}
}

// checkOutbox verifies every outbox index and counter against the
// deliveries themselves.
func checkOutbox(db *DB) error {
	return db.bolt.View(func(btx *bolt.Tx) error {
		b := func(name string) *bolt.Bucket { return btx.Bucket([]byte(name)) }
		all := map[string]*Delivery{}
		if err := b(bucketOutbox).ForEach(func(k, v []byte) error {
			d := new(Delivery)
			if err := json.Unmarshal(v, d); err != nil {
				return err
			}
			if d.ID != string(k) {
				return fmt.Errorf("delivery key %s holds id %s", k, d.ID)
			}
			all[d.ID] = d
			return nil
		}); err != nil {
			return err
		}
		keys := func(name string) map[string]bool {
			m := map[string]bool{}
			_ = b(name).ForEach(func(k, _ []byte) error { m[string(k)] = true; return nil })
			return m
		}
		same := func(what string, got, want map[string]bool) error {
			for k := range want {
				if !got[k] {
					return fmt.Errorf("%s: missing %q", what, k)
				}
			}
			for k := range got {
				if !want[k] {
					return fmt.Errorf("%s: unexpected %q", what, k)
				}
			}
			return nil
		}

		wantState, wantRef, wantQueue, wantDue := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
		count := map[string]int64{}
		queues := map[string][]*Delivery{}
		for _, d := range all {
			if !validState(d.State) {
				return fmt.Errorf("delivery %s has state %q", d.ID, d.State)
			}
			wantState[string(stateKey(d.State, d.ID))] = true
			wantRef[string(d.refKey())] = true
			count[d.State]++
			active := d.State == DeliveryPending || d.State == DeliveryInFlight
			if !d.ordered() {
				if d.State == DeliveryPending {
					wantDue[string(dueKey(nanos(d.NextAt), d.ID))] = true
				}
				continue
			}
			if active {
				wantQueue[string(d.queueKey())] = true
				queues[string(d.queueID())] = append(queues[string(d.queueID())], d)
			}
		}
		wantHeads := map[string]string{}
		for qid, ds := range queues {
			sort.Slice(ds, func(i, j int) bool { return ds[i].ID < ds[j].ID })
			var inflight []*Delivery
			for _, d := range ds {
				if d.State == DeliveryInFlight {
					inflight = append(inflight, d)
				}
			}
			switch len(inflight) {
			case 0:
				h := ds[0]
				wantHeads[qid] = string(head{kind: headDue, due: nanos(h.NextAt), id: h.ID}.encode())
				wantDue[string(dueKey(nanos(h.NextAt), h.ID))] = true
			case 1:
				wantHeads[qid] = string(head{kind: headInFlight, id: inflight[0].ID}.encode())
			default:
				return fmt.Errorf("queue %q has %d deliveries in flight", qid, len(inflight))
			}
		}
		if err := same("outbox_state", keys(bucketOutboxState), wantState); err != nil {
			return err
		}
		if err := same("outbox_ref", keys(bucketOutboxRef), wantRef); err != nil {
			return err
		}
		if err := same("outbox_queue", keys(bucketOutboxQueue), wantQueue); err != nil {
			return err
		}
		if err := same("outbox_due", keys(bucketOutboxDue), wantDue); err != nil {
			return err
		}
		gotHeads := map[string]string{}
		_ = b(bucketOutboxHeads).ForEach(func(k, v []byte) error { gotHeads[string(k)] = string(v); return nil })
		for q, v := range wantHeads {
			if gotHeads[q] != v {
				return fmt.Errorf("outbox_heads[%q] = %q, want %q", q, gotHeads[q], v)
			}
		}
		if len(gotHeads) != len(wantHeads) {
			return fmt.Errorf("outbox_heads has %d records, want %d", len(gotHeads), len(wantHeads))
		}
		meta := b(bucketMeta)
		for _, s := range deliveryStates {
			if got := getCount(meta, countDeliveryStatePfx+s); got != count[s] {
				return fmt.Errorf("counter %s = %d, want %d", s, got, count[s])
			}
		}
		return nil
	})
}

// checkCounters verifies the inbox and timer counters by recounting.
func checkCounters(db *DB) error {
	if err := db.flushJournal(); err != nil {
		return err
	}
	return db.bolt.View(func(btx *bolt.Tx) error {
		pending := int64(0)
		if err := btx.Bucket([]byte(bucketInbox)).ForEach(func(k, v []byte) error {
			var it InboxItem
			if err := json.Unmarshal(v, &it); err != nil {
				return err
			}
			if it.State == InboxPending {
				pending++
				if btx.Bucket([]byte(bucketInboxPending)).Get(k) == nil {
					return fmt.Errorf("pending item %s not indexed", k)
				}
			}
			return nil
		}); err != nil {
			return err
		}
		if n := int64(btx.Bucket([]byte(bucketInboxPending)).Stats().KeyN); n != pending {
			return fmt.Errorf("inbox_pending has %d keys, want %d", n, pending)
		}
		meta := btx.Bucket([]byte(bucketMeta))
		if got := getCount(meta, countInboxPending); got != pending {
			return fmt.Errorf("inbox pending counter %d, want %d", got, pending)
		}
		// Timers: every live record counted, every record but one being
		// fired has exactly one due index entry, the one it names, at or
		// before its due time, and every entry names such a record.
		var timers int64
		records := map[string]dueEntry{}
		if err := btx.Bucket([]byte(bucketEntities)).ForEach(func(k, v []byte) error {
			if !isTimerRecordKey(k) {
				return nil
			}
			if isTombstone(v) {
				records[string(k)] = tombstoneEntry(v)
				return nil
			}
			rec, err := decodeTimerRecord(k, v)
			if err != nil {
				return fmt.Errorf("timer record %q: %w", k, err)
			}
			if rec.Entry.at == 0 || rec.Entry.at > entryAt(nanos(rec.Due)) {
				return fmt.Errorf("timer record %q indexed at %v, due %v", k, rec.Entry, rec.Due)
			}
			records[string(k)] = rec.Entry
			timers++
			return nil
		}); err != nil {
			return err
		}
		if got := getCount(meta, countTimers); got != timers {
			return fmt.Errorf("timer counter %d, want %d", got, timers)
		}
		due := 0
		if err := btx.Bucket([]byte(bucketTimersDue)).ForEach(func(k, _ []byte) error {
			e, name, err := parseDueKey(k)
			if err != nil {
				return err
			}
			want, ok := records[string(recordKey(name))]
			if !ok {
				return fmt.Errorf("due index key %q names no timer record", k)
			}
			if e != want {
				return fmt.Errorf("due index key %q is not the entry its record names (%v)", k, want)
			}
			due++
			return nil
		}); err != nil {
			return err
		}
		if due != len(records) {
			return fmt.Errorf("the due index has %d keys for %d timer records", due, len(records))
		}
		return nil
	})
}

// putRaw writes a raw value into a bucket (to plant records that must not
// be read).
func putRaw(t testing.TB, db *DB, bucket string, key, value []byte) {
	t.Helper()
	if err := db.bolt.Update(func(btx *bolt.Tx) error {
		return btx.Bucket([]byte(bucket)).Put(key, value)
	}); err != nil {
		t.Fatal(err)
	}
}

func ids[T any](xs []T, id func(T) string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = id(x)
	}
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// checkDedupe verifies that dedupe keys and their expiry index match one
// to one.
func checkDedupe(db *DB) error {
	if err := db.flushJournal(); err != nil {
		return err
	}
	return db.bolt.View(func(btx *bolt.Tx) error {
		want := map[string]bool{}
		if err := btx.Bucket([]byte(bucketDedupe)).ForEach(func(k, v []byte) error {
			if len(v) < 16 {
				return fmt.Errorf("dedupe value of %q too short", k)
			}
			want[string(append(append([]byte(nil), v[8:16]...), k...))] = true
			return nil
		}); err != nil {
			return err
		}
		n := 0
		if err := btx.Bucket([]byte(bucketDedupeExp)).ForEach(func(k, _ []byte) error {
			if !want[string(k)] {
				return fmt.Errorf("stray dedupe expiry entry %q", k)
			}
			n++
			return nil
		}); err != nil {
			return err
		}
		if n != len(want) {
			return fmt.Errorf("%d dedupe keys, %d expiry entries", len(want), n)
		}
		return nil
	})
}

// wantDeliveryStates fails t unless Stats counts want[state] deliveries in
// each state it names.
func wantDeliveryStates(t *testing.T, db *testDB, want map[string]int) {
	t.Helper()
	st, err := db.Stats()
	if err != nil {
		t.Fatal(err)
	}
	for state, n := range want {
		if st.Deliveries[state] != n {
			t.Fatalf("%d deliveries %s, want %d (stats %+v)", st.Deliveries[state], state, n, st)
		}
	}
}

// timerKey names a timer in the due index: connector \x00 entity \x00
// reference \x00 rule.
func timerKey(k event.EntityKey, rule string) ([]byte, error) {
	if err := checkTimerKey(k, rule); err != nil {
		return nil, err
	}
	return join(k.Connector, k.Entity, k.Reference, rule), nil
}

// isTimerRecordKey reports whether a key of the entities bucket is a
// timer's record rather than a snapshot.
func isTimerRecordKey(k []byte) bool { return markOf(k) == timerMark }

// isEventIndexKey reports whether a key of the entities bucket is an entry
// of an entity's event index.
func isEventIndexKey(k []byte) bool { return markOf(k) == eventMark }
