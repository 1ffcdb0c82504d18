package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/hookline/hookline/event"
)

// TestPackRoundTrip: what pack stores, unpack gives back byte for byte;
// values too small or too random to gain are stored as they are.
func TestPackRoundTrip(t *testing.T) {
	random := make([]byte, 600)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	tests := []struct {
		name   string
		value  []byte
		packed bool
	}{
		{"empty", nil, false},
		{"small JSON", []byte(`{"status":"open"}`), false},
		{"repetitive JSON", []byte(`{"fields":{"a":"` + strings.Repeat("shipping vip ", 60) + `"}}`), true},
		{"random bytes", random, false},
	}
	var m writeMem
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stored := m.pack(tt.value)
			if got := len(stored) > 0 && stored[0] == packedMark; got != tt.packed {
				t.Fatalf("packed = %v, want %v (%d -> %d bytes)", got, tt.packed, len(tt.value), len(stored))
			}
			if tt.packed && len(stored) >= len(tt.value) {
				t.Errorf("packed %d bytes into %d", len(tt.value), len(stored))
			}
			back, err := unpack(stored)
			if err != nil || !bytes.Equal(back, tt.value) {
				t.Fatalf("unpack = %q, %v; want the original", back, err)
			}
		})
	}
}

// TestUnpackCorrupt: a damaged packed value is an error, never a panic or
// a wrong record.
func TestUnpackCorrupt(t *testing.T) {
	var m writeMem
	stored := bytes.Clone(m.pack([]byte(`{"text":"` + strings.Repeat("abc", 200) + `"}`)))
	for _, bad := range [][]byte{
		{packedMark},
		stored[:len(stored)/2],
		append(append([]byte{packedMark}, 0xff, 0xff, 0xff, 0xff, 0x0f), stored[1:]...),
	} {
		if v, err := unpack(bad); err == nil {
			t.Errorf("unpack(%x) = %q, want an error", bad[:min(len(bad), 8)], v)
		}
	}
	// A damaged length is refused before anything is allocated for it.
	huge := []byte{packedMark, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00}
	if _, err := unpack(huge); err == nil || !strings.Contains(err.Error(), "more than is ever packed") {
		t.Errorf("unpack of a 4 GiB claim: %v", err)
	}
}

