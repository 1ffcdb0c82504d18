package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/hookline/hookline/event"
)

// StoredEvent is an event as kept in the store, with the pipeline's trace
// (which rules matched and why) when one was recorded.
type StoredEvent struct {
	Event *event.Event    `json:"event"`
	Trace json.RawMessage `json:"trace,omitempty"`
}

// EventFilter selects events for ListEvents. Empty fields match all.
type EventFilter struct {
	Connector string `json:"connector,omitempty"`
	Type      string `json:"type,omitempty"`
	// Entity is the entity type ("ticket").
	Entity    string `json:"entity,omitempty"`
	Reference string `json:"reference,omitempty"`
	// Since keeps events whose id (ULID) time is at or after Since's
	// millisecond: ids are assigned at receive time.
	Since time.Time `json:"since,omitzero"`
	// Cursor is the last id of the previous page (exclusive).
	Cursor string `json:"cursor,omitempty"`
	// Limit is the page size (default 100, at most 1000).
	Limit int `json:"limit,omitempty"`
}

// PutEvent stores an event with its trace and indexes it by entity key.
// e.ID must be set (use DB.NewID). Putting the same id again replaces it.
// The trace is a json.RawMessage stored as it is, nil for none, or any
// other value, encoded with encoding/json (a nil pointer encodes as null).
func (tx *Tx) PutEvent(e *event.Event, trace any) error {
	if err := checkPutEvent(tx, e); err != nil {
		return err
	}
	m := &tx.db.wmem
	data, err := m.packedEvent(e, trace)
	if err != nil {
		return err
	}
	if err := tx.b(bucketEvents).Put(m.key(e.ID), data); err != nil {
		return fmt.Errorf("put event %s: %w", e.ID, err)
	}
	return tx.putEventIndex(e)
}

// putEventIndex writes e's entry in its entity's event index (kept
// behind the snapshot).
func (tx *Tx) putEventIndex(e *event.Event) error {
	ik := tx.db.wmem.markedKey(eventMark, e.Connector, e.Entity, e.Reference, e.ID)
	if err := tx.b(bucketEntities).Put(ik, present()); err != nil {
		return fmt.Errorf("put event %s: index by entity: %w", e.ID, err)
	}
	return nil
}

// packedEvent is the stored value of e with its trace: encoded, then
// packed, carved from m's arena.
func (m *writeMem) packedEvent(e *event.Event, trace any) ([]byte, error) {
	data, err := m.enc.storedEvent(e, trace)
	if err != nil {
		return nil, fmt.Errorf("put event %s: encode: %w", e.ID, err)
	}
	return m.pack(data), nil
}

// checkPutEvent refuses an event that cannot be stored, or a read-only tx.
func checkPutEvent(tx *Tx, e *event.Event) error {
	if err := tx.writable("put event"); err != nil {
		return err
	}
	if e == nil || e.ID == "" {
		return fmt.Errorf("put event: empty id: %w", ErrInvalid)
	}
	if len(e.ID) > maxIDLen {
		return fmt.Errorf("put event: id longer than %d bytes: %w", maxIDLen, ErrInvalid)
	}
	if err := checkEntityKey(e.Key()); err != nil {
		return fmt.Errorf("put event %s: %w", e.ID, err)
	}
	if len(e.Connector)+len(e.Entity)+len(e.Reference)+2 > maxIndexedKey {
		return fmt.Errorf("put event %s: entity key too long: %w", e.ID, ErrInvalid)
	}
	return nil
}

// Event returns one stored event, or ErrNotFound.
func (tx *Tx) Event(id string) (*StoredEvent, error) {
	v := tx.b(bucketEvents).Get([]byte(id))
	if v == nil {
		return nil, fmt.Errorf("event %s: %w", id, ErrNotFound)
	}
	se := new(StoredEvent)
	if err := decodeStoredEvent(id, v, se); err != nil {
		return nil, err
	}
	return se, nil
}

// decodeStoredEvent decodes the stored value v of event id (packed or not)
// into se.
func decodeStoredEvent[ID string | []byte](id ID, v []byte, se *StoredEvent) error {
	v, err := unpack(v)
	if err != nil {
		return fmt.Errorf("event %s: %w", id, err)
	}
	if err := json.Unmarshal(v, se); err != nil {
		return fmt.Errorf("decode event %s: %w", id, err)
	}
	return nil
}

