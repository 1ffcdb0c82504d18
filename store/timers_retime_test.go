package store

import (
	"errors"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/hookline/hookline/event"
)

// A walk of every timer in pages sees each timer exactly once, in key
// order, for any page size, also when the walk deletes and moves timers
// between pages.
func TestTimerRefsPages(t *testing.T) {
	db := mustOpen(t)
	t0 := db.clock.Now()
	var want []string
	db.update(func(tx *Tx) error {
		for i := range 25 {
			for _, rule := range []string{"a-rule", "b-rule"} {
				k := event.EntityKey{Connector: "zendesk", Entity: "ticket", Reference: fmt.Sprintf("%03d", i)}
				if err := tx.PutTimer(Timer{Key: k, Rule: rule, Due: t0.Add(time.Duration(50-i) * time.Minute), ArmedAt: t0}); err != nil {
					return err
				}
				want = append(want, k.String()+"#"+rule)
			}
		}
		// Entities' snapshots and event index entries sit between the
		// timers; the walk passes over them.
		for _, ref := range []string{"004", "005", "030"} {
			k := event.EntityKey{Connector: "zendesk", Entity: "ticket", Reference: ref}
			if err := tx.PutEntity(&event.Snapshot{Key: k, CreatedAt: t0, UpdatedAt: t0}); err != nil {
				return err
			}
			for range 3 {
				e := &event.Event{ID: db.NewID(), Connector: k.Connector, Type: "ticket.updated", Entity: k.Entity, Reference: k.Reference}
				if err := tx.PutEvent(e, nil); err != nil {
					return err
				}
			}
		}
		return nil
	})
	for _, size := range []int{1, 7, 50, 51, 0} {
		t.Run(fmt.Sprint("page ", size), func(t *testing.T) {
			var got []string
			after := ""
			for pages := 0; ; pages++ {
				if pages > 100 {
					t.Fatal("the walk does not end")
				}
				refs, next, err := db.TimerRefs(after, size)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range refs {
					got = append(got, r.Key.String()+"#"+r.Rule)
				}
				if next == "" {
					break
				}
				if size > 0 && len(refs) != size {
					t.Fatalf("a page before the last holds %d, want %d", len(refs), size)
				}
				after = next
			}
			if !equalStrings(got, want) {
				t.Fatalf("walk\n got %v\nwant %v", got, want)
			}
		})
	}

	// Deleting the page just read and moving a later timer does not lose
	// or repeat any.
	refs, next, err := db.TimerRefs("", 10)
	if err != nil || len(refs) != 10 {
		t.Fatalf("%d refs, %v", len(refs), err)
	}
	db.update(func(tx *Tx) error {
		for _, r := range refs {
			if err := tx.DeleteTimer(r.Key, r.Rule); err != nil {
				return err
			}
		}
		return tx.PutTimer(Timer{Key: event.EntityKey{Connector: "zendesk", Entity: "ticket", Reference: "020"}, Rule: "a-rule", Due: t0, ArmedAt: t0})
	})
	seen := len(refs)
	for next != "" {
		refs, next, err = db.TimerRefs(next, 10)
		if err != nil {
			t.Fatal(err)
		}
		seen += len(refs)
	}
	if seen != len(want) {
		t.Fatalf("saw %d timers, want %d", seen, len(want))
	}
	if err := checkCounters(db.DB); err != nil {
		t.Fatal(err)
	}
}

func TestTimerRefsOfEmptyStore(t *testing.T) {
	db := mustOpen(t)
	refs, next, err := db.TimerRefs("", 0)
	if err != nil || len(refs) != 0 || next != "" {
		t.Fatalf("refs %v next %q err %v", refs, next, err)
	}
}

// Timing signatures survive a reopen; before the first write they are
// reported as never stored.
func TestTimingSignaturesRoundTrip(t *testing.T) {
	db := mustOpen(t)
	sigs, found, err := db.TimingSignatures()
	if err != nil || found || len(sigs) != 0 {
		t.Fatalf("fresh store: %v %v %v", sigs, found, err)
	}
	want := map[string]string{"pending-48h": "t1:abc", "idle-chat": "t1:def"}
	db.update(func(tx *Tx) error { return tx.PutTimingSignatures(want) })
	db.reopen()
	sigs, found, err = db.TimingSignatures()
	if err != nil || !found || !maps.Equal(sigs, want) {
		t.Fatalf("after reopen: %v %v %v", sigs, found, err)
	}
	// An empty set is stored too (every time-based rule removed).
	db.update(func(tx *Tx) error { return tx.PutTimingSignatures(nil) })
	sigs, found, err = db.TimingSignatures()
	if err != nil || !found || len(sigs) != 0 {
		t.Fatalf("emptied: %v %v %v", sigs, found, err)
	}
	err = db.View(func(tx *Tx) error { return tx.PutTimingSignatures(want) })
	if !errors.Is(err, ErrReadOnly) {
		t.Fatalf("write in a view: %v", err)
	}
}
