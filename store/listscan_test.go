package store

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hookline/hookline/event"
)

// A list filter that matches nothing stops after maxListScan records with
// an empty page and a cursor, instead of reading the whole history in one
// read transaction; following the cursors reaches the end ("") with
// nothing found. One table row per admin list: events, deliveries, timers.
func TestListsStopAtTheScanBudget(t *testing.T) {
	const n = maxListScan + 5000
	tests := []struct {
		name string
		seed func(t *testing.T, db *testDB)
		list func(db *DB, cursor string) (found int, next string, err error)
	}{
		{"events by type", seedManyEvents(n), func(db *DB, cursor string) (int, string, error) {
			got, next, err := db.ListEvents(EventFilter{Type: "no.such.type", Limit: 1, Cursor: cursor})
			return len(got), next, err
		}},
		{"deliveries by rule", func(t *testing.T, db *testDB) {
			refs := make([]string, n)
			for i := range refs {
				refs[i] = fmt.Sprint(i)
			}
			addDeliveries(t, db, refs...)
		}, func(db *DB, cursor string) (int, string, error) {
			got, next, err := db.ListDeliveries(DeliveryFilter{Rule: "no-such-rule", Limit: 1, Cursor: cursor})
			return len(got), next, err
		}},
		{"timers by rule", func(t *testing.T, db *testDB) {
			t0 := db.clock.Now()
			db.update(func(tx *Tx) error {
				for i := range n {
					tm := Timer{Key: ticket(fmt.Sprint(i)), Rule: "pending-too-long", Due: t0.Add(time.Duration(i) * time.Second), ArmedAt: t0}
					if err := tx.PutTimer(tm); err != nil {
						return err
					}
				}
				return nil
			})
		}, func(db *DB, cursor string) (int, string, error) {
			got, next, err := db.ListTimers(TimerFilter{Rule: "no-such-rule", Limit: 1, Cursor: cursor})
			return len(got), next, err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := mustOpen(t)
			tt.seed(t, db)
			found, next, err := tt.list(db.DB, "")
			if err != nil {
				t.Fatal(err)
			}
			if found != 0 || next == "" {
				t.Fatalf("a filter matching none of %d records answered %d with cursor %q: it read them all in one transaction", n, found, next)
			}
			pages := 1
			for next != "" {
				if pages++; pages > 3 {
					t.Fatalf("%d pages for %d records at %d a page", pages, n, maxListScan)
				}
				if found, next, err = tt.list(db.DB, next); err != nil || found != 0 {
					t.Fatalf("page %d: %d found, %v", pages, found, err)
				}
			}
			if pages != 2 {
				t.Fatalf("%d pages for %d records at %d a page, want 2", pages, n, maxListScan)
			}
		})
	}
}

// seedManyEvents stores n small events of one type.
func seedManyEvents(n int) func(t *testing.T, db *testDB) {
	return func(t *testing.T, db *testDB) {
		db.update(func(tx *Tx) error {
			for i := range n {
				if i%1000 == 0 {
					db.clock.Advance(time.Second)
				}
				e := &event.Event{ID: db.NewID(), Connector: "zendesk", Type: "ticket.updated", Entity: "ticket",
					Reference: fmt.Sprint(i), OccurredAt: db.clock.Now(), ReceivedAt: db.clock.Now(),
					Fields: map[string]any{"status": "open"}, Raw: json.RawMessage(`{}`)}
				if err := tx.PutEvent(e, nil); err != nil {
					return err
				}
			}
			return nil
		})
	}
}

// pageThrough follows a list's cursors to the end with a small scan budget
// and returns the ids listed; every page holds at most limit, and a short
// page comes with a cursor only when the budget ended it.
func pageThrough(t *testing.T, limit int, list func(cursor string) (ids []string, next string, err error)) []string {
	t.Helper()
	var all []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 200 {
			t.Fatal("the cursor does not advance")
		}
		ids, next, err := list(cursor)
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) > limit {
			t.Fatalf("a page of %d with limit %d", len(ids), limit)
		}
		all = append(all, ids...)
		if next == "" {
			return all
		}
		cursor = next
	}
}

