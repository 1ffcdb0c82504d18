package store

import (
	"bytes"
	"cmp"
	"container/heap"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/hookline/hookline/event"
)

// Timer is one armed time-based rule on one entity: at Due the scheduler
// turns it into a timer.fired event. There is at most one per (Key, Rule).
type Timer struct {
	Key     event.EntityKey `json:"key"`
	Rule    string          `json:"rule"`
	Due     time.Time       `json:"due"`
	ArmedAt time.Time       `json:"armed_at"`
}

// TimerFilter selects timers for Timers. Empty fields match all.
type TimerFilter struct {
	Rule string `json:"rule,omitempty"`
	// Entity matches the entity type ("ticket"), or, when it contains a
	// "/", the whole key as "connector/entity/reference".
	Entity string `json:"entity,omitempty"`
	// DueBefore keeps timers due strictly before it.
	DueBefore time.Time `json:"due_before,omitzero"`
	// Cursor is the next cursor ListTimers gave for the previous page:
	// the timers after its last one.
	Cursor string `json:"cursor,omitempty"`
	// Limit is the most timers returned (default 100, at most 1000).
	Limit int `json:"limit,omitempty"`
}

// How timers are kept (schemas 3 and 4). Arming must not cost more on a
// large store than on a small one, so a timer adds no page of its own to
// what the entity's event already writes:
//
//   - The timer's record lives in the entities bucket, right behind the
//     entity's snapshot (key: entity key \x00 \x01 rule id), so it shares
//     the snapshot's leaf page, which the event rewrites anyway. It is 33
//     bytes (schema 4), so it hardly makes that leaf fuller.
//   - The due index (timers_by_due) holds one entry per record, at a time
//     that is at most the timer's due time (the record's Entry). A
//     timer moved later keeps its entry and a cancelled one stays as a
//     tombstone with its entry, so neither touches the index, whose
//     entries are spread over the whole file. Only a timer without an
//     entry, or moved earlier than its entry, writes one; new entries are
//     now plus a rule's duration, so they land next to each other.
//   - When an entry comes due, the scheduler's DueTimers settles it in its
//     write transaction: a tombstone goes with its entry, a timer moved
//     later gets an entry at its due time, a timer that is due is returned
//     (its entry removed and cleared in the record until the firing
//     consumes it).
//
// So the index never holds more than one entry per record, and every
// record except a tombstone is a timer that is armed.

// Timer record values. A live timer (schema 4) is timerLive and four
// 8-byte big-endian numbers: due, armed at (Unix nanoseconds), and its
// due index entry (dueEntry: time, 0 for none, and sequence); the entity
// and the rule are in the key. A cancelled timer is a tombstone:
// timerTombstone and its entry. Schema 3 wrote live timers as JSON
// (timerRecordV3, '{') and tombstones without the sequence; both are
// still read, and replaced when the timer is next written.
const (
	timerTombstone = 0
	timerLive      = 1
	tombstoneLen   = 1 + 2*8
	tombstoneLenV3 = 1 + 8
	timerLiveLen   = 1 + 4*8
)

// dueEntry is where a timer's entry in the due index is: its time at (at
// most the timer's due time; 0 when the timer has none) and a sequence
// number from the index bucket. The index orders entries by time, then
// sequence, then name, so entries written for the same time go after
// the ones already there. Timers armed when the business hours are
// closed all come due at the same instant (opening time plus the rule's
// duration); ordered by name, each of them would land on its own leaf
// among a growing crowd, while in sequence order they fill one page.
type dueEntry struct{ at, seq uint64 }

// entryAt is the time of a new entry for a timer due at due (nanos): due
// itself, but never 0, which means "no entry". (A due time at or before
// 1970 is clamped to 0; its entry at 1 ns is still due at once.)
func entryAt(due uint64) uint64 { return max(due, 1) }

// key returns the entry's key in the due index: at (8) + seq (8) + name.
func (e dueEntry) key(name ...[]byte) []byte {
	n := 16
	for _, p := range name {
		n += len(p)
	}
	k := make([]byte, 16, n)
	binary.BigEndian.PutUint64(k, e.at)
	binary.BigEndian.PutUint64(k[8:], e.seq)
	for _, p := range name {
		k = append(k, p...)
	}
	return k
}

