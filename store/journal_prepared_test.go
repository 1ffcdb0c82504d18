package store

import (
	"bytes"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

// setJournal sets the segment size and the preparation threshold of db's
// journal.
func setJournal(db *DB, maxSeg, prepareAfter int64) {
	db.journal.mu.Lock()
	db.journal.maxSeg, db.journal.prepareAfter = maxSeg, prepareAfter
	db.journal.mu.Unlock()
}

// waitSpare waits until the journal's spare segment (if one is being
// prepared) is done, and reports whether there was one.
func waitSpare(db *DB) bool {
	db.journal.mu.Lock()
	sp := db.journal.spare
	db.journal.mu.Unlock()
	if sp == nil {
		return false
	}
	<-sp.done
	return true
}

// journalState is the current segment's number and whether it was
// prepared.
func journalState(db *DB) (uint64, bool) {
	db.journal.mu.Lock()
	defer db.journal.mu.Unlock()
	return db.journal.cur.num, db.journal.prepared
}

// TestJournalMovesToPreparedSegments: once a segment has taken
// prepareAfter bytes, the next one is prepared (zero-filled to the segment
// size) and the journal moves to it at the next append; from then on each
// prepared segment gets a prepared successor. A crash copy replays every
// acknowledged record once, with nothing reported as damaged, and a clean
// Close leaves no segment (spare included) behind.
func TestJournalMovesToPreparedSegments(t *testing.T) {
	const segSize = 16 << 10
	db := mustOpenJournaling(t)
	setJournal(db.DB, segSize, 2<<10)
	var ids []string
	accept := func() {
		ids = append(ids, mustAccept(t, db.DB, newItem("zendesk", fmt.Sprint("k", len(ids))), time.Hour).ID)
	}
	first, _ := journalState(db.DB)
	num, prepared := first, false
	for i := 0; !prepared; i++ {
		if i == 200 {
			t.Fatalf("after %d accepts (%d bytes each): still on segment %d, not prepared", i, newItemSize(t), num)
		}
		accept()
		waitSpare(db.DB)
		num, prepared = journalState(db.DB)
	}
	// It moved as soon as the spare was ready, not when the first was full.
	fi, err := os.Stat(segmentPath(db.path, first))
	if err != nil {
		t.Fatal(err)
	}
	if num != first+1 || fi.Size() < 2<<10 || fi.Size() > 2<<10+2*int64(newItemSize(t)+100) {
		t.Fatalf("moved to prepared segment %d (want %d) with the first segment at %d bytes, want just over 2 KiB", num, first+1, fi.Size())
	}
	if fi, err := os.Stat(segmentPath(db.path, num)); err != nil || fi.Size() != segSize {
		t.Fatalf("prepared segment: %v, %v; want %d bytes", fi, err, segSize)
	}
	// Fill three more segments; each prepared one prepares the next.
	for num < first+4 {
		if !waitSpare(db.DB) {
			t.Fatalf("prepared segment %d has no spare being prepared", num)
		}
		before := num
		for num == before {
			accept()
			num, prepared = journalState(db.DB)
		}
		if !prepared {
			t.Fatalf("segment %d after a full prepared one was not prepared", num)
		}
	}

	re := openCopy(t, crashCopy(t, db), db.clock)
	pending, err := re.PendingInbox("", len(ids)+10)
	if err != nil {
		t.Fatal(err)
	}
	if got := itemIDs(pending); !equalStrings(got, ids) {
		t.Fatalf("replayed %d items, want the %d acknowledged\n got %v\nwant %v", len(got), len(ids), got, ids)
	}
	st, err := re.Stats()
	if err != nil || st.JournalSkipped != 0 {
		t.Fatalf("replay of prepared segments reported damage: %+v, %v", st, err)
	}
	if err := checkCounters(re); err != nil {
		t.Fatal(err)
	}

	if err := db.DB.Close(); err != nil {
		t.Fatal(err)
	}
	if segs, _ := listSegments(db.path); len(segs) != 0 {
		t.Fatalf("segments after a clean close: %v, want none (the spare too)", segs)
	}
	db.open() // for the test's cleanup
}

// TestJournalSpareFailureFallsBack: a spare that cannot be prepared
// leaves the journal on growing segments; no other spare is tried for the
// same segment, and every acknowledged record survives a crash.
func TestJournalSpareFailureFallsBack(t *testing.T) {
	const segSize = 16 << 10
	db := mustOpenJournaling(t)
	setJournal(db.DB, segSize, 2<<10)
	first, _ := journalState(db.DB)
	blocked := segmentPath(db.path, first+1)
	if err := os.Mkdir(blocked, 0o700); err != nil { // the spare's file cannot be created
		t.Fatal(err)
	}
	var ids []string
	accept := func() {
		ids = append(ids, mustAccept(t, db.DB, newItem("zendesk", fmt.Sprint("k", len(ids))), time.Hour).ID)
	}
	for i := 0; ; i++ {
		if i == 200 {
			t.Fatal("the failed spare was never dropped")
		}
		accept()
		waitSpare(db.DB)
		db.journal.mu.Lock()
		dropped := db.journal.noSpare == first
		db.journal.mu.Unlock()
		if dropped {
			break
		}
	}
	accept() // no other spare for this segment
	db.journal.mu.Lock()
	spare, noSpare, prepared := db.journal.spare, db.journal.noSpare, db.journal.prepared
	db.journal.mu.Unlock()
	if spare != nil || noSpare != first || prepared {
		t.Fatalf("after a failed spare: spare %v, noSpare %d, prepared %v; want none, %d, false", spare, noSpare, prepared, first)
	}
	if err := os.Remove(blocked); err != nil {
		t.Fatal(err)
	}
	for num := first; num == first; num, _ = journalState(db.DB) {
		accept()
	}
	re := openCopy(t, crashCopy(t, db), db.clock)
	pending, err := re.PendingInbox("", len(ids)+10)
	if err != nil {
		t.Fatal(err)
	}
	if got := itemIDs(pending); !equalStrings(got, ids) {
		t.Fatalf("replayed %v, want %v", got, ids)
	}
}

// TestReadSegmentSkipsZeroRuns: a prepared segment's zero end is an empty
// tail, not damage; a valid record after a run of zeros (damage, or a
// short record after an unacknowledged append) is still found, whatever
// its length's leading zero bytes.
func TestReadSegmentSkipsZeroRuns(t *testing.T) {
	rec := func(seq uint64, data string) []byte {
		return (&jrec{seq: seq, at: 1, id: []byte(fmt.Sprint("ID", seq)), data: []byte(data)}).appendTo(nil)
	}
	r1, r2 := rec(1, `{}`), rec(2, `{"a":"`+string(bytes.Repeat([]byte("x"), 300))+`"}`)
	zeros := func(n int) []byte { return make([]byte, n) }
	tests := []struct {
		name      string
		file      []byte
		seqs      []uint64
		skipped   int
		tail      int64
		skipStart int64
	}{
		{"records then zeros", concat(r1, r2, zeros(4096)), []uint64{1, 2}, 0, 4096, 0},
		{"zeros then a short record", concat(zeros(1000), r1), []uint64{1}, 1, 0, 0},
		{"record, zeros, record", concat(r1, zeros(77), r2), []uint64{1, 2}, 1, 0, int64(len(r1))},
		{"all zeros", zeros(8192), nil, 0, 8192, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := t.TempDir() + "/seg"
			if err := os.WriteFile(path, tt.file, 0o600); err != nil {
				t.Fatal(err)
			}
			read, err := readSegment(path)
			if err != nil {
				t.Fatal(err)
			}
			var seqs []uint64
			for _, r := range read.recs {
				seqs = append(seqs, r.seq)
			}
			if fmt.Sprint(seqs) != fmt.Sprint(tt.seqs) || len(read.skipped) != tt.skipped || read.tail != tt.tail {
				t.Fatalf("records %v, skipped %v, tail %d; want %v, %d span(s), tail %d", seqs, read.skipped, read.tail, tt.seqs, tt.skipped, tt.tail)
			}
			if tt.skipped > 0 && read.skipped[0].off != tt.skipStart {
				t.Fatalf("skipped span %+v, want it to start at %d", read.skipped[0], tt.skipStart)
			}
		})
	}
}

// newItemSize is the journal record size of a newItem.
func newItemSize(t *testing.T) int {
	data, err := inboxItem(&sync.Pool{New: func() any { return new(encoder) }}, newItem("zendesk", "k0"))
	if err != nil {
		t.Fatal(err)
	}
	return len(data)
}

func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
