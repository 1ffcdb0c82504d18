package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/textproto"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookline/hookline/connectors"
	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/internal/bug"
	"github.com/hookline/hookline/mapping"
	"github.com/hookline/hookline/rules"
	"github.com/hookline/hookline/store"
)

// Headers by which deliveries carry their causation to the platforms, and
// by which events that come back inherit it.
const (
	HeaderDelivery = "X-Hookline-Delivery"
	HeaderHops     = "X-Hookline-Hops"
)

// pipeline drains the inbox in arrival order. Each batch of items is mapped,
// diffed against entity snapshots, run through the loop guards and the rules,
// and turned into outbox deliveries in ONE store transaction, which also marks
// the items done: a crash at any point either loses the whole batch's work
// (and the items are processed again) or none of it.
type pipeline struct {
	db        *store.DB
	bundle    func() *Bundle
	ids       *idGen
	log       *slog.Logger
	now       func() time.Time
	wake      chan struct{}
	batch     int
	metrics   *metrics
	delivered func() // wakes the delivery dispatcher
	// handoff, when set, takes deliveries the pipeline claimed as it wrote
	// them (nothing else of their queue waiting): they go to the delivery
	// workers when the transaction commits, without a claim transaction.
	handoff   handoff
	processed func(n int)
	// batches counts the batches drain has finished (whatever their
	// outcome), and drained, when set, is called after each: inbox items
	// have left the pending list, and a scheduler waiting for them
	// (scheduler.behindInbox) reads the timers again.
	batches atomic.Uint64
	drained func()
	// deliveriesFailed, when set, counts n deliveries of connector stored
	// failed because their request could not be built (the dispatcher's
	// hookline_deliveries_total{outcome="failed"}), after the commit.
	deliveriesFailed func(connector string, n int)
	// subscriptions returns the REST-hook subscriptions in force.
	subscriptions func() []store.Subscription
	// timerArmed is told, after a commit, the earliest due time of the
	// timers the batch armed or moved (it wakes the scheduler).
	timerArmed func(due time.Time)
	// rewind asks run to read from the oldest pending item next, not on
	// after the last one: items put back on the pending list (replays)
	// have ids behind where it reads.
	rewind atomic.Bool
	// itemHook, when set (tests), is called with each item as it is
	// mapped (stage "map") and as its batch processes it ("process"):
	// tests make it panic to stand for a bug that a payload triggers.
	itemHook func(stage string, it *store.InboxItem)
	// replays are the ids of items replayed and not yet processed again
	// (replayed).
	replaysMu sync.Mutex
	replays   map[string]bool
}

// handoff is the delivery dispatcher's side of claiming at creation
// (delivery.Dispatcher implements it).
type handoff interface {
	Reserve(n int) int
	Release(n int)
	Submit(dels []*store.Delivery)
}

// replayed tells the pipeline that older items are pending again.
func (p *pipeline) replayed() {
	p.rewind.Store(true)
	p.notify()
}

// expectReplays remembers items about to be replayed (call it before the
// replay commits, so that the pipeline cannot process them first), to
// leave them out of hookline_processing_seconds when processed; in memory
// (a restart forgets them). keep false forgets them (the replay failed).
func (p *pipeline) expectReplays(keep bool, ids ...string) {
	p.replaysMu.Lock()
	defer p.replaysMu.Unlock()
	if p.replays == nil {
		p.replays = map[string]bool{}
	}
	for _, id := range ids {
		if keep {
			p.replays[id] = true
		} else {
			delete(p.replays, id)
		}
	}
}

// markReplays marks the receipts of replayed items and forgets them: the
// batch that processed them has committed.
func (p *pipeline) markReplays(received []receipt) {
	p.replaysMu.Lock()
	defer p.replaysMu.Unlock()
	if len(p.replays) == 0 {
		return
	}
	for i := range received {
		if p.replays[received[i].id] {
			received[i].replayed = true
			delete(p.replays, received[i].id)
		}
	}
}

func (p *pipeline) notify() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// run drains the inbox until ctx ends.
//
// While a batch is in its transaction, the items that wait behind it are
// read and mapped beside it (the read-ahead): mapping is pure and needs no
// writer, and the transaction spends much of its time waiting for bbolt's
// commit and fdatasync, time the mapping would otherwise wait for. Once
// the transaction is done, what arrived since fills the next batch up.
// Each read starts after the last item of the one before, so no item is
// in two batches. A batch that fails is retried item by item, which finishes
// each of them, so the read-ahead still holds; it is dropped only when
// even that fails (a storage error), and the next read starts over from
// the oldest pending item. So does the read after a replay (replayed),
// whose items have ids behind the read-ahead's.
func (p *pipeline) run(ctx context.Context) {
	idle := time.NewTimer(time.Second)
	defer idle.Stop()
	var ahead chan batchRead
	for {
		var cur batchRead
		if ahead != nil {
			cur, ahead = <-ahead, nil
			// What arrived after the read-ahead fills the batch up.
			if n := p.batch - len(cur.items); cur.err == nil && n > 0 {
				cur = cur.then(p.read(cur.last(), n))
			}
		} else {
			p.rewind.Store(false) // reading from the oldest anyway
			cur = p.read("", p.batch)
		}
		if cur.err == nil && len(cur.items) > 0 {
			ahead = make(chan batchRead, 1)
			go func(out chan<- batchRead, after string) { out <- p.read(after, p.batch) }(ahead, cur.last())
		}
		n, err := p.drain(cur)
		if err != nil {
			p.log.Error("pipeline batch failed", "err", err)
		}
		if n > 0 && err == nil {
			if ahead != nil && p.rewind.Swap(false) {
				<-ahead // read after the batch: start over from the oldest
				ahead = nil
			}
			continue
		}
		if ahead != nil {
			<-ahead // read beside a batch that failed: start over from the oldest
			ahead = nil
		}
		if !idle.Stop() {
			select {
			case <-idle.C:
			default:
			}
		}
		idle.Reset(time.Second)
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		case <-idle.C:
		}
	}
}

// batchRead is a batch of pending items, read and mapped, waiting for its
// transaction.
type batchRead struct {
	items  []*store.InboxItem
	mapped []mappedItem
	err    error
}

