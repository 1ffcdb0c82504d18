package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
	bolt "go.etcd.io/bbolt"

	"github.com/hookline/hookline/event"
)

// Bucket names. The layout of every key is described in doc.go.
const (
	bucketMeta            = "meta"
	bucketInbox           = "inbox"
	bucketInboxPending    = "inbox_pending"
	bucketDedupe          = "dedupe"
	bucketDedupeExp       = "dedupe_exp"
	bucketEvents          = "events"
	bucketEntities        = "entities"
	bucketRuleFirings     = "rule_firings"
	bucketFingerprints    = "fingerprints"
	bucketFingerprintsExp = "fingerprints_exp"
	bucketTimersDue       = "timers_by_due"
	bucketOutbox          = "outbox"
	bucketOutboxQueue     = "outbox_queue"
	bucketOutboxHeads     = "outbox_heads"
	bucketOutboxDue       = "outbox_due"
	bucketOutboxState     = "outbox_state"
	bucketOutboxRef       = "outbox_ref"
)

// allBuckets lists every bucket Open creates.
var allBuckets = [...]string{
	bucketMeta, bucketInbox, bucketInboxPending, bucketDedupe, bucketDedupeExp,
	bucketEvents, bucketEntities, bucketRuleFirings,
	bucketFingerprints, bucketFingerprintsExp, bucketTimersDue,
	bucketOutbox, bucketOutboxQueue, bucketOutboxHeads, bucketOutboxDue,
	bucketOutboxState, bucketOutboxRef,
}

// Keys of the meta bucket.
const (
	metaVersion = "version"
	// schemaVersion is the layout this build writes: 2 packs events and
	// entity snapshots (packed.go); 3 keeps timers behind their entity's
	// snapshot, with a lazily settled due index (timers.go); 4 writes
	// timer records in a fixed binary layout instead of JSON (both are
	// read) and orders the due index by time, then sequence
	// (timers_by_due, moved from timers_due); 5 gives call_webhook
	// deliveries queues of their own (Delivery.Queue, a queue key a
	// schema 4 build would take for its connector's queue and jam), keys
	// echo fingerprints by entity type and delivery, and keeps per-field
	// times in snapshots (fields_at). Records of 4 read as they are. It
	// reads stores from minSchemaVersion on, and moves them to
	// schemaVersion when it opens them (migrate.go).
	schemaVersion         = 5
	minSchemaVersion      = 1
	countInboxPending     = "count/inbox_pending"
	countTimers           = "count/timers"
	countDeliveryStatePfx = "count/delivery/"
	// countJournalSkipped counts the damaged spans of intake journal
	// segments that replay skipped to reach valid records after them.
	countJournalSkipped = "count/journal_skipped"
	// metaJournalApplied is the seq of the last intake journal record
	// applied (8 bytes), written in the transaction that applies it.
	metaJournalApplied = "journal/applied"
)

// sep separates the parts of composite keys.
const sep = 0

// Marks of the records kept behind an entity's snapshot in the entities
// bucket: entity key \x00 mark rest. They sort right after the snapshot
// (whose key has no fourth part), timers before events, so that an event
// usually rewrites one leaf page for the entity's snapshot, timers and
// event index together.
const (
	timerMark = 1 // \x01 rule id -> a timer (timers.go)
	eventMark = 2 // \x02 event id -> 0x01, the per-entity event index
)

// markLast returns a copy of key with mark inserted behind its last
// separator: connector \x00 entity \x00 reference \x00 mark rest.
func markLast(key []byte, mark byte) []byte {
	i := bytes.LastIndexByte(key, sep)
	k := make([]byte, 0, len(key)+1)
	k = append(k, key[:i+1]...)
	k = append(k, mark)
	return append(k, key[i+1:]...)
}

// markOf returns the mark of a key of the entities bucket (timerMark,
// eventMark), or 0 for a snapshot's key: a mark follows the third
// separator.
func markOf(k []byte) byte {
	i := bytes.LastIndexByte(k, sep)
	if i < 0 || i+1 >= len(k) || bytes.Count(k, []byte{sep}) != 3 {
		return 0
	}
	return k[i+1]
}

// eventIndexPrefix is entity key \x00 \x02: every key of the entity's
// event index starts with it, followed by the event id.
func eventIndexPrefix(ek []byte) []byte {
	p := make([]byte, 0, len(ek)+2+idLen)
	return append(append(p, ek...), sep, eventMark)
}

// maxIDLen bounds caller-given ids; maxIndexedKey bounds any key that also
// goes into an index behind an 8-byte time and a 26-byte id (bbolt keys are
// at most 32 KiB).
const (
	maxIDLen      = 256
	maxIndexedKey = bolt.MaxKeySize - 8 - maxIDLen - 8
)

// idLen is the length of a ULID in its text form.
const idLen = ulid.EncodedSize

// present is the value stored in pure index buckets.
func present() []byte { return []byte{1} }

// nanos encodes t as unix nanoseconds clamped to [0, MaxInt64] so that the
// big-endian bytes sort like the times.
func nanos(t time.Time) uint64 {
	if t.Before(time.Unix(0, 0)) {
		return 0
	}
	if t.After(time.Unix(0, math.MaxInt64)) {
		return math.MaxInt64
	}
	return uint64(t.UnixNano())
}

