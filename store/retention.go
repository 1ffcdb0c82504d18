package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/tidwall/gjson"
)

// Retention: the age prunes. Inbox items, events and deliveries are keyed
// by ULIDs, whose text order is their creation order, so everything created
// before a cutoff is a range at the start of a bucket (or, for deliveries,
// at the start of each final state's part of the state index). A prune
// walks that range in transactions of at most pruneBatch records and lets
// go of bbolt's writer between them, so the pipeline, the dispatcher and
// the journal applier get their turns while a large backlog of history is
// deleted. Records that are not final (pending inbox items, pending and
// in-flight deliveries) are never deleted, however old. Entity snapshots
// are state, not history, and are never pruned; dedupe keys, fingerprints
// and rule firings have their own expiry (PruneDedupe, PruneFingerprints,
// PruneRuleFirings).

// pruneBatch is the most records one prune transaction looks at (and so
// deletes): it bounds how long a prune holds bbolt's writer.
const pruneBatch = 2000

// errNothingPruned rolls back a prune transaction that deleted nothing
// (it found only records to keep): a rollback costs no fsync.
var errNothingPruned = errors.New("nothing pruned")

// PruneResult counts what an age prune (PruneInbox, PruneEvents,
// PruneDeliveries) did.
type PruneResult struct {
	// Deleted is how many records were removed, each with every index
	// entry that pointed at it.
	Deleted int `json:"deleted"`
	// Kept is how many records older than the cutoff were left in place
	// because they are not final (a pending inbox item, a queued delivery)
	// or could not be read.
	Kept int `json:"kept"`
	// Txns is how many write transactions the prune used (at most
	// pruneBatch records each).
	Txns int `json:"txns"`
}

func (r *PruneResult) add(o PruneResult) {
	r.Deleted += o.Deleted
	r.Kept += o.Kept
	r.Txns += o.Txns
}

// PruneInbox deletes the inbox items received before the cutoff (by their
// id's time, to the millisecond) whose state is final: processed, unmapped
// or failed. Pending items are kept however old, and so are items still on
// their way from the intake journal. Dedupe keys are not touched: they
// expire on their own (PruneDedupe); a duplicate of a pruned item is still
// answered with the original id. It first moves the intake journal into
// bbolt, then deletes in transactions of at most 2,000 items, and stops
// early (returning what it did so far with ctx's error) when ctx ends.
func (db *DB) PruneInbox(ctx context.Context, before time.Time) (PruneResult, error) {
	const op = "prune inbox"
	if err := db.flushJournal(); err != nil {
		return PruneResult{}, fmt.Errorf("%s: %w", op, err)
	}
	return db.pruneRange(ctx, op, bucketInbox, nil, ulidFloor(before), func(tx *Tx, keys [][]byte) (PruneResult, error) {
		inbox, pending := tx.b(bucketInbox), tx.b(bucketInboxPending)
		var res PruneResult
		final := keys[:0:0]
		for _, id := range keys {
			if pending.Get(id) != nil {
				res.Kept++
				continue
			}
			final = append(final, id)
		}
		final, held := tx.forgetApplied(final)
		res.Kept += held
		for _, id := range final {
			if err := inbox.Delete(id); err != nil {
				return res, fmt.Errorf("delete inbox item %s: %w", id, err)
			}
			tx.db.cache.drop(string(id))
			res.Deleted++
		}
		return res, nil
	})
}

// forgetApplied takes out of ids those whose journal record is not applied
// yet (FinishInbox wrote the item out of turn: the applier must still find
// it in bbolt, or it would write it back as pending) and returns the rest
// and how many it took out. The rest are about to be deleted: they leave
// the committer's map of records it has not yet seen applied, from which
// Inbox and FinishInbox would otherwise still serve them. Should the
// transaction roll back, the items are still in bbolt. The map's lock is
// held only for the lookups, not for the deletes.
func (tx *Tx) forgetApplied(ids [][]byte) (rest [][]byte, held int) {
	applied := appliedSeq(tx.tx)
	tx.db.umu.Lock()
	defer tx.db.umu.Unlock()
	rest = ids[:0]
	for _, id := range ids {
		if r := tx.db.unapplied[string(id)]; r != nil {
			if r.seq > applied {
				held++
				continue
			}
			delete(tx.db.unapplied, string(id))
		}
		rest = append(rest, id)
	}
	return rest, held
}