// read takes up to limit pending items after the id `after` ("" = from the
// oldest) and maps them with the connectors in force now.
func (p *pipeline) read(after string, limit int) batchRead {
	items, err := p.db.PendingInbox(after, limit)
	if err != nil || len(items) == 0 {
		return batchRead{err: err}
	}
	return batchRead{items: items, mapped: p.mapItems(p.bundle(), items)}
}

// last is the id of b's last item ("" when b is empty).
func (b batchRead) last() string {
	if len(b.items) == 0 {
		return ""
	}
	return b.items[len(b.items)-1].ID
}

// then is b (read without error) followed by more (read after b's last
// item); more's error is the batch's.
func (b batchRead) then(more batchRead) batchRead {
	if more.err != nil {
		return more
	}
	return batchRead{items: append(b.items, more.items...), mapped: append(b.mapped, more.mapped...)}
}

// drain processes one batch read by read; it returns how many items.
func (p *pipeline) drain(b batchRead) (int, error) {
	if b.err != nil || len(b.items) == 0 {
		return 0, b.err
	}
	items := b.items
	if err := p.processBatch(items, b.mapped); err != nil {
		// One bad item must not hold the others: retry one by one, and mark
		// an item failed only when it fails alone.
		p.log.Warn("batch failed, retrying items one by one", "items", len(items), "err", err)
		for _, it := range items {
			// Mapped afresh: the failed transaction has changed its events.
			one := []*store.InboxItem{it}
			if err := p.processBatch(one, p.mapItems(p.bundle(), one)); err != nil {
				reason := fmt.Sprintf("processing failed: %v", err)
				if pe, ok := bug.As(err); ok {
					reason = pe.Error() // "internal error while ...", as operators are told to look for
				}
				if ferr := p.inBatch(nil, time.Time{}, func(bs *batchState) error {
					bs.tally.inbox(it, store.InboxFailed) // counted once committed, as every batch is
					return bs.tx.FinishInbox(it.ID, store.InboxFailed, reason, nil)
				}); ferr != nil {
					return 0, fmt.Errorf("mark inbox %s failed: %w", it.ID, ferr)
				}
				p.log.Error("inbox item failed", "connector", it.Connector, "inbox", it.ID, "err", err)
			}
		}
	}
	if p.processed != nil {
		p.processed(len(items))
	}
	p.batches.Add(1)
	if p.drained != nil {
		p.drained()
	}
	return len(items), nil
}

// batchState is what one transaction has touched: snapshots are written once
// at the end, however many events of the batch changed them.
type batchState struct {
	tx         *store.Tx
	bundle     *Bundle
	now        time.Time
	snapshots  map[event.EntityKey]*event.Snapshot
	dirty      map[event.EntityKey]bool
	deliveries int
	// claimed are the deliveries claimed as they were written, for the
	// handoff once the transaction commits; reserved is the handoff room
	// held for them.
	claimed  []*store.Delivery
	reserved int
	// events, when set, stores the batch's events with their encoding
	// done beside the transaction (store.EventWriter); nil stores each
	// at once, for batches that read their own events back.
	events *store.EventWriter
	// earliest is the earliest due time of the timers this batch armed or
	// moved (zero: none): the scheduler is woken when it is earlier than
	// what it sleeps for.
	earliest time.Time
	// tally is what the batch counts for the metrics, added once its
	// transaction has committed.
	tally tally
	// logs are the lines the batch logs once its transaction has
	// committed: a batch rolled back and retried item by item logs once.
	logs []logRecord
	// queued are the entity updates the batch queued for delivery, by
	// target entity, in order: later updates of the batch are rendered
	// (and checked for no-ops) against the target with them applied, so
	// that two rules replacing a platform's whole tag list build on each
	// other instead of on the same snapshot.
	queued map[event.EntityKey][]*event.Update
}

// newBatchState starts the state of one transaction.
func newBatchState(tx *store.Tx, b *Bundle, now time.Time) *batchState {
	return &batchState{tx: tx, bundle: b, now: now,
		snapshots: map[event.EntityKey]*event.Snapshot{}, dirty: map[event.EntityKey]bool{}}
}

// save writes the batch's events still being encoded and every snapshot
// the batch changed.
func (bs *batchState) save() error {
	if bs.events != nil {
		if err := bs.events.Flush(); err != nil {
			return fmt.Errorf("store events: %w", err)
		}
	}
	for k := range bs.dirty {
		if err := bs.tx.PutEntity(bs.snapshots[k]); err != nil {
			return fmt.Errorf("save entity %s: %w", k, err)
		}
	}
	return nil
}

// putEvent stores ev with its trace: through the batch's EventWriter when
// it has one (which also encodes the trace beside the transaction; neither
// changes afterwards), else at once.
func (bs *batchState) putEvent(ev *event.Event, trace *EventTrace) error {
	if bs.events != nil {
		return bs.events.Put(ev, trace)
	}
	return bs.tx.PutEvent(ev, trace)
}

func (bs *batchState) snapshot(k event.EntityKey) (*event.Snapshot, error) {
	if s, ok := bs.snapshots[k]; ok {
		return s, nil
	}
	s, err := bs.tx.Entity(k)
	if err != nil {
		return nil, fmt.Errorf("load entity %s: %w", k, err)
	}
	bs.snapshots[k] = s
	return s, nil
}

func (p *pipeline) processBatch(items []*store.InboxItem, mapped []mappedItem) error {
	// The rules are those in force once the writer is ours, not when the
	// batch was mapped: a reload's timer retiming (retime.go) starts with
	// a write, so no batch can arm a timer under rules it has already
	// retimed.
	// A panic in a batch of several items is not logged here: drain
	// retries them one by one, and the item that panics alone logs its
	// stack then, once.
	return p.inBatchLogging(nil, time.Time{}, len(items) == 1, func(bs *batchState) error {
		// Events are encoded beside the transaction: nothing in a
		// pipeline batch reads its own events back.
		bs.events = bs.tx.EventWriter()
		for i, it := range items {
			if err := p.processItem(bs, it, mapped[i]); err != nil {
				return fmt.Errorf("inbox %s: %w", it.ID, err)
			}
		}
		return nil
	})
}

