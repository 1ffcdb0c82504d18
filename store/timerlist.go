package store

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/hookline/hookline/event"
)

// ListTimers returns armed timers in due order (then by entity key and
// rule, the order of compareTimers) and the cursor of the next page (""
// when there is no more). Every page walks the due index from its start,
// since a timer moved later keeps its earlier entry: a page deep in a
// large index costs a read of each timer due before it. A page reads at
// most maxListScan timers past its cursor: a filter that few match
// answers a short, possibly empty, page with the cursor where the walk
// stopped.
func (db *DB) ListTimers(f TimerFilter) ([]Timer, string, error) {
	return db.listTimers(f, maxListScan)
}

// listTimers is ListTimers reading at most budget timers past the cursor.
func (db *DB) listTimers(f TimerFilter, budget int) ([]Timer, string, error) {
	var after *Timer
	if f.Cursor != "" {
		t, err := parseTimerCursor(f.Cursor)
		if err != nil {
			return nil, "", fmt.Errorf("list timers: %w", err)
		}
		after = &t
	}
	page := newListPage[Timer](clampLimit(f.Limit), budget, timerCursor)
	err := db.View(func(tx *Tx) error {
		return tx.walkDue(f.DueBefore, func(t *Timer) (bool, error) {
			if after != nil && compareTimers(*t, *after) <= 0 {
				return true, nil
			}
			if !page.reach(*t) {
				return false, nil
			}
			if !timerMatches(f, t) {
				return true, nil
			}
			return page.take(*t), nil
		})
	})
	if err != nil {
		return nil, "", fmt.Errorf("list timers: %w", err)
	}
	return page.items, page.next, nil
}

// timerMatches reports whether t passes f's rule and entity filters.
func timerMatches(f TimerFilter, t *Timer) bool {
	if f.Rule != "" && t.Rule != f.Rule {
		return false
	}
	switch {
	case f.Entity == "":
		return true
	case strings.Contains(f.Entity, "/"):
		return t.Key.String() == f.Entity
	}
	return t.Key.Entity == f.Entity
}

// timerCursor names t's place in the order of ListTimers: base64url of
// its due time (8-byte big-endian nanoseconds) and then connector, entity,
// reference and rule separated by NUL bytes (the parts of an entity key
// cannot hold one; the rule, last, may).
func timerCursor(t Timer) string {
	b := binary.BigEndian.AppendUint64(nil, nanos(t.Due))
	b = append(b, join(t.Key.Connector, t.Key.Entity, t.Key.Reference, t.Rule)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// parseTimerCursor is the inverse of timerCursor; a cursor it did not
// make is refused with ErrInvalid.
func parseTimerCursor(cursor string) (Timer, error) {
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(b) < 8 {
		return Timer{}, fmt.Errorf("timer cursor %q is not one a timer list gave: %w", cursor, ErrInvalid)
	}
	parts := strings.SplitN(string(b[8:]), string([]byte{sep}), 4)
	if len(parts) != 4 {
		return Timer{}, fmt.Errorf("timer cursor %q is not one a timer list gave: %w", cursor, ErrInvalid)
	}
	return Timer{Due: fromNanos(binary.BigEndian.Uint64(b)),
		Key: event.EntityKey{Connector: parts[0], Entity: parts[1], Reference: parts[2]}, Rule: parts[3]}, nil
}