// Whatever the scan budget and page size, paging through a list with its
// cursors gives the list of one unbounded walk: pages cut short by the
// budget go on where they stopped, on the whole-bucket walks and on the
// index walks (entity index for events; state and reference indexes for
// deliveries) alike.
func TestListsPageAcrossTheScanBudget(t *testing.T) {
	budgets := []int{1, 2, 5, 7, 1000}
	limits := []int{1, 2, 3, 100}

	t.Run("events", func(t *testing.T) {
		db := mustOpen(t)
		evs := seedEvents(t, db)
		for _, f := range []EventFilter{
			{}, {Type: "ticket.status_changed"}, {Connector: "freshdesk"}, {Reference: "101"},
			{Connector: "zendesk", Entity: "ticket", Reference: "100"},
			{Connector: "freshdesk", Entity: "ticket", Reference: "101", Type: "ticket.updated"},
			{Since: evs[12].ReceivedAt, Type: "chat.started"}, {Type: "no.such.type"},
		} {
			want := wantEvents(evs, f)
			for _, budget := range budgets {
				for _, limit := range limits {
					got := pageThrough(t, limit, func(cursor string) ([]string, string, error) {
						f := f
						f.Limit, f.Cursor = limit, cursor
						page, next, err := db.listEvents(f, budget)
						return ids(page, func(se StoredEvent) string { return se.Event.ID }), next, err
					})
					if !equalStrings(got, want) {
						t.Fatalf("%+v, budget %d, limit %d\n got %v\nwant %v", f, budget, limit, got, want)
					}
				}
			}
		}
	})

	t.Run("deliveries", func(t *testing.T) {
		db := mustOpen(t)
		var all []string
		for range 4 {
			db.clock.Advance(time.Minute)
			all = append(all, addDeliveries(t, db, "A", "B", "")...)
		}
		claim(t, db, 0) // A1, B1 and the four unordered
		newestFirst := func(keep func(i int) bool) []string {
			var out []string
			for i := len(all) - 1; i >= 0; i-- {
				if keep(i) {
					out = append(out, all[i])
				}
			}
			return out
		}
		for _, tt := range []struct {
			f    DeliveryFilter
			want []string
		}{
			{DeliveryFilter{}, newestFirst(func(int) bool { return true })},
			{DeliveryFilter{Rule: "rule-B"}, newestFirst(func(i int) bool { return i%3 == 1 })},
			{DeliveryFilter{State: DeliveryPending, Rule: "rule-A"}, newestFirst(func(i int) bool { return i%3 == 0 && i > 0 })},
			{DeliveryFilter{Connector: "zendesk", Reference: "A", Rule: "rule-A"}, newestFirst(func(i int) bool { return i%3 == 0 })},
			{DeliveryFilter{Rule: "no-such-rule"}, nil},
		} {
			for _, budget := range budgets {
				for _, limit := range limits {
					got := pageThrough(t, limit, func(cursor string) ([]string, string, error) {
						f := tt.f
						f.Limit, f.Cursor = limit, cursor
						page, next, err := db.listDeliveries(f, budget)
						return ids(page, func(d *Delivery) string { return d.ID }), next, err
					})
					if !equalStrings(got, tt.want) {
						t.Fatalf("%+v, budget %d, limit %d\n got %v\nwant %v", tt.f, budget, limit, got, tt.want)
					}
				}
			}
		}
	})

	t.Run("timers", func(t *testing.T) {
		db := mustOpen(t)
		t0 := db.clock.Now()
		db.update(func(tx *Tx) error {
			for i := range 30 {
				rule := []string{"pending-too-long", "no-reply"}[i%2]
				tm := Timer{Key: ticket(fmt.Sprintf("%02d", i)), Rule: rule, Due: t0.Add(time.Duration(i%10) * time.Minute), ArmedAt: t0}
				if err := tx.PutTimer(tm); err != nil {
					return err
				}
			}
			// Moved later: the due index entry stays early.
			return tx.PutTimer(Timer{Key: ticket("03"), Rule: "no-reply", Due: t0.Add(time.Hour), ArmedAt: t0})
		})
		all, err := db.Timers(TimerFilter{Limit: 1000})
		if err != nil || len(all) != 30 {
			t.Fatalf("all timers: %d %v", len(all), err)
		}
		for _, tt := range []struct {
			f    TimerFilter
			want []Timer
		}{
			{TimerFilter{}, all},
			{TimerFilter{Rule: "no-reply"}, filterTimers(all, func(t Timer) bool { return t.Rule == "no-reply" })},
			{TimerFilter{Entity: "zendesk/ticket/03"}, filterTimers(all, func(t Timer) bool { return t.Key.Reference == "03" })},
			{TimerFilter{Rule: "no-such-rule"}, nil},
		} {
			for _, budget := range budgets {
				for _, limit := range limits {
					got := pageThrough(t, limit, func(cursor string) ([]string, string, error) {
						f := tt.f
						f.Limit, f.Cursor = limit, cursor
						page, next, err := db.listTimers(f, budget)
						return timerIDs(page), next, err
					})
					if !slices.Equal(got, timerIDs(tt.want)) {
						t.Fatalf("%+v, budget %d, limit %d\n got %v\nwant %v", tt.f, budget, limit, got, timerIDs(tt.want))
					}
				}
			}
		}
	})
}
