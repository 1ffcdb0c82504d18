// Package store owns everything Hookline keeps: the inbox of accepted
// webhooks and their dedupe keys, events and entity snapshots, rule firing
// counters, echo fingerprints, timers of time-based rules, and the outbox of
// deliveries. It is the only package that knows bbolt; all state lives in
// one bbolt file.
//
// # Basics
//
// Open the file once per process with Open and Close it on shutdown; a
// second process gets ErrLocked ("store is locked by another process")
// after Options.LockTimeout.
// Accept is the intake path: concurrent calls are group-committed by one
// goroutine into the intake journal (below) with one fdatasync per batch,
// so a webhook is on disk before it is answered. The pipeline takes
// PendingInbox items and does everything for a batch of them inside one
// Update; the timer scheduler fires no timer due after the receive time of
// the oldest item still pending (Tx.OldestPendingInbox, in its batch's
// transaction); the admin API reads with the DB methods; the delivery dispatcher
// uses FinishAndClaim (or ClaimDue and FinishDelivery / FinishDeliveries).
// A FinishAndClaim call that finds the writer busy rides along: the write
// transaction holding it records the call's outcomes and claims before its
// own commit, so the dispatcher pays no commit of its own while the
// pipeline is busy (finishqueue.go).
//
// # Intake journal
//
// bbolt has one writer at a time, and the pipeline holds it for the whole
// of its batch transactions (tens of milliseconds). Acks must not wait for
// that, so Accept does not write bbolt: it appends the item (with its id
// and dedupe key) to a journal file next to the database,
// <path>.journal.<segment>, and answers after the fdatasync. Dedupe
// decisions see both bbolt and the records not yet in it. The records
// reach bbolt in one of two ways: FinishInbox writes an item the pipeline
// got from PendingInbox (which returns journaled items too) together with
// its outcome, in the pipeline's transaction; and an applier goroutine
// writes whatever is left once a record has waited 1s, when 8,192 wait,
// when a caller needs them (PruneDedupe, Close) — and records how far it
// got, in the same transaction. A segment is removed once all its records
// are in bbolt; Open replays what a crash left (records already in bbolt
// are skipped, a torn last record was never answered and is ignored).
// Damaged bytes followed by valid records cost only what they held:
// replay resynchronises on the next valid record, logs the skipped span
// (Options.Logger, segment and offset), counts it (Stats.JournalSkipped)
// and keeps the segment as <segment>.<time>.corrupt. A Close whose last apply
// fails says how many records stay in the journal for the next Open.
// Back up the database file after a clean Close, or together with its
// journal segments.
//
// Acks no longer wait for the pipeline's transactions, so under sustained
// overload intake could take the processor from the pipeline. Accept
// therefore applies backpressure: up to 50,000 accepted items may wait to
// be processed (a burst is absorbed at full speed); beyond that each group
// commit pauses 10µs per item over the limit, at most 100ms, until the
// pipeline catches up. Intake slows down but never stops.
//
// # Caches
//
// Two in-memory caches spare the pipeline and the dispatcher JSON they
// would decode a moment after it was encoded: accepted items are handed
// to PendingInbox as deep copies (once; later calls decode), and active
// deliveries are kept decoded next to the exact bytes stored for them,
// used by a claim or finish only while bbolt still holds those bytes. Both
// are bounded, and a miss only costs the decode. Records written for
// every webhook and event (InboxItem, StoredEvent, event.Snapshot,
// Delivery) are encoded by a hand-written encoder that produces
// encoding/json's bytes (jsonenc.go; the tests pin the model's fields, so
// a new field fails them until the encoder writes it). The encoder reuses its buffers, and
// the keys and values a write transaction hands to bbolt are carved from
// 64 KiB chunks (writemem.go): bbolt needs them intact until the commit,
// and one allocation per chunk is cheaper than one per Put.
//
// # Memory of the mapped file
//
// bbolt reads through a shared, read-only mapping of the file, and every
// page read stays in the process's resident set (VmRSS counts it as
// RssFile) though it is page cache. Options.MappedResidentLimit (default
// 256 MiB, negative: off) bounds it: ten times a second the store reads the
// process's resident file-backed memory and, above the limit, drops the
// mapping's pages from the process with madvise(MADV_DONTNEED), inside a
// read transaction so that bbolt cannot remap meanwhile. The data stays in
// the page cache; the next read of a dropped page is a minor fault.
// Linux only (mapped.go).
//
// # Retention
//
// History does not grow forever: PruneInbox, PruneEvents and
// PruneDeliveries delete by age what was created before a cutoff. Ids are
// ULIDs, so that is a range at the start of the inbox and events buckets
// and of each final state's part of outbox_state; a prune walks it in
// transactions of at most 2,000 records and lets go of the writer between
// them. Only final records go (processed, unmapped or failed inbox items;
// succeeded, failed or cancelled deliveries), each with every index entry
// that points at it (the entity's event index; outbox_state, outbox_ref, the
// per-state counter and the delivery cache); pending items and pending or
// in-flight deliveries stay however old. Entity snapshots are state and
// are never pruned. bbolt reuses the freed pages but never shrinks the
// file (see docs/operations.md for an offline compaction).
//
// Values are JSON (encoding/json); events and entity snapshots are stored
// packed (S2-compressed behind a 0x01 byte, packed.go; store schema 2), and
// read either way. Keys are designed for range scans. Ids
// are ULIDs from a monotonic generator owned by the DB value (DB.NewID),
// so an id's text order is its creation order and its first 10 characters
// are its creation time: "Since" filters stop their walk there.
//
// Deliveries of one queue form a FIFO in id order: those of one
// (connector, reference), and a call_webhook's those of one (connector,
// destination host, reference) (Delivery.Queue, store schema 5).
// Only the head of a queue is ever due, and while one delivery of a queue
// is in flight no other of it is due. When the head reaches a final state
// (succeeded, failed, cancelled) it leaves the queue and the next one is
// made due at max(its NextAt, now). A retried delivery goes back to its
// original position. Deliveries with an empty reference are not ordered:
// each is due on its own.
//
// # Buckets
//
// An event writes its entity's snapshot, maybe some of its timers, and
// an entry of its event index. On a large store with events spread over
// many entities each separate B-tree leaf costs a page write (and often a
// branch page) that no other event of the transaction shares, so these
// records share one key range instead: the timers and the event index
// live behind the snapshot in the entities bucket (store schema 3; Open
// moves them there from the buckets of older stores, migrate.go), and
// the due index of timers is only written when a timer gets an entry
// earlier than the one it has (timers.go). What an event costs then
// hardly depends on how many entities the store holds.
//
// Buckets whose new keys sort after all existing ones (ids are ULIDs;
// due and expiry times are now plus a constant) fill their pages to 90%
// instead of bbolt's 50% (appendFill in store.go): inbox, inbox_pending,
// outbox, outbox_state, outbox_due, dedupe_exp and fingerprints_exp;
// events, never rewritten, fill them completely. The others receive keys
// in no particular order.
//
// Times in keys are 8-byte big-endian unix nanoseconds (clamped to
// 0..MaxInt64). "\x00" separates the parts of composite keys; key parts
// other than the last may not contain a NUL byte (ErrInvalid). Index
// buckets hold the value 0x01.
//
//	meta              "version" -> schema version (8 bytes);
//	                  "count/inbox_pending", "count/timers",
//	                  "count/delivery/<state>" -> int64 counters for Stats;
//	                  "journal/applied" -> seq of the last intake journal
//	                  record the applier wrote (8 bytes);
//	                  "count/journal_skipped" -> damaged journal spans
//	                  skipped on replay (int64, Stats.JournalSkipped);
//	                  "timing/signatures" -> JSON {rule id: timing
//	                  signature} the armed timers follow (timers_retime.go)
//	inbox             inbox id -> InboxItem JSON
//	inbox_pending     inbox id -> 0x01, only items in state pending
//	dedupe            connector \x00 dedupe key -> stored-at (8) + expires (8) + inbox id
//	dedupe_exp        expires (8) + connector \x00 dedupe key -> 0x01
//	events            event id -> StoredEvent JSON, packed
//	entities          connector \x00 entity \x00 reference -> event.Snapshot JSON, packed;
//	                  behind each snapshot, the entity's own records:
//	                  ... reference \x00 \x01 rule id -> 0x01 + due (8) + armed at (8)
//	                  + its timers_by_due entry: time (8, 0: none) + sequence (8)
//	                  (schema 3 wrote timer JSON, still read), or 0x00 + entry
//	                  for a cancelled timer whose entry has not come due;
//	                  ... reference \x00 \x02 event id -> 0x01, the event index
//	rule_firings      rule id \x00 time (8) -> firing count at that instant (8)
//	fingerprints      connector \x00 entity \x00 reference \x00 field \x00 value \x00 delivery id -> Fingerprint JSON
//	fingerprints_exp  expires (8) + fingerprint key -> 0x01
//	timers_by_due     time (8) + sequence (8) + connector \x00 entity \x00 reference
//	                  \x00 rule id -> 0x01, one entry per timer record, at or before
//	                  its due time; the sequence (the bucket's) keeps entries of
//	                  the same time in the order they were written
//	outbox            delivery id -> Delivery JSON
//	outbox_queue      queue \x00 reference \x00 delivery id -> 0x01, pending and
//	                  in-flight deliveries with a non-empty reference; queue is
//	                  the connector, or connector \x01 "webhook <host>" for a
//	                  call_webhook
//	outbox_heads      queue \x00 reference -> kind (1) + due (8) + delivery id;
//	                  kind 'd': the head is in outbox_due at that time,
//	                  kind 'f': that delivery of the queue is in flight
//	outbox_due        due (8) + delivery id -> 0x01, only eligible deliveries
//	outbox_state      state \x00 delivery id -> 0x01
//	outbox_ref        connector \x00 reference \x00 delivery id -> 0x01, every delivery
//
// # Caveats
//
// bbolt allows one writer at a time: the journal applier, Update, ClaimDue,
// FinishAndClaim, FinishDelivery and the prune calls all take turns. Keep
// Update functions short, and do not call DB methods from inside one (it
// would deadlock).
//
// Bytes read from bbolt are valid only inside their transaction; the store
// copies everything it returns.
//
// Ids are monotonic within one DB value. After a restart with the clock
// set back, new ids can sort before old ones. Accept assigns inbox ids in
// the committer, so inbox id order is commit order; a caller-given inbox id
// or delivery id is taken as it is and may break that order.
//
// A dedupe key is a duplicate while now - stored-at < the window passed to
// the Accept call; PruneDedupe uses the window stored with the key. When
// the window grows, keys pruned under the old window are forgotten early.
//
// Group commit makes intake throughput depend on fsync latency: every
// batch costs one fdatasync of the journal, whatever its size; bbolt
// commits cost two (data pages, then the meta page). Under load the
// committer yields the processor once (runtime.Gosched) before it settles
// for a batch, so that callers it has just answered can queue their next
// request; this is not a timer and adds no delay when nothing else is
// runnable.

// Random dedupe keys (webhook invocation ids) each dirty a different leaf
// of the dedupe B-tree, so large batches write many pages; PruneDedupe
// keeps that tree small.
//
// Stats reads counters kept in the same transactions as the data, plus the
// journaled items not yet in bbolt; they are exact unless the file was
// modified by other code.
package store