// TestEventsAndSnapshotsArePacked: the events and entity snapshots the
// pipeline writes are stored packed and read back equal.
func TestEventsAndSnapshotsArePacked(t *testing.T) {
	db := mustOpen(t)
	text := strings.Repeat("Hello, I ordered a pair of running shoes two weeks ago. ", 8)
	e := &event.Event{
		ID: db.NewID(), Connector: "generic", Type: "ticket.updated", Entity: "ticket", Reference: "T-1",
		OccurredAt: db.clock.Now(), ReceivedAt: db.clock.Now(),
		Fields:  map[string]any{"status": "open", "text": text},
		Changes: map[string]event.Change{"status": {From: nil, To: "open"}, "text": {From: nil, To: text}},
		Raw:     json.RawMessage(`{"status":"open","text":"` + text + `"}`),
	}
	snap := &event.Snapshot{Key: e.Key(), Fields: e.Fields, Version: 1, CreatedAt: e.OccurredAt, UpdatedAt: e.OccurredAt}
	db.update(func(tx *Tx) error {
		if err := tx.PutEvent(e, json.RawMessage(`{"matched":["r1"]}`)); err != nil {
			return err
		}
		return tx.PutEntity(snap)
	})
	if err := db.bolt.View(func(btx *bolt.Tx) error {
		for _, v := range [][]byte{
			btx.Bucket([]byte(bucketEvents)).Get([]byte(e.ID)),
			btx.Bucket([]byte(bucketEntities)).Get(join("generic", "ticket", "T-1")),
		} {
			if len(v) == 0 || v[0] != packedMark {
				t.Errorf("stored value %.40q is not packed", v)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	se, err := db.Event(e.ID)
	if err != nil || se.Event.Fields["text"] != text || string(se.Event.Raw) != string(e.Raw) || string(se.Trace) != `{"matched":["r1"]}` {
		t.Fatalf("event read back: %+v, %v", se, err)
	}
	got, err := db.Entity(e.Key())
	if err != nil || got.Fields["text"] != text || got.Version != 1 {
		t.Fatalf("snapshot read back: %+v, %v", got, err)
	}
	list, _, err := db.ListEvents(EventFilter{Connector: "generic", Entity: "ticket", Reference: "T-1"})
	if err != nil || len(list) != 1 || list[0].Event.Fields["text"] != text {
		t.Fatalf("list: %+v, %v", list, err)
	}
	db.update(func(tx *Tx) error {
		if vars, err := tx.LastEventVars(got); err != nil || vars != nil {
			t.Errorf("last event vars: %v, %v", vars, err)
		}
		return nil
	})
}

// TestOpenSchema1Store: a store written before packing (schema 1, plain
// JSON records) opens, reads as before, takes packed records next to the
// old ones, and is marked schema 2 so that an older build refuses it
// instead of misreading it. A store from a newer build is refused.
func TestOpenSchema1Store(t *testing.T) {
	db := mustOpen(t)
	old := `{"event":{"id":"01JRQ7J8T8Z86KN6VVRSNQ2NTN","connector":"zendesk","type":"ticket.updated","entity":"ticket","reference":"7",` +
		`"occurred_at":"2026-03-02T09:15:00Z","received_at":"2026-03-02T09:15:00Z","actor":{"type":""},"fields":{"status":"open"},"causation":{"hops":0}}}`
	putRaw(t, db.DB, bucketEvents, []byte("01JRQ7J8T8Z86KN6VVRSNQ2NTN"), []byte(old))
	// Schema 1 and 2 kept the per-entity event index in its own bucket.
	if err := db.bolt.Update(func(btx *bolt.Tx) error {
		b, err := btx.CreateBucketIfNotExists([]byte(bucketEventsByEntityV2))
		if err != nil {
			return err
		}
		return b.Put(join("zendesk", "ticket", "7", "01JRQ7J8T8Z86KN6VVRSNQ2NTN"), present())
	}); err != nil {
		t.Fatal(err)
	}
	putRaw(t, db.DB, bucketEntities, join("zendesk", "ticket", "7"),
		[]byte(`{"key":{"connector":"zendesk","entity":"ticket","reference":"7"},"fields":{"status":"open"},"version":3,"created_at":"2026-03-02T09:15:00Z","updated_at":"2026-03-02T09:15:00Z"}`))
	setVersion := func(v uint64) {
		b := make([]byte, 8)
		binary.BigEndian.PutUint64(b, v)
		putRaw(t, db.DB, bucketMeta, []byte(metaVersion), b)
	}
	setVersion(1)
	db.reopen()
	if v := storedVersion(t, db.DB); v != schemaVersion {
		t.Fatalf("schema version after opening a schema 1 store = %d, want %d", v, schemaVersion)
	}
	se, err := db.Event("01JRQ7J8T8Z86KN6VVRSNQ2NTN")
	if err != nil || se.Event.Fields["status"] != "open" {
		t.Fatalf("old event: %+v, %v", se, err)
	}
	snap, err := db.Entity(event.EntityKey{Connector: "zendesk", Entity: "ticket", Reference: "7"})
	if err != nil || snap.Version != 3 {
		t.Fatalf("old snapshot: %+v, %v", snap, err)
	}
	e := &event.Event{ID: db.NewID(), Connector: "zendesk", Type: "ticket.updated", Entity: "ticket", Reference: "7",
		Fields: map[string]any{"status": "solved", "text": strings.Repeat("packed ", 100)}}
	db.update(func(tx *Tx) error { return tx.PutEvent(e, nil) })
	list, _, err := db.ListEvents(EventFilter{Connector: "zendesk", Entity: "ticket", Reference: "7"})
	got := ids(list, func(se StoredEvent) string { return se.Event.ID })
	slices.Sort(got)
	want := []string{"01JRQ7J8T8Z86KN6VVRSNQ2NTN", e.ID}
	slices.Sort(want)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("old and new events together: %v, %v; want %v", got, err, want)
	}

	setVersion(schemaVersion + 1)
	if err := db.DB.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = Open(db.path, Options{LockTimeout: 100 * time.Millisecond})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "schema version") {
		t.Fatalf("open a store from a newer build: %v, want a schema version error", err)
	}
	// Put the version back by hand, so that the cleanup's Close has a store.
	bdb, err := bolt.Open(db.path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bdb.Update(func(btx *bolt.Tx) error {
		b := make([]byte, 8)
		binary.BigEndian.PutUint64(b, schemaVersion)
		return btx.Bucket([]byte(bucketMeta)).Put([]byte(metaVersion), b)
	}); err != nil {
		t.Fatal(err)
	}
	if err := bdb.Close(); err != nil {
		t.Fatal(err)
	}
	db.open()
}

func storedVersion(t *testing.T, db *DB) uint64 {
	t.Helper()
	var v uint64
	if err := db.bolt.View(func(btx *bolt.Tx) error {
		v = binary.BigEndian.Uint64(btx.Bucket([]byte(bucketMeta)).Get([]byte(metaVersion)))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return v
}

// FuzzUnpack: any stored bytes either unpack or give an error; a packed
// value of any input unpacks to that input.
func FuzzUnpack(f *testing.F) {
	var m writeMem
	f.Add([]byte(`{"a":1}`))
	f.Add(bytes.Clone(m.pack([]byte(strings.Repeat(`{"status":"open"}`, 20)))))
	f.Add([]byte{packedMark, 0x05, 0x10, 'a'})
	f.Fuzz(func(t *testing.T, v []byte) {
		_, _ = unpack(v)
		var m writeMem
		back, err := unpack(m.pack(v))
		if err != nil || !bytes.Equal(back, v) {
			t.Fatalf("round trip of %q: %q, %v", v, back, err)
		}
	})
}

// TestPageSize: a new store gets 8 KiB pages; a file created with 4 KiB
// pages (every store before round 4) keeps them and works as before.
func TestPageSize(t *testing.T) {
	db := mustOpen(t)
	if got := db.bolt.Info().PageSize; got != pageSize {
		t.Fatalf("new store page size = %d, want %d", got, pageSize)
	}

	path := filepath.Join(t.TempDir(), "old.db")
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{PageSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if err := bdb.Close(); err != nil {
		t.Fatal(err)
	}
	old, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if got := old.bolt.Info().PageSize; got != 4096 {
		t.Fatalf("existing store page size = %d, want 4096", got)
	}
	e := &event.Event{ID: old.NewID(), Connector: "zendesk", Type: "ticket.updated", Entity: "ticket", Reference: "7",
		Fields: map[string]any{"status": "open", "text": strings.Repeat("page ", 3000)}}
	if err := old.Update(func(tx *Tx) error { return tx.PutEvent(e, nil) }); err != nil {
		t.Fatal(err)
	}
	se, err := old.Event(e.ID)
	if err != nil || se.Event.Fields["text"] != e.Fields["text"] {
		t.Fatalf("event in a 4 KiB-page store: %v", err)
	}
}

// TestSchema4StoreMovesTo5: a store of the previous layout opens as it is
// and is marked schema 5 at once, so that a schema 4 build, which would
// take call_webhook queues for its connectors' queues and jam them,
// refuses it with "unsupported store schema version" instead.
func TestSchema4StoreMovesTo5(t *testing.T) {
	db := mustOpen(t)
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, 4)
	putRaw(t, db.DB, bucketMeta, []byte(metaVersion), b)
	db.reopen()
	if v := storedVersion(t, db.DB); v != 5 {
		t.Fatalf("schema version after opening a schema 4 store = %d, want 5", v)
	}
}
