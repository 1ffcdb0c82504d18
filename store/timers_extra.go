package store

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/hookline/hookline/event"
)

// LastEventVars returns the template variables (Event.Vars) of the last
// event of the entity of snap (its snapshot, as the caller has it; nil:
// unknown) that carried any, or nil when none did. A timer.fired event
// carries them, so that a time-based rule's templates (%%TICKET_REFERENCE%%)
// render as they would for the entity's last webhook.
func (tx *Tx) LastEventVars(snap *event.Snapshot) (map[string]string, error) {
	// The snapshot keeps them (event.Snapshot.Vars), also once retention
	// pruned the events; snapshots written before it did are read from
	// the entity's newest event.
	if snap == nil {
		return nil, nil
	}
	if len(snap.Vars) > 0 {
		return snap.Vars, nil
	}
	k := snap.Key
	ek, err := entityKeyBytes(k)
	if err != nil {
		return nil, fmt.Errorf("last event of %s: %w", k, err)
	}
	prefix := eventIndexPrefix(ek)
	key, _ := lastBefore(tx.b(bucketEntities).Cursor(), prefix, nil)
	if key == nil || !bytes.HasPrefix(key, prefix) {
		return nil, nil
	}
	v := tx.b(bucketEvents).Get(key[len(prefix):])
	if v == nil {
		return nil, nil
	}
	if v, err = unpack(v); err != nil {
		return nil, fmt.Errorf("last event of %s: %w", k, err)
	}
	var se struct {
		Event struct {
			Vars map[string]string `json:"vars"`
		} `json:"event"`
	}
	if err := json.Unmarshal(v, &se); err != nil {
		return nil, fmt.Errorf("decode last event of %s: %w", k, err)
	}
	return se.Event.Vars, nil
}
