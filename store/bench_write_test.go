package store

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hookline/hookline/event"
)

// The write-path benchmarks measure the CPU and allocations of what the
// pipeline and the dispatcher do per event: PutEvent, PutEntity,
// AddDelivery (putDelivery) and FinishAndClaim. They run in transactions
// of benchBatch operations, as the pipeline's batches do, with fsync off
// (NoSync): the commit's page writes are measured, the disk is not.
// Results are per operation (one event, snapshot or delivery); page-B/op
// is what the commits wrote (bbolt's allocated pages), which the fill
// percent of append-ordered buckets bears on, and db-MiB the file's size.

const benchBatch = 128

// openBench opens a store in b.TempDir() without fsync.
func openBench(b *testing.B) *DB {
	b.Helper()
	db, err := Open(filepath.Join(b.TempDir(), "bench.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	db.bolt.NoSync = true
	b.Cleanup(func() {
		if err := db.Close(); err != nil {
			b.Error(err)
		}
	})
	return db
}

// benchFields are the fields of the gateway benchmark's ticket, as the
// generic connector maps them (normalized values).
func benchFields(i int) map[string]any {
	return map[string]any{
		"status":   "open",
		"priority": "high",
		"subject":  "Order 4711 has not arrived yet",
		"text":     "Hello, I ordered a pair of running shoes two weeks ago and the tracking page still says the parcel is at the depot. Could you check what happened?",
		"tags":     []any{"shipping", "vip"},
		"group":    "support-tier-1",
		"owner":    "agent-17",
		"channel":  "email",
		"customer": map[string]any{"name": "Ana Ruiz", "email": "ana.ruiz@example.com", "phone": "+34600111222"},
		"order_id": "4711",
		"seq":      float64(i),
	}
}

// benchEvent is a ticket update like the gateway benchmark's.
func benchEvent(db *DB, i int, at time.Time) (*event.Event, json.RawMessage) {
	ref := "T-" + strconv.Itoa(i%1000)
	e := &event.Event{
		ID: db.NewID(), InboxID: db.NewID(), Connector: "generic", Type: "ticket.updated", Entity: "ticket", Reference: ref,
		OccurredAt: at, ReceivedAt: at.Add(time.Millisecond),
		Actor:   event.Actor{Type: "customer", ID: "cust-5521", Name: "Ana Ruiz"},
		Fields:  benchFields(i),
		Changes: map[string]event.Change{"status": {From: "new", To: "open"}},
		Vars:    map[string]string{"TICKET_REFERENCE": ref, "TICKET_STATUS": "open", "TICKET_PRIORITY": "high", "CUSTOMER_EMAIL": "ana.ruiz@example.com"},
		Raw: json.RawMessage(`{"type":"ticket.updated","id":"run-` + strconv.Itoa(i) + `","status":"open","priority":"high","subject":"Order 4711 has not arrived yet",` +
			`"text":"Hello, I ordered a pair of running shoes two weeks ago and the tracking page still says the parcel is at the depot. Could you check what happened?",` +
			`"tags":["shipping","vip"],"group":"support-tier-1","owner":"agent-17","channel":"email",` +
			`"customer":{"name":"Ana Ruiz","email":"ana.ruiz@example.com","phone":"+34600111222"},` +
			`"actor":{"type":"customer","id":"cust-5521","name":"Ana Ruiz"},"order_id":"4711","occurred_at":"2026-03-02T09:15:00Z"}`),
	}
	trace := json.RawMessage(`{"matched":["bench-open"],"rules":[{"rule":"bench-open","matched":true}]}`)
	return e, trace
}

// benchDelivery is the delivery the benchmark rule makes for one event.
func benchDelivery(i int, eventID string) *Delivery {
	ref := "T-" + strconv.Itoa(i%1000)
	u := event.Update{Kind: event.KindUpdateEntity, RuleID: "bench-open", EventID: eventID, Connector: "generic",
		Entity: "ticket", Reference: ref, Set: map[string]any{"status": "pending", "priority": "normal"},
		AddTags: []string{"hookline"}, Vars: map[string]string{"TICKET_REFERENCE": ref}}
	return &Delivery{Connector: "generic", Entity: "ticket", Reference: ref, RuleID: "bench-open", EventID: eventID,
		Action: "update", Update: u,
		Request: Request{Method: "PUT", URL: "http://127.0.0.1:9/hookline/tickets/" + ref,
			Headers: map[string]string{"Content-Type": "application/json"},
			Body:    []byte(`{"ticket":{"status":"pending","priority":"normal","tags":["hookline"]}}`)}}
}

// reportPages reports the bytes of pages written per operation since
// before (a TxStats.GetPageAlloc reading) and the file size.
func reportPages(b *testing.B, db *DB, before int64) {
	b.Helper()
	b.ReportMetric(float64(pageAlloc(db)-before)/float64(b.N), "page-B/op")
	if fi, err := os.Stat(db.Path()); err == nil {
		b.ReportMetric(float64(fi.Size())/(1<<20), "db-MiB")
	}
}

// pageAlloc is the bytes of pages bbolt's commits have written so far.
func pageAlloc(db *DB) int64 {
	st := db.bolt.Stats()
	return st.TxStats.GetPageAlloc()
}

// runBatches calls op for i in [0, b.N) in transactions of benchBatch.
func runBatches(b *testing.B, db *DB, op func(tx *Tx, i int) error) {
	b.Helper()
	pages := pageAlloc(db)
	defer reportPages(b, db, pages)
	for start := 0; start < b.N; start += benchBatch {
		if err := db.Update(func(tx *Tx) error {
			for i := start; i < min(b.N, start+benchBatch); i++ {
				if err := op(tx, i); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPutEvent(b *testing.B) {
	db := openBench(b)
	at := time.Date(2026, 3, 2, 9, 15, 0, 0, time.UTC)
	events := make([]*event.Event, b.N)
	traces := make([]json.RawMessage, b.N)
	for i := range events {
		events[i], traces[i] = benchEvent(db, i, at)
	}
	b.ReportAllocs()
	b.ResetTimer()
	runBatches(b, db, func(tx *Tx, i int) error { return tx.PutEvent(events[i], traces[i]) })
}

func BenchmarkPutEntity(b *testing.B) {
	db := openBench(b)
	at := time.Date(2026, 3, 2, 9, 15, 0, 0, time.UTC)
	snaps := make([]*event.Snapshot, 1000)
	for i := range snaps {
		snaps[i] = &event.Snapshot{Key: event.EntityKey{Connector: "generic", Entity: "ticket", Reference: "T-" + strconv.Itoa(i)},
			Fields: benchFields(i), Version: 7, CreatedAt: at, UpdatedAt: at.Add(time.Minute), StatusSince: at,
			LastActivityAt: at, LastCustomerMessageAt: at, CustomerMessages: 3,
			Fired: map[string][]time.Time{"bench-open": {at, at.Add(time.Second)}}}
	}
	b.ReportAllocs()
	b.ResetTimer()
	runBatches(b, db, func(tx *Tx, i int) error { return tx.PutEntity(snaps[i%len(snaps)]) })
}

func BenchmarkAddDelivery(b *testing.B) {
	db := openBench(b)
	ds := make([]*Delivery, b.N)
	for i := range ds {
		ds[i] = benchDelivery(i, db.NewID())
	}
	b.ReportAllocs()
	b.ResetTimer()
	runBatches(b, db, func(tx *Tx, i int) error { return tx.AddDelivery(ds[i]) })
}

// BenchmarkFinishAndClaim is the dispatcher's loop: each call finishes the
// deliveries the previous call claimed (succeeded) and claims as many
// again. Deliveries are spread over 1,000 references, so every finish
// makes the next of its queue due.
func BenchmarkFinishAndClaim(b *testing.B) {
	for _, per := range []int{1, 64} {
		b.Run(fmt.Sprintf("batch=%d", per), func(b *testing.B) {
			db := openBench(b)
			n := b.N + per
			for start := 0; start < n; start += benchBatch {
				if err := db.Update(func(tx *Tx) error {
					for i := start; i < min(n, start+benchBatch); i++ {
						if err := tx.AddDelivery(benchDelivery(i, "01JEVENT")); err != nil {
							return err
						}
					}
					return nil
				}); err != nil {
					b.Fatal(err)
				}
			}
			now := db.now()
			claimed, err := db.ClaimDue(now, per)
			if err != nil {
				b.Fatal(err)
			}
			att := &Attempt{At: now, Status: 200, LatencyMS: 1.5}
			results := make([]Finish, 0, per)
			pages := pageAlloc(db)
			defer reportPages(b, db, pages)
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; done += per {
				results = results[:0]
				for _, d := range claimed {
					results = append(results, Finish{ID: d.ID, Attempt: att, State: DeliverySucceeded})
				}
				if claimed, err = db.FinishAndClaim(results, now, per); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
