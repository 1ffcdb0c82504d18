package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The intake journal is a write-ahead log of accepted webhooks. Accept
// answers once a batch of records is written and fdatasync'd to it; the
// applier moves the records into bbolt (inbox, pending index, dedupe key)
// shortly after, in large batches. Acks therefore never wait for bbolt's
// single writer, which the pipeline holds for the whole of its batch
// transactions.
//
// Files: <db path>.journal.<8-digit segment number>. A segment is closed
// when it reaches journalSegmentSize and removed once every record in it
// is in bbolt. Open replays the segments it finds (records already in
// bbolt are skipped) and removes them.
//
// Record: length (4, big-endian, of what follows the checksum), CRC-32C
// (4) of what follows, then seq (8), stored-at nanos (8), window nanos (8),
// id length (2), id, dedupe key length (4), dedupe key, item JSON. Seqs
// grow strictly within a segment (and across segments).
//
// A torn or corrupt end of a segment (no valid record after it) was never
// acknowledged, because a record is answered only after its fdatasync:
// replay ignores it silently. Damage followed by valid records is rarer:
// a crash in the middle of an append whose pages reached the disk out of
// order (never acknowledged, so nothing is lost), or damage to the file.
// Replay resynchronises on the next valid record (a
// plausible length, a matching checksum, a well-formed body and a seq
// above the last good one, so records of a failed append that a crash
// left behind newer ones are not taken), reports the skipped span and
// keeps the segment (see replayJournal).

const (
	journalSuffix      = ".journal."
	journalSegmentSize = 64 << 20
	journalHeader      = 8
	journalFixed       = 8 + 8 + 8 + 2 + 4
	// maxJournalRecord bounds a record's length field on replay.
	maxJournalRecord = 256 << 20
)

// castagnoli is the CRC-32C table of journal checksums (immutable).
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// jrec is one accepted webhook on its way from the journal to bbolt.
type jrec struct {
	seq    uint64
	at     int64 // stored-at, unix nanos (the dedupe window starts here)
	window time.Duration
	id     []byte
	dkey   []byte // connector \x00 dedupe key; nil without dedupe
	data   []byte // item JSON, id filled in
	// finished is set once a transaction of FinishInbox that wrote the
	// item to bbolt, finished, has committed: the applier and the pending
	// lists skip it without a lookup (inBbolt). Unset, they look: a
	// commit's handlers run after readers can see the commit.
	finished atomic.Bool
}

// encodedLen is the record's size in the journal.
func (r *jrec) encodedLen() int {
	return journalHeader + journalFixed + len(r.id) + len(r.dkey) + len(r.data)
}

// appendTo appends the encoded record to b.
func (r *jrec) appendTo(b []byte) []byte {
	start := len(b)
	b = append(b, make([]byte, journalHeader)...)
	b = binary.BigEndian.AppendUint64(b, r.seq)
	b = binary.BigEndian.AppendUint64(b, uint64(r.at))
	b = binary.BigEndian.AppendUint64(b, uint64(r.window))
	b = binary.BigEndian.AppendUint16(b, uint16(len(r.id)))
	b = append(b, r.id...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(r.dkey)))
	b = append(b, r.dkey...)
	b = append(b, r.data...)
	body := b[start+journalHeader:]
	binary.BigEndian.PutUint32(b[start:], uint32(len(body)))
	binary.BigEndian.PutUint32(b[start+4:], crc32.Checksum(body, castagnoli))
	return b
}

// decodeRecord parses one record body (after length and checksum).
func decodeRecord(body []byte) (*jrec, error) {
	if len(body) < journalFixed {
		return nil, errors.New("short record")
	}
	r := &jrec{
		seq:    binary.BigEndian.Uint64(body[0:8]),
		at:     int64(binary.BigEndian.Uint64(body[8:16])),
		window: time.Duration(binary.BigEndian.Uint64(body[16:24])),
	}
	rest := body[24:]
	n := int(binary.BigEndian.Uint16(rest[:2]))
	rest = rest[2:]
	if n == 0 || len(rest) < n+4 {
		return nil, errors.New("bad id length")
	}
	r.id, rest = copyBytes(rest[:n]), rest[n:]
	n = int(binary.BigEndian.Uint32(rest[:4]))
	rest = rest[4:]
	if len(rest) < n {
		return nil, errors.New("bad dedupe key length")
	}
	if n > 0 {
		r.dkey = copyBytes(rest[:n])
	}
	r.data = copyBytes(rest[n:])
	return r, nil
}

// segment is one journal file.
type segment struct {
	num  uint64
	path string
	last uint64 // highest seq written to it
	kept string // replay: the name a damaged segment is kept under
}

