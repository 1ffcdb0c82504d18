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
	type growth struct {
		known map[string]any      // the snapshot's fields before this item
		added map[string]struct{} // fields this item's events add to it
	}
	var grown map[event.EntityKey]*growth
	for i, ev := range events {
		if ev.Type == event.TypeTimerFired || len(ev.Fields)+len(ev.Changes) == 0 {
			continue
		}
		key := ev.Key()
		g := grown[key]
		if g == nil {
			snap, err := bs.snapshot(key)
			if err != nil {
				return "", err
			}
			g = &growth{}
			if snap != nil {
				g.known = snap.Fields
			}
			if grown == nil {
				grown = map[event.EntityKey]*growth{}
			}
			grown[key] = g
		}
		adds := false
		add := func(field string) {
			if _, ok := g.known[field]; ok {
				return
			}
			if _, ok := g.added[field]; ok {
				return
			}
			if g.added == nil {
				g.added = map[string]struct{}{}
			}
			g.added[field] = struct{}{}
			adds = true
		}
		for f := range ev.Fields {
			add(f)
		}
		for f := range ev.Changes {
			add(f)
		}
		limit := bs.maxEntityFields(ev.Connector)
		if n := len(g.known) + len(g.added); adds && n > limit {
			return fmt.Sprintf("event %d of the payload (%s on %s) would grow the entity's snapshot to %d fields, more than the cap of %d (inbound.max_entity_fields of connector %s); nothing was applied",
				i, ev.Type, key, n, limit, ev.Connector), nil
		}
	}
	return "", nil
}

// maxEntityFields is the cap of fields per entity snapshot of connector.
func (bs *batchState) maxEntityFields(connector string) int {
	if c := bs.bundle.Connectors[connector]; c != nil && c.Inbound != nil && c.Inbound.MaxEntityFields > 0 {
		return c.Inbound.MaxEntityFields
	}
	return connectors.DefaultMaxEntityFields
}
