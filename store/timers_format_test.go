package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A live timer's record is 33 bytes that give back the timer, its key
// and rule from the record key, its due index entry, and zero times as
// zero.
func TestTimerRecordFormat(t *testing.T) {
	db := mustOpen(t)
	t0 := db.clock.Now().Add(123456789 * time.Nanosecond)
	cases := []timerRecord{
		{Timer: Timer{Key: ticket("42"), Rule: "pending-48h", Due: t0.Add(48 * time.Hour), ArmedAt: t0}, Entry: dueEntry{at: nanos(t0.Add(time.Hour)), seq: 7}},
		{Timer: Timer{Key: ticket("x/y z"), Rule: "idle", Due: t0}}, // not armed at a known time, no entry
	}
	for _, want := range cases {
		name, err := timerKey(want.Key, want.Rule)
		if err != nil {
			t.Fatal(err)
		}
		rk := recordKey(name)
		db.update(func(tx *Tx) error { return tx.putTimerRecord(rk, &want) })
		var raw []byte
		var got *timerRecord
		var st timerState
		db.update(func(tx *Tx) error {
			raw = bytes.Clone(tx.b(bucketEntities).Get(rk))
			if got, _, _, err = tx.timerRecordAt(rk); err != nil {
				return err
			}
			st, err = tx.timerStateAt(rk)
			return err
		})
		if len(raw) != timerLiveLen || raw[0] != timerLive {
			t.Fatalf("%s: stored %d bytes %x, want %d starting %d", want.Key, len(raw), raw, timerLiveLen, timerLive)
		}
		if got.Key != want.Key || got.Rule != want.Rule || !got.Due.Equal(want.Due) ||
			!got.ArmedAt.Equal(want.ArmedAt) || got.ArmedAt.IsZero() != want.ArmedAt.IsZero() || got.Entry != want.Entry {
			t.Fatalf("read back %+v, want %+v", *got, want)
		}
		if st != (timerState{live: true, entry: want.Entry}) {
			t.Fatalf("state %+v, want live with entry %v", st, want.Entry)
		}
	}
}

// The record's bytes are the documented layout (store/doc.go).
func TestTimerRecordLayout(t *testing.T) {
	at := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	rec := timerRecord{Timer: Timer{Due: at.Add(time.Hour), ArmedAt: at}, Entry: dueEntry{at: nanos(at.Add(30 * time.Minute)), seq: 258}}
	want := []byte{timerLive}
	for _, n := range []uint64{nanos(at.Add(time.Hour)), nanos(at), nanos(at.Add(30 * time.Minute)), 258} {
		want = binary.BigEndian.AppendUint64(want, n)
	}
	if got := encodeTimerRecord(&rec); !bytes.Equal(got, want) {
		t.Fatalf("record bytes\n got %x\nwant %x (tag, due, armed at, entry time, entry sequence)", got, want)
	}
}

// A timer due at or before 1970 (its due time clamps to 0, which in an
// entry means "none") still gets exactly one entry: arming it again,
// cancelling it and settling leave the index consistent, and it fires.
func TestTimerDueBeforeEpochKeepsOneEntry(t *testing.T) {
	db := mustOpen(t)
	now := db.clock.Now()
	for range 2 {
		db.update(func(tx *Tx) error { return tx.PutTimer(Timer{Key: ticket("1"), Rule: "zero", ArmedAt: now}) })
		if err := checkCounters(db.DB); err != nil {
			t.Fatal(err)
		}
	}
	if fired := settle(t, db, now); !slices.Equal(fired, []string{"zendesk/ticket/1#zero"}) {
		t.Fatalf("fired %v, want the timer due before 1970", fired)
	}
	db.update(func(tx *Tx) error {
		return tx.PutTimer(Timer{Key: ticket("2"), Rule: "zero", Due: time.Unix(-3600, 0), ArmedAt: now})
	})
	db.update(func(tx *Tx) error { return tx.DeleteTimer(ticket("2"), "zero") })
	if fired := settle(t, db, now); len(fired) != 0 {
		t.Fatalf("fired %v after cancelling", fired)
	}
	if got := dueIndex(t, db.DB, now); len(got) != 0 {
		t.Fatalf("due index left with %v", got)
	}
}

