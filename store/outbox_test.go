package store

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/event"
)

// addDeliveries adds deliveries with the given references (connector
// "zendesk") in one transaction and returns their ids in order.
func addDeliveries(t *testing.T, db *testDB, refs ...string) []string {
	t.Helper()
	var out []string
	db.update(func(tx *Tx) error {
		for _, ref := range refs {
			d := &Delivery{
				Connector: "zendesk", Entity: "ticket", Reference: ref, RuleID: "rule-" + ref, EventID: "ev",
				Action:  "update_ticket",
				Update:  event.Update{Kind: event.KindUpdateEntity, Connector: "zendesk", Reference: ref, Set: map[string]any{"status": "solved"}},
				Request: Request{Method: "PUT", URL: "https://example.zendesk.com/api/v2/tickets/" + ref + ".json", Body: []byte(`{"ticket":{"status":"solved"}}`)},
				Hops:    1,
			}
			if err := tx.AddDelivery(d); err != nil {
				return err
			}
			out = append(out, d.ID)
		}
		return nil
	})
	return out
}

func claim(t *testing.T, db *testDB, limit int) []string {
	t.Helper()
	ds, err := db.ClaimDue(db.clock.Now(), limit)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.State != DeliveryInFlight {
			t.Fatalf("claimed %s in state %s", d.ID, d.State)
		}
	}
	got := ids(ds, func(d *Delivery) string { return d.ID })
	sort.Strings(got)
	return got
}

func sorted(xs ...string) []string {
	out := append([]string(nil), xs...)
	sort.Strings(out)
	return out
}

func mustCheck(t *testing.T, db *testDB) {
	t.Helper()
	if err := checkOutbox(db.DB); err != nil {
		t.Fatal(err)
	}
}

func TestDeliveryOrderingPerReference(t *testing.T) {
	db := mustOpen(t)
	d := addDeliveries(t, db, "A", "A", "B", "", "", "A")
	a1, a2, b1, u1, u2, a3 := d[0], d[1], d[2], d[3], d[4], d[5]
	mustCheck(t, db)

	if got := claim(t, db, 0); !equalStrings(got, sorted(a1, b1, u1, u2)) {
		t.Fatalf("first claim %v, want heads A1 B1 and both unordered", got)
	}
	if got := claim(t, db, 0); len(got) != 0 {
		t.Fatalf("claimed %v while queue heads are in flight", got)
	}
	mustCheck(t, db)

	// A1 is throttled (no attempt) and put back for a minute: A2 stays blocked.
	if err := db.FinishDelivery(a1, nil, DeliveryPending, db.clock.Now().Add(time.Minute), "throttled", nil); err != nil {
		t.Fatal(err)
	}
	if got := claim(t, db, 0); len(got) != 0 {
		t.Fatalf("claimed %v before A1 is due", got)
	}
	if next, ok, _ := db.NextDeliveryDue(); !ok || !next.Equal(db.clock.Now().Add(time.Minute)) {
		t.Fatalf("next due %v %v", next, ok)
	}
	db.clock.Advance(time.Minute)
	if got := claim(t, db, 0); !equalStrings(got, []string{a1}) {
		t.Fatalf("claim after a minute %v, want A1 again", got)
	}
	mustCheck(t, db)

	// A1 succeeds: A2 becomes the head and is due at once.
	if err := db.FinishDelivery(a1, &Attempt{At: db.clock.Now(), Status: 200, LatencyMS: 12.5}, DeliverySucceeded, time.Time{}, "", map[string]string{"ticket_id": "35436"}); err != nil {
		t.Fatal(err)
	}
	if got := claim(t, db, 0); !equalStrings(got, []string{a2}) {
		t.Fatalf("claim after A1 succeeded %v, want A2", got)
	}
	// A2 fails for good: A3 is next.
	if err := db.FinishDelivery(a2, &Attempt{At: db.clock.Now(), Status: 422}, DeliveryFailed, time.Time{}, "422 unprocessable", nil); err != nil {
		t.Fatal(err)
	}
	if got := claim(t, db, 0); !equalStrings(got, []string{a3}) {
		t.Fatalf("claim after A2 failed %v, want A3", got)
	}
	mustCheck(t, db)

	got, err := db.Delivery(a1)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != DeliverySucceeded || len(got.Attempts) != 1 || got.Attempts[0].Status != 200 ||
		got.Captured["ticket_id"] != "35436" || string(got.Request.Body) != `{"ticket":{"status":"solved"}}` ||
		got.Update.Set["status"] != "solved" || got.Hops != 1 {
		t.Fatalf("A1 after success: %+v", got)
	}
	st, _ := db.Stats()
	if st.Deliveries[DeliverySucceeded] != 1 || st.Deliveries[DeliveryFailed] != 1 || st.Deliveries[DeliveryInFlight] != 4 ||
		st.Deliveries[DeliveryPending] != 0 {
		t.Fatalf("stats %+v", st.Deliveries)
	}
}