// fromNanos is the inverse of nanos (in UTC).
func fromNanos(n uint64) time.Time { return time.Unix(0, int64(n)).UTC() }

// timeKey returns 8-byte big-endian nanos followed by rest.
func timeKey(t time.Time, rest ...[]byte) []byte {
	n := 8
	for _, r := range rest {
		n += len(r)
	}
	k := make([]byte, 8, n)
	binary.BigEndian.PutUint64(k, nanos(t))
	for _, r := range rest {
		k = append(k, r...)
	}
	return k
}

// checkPart rejects key parts that contain the separator.
func checkPart(what, s string) error {
	if strings.IndexByte(s, sep) >= 0 {
		return fmt.Errorf("%s %q contains a NUL byte: %w", what, s, ErrInvalid)
	}
	return nil
}

// checkListArgs refuses (ErrInvalid) the arguments of a list that can
// match nothing: names holding a NUL byte, and a cursor that cannot be an
// id (every list's cursor is the id it stopped at). parts are (what,
// value) pairs of names; cursor may be empty.
func checkListArgs(cursor string, parts ...string) error {
	for i := 0; i+1 < len(parts); i += 2 {
		if err := checkPart(parts[i], parts[i+1]); err != nil {
			return err
		}
	}
	if strings.IndexByte(cursor, sep) >= 0 || len(cursor) > maxIDLen {
		return fmt.Errorf("cursor %q is not one a list gave: %w", cursor, ErrInvalid)
	}
	return nil
}

// join builds parts[0] \x00 parts[1] \x00 ... (no trailing separator).
func join(parts ...string) []byte {
	n := len(parts)
	for _, p := range parts {
		n += len(p)
	}
	return appendMarkedKey(make([]byte, 0, n), 0, parts)
}

// prefixOf returns parts joined with a trailing separator, the prefix of all
// keys that continue with another part.
func prefixOf(parts ...string) []byte { return append(join(parts...), sep) }

// entityKeyBytes is connector \x00 entity \x00 reference.
func entityKeyBytes(k event.EntityKey) ([]byte, error) {
	if err := checkEntityKey(k); err != nil {
		return nil, err
	}
	return join(k.Connector, k.Entity, k.Reference), nil
}

func checkEntityKey(k event.EntityKey) error {
	if err := checkPart("connector", k.Connector); err != nil {
		return err
	}
	if err := checkPart("entity", k.Entity); err != nil {
		return err
	}
	return checkPart("reference", k.Reference)
}

// ulidFloor returns the smallest ULID text whose time is t's millisecond:
// every id created at or after t sorts at or after it.
func ulidFloor(t time.Time) []byte {
	var id ulid.ULID
	ms := uint64(0)
	if !t.Before(time.Unix(0, 0)) {
		ms = ulid.Timestamp(t)
	}
	if ms > ulid.MaxTime() {
		ms = ulid.MaxTime()
	}
	_ = id.SetTime(ms)
	return []byte(id.String())
}

// copyBytes returns a copy of b (bbolt memory is valid only inside a tx).
func copyBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

// lastBefore positions c on the last key that has prefix and sorts before
// upper (exclusive); upper nil means the end of the prefix. It returns nil
// when there is no such key.
func lastBefore(c *bolt.Cursor, prefix, upper []byte) (k, v []byte) {
	if upper == nil {
		upper = prefixEnd(prefix)
	}
	if upper == nil {
		k, v = c.Last()
	} else if k, v = c.Seek(upper); k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	if k != nil && !bytes.HasPrefix(k, prefix) {
		return nil, nil
	}
	return k, v
}

// prefixEnd returns the smallest key greater than every key with prefix, or
// nil when there is none (empty prefix or all 0xff).
func prefixEnd(prefix []byte) []byte {
	end := copyBytes(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// counter helpers on the meta bucket.
func addCount(b *bolt.Bucket, key string, delta int64) error {
	if delta == 0 {
		return nil
	}
	n := getCount(b, key) + delta
	v := make([]byte, 8)
	binary.BigEndian.PutUint64(v, uint64(n))
	if err := b.Put([]byte(key), v); err != nil {
		return fmt.Errorf("update counter %s: %w", key, err)
	}
	return nil
}

// addCount is the free function addCount with the key and value carved
// from the transaction's arena.
func (tx *Tx) addCount(b *bolt.Bucket, key string, delta int64) error {
	if delta == 0 {
		return nil
	}
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], uint64(getCount(b, key)+delta))
	m := &tx.db.wmem
	if err := b.Put(m.key(key), m.copy(v[:])); err != nil {
		return fmt.Errorf("update counter %s: %w", key, err)
	}
	return nil
}

func getCount(b *bolt.Bucket, key string) int64 {
	v := b.Get([]byte(key))
	if len(v) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

// seekAfter positions c at the first key after `after` ("": the first
// key), the start of a page that follows a cursor.
func seekAfter(c *bolt.Cursor, after string) (k, v []byte) {
	if after == "" {
		return c.First()
	}
	k, v = c.Seek([]byte(after))
	if k != nil && string(k) == after {
		k, v = c.Next()
	}
	return k, v
}

// clampLimit applies the default and maximum page size of list calls.
func clampLimit(n int) int {
	const def, maxLimit = 100, 1000
	switch {
	case n <= 0:
		return def
	case n > maxLimit:
		return maxLimit
	}
	return n
}
