package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sort"
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
	item     *InboxItem // deep copy for the item cache; ID set once assigned
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
	data, err := inboxItem(&db.encoders, item)
	item.ID = given
	if err != nil {
		return nil, fmt.Errorf("accept: encode inbox item: %w", err)
	}
	if req.assignID && !bytes.HasPrefix(data[idOffset:], []byte(idPlaceholder)) {
		return nil, fmt.Errorf("accept: inbox item encoding does not start with its id")
	}
	req.data = data
	req.item = cloneItem(item)
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
		// Behind a long backlog, give the pipeline the processor: see
		// backlogPause.
		if pause := backlogPause(db.backlog.Load()); pause > 0 {
			time.Sleep(pause)
		}
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

// Backpressure: acks never wait for bbolt, so under overload intake could
// take the processor from the pipeline and the backlog would only grow.
// A burst is absorbed at full speed: up to backlogSoftLimit accepted items
// may wait for the pipeline (they are durable, in the journal or bbolt).
// Beyond it each group commit first pauses 10µs per item over the limit,
// at most maxBacklogPause: intake slows down until the pipeline keeps up,
// and never stops.
const (
	backlogSoftLimit = 50000
	maxBacklogPause  = 100 * time.Millisecond
)

// backlogPause is the pause before a group commit with n items waiting.
func backlogPause(n int64) time.Duration {
	if n <= backlogSoftLimit {
		return 0
	}
	return min(maxBacklogPause, time.Duration(n-backlogSoftLimit)*10*time.Microsecond)
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

// commitBatch decides every request of one batch (new item, duplicate or
// refused), writes the new items to the journal with one fdatasync, queues
// them for the applier and answers every request.
func (db *DB) commitBatch(batch []*acceptReq) {
	replies := make([]acceptReply, len(batch))
	now := db.now()
	recs := make([]*jrec, 0, len(batch))
	// replaced[i] is the record that held recs[i]'s dedupe key in db.keys
	// before it (nil: none), to put back if the journal write fails.
	replaced := make([]*jrec, 0, len(batch))
	err := db.bolt.View(func(btx *bolt.Tx) error {
		inbox := btx.Bucket([]byte(bucketInbox))
		dedupe := btx.Bucket([]byte(bucketDedupe))
		applied := appliedSeq(btx)
		db.umu.Lock()
		defer db.umu.Unlock()
		db.pruneLive(applied)
		for i, r := range batch {
			var prev *jrec
			if r.dkey != nil {
				prev = db.keys[string(r.dkey)]
			}
			res, rec, reqErr := db.decideAccept(r, now, inbox, dedupe)
			replies[i] = acceptReply{res: res, err: reqErr}
			if rec != nil {
				recs = append(recs, rec)
				replaced = append(replaced, prev)
			}
		}
		return nil
	})
	if err == nil && len(recs) > 0 {
		if err = db.journal.append(recs); err != nil {
			db.umu.Lock()
			db.unaccept(recs, replaced)
			db.umu.Unlock()
		} else {
			db.jmu.Lock()
			for _, r := range recs {
				if n := len(db.queue); n > 0 && string(r.id) <= string(db.queue[n-1].id) {
					db.queueUnsorted = true // an id given by the caller
				}
				db.queue = append(db.queue, r)
			}
			db.queuedSeq = recs[len(recs)-1].seq
			db.jmu.Unlock()
			db.backlog.Add(int64(len(recs)))
			db.wakeApplier()
			for i, r := range batch {
				if rep := replies[i]; rep.err == nil && !rep.res.Duplicate {
					r.item.ID = rep.res.ID
					db.cache.put(rep.res.ID, r.item)
				}
			}
		}
	}
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

// decideAccept handles one request of a batch; db.umu is held and live
// holds every record not in the committer's snapshot. It returns the
// journal record of a new item, or the duplicate's result, or the
// request's own error. Keys and ids of records not yet applied are found
// in memory, the others in the snapshot.
func (db *DB) decideAccept(r *acceptReq, now time.Time, inbox, dedupe *bolt.Bucket) (AcceptResult, *jrec, error) {
	if !r.assignID {
		if db.unapplied[string(r.id)] != nil || inbox.Get(r.id) != nil {
			return AcceptResult{}, nil, fmt.Errorf("accept: inbox id %s already exists: %w", r.id, ErrInvalid)
		}
	}
	if r.dkey != nil {
		if prev := db.keys[string(r.dkey)]; prev != nil {
			if now.Sub(time.Unix(0, prev.at)) < r.window {
				return AcceptResult{ID: string(prev.id), Duplicate: true}, nil, nil
			}
		} else if v := dedupe.Get(r.dkey); len(v) >= 16 {
			storedAt := fromNanos(binary.BigEndian.Uint64(v[:8]))
			if now.Sub(storedAt) < r.window {
				return AcceptResult{ID: string(v[16:]), Duplicate: true}, nil, nil
			}
		}
	}
	id := r.id
	if r.assignID {
		id = r.data[idOffset : idOffset+idLen]
		copy(id, db.ids.next(now))
	}
	db.jseq++
	rec := &jrec{seq: db.jseq, at: int64(nanos(now)), id: id, data: r.data}
	if r.dkey != nil {
		rec.dkey, rec.window = r.dkey, r.window
		db.keys[string(r.dkey)] = rec
	}
	db.unapplied[string(id)] = rec
	db.live = append(db.live, rec)
	return AcceptResult{ID: string(id)}, rec, nil
}

// pruneLive forgets the records that the committer's snapshot shows in
// bbolt (seq <= applied); db.umu is held. Only the committer prunes, and
// only from a snapshot: a reader that misses a record in an older
// snapshot still finds it here.
func (db *DB) pruneLive(applied uint64) {
	n := 0
	for n < len(db.live) && db.live[n].seq <= applied {
		n++
	}
	if n == 0 {
		return
	}
	db.forget(db.live[:n])
	clear(db.live[:n])
	db.live = db.live[n:]
	if len(db.live) == 0 {
		db.live = nil
	}
}

// appliedSeq reads the last applied journal seq from a transaction.
func appliedSeq(btx *bolt.Tx) uint64 {
	if v := btx.Bucket([]byte(bucketMeta)).Get([]byte(metaJournalApplied)); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// unaccept takes back the records of a batch whose journal write failed,
// the last ones added to live (db.umu held). A record's dedupe key goes
// back to the record it replaced in keys, if any: an older record not yet
// applied, whose window had passed for the failed request but may not
// have for the next one. Dropping the key instead would let a duplicate
// of that older record through until the applier writes it. Taken back
// newest first, a key replaced twice in the batch ends with its holder
// from before the batch.
func (db *DB) unaccept(recs, replaced []*jrec) {
	for i := len(recs) - 1; i >= 0; i-- {
		r := recs[i]
		if r.dkey != nil && db.keys[string(r.dkey)] == r {
			if prev := replaced[i]; prev != nil {
				db.keys[string(r.dkey)] = prev
			} else {
				delete(db.keys, string(r.dkey))
			}
		}
		delete(db.unapplied, string(r.id))
	}
	n := len(db.live) - len(recs)
	clear(db.live[n:])
	db.live = db.live[:n]
}

// forget drops records from the maps; db.umu is held.
func (db *DB) forget(recs []*jrec) {
	for _, r := range recs {
		if r.dkey != nil && db.keys[string(r.dkey)] == r {
			delete(db.keys, string(r.dkey))
		}
		delete(db.unapplied, string(r.id))
	}
}

// wakeApplier tells the applier that records are queued. It never blocks.
func (db *DB) wakeApplier() {
	select {
	case db.applyWake <- struct{}{}:
	default:
	}
}

// applyFailingFor is how long the applier may keep failing before
// IntakeHealth reports it: it retries every 100 ms, and a moment's error
// (a lock held, a disk briefly full) must not take the gateway out of
// rotation.
const applyFailingFor = 10 * time.Second

// IntakeHealth reports why the store cannot take webhooks now, or nil:
// the intake journal refuses every append (a failed append whose cut could
// not be made durable; only a restart, which replays the journal, brings
// it back), or the applier has failed for applyFailingFor (records pile up
// in memory until the backlog pause slows the intake to a crawl). The
// gateway's /readyz answers 503 with it, so that an orchestrator takes the
// instance out of rotation or restarts it.
func (db *DB) IntakeHealth() error {
	if err := db.journal.broken(); err != nil {
		return fmt.Errorf("intake journal: %w", err)
	}
	db.jmu.Lock()
	defer db.jmu.Unlock()
	if db.applyErr != nil && time.Since(db.applyErrSince) >= applyFailingFor {
		return fmt.Errorf("%w (failing for %s)", db.applyErr, time.Since(db.applyErrSince).Round(time.Second))
	}
	return nil
}

// maxApply is the most journal records one applier transaction writes
// (applyChunk): it bounds how long the applier keeps bbolt's writer from
// the pipeline and the dispatcher.
const maxApply = 1024

// The applier moves journal records into bbolt lazily: the pipeline takes
// pending items straight from the journal (PendingInbox) and its own
// transaction writes them, finished (FinishInbox), so in the steady state
// the applier only advances the applied position. It runs when a record
// has waited applyDelay, when applyBacklog records wait, when someone
// waits in flushJournal, and at Close.
//
// Both are well above how far the pipeline trails the intake at a rate it
// sustains (tens to hundreds of milliseconds near its limit): an applier
// that runs sooner writes items the pipeline writes again moments later,
// which takes bbolt's writer from the pipeline just when it is short of
// it. With 100 ms and 2,048, at 5,000 webhooks/s the end-to-end p50 was
// 65-109 ms; with these, 28-49 ms (docs/benchmarks.md, round 4). The
// records waiting are held in memory, at most about applyBacklog of them
// (some 16 MiB) before the applier runs.
const (
	applyDelay   = time.Second
	applyBacklog = 8192
)

// applyLoop moves journaled records into bbolt until Close, then applies
// what is left and returns.
func (db *DB) applyLoop() {
	defer func() {
		db.jmu.Lock()
		db.applyStopped = true
		db.applyCond.Broadcast()
		db.jmu.Unlock()
		close(db.applyDone)
	}()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	armed := false
	for {
		due := false
		select {
		case <-db.applyWake:
		case <-timer.C:
			armed, due = false, true
		case <-db.applyStop:
			timer.Stop()
			_ = db.applyQueued()
			return
		}
		db.jmu.Lock()
		n, urgent := len(db.queue), db.flushWaiters > 0 || len(db.queue) >= applyBacklog
		db.jmu.Unlock()
		switch {
		case n == 0:
			continue
		case !urgent && !due:
			if !armed {
				timer.Reset(db.applyWait)
				armed = true
			}
			continue
		}
		for db.applyQueued() != nil {
			// A storage error: the records stay queued (and in the
			// journal); try again shortly unless the store is closing.
			select {
			case <-db.applyStop:
				_ = db.applyQueued()
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
		if armed {
			timer.Stop()
			armed = false
		}
	}
}

// applyQueued applies the records queued when it is called, in
// transactions of at most maxApply records not yet in bbolt, and removes
// journal segments that are no longer needed. Records that arrive
// meanwhile wait for the next run: under a steady intake, chasing the
// tail kept the applier writing items moments before the pipeline wrote
// them again.
func (db *DB) applyQueued() error {
	db.jmu.Lock()
	end := db.queuedSeq
	db.jmu.Unlock()
	for {
		db.jmu.Lock()
		n := len(db.queue)
		for n > 0 && db.queue[n-1].seq > end {
			n--
		}
		recs := db.queue[:n:n]
		db.jmu.Unlock()
		if len(recs) == 0 {
			return nil
		}
		err := db.bolt.Update(func(btx *bolt.Tx) error {
			recs = recs[:applyChunk(btx.Bucket([]byte(bucketInbox)), recs)]
			if err := applyRecords(btx, recs, recs[len(recs)-1].seq); err != nil {
				return err
			}
			if db.applyFault != nil {
				return db.applyFault()
			}
			return nil
		})
		last := recs[len(recs)-1].seq
		if err == nil {
			// Segments fully applied go before anyone is told: a flush
			// returns with the journal already trimmed. A segment that
			// cannot be removed now is tried again next time (and a
			// restart replays it harmlessly: its records are in bbolt).
			db.journal.checkpoint(last)
		}
		db.jmu.Lock()
		if err != nil {
			if db.applyErr == nil {
				db.applyErrSince = time.Now()
			}
			db.applyErr = fmt.Errorf("apply intake journal: %w", err)
			db.applyCond.Broadcast()
			db.jmu.Unlock()
			return db.applyErr
		}
		// recs shares db.queue's array; the committer drops the records
		// from its maps once its snapshot shows them applied.
		clear(db.queue[:len(recs)])
		db.queue = db.queue[len(recs):]
		db.queueHead = max(db.queueHead-len(recs), 0)
		if len(db.queue) == 0 {
			db.queue, db.queueUnsorted = nil, false
		}
		db.appliedSeq = last
		db.applyErr, db.applyErrSince = nil, time.Time{}
		db.applyCond.Broadcast()
		db.jmu.Unlock()
	}
}

// applyChunk is how many of recs, from the front, one applier transaction
// takes: as many as hold maxApply records not yet in bbolt. Records the
// pipeline has already written (FinishInbox) cost at most a lookup, so in
// the steady state one transaction moves the applied position past all
// that wait, instead of one commit per maxApply of them.
func applyChunk(inbox *bolt.Bucket, recs []*jrec) int {
	missing := 0
	for i, r := range recs {
		if inBbolt(inbox, r) {
			continue
		}
		if missing++; missing == maxApply {
			return i + 1
		}
	}
	return len(recs)
}

// inBbolt reports whether the journal record r is already in the inbox
// bucket: finished by the pipeline (its flag is set once the transaction
// that wrote it committed, so no lookup is needed), or applied before.
func inBbolt(inbox *bolt.Bucket, r *jrec) bool {
	return r.finished.Load() || inbox.Get(r.id) != nil
}

// applyRecords writes journal records into bbolt: the item (pending), its
// pending index entry, its dedupe key and expiry (replacing an older
// one), the pending counter and, when last > 0, the last applied seq. A
// record whose id is already in the inbox was applied before (a replay, or
// FinishInbox took it out of turn) and is skipped.
func applyRecords(btx *bolt.Tx, recs []*jrec, last uint64) error {
	inbox := bucket(btx, bucketInbox)
	pending := bucket(btx, bucketInboxPending)
	dedupe := bucket(btx, bucketDedupe)
	dedupeExp := bucket(btx, bucketDedupeExp)
	meta := btx.Bucket([]byte(bucketMeta))
	stored := int64(0)
	for _, r := range recs {
		if inBbolt(inbox, r) {
			continue
		}
		if err := inbox.Put(r.id, r.data); err != nil {
			return fmt.Errorf("put inbox item: %w", err)
		}
		if err := pending.Put(r.id, present()); err != nil {
			return fmt.Errorf("index pending item: %w", err)
		}
		stored++
		if err := putDedupe(dedupe, dedupeExp, r); err != nil {
			return err
		}
	}
	if err := addCount(meta, countInboxPending, stored); err != nil {
		return err
	}
	if last == 0 {
		return nil
	}
	v := make([]byte, 8)
	binary.BigEndian.PutUint64(v, last)
	if err := meta.Put([]byte(metaJournalApplied), v); err != nil {
		return fmt.Errorf("record applied journal position: %w", err)
	}
	return nil
}

// putDedupe stores a journal record's dedupe key and its expiry entry,
// replacing an older key (and its expiry entry) unless that one is newer:
// FinishInbox writes records out of turn, so a later record with the same
// key may already be in bbolt. A record without a key writes nothing.
func putDedupe(dedupe, dedupeExp *bolt.Bucket, r *jrec) error {
	if r.dkey == nil {
		return nil
	}
	if old := dedupe.Get(r.dkey); len(old) >= 16 {
		if int64(binary.BigEndian.Uint64(old[:8])) > r.at {
			return nil
		}
		if err := dedupeExp.Delete(append(copyBytes(old[8:16]), r.dkey...)); err != nil {
			return fmt.Errorf("unindex replaced dedupe key: %w", err)
		}
	}
	at := fromNanos(uint64(r.at))
	exp := at.Add(r.window)
	v := make([]byte, 16, 16+len(r.id))
	binary.BigEndian.PutUint64(v[:8], nanos(at))
	binary.BigEndian.PutUint64(v[8:16], nanos(exp))
	v = append(v, r.id...)
	if err := dedupe.Put(r.dkey, v); err != nil {
		return fmt.Errorf("put dedupe key: %w", err)
	}
	if err := dedupeExp.Put(timeKey(exp, r.dkey), present()); err != nil {
		return fmt.Errorf("index dedupe expiry: %w", err)
	}
	return nil
}

// flushJournal waits until every record accepted so far is in bbolt.
func (db *DB) flushJournal() error {
	db.jmu.Lock()
	defer db.jmu.Unlock()
	target := db.queuedSeq
	if db.appliedSeq >= target {
		return nil
	}
	db.flushWaiters++
	defer func() { db.flushWaiters-- }()
	db.wakeApplier()
	for db.appliedSeq < target {
		if db.applyErr != nil {
			return db.applyErr
		}
		if db.applyStopped {
			return fmt.Errorf("flush intake journal: %w", ErrClosed)
		}
		db.applyCond.Wait()
	}
	return nil
}

// Inbox returns one inbox item, or ErrNotFound. An item accepted moments
// ago is found even before it has left the intake journal.
func (db *DB) Inbox(id string) (*InboxItem, error) {
	// bbolt, then the journal's records; a record the committer pruned
	// after this snapshot missed it is in bbolt by then: look once more.
	for try := 0; ; try++ {
		item, err := db.inboxView(id)
		if !errors.Is(err, ErrNotFound) || try == 1 {
			return item, err
		}
		db.umu.Lock()
		rec := db.unapplied[id]
		db.umu.Unlock()
		if rec != nil {
			return decodeItem(id, rec.data)
		}
	}
}

func (db *DB) inboxView(id string) (*InboxItem, error) {
	var item *InboxItem
	err := db.View(func(tx *Tx) error {
		v := tx.b(bucketInbox).Get([]byte(id))
		if v == nil {
			return fmt.Errorf("inbox item %s: %w", id, ErrNotFound)
		}
		var err error
		item, err = decodeItem(id, v)
		return err
	})
	return item, err
}

func decodeItem(id string, v []byte) (*InboxItem, error) {
	item := new(InboxItem)
	if err := json.Unmarshal(v, item); err != nil {
		return nil, fmt.Errorf("decode inbox item %s: %w", id, err)
	}
	return item, nil
}

// itemBytes returns the stored JSON of inbox item id: from bbolt, or from
// the intake journal's records not yet applied (rec is then that record);
// nil when there is no such item.
func (tx *Tx) itemBytes(id string) (v []byte, rec *jrec) {
	if v = tx.b(bucketInbox).Get([]byte(id)); v != nil {
		return v, nil
	}
	tx.db.umu.Lock()
	rec = tx.db.unapplied[id]
	tx.db.umu.Unlock()
	if rec == nil {
		return nil, nil
	}
	return rec.data, rec
}

// Inbox returns one inbox item, or ErrNotFound. In a read-write
// transaction an item accepted moments ago is found even before it has
// left the intake journal.
func (tx *Tx) Inbox(id string) (*InboxItem, error) {
	v, _ := tx.itemBytes(id)
	if v == nil {
		return nil, fmt.Errorf("inbox item %s: %w", id, ErrNotFound)
	}
	return decodeItem(id, v)
}

// PendingInbox returns up to limit pending items in id (arrival) order,
// starting after the id `after` ("" = from the start). limit <= 0 means
// 100; at most 1000 are returned. Items accepted moments ago come straight
// from the intake journal; FinishInbox writes them to bbolt with their
// outcome.
func (db *DB) PendingInbox(after string, limit int) ([]*InboxItem, error) {
	limit = clampLimit(limit)
	for {
		var (
			out        []*InboxItem
			consistent bool
		)
		err := db.View(func(tx *Tx) error {
			// Journal records this snapshot does not hold. When the applier
			// has moved on since the snapshot, read again: records it
			// applied are off the queue but not in this snapshot.
			var journaled []*jrec
			consistent, journaled = db.journaledSince(tx.tx, after, limit)
			if !consistent {
				return nil
			}
			// Merge them with the pending ids in bbolt (the two sets are
			// disjoint), walking the pending index only as far as the page
			// needs.
			c := tx.b(bucketInboxPending).Cursor()
			k, _ := seekAfter(c, after)
			for len(out) < limit && (k != nil || len(journaled) > 0) {
				var (
					item *InboxItem
					err  error
				)
				if len(journaled) == 0 || (k != nil && bytes.Compare(k, journaled[0].id) < 0) {
					item, err = db.pendingItem(tx, string(k), nil)
					k, _ = c.Next()
				} else {
					item, err = db.pendingItem(tx, string(journaled[0].id), journaled[0].data)
					journaled = journaled[1:]
				}
				if err != nil {
					return fmt.Errorf("pending inbox: %w", err)
				}
				out = append(out, item)
			}
			return nil
		})
		if err != nil || consistent {
			return out, err
		}
	}
}

// OldestPendingInbox returns when the oldest pending inbox item was
// received: the first item of the pending index, or the first pending
// record of the intake journal when that was received earlier; ok is false
// when no item is pending. It reads no more than those two items (journal
// records finished since the last call are passed over once), so the
// scheduler calls it at every batch to fire no timer due after a webhook
// that waits to be processed. Write transactions only: they see every
// record the applier has moved into bbolt.
func (tx *Tx) OldestPendingInbox() (receivedAt time.Time, ok bool, err error) {
	if err := tx.writable("oldest pending inbox"); err != nil {
		return time.Time{}, false, err
	}
	inbox := tx.b(bucketInbox)
	if k, _ := tx.b(bucketInboxPending).Cursor().First(); k != nil {
		v := inbox.Get(k)
		if v == nil {
			return time.Time{}, false, fmt.Errorf("oldest pending inbox: pending item %s is not in the inbox", k)
		}
		if receivedAt, err = itemReceivedAt(string(k), v); err != nil {
			return time.Time{}, false, fmt.Errorf("oldest pending inbox: %w", err)
		}
		ok = true
	}
	if r := tx.db.oldestJournaled(inbox); r != nil {
		at, err := itemReceivedAt(string(r.id), r.data)
		if err != nil {
			return time.Time{}, false, fmt.Errorf("oldest pending inbox: %w", err)
		}
		if !ok || at.Before(receivedAt) {
			receivedAt, ok = at, true
		}
	}
	return receivedAt, ok, nil
}

// oldestJournaled returns the first queued journal record (in seq order)
// that is not in bbolt as inbox sees it (nil: none). It moves queueHead past
// the records finished and committed; one that a transaction has written
// but not (yet) committed is skipped without moving past it, as that
// transaction may still roll back.
func (db *DB) oldestJournaled(inbox *bolt.Bucket) *jrec {
	db.jmu.Lock()
	defer db.jmu.Unlock()
	for i := db.queueHead; i < len(db.queue); i++ {
		r := db.queue[i]
		if !inBbolt(inbox, r) {
			return r
		}
		if i == db.queueHead && r.finished.Load() {
			db.queueHead++
		}
	}
	return nil
}

// itemReceivedAt reads received_at from an inbox item's JSON: from its
// first members, where the store's encoder writes it, else by decoding
// the whole item.
func itemReceivedAt(id string, v []byte) (time.Time, error) {
	var at time.Time
	found := false
	d := jsonDecoder{b: v}
	d.object(func(key []byte) bool {
		switch string(key) {
		case "received_at":
			found = d.time(&at)
			return false // stop here: the rest is not needed
		case "id", "connector":
			_, ok := d.str()
			return ok
		}
		return false
	})
	if found {
		return at, nil
	}
	item, err := decodeItem(id, v)
	if err != nil {
		return time.Time{}, err
	}
	return item.ReceivedAt, nil
}

// pendingItem returns a pending item from the item cache, or decodes it
// (from data when given, else from bbolt).
func (db *DB) pendingItem(tx *Tx, id string, data []byte) (*InboxItem, error) {
	if item := db.cache.take(id); item != nil {
		return item, nil
	}
	if data != nil {
		return decodeItem(id, data)
	}
	return tx.Inbox(id)
}

// journaledSince returns, in seq order, up to limit (< 0: all) queued
// journal records after the applied position btx sees, with ids after
// `after` ("": any), less those the pipeline has finished (written to
// bbolt) itself; and whether that position is still the applier's (else
// records may be missing: read again in a new transaction).
func (db *DB) journaledSince(btx *bolt.Tx, after string, limit int) (bool, []*jrec) {
	applied := appliedSeq(btx)
	// A record the pipeline finished is in the snapshot once its commit is:
	// the flag says so without a lookup, but it is set by a commit handler,
	// after readers may already see the commit.
	inbox := btx.Bucket([]byte(bucketInbox))
	db.jmu.Lock()
	if db.appliedSeq != applied {
		db.jmu.Unlock()
		return false, nil
	}
	q, compare := db.queue, after != ""
	if compare && !db.queueUnsorted {
		// Ids grow with the sequence: skip those up to after at once
		// (thousands of records wait in the queue under load).
		q = q[sort.Search(len(q), func(i int) bool { return string(q[i].id) > after }):]
		compare = false
	}
	candidate := func(r *jrec) bool { return r.seq > applied && (!compare || string(r.id) > after) }
	var out []*jrec
	if limit < 0 {
		// All of them (Stats, for /metrics and /readyz): the candidates are
		// copied under the lock and looked up in bbolt after it, so that
		// the committer and the applier do not wait for thousands of
		// lookups. (The applier clears applied records in the queue: the
		// pointers are copied, not read from it later.)
		for _, r := range q {
			if candidate(r) {
				out = append(out, r)
			}
		}
		db.jmu.Unlock()
		return true, slices.DeleteFunc(out, func(r *jrec) bool { return inBbolt(inbox, r) })
	}
	defer db.jmu.Unlock()
	for _, r := range q {
		if len(out) >= limit {
			break
		}
		if candidate(r) && !inBbolt(inbox, r) {
			out = append(out, r)
		}
	}
	return true, out
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
	tx.db.cache.drop(id)
	v, rec := tx.itemBytes(id)
	if v == nil {
		return fmt.Errorf("finish inbox: inbox item %s: %w", id, ErrNotFound)
	}
	if rec != nil {
		// Accepted moments ago and still in the journal: it goes into
		// bbolt here, finished, with its dedupe key (the applier skips it
		// later); it was never pending in bbolt, so it has no pending
		// entry or count to take back.
		if err := putDedupe(tx.b(bucketDedupe), tx.b(bucketDedupeExp), rec); err != nil {
			return fmt.Errorf("finish inbox %s: %w", id, err)
		}
	}
	out := outcome{State: state, Reason: reason, EventIDs: eventIDs, ProcessedAt: tx.db.now()}
	m := &tx.db.wmem
	data, wasPending, err := finishedItem(&m.enc, v, out)
	if err != nil {
		return fmt.Errorf("finish inbox %s: %w", id, err)
	}
	if err := tx.b(bucketInbox).Put(m.key(id), m.copy(data)); err != nil {
		return fmt.Errorf("finish inbox %s: %w", id, err)
	}
	switch {
	case rec != nil:
		tx.tx.OnCommit(func() {
			rec.finished.Store(true)
			if wasPending {
				tx.db.backlog.Add(-1)
			}
		})
		return nil
	case !wasPending:
		return nil
	}
	tx.tx.OnCommit(func() { tx.db.backlog.Add(-1) })
	if err := tx.b(bucketInboxPending).Delete([]byte(id)); err != nil {
		return fmt.Errorf("finish inbox %s: unindex pending: %w", id, err)
	}
	return tx.addCount(tx.b(bucketMeta), countInboxPending, -1)
}

// outcome is the tail of an InboxItem's JSON: the fields FinishInbox sets,
// with the same names and omit rules, in the same order.
type outcome struct {
	State       string    `json:"state"`
	Reason      string    `json:"reason,omitempty"`
	EventIDs    []string  `json:"event_ids,omitempty"`
	ProcessedAt time.Time `json:"processed_at,omitzero"`
}

// pendingTail is how the JSON of every pending item Accept wrote ends:
// state is its last field, and reason, event ids and processed time are
// empty (so omitted).
const pendingTail = `,"state":"pending"}`

// finishedItem returns the JSON of stored item v with its outcome set, and
// whether v was pending, in en's buffer (valid until en's next call). A
// pending item as Accept wrote it is not decoded: its tail is replaced.
// Anything else is decoded and encoded again.
func finishedItem(en *encoder, v []byte, out outcome) ([]byte, bool, error) {
	// In valid JSON the tail cannot sit inside a string (its quotes are not
	// escaped), so it is the object's last member: state, pending.
	if bytes.HasSuffix(v, []byte(pendingTail)) {
		keep := len(v) - len(pendingTail) + 1 // up to and including the comma
		data, err := en.finish(en.appendOutcomeFields(append(en.buf[:0], v[:keep]...), out))
		if err != nil {
			return nil, false, fmt.Errorf("encode outcome: %w", err)
		}
		return data, true, nil
	}
	item := new(InboxItem)
	if err := json.Unmarshal(v, item); err != nil {
		return nil, false, fmt.Errorf("decode: %w", err)
	}
	wasPending := item.State == InboxPending
	item.State, item.Reason, item.EventIDs, item.ProcessedAt = out.State, out.Reason, out.EventIDs, out.ProcessedAt
	data, err := en.inboxRecord(item)
	if err != nil {
		return nil, false, fmt.Errorf("encode: %w", err)
	}
	return data, wasPending, nil
}

// PruneDedupe deletes dedupe keys whose window ended at or before now and
// returns how many, after moving the intake journal into bbolt. It range-scans the expiry index, in transactions of at
// most 10,000 deletions each.
func (db *DB) PruneDedupe(now time.Time) (int, error) {
	// Keys still in the intake journal are pruned too: move them first.
	if err := db.flushJournal(); err != nil {
		return 0, fmt.Errorf("prune dedupe keys: %w", err)
	}
	return db.pruneExpiring(bucketDedupeExp, bucketDedupe, now, "prune dedupe keys", nil)
}

// pruneExpiring deletes entries of data whose expiry-index key (8-byte
// nanos + data key) is at or before now. Writers keep the index exact: a
// replaced entry's old index key is deleted when it is replaced. When
// keep is not nil it sees each due entry first (its index key already
// deleted): true leaves the entry to keep, which may write it again under
// a new expiry, and it is not counted.
func (db *DB) pruneExpiring(expBucket, dataBucket string, now time.Time, op string, keep func(tx *Tx, key []byte) (bool, error)) (int, error) {
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
				if keep != nil {
					if kept, err := keep(tx, k[8:]); err != nil || kept {
						if err != nil {
							return err
						}
						continue
					}
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