func TestFinishDeliveryDetails(t *testing.T) {
	db := mustOpen(t)
	id := addDeliveries(t, db, "A")[0]
	claim(t, db, 0)
	long := strings.Repeat("é", 3000) // 6000 bytes
	if err := db.FinishDelivery(id, &Attempt{Status: 503, Error: "unavailable", Response: long}, DeliveryPending, time.Time{}, "retry", map[string]string{"a": "1"}); err != nil {
		t.Fatal(err)
	}
	claim(t, db, 0)
	if err := db.FinishDelivery(id, nil, DeliveryPending, time.Time{}, "circuit open", map[string]string{"b": "2"}); err != nil {
		t.Fatal(err)
	}
	d, _ := db.Delivery(id)
	if len(d.Attempts) != 1 {
		t.Fatalf("%d attempts, want 1 (nil attempt adds none)", len(d.Attempts))
	}
	r := d.Attempts[0].Response
	if len(r) > maxResponse || len(r) < maxResponse-1 || !strings.HasPrefix(long, r) {
		t.Fatalf("response kept %d bytes", len(r))
	}
	if d.Captured["a"] != "1" || d.Captured["b"] != "2" || d.Reason != "circuit open" || !d.NextAt.Equal(db.clock.Now()) {
		t.Fatalf("delivery %+v", d)
	}
}

