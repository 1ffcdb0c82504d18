package store

import (
	"fmt"

	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/internal/bug"
)

// EventWriter stores a write transaction's events with their encoding
// done beside it. Encoding and packing an event (~15 µs) needs nothing
// from bbolt, while the transaction holds bbolt's only writer: Put checks
// the event and writes its entity index entry at once, and hands the
// encoding, encodeChunk events at a time, to a goroutine with an encoder
// of its own, so the transaction goes on with the next events on the
// other core. Flush, before the transaction ends, encodes the last chunk
// and writes them all. One EventWriter at a time per store: its goroutine
// uses the store's one aside encoder.
//
// Events put through an EventWriter are not readable in the transaction
// until Flush (LastEventVars, Event): a transaction that reads its own
// events back uses PutEvent. The caller must not change a put event or its
// trace, nor what they refer to, before Flush.
type EventWriter struct {
	tx      *Tx
	jobs    chan []*pendingEvent
	done    chan struct{}
	pending []*pendingEvent
	sent    int // pending[:sent] went to the encoder
}

// encodeChunk is how many events go to the encoder at a time: one wake-up
// of its goroutine per event cost more than the encoding saved.
const encodeChunk = 32

type pendingEvent struct {
	e     *event.Event
	trace any
	key   []byte
	data  []byte
	err   error
}

// EventWriter starts an EventWriter on tx. Call Flush (or Stop, when the
// transaction is abandoned) before tx ends.
func (tx *Tx) EventWriter() *EventWriter {
	return &EventWriter{tx: tx}
}

// Put queues e with its trace for the transaction; see EventWriter. The
// trace is stored as PutEvent stores it; encoding it is done beside the
// transaction too (a trace of 100 rules costs ~25 µs to encode).
func (w *EventWriter) Put(e *event.Event, trace any) error {
	tx := w.tx
	if err := checkPutEvent(tx, e); err != nil {
		return err
	}
	if err := tx.putEventIndex(e); err != nil {
		return err
	}
	w.pending = append(w.pending, &pendingEvent{e: e, trace: trace, key: tx.db.wmem.key(e.ID)})
	if len(w.pending)-w.sent >= encodeChunk {
		w.send()
	}
	return nil
}

// send hands the events not yet sent to the encoder, starting it first.
func (w *EventWriter) send() {
	if w.jobs == nil {
		w.jobs, w.done = make(chan []*pendingEvent, 64), make(chan struct{})
		go w.encode(&w.tx.db.wmemAside)
	}
	w.jobs <- w.pending[w.sent:len(w.pending):len(w.pending)]
	w.sent = len(w.pending)
}

// encode encodes and packs queued events until the queue closes; mem is
// the arena of the values it makes (bbolt keeps them until the commit).
func (w *EventWriter) encode(mem *writeMem) {
	defer close(w.done)
	for chunk := range w.jobs {
		for _, p := range chunk {
			p.encode(mem)
		}
	}
}

// Flush waits for the queued events' encoding and writes them. The last
// chunk, not yet sent, is encoded here meanwhile (in the transaction's own
// arena; the encoder has one of its own).
func (w *EventWriter) Flush() error {
	for _, p := range w.pending[w.sent:] {
		p.encode(&w.tx.db.wmem)
	}
	w.Stop()
	events := w.tx.b(bucketEvents)
	for _, p := range w.pending {
		if p.err != nil {
			return p.err
		}
		if err := events.Put(p.key, p.data); err != nil {
			return fmt.Errorf("put event %s: %w", p.e.ID, err)
		}
	}
	w.pending, w.sent = nil, 0
	return nil
}

// encode encodes and packs the event with its trace in mem.
func (p *pendingEvent) encode(mem *writeMem) {
	// A panic here may be on the encoder's own goroutine, where nothing
	// else would recover it: it becomes the event's error, which Flush
	// returns, and the batch fails as for any error.
	defer func() {
		if r := recover(); r != nil {
			p.data, p.err = nil, bug.Recovered("encoding event "+p.e.ID, r)
		}
	}()
	p.data, p.err = mem.packedEvent(p.e, p.trace)
}

// Stop ends the encoding goroutine without writing anything more. It is
// safe to call more than once, and after Flush.
func (w *EventWriter) Stop() {
	if w.jobs == nil {
		return
	}
	close(w.jobs)
	<-w.done
	w.jobs = nil
}