// PruneEvents deletes the events created before the cutoff (by their id's
// time, to the millisecond) together with their traces (kept in the same
// record) and their entries in the per-entity index, in transactions of at
// most 2,000 events. Entity snapshots stay. It stops early (returning what
// it did so far with ctx's error) when ctx ends.
func (db *DB) PruneEvents(ctx context.Context, before time.Time) (PruneResult, error) {
	return db.pruneRange(ctx, "prune events", bucketEvents, nil, ulidFloor(before), func(tx *Tx, keys [][]byte) (PruneResult, error) {
		events, byEntity := tx.b(bucketEvents), tx.b(bucketEntities)
		var res PruneResult
		for _, id := range keys {
			v := events.Get(id)
			if v == nil {
				continue
			}
			k, ok := eventIndexKey(v, id)
			if !ok {
				// Unreadable: its index entry cannot be found, so the
				// record is left alone rather than half deleted.
				res.Kept++
				continue
			}
			if k != nil {
				if err := byEntity.Delete(k); err != nil {
					return res, fmt.Errorf("unindex event %s: %w", id, err)
				}
			}
			if err := events.Delete(id); err != nil {
				return res, fmt.Errorf("delete event %s: %w", id, err)
			}
			res.Deleted++
		}
		return res, nil
	})
}

// finalDeliveryStates are the states a delivery leaves only by an explicit
// retry; only deliveries in them are pruned.
var finalDeliveryStates = [...]string{DeliverySucceeded, DeliveryFailed, DeliveryCancelled}