func TestDeliveryStateRules(t *testing.T) {
	// Each case brings one delivery into a state, then tries an operation.
	reach := map[string]func(t *testing.T, db *testDB, id string){
		DeliveryPending:  func(*testing.T, *testDB, string) {},
		DeliveryInFlight: func(t *testing.T, db *testDB, id string) { claim(t, db, 0) },
		DeliverySucceeded: func(t *testing.T, db *testDB, id string) {
			claim(t, db, 0)
			if err := db.FinishDelivery(id, nil, DeliverySucceeded, time.Time{}, "", nil); err != nil {
				t.Fatal(err)
			}
		},
		DeliveryFailed: func(t *testing.T, db *testDB, id string) {
			claim(t, db, 0)
			if err := db.FinishDelivery(id, nil, DeliveryFailed, time.Time{}, "gave up", nil); err != nil {
				t.Fatal(err)
			}
		},
		DeliveryCancelled: func(t *testing.T, db *testDB, id string) {
			if err := db.CancelDelivery(id, "admin"); err != nil {
				t.Fatal(err)
			}
		},
	}
	ops := map[string]func(db *testDB, id string) error{
		"retry":  func(db *testDB, id string) error { return db.RetryDelivery(id, db.clock.Now()) },
		"cancel": func(db *testDB, id string) error { return db.CancelDelivery(id, "admin") },
		"finish": func(db *testDB, id string) error {
			return db.FinishDelivery(id, nil, DeliverySucceeded, time.Time{}, "", nil)
		},
	}
	allowed := map[string]map[string]string{ // op -> from state -> resulting state ("" = ErrState)
		"retry":  {DeliveryFailed: DeliveryPending, DeliveryCancelled: DeliveryPending},
		"cancel": {DeliveryPending: DeliveryCancelled},
		"finish": {DeliveryInFlight: DeliverySucceeded},
	}
	for op, run := range ops {
		for from, setup := range reach {
			t.Run(op+" from "+from, func(t *testing.T) {
				db := mustOpen(t)
				id := addDeliveries(t, db, "A")[0]
				setup(t, db, id)
				err := run(db, id)
				want := allowed[op][from]
				d, _ := db.Delivery(id)
				if want == "" {
					if !errors.Is(err, ErrState) {
						t.Fatalf("err %v, want ErrState", err)
					}
					if d.State != from {
						t.Fatalf("state changed to %s on a refused %s", d.State, op)
					}
				} else if err != nil || d.State != want {
					t.Fatalf("err %v, state %s; want nil, %s", err, d.State, want)
				}
				mustCheck(t, db)
			})
		}
	}
	db := mustOpen(t)
	for name, err := range map[string]error{
		"retry":  db.RetryDelivery("nope", db.clock.Now()),
		"cancel": db.CancelDelivery("nope", ""),
		"finish": db.FinishDelivery("nope", nil, DeliveryFailed, time.Time{}, "", nil),
	} {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%s unknown id: err %v, want ErrNotFound", name, err)
		}
	}
	id := addDeliveries(t, db, "A")[0]
	claim(t, db, 0)
	for _, bad := range []string{DeliveryInFlight, "done"} {
		if err := db.FinishDelivery(id, nil, bad, time.Time{}, "", nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("finish to %q: err %v, want ErrInvalid", bad, err)
		}
	}
}

func TestRetryGoesBackToOriginalPosition(t *testing.T) {
	db := mustOpen(t)
	d := addDeliveries(t, db, "A", "A", "A")
	a1, a2, a3 := d[0], d[1], d[2]
	claim(t, db, 0)
	if err := db.FinishDelivery(a1, nil, DeliveryFailed, time.Time{}, "gave up", nil); err != nil {
		t.Fatal(err)
	}
	// A2 is now the due head; retrying A1 puts A1 in front of it again.
	if err := db.RetryDelivery(a1, db.clock.Now()); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, db)
	if got := claim(t, db, 0); !equalStrings(got, []string{a1}) {
		t.Fatalf("claim after retry %v, want A1 (same id)", got)
	}
	if err := db.FinishDelivery(a1, nil, DeliverySucceeded, time.Time{}, "", nil); err != nil {
		t.Fatal(err)
	}
	if got := claim(t, db, 0); !equalStrings(got, []string{a2}) {
		t.Fatalf("claim %v, want A2", got)
	}
	if err := db.FinishDelivery(a2, nil, DeliverySucceeded, time.Time{}, "", nil); err != nil {
		t.Fatal(err)
	}
	// A retry while a later delivery is in flight waits for it: fail A3,
	// add A4 and claim it, then retry A3 (which sorts before A4).
	claim(t, db, 0) // A3 in flight
	if err := db.FinishDelivery(a3, nil, DeliveryFailed, time.Time{}, "x", nil); err != nil {
		t.Fatal(err)
	}
	a4 := addDeliveries(t, db, "A")[0]
	if got := claim(t, db, 0); !equalStrings(got, []string{a4}) {
		t.Fatalf("claim %v, want A4", got)
	}
	if err := db.RetryDelivery(a3, db.clock.Now()); err != nil { // A3 < A4, A4 in flight
		t.Fatal(err)
	}
	mustCheck(t, db)
	if got := claim(t, db, 0); len(got) != 0 {
		t.Fatalf("claimed %v while A4 is in flight", got)
	}
	if err := db.FinishDelivery(a4, nil, DeliverySucceeded, time.Time{}, "", nil); err != nil {
		t.Fatal(err)
	}
	if got := claim(t, db, 0); !equalStrings(got, []string{a3}) {
		t.Fatalf("claim %v, want retried A3", got)
	}
	mustCheck(t, db)
}

