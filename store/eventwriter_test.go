package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/internal/bug"
)

// TestEventWriter: events put through an EventWriter (more than one chunk,
// and a last chunk the flush encodes itself) are stored with exactly the
// bytes PutEvent stores, with traces given as JSON or as values the writer
// encodes, and are listed by entity; an event or a trace that cannot be
// encoded fails the flush; a writer stopped without a flush leaves nothing
// once its transaction is abandoned.
func TestEventWriter(t *testing.T) {
	viaWriter, viaPut := mustOpen(t), mustOpen(t)
	const n = 3*encodeChunk + 5
	evs := make([]*event.Event, n)
	for i := range evs {
		evs[i] = &event.Event{ID: viaWriter.NewID(), Connector: "zendesk", Type: "ticket.updated", Entity: "ticket",
			Reference: fmt.Sprint(i % 7), Fields: map[string]any{"status": "open", "n": float64(i), "text": strings.Repeat("x", i*10)},
			Raw: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))}
	}
	type traceValue struct {
		Rules []string `json:"rules"`
		N     int      `json:"n,omitempty"`
	}
	trace := func(i int) json.RawMessage { return json.RawMessage(fmt.Sprintf(`{"rules":["r%d"],"n":%d}`, i, i)) }
	if err := viaWriter.Update(func(tx *Tx) error {
		w := tx.EventWriter()
		defer w.Stop()
		for i, e := range evs {
			var tr any = trace(i)
			if i%2 == 1 {
				tr = &traceValue{Rules: []string{fmt.Sprintf("r%d", i)}, N: i}
			}
			if err := w.Put(e, tr); err != nil {
				return err
			}
		}
		return w.Flush()
	}); err != nil {
		t.Fatal(err)
	}
	viaPut.update(func(tx *Tx) error {
		for i, e := range evs {
			var tr any = trace(i)
			if i%3 == 2 {
				tr = &traceValue{Rules: []string{fmt.Sprintf("r%d", i)}, N: i}
			}
			if err := tx.PutEvent(e, tr); err != nil {
				return err
			}
		}
		return nil
	})
	for _, e := range evs {
		a, b := storedBytes(t, viaWriter.DB, bucketEvents, e.ID), storedBytes(t, viaPut.DB, bucketEvents, e.ID)
		if a == nil || !bytes.Equal(a, b) {
			t.Fatalf("event %s: EventWriter stored %d bytes, PutEvent %d, not the same", e.ID, len(a), len(b))
		}
	}
	list, _, err := viaWriter.ListEvents(EventFilter{Connector: "zendesk", Entity: "ticket", Reference: "3"})
	if err != nil || len(list) != (n+3)/7 {
		t.Fatalf("events of reference 3: %d, %v; want %d", len(list), err, (n+3)/7)
	}

	bad := &event.Event{ID: viaWriter.NewID(), Connector: "zendesk", Type: "ticket.updated", Entity: "ticket", Reference: "1",
		Fields: map[string]any{"x": make(chan int)}}
	err = viaWriter.Update(func(tx *Tx) error {
		w := tx.EventWriter()
		defer w.Stop()
		for i := range encodeChunk + 1 {
			e := &event.Event{ID: viaWriter.NewID(), Connector: "zendesk", Type: "ticket.updated", Entity: "ticket", Reference: "1"}
			if i == 3 {
				e = bad
			}
			if err := w.Put(e, nil); err != nil {
				return err
			}
		}
		return w.Flush()
	})
	if err == nil || !strings.Contains(err.Error(), bad.ID) {
		t.Fatalf("flush with an event that cannot be encoded: %v, want an error naming %s", err, bad.ID)
	}
	// A trace that cannot be encoded, in the first chunk (encoded by the
	// writer's goroutine) and by PutEvent.
	badTrace := &event.Event{ID: viaWriter.NewID(), Connector: "zendesk", Type: "ticket.updated", Entity: "ticket", Reference: "1"}
	unencodable := map[string]any{"x": make(chan int)}
	err = viaWriter.Update(func(tx *Tx) error {
		w := tx.EventWriter()
		defer w.Stop()
		for i := range encodeChunk + 1 {
			e, tr := &event.Event{ID: viaWriter.NewID(), Connector: "zendesk", Type: "ticket.updated", Entity: "ticket", Reference: "1"}, any(nil)
			if i == 3 {
				e, tr = badTrace, unencodable
			}
			if err := w.Put(e, tr); err != nil {
				return err
			}
		}
		return w.Flush()
	})
	if err == nil || !strings.Contains(err.Error(), "encode trace of event "+badTrace.ID) {
		t.Fatalf("flush with a trace that cannot be encoded: %v, want an error naming %s", err, badTrace.ID)
	}
	err = viaPut.Update(func(tx *Tx) error { return tx.PutEvent(badTrace, unencodable) })
	if err == nil || !strings.Contains(err.Error(), "encode trace of event "+badTrace.ID) {
		t.Fatalf("PutEvent with a trace that cannot be encoded: %v, want an error naming %s", err, badTrace.ID)
	}

	stopped := &event.Event{ID: viaWriter.NewID(), Connector: "zendesk", Type: "ticket.updated", Entity: "ticket", Reference: "2"}
	abandon := errors.New("abandon the transaction")
	if err := viaWriter.Update(func(tx *Tx) error {
		w := tx.EventWriter()
		if err := w.Put(stopped, nil); err != nil {
			return err
		}
		w.Stop()
		w.Stop()
		return abandon
	}); !errors.Is(err, abandon) {
		t.Fatalf("abandoned transaction: %v", err)
	}
	if _, err := viaWriter.Event(stopped.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("event of a writer stopped without a flush: %v, want ErrNotFound", err)
	}
}

