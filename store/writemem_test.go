package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/hookline/hookline/event"
)

// TestArenaValuesSurviveTheirTransaction: records carved from the write
// arena (many per transaction, across several chunks, with a rolled-back
// transaction in between) are stored exactly as encoding/json writes them.
func TestArenaValuesSurviveTheirTransaction(t *testing.T) {
	db := mustOpen(t)
	at := time.Date(2026, 3, 2, 9, 15, 0, 0, time.UTC)
	var events []*event.Event
	var traces []json.RawMessage
	var snaps []*event.Snapshot
	errRollback := errors.New("roll back")
	for round := range 3 {
		err := db.Update(func(tx *Tx) error {
			for i := range 100 {
				e, tr := benchEvent(db.DB, round*100+i, at)
				e.Fields["big"] = string(bytes.Repeat([]byte{'a' + byte(i%26)}, i*97)) // some over a chunk/8
				if err := tx.PutEvent(e, tr); err != nil {
					return err
				}
				s := &event.Snapshot{Key: e.Key(), Fields: e.Fields, Version: uint64(i), CreatedAt: at, UpdatedAt: at}
				if err := tx.PutEntity(s); err != nil {
					return err
				}
				if round != 1 {
					events, traces, snaps = append(events, e), append(traces, tr), append(snaps, s)
				}
			}
			if round == 1 {
				return errRollback
			}
			return nil
		})
		if round == 1 && !errors.Is(err, errRollback) || round != 1 && err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
	err := db.bolt.View(func(btx *bolt.Tx) error {
		for i, e := range events {
			want, err := json.Marshal(StoredEvent{Event: e, Trace: traces[i]})
			if err != nil {
				return err
			}
			got, err := unpack(btx.Bucket([]byte(bucketEvents)).Get([]byte(e.ID)))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("event %d stored as\n%.300s\nwant\n%.300s (%v)", i, got, want, err)
			}
		}
		// Later snapshots of an entity replace earlier ones: compare the last.
		last := map[event.EntityKey]*event.Snapshot{}
		for _, s := range snaps {
			last[s.Key] = s
		}
		for k, s := range last {
			want, err := json.Marshal(s)
			if err != nil {
				return err
			}
			got, err := unpack(btx.Bucket([]byte(bucketEntities)).Get(join(k.Connector, k.Entity, k.Reference)))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("snapshot %s stored as\n%.300s\nwant\n%.300s (%v)", k, got, want, err)
			}
		}
		if n := btx.Bucket([]byte(bucketEvents)).Stats().KeyN; n != len(events) {
			t.Errorf("%d events stored, want %d (the rolled-back ones must not be)", n, len(events))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestWriteMemCopy: carved copies are exact, capped at their length (an
// append cannot reach a neighbour) and independent of the source.
func TestWriteMemCopy(t *testing.T) {
	var m writeMem
	tests := []struct {
		name string
		n    int
	}{
		{"empty", 0}, {"small", 10}, {"chunk/8", arenaChunk / 8}, {"large", arenaChunk/8 + 1}, {"over a chunk", arenaChunk + 5},
	}
	var prev []byte
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := bytes.Repeat([]byte{byte(tt.n)}, tt.n)
			c := m.copy(src)
			if !bytes.Equal(c, src) || cap(c) != len(c) {
				t.Fatalf("copy: len %d cap %d, want len %d = cap", len(c), cap(c), tt.n)
			}
			if tt.n > 0 {
				src[0] ^= 0xff
				if c[0] == src[0] {
					t.Fatal("copy shares the source's memory")
				}
			}
			if prev != nil {
				before := bytes.Clone(c)
				_ = append(prev, bytes.Repeat([]byte{'x'}, 16)...)
				if !bytes.Equal(c, before) {
					t.Fatal("append to the previous copy changed this one")
				}
			}
			prev = c
		})
	}
	if k := m.key("a", "", "b"+strconv.Itoa(7)); !bytes.Equal(k, join("a", "", "b7")) || cap(k) != len(k) {
		t.Fatalf("key %q (cap %d)", k, cap(k))
	}
}

// TestMarkedKey: keys carved from the arena and large keys (memory of
// their own) are built alike, with the mark in front of the last part.
func TestMarkedKey(t *testing.T) {
	var m writeMem
	big := strings.Repeat("r", arenaChunk/8+1)
	for _, tc := range []struct {
		mark  byte
		parts []string
		want  string
	}{
		{0, []string{"id"}, "id"},
		{0, []string{"c", "ticket", "T-1"}, "c\x00ticket\x00T-1"},
		{eventMark, []string{"c", "ticket", "T-1", "E1"}, "c\x00ticket\x00T-1\x00\x02E1"},
		{0, []string{big}, big},
		{0, []string{"c", big}, "c\x00" + big},
		{timerMark, []string{"c", "ticket", big, "rule"}, "c\x00ticket\x00" + big + "\x00\x01rule"},
	} {
		if got := string(m.markedKey(tc.mark, tc.parts...)); got != tc.want {
			t.Errorf("markedKey(%d, %d parts) = %q, want %q", tc.mark, len(tc.parts), shorten(got), shorten(tc.want))
		}
	}
}

func shorten(s string) string {
	if len(s) > 40 {
		return s[:20] + "..." + s[len(s)-20:]
	}
	return s
}