func TestCancelAdvancesQueue(t *testing.T) {
	db := mustOpen(t)
	d := addDeliveries(t, db, "A", "A", "A", "")
	a1, a2, a3, u := d[0], d[1], d[2], d[3]
	if err := db.CancelDelivery(a2, "not head"); err != nil {
		t.Fatal(err)
	}
	if err := db.CancelDelivery(u, "unordered"); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, db)
	if err := db.CancelDelivery(a1, "head"); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, db)
	if got := claim(t, db, 0); !equalStrings(got, []string{a3}) {
		t.Fatalf("claim %v, want A3", got)
	}
	c, _ := db.Delivery(a1)
	if c.State != DeliveryCancelled || c.Reason != "head" {
		t.Fatalf("cancelled delivery %+v", c)
	}
}

func TestInFlightRecoveredOnReopen(t *testing.T) {
	db := mustOpen(t)
	d := addDeliveries(t, db, "A", "A", "")
	a1, a2, u := d[0], d[1], d[2]
	if got := claim(t, db, 0); !equalStrings(got, sorted(a1, u)) {
		t.Fatalf("claim %v", got)
	}
	db.clock.Advance(time.Hour)
	db.reopen() // as after a crash: nothing was finished
	mustCheck(t, db)
	for _, id := range []string{a1, u} {
		got, _ := db.Delivery(id)
		if got.State != DeliveryPending || !got.NextAt.Equal(db.clock.Now()) {
			t.Fatalf("%s after reopen: state %s next %v", id, got.State, got.NextAt)
		}
	}
	if got := claim(t, db, 0); !equalStrings(got, sorted(a1, u)) {
		t.Fatalf("claim after reopen %v, want A1 and U again (A2 stays behind A1)", got)
	}
	if got, _ := db.Delivery(a2); got.State != DeliveryPending {
		t.Fatalf("A2 is %s, want pending", got.State)
	}
}

func TestFinishDeliveriesBatch(t *testing.T) {
	db := mustOpen(t)
	d := addDeliveries(t, db, "A", "B", "C", "A")
	claim(t, db, 0)
	err := db.FinishDeliveries([]Finish{
		{ID: d[0], State: DeliverySucceeded, Attempt: &Attempt{Status: 200}},
		{ID: d[1], State: DeliveryPending, NextAt: db.clock.Now().Add(time.Minute), Reason: "429"},
		{ID: d[3], State: DeliverySucceeded}, // not in flight: skipped
		{ID: "missing", State: DeliverySucceeded},
		{ID: d[2], State: DeliveryFailed, Reason: "400"},
	})
	if !errors.Is(err, ErrState) || !errors.Is(err, ErrNotFound) {
		t.Fatalf("err %v, want ErrState and ErrNotFound joined", err)
	}
	want := map[string]string{d[0]: DeliverySucceeded, d[1]: DeliveryPending, d[2]: DeliveryFailed, d[3]: DeliveryPending}
	for id, state := range want {
		got, _ := db.Delivery(id)
		if got.State != state {
			t.Errorf("%s: state %s, want %s", id, got.State, state)
		}
	}
	mustCheck(t, db)
	if got := claim(t, db, 0); !equalStrings(got, []string{d[3]}) {
		t.Fatalf("claim %v, want the second A", got)
	}
}

