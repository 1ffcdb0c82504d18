package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hookline/hookline/event"
)

// seedEvents stores 24 events, one per minute, over two connectors, two
// entity types and three references, and returns them oldest first.
func seedEvents(t *testing.T, db *testDB) []*event.Event {
	t.Helper()
	types := []string{"ticket.updated", "ticket.status_changed", "chat.started"}
	var evs []*event.Event
	for i := range 24 {
		db.clock.Advance(time.Minute)
		ty := types[(i/3)%3]
		e := &event.Event{
			ID:         db.NewID(),
			Connector:  []string{"zendesk", "freshdesk"}[i%2],
			Type:       ty,
			Entity:     map[bool]string{true: "chat", false: "ticket"}[ty == "chat.started"],
			Reference:  fmt.Sprint(100 + i%3),
			OccurredAt: db.clock.Now(),
			ReceivedAt: db.clock.Now(),
			Fields:     map[string]any{"status": "open", "tags": []any{"a", "b"}},
			Changes:    map[string]event.Change{"status": {From: "new", To: "open"}},
			Raw:        json.RawMessage(`{"n":` + fmt.Sprint(i) + `}`),
		}
		evs = append(evs, e)
	}
	db.update(func(tx *Tx) error {
		for i, e := range evs {
			if err := tx.PutEvent(e, json.RawMessage(fmt.Sprintf(`{"rules":["r%d"]}`, i))); err != nil {
				return err
			}
		}
		return nil
	})
	return evs
}

// wantEvents is the reference filter: newest first.
func wantEvents(evs []*event.Event, f EventFilter) []string {
	var out []string
	for i := len(evs) - 1; i >= 0; i-- {
		e := evs[i]
		if (f.Connector == "" || e.Connector == f.Connector) && (f.Type == "" || e.Type == f.Type) &&
			(f.Entity == "" || e.Entity == f.Entity) && (f.Reference == "" || e.Reference == f.Reference) &&
			(f.Since.IsZero() || !e.ReceivedAt.Before(f.Since)) {
			out = append(out, e.ID)
		}
	}
	return out
}

func TestListEventsFilters(t *testing.T) {
	db := mustOpen(t)
	evs := seedEvents(t, db)
	mid := evs[12].ReceivedAt
	tests := []struct {
		name string
		f    EventFilter
	}{
		{"all", EventFilter{}},
		{"connector", EventFilter{Connector: "zendesk"}},
		{"type", EventFilter{Type: "ticket.status_changed"}},
		{"entity type", EventFilter{Entity: "chat"}},
		{"reference", EventFilter{Reference: "101"}},
		{"entity index", EventFilter{Connector: "zendesk", Entity: "ticket", Reference: "100"}},
		{"entity index and type", EventFilter{Connector: "freshdesk", Entity: "ticket", Reference: "101", Type: "ticket.updated"}},
		{"entity index since", EventFilter{Connector: "zendesk", Entity: "ticket", Reference: "100", Since: mid}},
		{"since", EventFilter{Since: mid}},
		{"since and connector", EventFilter{Since: mid, Connector: "freshdesk"}},
		{"no match", EventFilter{Connector: "spoki"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := wantEvents(evs, tt.f)
			if tt.name != "no match" && len(want) == 0 {
				t.Fatal("test filter matches nothing")
			}
			got, next, err := db.ListEvents(tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if next != "" {
				t.Fatalf("next cursor %q on a complete page", next)
			}
			if ids := ids(got, func(se StoredEvent) string { return se.Event.ID }); !equalStrings(ids, want) {
				t.Fatalf("\n got %v\nwant %v", ids, want)
			}
			// Paging with limit 2 gives the same list.
			var paged []string
			f := tt.f
			f.Limit = 2
			for page := 0; ; page++ {
				got, next, err := db.ListEvents(f)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) > 2 {
					t.Fatalf("page of %d with limit 2", len(got))
				}
				paged = append(paged, ids(got, func(se StoredEvent) string { return se.Event.ID })...)
				if next == "" {
					break
				}
				if next != got[len(got)-1].Event.ID {
					t.Fatalf("cursor %s is not the last id of the page", next)
				}
				f.Cursor = next
				if page > 30 {
					t.Fatal("paging does not end")
				}
			}
			if !equalStrings(paged, want) {
				t.Fatalf("paged\n got %v\nwant %v", paged, want)
			}
		})
	}
}