// Event returns one stored event, or ErrNotFound.
func (db *DB) Event(id string) (*StoredEvent, error) {
	var se *StoredEvent
	err := db.View(func(tx *Tx) error {
		var err error
		se, err = tx.Event(id)
		return err
	})
	return se, err
}

// ListEvents returns events newest first and the cursor of the next page
// ("" when there is no more). With Connector, Entity and Reference all set
// it walks the entity index instead of all events; Since stops the walk at
// the first id older than Since, so older data is not read. A page reads
// at most maxListScan events: a filter that few match answers a short,
// possibly empty, page with the cursor where the walk stopped.
func (db *DB) ListEvents(f EventFilter) ([]StoredEvent, string, error) {
	return db.listEvents(f, maxListScan)
}

// listEvents is ListEvents reading at most budget events.
func (db *DB) listEvents(f EventFilter, budget int) ([]StoredEvent, string, error) {
	if err := checkListArgs(f.Cursor, "connector", f.Connector, "type", f.Type, "entity", f.Entity, "reference", f.Reference); err != nil {
		return nil, "", fmt.Errorf("list events: %w", err)
	}
	var floor []byte
	if !f.Since.IsZero() {
		floor = ulidFloor(f.Since)
	}
	page := newListPage[StoredEvent](clampLimit(f.Limit), budget, idCursor)
	err := db.View(func(tx *Tx) error {
		match := func(se *StoredEvent) bool {
			e := se.Event
			return e != nil &&
				(f.Connector == "" || e.Connector == f.Connector) &&
				(f.Type == "" || e.Type == f.Type) &&
				(f.Entity == "" || e.Entity == f.Entity) &&
				(f.Reference == "" || e.Reference == f.Reference)
		}
		events := tx.b(bucketEvents)
		// visit returns false to stop the walk; v is nil for an index
		// entry whose event is gone.
		visit := func(id []byte, v []byte) (bool, error) {
			if floor != nil && bytes.Compare(id, floor) < 0 {
				return false, nil
			}
			if !page.reach(id) {
				return false, nil
			}
			if v == nil {
				return true, nil
			}
			var se StoredEvent
			if err := decodeStoredEvent(id, v, &se); err != nil {
				return false, err
			}
			if !match(&se) {
				return true, nil
			}
			return page.take(se), nil
		}
		if f.Connector != "" && f.Entity != "" && f.Reference != "" {
			ek, err := entityKeyBytes(event.EntityKey{Connector: f.Connector, Entity: f.Entity, Reference: f.Reference})
			if err != nil {
				return err
			}
			prefix := eventIndexPrefix(ek)
			var upper []byte
			if f.Cursor != "" {
				upper = append(copyBytes(prefix), f.Cursor...)
			}
			c := tx.b(bucketEntities).Cursor()
			for k, _ := lastBefore(c, prefix, upper); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Prev() {
				id := k[len(prefix):]
				more, err := visit(id, events.Get(id))
				if err != nil || !more {
					return err
				}
			}
			return nil
		}
		return scanNewestFirst(events.Cursor(), f.Cursor, visit)
	})
	if err != nil {
		return nil, "", fmt.Errorf("list events: %w", err)
	}
	return page.items, page.next, nil
}

// Entity returns the snapshot of an entity, or nil, nil when it is unknown.
func (tx *Tx) Entity(k event.EntityKey) (*event.Snapshot, error) {
	key, err := entityKeyBytes(k)
	if err != nil {
		return nil, fmt.Errorf("entity %s: %w", k, err)
	}
	v := tx.b(bucketEntities).Get(key)
	if v == nil {
		return nil, nil
	}
	if v, err = unpack(v); err != nil {
		return nil, fmt.Errorf("entity %s: %w", k, err)
	}
	s := new(event.Snapshot)
	if err := decodeSnapshot(v, s); err != nil {
		return nil, fmt.Errorf("decode entity %s: %w", k, err)
	}
	return s, nil
}

// PutEntity stores a snapshot under s.Key, replacing the previous one.
func (tx *Tx) PutEntity(s *event.Snapshot) error {
	if err := tx.writable("put entity"); err != nil {
		return err
	}
	if s == nil {
		return fmt.Errorf("put entity: nil snapshot: %w", ErrInvalid)
	}
	if err := checkEntityKey(s.Key); err != nil {
		return fmt.Errorf("put entity %s: %w", s.Key, err)
	}
	m := &tx.db.wmem
	data, err := m.enc.snapshot(s)
	if err != nil {
		return fmt.Errorf("put entity %s: encode: %w", s.Key, err)
	}
	key := m.key(s.Key.Connector, s.Key.Entity, s.Key.Reference)
	if err := tx.b(bucketEntities).Put(key, m.pack(data)); err != nil {
		return fmt.Errorf("put entity %s: %w", s.Key, err)
	}
	return nil
}

