package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"runtime"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Inbox item states.
const (
	InboxPending   = "pending"
	InboxProcessed = "processed"
	InboxUnmapped  = "unmapped"
	InboxFailed    = "failed"
)

// InboxItem is one accepted webhook, stored before it is answered.
type InboxItem struct {
	// ID is a ULID; Accept assigns it when empty.
	ID         string              `json:"id"`
	Connector  string              `json:"connector"`
	ReceivedAt time.Time           `json:"received_at"`
	Method     string              `json:"method"`
	Path       string              `json:"path"`
	Headers    map[string][]string `json:"headers"`
	Query      map[string][]string `json:"query,omitempty"`
	// ContentType is the request's Content-Type.
	ContentType string `json:"content_type"`
	// Body is the payload as JSON (form posts already converted).
	Body []byte `json:"body"`
	// RawBody holds the original bytes when they differ from Body.
	RawBody   []byte `json:"raw_body,omitempty"`
	DedupeKey string `json:"dedupe_key"`
	// State is one of InboxPending, InboxProcessed, InboxUnmapped, InboxFailed.
	State       string    `json:"state"`
	Reason      string    `json:"reason,omitempty"`
	EventIDs    []string  `json:"event_ids,omitempty"`
	ProcessedAt time.Time `json:"processed_at,omitzero"`
}

// AcceptResult is the answer to Accept.
type AcceptResult struct {
	// ID is the inbox id: the new item's, or the original's for a duplicate.
	ID string `json:"id"`
	// Duplicate is true when nothing was written because the dedupe key was
	// seen within the window.
	Duplicate bool `json:"duplicate"`
}

// idPlaceholder stands in for an id the committer assigns. It is the first
// field of the marshaled item, so it sits at a fixed offset.
const (
	idPlaceholder = "00000000000000000000000000"
	idOffset      = len(`{"id":"`)
)

// acceptReq is one Accept call queued for the committer. Everything that
// can be computed outside the commit (JSON, keys) is prepared by the caller.
type acceptReq struct {
	data     []byte // marshaled item; holds idPlaceholder when assignID
	id       []byte // caller-given id when !assignID
	assignID bool
	dkey     []byte // connector \x00 dedupe key; nil when no dedupe
	window   time.Duration
	reply    chan acceptReply
}

type acceptReply struct {
	res AcceptResult
	err error
}

// Accept durably stores item (state pending) and its dedupe key in ONE
// fsync'd transaction before it returns. When the (connector, DedupeKey)
// pair was stored less than window ago nothing is written and the original
// inbox id is returned with Duplicate=true; an expired key is replaced. An
// empty DedupeKey or a window <= 0 disables deduplication for the call.
//
// Concurrent calls share transactions (group commit): one committer
// goroutine takes the first queued request, drains whatever else is queued
// (up to MaxBatch) without any timer, runs one bbolt update for all of them
// and answers each. Duplicates within one batch are detected. Accept sets
// item.State to pending, item.ReceivedAt to now when zero, and item.ID once
// stored (not for a duplicate). It returns ErrClosed after Close; when ctx
// ends first it returns ctx.Err(), and the write may still commit.
func (db *DB) Accept(ctx context.Context, item *InboxItem, window time.Duration) (AcceptResult, error) {
	if item == nil {
		return AcceptResult{}, fmt.Errorf("accept: nil item: %w", ErrInvalid)
	}
	if err := ctx.Err(); err != nil {
		return AcceptResult{}, err
	}
	req, err := db.prepareAccept(item, window)
	if err != nil {
		return AcceptResult{}, err
	}

	db.mu.RLock()
	if db.closed {
		db.mu.RUnlock()
		return AcceptResult{}, fmt.Errorf("accept: %w", ErrClosed)
	}
	select {
	case db.reqs <- req:
	case <-ctx.Done():
		db.mu.RUnlock()
		return AcceptResult{}, ctx.Err()
	}
	db.mu.RUnlock()

	select {
	case rep := <-req.reply:
		if rep.err != nil {
			return AcceptResult{}, rep.err
		}
		if !rep.res.Duplicate {
			item.ID = rep.res.ID
		}
		return rep.res, nil
	case <-ctx.Done():
		return AcceptResult{}, ctx.Err()
	}
}

// prepareAccept does the per-request work outside the committer.
func (db *DB) prepareAccept(item *InboxItem, window time.Duration) (*acceptReq, error) {
	if err := checkPart("connector", item.Connector); err != nil {
		return nil, fmt.Errorf("accept: %w", err)
	}
	item.State = InboxPending
	if item.ReceivedAt.IsZero() {
		item.ReceivedAt = db.now()
	}
	given := item.ID
	if len(given) > maxIDLen {
		return nil, fmt.Errorf("accept: inbox id longer than %d bytes: %w", maxIDLen, ErrInvalid)
	}
	req := &acceptReq{window: window, reply: make(chan acceptReply, 1)}
	if given == "" {
		req.assignID = true
		item.ID = idPlaceholder
	} else {
		req.id = []byte(given)
	}
	data, err := json.Marshal(item)
	item.ID = given
	if err != nil {
		return nil, fmt.Errorf("accept: encode inbox item: %w", err)
	}
	if req.assignID && !bytes.HasPrefix(data[idOffset:], []byte(idPlaceholder)) {
		return nil, fmt.Errorf("accept: inbox item encoding does not start with its id")
	}
	req.data = data
	if item.DedupeKey != "" && window > 0 {
		req.dkey = join(item.Connector, item.DedupeKey)
		if len(req.dkey) > maxIndexedKey {
			return nil, fmt.Errorf("accept: connector and dedupe key longer than %d bytes: %w", maxIndexedKey, ErrInvalid)
		}
	}
	return req, nil
}

