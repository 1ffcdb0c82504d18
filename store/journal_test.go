package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// holdWriter blocks bbolt's single writer until the returned function is
// called: accepts are still answered (the journal takes them) but none
// reaches bbolt.
func holdWriter(t *testing.T, db *DB) (release func()) {
	t.Helper()
	held, done := make(chan struct{}), make(chan struct{})
	go func() {
		_ = db.Update(func(*Tx) error {
			close(held)
			<-done
			return nil
		})
	}()
	<-held
	released := false
	return func() {
		if !released {
			released = true
			close(done)
		}
	}
}

// crashCopy copies the store file and its journal segments into a new
// directory, as a crash would leave them, and returns the copy's path.
func crashCopy(t *testing.T, db *testDB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "crashed")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	segs, err := listSegments(db.path)
	if err != nil {
		t.Fatal(err)
	}
	files := []string{db.path}
	for _, s := range segs {
		files = append(files, s.path)
	}
	for _, f := range files {
		copyFile(t, f, filepath.Join(dir, filepath.Base(f)))
	}
	return filepath.Join(dir, filepath.Base(db.path))
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// openCopy opens a crash copy with the test's clock.
func openCopy(t *testing.T, path string, clock *fakeClock) *DB {
	t.Helper()
	db, err := Open(path, Options{Now: clock.Now, LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("open crash copy: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestAcceptIsVisibleBeforeItReachesBbolt: while the writer is held,
// accepted items are found, counted, deduplicated and finished.
func TestAcceptIsVisibleBeforeItReachesBbolt(t *testing.T) {
	db := mustOpen(t)
	release := holdWriter(t, db.DB)
	defer release()
	first := mustAccept(t, db.DB, newItem("zendesk", "k1"), time.Hour)
	if dup := mustAccept(t, db.DB, newItem("zendesk", "k1"), time.Hour); !dup.Duplicate || dup.ID != first.ID {
		t.Fatalf("duplicate of a journaled item: %+v, want duplicate of %s", dup, first.ID)
	}
	given := newItem("zendesk", "k2")
	given.ID = "my-id"
	mustAccept(t, db.DB, given, time.Hour)
	again := newItem("zendesk", "k3")
	again.ID = "my-id"
	if _, err := db.Accept(context.Background(), again, time.Hour); !errors.Is(err, ErrInvalid) {
		t.Fatalf("reused id of a journaled item: err %v, want ErrInvalid", err)
	}
	it, err := db.Inbox(first.ID)
	if err != nil || it.State != InboxPending || string(it.Body) != payload {
		t.Fatalf("journaled item: %+v, %v", it, err)
	}
	st, err := db.Stats()
	if err != nil || st.InboxPending != 2 {
		t.Fatalf("stats while journaled: %+v, %v", st, err)
	}
	pending, err := db.PendingInbox("", 10)
	if got := ids(pending, func(it *InboxItem) string { return it.ID }); err != nil || !equalStrings(got, []string{first.ID, "my-id"}) {
		t.Fatalf("pending while journaled: %v, %v", got, err)
	}
	release()
	// The pipeline finishes items the applier has not reached (it waits
	// applyDelay): FinishInbox writes them itself.
	db.update(func(tx *Tx) error { return tx.FinishInbox(first.ID, InboxProcessed, "", []string{"ev"}) })
	if it, err := db.Inbox(first.ID); err != nil || it.State != InboxProcessed {
		t.Fatalf("finished item: %+v, %v", it, err)
	}
	st, _ = db.Stats()
	if st.InboxPending != 1 {
		t.Fatalf("pending after finish %d, want 1", st.InboxPending)
	}
	pending, err = db.PendingInbox("", 10)
	if got := ids(pending, func(it *InboxItem) string { return it.ID }); err != nil || !equalStrings(got, []string{"my-id"}) {
		t.Fatalf("pending after finish: %v, %v", got, err)
	}
	if err := checkCounters(db.DB); err != nil {
		t.Fatal(err)
	}
	if err := checkDedupe(db.DB); err != nil {
		t.Fatal(err)
	}
	st, _ = db.Stats()
	if st.InboxPending != 1 {
		t.Fatalf("pending after the journal is applied %d, want 1", st.InboxPending)
	}
}

// TestJournalReplayAfterCrash: items acknowledged but not yet in bbolt when
// the process died are in bbolt after the next Open, once, with their
// dedupe keys; a torn record at the end is ignored.
func TestJournalReplayAfterCrash(t *testing.T) {
	tests := []struct {
		name string
		tear func(t *testing.T, seg string)
	}{
		{"clean end", func(*testing.T, string) {}},
		{"torn last record", func(t *testing.T, seg string) {
			rec := (&jrec{seq: 1 << 40, at: 1, id: []byte("TORN"), data: []byte(`{}`)}).appendTo(nil)
			appendBytes(t, seg, rec[:len(rec)-3])
		}},
		{"corrupt checksum", func(t *testing.T, seg string) {
			rec := (&jrec{seq: 1 << 40, at: 1, id: []byte("BAD"), data: []byte(`{}`)}).appendTo(nil)
			rec[len(rec)-1] ^= 0xff
			appendBytes(t, seg, rec)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := mustOpen(t)
			applied := mustAccept(t, db.DB, newItem("zendesk", "before"), time.Hour)
			if err := db.flushJournal(); err != nil {
				t.Fatal(err)
			}
			release := holdWriter(t, db.DB)
			var want []string
			for i := range 20 {
				want = append(want, mustAccept(t, db.DB, newItem("zendesk", fmt.Sprint("k", i)), time.Hour).ID)
			}
			path := crashCopy(t, db)
			release()
			segs, err := listSegments(path)
			if err != nil || len(segs) != 1 {
				t.Fatalf("segments of the copy: %v, %v", segs, err)
			}
			tt.tear(t, segs[0].path)

			re := openCopy(t, path, db.clock)
			pending, err := re.PendingInbox("", 100)
			if err != nil {
				t.Fatal(err)
			}
			got := ids(pending, func(it *InboxItem) string { return it.ID })
			if !equalStrings(got, append([]string{applied.ID}, want...)) {
				t.Fatalf("after replay\n got %v\nwant %v", got, append([]string{applied.ID}, want...))
			}
			if dup := mustAccept(t, re, newItem("zendesk", "k7"), time.Hour); !dup.Duplicate || dup.ID != want[7] {
				t.Fatalf("dedupe key not replayed: %+v", dup)
			}
			if err := checkCounters(re); err != nil {
				t.Fatal(err)
			}
			if err := checkDedupe(re); err != nil {
				t.Fatal(err)
			}
			if left, _ := listSegments(path); len(left) != 1 || left[0].num != segs[0].num+1 {
				t.Fatalf("segments after replay: %v (replayed ones must be gone, a new one started)", left)
			}
		})
	}
}

func appendBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

// TestJournalSegmentsRotateAndGo: full segments are removed once applied,
// and Close leaves no journal behind.
func TestJournalSegmentsRotateAndGo(t *testing.T) {
	db := mustOpen(t)
	db.journal.mu.Lock()
	db.journal.maxSeg = 2048
	db.journal.mu.Unlock()
	for i := range 60 {
		mustAccept(t, db.DB, newItem("zendesk", fmt.Sprint("k", i)), time.Hour)
	}
	if err := db.flushJournal(); err != nil {
		t.Fatal(err)
	}
	segs, err := listSegments(db.path)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != 1 || segs[0].num < 3 {
		t.Fatalf("segments %v: want only the current one, after several rotations", segs)
	}
	db.reopen()
	if segs, _ := listSegments(db.path); len(segs) != 1 || segs[0].num != 1 {
		t.Fatalf("segments after a clean reopen: %v, want a fresh first one", segs)
	}
	st, _ := db.Stats()
	if st.InboxPending != 60 {
		t.Fatalf("pending %d, want 60", st.InboxPending)
	}
}

// TestPendingInboxMatchesStoredItems: the items PendingInbox hands over
// without decoding equal a decode of what is stored, also when the caller
// changes its item (and strings it owns) after Accept.
func TestPendingInboxMatchesStoredItems(t *testing.T) {
	db := mustOpen(t)
	connector := []byte("zendesk")
	item := newItem(string(connector), "k")
	item.Query = map[string][]string{"a": {"1"}}
	item.RawBody = []byte("a=1")
	res := mustAccept(t, db.DB, item, time.Hour)
	item.Headers["X-Zendesk-Webhook-Invocation-Id"][0] = "changed"
	item.Body[2] = 'X'
	pending, err := db.PendingInbox("", 10)
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending: %v, %v", pending, err)
	}
	var stored InboxItem
	if err := db.flushJournal(); err != nil {
		t.Fatal(err)
	}
	if err := db.View(func(tx *Tx) error {
		return json.Unmarshal(tx.b(bucketInbox).Get([]byte(res.ID)), &stored)
	}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(pending[0], &stored) {
		t.Fatalf("handed over %+v\nstored     %+v", pending[0], stored)
	}
	// A second call (the cache handed the item over) decodes it.
	again, err := db.PendingInbox("", 10)
	if err != nil || len(again) != 1 || !reflect.DeepEqual(again[0], &stored) {
		t.Fatalf("second call: %+v, %v", again, err)
	}
}

// TestFinishInboxKeepsTheItem: the finished item keeps every field it was
// accepted with, whether its stored JSON is patched (written by Accept) or
// decoded and encoded again (anything else).
func TestFinishInboxKeepsTheItem(t *testing.T) {
	db := mustOpen(t)
	id := mustAccept(t, db.DB, newItem("zendesk", "k"), time.Hour).ID
	before, err := db.Inbox(id)
	if err != nil {
		t.Fatal(err)
	}
	for i, state := range []string{InboxFailed, InboxProcessed} {
		db.clock.Advance(time.Second)
		db.update(func(tx *Tx) error { return tx.FinishInbox(id, state, fmt.Sprint("r", i), []string{fmt.Sprint("e", i)}) })
		after, err := db.Inbox(id)
		if err != nil {
			t.Fatal(err)
		}
		want := *before
		want.State, want.Reason, want.EventIDs, want.ProcessedAt = state, fmt.Sprint("r", i), []string{fmt.Sprint("e", i)}, db.clock.Now()
		if !reflect.DeepEqual(after, &want) {
			t.Fatalf("after finish %d:\n got %+v\nwant %+v", i, after, want)
		}
	}
	if err := checkCounters(db.DB); err != nil {
		t.Fatal(err)
	}
}

// FuzzReadSegment feeds arbitrary segment contents to the replay reader:
// it never panics, and what it returns accounts for every byte of the
// input: whole records that encode back to their place in it, in seq
// order, with the skipped spans between them and the tail after them.
func FuzzReadSegment(f *testing.F) {
	rec := func(seq uint64, id, dkey, data string) []byte {
		r := &jrec{seq: seq, at: 7, window: time.Hour, id: []byte(id), data: []byte(data)}
		if dkey != "" {
			r.dkey = []byte(dkey)
		}
		return r.appendTo(nil)
	}
	two := append(rec(1, "01JA", "zendesk\x00k", `{"id":"01JA"}`), rec(2, "01JB", "", `{}`)...)
	f.Add(two)
	f.Add(two[:len(two)-5])
	damaged := append([]byte{}, two...)
	damaged[12] ^= 0xff
	f.Add(damaged)
	f.Add([]byte{})
	f.Add(make([]byte, 64))
	f.Add([]byte{0, 0, 0, 40, 1, 2, 3, 4, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "seg")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		read, err := readSegment(path)
		if err != nil {
			t.Fatal(err)
		}
		off, skipped, prev := int64(0), read.skipped, uint64(0)
		for i, r := range read.recs {
			if len(skipped) > 0 && skipped[0].off == off {
				if skipped[0].len <= 0 {
					t.Fatalf("empty skipped span %+v", skipped[0])
				}
				off += skipped[0].len
				skipped = skipped[1:]
			}
			enc := r.appendTo(nil)
			if off+int64(len(enc)) > int64(len(data)) || string(enc) != string(data[off:off+int64(len(enc))]) {
				t.Fatalf("record %d does not encode back to the input at %d", i, off)
			}
			if r.seq <= prev {
				t.Fatalf("record %d: seq %d after %d", i, r.seq, prev)
			}
			off, prev = off+int64(len(enc)), r.seq
		}
		if len(skipped) > 0 || off+read.tail != int64(len(data)) {
			t.Fatalf("spans %+v left over, or %d bytes of records + tail %d != %d", skipped, off, read.tail, len(data))
		}
	})
}

func TestBacklogPause(t *testing.T) {
	tests := []struct {
		backlog int64
		want    time.Duration
	}{
		{0, 0},
		{backlogSoftLimit, 0},
		{backlogSoftLimit + 1, 10 * time.Microsecond},
		{backlogSoftLimit + 1000, 10 * time.Millisecond},
		{backlogSoftLimit + 10000, maxBacklogPause},
		{1 << 40, maxBacklogPause},
	}
	for _, tt := range tests {
		if got := backlogPause(tt.backlog); got != tt.want {
			t.Errorf("backlogPause(%d) = %v, want %v", tt.backlog, got, tt.want)
		}
	}
}

// TestBacklogCountsUnfinishedItems: the backlog behind backpressure counts
// accepted items until they are finished, and survives a reopen.
func TestBacklogCountsUnfinishedItems(t *testing.T) {
	db := mustOpen(t)
	var ids []string
	for i := range 5 {
		ids = append(ids, mustAccept(t, db.DB, newItem("zendesk", fmt.Sprint("k", i)), time.Hour).ID)
	}
	mustAccept(t, db.DB, newItem("zendesk", "k0"), time.Hour) // a duplicate adds nothing
	if got := db.backlog.Load(); got != 5 {
		t.Fatalf("backlog %d after 5 accepts, want 5", got)
	}
	db.update(func(tx *Tx) error { return tx.FinishInbox(ids[0], InboxProcessed, "", nil) })
	db.update(func(tx *Tx) error { return tx.FinishInbox(ids[0], InboxFailed, "again", nil) }) // not pending any more
	if err := db.Update(func(tx *Tx) error {
		if err := tx.FinishInbox(ids[1], InboxProcessed, "", nil); err != nil {
			return err
		}
		return errors.New("roll back")
	}); err == nil {
		t.Fatal("rolled-back update returned nil")
	}
	if got := db.backlog.Load(); got != 4 {
		t.Fatalf("backlog %d, want 4 (one finished, one finish rolled back)", got)
	}
	db.reopen()
	if got := db.backlog.Load(); got != 4 {
		t.Fatalf("backlog after reopen %d, want 4", got)
	}
}

// TestApplyChunk: one applier transaction takes records up to the one that
// makes maxApply records not yet in bbolt; records already written (by
// FinishInbox) do not count, so they never cost a commit of their own.
func TestApplyChunk(t *testing.T) {
	db := mustOpen(t)
	const n = 3 * maxApply
	recs := make([]*jrec, n)
	for i := range recs {
		recs[i] = &jrec{seq: uint64(i + 1), id: fmt.Appendf(nil, "id-%05d", i)}
	}
	// Every other record of the first 2*maxApply is in bbolt already.
	for i := 0; i < 2*maxApply; i += 2 {
		putRaw(t, db.DB, bucketInbox, recs[i].id, []byte(`{}`))
	}
	var chunk, all, none int
	if err := db.bolt.View(func(btx *bolt.Tx) error {
		inbox := btx.Bucket([]byte(bucketInbox))
		chunk = applyChunk(inbox, recs)
		all = applyChunk(inbox, recs[: 2*maxApply : 2*maxApply][:maxApply])
		none = applyChunk(inbox, recs[2*maxApply:])
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// maxApply missing records among the first 2*maxApply: the last of
	// them is record 2*maxApply-1.
	if chunk != 2*maxApply {
		t.Errorf("chunk of a half-applied queue = %d, want %d", chunk, 2*maxApply)
	}
	if all != maxApply {
		t.Errorf("chunk of a short queue = %d, want all %d", all, maxApply)
	}
	if none != maxApply {
		t.Errorf("chunk of records none of which is in bbolt = %d, want %d", none, maxApply)
	}
}

// A crash after retention pruned old webhooks does not bring them back: the
// journal segment still holds their records (a segment lives until it is
// closed), but replay skips every record up to the applied position.
func TestReplayAfterPruneKeepsPrunedItemsGone(t *testing.T) {
	db := mustOpen(t)
	old := mustAccept(t, db.DB, newItem("zendesk", "old"), time.Hour).ID
	db.update(func(tx *Tx) error { return tx.FinishInbox(old, InboxProcessed, "", nil) })
	if err := db.flushJournal(); err != nil {
		t.Fatal(err)
	}
	db.clock.Advance(31 * 24 * time.Hour)
	if res, err := db.PruneInbox(context.Background(), db.clock.Now().Add(-30*24*time.Hour)); err != nil || res.Deleted != 1 {
		t.Fatalf("prune: %+v, %v", res, err)
	}
	fresh := mustAccept(t, db.DB, newItem("zendesk", "fresh"), time.Hour).ID // journaled, not applied
	crashed := openCopy(t, crashCopy(t, db), db.clock)
	if _, err := crashed.Inbox(old); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the pruned item after a crash: %v, want it gone", err)
	}
	pending, err := crashed.PendingInbox("", 0)
	if err != nil || len(pending) != 1 || pending[0].ID != fresh {
		t.Fatalf("pending after the crash: %v, %v; want only %s", ids(pending, func(it *InboxItem) string { return it.ID }), err, fresh)
	}
}

// A segment that cannot be created (here a directory stands in its way,
// as a full disk or too many open files would) fails those accepts only:
// the intake takes webhooks again once it can, and nothing is lost.
func TestJournalRotationFailureIsNotForever(t *testing.T) {
	db := mustOpen(t)
	db.journal.mu.Lock()
	db.journal.maxSeg = 1 // every append rotates
	next := segmentPath(db.journal.base, db.journal.cur.num+1)
	db.journal.mu.Unlock()
	if err := os.Mkdir(next, 0o700); err != nil {
		t.Fatal(err)
	}
	first := mustAccept(t, db.DB, newItem("zendesk", "first"), time.Hour).ID // into the first segment
	if _, err := db.Accept(context.Background(), newItem("zendesk", "blocked"), time.Hour); err == nil {
		t.Fatal("accept with the next segment blocked succeeded")
	}
	if err := os.Remove(next); err != nil {
		t.Fatal(err)
	}
	second := mustAccept(t, db.DB, newItem("zendesk", "second"), time.Hour).ID
	crashed := openCopy(t, crashCopy(t, db), db.clock)
	for _, id := range []string{first, second} {
		if _, err := crashed.Inbox(id); err != nil {
			t.Fatalf("accepted %s lost: %v", id, err)
		}
	}
}