func TestListEventsReadsOnlyWhatItNeeds(t *testing.T) {
	db := mustOpen(t)
	evs := seedEvents(t, db)
	// A record that cannot be decoded, older than every event: a walk that
	// honours Since never reaches it, a full scan fails on it.
	putRaw(t, db.DB, bucketEvents, []byte("00000000000000000000000000"), []byte("{broken"))
	if _, _, err := db.ListEvents(EventFilter{}); err == nil {
		t.Fatal("full scan did not read the broken record")
	}
	got, _, err := db.ListEvents(EventFilter{Since: evs[0].ReceivedAt})
	if err != nil {
		t.Fatalf("since-bounded scan read old data: %v", err)
	}
	if len(got) != len(evs) {
		t.Fatalf("got %d events, want %d", len(got), len(evs))
	}
	// The entity index does not touch unrelated events.
	putRaw(t, db.DB, bucketEvents, []byte("7ZZZZZZZZZZZZZZZZZZZZZZZZZ"), []byte("{broken"))
	got, _, err = db.ListEvents(EventFilter{Connector: "zendesk", Entity: "ticket", Reference: "100"})
	if err != nil {
		t.Fatalf("entity-index listing read an unrelated event: %v", err)
	}
	if len(got) == 0 {
		t.Fatal("entity-index listing found nothing")
	}
}

func TestEventRoundTrip(t *testing.T) {
	db := mustOpen(t)
	evs := seedEvents(t, db)
	se, err := db.Event(evs[5].ID)
	if err != nil {
		t.Fatal(err)
	}
	e := se.Event
	if e.ID != evs[5].ID || e.Type != evs[5].Type || e.Fields["status"] != "open" || e.Changes["status"].To != "open" ||
		string(e.Raw) != `{"n":5}` || string(se.Trace) != `{"rules":["r5"]}` {
		t.Fatalf("stored event differs: %+v trace %s", e, se.Trace)
	}
	if _, err := db.Event("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing event: %v", err)
	}
	bad := []*event.Event{
		{Connector: "zendesk"},
		{ID: "x", Connector: "zen\x00desk"},
		{ID: "y", Connector: "zendesk", Reference: "1\x002"},
	}
	for _, e := range bad {
		if err := db.Update(func(tx *Tx) error { return tx.PutEvent(e, nil) }); !errors.Is(err, ErrInvalid) {
			t.Errorf("PutEvent(%+v): err %v, want ErrInvalid", e, err)
		}
	}
}

func TestEntities(t *testing.T) {
	db := mustOpen(t)
	k := event.EntityKey{Connector: "zendesk", Entity: "ticket", Reference: "35436"}
	db.update(func(tx *Tx) error {
		s, err := tx.Entity(k)
		if s != nil || err != nil {
			t.Fatalf("unknown entity: %v, %v", s, err)
		}
		return nil
	})
	if _, err := db.Entity(k); !errors.Is(err, ErrNotFound) {
		t.Fatalf("DB.Entity unknown: %v", err)
	}
	now := db.clock.Now()
	snap := &event.Snapshot{
		Key: k, Fields: map[string]any{"status": "pending"}, Version: 3, CreatedAt: now, UpdatedAt: now,
		StatusSince: now, AgentReplies: 2,
		Fired:  map[string][]time.Time{"pending-too-long": {now}},
		Clocks: map[string]*event.RuleClock{"pending-too-long": {Since: now, PausedTotal: time.Minute}},
	}
	db.update(func(tx *Tx) error { return tx.PutEntity(snap) })
	other := k
	other.Reference = "35437"
	got, err := db.Entity(k)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 3 || got.Fields["status"] != "pending" || got.AgentReplies != 2 || !got.StatusSince.Equal(now) ||
		len(got.Fired["pending-too-long"]) != 1 || got.Clocks["pending-too-long"].PausedTotal != time.Minute {
		t.Fatalf("snapshot differs: %+v", got)
	}
	if _, err := db.Entity(other); !errors.Is(err, ErrNotFound) {
		t.Fatalf("other reference: %v", err)
	}
	snap.Version = 4
	db.update(func(tx *Tx) error { return tx.PutEntity(snap) })
	if got, _ := db.Entity(k); got.Version != 4 {
		t.Fatalf("replace: version %d", got.Version)
	}
}

