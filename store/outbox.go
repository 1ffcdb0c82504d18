package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hookline/hookline/event"
)

// Delivery states.
const (
	DeliveryPending   = "pending"
	DeliveryInFlight  = "in_flight"
	DeliverySucceeded = "succeeded"
	DeliveryFailed    = "failed"
	DeliveryCancelled = "cancelled"
)

// deliveryStates lists every delivery state (for Stats and validation).
var deliveryStates = [...]string{DeliveryPending, DeliveryInFlight, DeliverySucceeded, DeliveryFailed, DeliveryCancelled}

// maxResponse is how much of a response body an Attempt keeps.
const maxResponse = 4 << 10

// Request is a rendered outbound request. Auth is applied at send time and
// never stored.
type Request struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    []byte            `json:"body,omitempty"`
}

// Attempt is one try at sending a delivery.
type Attempt struct {
	At        time.Time `json:"at"`
	Status    int       `json:"status"`
	LatencyMS float64   `json:"latency_ms"`
	Error     string    `json:"error,omitempty"`
	// Response holds the first 4 KiB of the response body.
	Response string `json:"response,omitempty"`
}

// Delivery is one outbox entry: an update to send to one outbound
// connector. Deliveries of the same queue (Connector, Reference, and Queue:
// call_webhooks have one per destination host) are sent one at a time in
// id order; deliveries with an empty Reference are unordered.
type Delivery struct {
	ID        string       `json:"id"`
	Connector string       `json:"connector"`
	Entity    string       `json:"entity"`
	Reference string       `json:"reference"`
	RuleID    string       `json:"rule_id"`
	EventID   string       `json:"event_id"`
	Action    string       `json:"action"`
	Update    event.Update `json:"update"`
	// Request is the rendered request (auth is applied at send time).
	Request  Request   `json:"request"`
	State    string    `json:"state"`
	Attempts []Attempt `json:"attempts,omitempty"`
	// NextAt is when the delivery is due (while pending).
	NextAt    time.Time `json:"next_at"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Reason says why it failed or was cancelled (or why it was put back).
	Reason string `json:"reason,omitempty"`
	// Captured holds values captured from responses.
	Captured map[string]string `json:"captured,omitempty"`
	Hops     int               `json:"hops"`
	// RetriedFrom is how many attempts the delivery had when it was last
	// retried by hand (RetryDelivery): the retry schedule starts again
	// from there.
	RetriedFrom int `json:"retried_from,omitempty"`
	// Queue names the delivery's ordering queue when it is not its
	// connector's: a call_webhook's is "webhook <host>", the host of its
	// URL, so that it waits in line only with the call_webhooks of its
	// reference to the same destination, never holding (or held by) the
	// connector's updates of the entity. Set when the delivery first
	// joins a queue (empty in deliveries stored before it existed: they
	// keep the connector's queue).
	Queue string `json:"queue,omitempty"`
}

// AttemptsSinceRetry is how many attempts count against the retry
// schedule: those since the delivery was last retried by hand.
func (d *Delivery) AttemptsSinceRetry() int { return max(0, len(d.Attempts)-d.RetriedFrom) }

// Finish is one outcome for FinishDeliveries; the fields mirror the
// arguments of FinishDelivery.
type Finish struct {
	ID       string            `json:"id"`
	Attempt  *Attempt          `json:"attempt,omitempty"`
	State    string            `json:"state"`
	NextAt   time.Time         `json:"next_at,omitzero"`
	Reason   string            `json:"reason,omitempty"`
	Captured map[string]string `json:"captured,omitempty"`
}

// DeliveryFilter selects deliveries for ListDeliveries. Empty fields match
// all.
type DeliveryFilter struct {
	State     string `json:"state,omitempty"`
	Connector string `json:"connector,omitempty"`
	Reference string `json:"reference,omitempty"`
	Rule      string `json:"rule,omitempty"`
	// Since keeps deliveries whose id (ULID) time is at or after Since's
	// millisecond (ids are assigned at creation).
	Since time.Time `json:"since,omitzero"`
	// Cursor is the last id of the previous page (exclusive).
	Cursor string `json:"cursor,omitempty"`
	// Limit is the page size (default 100, at most 1000).
	Limit int `json:"limit,omitempty"`
}

// Stats counts what the store holds.
type Stats struct {
	InboxPending int            `json:"inbox_pending"`
	Deliveries   map[string]int `json:"deliveries"`
	Timers       int            `json:"timers"`
	// JournalSkipped counts the damaged spans of intake journal segments
	// that replays at Open skipped to reach valid records after them,
	// since the store was created (each was logged as an error and its
	// segment kept as <segment>.corrupt). A torn end is not counted.
	JournalSkipped int `json:"journal_skipped"`
}

// Heads record kinds (value of bucketOutboxHeads: kind, 8-byte due, id).
const (
	headDue      = 'd' // the queue head is pending and in the due index
	headInFlight = 'f' // a delivery of the queue is in flight
)

type head struct {
	kind byte
	due  uint64
	id   string
}

func (h head) encode() []byte {
	v := make([]byte, 9, 9+len(h.id))
	v[0] = h.kind
	binary.BigEndian.PutUint64(v[1:9], h.due)
	return append(v, h.id...)
}

func decodeHead(v []byte) (head, bool) {
	if len(v) < 9 {
		return head{}, false
	}
	return head{kind: v[0], due: binary.BigEndian.Uint64(v[1:9]), id: string(v[9:])}, true
}

// ordered reports whether d takes part in a per-reference queue.
func (d *Delivery) ordered() bool { return d.Reference != "" }

// queueName is the first part of the keys of d's queue: the connector, or
// connector \x01 Queue (connector names hold no \x01).
func (d *Delivery) queueName() string {
	if d.Queue == "" {
		return d.Connector
	}
	return d.Connector + "\x01" + d.Queue
}

// queueID is queue name \x00 reference (the key of the heads record).
func (d *Delivery) queueID() []byte { return join(d.queueName(), d.Reference) }

// queueKey is queue name \x00 reference \x00 id.
func (d *Delivery) queueKey() []byte { return join(d.queueName(), d.Reference, d.ID) }

// refKey is connector \x00 reference \x00 id (the reference index's key).
func (d *Delivery) refKey() []byte { return join(d.Connector, d.Reference, d.ID) }

// assignQueue names the queue of a call_webhook delivery that has none yet
// (see Delivery.Queue), from its URL.
func (d *Delivery) assignQueue() {
	if d.Queue != "" || !d.ordered() || d.Update.Kind != event.KindCallWebhook || d.Request.URL == "" {
		return
	}
	host := ""
	if u, err := url.Parse(d.Request.URL); err == nil {
		host = strings.ToLower(u.Host)
	}
	d.Queue = "webhook " + host
}

func dueKey(due uint64, id string) []byte {
	k := make([]byte, 8, 8+len(id))
	binary.BigEndian.PutUint64(k, due)
	return append(k, id...)
}

func stateKey(state, id string) []byte { return join(state, id) }

func validState(s string) bool {
	for _, v := range deliveryStates {
		if v == s {
			return true
		}
	}
	return false
}

// AddDelivery adds a delivery to the outbox: it assigns a ULID when ID is
// empty, sets State pending, CreatedAt/UpdatedAt now, NextAt now when zero,
// and appends it to its (Connector, Reference) queue. Only a queue's head
// is ever due. A delivery added in State failed (its request could not be
// rendered) is stored failed, with its Reason, outside any queue: it is
// never sent, and RetryDelivery can put it back.
func (tx *Tx) AddDelivery(d *Delivery) error {
	_, err := tx.addDelivery(d, false)
	return err
}

// AddDeliveryClaimed adds d as AddDelivery does and, when d would be due at
// once as the only entry of its queue (nothing of its connector and
// reference waits or is in flight), claims it in the same write: d is
// stored in flight, exactly as ClaimDue would leave it, and claimed is
// true. The caller then owns sending it and recording the outcome, like
// any claimed delivery (if the transaction does not commit, nothing
// happened). It saves the separate claim transaction, and the time to it,
// for the common case of an update to an entity with nothing queued.
// Otherwise d is added pending and claimed is false.
func (tx *Tx) AddDeliveryClaimed(d *Delivery) (claimed bool, err error) {
	return tx.addDelivery(d, true)
}

func (tx *Tx) addDelivery(d *Delivery, tryClaim bool) (bool, error) {
	if err := tx.writable("add delivery"); err != nil {
		return false, err
	}
	if d == nil {
		return false, fmt.Errorf("add delivery: nil: %w", ErrInvalid)
	}
	if err := checkPart("connector", d.Connector); err != nil {
		return false, fmt.Errorf("add delivery: %w", err)
	}
	if err := checkPart("reference", d.Reference); err != nil {
		return false, fmt.Errorf("add delivery: %w", err)
	}
	failed := d.State == DeliveryFailed
	if !failed {
		d.assignQueue()
	}
	if len(d.Connector)+len(d.Queue)+len(d.Reference) > maxIndexedKey {
		return false, fmt.Errorf("add delivery: connector and reference too long: %w", ErrInvalid)
	}
	now := tx.db.now()
	if d.ID == "" {
		d.ID = tx.db.ids.next(now)
	} else if len(d.ID) > maxIDLen {
		return false, fmt.Errorf("add delivery: id longer than %d bytes: %w", maxIDLen, ErrInvalid)
	} else if tx.b(bucketOutbox).Get([]byte(d.ID)) != nil {
		return false, fmt.Errorf("add delivery %s: id exists: %w", d.ID, ErrInvalid)
	}
	if !failed {
		d.State = DeliveryPending
	}
	if d.CreatedAt.IsZero() {
		d.CreatedAt = now
	}
	d.UpdatedAt = now
	if d.NextAt.IsZero() {
		d.NextAt = now
	}
	// A queue with no heads record is empty (schedule keeps its first
	// entry there whenever it has one), so d would be its due head.
	claim := !failed && tryClaim && !d.NextAt.After(now) &&
		(!d.ordered() || tx.b(bucketOutboxHeads).Get(d.queueID()) == nil)
	if claim {
		d.State = DeliveryInFlight
	}
	// When claimed, d goes to the caller: the cache gets a copy.
	if err := tx.putDelivery(d, false); err != nil {
		return false, fmt.Errorf("add delivery: %w", err)
	}
	if err := tx.setState(d.ID, "", d.State); err != nil {
		return false, fmt.Errorf("add delivery %s: %w", d.ID, err)
	}
	if err := tx.b(bucketOutboxRef).Put(d.refKey(), present()); err != nil {
		return false, fmt.Errorf("add delivery %s: index reference: %w", d.ID, err)
	}
	if failed {
		return false, nil
	}
	if !claim {
		if err := tx.enqueue(d, now); err != nil {
			return false, fmt.Errorf("add delivery %s: %w", d.ID, err)
		}
		return false, nil
	}
	if d.ordered() {
		if err := tx.b(bucketOutboxQueue).Put(d.queueKey(), present()); err != nil {
			return false, fmt.Errorf("add delivery %s: enqueue: %w", d.ID, err)
		}
		if err := tx.b(bucketOutboxHeads).Put(d.queueID(), head{kind: headInFlight, id: d.ID}.encode()); err != nil {
			return false, fmt.Errorf("add delivery %s: mark queue in flight: %w", d.ID, err)
		}
	}
	return true, nil
}

// enqueue makes a pending delivery eligible: into its queue (then the
// queue decides), or straight into the due index when it is unordered.
func (tx *Tx) enqueue(d *Delivery, now time.Time) error {
	if !d.ordered() {
		return tx.b(bucketOutboxDue).Put(dueKey(nanos(d.NextAt), d.ID), present())
	}
	if err := tx.b(bucketOutboxQueue).Put(d.queueKey(), present()); err != nil {
		return fmt.Errorf("enqueue: %w", err)
	}
	return tx.schedule(d.queueName(), d.Reference, now)
}

// schedule restores a queue's invariant: when nothing of the queue (its
// name, Delivery.queueName, and reference) is in flight, its first entry
// (and only it) is in the due index, due at max(NextAt, now).
func (tx *Tx) schedule(queue, reference string, now time.Time) error {
	heads, due := tx.b(bucketOutboxHeads), tx.b(bucketOutboxDue)
	qid := join(queue, reference)
	var cur head
	hasCur := false
	if v := heads.Get(qid); v != nil {
		h, ok := decodeHead(v)
		if !ok {
			return fmt.Errorf("schedule %q: bad heads record", qid)
		}
		if h.kind == headInFlight {
			return nil
		}
		cur, hasCur = h, true
	}
	prefix := append(copyBytes(qid), sep)
	k, _ := tx.b(bucketOutboxQueue).Cursor().Seek(prefix)
	var first string
	if k != nil && bytes.HasPrefix(k, prefix) {
		first = string(k[len(prefix):])
	}
	if hasCur {
		if cur.id == first {
			return nil
		}
		if err := due.Delete(dueKey(cur.due, cur.id)); err != nil {
			return fmt.Errorf("schedule: unindex old head: %w", err)
		}
		if err := heads.Delete(qid); err != nil {
			return fmt.Errorf("schedule: %w", err)
		}
	}
	if first == "" {
		return nil
	}
	// The common case: the new head is cached, pending and not overdue.
	// It only needs reading, so it stays in the cache for the claim.
	if d := tx.db.dcache.peek(first, tx.b(bucketOutbox).Get([]byte(first))); d != nil &&
		d.State == DeliveryPending && !d.NextAt.Before(now) {
		n := nanos(d.NextAt)
		if err := due.Put(dueKey(n, d.ID), present()); err != nil {
			return fmt.Errorf("schedule: index due: %w", err)
		}
		return heads.Put(qid, head{kind: headDue, due: n, id: d.ID}.encode())
	}
	d, v, err := tx.ownDelivery(first)
	if err != nil {
		return fmt.Errorf("schedule queue head: %w", err)
	}
	if d.State != DeliveryPending {
		return fmt.Errorf("schedule: queue head %s is %s, not pending", d.ID, d.State)
	}
	if d.NextAt.Before(now) {
		d.NextAt = now
		if err := tx.putDelivery(d, true); err != nil {
			return err
		}
	} else if cacheable(d) {
		tx.db.dcache.put(d.ID, copyBytes(v), d) // unchanged: keep it for the claim
	}
	n := nanos(d.NextAt)
	if err := due.Put(dueKey(n, d.ID), present()); err != nil {
		return fmt.Errorf("schedule: index due: %w", err)
	}
	return heads.Put(qid, head{kind: headDue, due: n, id: d.ID}.encode())
}

// delivery loads one delivery, or ErrNotFound.
func (tx *Tx) delivery(id string) (*Delivery, error) {
	v := tx.b(bucketOutbox).Get([]byte(id))
	if v == nil {
		return nil, fmt.Errorf("delivery %s: %w", id, ErrNotFound)
	}
	d := new(Delivery)
	if err := json.Unmarshal(v, d); err != nil {
		return nil, fmt.Errorf("decode delivery %s: %w", id, err)
	}
	return d, nil
}

// putDelivery writes d. An active (pending or in-flight) delivery is also
// kept decoded in the delivery cache, for the claim or finish that comes
// next: d itself when owned is set (the store's own copy, which the
// caller only reads from then on and never hands out), else a deep copy
// (d belongs to the caller, or is handed out).
func (tx *Tx) putDelivery(d *Delivery, owned bool) error {
	m := &tx.db.wmem
	enc, err := m.enc.delivery(d)
	if err != nil {
		return fmt.Errorf("encode delivery %s: %w", d.ID, err)
	}
	cache := (d.State == DeliveryPending || d.State == DeliveryInFlight) && cacheable(d)
	var data []byte
	if cache {
		data = bytes.Clone(enc) // its own allocation: the cache keeps it
	} else {
		data = m.copy(enc)
	}
	if err := tx.b(bucketOutbox).Put(m.key(d.ID), data); err != nil {
		return fmt.Errorf("put delivery %s: %w", d.ID, err)
	}
	if cache {
		c := d
		if owned {
			stripMonotonic(d)
		} else {
			c = cloneDelivery(d)
		}
		tx.db.dcache.put(d.ID, data, c)
	} else {
		tx.db.dcache.drop(d.ID)
	}
	return nil
}

// ownDelivery loads one delivery for a change: from the delivery cache
// when the stored bytes still match, else decoded. The caller owns the
// result; v is the stored record (valid inside the transaction).
func (tx *Tx) ownDelivery(id string) (d *Delivery, v []byte, err error) {
	v = tx.b(bucketOutbox).Get([]byte(id))
	if v == nil {
		return nil, nil, fmt.Errorf("delivery %s: %w", id, ErrNotFound)
	}
	if d = tx.db.dcache.take(id, v); d != nil {
		return d, v, nil
	}
	d = new(Delivery)
	if err := json.Unmarshal(v, d); err != nil {
		return nil, nil, fmt.Errorf("decode delivery %s: %w", id, err)
	}
	return d, v, nil
}

// setState moves a delivery between state index entries and counters
// (from "" for a new delivery).
func (tx *Tx) setState(id, from, to string) error {
	if from == to {
		return nil
	}
	idx, meta := tx.b(bucketOutboxState), tx.b(bucketMeta)
	if from != "" {
		if err := idx.Delete(stateKey(from, id)); err != nil {
			return fmt.Errorf("unindex state: %w", err)
		}
		if err := tx.addCount(meta, countKey(from), -1); err != nil {
			return err
		}
	}
	if err := idx.Put(tx.db.wmem.key(to, id), present()); err != nil {
		return fmt.Errorf("index state: %w", err)
	}
	return tx.addCount(meta, countKey(to), 1)
}

// countKey is the meta key of the counter of deliveries in state s (a
// constant for the known states, so no string is built).
func countKey(s string) string {
	switch s {
	case DeliveryPending:
		return countDeliveryStatePfx + DeliveryPending
	case DeliveryInFlight:
		return countDeliveryStatePfx + DeliveryInFlight
	case DeliverySucceeded:
		return countDeliveryStatePfx + DeliverySucceeded
	case DeliveryFailed:
		return countDeliveryStatePfx + DeliveryFailed
	case DeliveryCancelled:
		return countDeliveryStatePfx + DeliveryCancelled
	}
	return countDeliveryStatePfx + s
}

// Delivery returns one delivery, or ErrNotFound.
func (tx *Tx) Delivery(id string) (*Delivery, error) { return tx.delivery(id) }

// Delivery returns one delivery, or ErrNotFound.
func (db *DB) Delivery(id string) (*Delivery, error) {
	var d *Delivery
	err := db.View(func(tx *Tx) error {
		var err error
		d, err = tx.delivery(id)
		return err
	})
	return d, err
}

// ClaimDue returns up to limit eligible deliveries with NextAt <= now and
// marks them in_flight (removing them from the due index), in one
// transaction. limit <= 0 means 100; at most 1000 are claimed.
func (db *DB) ClaimDue(now time.Time, limit int) ([]*Delivery, error) {
	limit = clampLimit(limit)
	var out []*Delivery
	err := db.Update(func(tx *Tx) error {
		var err error
		out, err = tx.claimDue(now, limit)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claim due deliveries: %w", err)
	}
	return out, nil
}

// claimDue claims up to limit due deliveries inside tx.
func (tx *Tx) claimDue(now time.Time, limit int) ([]*Delivery, error) {
	due := tx.b(bucketOutboxDue)
	var keys [][]byte
	c := due.Cursor()
	for k, _ := c.First(); k != nil && len(keys) < limit; k, _ = c.Next() {
		if len(k) < 8 || binary.BigEndian.Uint64(k[:8]) > nanos(now) {
			break
		}
		keys = append(keys, copyBytes(k))
	}
	out := make([]*Delivery, 0, len(keys))
	for _, k := range keys {
		if err := due.Delete(k); err != nil {
			return nil, fmt.Errorf("unindex due: %w", err)
		}
		d, _, err := tx.ownDelivery(string(k[8:]))
		if err != nil {
			return nil, err
		}
		if d.State != DeliveryPending {
			return nil, fmt.Errorf("due index holds %s delivery %s", d.State, d.ID)
		}
		if err := tx.setState(d.ID, d.State, DeliveryInFlight); err != nil {
			return nil, fmt.Errorf("delivery %s: %w", d.ID, err)
		}
		d.State = DeliveryInFlight
		d.UpdatedAt = now
		// d goes to the caller: the cache gets a copy.
		if err := tx.putDelivery(d, false); err != nil {
			return nil, err
		}
		if d.ordered() {
			h := head{kind: headInFlight, id: d.ID}
			if err := tx.b(bucketOutboxHeads).Put(d.queueID(), h.encode()); err != nil {
				return nil, fmt.Errorf("mark queue in flight: %w", err)
			}
		}
		out = append(out, d)
	}
	return out, nil
}

// FinishAndClaim records outcomes as FinishDeliveries does and then claims
// up to limit deliveries due at now (or at the store's clock, when that is
// later) as ClaimDue does (limit <= 0: none; at most 1000), in ONE
// transaction: a dispatcher that hands back finished work and
// takes new work pays for one commit instead of two. A delivery finished
// as pending and due at once can be claimed again in the same call.
//
// A storage error commits nothing and returns no deliveries. Outcomes that
// cannot apply are skipped: the claimed deliveries are returned together
// with an error that joins one error per skipped outcome (errors.Is
// works on it); the caller owns the claimed deliveries in both cases.
//
// When another write transaction (Update, or a concurrent FinishAndClaim)
// gets bbolt's writer first, it records this call's outcomes and claims
// after its own work and before its commit, and this call costs no commit
// of its own (finishqueue.go).
func (db *DB) FinishAndClaim(results []Finish, now time.Time, limit int) ([]*Delivery, error) {
	r := &finishReq{results: results, now: now, limit: min(limit, 1000), done: make(chan struct{})}
	db.queueFinish(r)
	err := db.writeTx(nil)
	if err != nil && !errors.Is(err, errNothingQueued) && db.unqueueFinish(r) {
		// No transaction took r: this one failed before it could (the
		// store is closed). One that took r answers it, error or not.
		return nil, fmt.Errorf("finish and claim deliveries: %w", err)
	}
	<-r.done
	if r.err != nil {
		return nil, fmt.Errorf("finish and claim deliveries: %w", r.err)
	}
	return r.out, errors.Join(r.skipped...)
}

// NextDeliveryDue returns the earliest due time among eligible
// deliveries; ok is false when none is due at any time.
func (db *DB) NextDeliveryDue() (due time.Time, ok bool, err error) {
	err = db.View(func(tx *Tx) error {
		k, _ := tx.b(bucketOutboxDue).Cursor().First()
		if len(k) >= 8 {
			due, ok = fromNanos(binary.BigEndian.Uint64(k[:8])), true
		}
		return nil
	})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("next delivery due: %w", err)
	}
	return due, ok, nil
}

// FinishDelivery records the outcome of sending an in-flight delivery, in
// one transaction. a may be nil when no attempt was made (throttled,
// circuit open): then Attempts is unchanged. State pending puts it back in
// the due index at nextAt (now when zero); a final state (succeeded,
// failed, cancelled) removes it from its queue and makes the next one in
// the queue due. captured values merge into Captured. It returns ErrState
// when the delivery is not in flight and ErrInvalid for state in_flight or
// an unknown state.
func (db *DB) FinishDelivery(id string, a *Attempt, state string, nextAt time.Time, reason string, captured map[string]string) error {
	return db.FinishDeliveries([]Finish{{ID: id, Attempt: a, State: state, NextAt: nextAt, Reason: reason, Captured: captured}})
}

// FinishDeliveries records many outcomes in one transaction. An outcome
// that cannot apply (ErrNotFound, ErrState, ErrInvalid) is skipped and the
// others still commit; the returned error then joins one error per skipped
// outcome (errors.Is works on it). A storage error commits nothing.
func (db *DB) FinishDeliveries(results []Finish) error {
	var skipped []error
	err := db.Update(func(tx *Tx) error {
		var err error
		skipped, err = tx.finishAll(results, tx.db.now())
		return err
	})
	if err != nil {
		return fmt.Errorf("finish deliveries: %w", err)
	}
	return errors.Join(skipped...)
}

// finishAll applies every outcome that can apply and returns one error per
// skipped outcome; err is a storage error that aborts the transaction.
func (tx *Tx) finishAll(results []Finish, now time.Time) (skipped []error, err error) {
	for _, f := range results {
		d, err := tx.checkFinish(f)
		if err != nil {
			skipped = append(skipped, err)
			continue
		}
		if err := tx.finish(d, f, now); err != nil {
			return nil, err
		}
	}
	return skipped, nil
}

// checkFinish validates one outcome without writing anything and returns
// the delivery it applies to.
func (tx *Tx) checkFinish(f Finish) (*Delivery, error) {
	switch f.State {
	case DeliveryPending, DeliverySucceeded, DeliveryFailed, DeliveryCancelled:
	default:
		return nil, fmt.Errorf("finish delivery %s: target state %q: %w", f.ID, f.State, ErrInvalid)
	}
	d, _, err := tx.ownDelivery(f.ID)
	if err != nil {
		return nil, fmt.Errorf("finish: %w", err)
	}
	if d.State != DeliveryInFlight {
		return nil, fmt.Errorf("finish delivery %s: it is %s, not in flight: %w", f.ID, d.State, ErrState)
	}
	return d, nil
}

// finish applies one validated outcome to d; any error is a storage or
// consistency error that must abort the transaction.
func (tx *Tx) finish(d *Delivery, f Finish, now time.Time) error {
	if f.Attempt != nil {
		a := *f.Attempt
		a.Response = truncateUTF8(a.Response, maxResponse)
		d.Attempts = append(d.Attempts, a)
	}
	if len(f.Captured) > 0 {
		if d.Captured == nil {
			d.Captured = make(map[string]string, len(f.Captured))
		}
		for k, v := range f.Captured {
			d.Captured[k] = v
		}
	}
	d.Reason = f.Reason
	d.UpdatedAt = now
	if err := tx.setState(d.ID, d.State, f.State); err != nil {
		return fmt.Errorf("finish delivery %s: %w", d.ID, err)
	}
	d.State = f.State
	if err := tx.settleFingerprints(d, now); err != nil {
		return fmt.Errorf("finish delivery %s: %w", d.ID, err)
	}
	if d.ordered() {
		if err := tx.b(bucketOutboxHeads).Delete(d.queueID()); err != nil {
			return fmt.Errorf("finish delivery %s: %w", d.ID, err)
		}
	}
	if f.State == DeliveryPending {
		d.NextAt = f.NextAt
		if d.NextAt.IsZero() {
			d.NextAt = now
		}
		if err := tx.putDelivery(d, true); err != nil {
			return err
		}
		if !d.ordered() {
			return tx.enqueue(d, now)
		}
		return tx.schedule(d.queueName(), d.Reference, now)
	}
	if err := tx.putDelivery(d, true); err != nil {
		return err
	}
	if !d.ordered() {
		return nil
	}
	if err := tx.b(bucketOutboxQueue).Delete(d.queueKey()); err != nil {
		return fmt.Errorf("finish delivery %s: dequeue: %w", d.ID, err)
	}
	return tx.schedule(d.queueName(), d.Reference, now)
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// RetryDelivery puts a failed or cancelled delivery back to pending, due
// now, with the same id (so the same idempotency key), at its original
// position in its queue. Other states give ErrState.
func (db *DB) RetryDelivery(id string, now time.Time) error {
	return db.RetryDeliveryWith(id, now, nil)
}

// RetryDeliveryWith is RetryDelivery that first hands the delivery to
// build, in the retry's transaction: build sets d.Request and d.Action
// with the config in force now for a delivery stored without a request
// (its request could not be built when it was made), and may write what
// goes with the retried delivery (its echo fingerprints, which ended when
// it failed or was cancelled). An error of build leaves the delivery as
// it was and is returned. A delivery with a request is sent as it was
// made.
func (db *DB) RetryDeliveryWith(id string, now time.Time, build func(tx *Tx, d *Delivery) error) error {
	err := db.Update(func(tx *Tx) error {
		d, err := tx.delivery(id)
		if err != nil {
			return err
		}
		if d.State != DeliveryFailed && d.State != DeliveryCancelled {
			return fmt.Errorf("delivery %s is %s: %w", id, d.State, ErrState)
		}
		if build != nil {
			if err := build(tx, d); err != nil {
				return err
			}
		}
		if d.Request.URL == "" {
			return fmt.Errorf("delivery %s has no request to send (it could not be built; retry it through the gateway, which builds it again): %w", id, ErrState)
		}
		if err := tx.setState(d.ID, d.State, DeliveryPending); err != nil {
			return err
		}
		d.assignQueue() // out of any queue now: it joins its own
		d.State = DeliveryPending
		d.NextAt = now
		d.UpdatedAt = now
		d.Reason = ""
		d.RetriedFrom = len(d.Attempts) // a full retry schedule again
		if err := tx.putDelivery(d, true); err != nil {
			return err
		}
		return tx.enqueue(d, now)
	})
	if err != nil {
		return fmt.Errorf("retry delivery: %w", err)
	}
	return nil
}

// CancelDelivery cancels a pending delivery (ErrState otherwise) and makes
// the next one of its queue due.
func (db *DB) CancelDelivery(id string, reason string) error {
	err := db.Update(func(tx *Tx) error {
		d, err := tx.delivery(id)
		if err != nil {
			return err
		}
		if d.State != DeliveryPending {
			return fmt.Errorf("delivery %s is %s: %w", id, d.State, ErrState)
		}
		return tx.cancelPending(d, reason, tx.db.now())
	})
	if err != nil {
		return fmt.Errorf("cancel delivery: %w", err)
	}
	return nil
}

// cancelPending cancels d, a pending delivery the caller owns, and makes
// the next one of its queue due.
func (tx *Tx) cancelPending(d *Delivery, reason string, now time.Time) error {
	due := tx.b(bucketOutboxDue)
	if d.ordered() {
		heads := tx.b(bucketOutboxHeads)
		if h, ok := decodeHead(heads.Get(d.queueID())); ok && h.kind == headDue && h.id == d.ID {
			if err := due.Delete(dueKey(h.due, h.id)); err != nil {
				return err
			}
			if err := heads.Delete(d.queueID()); err != nil {
				return err
			}
		}
		if err := tx.b(bucketOutboxQueue).Delete(d.queueKey()); err != nil {
			return err
		}
	} else if err := due.Delete(dueKey(nanos(d.NextAt), d.ID)); err != nil {
		return err
	}
	if err := tx.setState(d.ID, d.State, DeliveryCancelled); err != nil {
		return err
	}
	d.State = DeliveryCancelled
	d.Reason = reason
	d.UpdatedAt = now
	if err := tx.settleFingerprints(d, now); err != nil {
		return fmt.Errorf("cancel delivery %s: %w", d.ID, err)
	}
	if err := tx.putDelivery(d, true); err != nil {
		return err
	}
	if d.ordered() {
		return tx.schedule(d.queueName(), d.Reference, now)
	}
	return nil
}

// Bounds of one transaction of CancelPendingByReferencePrefix: it holds
// bbolt's only writer, which the pipeline and the dispatcher need too.
const (
	cancelBatch = 500   // deliveries cancelled
	cancelScan  = 20000 // index entries looked at
)

// CancelPendingByReferencePrefix cancels, with reason, every pending
// delivery of connector whose reference starts with prefix (an empty
// prefix: all of the connector's), and returns how many it cancelled. It
// finds them through the reference index, looking at no other delivery,
// and cancels them in transactions of at most cancelBatch, so that it
// never holds the store's writer long. Deliveries in flight or finished
// are left as they are; one put back pending while it runs, behind the
// point it reached, is not cancelled.
func (db *DB) CancelPendingByReferencePrefix(connector, prefix, reason string) (int, error) {
	if err := checkListArgs("", "connector", connector, "reference prefix", prefix); err != nil {
		return 0, fmt.Errorf("cancel deliveries of %s/%s*: %w", connector, prefix, err)
	}
	start := append(prefixOf(connector), prefix...)
	from := copyBytes(start) // where the next transaction goes on
	total := 0
	for from != nil {
		err := db.Update(func(tx *Tx) error {
			pending := tx.b(bucketOutboxState)
			c := tx.b(bucketOutboxRef).Cursor()
			var ids []string
			k, _ := c.Seek(from)
			scanned := 0
			for ; k != nil && bytes.HasPrefix(k, start); k, _ = c.Next() {
				if len(ids) == cancelBatch || scanned == cancelScan {
					break
				}
				scanned++
				i := bytes.LastIndexByte(k, sep)
				if i < len(start)-1 { // a key of the connector without a reference part: not ours
					continue
				}
				id := string(k[i+1:])
				if pending.Get(stateKey(DeliveryPending, id)) != nil {
					ids = append(ids, id)
				}
			}
			if k != nil && bytes.HasPrefix(k, start) {
				from = copyBytes(k)
			} else {
				from = nil
			}
			now := tx.db.now()
			for _, id := range ids {
				d, _, err := tx.ownDelivery(id)
				if err != nil {
					return err
				}
				if err := tx.cancelPending(d, reason, now); err != nil {
					return fmt.Errorf("cancel delivery %s: %w", id, err)
				}
			}
			total += len(ids)
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("cancel deliveries of %s/%s*: %w", connector, prefix, err)
		}
	}
	return total, nil
}

// recoverInFlight turns every in_flight delivery back to pending, due now
// (run by Open: whatever was being sent when the process stopped is sent
// again).
func (tx *Tx) recoverInFlight() error {
	prefix := append([]byte(DeliveryInFlight), sep)
	var ids []string
	c := tx.b(bucketOutboxState).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		ids = append(ids, string(k[len(prefix):]))
	}
	now := tx.db.now()
	for _, id := range ids {
		d, err := tx.delivery(id)
		if err != nil {
			return err
		}
		if err := tx.setState(id, d.State, DeliveryPending); err != nil {
			return err
		}
		d.State = DeliveryPending
		d.NextAt = now
		d.UpdatedAt = now
		d.Reason = "recovered after restart"
		if err := tx.putDelivery(d, true); err != nil {
			return err
		}
		if !d.ordered() {
			if err := tx.enqueue(d, now); err != nil {
				return err
			}
			continue
		}
		if err := tx.b(bucketOutboxHeads).Delete(d.queueID()); err != nil {
			return err
		}
		if err := tx.schedule(d.queueName(), d.Reference, now); err != nil {
			return err
		}
	}
	return nil
}

// ListDeliveries returns deliveries newest first and the cursor of the
// next page ("" when there is no more). A State filter walks the state
// index and Connector+Reference the reference index; Since stops the walk
// at the first id older than Since. A page reads at most maxListScan
// deliveries: a filter that few match answers a short, possibly empty,
// page with the cursor where the walk stopped.
func (db *DB) ListDeliveries(f DeliveryFilter) ([]*Delivery, string, error) {
	return db.listDeliveries(f, maxListScan)
}

// listDeliveries is ListDeliveries reading at most budget deliveries.
func (db *DB) listDeliveries(f DeliveryFilter, budget int) ([]*Delivery, string, error) {
	if err := checkListArgs(f.Cursor, "connector", f.Connector, "reference", f.Reference, "rule", f.Rule); err != nil {
		return nil, "", fmt.Errorf("list deliveries: %w", err)
	}
	var floor []byte
	if !f.Since.IsZero() {
		floor = ulidFloor(f.Since)
	}
	page := newListPage[*Delivery](clampLimit(f.Limit), budget, idCursor)
	err := db.View(func(tx *Tx) error {
		outbox := tx.b(bucketOutbox)
		visit := func(id, v []byte) (bool, error) {
			if floor != nil && bytes.Compare(id, floor) < 0 {
				return false, nil
			}
			if !page.reach(id) {
				return false, nil
			}
			if v == nil {
				return true, nil
			}
			d := new(Delivery)
			if err := json.Unmarshal(v, d); err != nil {
				return false, fmt.Errorf("decode delivery %s: %w", id, err)
			}
			if (f.State != "" && d.State != f.State) ||
				(f.Connector != "" && d.Connector != f.Connector) ||
				(f.Reference != "" && d.Reference != f.Reference) ||
				(f.Rule != "" && d.RuleID != f.Rule) {
				return true, nil
			}
			return page.take(d), nil
		}
		walkIndex := func(bucket string, prefix []byte) error {
			var upper []byte
			if f.Cursor != "" {
				upper = append(copyBytes(prefix), f.Cursor...)
			}
			c := tx.b(bucket).Cursor()
			for k, _ := lastBefore(c, prefix, upper); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Prev() {
				id := k[len(prefix):]
				more, err := visit(id, outbox.Get(id))
				if err != nil || !more {
					return err
				}
			}
			return nil
		}
		switch {
		case f.State != "":
			if !validState(f.State) {
				return fmt.Errorf("unknown state %q: %w", f.State, ErrInvalid)
			}
			return walkIndex(bucketOutboxState, append([]byte(f.State), sep))
		case f.Connector != "" && f.Reference != "":
			return walkIndex(bucketOutboxRef, prefixOf(f.Connector, f.Reference))
		}
		return scanNewestFirst(outbox.Cursor(), f.Cursor, visit)
	})
	if err != nil {
		return nil, "", fmt.Errorf("list deliveries: %w", err)
	}
	return page.items, page.next, nil
}

// Stats returns counts of pending inbox items, deliveries per state and
// armed timers (kept as counters, so this is cheap).
func (db *DB) Stats() (Stats, error) {
	st := Stats{Deliveries: make(map[string]int, len(deliveryStates))}
	for consistent := false; !consistent; {
		err := db.View(func(tx *Tx) error {
			meta := tx.b(bucketMeta)
			st.InboxPending = int(getCount(meta, countInboxPending))
			// Items still only in the intake journal: queued records after
			// the applied position this snapshot sees, less those the
			// pipeline already wrote (finished) itself. When the applier has
			// moved on since the snapshot, read again.
			var journaled []*jrec
			consistent, journaled = db.journaledSince(tx.tx, "", -1)
			st.InboxPending += len(journaled)
			st.Timers = int(getCount(meta, countTimers))
			st.JournalSkipped = int(getCount(meta, countJournalSkipped))
			for _, s := range deliveryStates {
				st.Deliveries[s] = int(getCount(meta, countDeliveryStatePfx+s))
			}
			return nil
		})
		if err != nil {
			return Stats{}, fmt.Errorf("stats: %w", err)
		}
	}
	return st, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
