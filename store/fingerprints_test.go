package store

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/hookline/hookline/event"
)

// A delivery's fingerprints end with it when it fails or is cancelled (it
// changed nothing on the platform) and, when it succeeds, last their
// window from then rather than from when they were written. The same
// change fingerprinted since by another delivery, and other entity types
// with the same reference, are left alone.
func TestFingerprintsSettleWithTheirDelivery(t *testing.T) {
	const window = 10 * time.Minute
	for _, tc := range []struct {
		name   string
		settle func(t *testing.T, db *testDB, id string)
		// wantUntil is how long after the settling the fingerprint lasts;
		// zero: it is gone.
		wantUntil time.Duration
	}{
		{"failed", func(t *testing.T, db *testDB, id string) {
			claim(t, db, 0)
			if err := db.FinishDelivery(id, &Attempt{At: db.clock.Now(), Status: 422}, DeliveryFailed, time.Time{}, "422", nil); err != nil {
				t.Fatal(err)
			}
		}, 0},
		{"cancelled_pending", func(t *testing.T, db *testDB, id string) {
			if err := db.CancelDelivery(id, "unsubscribed"); err != nil {
				t.Fatal(err)
			}
		}, 0},
		{"cancelled_in_flight", func(t *testing.T, db *testDB, id string) {
			claim(t, db, 0)
			if err := db.FinishDelivery(id, nil, DeliveryCancelled, time.Time{}, "withdrawn", nil); err != nil {
				t.Fatal(err)
			}
		}, 0},
		{"succeeded", func(t *testing.T, db *testDB, id string) {
			claim(t, db, 0)
			if err := db.FinishDelivery(id, &Attempt{At: db.clock.Now(), Status: 200}, DeliverySucceeded, time.Time{}, "", nil); err != nil {
				t.Fatal(err)
			}
		}, window},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := mustOpen(t)
			t0 := db.clock.Now()
			d := &Delivery{Connector: "zendesk", Entity: "ticket", Reference: "17", RuleID: "r", EventID: "ev",
				Update:  event.Update{Kind: event.KindUpdateEntity, Connector: "zendesk", Reference: "17", Set: map[string]any{"status": "solved", "priority": "high"}},
				Request: Request{Method: "PUT", URL: "https://example.zendesk.com/api/v2/tickets/17.json"}}
			fp := func(entity, field, value, delivery string) Fingerprint {
				return Fingerprint{Connector: "zendesk", Entity: entity, Reference: "17", Field: field, Value: value,
					DeliveryID: delivery, Window: window, Expires: t0.Add(window)}
			}
			db.update(func(tx *Tx) error {
				if err := tx.AddDelivery(d); err != nil {
					return err
				}
				for _, f := range []Fingerprint{
					fp("ticket", "status", "solved", d.ID),
					fp("ticket", "priority", "high", "other"), // the same change, sent again since
					fp("order", "status", "solved", d.ID),     // another entity type (cannot be d's; kept)
				} {
					if err := tx.PutFingerprint(f); err != nil {
						return err
					}
				}
				return nil
			})
			settledAt := db.clock.Advance(8 * time.Minute) // sent late
			tc.settle(t, db, d.ID)
			match := func(entity, field, value string, at time.Time) *Fingerprint {
				t.Helper()
				var got *Fingerprint
				if err := db.View(func(tx *Tx) error {
					var err error
					got, err = tx.MatchFingerprint("zendesk", entity, "17", field, value, at)
					return err
				}); err != nil {
					t.Fatal(err)
				}
				return got
			}
			got := match("ticket", "status", "solved", settledAt)
			switch {
			case tc.wantUntil == 0 && got != nil:
				t.Fatalf("the fingerprint of a delivery that ended %s is still there: %+v", tc.name, got)
			case tc.wantUntil > 0 && (got == nil || !got.Expires.Equal(settledAt.Add(tc.wantUntil))):
				t.Fatalf("the fingerprint of the delivery that succeeded at %v: %+v, want it to expire at %v", settledAt, got, settledAt.Add(tc.wantUntil))
			}
			if o := match("ticket", "priority", "high", settledAt); o == nil || !o.Expires.Equal(t0.Add(window)) {
				t.Fatalf("another delivery's fingerprint was changed: %+v", o)
			}
			if o := match("order", "status", "solved", settledAt); o == nil || !o.Expires.Equal(t0.Add(window)) {
				t.Fatalf("another entity type's fingerprint was changed: %+v", o)
			}
			if m := match("order", "priority", "high", settledAt); m != nil {
				t.Fatalf("a ticket's fingerprint matched an order: %+v", m)
			}
			var field []Fingerprint
			if err := db.View(func(tx *Tx) error {
				var err error
				field, err = tx.FieldFingerprints("zendesk", "ticket", "17", "priority", settledAt)
				return err
			}); err != nil || len(field) != 1 || field[0].Value != "high" {
				t.Fatalf("field fingerprints of priority: %+v, %v", field, err)
			}
			mustCheck(t, db)
		})
	}
}