func TestListDeliveries(t *testing.T) {
	db := mustOpen(t)
	var all []string
	for range 4 {
		db.clock.Advance(time.Minute)
		all = append(all, addDeliveries(t, db, "A", "B", "")...)
	}
	claim(t, db, 0) // A1, B1 and the four unordered
	if err := db.FinishDelivery(all[0], nil, DeliveryFailed, time.Time{}, "", nil); err != nil {
		t.Fatal(err)
	}
	mid := db.clock.Now().Add(-90 * time.Second) // between batch 2 and 3

	newestFirst := func(keep func(i int) bool) []string {
		var out []string
		for i := len(all) - 1; i >= 0; i-- {
			if keep(i) {
				out = append(out, all[i])
			}
		}
		return out
	}
	tests := []struct {
		name string
		f    DeliveryFilter
		want []string
	}{
		{"all", DeliveryFilter{}, newestFirst(func(int) bool { return true })},
		{"state failed", DeliveryFilter{State: DeliveryFailed}, []string{all[0]}},
		{"state pending", DeliveryFilter{State: DeliveryPending}, newestFirst(func(i int) bool { return i%3 != 2 && i > 1 })},
		{"state in flight", DeliveryFilter{State: DeliveryInFlight}, newestFirst(func(i int) bool { return i%3 == 2 || i == 1 })},
		{"reference", DeliveryFilter{Connector: "zendesk", Reference: "B"}, newestFirst(func(i int) bool { return i%3 == 1 })},
		{"rule", DeliveryFilter{Rule: "rule-A"}, newestFirst(func(i int) bool { return i%3 == 0 })},
		{"since", DeliveryFilter{Since: mid}, newestFirst(func(i int) bool { return i >= 6 })},
		{"reference since", DeliveryFilter{Connector: "zendesk", Reference: "A", Since: mid}, newestFirst(func(i int) bool { return i >= 6 && i%3 == 0 })},
		{"state and connector", DeliveryFilter{State: DeliveryPending, Connector: "other"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, next, err := db.ListDeliveries(tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if next != "" {
				t.Fatalf("cursor %q on a complete page", next)
			}
			if ids := ids(got, func(d *Delivery) string { return d.ID }); !equalStrings(ids, tt.want) {
				t.Fatalf("\n got %v\nwant %v", ids, tt.want)
			}
			var paged []string
			f := tt.f
			f.Limit = 3
			for range 20 {
				got, next, err := db.ListDeliveries(f)
				if err != nil {
					t.Fatal(err)
				}
				paged = append(paged, ids(got, func(d *Delivery) string { return d.ID })...)
				if next == "" {
					break
				}
				f.Cursor = next
			}
			if !equalStrings(paged, tt.want) {
				t.Fatalf("paged\n got %v\nwant %v", paged, tt.want)
			}
		})
	}
	if _, _, err := db.ListDeliveries(DeliveryFilter{State: "bogus"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bogus state: %v", err)
	}
}

func TestAddDeliveryValidation(t *testing.T) {
	db := mustOpen(t)
	given := &Delivery{ID: "given", Connector: "zendesk", Reference: "1", NextAt: db.clock.Now().Add(time.Hour)}
	db.update(func(tx *Tx) error { return tx.AddDelivery(given) })
	if given.State != DeliveryPending || !given.CreatedAt.Equal(db.clock.Now()) {
		t.Fatalf("added %+v", given)
	}
	if got := claim(t, db, 0); len(got) != 0 {
		t.Fatalf("claimed %v before NextAt", got)
	}
	for name, d := range map[string]*Delivery{
		"duplicate id":  {ID: "given", Connector: "zendesk"},
		"NUL reference": {Connector: "zendesk", Reference: "a\x00b"},
		"NUL connector": {Connector: "zen\x00desk"},
		"nil":           nil,
	} {
		if err := db.Update(func(tx *Tx) error { return tx.AddDelivery(d) }); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err %v, want ErrInvalid", name, err)
		}
	}
	mustCheck(t, db)
}

// A delivery added failed (the gateway could not render its request) stays
// failed with its reason: it is never due, never claimed, does not hold up
// its queue, and RetryDelivery puts it back.
func TestAddFailedDelivery(t *testing.T) {
	db := mustOpen(t)
	const reason = "render update_entity for connector zendesk: cannot set channel"
	var failed []*Delivery
	var next *Delivery
	db.update(func(tx *Tx) error {
		for _, claimed := range []bool{false, true} {
			d := &Delivery{Connector: "zendesk", Entity: "ticket", Reference: "1", RuleID: "r", EventID: "ev",
				Update: event.Update{Kind: event.KindUpdateEntity, Connector: "zendesk", Reference: "1", Set: map[string]any{"channel": "email"}},
				State:  DeliveryFailed, Reason: reason}
			if claimed {
				got, err := tx.AddDeliveryClaimed(d)
				if err != nil || got {
					t.Errorf("AddDeliveryClaimed of a failed delivery: claimed %v, %v", got, err)
				}
			} else if err := tx.AddDelivery(d); err != nil {
				return err
			}
			failed = append(failed, d)
		}
		next = &Delivery{Connector: "zendesk", Entity: "ticket", Reference: "1", RuleID: "r2", EventID: "ev",
			Update:  event.Update{Kind: event.KindUpdateEntity, Connector: "zendesk", Reference: "1", Set: map[string]any{"status": "open"}},
			Request: Request{Method: "PUT", URL: "https://example.zendesk.com/api/v2/tickets/1.json"}}
		return tx.AddDelivery(next)
	})
	mustCheck(t, db)
	for _, d := range failed {
		stored, err := db.Delivery(d.ID)
		if err != nil || stored.State != DeliveryFailed || stored.Reason != reason || len(stored.Attempts) != 0 {
			t.Fatalf("stored %+v, %v; want failed with the reason and no attempt", stored, err)
		}
	}
	if ids := claim(t, db, 0); !equalStrings(ids, []string{next.ID}) {
		t.Fatalf("claimed %v, want only the pending delivery %s", ids, next.ID)
	}
	if err := db.FinishDelivery(next.ID, &Attempt{At: db.clock.Now(), Status: 200}, DeliverySucceeded, time.Time{}, "", nil); err != nil {
		t.Fatal(err)
	}
	// Without a request it cannot be sent as it is: a retry must build it.
	if err := db.RetryDelivery(failed[0].ID, db.clock.Now()); !errors.Is(err, ErrState) {
		t.Fatalf("retry without building its request: %v, want ErrState", err)
	}
	build := func(tx *Tx, d *Delivery) error {
		d.Request = Request{Method: "PUT", URL: "https://example.zendesk.com/api/v2/tickets/1.json"}
		return nil
	}
	if err := db.RetryDeliveryWith(failed[0].ID, db.clock.Now(), build); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, db)
	if ids := claim(t, db, 0); !equalStrings(ids, []string{failed[0].ID}) {
		t.Fatalf("after the retry claimed %v, want %s", ids, failed[0].ID)
	}
	if d, _ := db.Delivery(failed[0].ID); d.Request.URL == "" {
		t.Fatal("the built request was not stored")
	}
}

