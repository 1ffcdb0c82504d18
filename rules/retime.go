package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hookline/hookline/event"
)

// TimerDue returns the due time the rule ruleID, as configured in this set,
// gives a clock: when the clock reaches the rule's duration (plus its
// paused time), counted on the rule's calendar. It is what Schedule would
// arm for that clock, so the gateway uses it to move timers armed under an
// earlier config (reload or restart with edited rule files).
//
// ok is false when no timer should be armed for the clock: the set has no
// time-based rule of that id, c is nil, the clock is done (the rule already
// fired in this episode) or paused, or the calendar never accumulates the
// duration. A disabled rule still gives its due time: its timer fires, the
// rule is skipped and its clock ends, as it would without a reload.
//
// The clock's Since is taken as it is; Reclock first brings the clock of a
// rule whose since: field changed in line with the snapshot.
func (s *Set) TimerDue(ruleID string, c *event.RuleClock) (time.Time, bool) {
	r := s.byID[ruleID]
	if r == nil || r.timing == nil || c == nil {
		return time.Time{}, false
	}
	due, ok := r.timing.due(c)
	if !ok {
		return time.Time{}, false
	}
	return due.UTC(), true
}

// Reclock returns the clock the rule ruleID, as configured in this set,
// gives an entity whose clock is c, and whether that differs from c. Only
// a rule that measures from a snapshot timestamp (since:) can disagree
// with a clock armed under an earlier config: when the field it names now
// holds a time other than the clock's start (since: was edited), the
// episode restarts from that time, as Schedule restarts it at the entity's
// next event: a fresh clock (a paused clock stays paused, from no earlier
// than the new start), done at once when a within: window has already
// passed at now. When the entity has no such time the clock ends (nil).
// Any other rule, or a nil clock, gives c back unchanged.
func (s *Set) Reclock(ruleID string, snap *event.Snapshot, c *event.RuleClock, now time.Time) (*event.RuleClock, bool) {
	r := s.byID[ruleID]
	if r == nil || r.timing == nil || r.timing.since == nil || c == nil || snap == nil {
		return c, false
	}
	t := r.timing
	v, ok := t.since.get(&event.Event{}, snap).instant()
	switch {
	case !ok:
		return nil, true
	case v.Equal(c.Since):
		return c, false
	}
	fresh := &event.RuleClock{Since: v}
	if !c.PausedAt.IsZero() {
		fresh.PausedAt = c.PausedAt
		if fresh.PausedAt.Before(v) {
			fresh.PausedAt = v
		}
	}
	fresh.Done = t.pastWindow(fresh, now)
	return fresh, true
}

// TimingSignature returns a short text that changes whenever anything that
// determines the due time of the rule's timers changes: the timer kind, the
// duration, the within: window, the since: field, and the calendar (its
// name and its definition: time zone, hours and holidays, so that editing
// a calendar in gateway.yaml counts). It is "" for a rule that is not
// time-based or not in the set. Conditions (when:, pause_when:) and actions
// are not part of it: they do not move an armed timer.
func (s *Set) TimingSignature(ruleID string) string {
	r := s.byID[ruleID]
	if r == nil || r.timing == nil {
		return ""
	}
	return r.timing.signature()
}

// TimingSignatures returns the TimingSignature of every time-based rule of
// the set, by rule id (a fresh map).
func (s *Set) TimingSignatures() map[string]string {
	out := map[string]string{}
	for _, r := range s.rules {
		if r.timing != nil {
			out[r.ID] = r.timing.signature()
		}
	}
	return out
}

// signatureVersion prefixes signatures; bump it when their text changes
// meaning, so that stored signatures of the old form count as changed.
const signatureVersion = "t1:"

// signature is signatureVersion and the hex SHA-256 (first 16 bytes) of
// the canonical description of the timing.
func (t *timing) signature() string {
	var b strings.Builder
	fmt.Fprintf(&b, "kind=%s\ndur=%d\n", t.kind, int64(t.dur))
	if t.since != nil {
		fmt.Fprintf(&b, "since=%s\n", t.since.path)
	}
	if t.window {
		fmt.Fprintf(&b, "within=%d,%d\n", int64(t.lo), int64(t.hi))
	}
	if t.cal != nil {
		b.WriteString(t.cal.canonical())
	}
	sum := sha256.Sum256([]byte(b.String()))
	return signatureVersion + hex.EncodeToString(sum[:16])
}

// canonical describes everything of the calendar that moves a due time:
// name, zone, opening windows per weekday and holidays, in a fixed order.
func (c *Calendar) canonical() string {
	var b strings.Builder
	fmt.Fprintf(&b, "calendar=%s\nzone=%s\n", c.Name, c.Location)
	for d, spans := range c.hours {
		fmt.Fprintf(&b, "day%d=", d)
		for _, s := range spans {
			fmt.Fprintf(&b, "%d-%d,", s.from, s.to)
		}
		b.WriteByte('\n')
	}
	days := make([]string, 0, len(c.holidays))
	for d, closed := range c.holidays {
		if closed {
			days = append(days, fmt.Sprintf("%04d-%02d-%02d", d.y, d.m, d.d))
		}
	}
	sort.Strings(days)
	fmt.Fprintf(&b, "holidays=%s\n", strings.Join(days, ","))
	return b.String()
}