// Pruning keeps the fingerprints of a delivery not sent yet (for their
// window from the prune), and deletes them once the delivery is done.
func TestPruneKeepsFingerprintsOfUnsentDeliveries(t *testing.T) {
	const window = 10 * time.Minute
	db := mustOpen(t)
	t0 := db.clock.Now()
	d := &Delivery{Connector: "zendesk", Entity: "ticket", Reference: "17", RuleID: "r", EventID: "ev",
		Update:  event.Update{Kind: event.KindUpdateEntity, Connector: "zendesk", Reference: "17", Set: map[string]any{"status": "solved"}},
		Request: Request{Method: "PUT", URL: "https://example.zendesk.com/api/v2/tickets/17.json"}}
	db.update(func(tx *Tx) error {
		if err := tx.AddDelivery(d); err != nil {
			return err
		}
		return tx.PutFingerprint(Fingerprint{Connector: "zendesk", Entity: "ticket", Reference: "17", Field: "status", Value: "solved",
			DeliveryID: d.ID, Window: window, Expires: t0.Add(window)})
	})
	live := func(at time.Time) bool {
		t.Helper()
		var got *Fingerprint
		if err := db.View(func(tx *Tx) error {
			var err error
			got, err = tx.MatchFingerprint("zendesk", "ticket", "17", "status", "solved", at)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return got != nil
	}
	at := db.clock.Advance(15 * time.Minute) // the platform was down
	if n, err := db.PruneFingerprints(at); err != nil || n != 0 {
		t.Fatalf("pruned %d, %v; want the unsent delivery's fingerprint kept", n, err)
	}
	if !live(at) {
		t.Fatal("the fingerprint of a delivery still pending was not kept")
	}
	claim(t, db, 0)
	if err := db.FinishDelivery(d.ID, &Attempt{At: at, Status: 200}, DeliverySucceeded, time.Time{}, "", nil); err != nil {
		t.Fatal(err)
	}
	at = db.clock.Advance(window)
	if n, err := db.PruneFingerprints(at); err != nil || n != 1 {
		t.Fatalf("pruned %d, %v; want the sent delivery's fingerprint pruned", n, err)
	}
	mustCheck(t, db)
}

// Two deliveries of the same change each fingerprint it: the one that
// fails or is cancelled ends only its own fingerprint, and the echo of
// the other (sent, or still to be sent) is still recognised as ours,
// whichever order they settle in. (The outbox sends an entity's
// deliveries one at a time: the second waits for the first.)
func TestFingerprintOfTheSameChangeOutlivesTheOtherDeliverysFailure(t *testing.T) {
	const window = 10 * time.Minute
	type step struct {
		which int // 0: the first delivery, 1: the second
		state string
	}
	for _, tc := range []struct {
		name  string
		steps []step
		// want is the index of the delivery whose fingerprint matches
		// after the steps.
		want int
	}{
		{"first succeeds, second fails", []step{{0, DeliverySucceeded}, {1, DeliveryFailed}}, 0},
		{"first succeeds, second cancelled in flight", []step{{0, DeliverySucceeded}, {1, DeliveryCancelled}}, 0},
		{"second cancelled pending, first succeeds", []step{{1, DeliveryCancelled}, {0, DeliverySucceeded}}, 0},
		{"second cancelled pending, first still in flight", []step{{1, DeliveryCancelled}}, 0},
		{"first fails, second succeeds", []step{{0, DeliveryFailed}, {1, DeliverySucceeded}}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := mustOpen(t)
			t0 := db.clock.Now()
			var ds [2]*Delivery
			db.update(func(tx *Tx) error {
				for i := range ds {
					ds[i] = &Delivery{Connector: "zendesk", Entity: "ticket", Reference: "17", RuleID: "r", EventID: "ev",
						Update:  event.Update{Kind: event.KindUpdateEntity, Connector: "zendesk", Reference: "17", Set: map[string]any{"status": "solved"}},
						Request: Request{Method: "PUT", URL: "https://example.zendesk.com/api/v2/tickets/17.json"}}
					if err := tx.AddDelivery(ds[i]); err != nil {
						return err
					}
					if err := tx.PutFingerprint(Fingerprint{Connector: "zendesk", Entity: "ticket", Reference: "17", Field: "status", Value: "solved",
						DeliveryID: ds[i].ID, Hops: i + 1, Window: window, Expires: t0.Add(window)}); err != nil {
						return err
					}
				}
				return nil
			})
			at := db.clock.Advance(time.Minute)
			inFlight := map[string]bool{}
			for _, s := range tc.steps {
				id := ds[s.which].ID
				for _, c := range claim(t, db, 0) {
					inFlight[c] = true
				}
				if s.state == DeliveryCancelled && !inFlight[id] {
					if err := db.CancelDelivery(id, "withdrawn"); err != nil {
						t.Fatal(err)
					}
					continue
				}
				if !inFlight[id] {
					t.Fatalf("delivery %d was not claimed", s.which)
				}
				var a *Attempt
				switch s.state {
				case DeliverySucceeded:
					a = &Attempt{At: at, Status: 200}
				case DeliveryFailed:
					a = &Attempt{At: at, Status: 422}
				}
				if err := db.FinishDelivery(id, a, s.state, time.Time{}, s.state, nil); err != nil {
					t.Fatal(err)
				}
			}
			var got *Fingerprint
			var field []Fingerprint
			if err := db.View(func(tx *Tx) error {
				var err error
				if got, err = tx.MatchFingerprint("zendesk", "ticket", "17", "status", "solved", at); err != nil {
					return err
				}
				field, err = tx.FieldFingerprints("zendesk", "ticket", "17", "status", at)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if got == nil || got.DeliveryID != ds[tc.want].ID || got.Hops != tc.want+1 {
				t.Fatalf("fingerprint after %v: %+v, want delivery %s's", tc.steps, got, ds[tc.want].ID)
			}
			if len(field) != 1 || field[0].DeliveryID != ds[tc.want].ID {
				t.Fatalf("field fingerprints: %+v, want only delivery %s's", field, ds[tc.want].ID)
			}
			mustCheck(t, db)
		})
	}
}

// A fingerprint written by an older build (keyed by the change alone,
// without its delivery) is still matched, ends with its delivery, and is
// rewritten under today's key when pruning keeps it for an unsent
// delivery, leaving nothing behind.
func TestLegacyFingerprintKeys(t *testing.T) {
	const window = 10 * time.Minute
	for _, end := range []string{"failed", "pruned_unsent"} {
		t.Run(end, func(t *testing.T) {
			db := mustOpen(t)
			t0 := db.clock.Now()
			d := &Delivery{Connector: "zendesk", Entity: "ticket", Reference: "17", RuleID: "r", EventID: "ev",
				Update:  event.Update{Kind: event.KindUpdateEntity, Connector: "zendesk", Reference: "17", Set: map[string]any{"status": "solved"}},
				Request: Request{Method: "PUT", URL: "https://example.zendesk.com/api/v2/tickets/17.json"}}
			f := Fingerprint{Connector: "zendesk", Entity: "ticket", Reference: "17", Field: "status", Value: "solved",
				Window: window, Expires: t0.Add(window)}
			db.update(func(tx *Tx) error {
				if err := tx.AddDelivery(d); err != nil {
					return err
				}
				f.DeliveryID = d.ID
				legacy := join("zendesk", "ticket", "17", "status", "solved")
				data, err := json.Marshal(f)
				if err != nil {
					return err
				}
				if err := tx.b(bucketFingerprints).Put(legacy, data); err != nil {
					return err
				}
				return tx.b(bucketFingerprintsExp).Put(timeKey(f.Expires, legacy), present())
			})
			match := func(at time.Time) *Fingerprint {
				t.Helper()
				var got *Fingerprint
				if err := db.View(func(tx *Tx) error {
					var err error
					got, err = tx.MatchFingerprint("zendesk", "ticket", "17", "status", "solved", at)
					return err
				}); err != nil {
					t.Fatal(err)
				}
				return got
			}
			if got := match(t0); got == nil || got.DeliveryID != d.ID {
				t.Fatalf("legacy fingerprint not matched: %+v", got)
			}
			switch end {
			case "failed":
				claim(t, db, 0)
				if err := db.FinishDelivery(d.ID, &Attempt{At: t0, Status: 422}, DeliveryFailed, time.Time{}, "422", nil); err != nil {
					t.Fatal(err)
				}
				if got := match(t0); got != nil {
					t.Fatalf("legacy fingerprint of a failed delivery kept: %+v", got)
				}
			case "pruned_unsent":
				at := db.clock.Advance(window + time.Minute)
				if n, err := db.PruneFingerprints(at); err != nil || n != 0 {
					t.Fatalf("pruned %d, %v", n, err)
				}
				if got := match(at); got == nil || !got.Expires.Equal(at.Add(window)) {
					t.Fatalf("unsent delivery's legacy fingerprint after prune: %+v", got)
				}
				claim(t, db, 0)
				if err := db.FinishDelivery(d.ID, &Attempt{At: at, Status: 422}, DeliveryFailed, time.Time{}, "422", nil); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.View(func(tx *Tx) error {
				for _, name := range []string{bucketFingerprints, bucketFingerprintsExp} {
					if k, _ := tx.b(name).Cursor().First(); k != nil {
						t.Errorf("%s still holds %q", name, k)
					}
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			mustCheck(t, db)
		})
	}
}

// A delivery sent through another connector (deliver_to) fingerprinted
// the entity it changes (its update's state_of): its fingerprints settle
// with it there, and those of the sending connector's entity under the
// same reference are left alone.
func TestFingerprintsOfADeliverToUpdateSettleOnTheUpdatedEntity(t *testing.T) {
	const window = 10 * time.Minute
	for _, state := range []string{DeliveryFailed, DeliverySucceeded} {
		t.Run(state, func(t *testing.T) {
			db := mustOpen(t)
			t0 := db.clock.Now()
			d := &Delivery{Connector: "generic", Entity: "ticket", Reference: "17", RuleID: "r", EventID: "ev",
				Update: event.Update{Kind: event.KindUpdateEntity, Connector: "generic", Entity: "ticket", Reference: "17", Set: map[string]any{"status": "open"},
					StateOf: &event.EntityKey{Connector: "desk2", Entity: "ticket", Reference: "17"}},
				Request: Request{Method: "POST", URL: "https://example.com/hook"}}
			db.update(func(tx *Tx) error {
				if err := tx.AddDelivery(d); err != nil {
					return err
				}
				for _, conn := range []string{"desk2", "generic"} {
					if err := tx.PutFingerprint(Fingerprint{Connector: conn, Entity: "ticket", Reference: "17", Field: "status", Value: "open",
						DeliveryID: d.ID, Window: window, Expires: t0.Add(window)}); err != nil {
						return err
					}
				}
				return nil
			})
			claim(t, db, 0)
			at := db.clock.Advance(5 * time.Minute)
			status := 200
			if state == DeliveryFailed {
				status = 422
			}
			if err := db.FinishDelivery(d.ID, &Attempt{At: at, Status: status}, state, time.Time{}, state, nil); err != nil {
				t.Fatal(err)
			}
			expires := func(conn string) time.Time {
				t.Helper()
				var got *Fingerprint
				if err := db.View(func(tx *Tx) error {
					var err error
					got, err = tx.MatchFingerprint(conn, "ticket", "17", "status", "open", at)
					return err
				}); err != nil {
					t.Fatal(err)
				}
				if got == nil {
					return time.Time{}
				}
				return got.Expires
			}
			want := time.Time{}
			if state == DeliverySucceeded {
				want = at.Add(window)
			}
			if got := expires("desk2"); !got.Equal(want) {
				t.Errorf("the updated entity's fingerprint expires at %v, want %v (zero: gone)", got, want)
			}
			if got := expires("generic"); !got.Equal(t0.Add(window)) {
				t.Errorf("the sending connector's entity's fingerprint expires at %v, want it left at %v", got, t0.Add(window))
			}
			mustCheck(t, db)
		})
	}
}

// TestFingerprintsOfAPromptSuccessStayAsWritten: a delivery that succeeds
// within settleSlack of its creation leaves its fingerprints as written
// (no read, no write in the outcome's transaction); one sent later has them
// re-dated from its send (TestFingerprintsSettleWithTheirDelivery).
func TestFingerprintsOfAPromptSuccessStayAsWritten(t *testing.T) {
	const window = 10 * time.Minute
	db := mustOpen(t)
	t0 := db.clock.Now()
	d := &Delivery{Connector: "zendesk", Entity: "ticket", Reference: "17", RuleID: "r", EventID: "ev",
		Update:  event.Update{Kind: event.KindUpdateEntity, Connector: "zendesk", Reference: "17", Set: map[string]any{"status": "solved"}},
		Request: Request{Method: "PUT", URL: "https://example.zendesk.com/api/v2/tickets/17.json"}}
	db.update(func(tx *Tx) error {
		if err := tx.AddDelivery(d); err != nil {
			return err
		}
		return tx.PutFingerprint(Fingerprint{Connector: "zendesk", Entity: "ticket", Reference: "17", Field: "status", Value: "solved",
			DeliveryID: d.ID, Window: window, Expires: t0.Add(window)})
	})
	sent := db.clock.Advance(settleSlack - time.Second)
	claim(t, db, 0)
	if err := db.FinishDelivery(d.ID, &Attempt{At: sent, Status: 200}, DeliverySucceeded, time.Time{}, "", nil); err != nil {
		t.Fatal(err)
	}
	var got *Fingerprint
	if err := db.View(func(tx *Tx) error {
		var err error
		got, err = tx.MatchFingerprint("zendesk", "ticket", "17", "status", "solved", sent)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if got == nil || !got.Expires.Equal(t0.Add(window)) {
		t.Fatalf("fingerprint of a delivery sent %s after it was made: %+v, want it as written (expiring %v)", settleSlack-time.Second, got, t0.Add(window))
	}
}