func TestRuleFirings(t *testing.T) {
	db := mustOpen(t)
	t0 := db.clock.Now()
	db.update(func(tx *Tx) error {
		for _, f := range []struct {
			rule string
			at   time.Duration
		}{
			{"r", 0}, {"r", time.Minute}, {"r", time.Minute}, {"r", 2 * time.Hour},
			{"r1", time.Minute}, {"rr", time.Minute},
		} {
			if err := tx.RecordRuleFiring(f.rule, t0.Add(f.at)); err != nil {
				return err
			}
		}
		return nil
	})
	tests := []struct {
		rule  string
		since time.Duration
		want  int
	}{
		{"r", -time.Hour, 4},
		{"r", 0, 4},
		{"r", time.Second, 3},
		{"r", time.Minute, 3},
		{"r", time.Minute + 1, 1},
		{"r", 3 * time.Hour, 0},
		{"r1", 0, 1},
		{"nope", 0, 0},
	}
	for _, tt := range tests {
		var got int
		if err := db.View(func(tx *Tx) error {
			var err error
			got, err = tx.RuleFirings(tt.rule, t0.Add(tt.since))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("RuleFirings(%q, t0%+v) = %d, want %d", tt.rule, tt.since, got, tt.want)
		}
	}
	n, err := db.PruneRuleFirings(t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 { // r@0, r@1m, r1@1m, rr@1m
		t.Fatalf("pruned %d records, want 4", n)
	}
	db.update(func(tx *Tx) error {
		if got, _ := tx.RuleFirings("r", t0.Add(-time.Hour)); got != 1 {
			t.Fatalf("after prune %d firings, want 1", got)
		}
		return nil
	})
}

func TestViewIsReadOnly(t *testing.T) {
	db := mustOpen(t)
	k := event.EntityKey{Connector: "zendesk", Entity: "ticket", Reference: "1"}
	writes := map[string]func(tx *Tx) error{
		"PutEntity":        func(tx *Tx) error { return tx.PutEntity(&event.Snapshot{Key: k}) },
		"PutEvent":         func(tx *Tx) error { return tx.PutEvent(&event.Event{ID: "e"}, nil) },
		"FinishInbox":      func(tx *Tx) error { return tx.FinishInbox("x", InboxProcessed, "", nil) },
		"RecordRuleFiring": func(tx *Tx) error { return tx.RecordRuleFiring("r", time.Now()) },
		"AddDelivery":      func(tx *Tx) error { return tx.AddDelivery(&Delivery{Connector: "c"}) },
		"PutFingerprint":   func(tx *Tx) error { return tx.PutFingerprint(Fingerprint{Connector: "c"}) },
		"PutTimer":         func(tx *Tx) error { return tx.PutTimer(Timer{Key: k, Rule: "r"}) },
		"DeleteTimer":      func(tx *Tx) error { return tx.DeleteTimer(k, "r") },
	}
	for name, w := range writes {
		if err := db.View(w); !errors.Is(err, ErrReadOnly) {
			t.Errorf("%s in View: err %v, want ErrReadOnly", name, err)
		}
	}
}

// Fields' times survive the store: an older webhook applied to the
// snapshot read back does not roll a field back. A snapshot stored without
// them (written by an older build) reads as fields of unknown time, and an
// event is taken as it comes.
func TestEntityKeepsFieldTimes(t *testing.T) {
	db := mustOpen(t)
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	key := event.EntityKey{Connector: "generic", Entity: "ticket", Reference: "T1"}
	ev := func(status string, minute int) *event.Event {
		return &event.Event{Connector: key.Connector, Type: "ticket.updated", Entity: key.Entity, Reference: key.Reference,
			OccurredAt: t0.Add(time.Duration(minute) * time.Minute), Fields: map[string]any{"status": status}}
	}
	applyStored := func(e *event.Event) *event.Snapshot {
		t.Helper()
		var next *event.Snapshot
		if err := db.Update(func(tx *Tx) error {
			prior, err := tx.Entity(key)
			if err != nil {
				return err
			}
			next = event.Apply(prior, e)
			return tx.PutEntity(next)
		}); err != nil {
			t.Fatal(err)
		}
		return next
	}
	applyStored(ev("solved", 5))
	db.reopen()
	late := ev("pending", 0)
	applyStored(late)
	s, err := db.Entity(key)
	if err != nil {
		t.Fatal(err)
	}
	if s.Fields["status"] != "solved" || late.Changes != nil || !s.FieldsAt["status"].Equal(t0.Add(5*time.Minute)) {
		t.Fatalf("after a late webhook: status %v as of %v, changes %v; want solved as of 10:05, no change",
			s.Fields["status"], s.FieldsAt["status"], late.Changes)
	}

	// An older build's snapshot: no field times.
	putRaw(t, db.DB, bucketEntities, join(key.Connector, key.Entity, key.Reference),
		[]byte(`{"key":{"connector":"generic","entity":"ticket","reference":"T1"},"fields":{"status":"solved"},"version":3,"created_at":"2026-01-05T10:00:00Z","updated_at":"2026-01-05T10:05:00Z","status_since":"2026-01-05T10:05:00Z"}`))
	late = ev("pending", 1)
	applyStored(late)
	if s, err = db.Entity(key); err != nil {
		t.Fatal(err)
	}
	if s.Fields["status"] != "pending" || late.Changes["status"].To != "pending" || !s.FieldsAt["status"].Equal(t0.Add(time.Minute)) {
		t.Fatalf("old snapshot: status %v as of %v, changes %v; want the event taken", s.Fields["status"], s.FieldsAt, late.Changes)
	}
	if !s.UpdatedAt.Equal(t0.Add(5*time.Minute)) || s.Version != 4 {
		t.Errorf("old snapshot: updated_at %v version %d", s.UpdatedAt, s.Version)
	}
}