// inBatch runs fn in one write transaction on a fresh batchState, saves
// the snapshots it changed, and after the transaction hands on what it
// claimed and armed (committed). b and now are the rules and clock of the
// batch; nil and zero mean the pipeline's, read once the writer is ours.
func (p *pipeline) inBatch(b *Bundle, now time.Time, fn func(bs *batchState) error) error {
	return p.inBatchLogging(b, now, true, fn)
}

// inBatchLogging is inBatch that logs the stack of a panic in fn only when
// logPanic is set (else the caller's error carries it unlogged).
func (p *pipeline) inBatchLogging(b *Bundle, now time.Time, logPanic bool, fn func(bs *batchState) error) error {
	var res batchResult
	err := p.db.Update(func(tx *store.Tx) (err error) {
		// A panic inside the batch (a bug that an item, a timer or a
		// request triggers) rolls it back like an error: the callers then
		// retry item by item, and the one that fails alone is marked
		// failed instead of stopping the gateway at every restart.
		defer func() {
			if r := recover(); r != nil {
				err = bug.Recovered("processing a batch", r)
			}
			if pe, ok := bug.As(err); ok && logPanic {
				// Ours, or the store's (an event's encoding, which may
				// run on the EventWriter's goroutine).
				pe.Log(p.log)
			}
		}()
		bb, at := b, now
		if bb == nil {
			bb = p.bundle()
		}
		if at.IsZero() {
			at = p.now()
		}
		bs := newBatchState(tx, bb, at)
		defer func() {
			if bs.events != nil {
				bs.events.Stop()
			}
			res = bs.result()
		}()
		if err := fn(bs); err != nil {
			return err
		}
		return bs.save()
	})
	p.committed(err == nil, res)
	return err
}

// batchResult is what follows a batch's transaction.
type batchResult struct {
	deliveries int
	earliest   time.Time
	claimed    []*store.Delivery
	reserved   int
	tally      tally
	logs       []logRecord
}

func (bs *batchState) result() batchResult {
	return batchResult{deliveries: bs.deliveries, earliest: bs.earliest, claimed: bs.claimed, reserved: bs.reserved, tally: bs.tally, logs: bs.logs}
}

// logRecord is a line a batch logs once its transaction has committed.
type logRecord struct {
	level slog.Level
	msg   string
	args  []any
}

// logAfter queues a line to log once the batch's transaction has
// committed (none when it is rolled back).
func (bs *batchState) logAfter(level slog.Level, msg string, args ...any) {
	bs.logs = append(bs.logs, logRecord{level: level, msg: msg, args: args})
}

// committed follows a batch's transaction (ok: it committed). It hands the
// deliveries claimed in it to the workers, or gives their room back when
// it did not commit; then it wakes the dispatcher for the other new
// deliveries and the scheduler for a timer due earlier than it sleeps.
func (p *pipeline) committed(ok bool, r batchResult) {
	if p.handoff != nil {
		if !ok {
			p.handoff.Release(r.reserved)
			return
		}
		p.handoff.Release(r.reserved - len(r.claimed))
		p.handoff.Submit(r.claimed)
	}
	if !ok {
		return
	}
	p.markReplays(r.tally.received)
	p.metrics.add(&r.tally, p.now())
	if p.deliveriesFailed != nil {
		for connector, n := range r.tally.unbuilt {
			p.deliveriesFailed(connector, n)
		}
	}
	for _, l := range r.logs {
		p.log.Log(context.Background(), l.level, l.msg, l.args...)
	}
	if r.deliveries > len(r.claimed) && p.delivered != nil {
		p.delivered()
	}
	if !r.earliest.IsZero() && p.timerArmed != nil {
		p.timerArmed(r.earliest)
	}
}

// mappedItem is an inbox item's mapping result. Mapping is pure, so a batch
// is mapped before the write transaction opens instead of inside it, where
// it would hold bbolt's only writer (and so every ack and delivery outcome
// waiting for it) for the whole time.
type mappedItem struct {
	noMapper bool
	events   []*event.Event
	warnings []mapping.Warning
	err      error
}

func (p *pipeline) mapItems(b *Bundle, items []*store.InboxItem) []mappedItem {
	out := make([]mappedItem, len(items))
	for i, it := range items {
		c := b.Connectors[it.Connector]
		if c == nil || c.Inbound == nil || c.Inbound.Mapper == nil {
			out[i].noMapper = true
			continue
		}
		out[i].events, out[i].warnings, out[i].err = p.mapItem(c.Inbound.Mapper, it)
	}
	return out
}

// mapItem maps one item. A panic (a bug that this payload triggers) is
// the item's error, so that the item fails alone instead of the gateway
// stopping, and failing again on the same item after every restart. Its
// stack is logged when the item is marked failed (processItem), once,
// however many times a failing batch has the item mapped again.
func (p *pipeline) mapItem(m *mapping.Mapper, it *store.InboxItem) (events []*event.Event, warnings []mapping.Warning, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = bug.Recovered("mapping inbox item "+it.ID, r)
		}
	}()
	if p.itemHook != nil {
		p.itemHook("map", it)
	}
	return m.MapWithWarnings(mapping.Input{Body: it.Body, Header: it.Headers, Query: it.Query, ReceivedAt: it.ReceivedAt})
}

