package store

import (
	"testing"
	"time"
)

// New ids sort after every id the store holds, even when the clock was set
// back between two runs: delivery queues are in id order, and a ticket's
// update made after the restart must not go before one made earlier.
func TestIDsAfterTheClockWasSetBack(t *testing.T) {
	db := mustOpen(t)
	var before []string
	db.update(func(tx *Tx) error {
		for _, ref := range []string{"R1", "R2"} {
			d := &Delivery{Connector: "crm", Reference: ref, State: DeliveryPending, Request: Request{Method: "POST", URL: "http://x/"}}
			if err := tx.AddDelivery(d); err != nil {
				return err
			}
			before = append(before, d.ID)
		}
		return nil
	})
	journaled := mustAccept(t, db.DB, newItem("zendesk", "late"), time.Hour).ID
	db.clock.Advance(-time.Hour) // set back, then restart
	db.reopen()
	for _, id := range []string{db.NewID(), db.NewIDAt(db.clock.Now()), db.NewIDAt(time.Unix(0, 0))} {
		for _, old := range append(before, journaled) {
			if id <= old {
				t.Fatalf("new id %s sorts before %s, made before the clock was set back", id, old)
			}
		}
	}
	var after string
	db.update(func(tx *Tx) error {
		d := &Delivery{Connector: "crm", Reference: "R1", State: DeliveryPending, Request: Request{Method: "POST", URL: "http://x/"}}
		err := tx.AddDelivery(d)
		after = d.ID
		return err
	})
	if after <= before[0] {
		t.Fatalf("R1's second delivery %s sorts before its first %s", after, before[0])
	}
}
