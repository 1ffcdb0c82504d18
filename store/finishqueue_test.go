package store

import (
	"errors"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// lastTxID is the id of the last committed write transaction: it grows by
// one per commit.
func lastTxID(t *testing.T, db *DB) int {
	t.Helper()
	var id int
	if err := db.bolt.View(func(btx *bolt.Tx) error { id = btx.ID(); return nil }); err != nil {
		t.Fatal(err)
	}
	return id
}

// whileWriterHeld runs write in a goroutine with bbolt's writer held by an
// Update whose function returns fnErr once write's FinishAndClaim request is
// queued, and returns the Update's error and FinishAndClaim's results.
func whileWriterHeld(t *testing.T, db *testDB, fnErr error, write func() ([]*Delivery, error)) (updErr error, got []*Delivery, err error) {
	t.Helper()
	inside, release := make(chan struct{}), make(chan struct{})
	updDone := make(chan error, 1)
	go func() {
		updDone <- db.Update(func(tx *Tx) error {
			close(inside)
			<-release
			return fnErr
		})
	}()
	<-inside
	type result struct {
		got []*Delivery
		err error
	}
	finDone := make(chan result, 1)
	go func() {
		got, err := write()
		finDone <- result{got, err}
	}()
	for deadline := time.Now().Add(10 * time.Second); ; {
		db.fmu.Lock()
		n := len(db.finishes)
		db.fmu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("FinishAndClaim never queued its request")
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	updErr = <-updDone
	r := <-finDone
	return updErr, r.got, r.err
}

// TestFinishAndClaimRidesAlong: outcomes queued while another write
// transaction holds the writer are recorded in that transaction (one commit
// for both), with the same results as in a transaction of their own; when
// that transaction rolls back they wait for the next one.
func TestFinishAndClaimRidesAlong(t *testing.T) {
	db := mustOpen(t)
	ids := addDeliveries(t, db, "A", "A", "B")
	claim(t, db, 10) // A's head and B are in flight
	finishA := func() ([]*Delivery, error) {
		return db.FinishAndClaim([]Finish{{ID: ids[0], State: DeliverySucceeded}, {ID: "no-such-delivery", State: DeliverySucceeded}}, db.clock.Now(), 10)
	}

	before := lastTxID(t, db.DB)
	updErr, got, err := whileWriterHeld(t, db, nil, finishA)
	if updErr != nil {
		t.Fatalf("update: %v", updErr)
	}
	if !errors.Is(err, ErrNotFound) || len(got) != 1 || got[0].ID != ids[1] {
		t.Fatalf("ride along: claimed %v, err %v; want A's second delivery and ErrNotFound for the unknown id", ids2(got), err)
	}
	if after := lastTxID(t, db.DB); after != before+1 {
		t.Fatalf("%d commits for an update and a FinishAndClaim queued during it, want 1", after-before)
	}

	// The holder fails: nothing of it commits, and the queued outcome is
	// recorded by FinishAndClaim's own transaction.
	before = lastTxID(t, db.DB)
	boom := errors.New("boom")
	updErr, got, err = whileWriterHeld(t, db, boom, func() ([]*Delivery, error) {
		return db.FinishAndClaim([]Finish{{ID: ids[2], State: DeliveryFailed, Reason: "gone"}}, db.clock.Now(), 10)
	})
	if updErr != boom {
		t.Fatalf("update returned %v, want its function's error as is", updErr)
	}
	if err != nil || len(got) != 0 {
		t.Fatalf("after a rolled-back holder: claimed %v, err %v", ids2(got), err)
	}
	if after := lastTxID(t, db.DB); after != before+1 {
		t.Fatalf("%d commits after a rolled-back holder, want FinishAndClaim's own", after-before)
	}
	if d, err := db.Delivery(ids[2]); err != nil || d.State != DeliveryFailed {
		t.Fatalf("B after its outcome: %+v, %v", d, err)
	}
	wantDeliveryStates(t, db, map[string]int{DeliverySucceeded: 1, DeliveryFailed: 1, DeliveryInFlight: 1})
	mustCheck(t, db)
}

// TestFinishAndClaimClosed: on a closed store the call fails at once and
// leaves nothing queued.
func TestFinishAndClaimClosed(t *testing.T) {
	db := mustOpen(t)
	ids := addDeliveries(t, db, "A")
	claim(t, db, 1)
	if err := db.DB.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := db.FinishAndClaim([]Finish{{ID: ids[0], State: DeliverySucceeded}}, db.clock.Now(), 10)
	if !errors.Is(err, ErrClosed) || got != nil {
		t.Fatalf("closed store: %v, %v; want ErrClosed", ids2(got), err)
	}
	if len(db.finishes) != 0 {
		t.Fatalf("%d requests left queued", len(db.finishes))
	}
}