// commitLoop is the group committer: it runs until reqs is closed and
// drained. It takes the first request, then drains what is queued. Before
// it settles for a batch it yields the processor once (runtime.Gosched, not
// a timer): callers that were just answered or are runnable get to queue
// their next request, so under load batches fill up instead of the
// committer racing its own callers for the CPU. When nothing else is
// runnable the yield returns at once and a lone request is committed
// without delay.
func (db *DB) commitLoop() {
	defer close(db.done)
	batch := make([]*acceptReq, 0, db.maxBatch)
	for req := range db.reqs {
		batch = append(batch[:0], req)
		yielded := false
		for len(batch) < db.maxBatch {
			before := len(batch)
			batch = db.drain(batch)
			if len(batch) > before {
				yielded = false
				continue
			}
			if yielded {
				break
			}
			runtime.Gosched()
			yielded = true
		}
		db.commitBatch(batch)
		clear(batch)
	}
}

// drain appends queued requests to batch without blocking, up to maxBatch.
func (db *DB) drain(batch []*acceptReq) []*acceptReq {
	for len(batch) < db.maxBatch {
		select {
		case r, ok := <-db.reqs:
			if !ok {
				return batch
			}
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// commitBatch writes one batch in one transaction and answers every request.
func (db *DB) commitBatch(batch []*acceptReq) {
	replies := make([]acceptReply, len(batch))
	err := db.bolt.Update(func(btx *bolt.Tx) error {
		now := db.now()
		inbox := btx.Bucket([]byte(bucketInbox))
		pending := btx.Bucket([]byte(bucketInboxPending))
		dedupe := btx.Bucket([]byte(bucketDedupe))
		dedupeExp := btx.Bucket([]byte(bucketDedupeExp))
		stored := int64(0)
		for i, r := range batch {
			res, reqErr, err := acceptOne(r, now, &db.ids, inbox, pending, dedupe, dedupeExp)
			if err != nil {
				return err
			}
			replies[i] = acceptReply{res: res, err: reqErr}
			if reqErr == nil && !res.Duplicate {
				stored++
			}
		}
		return addCount(btx.Bucket([]byte(bucketMeta)), countInboxPending, stored)
	})
	db.commits.Add(1)
	db.committed.Add(int64(len(batch)))
	for i, r := range batch {
		rep := replies[i]
		if err != nil {
			rep = acceptReply{err: wrapTxErr("accept", err)}
		}
		r.reply <- rep
	}
}

// acceptOne handles one request inside the batch transaction. reqErr
// concerns only this request (nothing of it was written); err is a storage
// error that aborts the whole batch.
func acceptOne(r *acceptReq, now time.Time, ids *idGen, inbox, pending, dedupe, dedupeExp *bolt.Bucket) (res AcceptResult, reqErr, err error) {
	if !r.assignID && inbox.Get(r.id) != nil {
		return AcceptResult{}, fmt.Errorf("accept: inbox id %s already exists: %w", r.id, ErrInvalid), nil
	}
	if r.dkey != nil {
		if v := dedupe.Get(r.dkey); len(v) >= 16 {
			storedAt := fromNanos(binary.BigEndian.Uint64(v[:8]))
			if now.Sub(storedAt) < r.window {
				return AcceptResult{ID: string(v[16:]), Duplicate: true}, nil, nil
			}
			// Expired: replaced below; drop its expiry index entry.
			if err := dedupeExp.Delete(append(copyBytes(v[8:16]), r.dkey...)); err != nil {
				return AcceptResult{}, nil, fmt.Errorf("accept: %w", err)
			}
		}
	}
	id := r.id
	if r.assignID {
		id = r.data[idOffset : idOffset+idLen]
		copy(id, ids.next(now))
	}
	if err := inbox.Put(id, r.data); err != nil {
		return AcceptResult{}, nil, fmt.Errorf("accept: put inbox item: %w", err)
	}
	if err := pending.Put(id, present()); err != nil {
		return AcceptResult{}, nil, fmt.Errorf("accept: index pending item: %w", err)
	}
	if r.dkey != nil {
		exp := now.Add(r.window)
		v := make([]byte, 16, 16+len(id))
		binary.BigEndian.PutUint64(v[:8], nanos(now))
		binary.BigEndian.PutUint64(v[8:16], nanos(exp))
		v = append(v, id...)
		if err := dedupe.Put(r.dkey, v); err != nil {
			return AcceptResult{}, nil, fmt.Errorf("accept: put dedupe key: %w", err)
		}
		if err := dedupeExp.Put(timeKey(exp, r.dkey), present()); err != nil {
			return AcceptResult{}, nil, fmt.Errorf("accept: index dedupe expiry: %w", err)
		}
	}
	return AcceptResult{ID: string(id)}, nil, nil
}

// Inbox returns one inbox item, or ErrNotFound.
func (db *DB) Inbox(id string) (*InboxItem, error) {
	var item *InboxItem
	err := db.View(func(tx *Tx) error {
		var err error
		item, err = tx.Inbox(id)
		return err
	})
	return item, err
}

// Inbox returns one inbox item, or ErrNotFound.
func (tx *Tx) Inbox(id string) (*InboxItem, error) {
	v := tx.b(bucketInbox).Get([]byte(id))
	if v == nil {
		return nil, fmt.Errorf("inbox item %s: %w", id, ErrNotFound)
	}
	item := new(InboxItem)
	if err := json.Unmarshal(v, item); err != nil {
		return nil, fmt.Errorf("decode inbox item %s: %w", id, err)
	}
	return item, nil
}

// PendingInbox returns up to limit pending items in id (arrival) order,
// starting after the id `after` ("" = from the start). limit <= 0 means
// 100; at most 1000 are returned.
func (db *DB) PendingInbox(after string, limit int) ([]*InboxItem, error) {
	limit = clampLimit(limit)
	var out []*InboxItem
	err := db.View(func(tx *Tx) error {
		c := tx.b(bucketInboxPending).Cursor()
		var k []byte
		if after == "" {
			k, _ = c.First()
		} else {
			k, _ = c.Seek([]byte(after))
			if k != nil && string(k) == after {
				k, _ = c.Next()
			}
		}
		for ; k != nil && len(out) < limit; k, _ = c.Next() {
			item, err := tx.Inbox(string(k))
			if err != nil {
				return fmt.Errorf("pending inbox: %w", err)
			}
			out = append(out, item)
		}
		return nil
	})
	return out, err
}

// FinishInbox sets an item's final state (processed, unmapped or failed),
// reason and event ids, with ProcessedAt = now, and takes it off the
// pending list. Finishing an already finished item overwrites the outcome.
func (tx *Tx) FinishInbox(id, state, reason string, eventIDs []string) error {
	if err := tx.writable("finish inbox"); err != nil {
		return err
	}
	switch state {
	case InboxProcessed, InboxUnmapped, InboxFailed:
	default:
		return fmt.Errorf("finish inbox %s: state %q is not final: %w", id, state, ErrInvalid)
	}
	item, err := tx.Inbox(id)
	if err != nil {
		return fmt.Errorf("finish inbox: %w", err)
	}
	wasPending := item.State == InboxPending
	item.State = state
	item.Reason = reason
	item.EventIDs = eventIDs
	item.ProcessedAt = tx.db.now()
	data, err := json.Marshal(item)
	if err != nil {
		return fmt.Errorf("finish inbox %s: encode: %w", id, err)
	}
	if err := tx.b(bucketInbox).Put([]byte(id), data); err != nil {
		return fmt.Errorf("finish inbox %s: %w", id, err)
	}
	if wasPending {
		if err := tx.b(bucketInboxPending).Delete([]byte(id)); err != nil {
			return fmt.Errorf("finish inbox %s: unindex pending: %w", id, err)
		}
		return addCount(tx.b(bucketMeta), countInboxPending, -1)
	}
	return nil
}

// PruneDedupe deletes dedupe keys whose window ended at or before now and
// returns how many. It range-scans the expiry index, in transactions of at
// most 10,000 deletions each.
func (db *DB) PruneDedupe(now time.Time) (int, error) {
	return db.pruneExpiring(bucketDedupeExp, bucketDedupe, now, "prune dedupe keys")
}

// pruneExpiring deletes entries of data whose expiry-index key (8-byte
// nanos + data key) is at or before now. Writers keep the index exact: a
// replaced entry's old index key is deleted when it is replaced.
func (db *DB) pruneExpiring(expBucket, dataBucket string, now time.Time, op string) (int, error) {
	const chunk = 10000
	limit := nanos(now)
	total := 0
	for {
		n := 0
		more := false
		err := db.Update(func(tx *Tx) error {
			exp, data := tx.b(expBucket), tx.b(dataBucket)
			var keys [][]byte
			c := exp.Cursor()
			for k, _ := c.First(); k != nil; k, _ = c.Next() {
				if len(k) < 8 || binary.BigEndian.Uint64(k[:8]) > limit {
					break
				}
				if len(keys) == chunk {
					more = true
					break
				}
				keys = append(keys, copyBytes(k))
			}
			for _, k := range keys {
				if err := exp.Delete(k); err != nil {
					return err
				}
				if err := data.Delete(k[8:]); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("%s: %w", op, err)
		}
		total += n
		if !more {
			return total, nil
		}
	}
}
