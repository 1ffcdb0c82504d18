package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

// TestIntakeHealthReportsAnUnusableJournal: once a failed append cannot be
// cut back durably (its fdatasync and then the cut's fsync fail), the
// journal refuses every later append until a restart; IntakeHealth says so
// (the gateway's /readyz answers 503 with it), where Stats alone looked
// healthy. The applier's failures count only once they have lasted
// applyFailingFor.
func TestIntakeHealthReportsAnUnusableJournal(t *testing.T) {
	clock := newClock()
	path := t.TempDir() + "/hookline.db"
	var (
		mu   sync.Mutex
		fail int
	)
	db := openFaulty(t, path, clock, Options{journalSync: func(f *os.File) error {
		mu.Lock()
		defer mu.Unlock()
		if fail > 0 {
			fail--
			return errors.New("injected EIO")
		}
		return fdatasync(f)
	}})
	defer db.Close()
	mustAccept(t, db, newItem("zendesk", "ok"), time.Hour)
	if err := db.IntakeHealth(); err != nil {
		t.Fatalf("healthy store: IntakeHealth %v", err)
	}
	mu.Lock()
	fail = 1 // the append's fdatasync only: the cut is made, the journal goes on
	mu.Unlock()
	if _, err := db.Accept(context.Background(), newItem("zendesk", "hiccup1"), time.Hour); err == nil {
		t.Fatal("accept with a failing fdatasync succeeded")
	}
	if err := db.IntakeHealth(); err != nil {
		t.Fatalf("after a failed append that was cut back: IntakeHealth %v, want nil", err)
	}
	mustAccept(t, db, newItem("zendesk", "after1"), time.Hour)

	mu.Lock()
	fail = 2 // the append's fdatasync, then the fsync of its cut
	mu.Unlock()
	if _, err := db.Accept(context.Background(), newItem("zendesk", "hiccup2"), time.Hour); err == nil {
		t.Fatal("accept with failing syncs succeeded")
	}
	for i := range 3 {
		if _, err := db.Accept(context.Background(), newItem("zendesk", fmt.Sprint("after", i+2)), time.Hour); err == nil {
			t.Fatal("an append after an uncut failure succeeded")
		}
	}
	if err := db.IntakeHealth(); err == nil {
		t.Fatal("the journal refuses every append, and IntakeHealth says nothing")
	}
}

// TestIntakeHealthReportsALastingApplyFailure: an applier that keeps
// failing is reported once it has failed for applyFailingFor, not at its
// first error.
func TestIntakeHealthReportsALastingApplyFailure(t *testing.T) {
	clock := newClock()
	var failing sync.Mutex // held: the applier's transactions fail
	failing.Lock()
	db := openFaulty(t, t.TempDir()+"/hookline.db", clock, Options{applyFault: func() error {
		if failing.TryLock() {
			failing.Unlock()
			return nil
		}
		return errors.New("disk full")
	}})
	defer db.Close()
	mustAccept(t, db, newItem("zendesk", "k"), time.Hour)
	if err := db.flushJournal(); err == nil {
		t.Fatal("flush with a failing applier succeeded")
	}
	if err := db.IntakeHealth(); err != nil {
		t.Fatalf("an apply failure of a moment: IntakeHealth %v, want nil", err)
	}
	db.jmu.Lock()
	since := db.applyErrSince
	db.applyErrSince = since.Add(-applyFailingFor) // as if it had failed since then
	db.jmu.Unlock()
	if since.IsZero() {
		t.Fatal("the applier's failure left no start time")
	}
	if err := db.IntakeHealth(); err == nil {
		t.Fatalf("an apply failure lasting %s: IntakeHealth nil", applyFailingFor)
	}
	failing.Unlock()
	// The applier retries every 100 ms; a flush reports its last error
	// until a retry succeeds.
	for deadline := time.Now().Add(10 * time.Second); db.flushJournal() != nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the applier did not recover")
		}
	}
	if err := db.IntakeHealth(); err != nil {
		t.Fatalf("after the applier recovered: IntakeHealth %v", err)
	}
}
