package store

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/hookline/hookline/event"
)

// decodedDelivery reads a delivery's stored JSON the plain way.
func decodedDelivery(t *testing.T, db *DB, id string) *Delivery {
	t.Helper()
	d := new(Delivery)
	if err := db.View(func(tx *Tx) error { return json.Unmarshal(tx.b(bucketOutbox).Get([]byte(id)), d) }); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestClaimedDeliveriesMatchStore: what ClaimDue and FinishAndClaim hand
// over equals a decode of the stored record, whether it came from the
// delivery cache or not, and an entry whose record changed behind its back
// is not used.
func TestClaimedDeliveriesMatchStore(t *testing.T) {
	db := mustOpen(t)
	ids := addDeliveries(t, db, "A", "B", "")
	// Change B's stored record behind the cache (as another writer would).
	stale := decodedDelivery(t, db.DB, ids[1])
	stale.RuleID = "changed-behind-the-cache"
	raw, err := json.Marshal(stale)
	if err != nil {
		t.Fatal(err)
	}
	putRaw(t, db.DB, bucketOutbox, []byte(ids[1]), raw)
	// C's update holds a value a decode would change (an int): never cached.
	db.update(func(tx *Tx) error {
		return tx.AddDelivery(&Delivery{Connector: "zendesk", Reference: "C", Update: event.Update{Set: map[string]any{"n": 3}}})
	})

	claimed, err := db.ClaimDue(db.clock.Now(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(claimed) != 4 {
		t.Fatalf("claimed %d, want 4", len(claimed))
	}
	for _, d := range claimed {
		if want := decodedDelivery(t, db.DB, d.ID); !reflect.DeepEqual(d, want) {
			t.Fatalf("claimed %s:\n got %+v\nwant %+v", d.ID, d, want)
		}
		if d.ID == ids[1] && d.RuleID != "changed-behind-the-cache" {
			t.Fatalf("a stale cache entry was used for %s", d.ID)
		}
	}
	// The caller owns what it got: changing it changes nothing stored.
	claimed[0].Request.Body[0] = 'X'
	claimed[0].Update.Set["status"] = "mutated"

	db.clock.Advance(time.Second)
	fins := []Finish{
		{ID: claimed[0].ID, State: DeliveryPending, Attempt: &Attempt{At: db.clock.Now(), Status: 503}},
		{ID: claimed[1].ID, State: DeliverySucceeded, Attempt: &Attempt{At: db.clock.Now(), Status: 200}},
	}
	again, err := db.FinishAndClaim(fins, db.clock.Now(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 1 || again[0].ID != claimed[0].ID {
		t.Fatalf("claimed again %v, want the delivery put back as pending, due now", ids2(again))
	}
	want := decodedDelivery(t, db.DB, again[0].ID)
	if !reflect.DeepEqual(again[0], want) || len(want.Attempts) != 1 || want.Request.Body[0] != '{' || want.Update.Set["status"] != "solved" {
		t.Fatalf("claimed again:\n got %+v\nwant %+v", again[0], want)
	}
	mustCheck(t, db)
}

func ids2(ds []*Delivery) []string { return ids(ds, func(d *Delivery) string { return d.ID }) }

// TestFinishAndClaim: outcomes and claims share one transaction; a queue's
// next delivery made due by a finish is claimed in the same call; refused
// outcomes are reported without undoing the rest; limit 0 claims nothing.
func TestFinishAndClaim(t *testing.T) {
	db := mustOpen(t)
	ids := addDeliveries(t, db, "A", "A", "B")
	first := claim(t, db, 10) // A's head and B
	if !equalStrings(first, sorted(ids[0], ids[2])) {
		t.Fatalf("first claim %v", first)
	}
	later := db.clock.Now().Add(time.Hour)
	got, err := db.FinishAndClaim([]Finish{
		{ID: ids[0], State: DeliverySucceeded},
		{ID: ids[2], State: DeliveryPending, NextAt: later},
		{ID: "no-such-delivery", State: DeliverySucceeded},
	}, db.clock.Now(), 0)
	if !errors.Is(err, ErrNotFound) || got != nil {
		t.Fatalf("limit 0: got %v, err %v; want nothing claimed and ErrNotFound for the unknown id", ids2(got), err)
	}
	got, err = db.FinishAndClaim(nil, db.clock.Now(), 10)
	if err != nil || len(got) != 1 || got[0].ID != ids[1] {
		t.Fatalf("claim after finish: %v, %v; want A's second delivery", ids2(got), err)
	}
	got, err = db.FinishAndClaim([]Finish{{ID: ids[1], State: DeliveryFailed, Reason: "x"}}, later, 10)
	if err != nil || len(got) != 1 || got[0].ID != ids[2] {
		t.Fatalf("finish A and claim at %v: %v, %v; want B again", later, ids2(got), err)
	}
	wantDeliveryStates(t, db, map[string]int{DeliverySucceeded: 1, DeliveryFailed: 1, DeliveryInFlight: 1})
	mustCheck(t, db)
}

// TestCachedDeliveriesMatchStoreAfterEveryWrite: deliveries the store
// caches as its own (after a retry, a cancel, a finish back to pending, a
// recovery at Open, a queue head made due) are claimed equal to a decode
// of their stored records, and mutating a claimed delivery changes neither
// the record nor what a later claim returns.
func TestCachedDeliveriesMatchStoreAfterEveryWrite(t *testing.T) {
	db := mustOpen(t)
	ids := addDeliveries(t, db, "A", "A", "B", "B", "")
	a1, a2, b1, b2, u := ids[0], ids[1], ids[2], ids[3], ids[4]
	claimSame := func(step string, want ...string) []*Delivery {
		t.Helper()
		got, err := db.ClaimDue(db.clock.Now(), 10)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if !equalStrings(sorted(ids2(got)...), sorted(want...)) {
			t.Fatalf("%s: claimed %v, want %v", step, ids2(got), want)
		}
		for _, d := range got {
			if dec := decodedDelivery(t, db.DB, d.ID); !reflect.DeepEqual(d, dec) {
				t.Fatalf("%s: claimed %s:\n got %+v\nwant %+v", step, d.ID, d, dec)
			}
		}
		mustCheck(t, db)
		return got
	}
	if err := db.CancelDelivery(b1, "not needed"); err != nil {
		t.Fatal(err)
	}
	got := claimSame("after cancel", a1, b2, u)
	for _, d := range got { // the caller's to change
		d.Request.Body[0], d.Update.Set["status"], d.Attempts = 'X', "mutated", append(d.Attempts, Attempt{Status: 1})
	}
	db.clock.Advance(time.Second)
	if err := db.FinishDeliveries([]Finish{
		{ID: a1, State: DeliveryFailed, Attempt: &Attempt{At: db.clock.Now(), Status: 500}},
		{ID: b2, State: DeliveryPending, Attempt: &Attempt{At: db.clock.Now(), Status: 503}, Captured: map[string]string{"k": "v"}},
		{ID: u, State: DeliveryPending, NextAt: db.clock.Now().Add(-time.Minute)},
	}); err != nil {
		t.Fatal(err)
	}
	got = claimSame("after finishing back to pending", a2, b2, u)
	for _, d := range got {
		if d.Request.Body[0] != '{' || d.Update.Set["status"] != "solved" {
			t.Fatalf("%s carries the previous caller's changes: %+v", d.ID, d)
		}
	}
	if err := db.RetryDelivery(a1, db.clock.Now()); err != nil {
		t.Fatal(err)
	}
	db.clock.Advance(time.Second)
	if err := db.FinishDeliveries([]Finish{{ID: a2, State: DeliverySucceeded}}); err != nil {
		t.Fatal(err)
	}
	claimSame("after retry", a1)
	db.reopen() // b2, u and a1 were in flight: recovered as pending
	claimSame("after recovery", a1, b2, u)
}
