package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"

	"github.com/hookline/hookline/event"
)

// retFixture is a real WhatsApp Cloud API payload: the body of inbox items
// and the raw payload of events in these tests.
func retFixture(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "fixtures", "whatsapp-cloud-text-message.json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// retAccept accepts an item with the fixture body and returns its id.
func retAccept(t testing.TB, db *testDB, body []byte, key string) string {
	t.Helper()
	res, err := db.Accept(context.Background(), &InboxItem{
		Connector: "whatsapp", Method: "POST", Path: "/hooks/whatsapp", ContentType: "application/json",
		Headers: map[string][]string{"Content-Type": {"application/json"}}, Body: body, DedupeKey: key,
	}, 72*time.Hour)
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	return res.ID
}

// retFinish finishes inbox items with the given states.
func retFinish(t testing.TB, db *testDB, states map[string]string) {
	t.Helper()
	db.update(func(tx *Tx) error {
		for id, st := range states {
			if err := tx.FinishInbox(id, st, "", nil); err != nil {
				return err
			}
		}
		return nil
	})
}

func TestPruneInboxKeepsPendingAndNewItems(t *testing.T) {
	db := mustOpen(t)
	body := retFixture(t)
	t0 := db.clock.Now()
	processed, unmapped, failed := retAccept(t, db, body, "k1"), retAccept(t, db, body, "k2"), retAccept(t, db, body, "k3")
	pending := retAccept(t, db, body, "k4")
	retFinish(t, db, map[string]string{processed: InboxProcessed, unmapped: InboxUnmapped, failed: InboxFailed})

	db.clock.Advance(10 * 24 * time.Hour)
	newDone, newPending := retAccept(t, db, body, "k5"), retAccept(t, db, body, "k6")
	retFinish(t, db, map[string]string{newDone: InboxProcessed})

	res, err := db.PruneInbox(context.Background(), t0.Add(5*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if res.Deleted != 3 || res.Kept != 1 {
		t.Fatalf("prune = %+v, want 3 deleted and the old pending item kept", res)
	}
	for _, id := range []string{processed, unmapped, failed} {
		if _, err := db.Inbox(id); !errors.Is(err, ErrNotFound) {
			t.Errorf("pruned item %s: Inbox = %v, want ErrNotFound", id, err)
		}
	}
	for _, id := range []string{processed, unmapped} {
		err := db.Update(func(tx *Tx) error { return tx.FinishInbox(id, InboxProcessed, "again", nil) })
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("finishing pruned item %s: %v, want ErrNotFound", id, err)
		}
	}
	for _, id := range []string{pending, newDone, newPending} {
		if _, err := db.Inbox(id); err != nil {
			t.Errorf("item %s should survive: %v", id, err)
		}
	}
	items, err := db.PendingInbox("", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(items, func(it *InboxItem) string { return it.ID }); !slices.Equal(got, []string{pending, newPending}) {
		t.Errorf("pending after prune = %v, want %v", got, []string{pending, newPending})
	}
	st, err := db.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.InboxPending != 2 {
		t.Errorf("Stats.InboxPending = %d, want 2", st.InboxPending)
	}
	if err := checkCounters(db.DB); err != nil {
		t.Error(err)
	}
	// The dedupe keys of pruned items live on until their own expiry: a
	// repeat is still a duplicate.
	if res, err := db.Accept(context.Background(), &InboxItem{Connector: "whatsapp", Body: body, DedupeKey: "k1"}, 30*24*time.Hour); err != nil || !res.Duplicate || res.ID != processed {
		t.Errorf("repeat of a pruned item's key: %+v, %v; want a duplicate of %s", res, err, processed)
	}

	// Everything old is pending or gone: a second prune deletes nothing.
	if res, err := db.PruneInbox(context.Background(), t0.Add(5*24*time.Hour)); err != nil || res.Deleted != 0 || res.Kept != 1 {
		t.Errorf("second prune = %+v, %v; want nothing deleted, the pending item kept", res, err)
	}
	// Once processed, the old item goes too.
	retFinish(t, db, map[string]string{pending: InboxProcessed})
	if res, err := db.PruneInbox(context.Background(), t0.Add(5*24*time.Hour)); err != nil || res.Deleted != 1 || res.Kept != 0 {
		t.Errorf("prune after processing = %+v, %v; want the item deleted", res, err)
	}
	if err := checkCounters(db.DB); err != nil {
		t.Error(err)
	}
}

// An item the pipeline finished while its journal record was still to be
// applied must not be pruned before the applier has seen it: the applier
// would otherwise write it back as pending.
func TestPrunedInboxItemStaysGoneAfterReopen(t *testing.T) {
	db := mustOpen(t)
	t0 := db.clock.Now()
	id := retAccept(t, db, retFixture(t), "j1")
	retFinish(t, db, map[string]string{id: InboxProcessed})
	db.clock.Advance(48 * time.Hour)
	res, err := db.PruneInbox(context.Background(), t0.Add(24*time.Hour))
	if err != nil || res.Deleted != 1 {
		t.Fatalf("prune = %+v, %v; want the processed item deleted", res, err)
	}
	db.reopen() // replays nothing: the journal was applied before the prune
	if _, err := db.Inbox(id); !errors.Is(err, ErrNotFound) {
		t.Errorf("after reopen: Inbox = %v, want ErrNotFound (the item came back)", err)
	}
	if err := checkCounters(db.DB); err != nil {
		t.Error(err)
	}
}

// An item finished out of turn (FinishInbox wrote it while its journal
// record was still queued) stays until the applier has seen the record.
func TestPruneInboxHoldsItemsTheApplierHasNotSeen(t *testing.T) {
	db := mustOpen(t)
	t0 := db.clock.Now()
	id := retAccept(t, db, retFixture(t), "h1")
	retFinish(t, db, map[string]string{id: InboxProcessed})
	if err := db.flushJournal(); err != nil {
		t.Fatal(err)
	}
	// Plant the state the race leaves: the item final in bbolt, its
	// record still unapplied.
	var applied uint64
	if err := db.View(func(tx *Tx) error { applied = appliedSeq(tx.tx); return nil }); err != nil {
		t.Fatal(err)
	}
	db.umu.Lock()
	db.unapplied[id] = &jrec{seq: applied + 1, id: []byte(id)}
	db.umu.Unlock()
	db.clock.Advance(48 * time.Hour)
	res, err := db.PruneInbox(context.Background(), t0.Add(24*time.Hour))
	if err != nil || res.Deleted != 0 || res.Kept != 1 {
		t.Fatalf("prune = %+v, %v; want the item held", res, err)
	}
	db.umu.Lock()
	db.unapplied[id].seq = applied // now applied
	db.umu.Unlock()
	res, err = db.PruneInbox(context.Background(), t0.Add(24*time.Hour))
	if err != nil || res.Deleted != 1 {
		t.Fatalf("prune = %+v, %v; want the item deleted once applied", res, err)
	}
	db.umu.Lock()
	_, still := db.unapplied[id]
	db.umu.Unlock()
	if still {
		t.Error("the pruned item is still in the committer's map")
	}
}

// retEvent builds an event of one entity with the fixture as its payload.
func retEvent(db *testDB, connector, entity, ref string, raw []byte) *event.Event {
	return &event.Event{
		ID: db.NewID(), Connector: connector, Type: entity + ".updated", Entity: entity, Reference: ref,
		OccurredAt: db.clock.Now(), ReceivedAt: db.clock.Now(),
		Actor:  event.Actor{Type: "customer", ID: "15551234567"},
		Fields: map[string]any{"status": "open", "text": "hello"}, Raw: raw,
	}
}

// retPutEvents stores events (with a trace) in one transaction.
func retPutEvents(t testing.TB, db *testDB, evs ...*event.Event) {
	t.Helper()
	db.update(func(tx *Tx) error {
		for _, e := range evs {
			if err := tx.PutEvent(e, json.RawMessage(`{"matched":["r1"]}`)); err != nil {
				return err
			}
		}
		return nil
	})
}

// checkEventIndex verifies that events and the per-entity event index (in
// the entities bucket) match one to one.
func checkEventIndex(db *DB) error {
	return db.bolt.View(func(btx *bolt.Tx) error {
		events, idx := btx.Bucket([]byte(bucketEvents)), btx.Bucket([]byte(bucketEntities))
		want := map[string]bool{}
		if err := events.ForEach(func(k, v []byte) error {
			var se StoredEvent
			v, err := unpack(v)
			if err != nil {
				return fmt.Errorf("event %s: %w", k, err)
			}
			if err := json.Unmarshal(v, &se); err != nil {
				return nil // planted garbage has no index entry
			}
			want[string(markLast(join(se.Event.Connector, se.Event.Entity, se.Event.Reference, string(k)), eventMark))] = true
			return nil
		}); err != nil {
			return err
		}
		n := 0
		if err := idx.ForEach(func(k, _ []byte) error {
			if !isEventIndexKey(k) {
				return nil
			}
			if !want[string(k)] {
				return fmt.Errorf("event index entry %q points at no event", k)
			}
			n++
			return nil
		}); err != nil {
			return err
		}
		if n != len(want) {
			return fmt.Errorf("%d events, %d index entries", len(want), n)
		}
		return nil
	})
}

func TestPruneEventsRemovesIndexEntries(t *testing.T) {
	db := mustOpen(t)
	raw := retFixture(t)
	t0 := db.clock.Now()
	var old []*event.Event
	for i := range 6 {
		old = append(old, retEvent(db, []string{"whatsapp", "zendesk"}[i%2], "ticket", fmt.Sprint(100+i%3), raw))
	}
	retPutEvents(t, db, old...)
	db.update(func(tx *Tx) error {
		return tx.PutEntity(&event.Snapshot{Key: old[0].Key(), Fields: map[string]any{"status": "open"}, CreatedAt: t0, UpdatedAt: t0})
	})
	// A record the fast path cannot read (a trace before the event) and
	// one that is not JSON at all, both old; a key that is not a ULID.
	oddID, badID := db.NewID(), db.NewID()
	putRaw(t, db.DB, bucketEvents, []byte(oddID), []byte(`{"trace":{"x":1},"event":{"id":"`+oddID+`","connector":"whatsapp","type":"ticket.updated","entity":"ticket","reference":"100"}}`))
	putRaw(t, db.DB, bucketEntities, markLast(join("whatsapp", "ticket", "100", oddID), eventMark), present())
	putRaw(t, db.DB, bucketEvents, []byte(badID), []byte(`not json`))
	putRaw(t, db.DB, bucketEvents, []byte("0-not-a-ulid"), []byte(`not json either`))

	db.clock.Advance(30 * 24 * time.Hour)
	var fresh []*event.Event
	for i := range 3 {
		fresh = append(fresh, retEvent(db, "whatsapp", "ticket", fmt.Sprint(100+i), raw))
	}
	retPutEvents(t, db, fresh...)

	res, err := db.PruneEvents(context.Background(), t0.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if res.Deleted != 7 || res.Kept != 1 {
		t.Fatalf("prune = %+v, want the 7 readable old events deleted and the unreadable one kept", res)
	}
	for _, e := range append(old, &event.Event{ID: oddID}) {
		if _, err := db.Event(e.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("pruned event %s: %v, want ErrNotFound", e.ID, err)
		}
	}
	for _, id := range []string{badID, "0-not-a-ulid"} {
		if err := db.View(func(tx *Tx) error {
			if tx.b(bucketEvents).Get([]byte(id)) == nil {
				return fmt.Errorf("record %s was deleted", id)
			}
			return nil
		}); err != nil {
			t.Error(err)
		}
	}
	// Drop the planted garbage (listings would trip over it).
	db.update(func(tx *Tx) error {
		_ = tx.b(bucketEvents).Delete([]byte(badID))
		return tx.b(bucketEvents).Delete([]byte("0-not-a-ulid"))
	})
	for ref, want := range map[string][]string{"100": {fresh[0].ID}, "101": {fresh[1].ID}, "102": {fresh[2].ID}} {
		got, _, err := db.ListEvents(EventFilter{Connector: "whatsapp", Entity: "ticket", Reference: ref})
		if err != nil {
			t.Fatal(err)
		}
		if ids := ids(got, func(se StoredEvent) string { return se.Event.ID }); !slices.Equal(ids, want) {
			t.Errorf("events of whatsapp/ticket/%s = %v, want %v", ref, ids, want)
		}
	}
	if got, _, _ := db.ListEvents(EventFilter{Connector: "zendesk", Entity: "ticket", Reference: "101"}); len(got) != 0 {
		t.Errorf("zendesk/ticket/101 still lists %d events", len(got))
	}
	all, _, err := db.ListEvents(EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 {
		t.Errorf("ListEvents lists %d events, want the 3 new ones", len(all))
	}
	if _, err := db.Entity(old[0].Key()); err != nil {
		t.Errorf("the entity snapshot was pruned with its events: %v", err)
	}
	if err := checkEventIndex(db.DB); err != nil {
		t.Error(err)
	}
}

// retDelivery is a delivery to the fake Zendesk API.
func retDelivery(ref string) *Delivery {
	return &Delivery{
		Connector: "zendesk", Entity: "ticket", Reference: ref, RuleID: "r1", EventID: "ev", Action: "update_ticket",
		Update:  event.Update{Kind: event.KindUpdateEntity, Connector: "zendesk", Reference: ref, Set: map[string]any{"status": "solved"}},
		Request: Request{Method: "PUT", URL: "https://example.zendesk.com/api/v2/tickets/" + ref + ".json", Body: []byte(`{"ticket":{"status":"solved"}}`)},
	}
}

// retAdd adds deliveries with the given references and returns their ids.
func retAdd(t testing.TB, db *testDB, refs ...string) []string {
	t.Helper()
	var out []string
	db.update(func(tx *Tx) error {
		for _, ref := range refs {
			d := retDelivery(ref)
			if err := tx.AddDelivery(d); err != nil {
				return err
			}
			out = append(out, d.ID)
		}
		return nil
	})
	return out
}

// retClaimFinish claims what is due and finishes the claimed ids in want
// with their states; claimed deliveries not in want stay in flight.
func retClaimFinish(t testing.TB, db *testDB, want map[string]string) {
	t.Helper()
	ds, err := db.ClaimDue(db.clock.Now(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	var fs []Finish
	for _, d := range ds {
		if st, ok := want[d.ID]; ok {
			fs = append(fs, Finish{ID: d.ID, State: st, Attempt: &Attempt{At: db.clock.Now(), Status: 200}})
		}
	}
	if err := db.FinishDeliveries(fs); err != nil {
		t.Fatal(err)
	}
}

// retCheck verifies every outbox index and counter against the records.
func retCheck(t testing.TB, db *testDB) {
	t.Helper()
	if err := checkOutbox(db.DB); err != nil {
		t.Fatal(err)
	}
}

func TestPruneDeliveriesOnlyFinal(t *testing.T) {
	db := mustOpen(t)
	t0 := db.clock.Now()
	// Queue A: succeeded, failed, then one pending behind them; queue B:
	// one in flight; unordered: succeeded, cancelled, pending.
	d := retAdd(t, db, "A", "A", "A", "B", "", "", "")
	a1, a2, a3, b1, u1, u2, u3 := d[0], d[1], d[2], d[3], d[4], d[5], d[6]
	if err := db.CancelDelivery(u2, "not needed"); err != nil {
		t.Fatal(err)
	}
	retClaimFinish(t, db, map[string]string{a1: DeliverySucceeded, u1: DeliverySucceeded})
	retClaimFinish(t, db, map[string]string{a2: DeliveryFailed})
	// a3 is now due; u3 was claimed in the first round and is in flight
	// with b1. Claim a3 and leave it in flight too.
	retClaimFinish(t, db, nil)
	retCheck(t, db)

	db.clock.Advance(40 * 24 * time.Hour)
	fresh := retAdd(t, db, "A", "C")
	retClaimFinish(t, db, map[string]string{fresh[1]: DeliverySucceeded})
	// A stale cache entry for a delivery about to be pruned (the cache
	// holds only active deliveries; plant one to see it go).
	db.dcache.put(a1, []byte("stale"), retDelivery("A"))

	res, err := db.PruneDeliveries(context.Background(), t0.Add(30*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if res.Deleted != 4 || res.Kept != 0 {
		t.Fatalf("prune = %+v, want the 4 old final deliveries deleted", res)
	}
	for _, id := range []string{a1, a2, u1, u2} {
		if _, err := db.Delivery(id); !errors.Is(err, ErrNotFound) {
			t.Errorf("pruned delivery %s: %v, want ErrNotFound", id, err)
		}
		if err := db.RetryDelivery(id, db.clock.Now()); !errors.Is(err, ErrNotFound) {
			t.Errorf("retry of pruned delivery %s: %v, want ErrNotFound", id, err)
		}
	}
	if _, ok := db.dcache.m[a1]; ok {
		t.Error("the pruned delivery is still in the delivery cache")
	}
	for _, id := range []string{a3, b1, u3, fresh[0], fresh[1]} {
		if _, err := db.Delivery(id); err != nil {
			t.Errorf("delivery %s should survive: %v", id, err)
		}
	}
	retCheck(t, db) // every index and counter against the records
	list := func(f DeliveryFilter) []string {
		t.Helper()
		ds, _, err := db.ListDeliveries(f)
		if err != nil {
			t.Fatal(err)
		}
		return ids(ds, func(d *Delivery) string { return d.ID })
	}
	if got := list(DeliveryFilter{State: DeliverySucceeded}); !slices.Equal(got, []string{fresh[1]}) {
		t.Errorf("succeeded = %v, want %v", got, []string{fresh[1]})
	}
	if got := list(DeliveryFilter{State: DeliveryFailed}); len(got) != 0 {
		t.Errorf("failed = %v, want none", got)
	}
	if got := list(DeliveryFilter{Connector: "zendesk", Reference: "A"}); !slices.Equal(got, []string{fresh[0], a3}) {
		t.Errorf("reference A = %v, want %v", got, []string{fresh[0], a3})
	}
	st, err := db.Stats()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{DeliveryPending: 1, DeliveryInFlight: 3, DeliverySucceeded: 1, DeliveryFailed: 0, DeliveryCancelled: 0}
	for s, n := range want {
		if st.Deliveries[s] != n {
			t.Errorf("Stats.Deliveries[%s] = %d, want %d", s, st.Deliveries[s], n)
		}
	}
	// The queues still work: A's in-flight head finishes and the new one
	// behind it is claimed.
	retClaimFinish(t, db, nil)
	if err := db.FinishDelivery(a3, nil, DeliverySucceeded, time.Time{}, "", nil); err != nil {
		t.Fatal(err)
	}
	ds, err := db.ClaimDue(db.clock.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(ds, func(d *Delivery) string { return d.ID }); !slices.Equal(got, []string{fresh[0]}) {
		t.Errorf("claimed %v after the prune, want %v", got, []string{fresh[0]})
	}
	retCheck(t, db)
}

// A large backlog goes in several bounded transactions, and all of it.
func TestPruneInBoundedTransactions(t *testing.T) {
	db := mustOpen(t)
	const n = 10000
	raw := []byte(`{"n":1}`)
	t0 := db.clock.Now()
	for i := 0; i < n; i += 2500 {
		evs := make([]*event.Event, 2500)
		for j := range evs {
			evs[j] = retEvent(db, "whatsapp", "chat", fmt.Sprint(i+j%7), raw)
		}
		retPutEvents(t, db, evs...)
	}
	db.clock.Advance(time.Hour)
	keep := retEvent(db, "whatsapp", "chat", "1", raw)
	retPutEvents(t, db, keep)

	res, err := db.PruneEvents(context.Background(), t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if res.Deleted != n {
		t.Fatalf("deleted %d, want %d", res.Deleted, n)
	}
	if min := n / pruneBatch; res.Txns < min {
		t.Errorf("%d transactions, want at least %d (at most %d records each)", res.Txns, min, pruneBatch)
	}
	all, _, err := db.ListEvents(EventFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(all, func(se StoredEvent) string { return se.Event.ID }); !slices.Equal(got, []string{keep.ID}) {
		t.Errorf("left %d events, want only the new one", len(got))
	}
	if err := checkEventIndex(db.DB); err != nil {
		t.Error(err)
	}
	// Nothing left to do: no write transaction at all.
	if res, err := db.PruneEvents(context.Background(), t0.Add(time.Minute)); err != nil || res != (PruneResult{}) {
		t.Errorf("second prune = %+v, %v; want nothing", res, err)
	}
}

func TestPruneStopsWhenContextEnds(t *testing.T) {
	db := mustOpen(t)
	t0 := db.clock.Now()
	retPutEvents(t, db, retEvent(db, "whatsapp", "chat", "1", nil))
	db.clock.Advance(time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := db.PruneEvents(ctx, t0.Add(time.Minute))
	if !errors.Is(err, context.Canceled) || res.Deleted != 0 {
		t.Fatalf("prune with an ended context = %+v, %v", res, err)
	}
	if res, err := db.PruneEvents(context.Background(), t0.Add(time.Minute)); err != nil || res.Deleted != 1 {
		t.Fatalf("prune = %+v, %v", res, err)
	}
}

func TestPruneAfterClose(t *testing.T) {
	db := mustOpen(t)
	db.clock.Advance(time.Hour)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for name, prune := range map[string]func(context.Context, time.Time) (PruneResult, error){
		"inbox": db.PruneInbox, "events": db.PruneEvents, "deliveries": db.PruneDeliveries,
	} {
		if _, err := prune(context.Background(), db.clock.Now()); !errors.Is(err, ErrClosed) {
			t.Errorf("%s: prune after Close = %v, want ErrClosed", name, err)
		}
	}
}

func TestDeliveryQueueParts(t *testing.T) {
	cases := []struct {
		name, v string
		want    []string // nil: the record cannot be read
	}{
		{"plain", `{"id":"1","connector":"zendesk","entity":"ticket","reference":"42","x":{}}`, []string{"zendesk", "42"}},
		{"escaped value", `{"connector":"a\"b","reference":"\u00e9"}`, []string{`a"b`, "é"}},
		{"empty values", `{"connector":"","reference":""}`, []string{"", ""}},
		{"object first", `{"id":{"a":1},"connector":"z","reference":"1"}`, []string{"z", "1"}},
		{"spaces", `{ "connector" : "z", "reference":"1"}`, []string{"z", "1"}},
		{"missing one", `{"connector":"z"}`, []string{"z", ""}},
		{"null member", `{"connector":"z","reference":null}`, []string{"z", ""}},
		{"number member", `{"connector":"z","reference":1}`, nil},
		{"truncated", `{"connector":"z","reference":"1`, nil},
		{"not an object", `["connector","z"]`, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, r, _, ok := deliveryQueueParts([]byte(tc.v))
			if tc.want == nil {
				if ok {
					t.Fatalf("read %q %q from an unreadable record", c, r)
				}
				return
			}
			if !ok || c != tc.want[0] || r != tc.want[1] {
				t.Fatalf("got %q %q, %v; want %q", c, r, ok, tc.want)
			}
		})
	}
}

func TestEventIndexKey(t *testing.T) {
	id := []byte("01JP9ZMPT8W6X7X5EHGA186KBQ")
	cases := []struct {
		name, v string
		want    []byte
		ok      bool
	}{
		{"stored event", `{"event":{"id":"x","connector":"zendesk","type":"t","entity":"ticket","reference":"42"},"trace":{}}`, []byte("zendesk\x00ticket\x0042\x00\x02" + string(id)), true},
		{"no event", `{"trace":{}}`, nil, true},
		{"null event", `{"event":null}`, nil, true},
		{"event not an object", `{"event":"x"}`, nil, false},
		{"broken", `{"event":{"connector":"z"`, nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := eventIndexKey([]byte(tc.v), id)
			if ok != tc.ok || !bytes.Equal(got, tc.want) {
				t.Fatalf("got %q, %v; want %q, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// FuzzDeliveryQueueParts: the record reader agrees with encoding/json
// decoding the whole record.
func FuzzDeliveryQueueParts(f *testing.F) {
	f.Add([]byte(`{"id":"1","connector":"zendesk","entity":"ticket","reference":"42","x":{}}`))
	f.Add([]byte(`{"connector":"a\"b","reference":"\u00e9\ud83d\ude00"}`))
	f.Add([]byte(`{"connector":"\xff","reference":"1"}`))
	f.Add([]byte(`{"connector":"a","connector":"b","reference":""}`))
	f.Add([]byte(`{"connector":"a","reference":7}`))
	f.Fuzz(func(t *testing.T, v []byte) {
		c, r, _, ok := deliveryQueueParts(v)
		var d struct {
			Connector string `json:"connector"`
			Reference string `json:"reference"`
		}
		err := json.Unmarshal(v, &d)
		if ambiguousKeys(v, "connector", "reference") || !utf8.Valid(v) {
			return // repeated or differently cased keys, invalid UTF-8: the store never writes them
		}
		if ok != (err == nil) {
			t.Fatalf("reader ok=%v, encoding/json err=%v", ok, err)
		}
		if ok && (c != d.Connector || r != d.Reference) {
			t.Fatalf("reader %q %q, encoding/json %q %q", c, r, d.Connector, d.Reference)
		}
	})
}

// ambiguousKeys reports whether the top-level object v has a key that
// matches one of names case-insensitively (as encoding/json matches) but
// not exactly, or more than once.
func ambiguousKeys(v []byte, names ...string) bool {
	dec := json.NewDecoder(bytes.NewReader(v))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return false
	}
	seen := map[string]int{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		key, _ := tok.(string)
		for _, n := range names {
			if strings.EqualFold(key, n) {
				if key != n {
					return true
				}
				seen[n]++
			}
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return false
		}
	}
	for _, c := range seen {
		if c > 1 {
			return true
		}
	}
	return false
}

// BenchmarkPruneEvents prunes 100,000 events (each with a real WhatsApp
// payload and a trace) and reports records per second.
func BenchmarkPruneEvents(b *testing.B) {
	const n = 100000
	raw := retFixture(b)
	var total time.Duration
	for range b.N {
		b.StopTimer()
		db := mustOpen(b)
		t0 := db.clock.Now()
		for i := 0; i < n; i += 5000 {
			evs := make([]*event.Event, 5000)
			for j := range evs {
				evs[j] = retEvent(db, "whatsapp", "chat", fmt.Sprint((i+j)%5000), raw)
			}
			retPutEvents(b, db, evs...)
		}
		db.clock.Advance(time.Hour)
		b.StartTimer()
		start := time.Now()
		res, err := db.PruneEvents(context.Background(), t0.Add(time.Minute))
		total += time.Since(start)
		if err != nil || res.Deleted != n {
			b.Fatalf("prune = %+v, %v", res, err)
		}
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "records/s")
}
