package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/hookline/hookline/event"
)

// Timer is one armed time-based rule on one entity: at Due the scheduler
// turns it into a timer.fired event. There is at most one per (Key, Rule).
type Timer struct {
	Key     event.EntityKey `json:"key"`
	Rule    string          `json:"rule"`
	Due     time.Time       `json:"due"`
	ArmedAt time.Time       `json:"armed_at"`
}

// TimerFilter selects timers for Timers. Empty fields match all.
type TimerFilter struct {
	Rule string `json:"rule,omitempty"`
	// Entity matches the entity type ("ticket"), or, when it contains a
	// "/", the whole key as "connector/entity/reference".
	Entity string `json:"entity,omitempty"`
	// DueBefore keeps timers due strictly before it.
	DueBefore time.Time `json:"due_before,omitzero"`
	// Limit is the most timers returned (default 100, at most 1000).
	Limit int `json:"limit,omitempty"`
}

// timerKey is connector \x00 entity \x00 reference \x00 rule.
func timerKey(k event.EntityKey, rule string) ([]byte, error) {
	ek, err := entityKeyBytes(k)
	if err != nil {
		return nil, err
	}
	if err := checkPart("rule id", rule); err != nil {
		return nil, err
	}
	key := append(append(ek, sep), rule...)
	if len(key) > maxIndexedKey {
		return nil, fmt.Errorf("timer key too long: %w", ErrInvalid)
	}
	return key, nil
}

// PutTimer arms a timer, replacing the due time of the one already armed
// for the same entity and rule.
func (tx *Tx) PutTimer(t Timer) error {
	if err := tx.writable("put timer"); err != nil {
		return err
	}
	key, err := timerKey(t.Key, t.Rule)
	if err != nil {
		return fmt.Errorf("put timer: %w", err)
	}
	timers, due := tx.b(bucketTimers), tx.b(bucketTimersDue)
	if old := timers.Get(key); old != nil {
		var ot Timer
		if err := json.Unmarshal(old, &ot); err != nil {
			return fmt.Errorf("put timer %s %s: decode old: %w", t.Key, t.Rule, err)
		}
		if err := due.Delete(timeKey(ot.Due, key)); err != nil {
			return fmt.Errorf("put timer %s %s: unindex old: %w", t.Key, t.Rule, err)
		}
	} else if err := addCount(tx.b(bucketMeta), countTimers, 1); err != nil {
		return err
	}
	data, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("put timer %s %s: encode: %w", t.Key, t.Rule, err)
	}
	if err := timers.Put(key, data); err != nil {
		return fmt.Errorf("put timer %s %s: %w", t.Key, t.Rule, err)
	}
	if err := due.Put(timeKey(t.Due, key), present()); err != nil {
		return fmt.Errorf("put timer %s %s: index due: %w", t.Key, t.Rule, err)
	}
	return nil
}

// DeleteTimer disarms a timer; deleting one that does not exist is not an
// error.
func (tx *Tx) DeleteTimer(k event.EntityKey, ruleID string) error {
	if err := tx.writable("delete timer"); err != nil {
		return err
	}
	key, err := timerKey(k, ruleID)
	if err != nil {
		return fmt.Errorf("delete timer: %w", err)
	}
	t, err := tx.timer(key)
	if err != nil || t == nil {
		return err
	}
	if err := tx.b(bucketTimersDue).Delete(timeKey(t.Due, key)); err != nil {
		return fmt.Errorf("delete timer %s %s: unindex: %w", k, ruleID, err)
	}
	if err := tx.b(bucketTimers).Delete(key); err != nil {
		return fmt.Errorf("delete timer %s %s: %w", k, ruleID, err)
	}
	return addCount(tx.b(bucketMeta), countTimers, -1)
}

// Timer returns the timer of an entity and rule, or nil, nil when none is
// armed.
func (tx *Tx) Timer(k event.EntityKey, ruleID string) (*Timer, error) {
	key, err := timerKey(k, ruleID)
	if err != nil {
		return nil, fmt.Errorf("timer: %w", err)
	}
	return tx.timer(key)
}

