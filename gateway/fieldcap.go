package gateway

import (
	"fmt"

	"github.com/hookline/hookline/connectors"
	"github.com/hookline/hookline/event"
)

// entityFieldsOver checks the events of one inbox item against the cap of
// fields per entity snapshot of their connector (inbound.max_entity_fields).
// A snapshot keeps every field it was ever sent, so a sender choosing the
// keys of its payloads could otherwise grow one entity without end, and
// every later webhook for it would read and rewrite all of it. It returns
// why the item must fail ("" when every event fits): an event that adds
// fields to a snapshot already at the cap fails; stored data is never
// truncated, and events that only update known fields still go on.
func (bs *batchState) entityFieldsOver(events []*event.Event) (string, error) {
	// The snapshots are loaded for the events' apply anyway.
	return entityFieldsOver(bs.bundle, events, bs.snapshot)
}

// entityFieldsOver is the check of batchState.entityFieldsOver, reading
// snapshots with snapshotOf: the pipeline's batch and the dry runs share
// it.
func entityFieldsOver(b *Bundle, events []*event.Event, snapshotOf func(event.EntityKey) (*event.Snapshot, error)) (string, error) {
	for i, ev := range events {
		if !growsFields(ev) {
			continue
		}
		key := ev.Key()
		snap, err := snapshotOf(key)
		if err != nil {
			return "", err
		}
		var known map[string]any
		if snap != nil {
			known = snap.Fields
		}
		// What the snapshot holds plus every field this item's events gave
		// the entity so far bounds its size: within the cap (the usual
		// case), nothing needs counting exactly.
		limit := maxEntityFields(b, ev.Connector)
		bound := len(known)
		for _, e := range events[:i+1] {
			if growsFields(e) && e.Key() == key {
				bound += len(e.Fields) + len(e.Changes)
			}
		}
		if bound <= limit {
			continue
		}
		added := map[string]struct{}{}
		for _, e := range events[:i] {
			if growsFields(e) && e.Key() == key {
				addNewFields(added, known, e)
			}
		}
		before := len(added)
		addNewFields(added, known, ev)
		if n := len(known) + len(added); len(added) > before && n > limit {
			return fmt.Sprintf("event %d of the payload (%s on %s) would grow the entity's snapshot to %d fields, more than the cap of %d (inbound.max_entity_fields of connector %s); nothing was applied",
				i, ev.Type, key, n, limit, ev.Connector), nil
		}
	}
	return "", nil
}

// growsFields reports whether ev can add fields to its entity's snapshot.
func growsFields(ev *event.Event) bool {
	return ev.Type != event.TypeTimerFired && len(ev.Fields)+len(ev.Changes) > 0
}

// addNewFields adds to added the fields of ev that known does not hold. A
// null field (a platform's "owner": null) adds nothing: event.Apply stores
// nothing for a null the snapshot does not hold.
func addNewFields(added map[string]struct{}, known map[string]any, ev *event.Event) {
	for f, v := range ev.Fields {
		if _, ok := known[f]; !ok && v != nil {
			added[f] = struct{}{}
		}
	}
	for f := range ev.Changes {
		if _, ok := known[f]; !ok {
			added[f] = struct{}{}
		}
	}
}

// maxEntityFields is the cap of fields per entity snapshot of connector.
func maxEntityFields(b *Bundle, connector string) int {
	if c := b.Connectors[connector]; c != nil && c.Inbound != nil && c.Inbound.MaxEntityFields > 0 {
		return c.Inbound.MaxEntityFields
	}
	return connectors.DefaultMaxEntityFields
}