// AddDeliveryClaimed claims a new delivery in its own write only when it is
// due at once with nothing else of its queue waiting or in flight; the
// store is then exactly as after AddDelivery and ClaimDue.
func TestAddDeliveryClaimed(t *testing.T) {
	db := mustOpen(t)
	type add struct {
		ref       string
		later     bool
		wantClaim bool
	}
	adds := []add{
		{ref: "A", wantClaim: true},
		{ref: "A", wantClaim: false}, // behind A's first, in flight
		{ref: "B", wantClaim: true},
		{ref: "", wantClaim: true},                // unordered: never queued
		{ref: "C", later: true, wantClaim: false}, // not due yet
		{ref: "C", wantClaim: false},              // behind C's first, pending
	}
	var got []*Delivery
	db.update(func(tx *Tx) error {
		for i, a := range adds {
			d := &Delivery{Connector: "zendesk", Entity: "ticket", Reference: a.ref, RuleID: "r", EventID: "ev",
				Update:  event.Update{Kind: event.KindUpdateEntity, Connector: "zendesk", Reference: a.ref, Set: map[string]any{"status": "solved"}},
				Request: Request{Method: "PUT", URL: "https://example.zendesk.com/api/v2/tickets/1.json"}}
			if a.later {
				d.NextAt = db.clock.Now().Add(time.Minute)
			}
			claimed, err := tx.AddDeliveryClaimed(d)
			if err != nil {
				return err
			}
			if claimed != a.wantClaim {
				t.Errorf("add %d (ref %q): claimed %v, want %v", i, a.ref, claimed, a.wantClaim)
			}
			want := DeliveryPending
			if a.wantClaim {
				want = DeliveryInFlight
			}
			if d.State != want {
				t.Errorf("add %d: state %s, want %s", i, d.State, want)
			}
			got = append(got, d)
		}
		return nil
	})
	mustCheck(t, db)
	a1, a2, b1, u1, c1, c2 := got[0], got[1], got[2], got[3], got[4], got[5]
	for _, d := range []*Delivery{a1, b1, u1} {
		stored, err := db.Delivery(d.ID)
		if err != nil || stored.State != DeliveryInFlight {
			t.Fatalf("stored %s: %+v %v, want in flight", d.ID, stored, err)
		}
	}
	if ids := claim(t, db, 0); len(ids) != 0 {
		t.Fatalf("claimed %v: every due head is already in flight", ids)
	}
	if err := db.FinishDelivery(a1.ID, &Attempt{At: db.clock.Now(), Status: 200}, DeliverySucceeded, time.Time{}, "", nil); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, db)
	if ids := claim(t, db, 0); !equalStrings(ids, []string{a2.ID}) {
		t.Fatalf("after A's first succeeded claimed %v, want A's second %s", ids, a2.ID)
	}
	db.clock.Advance(2 * time.Minute)
	if ids := claim(t, db, 0); !equalStrings(ids, []string{c1.ID}) {
		t.Fatalf("claimed %v, want C's first %s once due", ids, c1.ID)
	}
	_ = c2
	// A crash with claimed deliveries in flight: they are due again after
	// the restart, like any claimed delivery.
	db.reopen()
	mustCheck(t, db)
	if ids := claim(t, db, 0); !equalStrings(ids, sorted(b1.ID, u1.ID, a2.ID, c1.ID)) {
		t.Fatalf("after restart claimed %v, want the in-flight ones again", ids)
	}
}

