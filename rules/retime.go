package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hookline/hookline/event"
)

// TimerDue returns the due time the rule ruleID, as configured in this set,
// gives the timer of a clock at now: when the clock reaches the rule's
// duration (plus its paused time), counted on the rule's calendar, or, for
// a paused clock, its parked due time (see TimerOp.Parked). It is what
// Schedule would arm for that clock, so the gateway uses it to move timers
// armed under an earlier config (reload or restart with edited rule files).
//
// ok is false when no timer should be armed for the clock: the set has no
// time-based rule of that id, c is nil, the clock is done (the rule already
// fired in this episode), or the calendar never accumulates the duration.
// A disabled rule still gives its due time: its timer fires, the rule is
// skipped and its clock ends, as it would without a reload.
//
// The clock is taken as it is; Reclock first brings it in line with the
// rule as now configured.
func (s *Set) TimerDue(ruleID string, c *event.RuleClock, now time.Time) (time.Time, bool) {
	r := s.byID[ruleID]
	if r == nil || r.timing == nil || c == nil {
		return time.Time{}, false
	}
	due, _, ok := r.timing.timerDue(c, now)
	return due, ok
}

// Reclock returns the clock the rule ruleID, as configured in this set,
// gives an entity whose clock c was kept under an earlier config, and
// whether that differs from c, as Schedule would have it at the entity's
// next event:
//   - nil (the clock ends) when the rule's connector filter no longer
//     admits the entity's connector;
//   - for a rule that measures from a snapshot timestamp (since:), when the
//     field now holds a time other than the clock's start (since: was
//     edited), a fresh episode from that time (a paused clock stays paused,
//     from no earlier than the new start), or nil when the entity has no
//     such time;
//   - a paused clock whose pause_when no longer holds on the snapshot
//     (removed or edited) resumes at now, the time it stood paused counting
//     as paused; a running clock whose pause_when now holds pauses at now;
//   - a clock whose within: window has passed at now is done.
//
// Any other clock, or a nil one, comes back unchanged.
func (s *Set) Reclock(ruleID string, snap *event.Snapshot, c *event.RuleClock, now time.Time) (*event.RuleClock, bool) {
	r := s.byID[ruleID]
	if r == nil || r.timing == nil || c == nil || snap == nil {
		return c, false
	}
	if !s.listens(r, snap.Key.Connector) {
		return nil, true
	}
	t := r.timing
	// What a timer firing now would see: the snapshot and no event fields.
	ev := &event.Event{Type: event.TypeTimerFired, Connector: snap.Key.Connector, Entity: snap.Key.Entity, Reference: snap.Key.Reference, Rule: ruleID}
	out := c
	if t.since != nil {
		v, ok := t.since.get(ev, snap).instant()
		switch {
		case !ok:
			return nil, true
		case !v.Equal(c.Since):
			out = &event.RuleClock{Since: v}
			if !c.PausedAt.IsZero() {
				out.PausedAt = c.PausedAt
				if out.PausedAt.Before(v) {
					out.PausedAt = v
				}
			}
		}
	}
	if out.Done {
		return out, out != c
	}
	if paused := t.paused(ev, snap, now); paused == out.PausedAt.IsZero() {
		if out == c {
			cc := *c // never change the caller's clock
			out = &cc
		}
		t.setPaused(out, paused, now)
	}
	if out != c {
		out.Done = t.pastWindow(out, now)
	}
	return out, out != c
}

// TimingSignature returns a short text that changes whenever anything that
// decides where the rule's timers are and when they are due changes: the
// timer kind, the duration, the within: window, the since: field, the
// calendar (its name and its definition: time zone, hours and holidays,
// so that editing a calendar in gateway.yaml counts), the pause_when
// condition (it decides which clocks are paused) and the connector filter
// (it decides which entities keep a clock). It is "" for a rule that is
// not time-based or not in the set. when: and actions are not part of it:
// the timer re-checks when: as it fires.
func (s *Set) TimingSignature(ruleID string) string {
	r := s.byID[ruleID]
	if r == nil || r.timing == nil {
		return ""
	}
	return r.timingSignature()
}

// TimingSignatures returns the TimingSignature of every time-based rule of
// the set, by rule id (a fresh map).
func (s *Set) TimingSignatures() map[string]string {
	out := map[string]string{}
	for _, r := range s.rules {
		if r.timing != nil {
			out[r.ID] = r.timingSignature()
		}
	}
	return out
}

// signatureVersion prefixes signatures; bump it when their text changes
// meaning, so that stored signatures of the old form count as changed.
// t2 added pause_when and the connector filter.
const signatureVersion = "t2:"

// timingSignature is signatureVersion and the hex SHA-256 (first 16 bytes)
// of the canonical description of the rule's timing.
func (r *Rule) timingSignature() string {
	t := r.timing
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
	if t.pause != nil {
		fmt.Fprintf(&b, "pause_when=%s\n", t.pause.text)
	}
	connectors := slices.Clone(r.Connectors)
	sort.Strings(connectors)
	fmt.Fprintf(&b, "connectors=%q\n", connectors)
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