func storedBytes(t *testing.T, db *DB, bucket, key string) []byte {
	t.Helper()
	var v []byte
	if err := db.bolt.View(func(btx *bolt.Tx) error {
		v = bytes.Clone(btx.Bucket([]byte(bucket)).Get([]byte(key)))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return v
}

// panicsWhenEncoded is a field value whose encoding panics: it stands for
// a bug in an encoder that some event's values trigger.
type panicsWhenEncoded struct{}

func (panicsWhenEncoded) MarshalJSON() ([]byte, error) { panic("boom in an encoder") }

// TestEventWriterPanicFailsTheFlush: a panic while an event is encoded,
// on the writer's own goroutine (first chunk) or in Flush (last chunk),
// fails the flush with an error naming the event, carrying the panic;
// the process goes on and the writer's next transaction works.
func TestEventWriterPanicFailsTheFlush(t *testing.T) {
	db := mustOpen(t)
	for _, at := range []int{3, encodeChunk + 1} {
		var bad *event.Event
		err := db.Update(func(tx *Tx) error {
			w := tx.EventWriter()
			defer w.Stop()
			for i := range encodeChunk + 2 {
				e := &event.Event{ID: db.NewID(), Connector: "zendesk", Type: "ticket.updated", Entity: "ticket", Reference: "1"}
				if i == at {
					e.Fields = map[string]any{"x": panicsWhenEncoded{}}
					bad = e
				}
				if err := w.Put(e, nil); err != nil {
					return err
				}
			}
			return w.Flush()
		})
		p, ok := bug.As(err)
		if !ok || !strings.Contains(err.Error(), "encoding event "+bad.ID) || p.Value != "boom in an encoder" {
			t.Fatalf("event %d panics when encoded: flush error %v, want the panic naming %s", at, err, bad.ID)
		}
		if _, err := db.Event(bad.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("event %d of the failed transaction is stored: %v", at, err)
		}
	}
	good := &event.Event{ID: db.NewID(), Connector: "zendesk", Type: "ticket.updated", Entity: "ticket", Reference: "1"}
	db.update(func(tx *Tx) error {
		w := tx.EventWriter()
		defer w.Stop()
		if err := w.Put(good, nil); err != nil {
			return err
		}
		return w.Flush()
	})
	if _, err := db.Event(good.ID); err != nil {
		t.Fatalf("after the panics: %v", err)
	}
}