// CancelPendingByReferencePrefix cancels the pending deliveries of one
// connector whose reference starts with a prefix (a REST-hook
// subscription's: "<subscription>/"), over several transactions, and
// nothing else: not those in flight or finished, not a reference that only
// shares the first characters, not another connector's.
func TestCancelPendingByReferencePrefix(t *testing.T) {
	db := mustOpen(t)
	var mine []string
	var others []string
	db.update(func(tx *Tx) error {
		add := func(connector, ref string) (string, error) {
			d := &Delivery{Connector: connector, Entity: "ticket", Reference: ref,
				Update:  event.Update{Kind: event.KindCallWebhook},
				Request: Request{Method: "POST", URL: "https://hooks.example.com/h", Body: []byte(`{}`)}}
			err := tx.AddDelivery(d)
			return d.ID, err
		}
		for i := range 2*cancelBatch + 100 { // two per reference: queue heads and entries behind them
			id, err := add("rest_hooks", fmt.Sprintf("s1/zendesk/%d", i/2))
			if err != nil {
				return err
			}
			mine = append(mine, id)
		}
		for _, o := range [][2]string{{"rest_hooks", "s10/zendesk/1"}, {"rest_hooks", "s1"}, {"other", "s1/zendesk/1"}, {"rest_hooks", ""}} {
			id, err := add(o[0], o[1])
			if err != nil {
				return err
			}
			others = append(others, id)
		}
		return nil
	})
	// One of the subscription's deliveries is in flight, one succeeded.
	ds, err := db.ClaimDue(db.clock.Now(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	var inFlight, done string
	for _, d := range ds {
		switch d.Connector + " " + d.Reference {
		case "rest_hooks s1/zendesk/0":
			done = d.ID
		case "rest_hooks s1/zendesk/1":
			inFlight = d.ID
		default:
			if err := db.FinishDelivery(d.ID, nil, DeliveryPending, time.Time{}, "put back", nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := db.FinishDelivery(done, &Attempt{At: db.clock.Now(), Status: 200}, DeliverySucceeded, time.Time{}, "", nil); err != nil {
		t.Fatal(err)
	}
	n, err := db.CancelPendingByReferencePrefix("rest_hooks", "s1/", "target gone (410)")
	if err != nil {
		t.Fatal(err)
	}
	if want := len(mine) - 2; n != want {
		t.Fatalf("cancelled %d, want %d", n, want)
	}
	mustCheck(t, db)
	for _, id := range mine {
		d, err := db.Delivery(id)
		if err != nil {
			t.Fatal(err)
		}
		want, reason := DeliveryCancelled, "target gone (410)"
		switch id {
		case done:
			want, reason = DeliverySucceeded, ""
		case inFlight:
			want, reason = DeliveryInFlight, ""
		}
		if d.State != want || d.Reason != reason {
			t.Fatalf("delivery %s of %s: %s %q, want %s %q", id, d.Reference, d.State, d.Reason, want, reason)
		}
	}
	for _, id := range others {
		if d, _ := db.Delivery(id); d.State != DeliveryPending {
			t.Fatalf("delivery %s of %s/%s: %s, want pending (not the subscription's)", id, d.Connector, d.Reference, d.State)
		}
	}
	// The queue of the one in flight has nothing behind it any more.
	if err := db.FinishDelivery(inFlight, &Attempt{At: db.clock.Now(), Status: 503}, DeliveryPending, time.Time{}, "retry", nil); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, db)
	if got := claim(t, db, 0); !equalStrings(got, sorted(append([]string{inFlight}, others...)...)) {
		t.Fatalf("claim after the cancel: %v, want the put-back delivery and the others", got)
	}
}

// A call_webhook waits in a queue of its own, per destination host and
// reference: it neither holds nor waits for the connector's updates of the
// entity, and call_webhooks to one host keep their order.
func TestCallWebhookHasAQueueOfItsOwn(t *testing.T) {
	db := mustOpen(t)
	var ids []string
	db.update(func(tx *Tx) error {
		for _, url := range []string{"https://ops.example.com/a", "", "https://OPS.example.com/b", "https://chat.example.com/c"} {
			d := &Delivery{Connector: "zendesk", Entity: "ticket", Reference: "T1", Action: "update_ticket",
				Update:  event.Update{Kind: event.KindUpdateEntity},
				Request: Request{Method: "PUT", URL: "https://example.zendesk.com/api/v2/tickets/T1.json"}}
			if url != "" {
				d.Action, d.Update.Kind, d.Request = "", event.KindCallWebhook, Request{Method: "POST", URL: url}
			}
			if err := tx.AddDelivery(d); err != nil {
				return err
			}
			ids = append(ids, d.ID)
		}
		return nil
	})
	mustCheck(t, db)
	opsA, update, opsB, chat := ids[0], ids[1], ids[2], ids[3]
	if got := claim(t, db, 0); !equalStrings(got, sorted(opsA, update, chat)) {
		t.Fatalf("claim %v, want the first webhook to ops, the update and the webhook to chat", got)
	}
	if err := db.FinishDelivery(opsA, &Attempt{At: db.clock.Now(), Status: 200}, DeliverySucceeded, time.Time{}, "", nil); err != nil {
		t.Fatal(err)
	}
	if got := claim(t, db, 0); !equalStrings(got, []string{opsB}) {
		t.Fatalf("claim %v, want the second webhook to ops after the first", got)
	}
	mustCheck(t, db)
}