// journal is the set of segment files; mu serialises appends, rotation
// and checkpoints.
type journal struct {
	base   string // db path; segments are base + journalSuffix + number
	maxSeg int64  // a segment this long is closed before the next append

	mu     sync.Mutex
	f      *os.File
	cur    segment
	off    int64
	closed []segment // full segments, oldest first
	err    error     // set when the journal can no longer be trusted
	buf    []byte

	// sync makes an append durable (fdatasync); syncCut makes the cut
	// after a failed append durable (fsync). Tests replace both.
	sync, syncCut func(*os.File) error
}

// segmentPath names segment num of base.
func segmentPath(base string, num uint64) string {
	return fmt.Sprintf("%s%s%08d", base, journalSuffix, num)
}

// listSegments returns the segment files of base in number order.
func listSegments(base string) ([]segment, error) {
	matches, err := filepath.Glob(base + journalSuffix + "*")
	if err != nil {
		return nil, fmt.Errorf("list journal segments: %w", err)
	}
	var segs []segment
	for _, m := range matches {
		num, err := strconv.ParseUint(strings.TrimPrefix(m, base+journalSuffix), 10, 64)
		if err != nil {
			continue
		}
		segs = append(segs, segment{num: num, path: m})
	}
	slices.SortFunc(segs, func(a, b segment) int {
		switch {
		case a.num < b.num:
			return -1
		case a.num > b.num:
			return 1
		}
		return 0
	})
	return segs, nil
}

// segmentRead is what readSegment found in one segment file.
type segmentRead struct {
	recs []*jrec // the valid records, in order
	// skipped are the damaged spans that valid records follow, in order.
	skipped []span
	// tail is how many bytes at the end hold no valid record: a torn last
	// append, or damage with nothing valid after it.
	tail int64
}

// span is a range of bytes of a segment file.
type span struct {
	off, len int64
}

// readSegment returns the valid records of one segment file, in order,
// and where it skipped damaged bytes to reach them.
func readSegment(path string) (segmentRead, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return segmentRead{}, fmt.Errorf("read journal segment %s: %w", path, err)
	}
	var (
		out     segmentRead
		prevSeq uint64
		bad     = -1 // start of the damaged span being skipped
	)
	for off := 0; off < len(data); {
		r, n := recordAt(data[off:], prevSeq)
		if r == nil {
			// Try the next byte: records are not aligned, and nothing
			// but a valid record's checksum says where one starts.
			if bad < 0 {
				bad = off
			}
			off++
			continue
		}
		if bad >= 0 {
			out.skipped = append(out.skipped, span{off: int64(bad), len: int64(off - bad)})
			bad = -1
		}
		out.recs = append(out.recs, r)
		prevSeq = r.seq
		off += n
	}
	if bad >= 0 {
		out.tail = int64(len(data) - bad)
	}
	return out, nil
}

// recordAt decodes the record at the start of data if there is a valid one
// with a seq above prevSeq, and returns it with its encoded length; else
// nil. The cheap checks come before the checksum, so scanning damaged bytes
// for the next record costs little.
func recordAt(data []byte, prevSeq uint64) (*jrec, int) {
	if len(data) < journalHeader+journalFixed {
		return nil, 0
	}
	n := binary.BigEndian.Uint32(data[:4])
	if n <= journalFixed || n > maxJournalRecord || int64(n) > int64(len(data)-journalHeader) {
		return nil, 0
	}
	body := data[journalHeader : journalHeader+int(n)]
	if binary.BigEndian.Uint64(body[:8]) <= prevSeq {
		return nil, 0
	}
	// The id and dedupe key lengths must fit before the checksum over up
	// to maxJournalRecord bytes is paid: scanning damaged bytes offset by
	// offset, few random headers get that far.
	idLen := int(binary.BigEndian.Uint16(body[24:26]))
	if idLen == 0 || idLen > maxIDLen || 26+idLen+4 > len(body) ||
		int64(binary.BigEndian.Uint32(body[26+idLen:30+idLen])) > int64(len(body)-30-idLen) {
		return nil, 0
	}
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(data[4:8]) {
		return nil, 0
	}
	r, err := decodeRecord(body)
	if err != nil {
		return nil, 0
	}
	return r, journalHeader + int(n)
}

// openJournal starts a new segment numbered after any that exist (the
// caller has replayed and removed those). syncHook, when not nil, replaces
// both of the journal's syncs (tests).
func openJournal(base string, next uint64, syncHook func(*os.File) error) (*journal, error) {
	j := &journal{base: base, maxSeg: journalSegmentSize, sync: fdatasync, syncCut: (*os.File).Sync}
	if syncHook != nil {
		j.sync, j.syncCut = syncHook, syncHook
	}
	if err := j.startSegment(next); err != nil {
		return nil, err
	}
	return j, nil
}