// PruneDeliveries deletes the deliveries created before the cutoff (by
// their id's time, to the millisecond) that are final: succeeded, failed
// (dead letters) or cancelled. Pending and in-flight deliveries are kept
// however old. A final delivery is in no queue, head or due index; it
// leaves the outbox, the state index, the reference index, the per-state
// counter and the delivery cache. It walks each final state's part of the
// state index, in transactions of at most 2,000 deliveries, and stops early
// (returning what it did so far with ctx's error) when ctx ends.
func (db *DB) PruneDeliveries(ctx context.Context, before time.Time) (PruneResult, error) {
	floor := ulidFloor(before)
	var total PruneResult
	for _, state := range finalDeliveryStates {
		res, err := db.pruneRange(ctx, "prune "+state+" deliveries", bucketOutboxState, []byte(state+"\x00"), floor, func(tx *Tx, keys [][]byte) (PruneResult, error) {
			return tx.pruneDeliveries(state, keys)
		})
		total.add(res)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// pruneDeliveries deletes the deliveries behind state-index keys (state
// \x00 id) of one final state.
func (tx *Tx) pruneDeliveries(state string, keys [][]byte) (PruneResult, error) {
	outbox, stateIdx := tx.b(bucketOutbox), tx.b(bucketOutboxState)
	refIdx, queue := tx.b(bucketOutboxRef), tx.b(bucketOutboxQueue)
	var res PruneResult
	gone := int64(0)
	for _, k := range keys {
		id := k[len(state)+1:]
		v := outbox.Get(id)
		if v != nil {
			connector, reference, queueName, ok := deliveryQueueParts(v)
			if !ok {
				res.Kept++
				continue
			}
			rk := join(connector, reference, string(id))
			qk := (&Delivery{Connector: connector, Reference: reference, ID: string(id), Queue: queueName}).queueKey()
			// A delivery still in its queue is pending or in flight,
			// whatever the state index says: never delete it.
			if reference != "" && queue.Get(qk) != nil {
				res.Kept++
				continue
			}
			if err := refIdx.Delete(rk); err != nil {
				return res, fmt.Errorf("unindex delivery %s reference: %w", id, err)
			}
			if err := outbox.Delete(id); err != nil {
				return res, fmt.Errorf("delete delivery %s: %w", id, err)
			}
			tx.db.dcache.drop(string(id))
		}
		// The state entry and its count go together (setState), also for
		// an entry whose record is missing (counted as deleted too).
		if err := stateIdx.Delete(k); err != nil {
			return res, fmt.Errorf("unindex delivery %s state: %w", id, err)
		}
		gone++
		res.Deleted++
	}
	if err := tx.addCount(tx.b(bucketMeta), countKey(state), -gone); err != nil {
		return res, err
	}
	return res, nil
}

// pruneRange walks the keys of bucket that start with prefix and whose
// rest is a ULID sorting before floor (so created before floor's
// millisecond), in id order, and hands them to apply in transactions of at
// most pruneBatch keys. Between transactions it yields, so that other
// writers waiting for bbolt get it, and checks ctx. Keys whose rest is not
// a ULID have no known age and are left alone.
func (db *DB) pruneRange(ctx context.Context, op, bucket string, prefix, floor []byte,
	apply func(tx *Tx, keys [][]byte) (PruneResult, error)) (PruneResult, error) {
	upper := append(copyBytes(prefix), floor...)
	if prefix == nil {
		upper = floor
	}
	var total PruneResult
	// Most runs find nothing old: a read transaction says so without the
	// commit (and fsyncs) of an empty write transaction.
	some := false
	if err := db.View(func(tx *Tx) error {
		k, _ := tx.b(bucket).Cursor().Seek(prefix)
		some = k != nil && bytes.HasPrefix(k, prefix) && bytes.Compare(k, upper) < 0
		return nil
	}); err != nil {
		return total, fmt.Errorf("%s: %w", op, err)
	}
	if !some {
		return total, nil
	}
	var resume []byte // the last key handed to apply; the walk goes on after it
	for {
		if err := ctx.Err(); err != nil {
			return total, fmt.Errorf("%s: %w", op, err)
		}
		done := false
		var res PruneResult
		err := db.Update(func(tx *Tx) error {
			keys := make([][]byte, 0, min(pruneBatch, 256))
			c := tx.b(bucket).Cursor()
			var k []byte
			if resume == nil {
				k, _ = c.Seek(prefix)
			} else if k, _ = c.Seek(resume); k != nil && bytes.Equal(k, resume) {
				k, _ = c.Next()
			}
			visited := 0
			for ; ; k, _ = c.Next() {
				if k == nil || !bytes.HasPrefix(k, prefix) || bytes.Compare(k, upper) >= 0 {
					done = true
					break
				}
				if len(keys) == pruneBatch || visited == 4*pruneBatch {
					break
				}
				visited++
				resume = copyBytes(k)
				if !isULID(k[len(prefix):]) {
					continue
				}
				keys = append(keys, resume)
			}
			if len(keys) == 0 {
				return nil
			}
			var err error
			if res, err = apply(tx, keys); err == nil && res.Deleted == 0 {
				return errNothingPruned // roll back: nothing to commit
			}
			return err
		})
		if err == errNothingPruned {
			err = nil
		}
		if err != nil {
			return total, fmt.Errorf("%s: %w", op, err)
		}
		total.add(res)
		total.Txns++
		if done {
			return total, nil
		}
		// Let the pipeline and the dispatcher, which may be waiting for
		// bbolt's writer, go first.
		runtime.Gosched()
	}
}

// isULID reports whether id is a ULID in its canonical text form.
func isULID(id []byte) bool {
	if len(id) != idLen {
		return false
	}
	_, err := ulid.ParseStrict(string(id))
	return err == nil
}

// eventIndexKey returns the events_by_entity key of the stored event v
// with the given id (nil when v holds no event), and false when v cannot
// be read.
func eventIndexKey(v, id []byte) ([]byte, bool) {
	v, err := unpack(v)
	if err != nil {
		return nil, false
	}
	ev := gjson.GetBytes(v, "event")
	if !gjson.ValidBytes(v) {
		return nil, false
	}
	if !ev.IsObject() {
		return nil, ev.Type == gjson.Null // absent or null: no event
	}
	p, ok := stringMembers(ev, "connector", "entity", "reference")
	if !ok {
		return nil, false
	}
	return append(eventIndexPrefix(join(p[0], p[1], p[2])), id...), true
}

// deliveryQueueParts returns the connector, reference and queue of the stored
// delivery v, and false when v cannot be read.
func deliveryQueueParts(v []byte) (connector, reference, queue string, ok bool) {
	if !gjson.ValidBytes(v) {
		return "", "", "", false
	}
	p, ok := stringMembers(gjson.ParseBytes(v), "connector", "reference", "queue")
	if !ok {
		return "", "", "", false
	}
	return p[0], p[1], p[2], true
}

// stringMembers reads string members of the JSON object obj, as
// encoding/json would into string fields: an absent or null member is "",
// any other non-string refuses the record. gjson stops at the members it
// needs, instead of decoding the payload and the trace around them.
func stringMembers(obj gjson.Result, names ...string) ([]string, bool) {
	if !obj.IsObject() {
		return nil, false
	}
	out := make([]string, len(names))
	for i, n := range names {
		switch r := obj.Get(n); r.Type {
		case gjson.String:
			out[i] = r.Str
		case gjson.Null:
		default:
			return nil, false
		}
	}
	return out, true
}
