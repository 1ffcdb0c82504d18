package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Buckets of older stores. Before schema 3 these records lived in their
// own buckets and now live behind the entities' snapshots (see the marks
// in keys.go):
//
//	timers            connector \x00 entity \x00 reference \x00 rule id -> Timer JSON,
//	                  with due index entries at exactly their due times
//	events_by_entity  connector \x00 entity \x00 reference \x00 event id -> 0x01
//
// Before schema 4 the due index ordered entries of the same time by name:
//
//	timers_due        time (8) + connector \x00 entity \x00 reference \x00 rule id -> 0x01
const (
	bucketTimersV2         = "timers"
	bucketEventsByEntityV2 = "events_by_entity"
	bucketTimersDueV3      = "timers_due"
)

// migrateBatch is how many records one migration transaction moves.
const migrateBatch = 10000

// migrate moves the records of a store written by an older build into
// place: before schema 3, timers (their due index entries keep their names
// and times) and the per-entity event index into the entities bucket;
// before schema 4, the due index entries into timers_by_due with sequence
// 0, which is what the records they name say (a schema 3 record has no
// sequence). Entry times are at least 1 ns (entryAt), as the records read
// them. init has already marked the store
// with this build's schema, so an older build refuses a store whose move a
// crash interrupted, and the next Open goes on with it.
func (db *DB) migrate() error {
	if err := db.moveBucket(bucketTimersV2, func(tx *Tx, k, v []byte) error {
		var t Timer
		if err := json.Unmarshal(v, &t); err != nil {
			return fmt.Errorf("decode timer %q: %w", k, err)
		}
		return tx.putTimerRecord(recordKey(k), &timerRecord{Timer: t, Entry: dueEntry{at: entryAt(nanos(t.Due))}})
	}); err != nil {
		return err
	}
	if err := db.moveBucket(bucketEventsByEntityV2, func(tx *Tx, k, v []byte) error {
		if err := tx.b(bucketEntities).Put(markLast(k, eventMark), present()); err != nil {
			return fmt.Errorf("move event index entry %q: %w", k, err)
		}
		return nil
	}); err != nil {
		return err
	}
	return db.moveBucket(bucketTimersDueV3, func(tx *Tx, k, v []byte) error {
		if len(k) <= 8 {
			return fmt.Errorf("timer due index key %q is too short", k)
		}
		e := dueEntry{at: entryAt(binary.BigEndian.Uint64(k))}
		if err := tx.b(bucketTimersDue).Put(e.key(k[8:]), present()); err != nil {
			return fmt.Errorf("move timer due index entry %q: %w", k, err)
		}
		return nil
	})
}

// moveBucket hands every record of the bucket name to move and deletes
// it, in transactions of migrateBatch records, then drops the bucket. A
// store without the bucket is left alone.
func (db *DB) moveBucket(name string, move func(tx *Tx, k, v []byte) error) error {
	for {
		done := false
		err := db.bolt.Update(func(btx *bolt.Tx) error {
			old := btx.Bucket([]byte(name))
			if old == nil {
				done = true
				return nil
			}
			tx := &Tx{db: db, tx: btx}
			c := old.Cursor()
			n := 0
			for k, v := c.First(); k != nil && n < migrateBatch; k, v = c.First() {
				if err := move(tx, k, v); err != nil {
					return err
				}
				if err := c.Delete(); err != nil {
					return fmt.Errorf("delete moved record %q: %w", k, err)
				}
				n++
			}
			if n < migrateBatch {
				if err := btx.DeleteBucket([]byte(name)); err != nil {
					return fmt.Errorf("drop the emptied bucket: %w", err)
				}
				done = true
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("move %s to schema %d: %w", name, schemaVersion, err)
		}
		if done {
			return nil
		}
	}
}