func (p *pipeline) processItem(bs *batchState, it *store.InboxItem, m mappedItem) error {
	if p.itemHook != nil {
		p.itemHook("process", it)
	}
	if m.noMapper {
		return bs.failItem(it, fmt.Sprintf("connector %q has no inbound mapping in the current config", it.Connector))
	}
	events, err := m.events, m.err
	if err != nil {
		if pe, ok := bug.As(err); ok {
			msg, attrs := pe.Record("connector", it.Connector, "inbox", it.ID)
			bs.logAfter(slog.LevelError, msg, attrs...)
		}
		return bs.failItem(it, err.Error())
	}
	if len(events) == 0 {
		bs.tally.inbox(it, store.InboxUnmapped)
		return bs.tx.FinishInbox(it.ID, store.InboxUnmapped, "no event mapping of connector "+it.Connector+" matched this payload", nil)
	}
	if reason, err := bs.entityFieldsOver(events); err != nil {
		return err
	} else if reason != "" {
		return bs.failItem(it, reason)
	}
	hops, cause := causationFromHeaders(it.Headers)
	ids := make([]string, 0, len(events))
	for i, ev := range events {
		// Ids tell when the event was made: a webhook replayed days after it
		// arrived makes events of today (they list as new, and retention
		// keeps them for its full time).
		ev.ID = p.ids.New(bs.now)
		ev.InboxID = it.ID
		ev.Causation.Hops = hops
		ev.Causation.DeliveryID = cause
		var warnings []string
		for _, w := range m.warnings {
			if w.Event == i {
				warnings = append(warnings, w.Message)
				bs.logAfter(slog.LevelWarn, "mapping", "connector", it.Connector, "inbox", it.ID, "event", ev.ID, "warning", w.Message)
			}
		}
		if _, err := p.handleMappedEvent(bs, ev, "", warnings); err != nil {
			return err
		}
		ids = append(ids, ev.ID)
	}
	bs.tally.inbox(it, store.InboxProcessed)
	return bs.tx.FinishInbox(it.ID, store.InboxProcessed, "", ids)
}

// failItem finishes it failed with reason, counted and logged (at warn,
// with the connector, the inbox id and the reason) once the batch commits.
func (bs *batchState) failItem(it *store.InboxItem, reason string) error {
	bs.tally.inbox(it, store.InboxFailed)
	bs.logAfter(slog.LevelWarn, "inbox item failed", "connector", it.Connector, "inbox", it.ID, "reason", reason)
	return bs.tx.FinishInbox(it.ID, store.InboxFailed, reason, nil)
}

func causationFromHeaders(h map[string][]string) (hops int, delivery string) {
	if v := h[textproto.CanonicalMIMEHeaderKey(HeaderHops)]; len(v) > 0 {
		if n, err := strconv.Atoi(strings.TrimSpace(v[0])); err == nil && n > 0 {
			hops = n
		}
	}
	if v := h[textproto.CanonicalMIMEHeaderKey(HeaderDelivery)]; len(v) > 0 {
		delivery = v[0]
	}
	return hops, delivery
}

// handleEvent runs one event through snapshot, guards and rules (or, with
// run set, one rule's actions on demand), and writes the event, its trace,
// the timers of the time-based rules it moved (a timer.fired event consumes
// its own) and the deliveries it causes. The trace it returns is the one
// handed to the batch's EventWriter, which may still be encoding it: the
// caller must not change it.
func (p *pipeline) handleEvent(bs *batchState, ev *event.Event, run string) (*EventTrace, error) {
	return p.handleMappedEvent(bs, ev, run, nil)
}

// handleMappedEvent is handleEvent for an event a mapping made, with the
// mapping's warnings about it, which its trace keeps.
func (p *pipeline) handleMappedEvent(bs *batchState, ev *event.Event, run string, warnings []string) (*EventTrace, error) {
	key := ev.Key()
	prior, err := bs.snapshot(key)
	if err != nil {
		return nil, err
	}
	trace := EventTrace{Warnings: warnings}
	applied, note, echoed, err := markEchoes(bs.tx, ev, prior, bs.now, bs.bundle.derivedFrom(ev.Connector))
	if err != nil {
		return nil, err
	}
	if note != "" {
		trace.Guards = append(trace.Guards, note)
	}
	if echoed != nil {
		bs.tally.guards[guardEcho]++
		// Frequent and normal (every delivery's echo): debug.
		bs.logAfter(slog.LevelDebug, "loop guard", "guard", "echo", "event", ev.ID, "entity", key.String(), "delivery", echoed.DeliveryID)
	}
	if max := bs.bundle.File.LoopGuard.MaxHops; ev.Causation.Hops >= max {
		msg := fmt.Sprintf("hop limit reached: %d hops >= max_hops %d; the causation chain stops here", ev.Causation.Hops, max)
		trace.Guards = append(trace.Guards, msg)
		bs.tally.guards[guardMaxHops]++
		bs.logAfter(slog.LevelWarn, "loop guard", "guard", "max_hops", "event", ev.ID, "entity", key.String(), "hops", ev.Causation.Hops)
	}

	firings := newStoreFirings(bs.tx)
	d, err := decide(bs.bundle.Rules, ev, prior, applied, bs.now, firings, run)
	if err == nil {
		err = firings.err()
	}
	if err != nil {
		return nil, err
	}
	bs.snapshots[key] = d.Next
	bs.dirty[key] = true
	if err := bs.applyTimers(ev, d.Timers); err != nil {
		return nil, err
	}
	trace.Timers = d.Timers
	for _, te := range d.Result.Trace {
		if strings.Contains(te.Skipped, "loop guard") {
			bs.tally.guards[guardFiringCap]++
			bs.logAfter(slog.LevelWarn, "loop guard", "guard", "firing_cap", "rule", te.Rule, "entity", key.String(), "event", ev.ID, "reason", te.Skipped)
		}
	}
	for _, re := range d.Result.Errors {
		bs.logAfter(slog.LevelWarn, "rule failed at run time", "rule", re.Rule, "event", ev.ID, "err", re.Message)
	}
	trace.Matched = d.Result.Matched
	trace.Rules = d.Result.Trace
	trace.Errors = d.Result.Errors
	for i := range d.Result.Updates {
		u := &d.Result.Updates[i]
		id, note, err := p.enqueue(bs, u, ev)
		if err != nil {
			return nil, err
		}
		if id != "" {
			trace.Deliveries = append(trace.Deliveries, id)
		}
		if note != "" {
			trace.Suppressed = append(trace.Suppressed, note)
		}
	}
	if p.subscriptions != nil {
		// The list in memory may predate an unsubscribe that has committed
		// since; the transaction has the last word (the unsubscribe
		// cancels what was queued before it).
		hooks, err := restHookUpdates(p.subscriptions(), ev, bs.tx.HasSubscription)
		if err != nil {
			return nil, err
		}
		for i := range hooks {
			id, _, err := p.enqueue(bs, &hooks[i], ev)
			if err != nil {
				return nil, err
			}
			trace.Deliveries = append(trace.Deliveries, id)
		}
	}
	if err := bs.putEvent(ev, &trace); err != nil {
		return nil, fmt.Errorf("store event: %w", err)
	}
	bs.tally.event(ev.Connector, ev.Type, len(d.Result.Matched))
	return &trace, nil
}

