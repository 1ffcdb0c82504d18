package store

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Options configures Open. The zero value is valid.
type Options struct {
	// MaxBatch is the most Accept requests one group commit holds (default 256).
	MaxBatch int
	// Now is the clock (default time.Now); tests pass a fake.
	Now func() time.Time
	// LockTimeout is how long Open waits for the file lock before it fails
	// with ErrLocked (default 1s).
	LockTimeout time.Duration
	// MappedResidentLimit bounds, in bytes, the process's resident
	// file-backed memory, which is mostly the pages of the database file
	// that bbolt's mapping has touched: checked every second, and when
	// above the limit those pages are dropped from the process (they stay
	// in the page cache; see mapped.go). Zero means
	// DefaultMappedResidentLimit (256 MiB); a negative value turns the
	// bound off. Linux only.
	MappedResidentLimit int64
	// Logger receives what the store has to report on its own: damaged
	// intake journal records skipped at Open (nil: discard).
	Logger *slog.Logger

	// applyWait, when > 0, overrides the applyDelay constant (1 s): how
	// long a journaled record waits for the applier. Tests set it long to
	// look at records still in the journal.
	applyWait time.Duration
	// applyFault, when set, runs inside every transaction of the journal
	// applier and of the journal's replay at Open, before it commits; an
	// error fails the transaction. Tests use it to make them fail.
	applyFault func() error
	// journalSync, when set, replaces the intake journal's syncs (the
	// fdatasync of an append and the fsync of the cut after a failed
	// one). Tests use it to make journal writes fail.
	journalSync func(*os.File) error
}

// DB is an open Hookline store. All methods are safe for concurrent use.
type DB struct {
	// encoders encode inbox items for Accept (inboxItem), reusing their
	// scratch across webhooks.
	encoders sync.Pool
	bolt     *bolt.DB
	path     string
	log      *slog.Logger
	now      func() time.Time
	maxBatch int
	ids      idGen

	// mu guards closed and the send side of reqs: Accept holds it for
	// reading while it sends, Close takes it for writing before closing reqs.
	mu     sync.RWMutex
	closed bool
	reqs   chan *acceptReq
	done   chan struct{} // closed when the committer has exited
	once   sync.Once

	// commits and committed count group commits and the requests in them.
	commits, committed atomic.Int64

	// The intake journal (journal.go). Locking rule: neither jmu nor umu
	// is ever held while a bbolt transaction starts or commits, so both
	// may be taken inside transactions.
	journal *journal
	// jseq is the last record seq assigned; the committer owns it.
	jseq uint64
	// umu guards the records the committer knows are not yet in bbolt as
	// of its last snapshot: live in seq order, and by inbox id and dedupe
	// key. Only the committer adds and prunes them.
	umu       sync.Mutex
	live      []*jrec
	unapplied map[string]*jrec // inbox id -> record
	keys      map[string]*jrec // dedupe key -> newest record with it
	// jmu guards the applier's queue and progress; applyCond (on jmu) is
	// signalled whenever the applier made progress, failed or stopped.
	jmu        sync.Mutex
	applyCond  *sync.Cond
	queuedSeq  uint64  // last seq written to the journal and queued
	appliedSeq uint64  // last seq in bbolt
	queue      []*jrec // journaled, not yet in bbolt, in seq order
	// queueHead is where OldestPendingInbox looks in queue: the records
	// before it were finished (their flag set once committed), so each
	// record is passed over once, not at every call.
	queueHead int
	// queueUnsorted is set when a record's id (given by the caller) does not
	// sort after the one before it in queue; cleared when queue empties.
	queueUnsorted bool
	applyErr      error // the applier's last failure, nil after a success
	// applyErrSince is when applyErr was first set after a success.
	applyErrSince time.Time
	applyStopped  bool
	flushWaiters  int // callers waiting in flushJournal
	applyWait     time.Duration
	applyFault    func() error // Options.applyFault
	journalSync   func(*os.File) error
	applyWake     chan struct{}
	applyStop     chan struct{}
	applyDone     chan struct{}

	// backlog counts accepted items not yet finished (for backpressure);
	// it starts from the pending counter at Open.
	backlog atomic.Int64

	// cache hands accepted items to PendingInbox without a JSON decode;
	// dcache does the same for active deliveries (ClaimDue, finish).
	cache  itemCache
	dcache deliveryCache

	// trimStop stops the goroutine that bounds the mapped file's resident
	// pages (mapped.go), which closes trimDone; both nil when it is off.
	trimStop, trimDone chan struct{}

	// wmem is the encoder and key/value arena of write transactions
	// (writemem.go); bbolt's writer lock serializes its users.
	wmem writeMem
	// wmemAside is the encoder and arena of an EventWriter's goroutine
	// (one at a time: it runs inside the one write transaction).
	wmemAside writeMem

	// fmu guards finishes, the FinishAndClaim calls waiting for the next
	// write transaction of Update or FinishAndClaim (finishqueue.go).
	fmu      sync.Mutex
	finishes []*finishReq
}