func (tx *Tx) timer(key []byte) (*Timer, error) {
	v := tx.b(bucketTimers).Get(key)
	if v == nil {
		return nil, nil
	}
	t := new(Timer)
	if err := json.Unmarshal(v, t); err != nil {
		return nil, fmt.Errorf("decode timer %q: %w", key, err)
	}
	return t, nil
}

// TimersOf returns every timer armed on one entity, in rule id order.
func (tx *Tx) TimersOf(k event.EntityKey) ([]Timer, error) {
	ek, err := entityKeyBytes(k)
	if err != nil {
		return nil, fmt.Errorf("timers of %s: %w", k, err)
	}
	prefix := append(ek, sep)
	var out []Timer
	c := tx.b(bucketTimers).Cursor()
	for key, v := c.Seek(prefix); key != nil && bytes.HasPrefix(key, prefix); key, v = c.Next() {
		var t Timer
		if err := json.Unmarshal(v, &t); err != nil {
			return nil, fmt.Errorf("decode timer %q: %w", key, err)
		}
		out = append(out, t)
	}
	return out, nil
}

// walkDue calls fn for timers in due order while fn returns true, stopping
// before the first index key due after upTo (zero: no bound), so timers
// further out are never read.
func (tx *Tx) walkDue(upTo time.Time, fn func(t *Timer) (bool, error)) error {
	limit := uint64(math.MaxUint64)
	if !upTo.IsZero() {
		limit = nanos(upTo)
	}
	timers := tx.b(bucketTimers)
	c := tx.b(bucketTimersDue).Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if len(k) <= 8 {
			continue
		}
		if binary.BigEndian.Uint64(k[:8]) > limit {
			return nil
		}
		v := timers.Get(k[8:])
		if v == nil {
			return fmt.Errorf("timer due index names missing timer %q", k[8:])
		}
		t := new(Timer)
		if err := json.Unmarshal(v, t); err != nil {
			return fmt.Errorf("decode timer %q: %w", k[8:], err)
		}
		more, err := fn(t)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// Timers lists armed timers in due order.
func (db *DB) Timers(f TimerFilter) ([]Timer, error) {
	limit := clampLimit(f.Limit)
	var out []Timer
	err := db.View(func(tx *Tx) error {
		return tx.walkDue(f.DueBefore, func(t *Timer) (bool, error) {
			if !f.DueBefore.IsZero() && !t.Due.Before(f.DueBefore) {
				return false, nil
			}
			if f.Rule != "" && t.Rule != f.Rule {
				return true, nil
			}
			if f.Entity != "" {
				if strings.Contains(f.Entity, "/") {
					if t.Key.String() != f.Entity {
						return true, nil
					}
				} else if t.Key.Entity != f.Entity {
					return true, nil
				}
			}
			out = append(out, *t)
			return len(out) < limit, nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list timers: %w", err)
	}
	return out, nil
}

// NextTimerDue returns the earliest due time of any timer; ok is false when
// none is armed.
func (db *DB) NextTimerDue() (due time.Time, ok bool, err error) {
	err = db.View(func(tx *Tx) error {
		k, _ := tx.b(bucketTimersDue).Cursor().First()
		if len(k) >= 8 {
			due, ok = fromNanos(binary.BigEndian.Uint64(k[:8])), true
		}
		return nil
	})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("next timer due: %w", err)
	}
	return due, ok, nil
}

// DueTimers returns up to limit timers with Due <= now in due order. It
// range-scans the due index, never all timers or entities. limit <= 0
// means 100; at most 1000 are returned.
func (db *DB) DueTimers(now time.Time, limit int) ([]Timer, error) {
	var out []Timer
	err := db.View(func(tx *Tx) error {
		var err error
		out, err = tx.DueTimers(now, limit)
		return err
	})
	return out, err
}