func cloneChanges(c map[string]event.Change) map[string]event.Change {
	if c == nil {
		return nil
	}
	out := make(map[string]event.Change, len(c))
	for k, v := range c {
		out[k] = v
	}
	return out
}

// fingerprints keeps the fingerprints of delivered changes: the store's
// transaction in the pipeline, the run's memory in dry runs and config
// tests (simFingerprints), so that both recognise echoes alike.
type fingerprints interface {
	PutFingerprint(f store.Fingerprint) error
	EntityFingerprints(connector, entity, reference string, now time.Time) ([]store.Fingerprint, error)
	DeleteFingerprint(f *store.Fingerprint) error
}

// markEchoes applies ev to prior once to learn its changes, then marks it
// before the rules run: the echo of a delivery of ours (echoed is the
// fingerprint it matched; applied is nil, since the actor and with it the
// message counters change), a partial echo, or a person's event (applied is
// the probe's result, which decide need not compute again). note is what
// the trace's guards say of it ("" when nothing). The pipeline and dry runs
// share it.
func markEchoes(fps fingerprints, ev *event.Event, prior *event.Snapshot, now time.Time, derivedFrom func(string) (string, bool)) (applied *event.Snapshot, note string, echoed *store.Fingerprint, err error) {
	probe := *ev
	probe.Changes = cloneChanges(ev.Changes)
	applied = event.Apply(prior, &probe)
	echo, err := echoOf(fps, &probe, now, derivedFrom)
	if err != nil {
		return nil, "", nil, err
	}
	if !echo.all {
		ev.Changes = probe.Changes
		return applied, markPartialEcho(ev, echo), nil, nil
	}
	return nil, markEcho(ev, echo.fp), echo.fp, nil
}

// liveFingerprints are the live fingerprints of one entity, read once
// (fingerprints.EntityFingerprints) for all the checks of an event or an
// update, in key order.
type liveFingerprints []store.Fingerprint

// match returns the fingerprint of the change (field, value) the loop
// guards count from (store.BestFingerprint).
func (l liveFingerprints) match(field, value string) *store.Fingerprint {
	return store.BestFingerprint(l, field, value)
}

// field returns the fingerprints of one field, in value order.
func (l liveFingerprints) field(field string) []store.Fingerprint {
	var out []store.Fingerprint
	for _, f := range l {
		if f.Field == field {
			out = append(out, f)
		}
	}
	return out
}

// echoMatch is what the fingerprints tell of an event's changes: which
// were Hookline's own (fields, sorted) and the fingerprint among them with
// the most hops (nil when none was ours).
type echoMatch struct {
	fields []string
	fp     *store.Fingerprint
	// all is true when every change of the event was ours: it is an echo.
	all bool
}

// markEcho makes ev the echo of the delivery fp fingerprinted: its actor
// becomes the gateway and it carries the delivery's hops. It returns the
// guard note for the event's trace.
func markEcho(ev *event.Event, fp *store.Fingerprint) string {
	ev.Actor.Type = event.ActorGateway
	ev.Causation.Echo = true
	inheritCausation(ev, fp)
	return fmt.Sprintf("echo of delivery %s: every change matches what Hookline sent; rules skip it unless on_own_changes", fp.DeliveryID)
}

// markPartialEcho records on ev, a person's event that also carries some
// of Hookline's own changes (m.fields), which changes were ours, and gives
// it the hops of the delivery that made them, so that a loop through it
// still counts hops. Rules run on it as on any person's event. It returns
// the guard note for the event's trace, "" when no change was ours.
func markPartialEcho(ev *event.Event, m echoMatch) string {
	if m.fp == nil {
		return ""
	}
	ev.Causation.EchoedFields = m.fields
	inheritCausation(ev, m.fp)
	return fmt.Sprintf("partial echo of delivery %s: the changes of %s match what Hookline sent, the others do not; rules run on it as a person's event, at hop %d",
		m.fp.DeliveryID, strings.Join(m.fields, ", "), ev.Causation.Hops)
}

func inheritCausation(ev *event.Event, fp *store.Fingerprint) {
	if ev.Causation.DeliveryID == "" {
		ev.Causation.DeliveryID = fp.DeliveryID
	}
	if fp.Hops > ev.Causation.Hops {
		ev.Causation.Hops = fp.Hops
	}
}

// echoOf matches the event's changes with the changes Hookline itself
// delivered recently. A change to a derived field (status_category, or a
// field the connector declares derived_from another) that comes with a
// change to its source is explained with its source: connectors derive it
// from the value the platform echoes, and Hookline never delivers it.
//
// A match uses up no fingerprint: a platform may echo one update as
// several webhooks, each carrying the change (Zendesk posts
// status_changed and priority_changed for one update of both). A
// fingerprint ends when a delivery fails or is cancelled (the store), when
// it expires, or when an event that is not an echo moves its field to
// another value (endMovedFingerprints): from then on, that value set again
// by a person is theirs.
func echoOf(fps fingerprints, ev *event.Event, now time.Time, derivedFrom func(field string) (string, bool)) (echoMatch, error) {
	var m echoMatch
	if len(ev.Changes) == 0 {
		return m, nil
	}
	all, err := fps.EntityFingerprints(ev.Connector, ev.Entity, ev.Reference, now)
	if err != nil {
		return m, fmt.Errorf("fingerprints of %s/%s/%s: %w", ev.Connector, ev.Entity, ev.Reference, err)
	}
	if len(all) == 0 {
		return m, nil // nothing of ours to match, nor to end
	}
	live := liveFingerprints(all)
	theirs := 0
	for field, c := range ev.Changes {
		if source, derived := derivedFrom(field); derived {
			if _, changed := ev.Changes[source]; changed {
				continue // matched (or not) with its source
			}
		}
		if !changeMatches(live, field, c, &m) {
			theirs++
			continue
		}
		m.fields = append(m.fields, field)
	}
	sort.Strings(m.fields)
	m.all = theirs == 0 && len(m.fields) > 0
	if !m.all {
		if err := endMovedFingerprints(fps, live, ev); err != nil {
			return m, err
		}
	}
	return m, nil
}