// Open opens (creating if needed) the bbolt file at path (its parent
// directory is created with mode 0o700), creates all buckets, recovers
// in-flight deliveries (in_flight becomes pending, due now: delivery is at
// least once across a crash) and starts the group-commit goroutine.
func Open(path string, opts Options) (*DB, error) {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.applyWait <= 0 {
		opts.applyWait = applyDelay
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = time.Second
	}
	if opts.MappedResidentLimit == 0 {
		opts.MappedResidentLimit = DefaultMappedResidentLimit
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:      opts.LockTimeout,
		FreelistType: bolt.FreelistMapType,
		// A new file gets 8 KiB pages (an existing one keeps the size it
		// was created with): bbolt writes each dirty page with a pwrite of
		// its own, and with twice the records per page a webhook's
		// transaction writes fewer of them. Measured on the whole path
		// (docs/benchmarks.md, round 4): 7-10 % more events/s, and the
		// same arming cost at 10k-1M entities (docs/benchmarks-timers.md).
		PageSize: pageSize,
		// Address space only (the mapping is read-only and shared; pages
		// count in RSS only when touched, see mapped.go). bbolt remaps
		// the file whenever it outgrows the mapping, doubling it up to
		// 1 GiB, and a remap waits for every open read transaction and
		// holds off new ones: starting at 1 GiB, a growing gateway does
		// not stall on it a dozen times on its way there.
		InitialMmapSize: initialMmapSize,
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open store %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	// The file grows in steps of allocSize, each a truncate and an fsync
	// inside a commit; 16 MiB (bbolt's default) meant several a second
	// under load.
	bdb.AllocSize = allocSize
	db := &DB{
		encoders:    sync.Pool{New: func() any { return new(encoder) }},
		bolt:        bdb,
		path:        path,
		log:         opts.Logger,
		now:         opts.Now,
		maxBatch:    opts.MaxBatch,
		ids:         idGen{entropy: ulid.Monotonic(rand.Reader, 0)},
		reqs:        make(chan *acceptReq, min(4*opts.MaxBatch, 1<<16)),
		done:        make(chan struct{}),
		keys:        map[string]*jrec{},
		unapplied:   map[string]*jrec{},
		applyWait:   opts.applyWait,
		applyFault:  opts.applyFault,
		journalSync: opts.journalSync,
		applyWake:   make(chan struct{}, 1),
		applyStop:   make(chan struct{}),
		applyDone:   make(chan struct{}),
	}
	db.applyCond = sync.NewCond(&db.jmu)
	if err := db.init(); err != nil {
		_ = bdb.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := db.migrate(); err != nil {
		_ = bdb.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	next, err := db.replayJournal()
	if err != nil {
		_ = bdb.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := db.seedIDs(); err != nil {
		_ = bdb.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if db.journal, err = openJournal(path, next, db.journalSync); err != nil {
		_ = bdb.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	go db.commitLoop()
	go db.applyLoop()
	if opts.MappedResidentLimit > 0 {
		db.trimStop, db.trimDone = make(chan struct{}), make(chan struct{})
		go db.trimLoop(opts.MappedResidentLimit)
	}
	return db, nil
}

// corruptSuffix is added to the name of a replayed journal segment that
// had damaged records followed by valid ones: it is kept, out of the way
// of later replays, for an operator to look at.
const corruptSuffix = ".corrupt"

// keptName is the name a damaged segment is kept under: path, the time
// and corruptSuffix, so that a later damaged replay of a segment with the
// same number (numbers start again after a clean close) keeps both.
func keptName(path string, now time.Time) string {
	return path + "." + now.UTC().Format("20060102T150405.000000000") + corruptSuffix
}

// replayJournal applies the records of journal segments left by a process
// that stopped without closing the store (those already in bbolt are
// skipped), removes the segments and returns the number for the next one.
// It also sets the record sequence to continue after the last applied.
//
// A torn end of a segment is ignored silently (it was never
// acknowledged). Damaged bytes followed by valid records are either an
// append cut by a crash with its pages written out of order (never
// acknowledged) or damage to the file: the records after them are
// replayed, each skipped span
// is logged as an error with its segment and offset and counted
// (Stats.JournalSkipped), and the segment is kept as <segment>.corrupt
// instead of being removed. What the skipped bytes held is not counted or
// written anywhere.
func (db *DB) replayJournal() (uint64, error) {
	segs, err := listSegments(db.path)
	if err != nil {
		return 0, err
	}
	if err := db.bolt.View(func(btx *bolt.Tx) error {
		if v := btx.Bucket([]byte(bucketMeta)).Get([]byte(metaJournalApplied)); len(v) == 8 {
			db.jseq = binary.BigEndian.Uint64(v)
		}
		return nil
	}); err != nil {
		return 0, fmt.Errorf("read journal position: %w", err)
	}
	next := uint64(1)
	applied := db.jseq
	for i := range segs {
		s := &segs[i]
		read, err := readSegment(s.path)
		if err != nil {
			return 0, err
		}
		recs := read.recs
		if len(read.skipped) > 0 {
			s.kept = keptName(s.path, time.Now()) // kept, not removed, below
		}
		for _, sk := range read.skipped {
			db.log.Error("intake journal: damaged bytes skipped on replay (an unacknowledged append cut by a crash, or damage to the file); the valid records after them are replayed",
				"segment", s.path, "offset", sk.off, "bytes", sk.len, "kept_as", s.kept)
		}
		// Records up to the applied position are in bbolt already, or
		// were deleted there since (retention, on purpose): a segment
		// lives until it is closed, so it can hold records applied weeks
		// ago, and writing them again would bring pruned webhooks back
		// as pending.
		recs = slices.DeleteFunc(recs, func(r *jrec) bool { return r.seq <= applied })
		for len(recs) > 0 {
			chunk := recs[:min(len(recs), maxApply)]
			recs = recs[len(chunk):]
			last := max(db.jseq, chunk[len(chunk)-1].seq)
			if err := db.bolt.Update(func(btx *bolt.Tx) error {
				if db.applyFault != nil {
					if err := db.applyFault(); err != nil {
						return err
					}
				}
				return applyRecords(btx, chunk, last)
			}); err != nil {
				return 0, fmt.Errorf("replay intake journal %s: %w", s.path, err)
			}
			db.jseq = last
		}
		// Counted once its records are in: a replay that fails before
		// runs again at the next Open and must not count twice. Kept
		// under its .corrupt name at once, before the next segment: a
		// later failure of this replay must not leave it to be read and
		// counted again.
		if len(read.skipped) > 0 {
			if err := db.bolt.Update(func(btx *bolt.Tx) error {
				return addCount(btx.Bucket([]byte(bucketMeta)), countJournalSkipped, int64(len(read.skipped)))
			}); err != nil {
				return 0, fmt.Errorf("count damaged journal records of %s: %w", s.path, err)
			}
			if err := os.Rename(s.path, s.kept); err != nil {
				return 0, fmt.Errorf("keep damaged journal segment: %w", err)
			}
			if err := syncDir(filepath.Dir(s.path)); err != nil {
				return 0, err
			}
		}
		next = max(next, s.num+1)
	}
	for _, s := range segs {
		if s.kept != "" {
			continue // renamed above
		}
		if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return 0, fmt.Errorf("remove replayed journal segment: %w", err)
		}
	}
	if len(segs) > 0 {
		if err := syncDir(filepath.Dir(db.path)); err != nil {
			return 0, err
		}
	}
	db.queuedSeq, db.appliedSeq = db.jseq, db.jseq
	if err := db.bolt.View(func(btx *bolt.Tx) error {
		db.backlog.Store(getCount(btx.Bucket([]byte(bucketMeta)), countInboxPending))
		return nil
	}); err != nil {
		return 0, fmt.Errorf("count pending inbox items: %w", err)
	}
	return next, nil
}

// init creates the buckets, checks the schema version and recovers
// in-flight deliveries, in one transaction.
func (db *DB) init() error {
	return db.bolt.Update(func(btx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := btx.CreateBucketIfNotExists([]byte(name)); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		meta := btx.Bucket([]byte(bucketMeta))
		v := meta.Get([]byte(metaVersion))
		switch {
		case v != nil && (len(v) != 8 || binary.BigEndian.Uint64(v) < minSchemaVersion || binary.BigEndian.Uint64(v) > schemaVersion):
			return fmt.Errorf("unsupported store schema version %x (this build reads %d to %d): %w", v, minSchemaVersion, schemaVersion, ErrInvalid)
		case v == nil || binary.BigEndian.Uint64(v) != schemaVersion:
			// New, or written by an older build: its records read as
			// they are, except timers and the event index, which migrate
			// moves right after. From now on records may be packed and
			// kept behind their snapshots, which the older build would
			// not read, so the version moves on first.
			v := make([]byte, 8)
			binary.BigEndian.PutUint64(v, schemaVersion)
			if err := meta.Put([]byte(metaVersion), v); err != nil {
				return fmt.Errorf("write schema version: %w", err)
			}
		}
		tx := &Tx{db: db, tx: btx}
		if err := tx.recoverInFlight(); err != nil {
			return fmt.Errorf("recover in-flight deliveries: %w", err)
		}
		return nil
	})
}

// Path returns the file the store lives in.
func (db *DB) Path() string { return db.path }

// Close stops accepting, commits the batch that is pending, waits for the
// committer, moves the intake journal into bbolt and closes the file.
// Accept calls racing with Close either get their result or ErrClosed.
// When the journal cannot be moved, Close returns an error that says how
// many records stay in it: they are not lost, the next Open replays them.
// Calling Close again returns nil.
func (db *DB) Close() error {
	var err error
	db.once.Do(func() {
		db.mu.Lock()
		db.closed = true
		close(db.reqs)
		db.mu.Unlock()
		<-db.done
		close(db.applyStop)
		<-db.applyDone
		if db.trimStop != nil {
			close(db.trimStop)
			<-db.trimDone
		}
		db.jmu.Lock()
		unapplied, applyErr := len(db.queue), db.applyErr
		db.jmu.Unlock()
		if unapplied > 0 {
			// The last apply failed: the records are safe in the journal,
			// and the next Open replays them; say so.
			if applyErr == nil {
				applyErr = errors.New("the applier stopped before them")
			}
			err = fmt.Errorf("close store %s: %d accepted records are still only in the intake journal (kept there; they are replayed on the next open): %w", db.path, unapplied, applyErr)
		}
		if jerr := db.journal.close(unapplied == 0); jerr != nil && err == nil {
			err = fmt.Errorf("close store %s: %w", db.path, jerr)
		}
		if cerr := db.bolt.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close store %s: %w", db.path, cerr)
		}
	})
	return err
}

// NewID returns a new ULID from the store's monotonic generator: ids from
// one DB value sort in the order they were made, even within a millisecond
// or when the clock steps back. Use it for event ids.
func (db *DB) NewID() string { return db.ids.next(db.now()) }

// NewIDAt returns a new ULID for time t, after every id this store has
// handed out or holds (see seedIDs).
func (db *DB) NewIDAt(t time.Time) string { return db.ids.next(t) }

// seedIDs starts the id generator after the newest id the store holds
// (the last keys of the inbox, the outbox and the events; the intake
// journal has just been replayed into bbolt), so that a clock set back between two runs cannot
// make new ids sort before old ones: queues are in id order, and the
// updates of one ticket would go out of order. Ids that are not ULIDs
// (given by a caller) are ignored.
func (db *DB) seedIDs() error {
	var newest uint64
	see := func(id []byte) {
		if u, err := ulid.ParseStrict(string(id)); err == nil && u.Time() > newest {
			newest = u.Time()
		}
	}
	err := db.bolt.View(func(btx *bolt.Tx) error {
		for _, name := range []string{bucketInbox, bucketOutbox, bucketEvents} {
			if b := btx.Bucket([]byte(name)); b != nil {
				if k, _ := b.Cursor().Last(); k != nil {
					see(k)
				}
			}
		}
		return nil
	})
	if newest > 0 {
		db.ids.ms = newest + 1
	}
	return err
}

// Tx is one bbolt transaction with Hookline's operations. It is valid only
// inside the function given to Update or View.
type Tx struct {
	db *DB
	tx *bolt.Tx
	// taken holds the record keys of the timers whose due index entries
	// DueTimers took in this transaction; before the commit, those the
	// firing left armed get an entry again (indexTaken).
	taken [][]byte
}

// Update runs fn in one read-write transaction, committed (fsync'd) when fn
// returns nil and rolled back otherwise. fn's own error is returned as is.
// Do not call DB methods from inside fn: bbolt allows one writer at a time.
// Delivery outcomes that FinishAndClaim calls queued meanwhile are recorded
// in the same transaction, after fn (finishqueue.go).
func (db *DB) Update(fn func(tx *Tx) error) error {
	return db.writeTx(fn)
}

// View runs fn in one read-only transaction; write methods of its Tx return
// ErrReadOnly.
func (db *DB) View(fn func(tx *Tx) error) error {
	var fnErr error
	err := db.bolt.View(func(btx *bolt.Tx) error {
		fnErr = fn(&Tx{db: db, tx: btx})
		return fnErr
	})
	if fnErr != nil {
		return fnErr
	}
	return wrapTxErr("view", err)
}

// wrapTxErr maps bbolt's closed-database error to ErrClosed.
func wrapTxErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, bolterrors.ErrDatabaseNotOpen):
		return fmt.Errorf("store %s: %w", op, ErrClosed)
	}
	return fmt.Errorf("store %s: %w", op, err)
}

// writable returns ErrReadOnly for a View transaction.
func (tx *Tx) writable(op string) error {
	if !tx.tx.Writable() {
		return fmt.Errorf("%s: %w", op, ErrReadOnly)
	}
	return nil
}

// b returns the named bucket (created by Open), with its fill percent
// set for how its keys arrive (see appendFill).
func (tx *Tx) b(name string) *bolt.Bucket { return bucket(tx.tx, name) }

// appendFill is the fill percent of buckets whose new keys (nearly) always
// sort after all existing ones: ULIDs and times that only grow. bbolt
// splits an overfull node so that each page but the last is filled up to
// the fill percent; with the default 0.5 an append-only bucket leaves
// every page half empty, and no later insert ever fills it. 0.9 makes the
// pages fuller, so a commit writes fewer of them and the file is smaller.
// Buckets with keys arriving in random order keep the default: a full
// page splits again at the next insert into it. bbolt does not persist
// the setting; it is set on the bucket handle in every transaction.
const appendFill = 0.9

// bucket returns a bucket of btx with the fill percent for its keys:
// appendFill for the append-ordered ones (events and inbox items by ULID,
// deliveries by ULID and their state index, which appends within each
// state; pending inbox ids; indexes keyed by a due or expiry time that is
// now plus a constant). events_by_entity, outbox_queue and outbox_ref
// append only within an entity or reference, and those interleave, so
// they keep the default.
func bucket(btx *bolt.Tx, name string) *bolt.Bucket {
	b := btx.Bucket([]byte(name))
	switch name {
	case bucketInbox, bucketInboxPending, bucketOutbox, bucketOutboxState,
		bucketOutboxDue, bucketDedupeExp, bucketFingerprintsExp:
		if b != nil {
			b.FillPercent = appendFill
		}
	case bucketEvents:
		// Never rewritten once stored: its pages can be filled up.
		if b != nil {
			b.FillPercent = 1
		}
	}
	return b
}

// idGen makes monotonic ULIDs. It is owned by one DB value.
type idGen struct {
	mu      sync.Mutex
	ms      uint64
	entropy *ulid.MonotonicEntropy
}

// next returns a ULID for now, never smaller than the previous one.
func (g *idGen) next(now time.Time) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	ms := uint64(0)
	if !now.Before(time.Unix(0, 0)) {
		ms = ulid.Timestamp(now)
	}
	if ms < g.ms {
		ms = g.ms
	}
	for {
		id, err := ulid.New(ms, g.entropy)
		if err == nil {
			g.ms = ms
			return id.String()
		}
		// Entropy overflow within one millisecond (or a failing random
		// source): move to the next millisecond, which draws fresh entropy.
		ms++
	}
}

// bbolt sizing: the initial mapping (address space, not memory), the
// step the file grows by, and the page size of a new file.
const (
	initialMmapSize = 1 << 30
	allocSize       = 128 << 20
	pageSize        = 8 << 10
)
