package store

import (
	"errors"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Delivery outcomes ride along with other write transactions.
//
// bbolt has one writer, and under load the pipeline holds it for most of
// the time. A dispatcher that records outcomes in a transaction of its own
// waits for the pipeline's commit, then pays a commit of its own: two
// fdatasyncs, the branch and freelist pages, and a second rewrite of the
// outbox's newest leaves, which the pipeline has just rewritten to add the
// deliveries it created. So FinishAndClaim queues its request and then asks
// for the writer; whichever write transaction of Update or FinishAndClaim
// gets the writer first applies every request queued by then, after its own
// work and before its commit, and answers them once it has committed. A
// request taken by another transaction costs its caller no commit: when
// its own turn comes there is nothing left to do and it rolls back.
//
// A request's work is the same as in a transaction of its own, in the same
// order, so the queues' order and the claim semantics do not change. What
// changes is what a storage error takes with it: one in the queued work
// rolls back the transaction it rides in (the pipeline's batch is retried)
// and one in the transaction's own work fails the queued requests too. Both
// are errors of the file itself, which fail every transaction alike.

// finishReq is one FinishAndClaim call waiting for a write transaction.
type finishReq struct {
	results []Finish
	now     time.Time // the caller's clock; claims use the later of it and the store's
	limit   int
	// Set by the transaction that takes the request, read after done.
	out     []*Delivery
	skipped []error
	err     error
	done    chan struct{}
}

// errNothingQueued rolls back a FinishAndClaim transaction whose request
// another transaction has already taken.
var errNothingQueued = errors.New("no queued delivery outcomes")

// queueFinish adds r to the requests the next write transaction applies.
func (db *DB) queueFinish(r *finishReq) {
	db.fmu.Lock()
	db.finishes = append(db.finishes, r)
	db.fmu.Unlock()
}

// unqueueFinish removes r from the queue; false when a transaction has
// already taken it.
func (db *DB) unqueueFinish(r *finishReq) bool {
	db.fmu.Lock()
	defer db.fmu.Unlock()
	for i, q := range db.finishes {
		if q == r {
			db.finishes = append(db.finishes[:i], db.finishes[i+1:]...)
			return true
		}
	}
	return false
}

// takeFinishes removes and returns every queued request.
func (db *DB) takeFinishes() []*finishReq {
	db.fmu.Lock()
	defer db.fmu.Unlock()
	reqs := db.finishes
	db.finishes = nil
	return reqs
}

// applyFinishes does the work of reqs in tx, in queue order. An error is
// a storage error: the transaction must roll back.
func (tx *Tx) applyFinishes(reqs []*finishReq) error {
	for _, r := range reqs {
		fnow := tx.db.now()
		skipped, err := tx.finishAll(r.results, fnow)
		if err != nil {
			return err
		}
		r.skipped = skipped
		if r.limit > 0 {
			if r.out, err = tx.claimDue(maxTime(r.now, fnow), r.limit); err != nil {
				return err
			}
		}
	}
	return nil
}

// answerFinishes tells reqs how the transaction that took them ended: err
// nil, their outcomes are committed and their claims are theirs; otherwise
// nothing of them was.
func answerFinishes(reqs []*finishReq, err error) {
	for _, r := range reqs {
		if err != nil {
			r.out, r.skipped, r.err = nil, nil, err
		}
		close(r.done)
	}
}

// writeTx runs fn (nil: nothing of its own) and then the queued delivery
// outcomes in one write transaction; it commits when both succeed. With
// fn nil and no request left in the queue it rolls back and returns
// errNothingQueued. fn's own error is returned as is.
func (db *DB) writeTx(fn func(tx *Tx) error) error {
	var (
		fnErr error
		reqs  []*finishReq
	)
	err := db.bolt.Update(func(btx *bolt.Tx) error {
		tx := &Tx{db: db, tx: btx}
		if fn != nil {
			if fnErr = fn(tx); fnErr != nil {
				return fnErr
			}
			if err := tx.indexTaken(); err != nil {
				return err
			}
		}
		reqs = db.takeFinishes()
		if fn == nil && len(reqs) == 0 {
			return errNothingQueued
		}
		return tx.applyFinishes(reqs)
	})
	answerFinishes(reqs, wrapTxErr("update", err))
	if fnErr != nil {
		return fnErr
	}
	if errors.Is(err, errNothingQueued) {
		return errNothingQueued
	}
	return wrapTxErr("update", err)
}