// keyFor is key for the timer whose record key is rk: its name is rk
// without the mark.
func (e dueEntry) keyFor(rk []byte) []byte {
	i := bytes.LastIndexByte(rk, sep)
	return e.key(rk[:i+1], rk[i+2:])
}

// parseDueKey splits a key of the due index.
func parseDueKey(k []byte) (dueEntry, []byte, error) {
	if len(k) <= 16 {
		return dueEntry{}, nil, fmt.Errorf("timer due index key %q is too short", k)
	}
	return dueEntry{at: binary.BigEndian.Uint64(k), seq: binary.BigEndian.Uint64(k[8:])}, k[16:], nil
}

// newEntry gives the timer whose record key is rk a new due index entry
// for its due time due (nanos), at entryAt(due) with the index's next
// sequence number, and returns it.
func (tx *Tx) newEntry(rk []byte, due uint64) (dueEntry, error) {
	index := tx.b(bucketTimersDue)
	seq, err := index.NextSequence()
	if err != nil {
		return dueEntry{}, fmt.Errorf("timer due index sequence: %w", err)
	}
	e := dueEntry{at: entryAt(due), seq: seq}
	if err := index.Put(e.keyFor(rk), present()); err != nil {
		return dueEntry{}, fmt.Errorf("index timer %q: %w", rk, err)
	}
	return e, nil
}

// reindexAtDue gives the live timer rec, stored under rk, a new entry at
// its due time and writes the record.
func (tx *Tx) reindexAtDue(rk []byte, rec *timerRecord) error {
	var err error
	if rec.Entry, err = tx.newEntry(rk, nanos(rec.Due)); err != nil {
		return err
	}
	return tx.putTimerRecord(rk, rec)
}

// timerRecord is a live timer as stored: the Timer and where its due index
// entry is (Entry.at is zero while a firing transaction has taken it).
type timerRecord struct {
	Timer
	Entry dueEntry
}

// timerRecordV3 is a live timer as schema 3 stored it (JSON).
type timerRecordV3 struct {
	Timer
	// Indexed is the time of the timer's entry, whose sequence was 0.
	Indexed time.Time `json:"indexed,omitzero"`
}

// checkTimerKey checks the parts of a timer's name and its length.
func checkTimerKey(k event.EntityKey, rule string) error {
	if err := checkEntityKey(k); err != nil {
		return err
	}
	if err := checkPart("rule id", rule); err != nil {
		return err
	}
	if len(k.Connector)+len(k.Entity)+len(k.Reference)+len(rule)+3 > maxIndexedKey {
		return fmt.Errorf("timer key too long: %w", ErrInvalid)
	}
	return nil
}

// timerRecordKey returns the key of a timer's record in the entities
// bucket (recordKey of its name, connector \x00 entity \x00 reference
// \x00 rule), built in one go: from the write arena in a write
// transaction.
func (tx *Tx) timerRecordKey(k event.EntityKey, rule string) ([]byte, error) {
	if err := checkTimerKey(k, rule); err != nil {
		return nil, err
	}
	if tx.tx.Writable() {
		return tx.db.wmem.markedKey(timerMark, k.Connector, k.Entity, k.Reference, rule), nil
	}
	parts := []string{k.Connector, k.Entity, k.Reference, rule}
	return appendMarkedKey(make([]byte, 0, len(parts[0])+len(parts[1])+len(parts[2])+len(rule)+4), timerMark, parts), nil
}

// recordKey turns a timer's name (timerKey) into the key of its record in
// the entities bucket.
func recordKey(name []byte) []byte { return markLast(name, timerMark) }

// isTombstone reports whether a timer record's value is a cancelled
// timer's.
func isTombstone(v []byte) bool {
	return (len(v) == tombstoneLen || len(v) == tombstoneLenV3) && v[0] == timerTombstone
}

// tombstoneEntry returns the due index entry a tombstone keeps.
func tombstoneEntry(v []byte) dueEntry {
	e := dueEntry{at: binary.BigEndian.Uint64(v[1:])}
	if len(v) == tombstoneLen {
		e.seq = binary.BigEndian.Uint64(v[9:])
	}
	return e
}