// startSegment creates segment num and makes its directory entry durable.
func (j *journal) startSegment(num uint64) error {
	f, seg, err := createSegment(j.base, num)
	if err != nil {
		return err
	}
	j.f, j.cur, j.off = f, seg, 0
	return nil
}

// createSegment creates (or empties) segment num and makes it durable in
// its directory.
func createSegment(base string, num uint64) (*os.File, segment, error) {
	path := segmentPath(base, num)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, segment{}, fmt.Errorf("create journal segment: %w", err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		_ = f.Close()
		return nil, segment{}, err
	}
	return f, segment{num: num, path: path}, nil
}

// syncDir fsyncs a directory, so a file created in it survives a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// append writes recs (in seq order) and fdatasyncs them. On an error
// nothing of recs counts as written: the segment is cut back to where it
// was, and when even that fails the journal refuses every later append.
func (j *journal) append(recs []*jrec) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return j.err
	}
	if j.off >= j.maxSeg {
		if err := j.rotate(); err != nil {
			return err
		}
	}
	n := 0
	for _, r := range recs {
		n += r.encodedLen()
	}
	buf := slices.Grow(j.buf[:0], n)
	for _, r := range recs {
		buf = r.appendTo(buf)
	}
	j.buf = buf
	if len(j.buf) > 4<<20 {
		j.buf = nil // do not keep a huge buffer after a burst
	}
	if _, err := j.f.WriteAt(buf, j.off); err != nil {
		return j.fail(fmt.Errorf("write journal: %w", err))
	}
	if err := j.sync(j.f); err != nil {
		return j.fail(fmt.Errorf("sync journal: %w", err))
	}
	j.off += int64(len(buf))
	j.cur.last = recs[len(recs)-1].seq
	return nil
}

// fail cuts the segment back after a failed append, makes the cut
// durable, and returns err.
//
// The cut must reach the disk before the next append: a failed fdatasync
// may still have written some of the batch, and without a synced cut a
// crash could bring those records (never acknowledged) back behind the
// ones appended later at the same offset. Replay would not take them (their
// seqs are lower than the records before them, see readSegment), but a
// batch cut off without a later append would be replayed as if accepted.
// Acknowledged records all lie before j.off, which the cut never touches;
// and the applied position only moves past records that were queued, which
// a failed batch never is. When the cut cannot be made or synced, the
// file's state is unknown and the journal refuses every later append.
func (j *journal) fail(err error) error {
	if terr := j.f.Truncate(j.off); terr != nil {
		j.err = fmt.Errorf("journal unusable after %v: truncate: %w", err, terr)
		return err
	}
	if serr := j.syncCut(j.f); serr != nil {
		j.err = fmt.Errorf("journal unusable after %v: sync the truncated segment: %w", err, serr)
	}
	return err
}

// rotate starts the next segment, then closes the current one. A segment
// that cannot be created fails this append only: the current segment stays
// in use, and the next append tries again (a full disk or too many open
// files must not stop the intake for good). Every record of the current
// segment is already fdatasynced, so an error closing it loses nothing.
func (j *journal) rotate() error {
	f, seg, err := createSegment(j.base, j.cur.num+1)
	if err != nil {
		return err
	}
	_ = j.f.Close()
	j.closed = append(j.closed, j.cur)
	j.f, j.cur, j.off = f, seg, 0
	return nil
}

// broken returns the error that made the journal refuse every append
// (nil: it takes appends).
func (j *journal) broken() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}

// checkpoint removes the closed segments whose records are all applied
// (seq <= applied); one that cannot be removed is kept for the next call.
func (j *journal) checkpoint(applied uint64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	keep := j.closed[:0]
	for _, s := range j.closed {
		if s.last > applied {
			keep = append(keep, s)
			continue
		}
		if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			keep = append(keep, s)
		}
	}
	j.closed = keep
}

// close closes the current segment; with everything applied it removes
// all segments (there is nothing to replay).
func (j *journal) close(allApplied bool) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	err := j.f.Close()
	if err != nil {
		err = fmt.Errorf("close journal: %w", err)
	}
	if !allApplied {
		return err
	}
	for _, s := range append(j.closed, j.cur) {
		if rerr := os.Remove(s.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
			err = fmt.Errorf("remove journal segment: %w", rerr)
		}
	}
	j.closed = nil
	return err
}
