package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// logBuffer collects what a store logs, for tests to read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// recordOffsets returns where each record of a segment file starts.
func recordOffsets(t *testing.T, path string) []int64 {
	t.Helper()
	recs, err := readSegment(path)
	if err != nil {
		t.Fatal(err)
	}
	var offs []int64
	off := int64(0)
	for _, r := range recs.recs {
		offs = append(offs, off)
		off += int64(r.encodedLen())
	}
	return offs
}

// corruptAt overwrites bytes of a file at off.
func corruptAt(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// TestJournalReplaySkipsCorruptRecords: a corrupt record in the middle of
// a segment costs that record only: replay resynchronises on the next
// valid record, logs the skipped span (segment, offset, length) as an
// error, counts it in Stats and keeps the segment for inspection. A torn
// or corrupt end (nothing valid after it) is silent.
func TestJournalReplaySkipsCorruptRecords(t *testing.T) {
	tests := []struct {
		name      string
		corrupt   []int // records whose bytes are damaged
		where     func(rec []byte) (int, []byte)
		wantSpans int
	}{
		{"checksum of a middle record", []int{7}, func(rec []byte) (int, []byte) { return len(rec) - 10, []byte("XXXX") }, 1},
		{"length of a middle record", []int{7}, func([]byte) (int, []byte) { return 0, []byte{0xff, 0xff, 0xff, 0xff} }, 1},
		{"length made short", []int{7}, func([]byte) (int, []byte) { return 2, []byte{0, 40} }, 1},
		{"header zeroed", []int{7}, func([]byte) (int, []byte) { return 0, make([]byte, 40) }, 1},
		{"two apart", []int{3, 12}, func(rec []byte) (int, []byte) { return 30, []byte{0} }, 2},
		{"two in a row", []int{3, 4}, func(rec []byte) (int, []byte) { return 30, []byte{0} }, 1},
		{"the first", []int{0}, func(rec []byte) (int, []byte) { return 9, []byte{0xee} }, 1},
		{"the last (silent: a torn tail)", []int{19}, func(rec []byte) (int, []byte) { return len(rec) - 1, []byte{0} }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, path, seg, ids := journaledCrashCopy(t, 20)
			offs := recordOffsets(t, seg)
			if len(offs) != 20 {
				t.Fatalf("%d records in the segment, want 20", len(offs))
			}
			data, err := os.ReadFile(seg)
			if err != nil {
				t.Fatal(err)
			}
			lost := map[string]bool{}
			for _, i := range tt.corrupt {
				end := int64(len(data))
				if i+1 < len(offs) {
					end = offs[i+1]
				}
				at, b := tt.where(data[offs[i]:end])
				corruptAt(t, seg, offs[i]+int64(at), b)
				lost[ids[i]] = true
			}

			var logs logBuffer
			re, err := Open(path, Options{Now: db.clock.Now, LockTimeout: 100 * time.Millisecond,
				Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			t.Cleanup(func() { re.Close() })
			pending, err := re.PendingInbox("", 100)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, id := range ids {
				if !lost[id] {
					want = append(want, id)
				}
			}
			got := make([]string, 0, len(pending))
			for _, it := range pending {
				got = append(got, it.ID)
			}
			if !equalStrings(got, want) {
				t.Fatalf("after replay\n got %v\nwant %v", got, want)
			}
			st, err := re.Stats()
			if err != nil || st.InboxPending != len(want) || st.JournalSkipped != tt.wantSpans {
				t.Fatalf("stats %+v, %v; want %d pending, %d skipped spans", st, err, len(want), tt.wantSpans)
			}
			if err := checkCounters(re); err != nil {
				t.Fatal(err)
			}
			if err := checkDedupe(re); err != nil {
				t.Fatal(err)
			}
			out := logs.String()
			if n := strings.Count(out, "level=ERROR"); n != tt.wantSpans {
				t.Fatalf("%d error lines, want %d:\n%s", n, tt.wantSpans, out)
			}
			keptFiles, _ := filepath.Glob(seg + ".*" + corruptSuffix)
			if tt.wantSpans == 0 {
				if len(keptFiles) != 0 {
					t.Fatalf("a segment with a torn end was kept as %v", keptFiles)
				}
				return
			}
			if len(keptFiles) != 1 {
				t.Fatalf("damaged segment kept as %v, want one file", keptFiles)
			}
			kept := keptFiles[0]
			first := offs[tt.corrupt[0]]
			if !strings.Contains(out, fmt.Sprintf("offset=%d ", first)) || !strings.Contains(out, "segment="+seg) {
				t.Fatalf("the log does not say where (segment %s, offset %d):\n%s", seg, first, out)
			}
			if b, err := os.ReadFile(kept); err != nil || !bytes.Equal(b[:offs[tt.corrupt[0]]], data[:offs[tt.corrupt[0]]]) {
				t.Fatalf("corrupt segment not kept as %s: %v", kept, err)
			}
			// Reopening again replays nothing twice and counts nothing again.
			if err := re.Close(); err != nil {
				t.Fatal(err)
			}
			again, err := Open(path, Options{Now: db.clock.Now, LockTimeout: 100 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer again.Close()
			if st2, err := again.Stats(); err != nil || st2.InboxPending != len(want) || st2.JournalSkipped != tt.wantSpans {
				t.Fatalf("stats after another open %+v, %v", st2, err)
			}
		})
	}
}

// TestJournalResyncIgnoresStaleRecords: records of an append that failed
// can survive behind the records written over them (a truncate that did
// not reach the disk). Their seqs are lower than those before them, so
// replay never takes them for records to resynchronise on.
func TestJournalResyncIgnoresStaleRecords(t *testing.T) {
	db, path, seg, _ := journaledCrashCopy(t, 5)
	// Garbage, then a well-formed record with a seq already used: stale.
	stale := (&jrec{seq: 2, at: 1, id: []byte("01STALE0000000000000000000"), data: []byte(`{"id":"01STALE0000000000000000000"}`)}).appendTo(nil)
	appendBytes(t, seg, append([]byte("garbage"), stale...))
	var logs logBuffer
	re, err := Open(path, Options{Now: db.clock.Now, LockTimeout: 100 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer re.Close()
	if _, err := re.Inbox("01STALE0000000000000000000"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("stale record replayed: %v", err)
	}
	if st, _ := re.Stats(); st.InboxPending != 5 || st.JournalSkipped != 0 {
		t.Fatalf("stats %+v, want 5 pending, nothing skipped (a torn end)", st)
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("error logged for a torn end:\n%s", logs.String())
	}
}

// openFaulty opens a store whose applier runs only when asked, with
// test hooks.
func openFaulty(t *testing.T, path string, clock *fakeClock, opts Options) *DB {
	t.Helper()
	opts.Now, opts.LockTimeout, opts.applyWait = clock.Now, 100*time.Millisecond, time.Hour
	db, err := Open(path, opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return db
}

// TestCloseReportsUnappliedRecords: when the last apply at Close fails,
// Close says how many records stay in the journal; the next Open applies
// them.
func TestCloseReportsUnappliedRecords(t *testing.T) {
	clock := newClock()
	path := t.TempDir() + "/hookline.db"
	var failing sync.Mutex
	fail := false
	db := openFaulty(t, path, clock, Options{applyFault: func() error {
		failing.Lock()
		defer failing.Unlock()
		if fail {
			return errors.New("disk on fire")
		}
		return nil
	}})
	var ids []string
	for i := range 3 {
		ids = append(ids, mustAccept(t, db, newItem("zendesk", fmt.Sprint("k", i)), time.Hour).ID)
	}
	failing.Lock()
	fail = true
	failing.Unlock()
	err := db.Close()
	if err == nil || !strings.Contains(err.Error(), "3 accepted records") || !strings.Contains(err.Error(), "replayed on the next open") || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("close with a failing apply: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	re := openFaulty(t, path, clock, Options{})
	defer re.Close()
	for _, id := range ids {
		if _, err := re.inboxView(id); err != nil {
			t.Fatalf("record %s not in bbolt after the next open: %v", id, err)
		}
	}
	if dup := mustAccept(t, re, newItem("zendesk", "k1"), time.Hour); !dup.Duplicate || dup.ID != ids[1] {
		t.Fatalf("dedupe key not applied: %+v", dup)
	}
	if err := checkCounters(re); err != nil {
		t.Fatal(err)
	}
}

// TestFailedAppendKeepsOlderDedupeKey: an accept whose window has passed
// for an unapplied record's key replaces it in memory; when its journal
// write fails, the older record must be found again for that key.
func TestFailedAppendKeepsOlderDedupeKey(t *testing.T) {
	clock := newClock()
	var mu sync.Mutex
	failSync := false
	db := openFaulty(t, t.TempDir()+"/hookline.db", clock, Options{journalSync: func(f *os.File) error {
		mu.Lock()
		defer mu.Unlock()
		if failSync {
			failSync = false // the append fails; the cut after it syncs
			return errors.New("injected fdatasync failure")
		}
		return fdatasync(f)
	}})
	defer db.Close()
	first := mustAccept(t, db, newItem("zendesk", "K"), time.Hour)
	clock.Advance(2 * time.Second)
	mu.Lock()
	failSync = true
	mu.Unlock()
	// A 1s window has passed for the first record: this one is new, and
	// its journal write fails.
	if _, err := db.Accept(context.Background(), newItem("zendesk", "K"), time.Second); err == nil {
		t.Fatal("accept with a failing journal write succeeded")
	}
	if dup := mustAccept(t, db, newItem("zendesk", "K"), time.Hour); !dup.Duplicate || dup.ID != first.ID {
		t.Fatalf("after the failed write: %+v, want a duplicate of %s", dup, first.ID)
	}
	// Also once the first record is in bbolt.
	if err := db.flushJournal(); err != nil {
		t.Fatal(err)
	}
	if dup := mustAccept(t, db, newItem("zendesk", "K"), time.Hour); !dup.Duplicate || dup.ID != first.ID {
		t.Fatalf("after the flush: %+v, want a duplicate of %s", dup, first.ID)
	}
}

// TestFailedAppendCutIsSynced: after a failed fdatasync the segment is
// cut back to its last good record and the cut is synced before the next
// append; when the cut cannot be synced, the journal refuses appends
// (its file's state on disk is unknown) and what was acknowledged before
// survives.
func TestFailedAppendCutIsSynced(t *testing.T) {
	for _, cutFails := range []bool{false, true} {
		t.Run(fmt.Sprint("cut sync fails: ", cutFails), func(t *testing.T) {
			clock := newClock()
			path := t.TempDir() + "/hookline.db"
			var (
				mu    sync.Mutex
				calls int
				sizes []int64
				mode  int // 0: pass; 1: fail the next sync; 2: fail the next two
			)
			db := openFaulty(t, path, clock, Options{journalSync: func(f *os.File) error {
				mu.Lock()
				defer mu.Unlock()
				calls++
				if fi, err := f.Stat(); err == nil {
					sizes = append(sizes, fi.Size())
				}
				if mode > 0 {
					mode--
					return errors.New("injected sync failure")
				}
				return fdatasync(f)
			}})
			acked := mustAccept(t, db, newItem("zendesk", "acked"), time.Hour)
			mu.Lock()
			good := sizes[len(sizes)-1] // the segment's size with the acked record
			calls, sizes = 0, nil
			mode = 1
			if cutFails {
				mode = 2
			}
			mu.Unlock()
			if _, err := db.Accept(context.Background(), newItem("zendesk", "failed"), time.Hour); err == nil {
				t.Fatal("accept with a failing fdatasync succeeded")
			}
			mu.Lock()
			if calls != 2 || sizes[0] <= good || sizes[1] != good {
				mu.Unlock()
				t.Fatalf("%d syncs at sizes %v; want the failed append's (> %d), then one of the cut (= %d)", calls, sizes, good, good)
			}
			mu.Unlock()
			next, err := db.Accept(context.Background(), newItem("zendesk", "next"), time.Hour)
			if cutFails != (err != nil) {
				t.Fatalf("accept after the failed append: %+v, %v (cut sync failed: %v)", next, err, cutFails)
			}
			crashed := openCopy(t, crashCopy(t, &testDB{DB: db, path: path}), clock)
			if _, err := crashed.Inbox(acked.ID); err != nil {
				t.Fatalf("acknowledged record lost: %v", err)
			}
			if !cutFails {
				if _, err := crashed.Inbox(next.ID); err != nil {
					t.Fatalf("record after the cut lost: %v", err)
				}
			}
			if st, _ := crashed.Stats(); st.InboxPending != 2-btoi(cutFails) || st.JournalSkipped != 0 {
				t.Fatalf("after the crash: %+v", st)
			}
			db.Close()
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// A replay that fails after finding damaged bytes runs again at the next
// Open, which counts the damage once.
func TestFailedReplayCountsDamageOnce(t *testing.T) {
	db, path, seg, _ := journaledCrashCopy(t, 10)
	corruptAt(t, seg, recordOffsets(t, seg)[4], make([]byte, 40))
	if _, err := Open(path, Options{Now: db.clock.Now, LockTimeout: 100 * time.Millisecond,
		applyFault: func() error { return errors.New("disk full") }}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("open with a failing replay: %v", err)
	}
	re, err := Open(path, Options{Now: db.clock.Now, LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer re.Close()
	if st, err := re.Stats(); err != nil || st.JournalSkipped != 1 || st.InboxPending != 9 {
		t.Fatalf("stats %+v, %v; want one skipped span and 9 items", st, err)
	}
}

// journaledCrashCopy accepts n items into a fresh store while its applier
// is held, so that they are only in the intake journal, and returns the
// store, a crash copy of its files (path) holding one journal segment
// (seg), and the items' ids in order.
func journaledCrashCopy(t *testing.T, n int) (db *testDB, path, seg string, ids []string) {
	t.Helper()
	db = mustOpen(t)
	release := holdWriter(t, db.DB)
	for i := range n {
		ids = append(ids, mustAccept(t, db.DB, newItem("zendesk", fmt.Sprint("k", i)), time.Hour).ID)
	}
	path = crashCopy(t, db)
	release()
	segs, err := listSegments(path)
	if err != nil || len(segs) != 1 {
		t.Fatalf("segments of the copy: %v, %v", segs, err)
	}
	return db, path, segs[0].path, ids
}

// TestReplayCountsDamageOnceWhenALaterSegmentFails: the replay at Open
// counts the damaged span of one segment, then fails on a later segment
// (a full disk); the next Open replays again and must not count the same
// span twice: the damaged segment was kept under its .corrupt name at
// once.
func TestReplayCountsDamageOnceWhenALaterSegmentFails(t *testing.T) {
	db := mustOpen(t)
	db.journal.mu.Lock()
	db.journal.maxSeg = 4 << 10 // small segments
	db.journal.mu.Unlock()
	release := holdWriter(t, db.DB)
	var ids []string
	for i := range 40 {
		ids = append(ids, mustAccept(t, db.DB, newItem("zendesk", fmt.Sprint("k", i)), time.Hour).ID)
	}
	path := crashCopy(t, db)
	release()
	segs, err := listSegments(path)
	if err != nil || len(segs) < 2 {
		t.Fatalf("segments of the copy: %v, %v (want at least 2)", segs, err)
	}
	// Damage one record in the middle of the first segment.
	offs := recordOffsets(t, segs[0].path)
	if len(offs) < 3 {
		t.Fatalf("%d records in the first segment", len(offs))
	}
	corruptAt(t, segs[0].path, offs[1]+12, []byte("XXXX"))

	// First Open: segment 1 replays (and its damage is counted), the
	// apply of segment 2 fails.
	calls := 0
	_, err = Open(path, Options{Now: db.clock.Now, LockTimeout: 100 * time.Millisecond,
		applyFault: func() error {
			calls++
			if calls >= 2 {
				return errors.New("disk full")
			}
			return nil
		}})
	if err == nil {
		t.Fatal("open with a failing replay of segment 2 succeeded")
	}
	re, err := Open(path, Options{Now: db.clock.Now, LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer re.Close()
	st, err := re.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.JournalSkipped != 1 {
		t.Fatalf("one damaged span, JournalSkipped = %d after a replay that failed once (want 1); stats %+v", st.JournalSkipped, st)
	}
}