// timerState is what writing a timer needs to know of its stored record.
type timerState struct {
	// live is true for an armed timer, off for a tombstone; both are
	// false when there is no record.
	live, off bool
	// entry is the record's due index entry (at 0: none).
	entry dueEntry
}

// timerStateAt reads the state of the record under rk.
func (tx *Tx) timerStateAt(rk []byte) (timerState, error) {
	return timerStateOf(rk, tx.b(bucketEntities).Get(rk))
}

// timerStateOf returns the state of the record v (nil: none) stored under
// rk, without decoding a binary timer: it trusts the key and the times,
// which decodeTimerRecord checks.
func timerStateOf(rk, v []byte) (timerState, error) {
	switch {
	case v == nil:
		return timerState{}, nil
	case isTombstone(v):
		return timerState{off: true, entry: tombstoneEntry(v)}, nil
	case len(v) == timerLiveLen && v[0] == timerLive:
		return timerState{live: true, entry: liveEntry(v)}, nil
	}
	rec, err := decodeTimerRecord(rk, v)
	if err != nil {
		return timerState{}, err
	}
	return timerState{live: true, entry: rec.Entry}, nil
}

// timerRecordAt reads the record under rk: nil when there is none; off is
// true for a tombstone (entry is then the entry it keeps).
func (tx *Tx) timerRecordAt(rk []byte) (rec *timerRecord, off bool, entry dueEntry, err error) {
	v := tx.b(bucketEntities).Get(rk)
	switch {
	case v == nil:
		return nil, false, dueEntry{}, nil
	case isTombstone(v):
		return nil, true, tombstoneEntry(v), nil
	}
	if rec, err = decodeTimerRecord(rk, v); err != nil {
		return nil, false, dueEntry{}, err
	}
	return rec, false, rec.Entry, nil
}

// decodeTimerRecord decodes the live timer v stored under the record key
// rk, in either format.
func decodeTimerRecord(rk, v []byte) (*timerRecord, error) {
	if len(v) > 0 && v[0] == '{' {
		var old timerRecordV3
		if err := json.Unmarshal(v, &old); err != nil {
			return nil, fmt.Errorf("decode timer %q: %w", rk, err)
		}
		rec := &timerRecord{Timer: old.Timer}
		if !old.Indexed.IsZero() {
			rec.Entry.at = entryAt(nanos(old.Indexed))
		}
		return rec, nil
	}
	if len(v) != timerLiveLen || v[0] != timerLive {
		return nil, fmt.Errorf("decode timer %q: not a timer record (%d bytes): %w", rk, len(v), ErrInvalid)
	}
	for at := 1; at < 1+3*8; at += 8 {
		if binary.BigEndian.Uint64(v[at:]) > math.MaxInt64 {
			return nil, fmt.Errorf("decode timer %q: time out of range: %w", rk, ErrInvalid)
		}
	}
	ref, err := parseTimerRecordKey(rk)
	if err != nil {
		return nil, fmt.Errorf("decode timer: %w", err)
	}
	return &timerRecord{
		Timer: Timer{
			Key:     ref.Key,
			Rule:    ref.Rule,
			Due:     timeOrZero(binary.BigEndian.Uint64(v[1:])),
			ArmedAt: timeOrZero(binary.BigEndian.Uint64(v[9:])),
		},
		Entry: liveEntry(v),
	}, nil
}

// liveEntry is the due index entry of a binary live record.
func liveEntry(v []byte) dueEntry {
	return dueEntry{at: binary.BigEndian.Uint64(v[17:]), seq: binary.BigEndian.Uint64(v[25:])}
}

// timeOrZero is the inverse of nanos: 0 reads as the zero time.
func timeOrZero(n uint64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return fromNanos(n)
}

// encodeTimerRecord returns the binary form of a live timer.
func encodeTimerRecord(rec *timerRecord) []byte {
	return appendTimerRecord(make([]byte, 0, timerLiveLen), rec)
}

