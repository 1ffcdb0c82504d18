package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hookline/hookline/event"
)

// DueTimers returns, inside a transaction, up to limit timers with
// Due <= now in due order: a range scan of the due index that stops at the
// first timer due later. The scheduler calls it in the same write
// transaction that fires and deletes the timers, so a timer moved or
// cancelled meanwhile is never fired. limit <= 0 means 100; at most 1000.
func (tx *Tx) DueTimers(now time.Time, limit int) ([]Timer, error) {
	limit = clampLimit(limit)
	var out []Timer
	err := tx.walkDue(now, func(t *Timer) (bool, error) {
		if t.Due.After(now) {
			return false, nil
		}
		out = append(out, *t)
		return len(out) < limit, nil
	})
	if err != nil {
		return nil, fmt.Errorf("due timers: %w", err)
	}
	return out, nil
}

// LastEventVars returns the template variables (Event.Vars) of the newest
// stored event of an entity, or nil when it has none. A timer.fired event
// carries them, so that a time-based rule's templates (%%TICKET_REFERENCE%%)
// render as they would for the entity's last webhook.
func (tx *Tx) LastEventVars(k event.EntityKey) (map[string]string, error) {
	ek, err := entityKeyBytes(k)
	if err != nil {
		return nil, fmt.Errorf("last event of %s: %w", k, err)
	}
	prefix := append(ek, sep)
	key, _ := lastBefore(tx.b(bucketEventsByEntity).Cursor(), prefix, nil)
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