// Timers that come due at the same instant (armed while business hours
// are closed) get index entries in the order they were armed, not in
// name order, so new ones go after those already there; the index still
// hands them out in due order, then name order.
func TestDueIndexOrdersSameTimeByArming(t *testing.T) {
	db := mustOpen(t)
	t0 := db.clock.Now()
	opening := t0.Add(60 * time.Hour)
	refs := []string{"9", "3", "7", "1"}
	for _, ref := range refs {
		db.update(func(tx *Tx) error {
			return tx.PutTimer(Timer{Key: ticket(ref), Rule: "business", Due: opening, ArmedAt: t0})
		})
	}
	got := dueIndex(t, db.DB, t0)
	want := []string{"60h0m0s zendesk/ticket/9#business", "60h0m0s zendesk/ticket/3#business", "60h0m0s zendesk/ticket/7#business", "60h0m0s zendesk/ticket/1#business"}
	if !slices.Equal(got, want) {
		t.Fatalf("due index\n got %v\nwant %v", got, want)
	}
	all, err := db.Timers(TimerFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if ids := timerIDs(all); !slices.Equal(ids, []string{"zendesk/ticket/1#business", "zendesk/ticket/3#business", "zendesk/ticket/7#business", "zendesk/ticket/9#business"}) {
		t.Fatalf("timers listed %v, want name order within the same due time", ids)
	}
	if fired := settle(t, db, opening); !slices.Equal(fired, timerIDs(all)) {
		t.Fatalf("fired %v, want %v", fired, timerIDs(all))
	}
}

// A store of schema 3 wrote live timers as JSON, tombstones without a
// sequence, and due index entries in timers_due ordered by name. This
// build moves the entries into timers_by_due at open, reads the old
// records, and replaces each with the binary form when it writes the timer
// again; moving, cancelling, settling and firing work on them as on new
// ones.
func TestOpenSchema3StoreReadsJSONTimers(t *testing.T) {
	db := mustOpen(t)
	t0 := db.clock.Now()
	legacy := []timerRecordV3{
		{Timer: Timer{Key: ticket("1"), Rule: "idle", Due: t0.Add(10 * time.Minute), ArmedAt: t0}, Indexed: t0.Add(10 * time.Minute)},
		{Timer: Timer{Key: ticket("2"), Rule: "pending", Due: t0.Add(30 * time.Minute), ArmedAt: t0}, Indexed: t0.Add(20 * time.Minute)},
		{Timer: Timer{Key: ticket("3"), Rule: "pending", Due: t0.Add(40 * time.Minute), ArmedAt: t0}, Indexed: t0.Add(40 * time.Minute)},
		{Timer: Timer{Key: ticket("5"), Rule: "pending", Due: t0.Add(45 * time.Minute), ArmedAt: t0}, Indexed: t0.Add(45 * time.Minute)},
	}
	cancelled, _ := timerKey(ticket("4"), "pending") // a schema 3 tombstone
	if err := db.bolt.Update(func(btx *bolt.Tx) error {
		oldDue, err := btx.CreateBucket([]byte(bucketTimersDueV3))
		if err != nil {
			return err
		}
		for _, rec := range legacy {
			name, err := timerKey(rec.Key, rec.Rule)
			if err != nil {
				return err
			}
			v, err := json.Marshal(rec)
			if err != nil {
				return err
			}
			if err := btx.Bucket([]byte(bucketEntities)).Put(recordKey(name), v); err != nil {
				return err
			}
			if err := oldDue.Put(timeKey(rec.Indexed, name), present()); err != nil {
				return err
			}
		}
		if err := btx.Bucket([]byte(bucketEntities)).Put(recordKey(cancelled), append([]byte{timerTombstone}, timeKey(t0.Add(5*time.Minute))...)); err != nil {
			return err
		}
		if err := oldDue.Put(timeKey(t0.Add(5*time.Minute), cancelled), present()); err != nil {
			return err
		}
		if err := btx.Bucket([]byte(bucketMeta)).Put([]byte(metaVersion), []byte{0, 0, 0, 0, 0, 0, 0, 3}); err != nil {
			return err
		}
		return addCount(btx.Bucket([]byte(bucketMeta)), countTimers, int64(len(legacy)))
	}); err != nil {
		t.Fatal(err)
	}
	db.reopen()
	if v := storedVersion(t, db.DB); v != schemaVersion {
		t.Fatalf("schema version %d, want %d", v, schemaVersion)
	}
	if err := db.bolt.View(func(btx *bolt.Tx) error {
		if btx.Bucket([]byte(bucketTimersDueV3)) != nil {
			t.Error("the schema 3 due index is still there")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := checkCounters(db.DB); err != nil {
		t.Fatal(err)
	}
	all, err := db.Timers(TimerFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := timerIDs(all), []string{"zendesk/ticket/1#idle", "zendesk/ticket/2#pending", "zendesk/ticket/3#pending", "zendesk/ticket/5#pending"}; !slices.Equal(got, want) {
		t.Fatalf("timers of the schema 3 store %v, want %v", got, want)
	}
	for i, tm := range all {
		if !tm.Due.Equal(legacy[i].Due) || !tm.ArmedAt.Equal(legacy[i].ArmedAt) {
			t.Fatalf("timer %d read as %+v, want %+v", i, tm, legacy[i].Timer)
		}
	}
	db.update(func(tx *Tx) error {
		of, err := tx.TimersOf(ticket("2"))
		if err != nil || len(of) != 1 || !of[0].Due.Equal(legacy[1].Due) {
			t.Errorf("TimersOf(2) = %+v, %v", of, err)
		}
		// Moved later: the entry stays where it was, the record turns binary.
		if err := tx.PutTimer(Timer{Key: ticket("1"), Rule: "idle", Due: t0.Add(50 * time.Minute), ArmedAt: t0.Add(time.Minute)}); err != nil {
			return err
		}
		// Moved earlier: the old entry (sequence 0) goes, a new one comes.
		if err := tx.PutTimer(Timer{Key: ticket("5"), Rule: "pending", Due: t0.Add(25 * time.Minute), ArmedAt: t0.Add(time.Minute)}); err != nil {
			return err
		}
		return tx.DeleteTimer(ticket("3"), "pending")
	})
	want := []string{"5m0s zendesk/ticket/4#pending", "10m0s zendesk/ticket/1#idle", "20m0s zendesk/ticket/2#pending", "25m0s zendesk/ticket/5#pending", "40m0s zendesk/ticket/3#pending"}
	if got := dueIndex(t, db.DB, t0); !slices.Equal(got, want) {
		t.Fatalf("due index after moving and cancelling\n got %v\nwant %v", got, want)
	}
	name, _ := timerKey(ticket("1"), "idle")
	db.update(func(tx *Tx) error {
		if v := tx.b(bucketEntities).Get(recordKey(name)); len(v) != timerLiveLen || v[0] != timerLive {
			t.Errorf("moved timer stored as %q, want the binary form", v)
		}
		return nil
	})
	if err := checkCounters(db.DB); err != nil {
		t.Fatal(err)
	}
	// Settling at 35m drops 4's tombstone and moves 1's entry to its due
	// time; 2 (still JSON, indexed at 20m, due at 30m) and 5 fire.
	if got := settle(t, db, t0.Add(35*time.Minute)); !slices.Equal(got, []string{"zendesk/ticket/5#pending", "zendesk/ticket/2#pending"}) {
		t.Fatalf("fired at 35m %v, want 5's (due 25m) and 2's (due 30m) timers", got)
	}
	if got := settle(t, db, t0.Add(time.Hour)); !slices.Equal(got, []string{"zendesk/ticket/1#idle"}) {
		t.Fatalf("fired at 1h %v, want 1's timer (3 was cancelled)", got)
	}
	if got := dueIndex(t, db.DB, t0); len(got) != 0 {
		t.Fatalf("due index after everything fired: %v", got)
	}
	if err := checkCounters(db.DB); err != nil {
		t.Fatal(err)
	}
}

// decodeTimerRecord and timerStateOf never panic and agree on the record's
// state; what decodes from the binary form encodes back to the same
// bytes, and an encoded timer decodes back to itself.
func FuzzDecodeTimerRecord(f *testing.F) {
	rk := []byte("zendesk\x00ticket\x001\x00\x01idle")
	f.Add(rk, append([]byte{timerLive}, make([]byte, 32)...), int64(0), int64(0))
	f.Add(rk, []byte(`{"key":{"connector":"zendesk"},"rule":"idle","due":"2026-11-21T10:00:00Z","indexed":"2026-11-21T09:00:00Z"}`), int64(1), int64(2))
	f.Add(rk, []byte{timerTombstone, 0, 0, 0, 0, 0, 0, 0, 9}, int64(1<<62), int64(-5))
	f.Add([]byte("a\x00b"), []byte{timerLive}, int64(3), int64(4))
	f.Fuzz(func(t *testing.T, rk, v []byte, due, armed int64) {
		st, stErr := timerStateOf(rk, v)
		if isTombstone(v) {
			// The entry read from the layout itself: 0x00, time, and the
			// sequence (none in a schema 3 tombstone of 9 bytes).
			want := dueEntry{at: binary.BigEndian.Uint64(v[1:9])}
			if len(v) == 17 {
				want.seq = binary.BigEndian.Uint64(v[9:17])
			}
			if stErr != nil || !st.off || st.live || st.entry != want {
				t.Fatalf("tombstone %x: state %+v, %v; want entry %+v", v, st, stErr, want)
			}
		} else if rec, err := decodeTimerRecord(rk, v); err == nil {
			if stErr != nil || !st.live || st.entry != rec.Entry {
				t.Fatalf("record %x decodes with entry %v, state %+v, %v", v, rec.Entry, st, stErr)
			}
			if v[0] == timerLive {
				if enc := encodeTimerRecord(rec); !bytes.Equal(enc, v) {
					t.Fatalf("decoded %x as %+v, which encodes as %x", v, rec, enc)
				}
			}
		} else if stErr == nil && len(v) > 0 && !(len(v) == timerLiveLen && v[0] == timerLive) {
			// (The state of a binary record trusts its key and times.)
			t.Fatalf("record %x: decode fails (%v) but its state reads as %+v", v, err, st)
		}
		ref, err := parseTimerRecordKey(rk)
		if err != nil || due <= 0 || armed <= 0 {
			return
		}
		want := timerRecord{Timer: Timer{Key: ref.Key, Rule: ref.Rule, Due: time.Unix(0, due).UTC(), ArmedAt: time.Unix(0, armed).UTC()}, Entry: dueEntry{at: uint64(due), seq: uint64(armed)}}
		got, err := decodeTimerRecord(rk, encodeTimerRecord(&want))
		if err != nil || got.Key != want.Key || got.Rule != want.Rule || !got.Due.Equal(want.Due) || !got.ArmedAt.Equal(want.ArmedAt) || got.Entry != want.Entry {
			t.Fatalf("%+v reads back as %+v, %v", want, got, err)
		}
	})
}