// appendTimerRecord appends the binary form of a live timer to b.
func appendTimerRecord(b []byte, rec *timerRecord) []byte {
	b = append(b, timerLive)
	b = binary.BigEndian.AppendUint64(b, nanos(rec.Due))
	b = binary.BigEndian.AppendUint64(b, nanos(rec.ArmedAt))
	b = binary.BigEndian.AppendUint64(b, rec.Entry.at)
	return binary.BigEndian.AppendUint64(b, rec.Entry.seq)
}

// putTimerRecord writes the live timer rec under rk.
func (tx *Tx) putTimerRecord(rk []byte, rec *timerRecord) error {
	var buf [timerLiveLen]byte
	if err := tx.b(bucketEntities).Put(rk, tx.db.wmem.copy(appendTimerRecord(buf[:0], rec))); err != nil {
		return fmt.Errorf("put timer %s %s: %w", rec.Key, rec.Rule, err)
	}
	return nil
}

// putTombstone cancels the timer under rk, keeping its due index entry e.
func (tx *Tx) putTombstone(rk []byte, e dueEntry) error {
	var buf [tombstoneLen]byte
	buf[0] = timerTombstone
	binary.BigEndian.PutUint64(buf[1:], e.at)
	binary.BigEndian.PutUint64(buf[9:], e.seq)
	if err := tx.b(bucketEntities).Put(rk, tx.db.wmem.copy(buf[:])); err != nil {
		return fmt.Errorf("cancel timer %q: %w", rk, err)
	}
	return nil
}

// PutTimer arms a timer, replacing the due time of the one already armed
// for the same entity and rule.
func (tx *Tx) PutTimer(t Timer) error {
	if err := tx.writable("put timer"); err != nil {
		return err
	}
	rk, err := tx.timerRecordKey(t.Key, t.Rule)
	if err != nil {
		return fmt.Errorf("put timer: %w", err)
	}
	old, err := tx.timerStateAt(rk)
	if err != nil {
		return fmt.Errorf("put timer %s %s: %w", t.Key, t.Rule, err)
	}
	rec := &timerRecord{Timer: t, Entry: old.entry}
	if at := entryAt(nanos(t.Due)); old.entry.at == 0 || old.entry.at > at {
		// No entry, or moved earlier than it. (Otherwise the entry stays
		// and is settled when it comes due.)
		if old.entry.at != 0 {
			if err := tx.b(bucketTimersDue).Delete(old.entry.keyFor(rk)); err != nil {
				return fmt.Errorf("put timer %s %s: unindex old: %w", t.Key, t.Rule, err)
			}
		}
		if rec.Entry, err = tx.newEntry(rk, nanos(t.Due)); err != nil {
			return fmt.Errorf("put timer %s %s: %w", t.Key, t.Rule, err)
		}
	}
	if !old.live {
		if err := tx.addCount(tx.b(bucketMeta), countTimers, 1); err != nil {
			return err
		}
	}
	return tx.putTimerRecord(rk, rec)
}

// DeleteTimer disarms a timer; deleting one that does not exist is not an
// error. A timer with a due index entry stays as a tombstone until the
// entry comes due, so that cancelling writes nothing outside the entity's
// own records.
func (tx *Tx) DeleteTimer(k event.EntityKey, ruleID string) error {
	if err := tx.writable("delete timer"); err != nil {
		return err
	}
	rk, err := tx.timerRecordKey(k, ruleID)
	if err != nil {
		return fmt.Errorf("delete timer: %w", err)
	}
	old, err := tx.timerStateAt(rk)
	if err != nil || !old.live {
		return err
	}
	if old.entry.at == 0 {
		err = tx.b(bucketEntities).Delete(rk)
	} else {
		err = tx.putTombstone(rk, old.entry)
	}
	if err != nil {
		return fmt.Errorf("delete timer %s %s: %w", k, ruleID, err)
	}
	return tx.addCount(tx.b(bucketMeta), countTimers, -1)
}

// Timer returns the timer of an entity and rule, or nil, nil when none is
// armed.
func (tx *Tx) Timer(k event.EntityKey, ruleID string) (*Timer, error) {
	rk, err := tx.timerRecordKey(k, ruleID)
	if err != nil {
		return nil, fmt.Errorf("timer: %w", err)
	}
	rec, _, _, err := tx.timerRecordAt(rk)
	if err != nil || rec == nil {
		return nil, err
	}
	return &rec.Timer, nil
}