// Entity returns the snapshot of an entity, or ErrNotFound.
func (db *DB) Entity(k event.EntityKey) (*event.Snapshot, error) {
	var s *event.Snapshot
	err := db.View(func(tx *Tx) error {
		var err error
		s, err = tx.Entity(k)
		return err
	})
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, fmt.Errorf("entity %s: %w", k, ErrNotFound)
	}
	return s, nil
}

// ruleFiringPrefix is ruleID \x00.
func ruleFiringPrefix(ruleID string) ([]byte, error) {
	if err := checkPart("rule id", ruleID); err != nil {
		return nil, err
	}
	return prefixOf(ruleID), nil
}

// RuleFirings counts the firings of a rule recorded at or after since (for
// rule-scope frequency limits).
func (tx *Tx) RuleFirings(ruleID string, since time.Time) (int, error) {
	prefix, err := ruleFiringPrefix(ruleID)
	if err != nil {
		return 0, fmt.Errorf("rule firings: %w", err)
	}
	c := tx.b(bucketRuleFirings).Cursor()
	n := 0
	for k, v := c.Seek(append(copyBytes(prefix), timeKey(since)...)); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if len(v) == 8 {
			n += int(binary.BigEndian.Uint64(v))
		}
	}
	return n, nil
}

// RecordRuleFiring records one firing of a rule at the given time.
func (tx *Tx) RecordRuleFiring(ruleID string, at time.Time) error {
	if err := tx.writable("record rule firing"); err != nil {
		return err
	}
	prefix, err := ruleFiringPrefix(ruleID)
	if err != nil {
		return fmt.Errorf("record rule firing: %w", err)
	}
	if len(prefix) > maxIndexedKey {
		return fmt.Errorf("record rule firing: rule id too long: %w", ErrInvalid)
	}
	b := tx.b(bucketRuleFirings)
	k := append(prefix, timeKey(at)...)
	n := uint64(0)
	if v := b.Get(k); len(v) == 8 {
		n = binary.BigEndian.Uint64(v)
	}
	v := make([]byte, 8)
	binary.BigEndian.PutUint64(v, n+1)
	if err := b.Put(k, v); err != nil {
		return fmt.Errorf("record rule firing %s: %w", ruleID, err)
	}
	return nil
}

// PruneRuleFirings deletes rule firings recorded before the given time and
// returns how many records (one per rule and instant) it removed. A rule's
// firings sort by time under its prefix, so the walk reads only the old
// ones and jumps from rule to rule, not through the firings it keeps.
func (db *DB) PruneRuleFirings(before time.Time) (int, error) {
	limit := nanos(before)
	n := 0
	err := db.Update(func(tx *Tx) error {
		b := tx.b(bucketRuleFirings)
		var dead [][]byte
		c := b.Cursor()
		for k, _ := c.First(); k != nil; {
			if len(k) < 9 {
				k, _ = c.Next()
				continue
			}
			if binary.BigEndian.Uint64(k[len(k)-8:]) < limit {
				dead = append(dead, copyBytes(k))
				k, _ = c.Next()
				continue
			}
			// The rest of this rule's firings are newer: on to the next rule.
			end := prefixEnd(k[:len(k)-8])
			if end == nil {
				break
			}
			k, _ = c.Seek(end)
		}
		for _, k := range dead {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(dead)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("prune rule firings: %w", err)
	}
	return n, nil
}

// scanNewestFirst visits a bucket's entries from the newest key down,
// starting below the paging cursor (exclusive) when one is given, until
// visit says stop or fails.
func scanNewestFirst(c *bolt.Cursor, cursor string, visit func(k, v []byte) (bool, error)) error {
	var upper []byte
	if cursor != "" {
		upper = []byte(cursor)
	}
	for k, v := lastBefore(c, nil, upper); k != nil; k, v = c.Prev() {
		more, err := visit(k, v)
		if err != nil || !more {
			return err
		}
	}
	return nil
}