// changeMatches reports whether the change of field matches fingerprints
// (every tag of a tag change), keeping in m the one with the most hops.
func changeMatches(live liveFingerprints, field string, c event.Change, m *echoMatch) bool {
	checks := fingerprintChecks(field, c)
	if len(checks) == 0 {
		return false
	}
	var best *store.Fingerprint
	for _, ch := range checks {
		fp := live.match(ch[0], ch[1])
		if fp == nil {
			return false
		}
		if best == nil || fp.Hops > best.Hops {
			best = fp
		}
	}
	if m.fp == nil || best.Hops > m.fp.Hops {
		m.fp = best
	}
	return true
}

// endMovedFingerprints ends, for an event that is not an echo, the
// fingerprints its changes move away from: those of a changed field with
// another value than the new one (in either spelling), and of a tag added
// (its removal) or removed (its addition).
func endMovedFingerprints(fps fingerprints, live liveFingerprints, ev *event.Event) error {
	for field, c := range ev.Changes {
		var ended []store.Fingerprint
		if field == event.FieldTags {
			for _, ch := range fingerprintChecks(field, c) {
				opposite := "tags-"
				if ch[0] == "tags-" {
					opposite = "tags+"
				}
				if fp := live.match(opposite, ch[1]); fp != nil {
					ended = append(ended, *fp)
				}
			}
		} else {
			to := fingerprintValue(event.String(c.To))
			for _, fp := range live.field(field) {
				if fp.Value != to && fp.Also != to {
					ended = append(ended, fp)
				}
			}
		}
		for i := range ended {
			if err := fps.DeleteFingerprint(&ended[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// fingerprintValue is how a value is fingerprinted and matched: platforms
// echo what they were sent in their own case and spacing (Zendesk
// lower-cases tags) and numbers in their own format (5 as 5.0 or 5e0), and
// a value that differs only so is the same change. Digit strings with
// leading zeros ("007") are identifiers, not numbers, and stay as they are.
func fingerprintValue(v string) string {
	v = strings.ToLower(strings.TrimSpace(v))
	if _, ok := event.PlainDecimal(v); ok && strings.ContainsAny(v, ".e") { // whole digits are already canonical (and may be ids too long for a float)
		if f, err := strconv.ParseFloat(v, 64); err == nil && !math.IsInf(f, 0) {
			return strconv.FormatFloat(f, 'f', -1, 64)
		}
	}
	return v
}

// fingerprintChecks lists the (field, value) pairs a change must match: a
// tag change is matched tag by tag ("tags+" added, "tags-" removed).
func fingerprintChecks(field string, c event.Change) [][2]string {
	if field != event.FieldTags {
		return [][2]string{{field, fingerprintValue(event.String(c.To))}}
	}
	from, to := toSet(event.Strings(c.From)), toSet(event.Strings(c.To))
	var out [][2]string
	for t := range to {
		if !from[t] {
			out = append(out, [2]string{"tags+", fingerprintValue(t)})
		}
	}
	for t := range from {
		if !to[t] {
			out = append(out, [2]string{"tags-", fingerprintValue(t)})
		}
	}
	return out
}

func toSet(list []string) map[string]bool {
	m := make(map[string]bool, len(list))
	for _, s := range list {
		m[s] = true
	}
	return m
}

// enqueue turns one rule decision into an outbox delivery (or notes why it was
// suppressed). It returns the delivery id and/or a suppression note.
func (p *pipeline) enqueue(bs *batchState, u *event.Update, ev *event.Event) (string, string, error) {
	var target *event.Snapshot
	key := u.StateKey()
	if u.Kind == event.KindUpdateEntity {
		snap, err := bs.snapshot(key)
		if err != nil {
			return "", "", err
		}
		target = withQueued(snap, bs.queued[key])
		unsettled, err := forgetUnsettled(bs.tx, target, u, bs.now)
		if err != nil {
			return "", "", err
		}
		if dropNoOps(u, unsettled) {
			bs.tally.guards[guardNoOp]++
			bs.logAfter(slog.LevelDebug, "loop guard", "guard", "no_op", "rule", u.RuleID, "entity", key.String(), "event", ev.ID)
			return "", fmt.Sprintf("rule %s: update of %s/%s/%s changes nothing the entity does not already have (no-op, not sent)", u.RuleID, u.Connector, u.Entity, u.Reference), nil
		}
	}
	d := &store.Delivery{
		ID:        p.ids.New(bs.now),
		Connector: u.Connector,
		Entity:    u.Entity,
		Reference: u.Reference,
		RuleID:    u.RuleID,
		EventID:   ev.ID,
		Update:    *u,
		State:     store.DeliveryPending,
		NextAt:    bs.now,
		CreatedAt: bs.now,
		UpdatedAt: bs.now,
		Hops:      u.Hops,
	}
	req, action, err := renderRequest(bs.bundle, u, d.ID, target)
	if err != nil {
		// Kept, visible and retryable after a config fix: never dropped;
		// counted and logged as the dispatcher's failures are.
		d.State = store.DeliveryFailed
		d.Reason = err.Error()
		bs.tally.unbuildable(d.Connector)
		bs.logAfter(slog.LevelWarn, "delivery: failed", "delivery", d.ID, "rule", d.RuleID, "event", d.EventID,
			"connector", d.Connector, "reason", d.Reason)
	} else {
		d.Request = *req
		d.Action = action
	}
	if err := p.addDelivery(bs, d); err != nil {
		return "", "", fmt.Errorf("add delivery: %w", err)
	}
	// Pending, or in flight when claimed as it was written (a delivery
	// that could not be rendered is stored failed and sends nothing).
	if d.State == store.DeliveryPending || d.State == store.DeliveryInFlight {
		bs.deliveries++
		if err := p.fingerprint(bs, d); err != nil {
			return "", "", err
		}
		if u.Kind == event.KindUpdateEntity {
			if bs.queued == nil {
				bs.queued = map[event.EntityKey][]*event.Update{}
			}
			bs.queued[key] = append(bs.queued[key], u)
		}
	}
	return d.ID, "", nil
}

// withQueued returns snap with the updates queued applied: the fields they
// set, and their tag changes when the tags are known (an unknown tag list
// stays unknown). snap is not changed; without updates it is returned as
// it is.
func withQueued(snap *event.Snapshot, queued []*event.Update) *event.Snapshot {
	if len(queued) == 0 {
		return snap
	}
	var view *event.Snapshot
	if snap != nil {
		view = snap.Clone()
	} else {
		view = &event.Snapshot{}
	}
	if view.Fields == nil {
		view.Fields = map[string]any{}
	}
	for _, u := range queued {
		for f, v := range u.Set {
			view.Fields[f] = v
		}
		cur, known := view.Fields[event.FieldTags]
		if !known || (len(u.AddTags) == 0 && len(u.RemoveTags) == 0) {
			continue
		}
		view.Fields[event.FieldTags] = event.MergeTags(event.Strings(cur), u.AddTags, u.RemoveTags)
	}
	return view
}

// forgetUnsettled returns target without the fields u sets that another
// update of ours may still be changing: a field with a live fingerprint of
// another value than u's (an update pending, in flight, or delivered and
// not echoed yet, or echoed and not moved on since) is not known state, so
// u's change of it is never dropped as a no-op; nor are u's tag changes
// when a live fingerprint adds a tag u removes or removes one u adds.
// target is not changed; when nothing is unsettled it is returned as it is.
func forgetUnsettled(fps fingerprints, target *event.Snapshot, u *event.Update, now time.Time) (*event.Snapshot, error) {
	if target == nil {
		return nil, nil
	}
	if !mayBeNoOp(u, target) {
		return target, nil // dropNoOps drops nothing of u, whatever is unsettled
	}
	var forget []string
	key := u.StateKey() // whose fingerprints its deliveries wrote
	all, err := fps.EntityFingerprints(key.Connector, key.Entity, key.Reference, now)
	if err != nil {
		return nil, fmt.Errorf("fingerprints of %s: %w", key, err)
	}
	if len(all) == 0 {
		return target, nil
	}
	live := liveFingerprints(all)
	for f, v := range u.Set {
		ours := fingerprintValue(event.String(v))
		for _, fp := range live.field(f) {
			if fp.Value != ours && fp.Also != ours {
				forget = append(forget, f)
				break
			}
		}
	}
	tagChecks := make([][2]string, 0, len(u.AddTags)+len(u.RemoveTags))
	for _, t := range u.AddTags {
		tagChecks = append(tagChecks, [2]string{"tags-", fingerprintValue(t)})
	}
	for _, t := range u.RemoveTags {
		tagChecks = append(tagChecks, [2]string{"tags+", fingerprintValue(t)})
	}
	for _, ch := range tagChecks {
		if live.match(ch[0], ch[1]) != nil {
			forget = append(forget, event.FieldTags)
			break
		}
	}
	if len(forget) == 0 {
		return target, nil
	}
	view := target.Clone()
	for _, f := range forget {
		delete(view.Fields, f)
	}
	return view, nil
}

// addDelivery writes d to the outbox. A pending delivery is claimed as it
// is written when the dispatcher has room for it and nothing else of its
// queue waits (store.Tx.AddDeliveryClaimed); it then goes to the workers
// when the transaction commits (committed).
func (p *pipeline) addDelivery(bs *batchState, d *store.Delivery) error {
	if d.State != store.DeliveryPending || p.handoff == nil {
		return bs.tx.AddDelivery(d)
	}
	if len(bs.claimed) == bs.reserved {
		// Room in steps, not one CAS per delivery.
		bs.reserved += p.handoff.Reserve(16)
	}
	if len(bs.claimed) == bs.reserved {
		return bs.tx.AddDelivery(d)
	}
	claimed, err := bs.tx.AddDeliveryClaimed(d)
	if err != nil {
		return err
	}
	if claimed {
		bs.claimed = append(bs.claimed, d)
	}
	return nil
}

// dropNoOps removes from u every change the target already has; it reports
// whether nothing is left to send. Tags compare case-insensitively, as
// conditions (includes) compare them: a tag removed in another case is
// sent as the target spells it.
// mayBeNoOp reports whether dropNoOps could drop part of u against target:
// a value u sets that target already holds, or a tag change while target
// knows the tags (which dropNoOps also respells). When it cannot, the
// fingerprints forgetUnsettled would read change nothing: every update
// that changes something new skips that read.
func mayBeNoOp(u *event.Update, target *event.Snapshot) bool {
	for f, v := range u.Set {
		if cur, ok := target.Fields[f]; ok && event.Equal(cur, v) {
			return true
		}
	}
	if len(u.AddTags) == 0 && len(u.RemoveTags) == 0 {
		return false
	}
	_, knowsTags := target.Fields[event.FieldTags]
	return knowsTags
}

func dropNoOps(u *event.Update, target *event.Snapshot) bool {
	if target != nil {
		for f, v := range u.Set {
			if cur, ok := target.Fields[f]; ok && event.Equal(cur, v) {
				delete(u.Set, f)
			}
		}
		if cur, knowsTags := target.Fields[event.FieldTags]; knowsTags {
			spelled := make(map[string]string) // lower case -> the target's spelling
			for _, t := range event.Strings(cur) {
				spelled[strings.ToLower(t)] = t
			}
			u.AddTags = filter(u.AddTags, func(t string) bool { _, has := spelled[strings.ToLower(t)]; return !has })
			u.RemoveTags = filter(u.RemoveTags, func(t string) bool { _, has := spelled[strings.ToLower(t)]; return has })
			for i, t := range u.RemoveTags {
				u.RemoveTags[i] = spelled[strings.ToLower(t)]
			}
		}
	}
	return len(u.Set) == 0 && len(u.AddTags) == 0 && len(u.RemoveTags) == 0
}

func filter(list []string, keep func(string) bool) []string {
	out := list[:0]
	for _, s := range list {
		if keep(s) {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// renderRequest renders the stored request of a delivery. call_webhook and log
// need no outbound connector; entity updates and messages go through the
// target connector's outbound actions, which see target (the updated
// entity's snapshot, nil when not loaded) as its current state.
func renderRequest(b *Bundle, u *event.Update, deliveryID string, target *event.Snapshot) (*store.Request, string, error) {
	switch u.Kind {
	case event.KindLog:
		if u.Log == nil {
			return nil, "", errors.New("log action without a line")
		}
		return &store.Request{Method: LogMethod, URL: "file:" + u.Log.File, Body: []byte(u.Log.Line)}, LogAction, nil
	case event.KindCallWebhook:
		// The connectors' checks (an http(s) URL with a host, header names
		// and values that can be sent): a request that can never be sent is
		// stored failed with the reason, not retried.
		r, err := connectors.RenderWebhook(u)
		if err != nil {
			return nil, "", err // names the rule and what is wrong
		}
		return toStoreRequest(r), "", nil
	}
	c := b.Connectors[u.Connector]
	if c == nil || c.Outbound == nil {
		return nil, "", fmt.Errorf("connector %q has no outbound section: nothing can carry this %s", u.Connector, u.Kind)
	}
	r, err := c.Outbound.Render(u, deliveryID, target)
	if err != nil {
		return nil, "", fmt.Errorf("render %s for connector %s: %w", u.Kind, u.Connector, err)
	}
	return toStoreRequest(r), r.Action, nil
}

// How a log action is stored in the outbox: delivery appends Body to the file
// named after "file:" in the URL, inside the configured log directory.
const (
	LogAction = "log"
	LogMethod = "LOG"
)

func toStoreRequest(r *connectors.Request) *store.Request {
	return &store.Request{Method: r.Method, URL: r.URL, Headers: r.Headers, Body: r.Body}
}

// fingerprint remembers every change a delivery makes, so that the platform's
// webhook echoing it back is recognised as ours. It is written with the
// delivery, before anything is sent: the echo may arrive before the response.
func (p *pipeline) fingerprint(bs *batchState, d *store.Delivery) error {
	return putFingerprints(bs.tx, bs.bundle, bs.now, d)
}

// putFingerprints writes the fingerprints of delivery d's changes in tx
// (see pipeline.fingerprint), expiring after the bundle's window from now;
// when the delivery succeeds, the store moves their expiry to the window
// from then (a delivery held back by retries is echoed once sent). They
// are the updated entity's (Update.StateKey): an update sent through
// deliver_to changes the event platform's entity, and its echo comes back
// from that platform.
func putFingerprints(tx fingerprints, b *Bundle, now time.Time, d *store.Delivery) error {
	if d.Update.Kind != event.KindUpdateEntity {
		return nil
	}
	window := b.File.Delivery.FingerprintWindow
	key := d.Update.StateKey()
	put := func(field, value, also string) error {
		return tx.PutFingerprint(store.Fingerprint{Connector: key.Connector, Entity: key.Entity, Reference: key.Reference, Field: field, Value: value, Also: also,
			DeliveryID: d.ID, Hops: d.Hops, Window: window, Expires: now.Add(window)})
	}
	var out *connectors.Outbound
	if c := b.Connectors[d.Connector]; c != nil {
		out = c.Outbound
	}
	for f, v := range d.Update.Set {
		ours := fingerprintValue(event.String(v))
		// The platform may echo the value its value map sent (an owner's
		// id for our name) rather than ours: both spellings are the echo.
		var theirs string
		if out != nil {
			if t := fingerprintValue(event.String(out.MapValue(f, v))); t != ours {
				theirs = t
			}
		}
		if err := put(f, ours, theirs); err != nil {
			return fmt.Errorf("fingerprint %s: %w", f, err)
		}
		if theirs != "" {
			if err := put(f, theirs, ours); err != nil {
				return fmt.Errorf("fingerprint %s: %w", f, err)
			}
		}
	}
	for _, t := range d.Update.AddTags {
		if err := put("tags+", fingerprintValue(t), ""); err != nil {
			return err
		}
	}
	for _, t := range d.Update.RemoveTags {
		if err := put("tags-", fingerprintValue(t), ""); err != nil {
			return err
		}
	}
	return nil
}

// applyTimers writes the timer operations of one event in the batch's
// transaction. A timer.fired event consumes its own timer first: the
// operations re-arm it when the rule's clock needs more time.
func (bs *batchState) applyTimers(ev *event.Event, ops []rules.TimerOp) error {
	key := ev.Key()
	if ev.Type == event.TypeTimerFired && ev.Rule != "" {
		if err := bs.tx.DeleteTimer(key, ev.Rule); err != nil {
			return fmt.Errorf("consume timer %s %s: %w", key, ev.Rule, err)
		}
	}
	for _, op := range ops {
		switch op.Op {
		case rules.TimerArm, rules.TimerMove:
			if err := bs.tx.PutTimer(store.Timer{Key: key, Rule: op.Rule, Due: op.Due, ArmedAt: bs.now}); err != nil {
				return fmt.Errorf("arm timer: %w", err)
			}
			if bs.earliest.IsZero() || op.Due.Before(bs.earliest) {
				bs.earliest = op.Due
			}
		case rules.TimerCancel:
			if err := bs.tx.DeleteTimer(key, op.Rule); err != nil {
				return fmt.Errorf("cancel timer: %w", err)
			}
		}
	}
	return nil
}

// ApplyEvents runs events that are already mapped through the pipeline:
// snapshot, loop guards, rules, time-based rules' timers and outbox, in ONE
// store transaction, as if they had come in as webhooks (but without inbox
// items). Events without an id get one; ReceivedAt defaults to now. It is
// for imports and benchmarks; webhooks go through /hooks/{connector}.
func (s *Server) ApplyEvents(evs []*event.Event) error {
	now := s.now()
	err := s.pipe.inBatch(nil, now, func(bs *batchState) error {
		// Encoded beside the transaction, as a webhook batch's events are.
		bs.events = bs.tx.EventWriter()
		for _, ev := range evs {
			if ev.ReceivedAt.IsZero() {
				ev.ReceivedAt = now
			}
			if ev.ID == "" {
				ev.ID = s.ids.New(ev.ReceivedAt)
			}
			if _, err := s.pipe.handleEvent(bs, ev, ""); err != nil {
				return fmt.Errorf("event %s: %w", ev.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("apply events: %w", err)
	}
	return nil
}