// TimersOf returns every timer armed on one entity, in rule id order.
func (tx *Tx) TimersOf(k event.EntityKey) ([]Timer, error) {
	ek, err := entityKeyBytes(k)
	if err != nil {
		return nil, fmt.Errorf("timers of %s: %w", k, err)
	}
	prefix := append(ek, sep, timerMark)
	var out []Timer
	c := tx.b(bucketEntities).Cursor()
	for key, v := c.Seek(prefix); key != nil && bytes.HasPrefix(key, prefix); key, v = c.Next() {
		if isTombstone(v) {
			continue
		}
		rec, err := decodeTimerRecord(key, v)
		if err != nil {
			return nil, err
		}
		out = append(out, rec.Timer)
	}
	return out, nil
}

// walkDue calls fn for the armed timers due before upTo (zero: no bound)
// in due order (then name order) while fn returns true. Index entries are
// at or before their timers' due times, so when the walk reaches an entry
// at time E it has seen every timer due before E: it keeps the timers it
// has read in a heap and hands out those due before E. It never reads an
// entry at or after upTo.
func (tx *Tx) walkDue(upTo time.Time, fn func(t *Timer) (bool, error)) error {
	limit := ^uint64(0)
	if !upTo.IsZero() {
		limit = nanos(upTo)
	}
	var h timerHeap
	emitBefore := func(bound uint64) (bool, error) {
		for len(h) > 0 && nanos(h[0].Due) < bound {
			t := heap.Pop(&h).(Timer)
			if more, err := fn(&t); err != nil || !more {
				return false, err
			}
		}
		return true, nil
	}
	c := tx.b(bucketTimersDue).Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		e, name, err := parseDueKey(k)
		if err != nil {
			return err
		}
		if e.at >= limit {
			break
		}
		if more, err := emitBefore(e.at); err != nil || !more {
			return err
		}
		rec, _, entry, err := tx.timerRecordAt(recordKey(name))
		if err != nil {
			return err
		}
		if rec != nil && entry == e {
			heap.Push(&h, rec.Timer)
		}
	}
	_, err := emitBefore(limit)
	return err
}

// compareTimers orders timers by due time, then as the due index orders
// their names (connector, entity, reference, rule).
func compareTimers(a, b Timer) int {
	return cmp.Or(a.Due.Compare(b.Due), cmp.Compare(a.Key.Connector, b.Key.Connector),
		cmp.Compare(a.Key.Entity, b.Key.Entity), cmp.Compare(a.Key.Reference, b.Key.Reference),
		cmp.Compare(a.Rule, b.Rule))
}

// timerHeap keeps timers in compareTimers order.
type timerHeap []Timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return compareTimers(h[i], h[j]) < 0 }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(Timer)) }
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}

// Timers lists armed timers in due order: the first page of ListTimers.
func (db *DB) Timers(f TimerFilter) ([]Timer, error) {
	ts, _, err := db.ListTimers(f)
	return ts, err
}

// NextTimerDue returns the time of the first due index entry: the earliest
// due time of any timer, or earlier when that entry belongs to a timer
// moved later or cancelled, which DueTimers settles when it comes. ok is
// false when the index is empty.
func (db *DB) NextTimerDue() (due time.Time, ok bool, err error) {
	err = db.View(func(tx *Tx) error {
		k, _ := tx.b(bucketTimersDue).Cursor().First()
		if len(k) >= 8 {
			due, ok = fromNanos(binary.BigEndian.Uint64(k[:8])), true
		}
		return nil
	})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("next timer due: %w", err)
	}
	return due, ok, nil
}

// DueTimers returns up to limit timers with Due <= now in due order, then
// name order. It range-scans the due index, never all timers or entities.
// limit <= 0 means 100; at most 1000 are returned.
func (db *DB) DueTimers(now time.Time, limit int) ([]Timer, error) {
	var out []Timer
	err := db.View(func(tx *Tx) error {
		var err error
		out, err = tx.DueTimers(now, limit)
		return err
	})
	return out, err
}

