package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/store"
)

// Example shows the life of one webhook: accepted (and deduplicated),
// turned into an event and a delivery by the pipeline in one transaction,
// then claimed and finished by a delivery worker.
func Example() {
	dir, err := os.MkdirTemp("", "store-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	db, err := store.Open(filepath.Join(dir, "hookline.db"), store.Options{})
	if err != nil {
		panic(err)
	}
	defer db.Close()

	// Intake: the same invocation id posted twice is stored once.
	ctx := context.Background()
	for range 2 {
		item := &store.InboxItem{
			Connector: "zendesk", Method: "POST", Path: "/hooks/zendesk",
			ContentType: "application/json", Body: []byte(`{"detail":{"id":"35436"}}`),
			DedupeKey: "invocation-7f3a",
		}
		res, err := db.Accept(ctx, item, 24*time.Hour)
		if err != nil {
			panic(err)
		}
		fmt.Println("duplicate:", res.Duplicate)
	}

	// Pipeline: one transaction per batch of inbox items.
	pending, err := db.PendingInbox("", 100)
	if err != nil {
		panic(err)
	}
	err = db.Update(func(tx *store.Tx) error {
		for _, it := range pending {
			ev := &event.Event{ID: db.NewID(), InboxID: it.ID, Connector: "zendesk", Type: "ticket.updated",
				Entity: "ticket", Reference: "35436", ReceivedAt: it.ReceivedAt}
			if err := tx.PutEvent(ev, nil); err != nil {
				return err
			}
			d := &store.Delivery{Connector: "zendesk", Entity: "ticket", Reference: "35436", EventID: ev.ID,
				Action: "update_ticket", Request: store.Request{Method: "PUT", URL: "https://example.invalid/api/v2/tickets/35436.json"}}
			if err := tx.AddDelivery(d); err != nil {
				return err
			}
			if err := tx.FinishInbox(it.ID, store.InboxProcessed, "", []string{ev.ID}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		panic(err)
	}

	// Delivery worker.
	claimed, err := db.ClaimDue(time.Now(), 10)
	if err != nil {
		panic(err)
	}
	for _, d := range claimed {
		a := &store.Attempt{At: time.Now(), Status: 200, LatencyMS: 42}
		if err := db.FinishDelivery(d.ID, a, store.DeliverySucceeded, time.Time{}, "", nil); err != nil {
			panic(err)
		}
	}
	st, err := db.Stats()
	if err != nil {
		panic(err)
	}
	fmt.Println("claimed:", len(claimed), "succeeded:", st.Deliveries[store.DeliverySucceeded], "inbox pending:", st.InboxPending)
	// Output:
	// duplicate: false
	// duplicate: true
	// claimed: 1 succeeded: 1 inbox pending: 0
}
