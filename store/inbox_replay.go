package store

import (
	"bytes"
	"fmt"
	"time"
)

// InboxFilter selects inbox items for ListInbox. Empty fields match all.
type InboxFilter struct {
	Connector string `json:"connector,omitempty"`
	// State is one of InboxPending, InboxProcessed, InboxUnmapped,
	// InboxFailed.
	State string `json:"state,omitempty"`
	// After is the cursor: only items with ids after it ("": from the
	// oldest).
	After string `json:"after,omitempty"`
	// Limit is the most items returned (default 100, at most 1000).
	Limit int `json:"limit,omitempty"`
}

// maxInboxScan bounds how many stored items one ListInbox call reads: a
// filter that few items match returns a short page and a cursor rather
// than reading the whole inbox in one transaction.
const maxInboxScan = maxListScan

// ListInbox returns, in id (arrival) order, up to f.Limit items that
// match f, and the cursor of the next page ("" when the inbox has no
// more). Items still in the intake journal (all pending) are moved into
// bbolt first when the list can hold pending items, so that it is
// complete. An item that cannot be decoded is left out.
func (db *DB) ListInbox(f InboxFilter) ([]*InboxItem, string, error) {
	return db.listInbox(f, maxInboxScan)
}

// listInbox is ListInbox reading at most scan stored items.
func (db *DB) listInbox(f InboxFilter, scan int) ([]*InboxItem, string, error) {
	if err := checkListArgs(f.After, "connector", f.Connector); err != nil {
		return nil, "", fmt.Errorf("list inbox: %w", err)
	}
	limit := clampLimit(f.Limit)
	if f.State == "" || f.State == InboxPending {
		if err := db.flushJournal(); err != nil {
			return nil, "", fmt.Errorf("list inbox: %w", err)
		}
	}
	var (
		out  []*InboxItem
		next string
	)
	// A quick test on the stored JSON skips items that cannot match without
	// decoding them (the member with its quotes unescaped appears nowhere
	// else: strings escape quotes, headers and query values are lists);
	// the decoded item is checked again all the same.
	var connector, state []byte
	if f.Connector != "" {
		connector = appendString([]byte(`"connector":`), f.Connector)
	}
	if f.State != "" {
		state = appendString([]byte(`"state":`), f.State)
	}
	err := db.View(func(tx *Tx) error {
		c := tx.b(bucketInbox).Cursor()
		k, v := seekAfter(c, f.After)
		var last []byte // the last key read (valid in the transaction)
		for scanned := 0; k != nil; k, v = c.Next() {
			if len(out) == limit || scanned == scan {
				next = string(last) // more items follow it
				return nil
			}
			scanned++
			last = k
			if connector != nil && !bytes.Contains(v, connector) || state != nil && !bytes.Contains(v, state) {
				continue
			}
			item, err := decodeItem(string(k), v)
			if err != nil {
				continue // not listable; GET /api/v1/inbox/{id} says why
			}
			if f.Connector != "" && item.Connector != f.Connector || f.State != "" && item.State != f.State {
				continue
			}
			out = append(out, item)
		}
		return nil
	})
	return out, next, err
}

// ReplayInbox puts a finished item that failed or matched no mapping back
// on the pending list, to be processed again with the config in force
// (once its mapping, or the bug it met, is fixed). Its outcome (reason,
// event ids, processed time) is cleared. A pending or processed item is
// refused with ErrState: the one is waiting already, the other's rules
// have run and would run again.
func (tx *Tx) ReplayInbox(id string) error {
	if err := tx.writable("replay inbox item"); err != nil {
		return err
	}
	// An item still in the intake journal is pending: refused below.
	item, err := tx.Inbox(id)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	if item.State != InboxFailed && item.State != InboxUnmapped {
		return fmt.Errorf("replay inbox item %s: it is %s; only failed and unmapped items are replayed: %w", id, item.State, ErrState)
	}
	item.State, item.Reason, item.EventIDs, item.ProcessedAt = InboxPending, "", nil, time.Time{}
	m := &tx.db.wmem
	data, err := m.enc.inboxRecord(item)
	if err != nil {
		return fmt.Errorf("replay inbox item %s: %w", id, err)
	}
	key := m.key(id)
	if err := tx.b(bucketInbox).Put(key, m.copy(data)); err != nil {
		return fmt.Errorf("replay inbox item %s: %w", id, err)
	}
	if err := tx.b(bucketInboxPending).Put(key, present()); err != nil {
		return fmt.Errorf("replay inbox item %s: index pending: %w", id, err)
	}
	tx.tx.OnCommit(func() { tx.db.backlog.Add(1) })
	return tx.addCount(tx.b(bucketMeta), countInboxPending, 1)
}