// DueTimers returns, inside a transaction, up to limit timers with
// Due <= now in due order, reading only index entries up to now. In a
// write transaction, when more than limit timers share a due time, each
// call takes them in the order their entries were written (then hands
// out its share in name order). The
// scheduler calls it in the same write transaction that fires the timers,
// so a timer moved or cancelled meanwhile is never fired. In a write
// transaction it also settles the entries it passes (see above) and takes
// the entries of the timers it returns: a firing consumes its timer
// (DeleteTimer) or arms it again, and a timer left as it was gets its
// entry back before the transaction commits. limit <= 0 means 100; at
// most 1000.
func (tx *Tx) DueTimers(now time.Time, limit int) ([]Timer, error) {
	limit = clampLimit(limit)
	var out []Timer
	var err error
	if tx.tx.Writable() {
		out, err = tx.settleDue(nanos(now), limit)
	} else {
		err = tx.walkDue(now.Add(time.Nanosecond), func(t *Timer) (bool, error) {
			out = append(out, *t)
			return len(out) < limit, nil
		})
	}
	if err != nil {
		return nil, fmt.Errorf("due timers: %w", err)
	}
	return out, nil
}

// indexTaken gives the timers DueTimers took in this transaction and that
// are still armed without an entry (a firing that neither consumed nor
// re-armed its timer) an entry at their due time again, so that no timer
// is ever armed without one. Update calls it after its function.
func (tx *Tx) indexTaken() error {
	for _, rk := range tx.taken {
		// Most firings consumed or re-armed their timer: read the state,
		// and the whole record only for one left without an entry.
		v := tx.b(bucketEntities).Get(rk)
		st, err := timerStateOf(rk, v)
		if err != nil {
			return err
		}
		if !st.live || st.entry.at != 0 {
			continue
		}
		rec, err := decodeTimerRecord(rk, v)
		if err != nil {
			return err
		}
		if err := tx.reindexAtDue(rk, rec); err != nil {
			return err
		}
	}
	tx.taken = nil
	return nil
}

// maxSettlePerDue bounds the entries one DueTimers call settles without
// returning a timer, so that a transaction stays short after a long
// downtime; the scheduler calls again while entries up to now remain.
const maxSettlePerDue = 4096

// settleDue walks the due index up to now in a write transaction: it
// drops tombstones with their entries, moves the entries of timers due
// later to their due times, and takes the entries of timers that are due
// (returned in due order, then name order).
func (tx *Tx) settleDue(now uint64, limit int) ([]Timer, error) {
	index := tx.b(bucketTimersDue)
	var out []Timer
	settled := 0
	// The cursor seeks again after every change: a bbolt cursor must not
	// step on from a key it deleted.
	c := index.Cursor()
	for k, _ := c.First(); k != nil && len(out) < limit && settled < maxSettlePerDue; k, _ = c.Seek(k) {
		e, name, err := parseDueKey(k)
		if err != nil {
			return nil, err
		}
		if e.at > now {
			break
		}
		k = bytes.Clone(k)
		name = k[16:]
		rk := recordKey(name)
		rec, off, entry, err := tx.timerRecordAt(rk)
		switch {
		case err != nil:
			return nil, err
		case entry != e:
			return nil, fmt.Errorf("timer due index entry %q names no timer indexed there", k)
		}
		if err := index.Delete(k); err != nil {
			return nil, fmt.Errorf("unindex timer %q: %w", name, err)
		}
		switch {
		case off:
			settled++
			if err := tx.b(bucketEntities).Delete(rk); err != nil {
				return nil, fmt.Errorf("drop cancelled timer %q: %w", name, err)
			}
		case nanos(rec.Due) > now:
			settled++
			if err := tx.reindexAtDue(rk, rec); err != nil {
				return nil, err
			}
		default:
			rec.Entry = dueEntry{}
			if err := tx.putTimerRecord(rk, rec); err != nil {
				return nil, err
			}
			tx.taken = append(tx.taken, rk)
			out = append(out, rec.Timer)
		}
	}
	// Entries sort by their own time, which for a timer that was moved
	// later and then earlier again may be before another's: hand them
	// out in due order.
	slices.SortFunc(out, compareTimers)
	return out, nil
}
