package rules

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/internal/yamlconf"
	"gopkg.in/yaml.v3"
)

// Timer kinds of a time-based rule.
const (
	// TimerFor fires when the rule's when has held continuously for the
	// duration (measured from a snapshot timestamp with since:).
	TimerFor = "for"
	// TimerIdle fires when no event came for the entity for the duration.
	TimerIdle = "idle"
)

// TimerSpec describes a time-based rule's clock (read-only information for
// listings; evaluation uses the compiled form).
type TimerSpec struct {
	// Kind is TimerFor or TimerIdle.
	Kind string `json:"kind"`
	// Duration is when the timer fires, measured on the clock.
	Duration time.Duration `json:"duration"`
	// Since is the snapshot timestamp field the clock starts from (for: only).
	Since string `json:"since,omitempty"`
	// Within, when set, is the [low, high] window the measured duration must
	// be inside for the rule to act; a timer that fires later does not act.
	Within []time.Duration `json:"within,omitempty"`
	// PauseWhen is the condition (as text) during which the clock stops.
	PauseWhen string `json:"pause_when,omitempty"`
	// Calendar names the business-hours calendar; empty: wall-clock time.
	Calendar string `json:"calendar,omitempty"`
}

// timing is the compiled clock of a time-based rule.
type timing struct {
	kind   string
	dur    time.Duration // the timer fires when the clock reaches dur
	since  *fieldRef
	window bool
	lo, hi time.Duration
	pause  *cond
	cal    *Calendar
}

// Limits of durations in time-based rules.
const maxTimerDuration = 366 * 24 * time.Hour

// parkedTimerPeriod is how far ahead a paused clock's timer is parked: a
// paused clock has nothing to fire, but its timer is what a reload's retime
// finds it by (a pause_when removed or a connector left out of the rule),
// so it keeps one, due this long after the pause and again every period
// while the clock stays paused (each firing re-checks pause_when).
const parkedTimerPeriod = maxTimerDuration

// timestampFields are the model's timestamp fields, for since: suggestions.
func timestampFields() []string {
	var out []string
	for name, t := range knownFields {
		if t == tTime {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// timing compiles a rule's time keys (for, idle, since, within, pause_when,
// calendar). It returns nil for a rule without for: or idle: (after
// reporting any time key given without them).
func (c *compiler) timing(rc *ruleCtx, r *Rule, raw *rawRule, n *yaml.Node) *timing {
	file := rc.file
	if raw.For == nil && raw.Idle == nil {
		for _, k := range []struct {
			n    *yaml.Node
			name string
		}{{raw.Since, "since"}, {raw.Within, "within"}, {raw.PauseWhen, "pause_when"}, {raw.Calendar, "calendar"}} {
			if k.n != nil {
				c.errorf(file, yamlconf.Lookup(n, k.name), "rule %q: %s: applies to time-based rules only; add for: (how long when must hold) or idle: (how long without events)", r.ID, k.name)
			}
		}
		return nil
	}
	t := &timing{kind: TimerFor}
	durN := raw.For
	if raw.Idle != nil {
		t.kind, durN = TimerIdle, raw.Idle
		if raw.For != nil {
			c.errorf(file, yamlconf.Lookup(n, "idle"), "rule %q: for: and idle: cannot be combined: for: measures how long when has held, idle: how long no event came; write two rules", r.ID)
			return nil
		}
	}
	if r.Manual {
		c.errorf(file, yamlconf.Lookup(n, t.kind), "rule %q: `on: manual` rules run on demand and cannot have %s:", r.ID, t.kind)
	}
	for _, p := range r.On {
		if p == event.TypeTimerFired {
			c.errorf(file, raw.On, "rule %q: on: lists the events that start and stop its clock; %s events are the rule's own timers and cannot be listed", r.ID, event.TypeTimerFired)
		}
	}
	ok := true
	durGiven := false
	if b, isBool := boolNode(durN); isBool {
		if !b || raw.Within == nil {
			c.errorf(file, durN, "%s: expected a duration like 30m or 48h (true only with within:, to fire at its low end)", t.kind)
			ok = false
		}
	} else if d, good := c.timerDuration(file, durN, t.kind); good {
		t.dur, durGiven = d, true
	} else {
		ok = false
	}
	if raw.Within != nil {
		w := yamlconf.Resolve(raw.Within)
		if w.Kind != yaml.SequenceNode || len(w.Content) != 2 {
			c.errorf(file, w, "within: expected [low, high] durations like [5m, 15m], got %s", yamlconf.KindName(w))
			ok = false
		} else {
			lo, ok1 := c.timerDuration(file, w.Content[0], "within")
			hi, ok2 := c.timerDuration(file, w.Content[1], "within")
			switch {
			case !ok1 || !ok2:
				ok = false
			case lo > hi:
				c.errorf(file, w, "within: low end %s is above high end %s", nodeText(w.Content[0]), nodeText(w.Content[1]))
				ok = false
			case durGiven && (t.dur < lo || t.dur > hi):
				c.errorf(file, durN, "%s: %s is outside within [%s, %s]: the timer would fire when the rule may not act", t.kind, nodeText(durN), nodeText(w.Content[0]), nodeText(w.Content[1]))
				ok = false
			default:
				t.window, t.lo, t.hi = true, lo, hi
				if !durGiven {
					t.dur = lo
				}
			}
		}
	}
	if raw.Since != nil {
		if t.kind == TimerIdle {
			c.errorf(file, raw.Since, "rule %q: since: goes with for: (idle: always measures from the entity's last event)", r.ID)
			ok = false
		} else if f, good := c.sinceField(file, raw.Since); good {
			t.since = &f
		} else {
			ok = false
		}
	}
	if raw.PauseWhen != nil {
		if t.pause = c.condOrError(rc, raw.PauseWhen, "pause_when"); t.pause == nil {
			ok = false
		}
	}
	if raw.Calendar != nil {
		if t.cal = c.calendar(file, raw.Calendar); t.cal == nil {
			ok = false
		}
	}
	if ok && t.cal != nil && !c.reachable(file, r, t, durN) {
		ok = false
	}
	if !ok {
		return nil
	}
	r.Timer = &TimerSpec{Kind: t.kind, Duration: t.dur, Calendar: raw.calendarName()}
	if t.since != nil {
		r.Timer.Since = t.since.path
	}
	if t.window {
		r.Timer.Within = []time.Duration{t.lo, t.hi}
	}
	if t.pause != nil {
		r.Timer.PauseWhen = t.pause.text
	}
	return t
}

// reachable reports whether the rule's calendar can accumulate its
// duration within the ten years a timer looks ahead (Calendar.Add) from
// any start; if not, the duration is an error at n (the for: or idle:
// value): its timer could never be armed and the rule would never fire.
func (c *compiler) reachable(file string, r *Rule, t *timing, n *yaml.Node) bool {
	if t.dur <= t.cal.surelyOpen() {
		return true
	}
	span, known := c.openSpans[t.cal]
	if !known {
		span = t.cal.leastOpen()
		c.openSpans[t.cal] = span
	}
	if t.dur <= span.least {
		return true
	}
	dur := nodeText(n)
	if !t.window || dur != "true" {
		dur = t.kind + ": " + dur
	} else {
		dur = fmt.Sprintf("%s: true (within: from %s)", t.kind, hoursText(t.dur))
	}
	if span.from.IsZero() {
		c.errorf(file, n, "rule %q: %s can never be reached on %s: it is open at most %s in ten years, and timers look no further; shorten the duration or widen the calendar's hours",
			r.ID, dur, t.cal, hoursText(span.least))
	} else {
		c.errorf(file, n, "rule %q: %s can never be reached on %s for an episode that starts on %s: its holidays leave it open %s in the ten years from then, and timers look no further; shorten the duration or check the calendar's holidays",
			r.ID, dur, t.cal, span.from.Format(time.DateOnly), hoursText(span.least))
	}
	return false
}

// hoursText writes a duration in hours and minutes: 522h, 37h30m.
func hoursText(d time.Duration) string {
	h, m := d/time.Hour, (d%time.Hour)/time.Minute
	if m == 0 {
		return fmt.Sprintf("%dh", h)
	}
	return fmt.Sprintf("%dh%02dm", h, m)
}

func (raw *rawRule) calendarName() string {
	if raw.Calendar == nil {
		return ""
	}
	return raw.Calendar.Value
}

func (c *compiler) timerDuration(file string, n *yaml.Node, what string) (time.Duration, bool) {
	n = yamlconf.Resolve(n)
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		c.errorf(file, n, "%s: expected a duration like 15m, 48h or 2d, got %s", what, yamlconf.KindName(n))
		return 0, false
	}
	d, err := yamlconf.ParseDuration(n.Value)
	if err != nil || d <= 0 {
		c.errorf(file, n, "%s: expected a positive duration like 15m, 48h or 2d, got %q", what, n.Value)
		return 0, false
	}
	if d > maxTimerDuration {
		c.errorf(file, n, "%s: %s is longer than the longest timer, 366d", what, n.Value)
		return 0, false
	}
	return d, true
}

// sinceField checks that since: names a timestamp field.
func (c *compiler) sinceField(file string, n *yaml.Node) (fieldRef, bool) {
	n = yamlconf.Resolve(n)
	stamps := timestampFields()
	if n.Kind != yaml.ScalarNode || !fieldPath.MatchString(n.Value) {
		c.errorf(file, n, "since: expected a timestamp field (%s), got %s", strings.Join(stamps, ", "), yamlconf.KindName(n))
		return fieldRef{}, false
	}
	f := newFieldRef(n.Value)
	switch {
	case f.kind == refActor || f.kind == refEventMeta || f.kind == refVar:
		c.errorf(file, n, "since: %s is not a timestamp of the entity; use one of %s", f.path, strings.Join(stamps, ", "))
		return fieldRef{}, false
	case f.typ != tTime && f.typ != tAny:
		c.errorf(file, n, "since: %s is %s, not a timestamp%s (timestamp fields: %s)", f.path, f.typ, yamlconf.DidYouMean(f.path, stamps), strings.Join(stamps, ", "))
		return fieldRef{}, false
	case f.typ == tAny && !strings.HasPrefix(f.path, "custom."):
		if near := yamlconf.Nearest(f.path, stamps); near != "" {
			c.errorf(file, n, "since: unknown field %q; did you mean %q? (timestamp fields: %s; custom timestamps as custom.<name>)", f.path, near, strings.Join(stamps, ", "))
			return fieldRef{}, false
		}
	}
	return f, true
}

func (c *compiler) calendar(file string, n *yaml.Node) *Calendar {
	n = yamlconf.Resolve(n)
	if n.Kind != yaml.ScalarNode || n.Value == "" {
		c.errorf(file, n, "calendar: expected the name of a calendar of gateway.yaml, got %s", yamlconf.KindName(n))
		return nil
	}
	if cal := c.calendars[n.Value]; cal != nil {
		return cal
	}
	if len(c.calendars) == 0 {
		c.errorf(file, n, "calendar: unknown calendar %q: gateway.yaml defines no calendars (add one under calendars:)", n.Value)
		return nil
	}
	names := make([]string, 0, len(c.calendars))
	for k := range c.calendars {
		names = append(names, k)
	}
	sort.Strings(names)
	c.errorf(file, n, "calendar: unknown calendar %q%s (known: %s)", n.Value, yamlconf.DidYouMean(n.Value, names), strings.Join(names, ", "))
	return nil
}

// timedLeafCheck refuses, inside when: or pause_when: of a time-based rule,
// conditions that only an incoming event can satisfy: a timer re-checks the
// condition on a timer.fired event that carries no changes, actor or vars.
func (c *compiler) timedLeafCheck(rc *ruleCtx, n *yaml.Node, name string, o op, f fieldRef) bool {
	if !rc.timed {
		return true
	}
	switch {
	case o == opChanged || o == opChangedTo || o == opChangedFrom || o == opNotChanged:
		c.errorf(rc.file, n, "%s cannot be used in a time-based rule: its condition is checked again when the timer fires, on an event that changes nothing; test the state instead (e.g. { field: %s, is: ... })", name, f.path)
		return false
	case f.kind == refActor || f.kind == refVar || (f.kind == refEventMeta && f.sub == "type"):
		c.errorf(rc.file, n, "%s cannot be used in a time-based rule: it reads the incoming event, and the condition is checked again when the timer fires (a %s event); test the entity's state instead", f.path, event.TypeTimerFired)
		return false
	}
	return true
}

// Timer operations returned by Schedule.
const (
	// TimerArm arms a timer for a rule that had none on the entity.
	TimerArm = "arm"
	// TimerMove changes the due time of the rule's armed timer.
	TimerMove = "move"
	// TimerCancel disarms the rule's timer.
	TimerCancel = "cancel"
)

// TimerOp is what Schedule asks the caller to do with one time-based rule's
// timer on the entity: there is at most one timer per (entity, rule).
type TimerOp struct {
	Rule string `json:"rule"`
	// Op is TimerArm, TimerMove or TimerCancel.
	Op string `json:"op"`
	// Due is when the timer must fire (arm and move).
	Due time.Time `json:"due,omitzero"`
	// Parked marks the timer of a paused clock: it is due a long while
	// ahead (parkedTimerPeriod) and is kept so that a reload's retime can
	// find the clock; firing it only re-checks pause_when.
	Parked bool `json:"parked,omitempty"`
}

// eventTime is the instant an event happened, for clocks and for the
// time_of_day and day_of_week conditions: its occurred_at (else
// received_at; a timer.fired event's occurred_at is its due time), never
// later than now.
func eventTime(ev *event.Event, now time.Time) time.Time {
	at := ev.OccurredAt
	if at.IsZero() {
		at = ev.ReceivedAt
	}
	if at.IsZero() || at.After(now) {
		at = now
	}
	return at
}

// Schedule updates the clocks of the time-based rules that listen to
// in.Event (on: and connector:) in in.Snapshot.Clocks, ends the entity's
// other clocks whose when: no longer holds (an event on: does not list
// still ends an episode; the cost is one condition per clock the entity
// has), and returns the timer operations that keep the store's timers in
// step with them. Call it
// after Evaluate with the same Input (the snapshot after the event). For a
// timer.fired event only the named rule is considered, and its (consumed)
// timer counts as gone: the ops re-arm it when the clock has not reached
// its duration yet. Clocks of rules that are no longer time-based rules of
// the set are dropped and their timers cancelled.
//
// A clock (event.RuleClock) is one episode: for for: it starts when when
// becomes true (at the event's occurred_at, or at the since: field's
// value) and ends when when turns false; for idle: it restarts at every
// event that happened after its start (echoes of our own deliveries
// excepted unless on_own_changes) and ends when when turns false. While pause_when holds the clock is stopped
// (PausedAt) and its timer is parked (TimerOp.Parked: due a year after the
// pause, only so that a reload can find the clock); paused time accumulates
// in PausedTotal.
// Once the rule fired (or its timer fired too late for within:), Done keeps
// it from firing again in the same episode.
func (s *Set) Schedule(in Input) []TimerOp {
	ev, snap := in.Event, in.Snapshot
	if ev == nil || snap == nil {
		return nil
	}
	var ops []TimerOp
	fired := ev.Type == event.TypeTimerFired
	var buf [32]int32
	var listening []int32 // the time-based rules that listen to ev (on: and connector:)
	if !fired {
		listening = s.tidx.candidates(ev.Type, ev.Connector, buf[:0])
	}
	for id, c := range snap.Clocks {
		r := s.byID[id]
		switch {
		case r == nil || r.timing == nil || !s.listens(r, ev.Connector):
			delete(snap.Clocks, id)
			ops = append(ops, TimerOp{Rule: id, Op: TimerCancel})
		case !fired && !slices.Contains(listening, int32(r.index)) && !r.clockHolds(ev, snap, in.Now):
			// An event on: does not list moves no clock, but it may show
			// the episode over (the ticket left pending through another
			// event type): the episode ends here, or the next event that
			// on: lists would find the old clock, Done or running from
			// the old start, instead of starting a new episode.
			if _, _, armed := r.timing.timerDue(c, in.Now); armed {
				ops = append(ops, TimerOp{Rule: id, Op: TimerCancel})
			}
			delete(snap.Clocks, id)
		}
	}
	if fired {
		if r := s.byID[ev.Rule]; r != nil && r.timing != nil && s.listens(r, ev.Connector) {
			if op, ok := s.scheduleRule(r, in, true); ok {
				ops = append(ops, op)
			}
		}
		return ops
	}
	for _, i := range listening {
		if op, ok := s.scheduleRule(s.rules[i], in, false); ok {
			ops = append(ops, op)
		}
	}
	sort.SliceStable(ops, func(i, j int) bool { return ops[i].Rule < ops[j].Rule })
	return ops
}

// clockHolds reports whether a time-based rule's episode goes on for ev on
// snap: the rule is enabled and its when: holds.
func (r *Rule) clockHolds(ev *event.Event, snap *event.Snapshot, now time.Time) bool {
	holds := r.Enabled
	if holds && r.when != nil {
		holds, _ = r.when.match(ev, snap, now)
	}
	return holds
}

// listens reports whether a rule's connector filter admits connector.
func (s *Set) listens(r *Rule, connector string) bool {
	if len(r.Connectors) == 0 {
		return true
	}
	for _, c := range r.Connectors {
		if c == connector {
			return true
		}
	}
	return false
}

// scheduleRule advances one rule's clock for the event and returns the
// timer operation it needs, if any.
func (s *Set) scheduleRule(r *Rule, in Input, fired bool) (TimerOp, bool) {
	t, ev, snap, now := r.timing, in.Event, in.Snapshot, in.Now
	at := eventTime(ev, now)
	if fired {
		at = now
	}
	c := snap.Clocks[r.ID]
	holds := r.clockHolds(ev, snap, now)
	if !holds && c == nil {
		return TimerOp{}, false // the common case: nothing running, nothing to start
	}
	var prevDue time.Time
	prevArmed := false
	if !fired && c != nil {
		prevDue, _, prevArmed = t.timerDue(c, now)
	}
	echo := ownChange(ev)
	switch {
	case !holds:
		c = nil
	case t.since != nil:
		v, ok := t.since.get(ev, snap).instant()
		switch {
		case !ok:
			c = nil
		case c == nil && fired:
		case c != nil && fired:
			// The timer re-checks the episode it was armed for: a field
			// that moved meanwhile without restarting the clock (echoes,
			// below) must not start a new episode here, Done dropped,
			// or the rule fires again a period later.
		case c != nil && echo && !r.OnOwnChanges:
			// Our own update coming back moved the field (every event
			// moves last_activity_at): the clock runs on, as an idle
			// clock does, or the rule would fire again every period.
		case c == nil || !c.Since.Equal(v):
			c = &event.RuleClock{Since: v}
		}
	case c == nil:
		if !fired {
			c = &event.RuleClock{Since: at}
		}
	case t.kind == TimerIdle && !fired && (!echo || r.OnOwnChanges) && at.After(c.Since):
		// New activity: a new idle period. An event from before the
		// clock's start (a delayed retry, out-of-order delivery) is none:
		// the clock stays as it is, Done and pause included.
		c = &event.RuleClock{Since: at}
	}
	if c != nil {
		if c == snap.Clocks[r.ID] {
			cc := *c // never mutate a clock shared with another snapshot
			c = &cc
		}
		// Resumed also when a reload removed the pause_when it stood under.
		t.setPaused(c, t.paused(ev, snap, now), at)
		if t.pastWindow(c, now) {
			c.Done = true
		}
		if snap.Clocks == nil {
			snap.Clocks = map[string]*event.RuleClock{}
		}
		snap.Clocks[r.ID] = c
	} else {
		delete(snap.Clocks, r.ID)
	}
	var due time.Time
	armed, parked := false, false
	if c != nil {
		due, parked, armed = t.timerDue(c, now)
		if fired && armed && !due.After(now) {
			due = now.Add(time.Second) // never re-arm a consumed timer in the past (no busy loop)
		}
	}
	switch {
	case armed && !prevArmed:
		return TimerOp{Rule: r.ID, Op: TimerArm, Due: due, Parked: parked}, true
	case armed && !due.Equal(prevDue):
		return TimerOp{Rule: r.ID, Op: TimerMove, Due: due, Parked: parked}, true
	case !armed && prevArmed:
		return TimerOp{Rule: r.ID, Op: TimerCancel}, true
	}
	return TimerOp{}, false
}

// pastWindow reports whether a running clock of a rule with a within:
// window is already past the window at now: its episode can no longer
// act, so the clock is done.
func (t *timing) pastWindow(c *event.RuleClock, now time.Time) bool {
	return t.window && !c.Done && c.PausedAt.IsZero() && t.elapsed(c, now) > t.hi
}

// paused reports whether the rule's pause_when holds for ev on snap.
func (t *timing) paused(ev *event.Event, snap *event.Snapshot, now time.Time) bool {
	if t.pause == nil {
		return false
	}
	p, _ := t.pause.match(ev, snap, now)
	return p
}

// setPaused stops the clock c at at (never before its start) or starts it
// again, the time it stood counting as paused (on the rule's calendar);
// it reports whether that changed c. c must be the caller's own.
func (t *timing) setPaused(c *event.RuleClock, paused bool, at time.Time) bool {
	switch {
	case paused && c.PausedAt.IsZero():
		c.PausedAt = at
		if c.PausedAt.Before(c.Since) {
			c.PausedAt = c.Since
		}
	case !paused && !c.PausedAt.IsZero():
		c.PausedTotal += t.cal.Business(c.PausedAt, at, 0)
		c.PausedAt = time.Time{}
	default:
		return false
	}
	return true
}

// due returns when the clock reaches the timer's duration; ok is false when
// it has nothing to fire (done, paused, or a calendar that never gets there).
func (t *timing) due(c *event.RuleClock) (time.Time, bool) {
	if c.Done || !c.PausedAt.IsZero() {
		return time.Time{}, false
	}
	return t.cal.Add(c.Since, t.dur+c.PausedTotal)
}

// timerDue returns the due time of the timer the clock keeps at now (UTC):
// when it reaches the duration, or, for a paused clock, its parked due time
// (the first PausedAt + k * parkedTimerPeriod after now, which stays the
// same until it passes); ok is false when it keeps none (done, or a
// calendar that never gets there).
func (t *timing) timerDue(c *event.RuleClock, now time.Time) (due time.Time, parked, ok bool) {
	switch {
	case c.Done:
		return time.Time{}, false, false
	case !c.PausedAt.IsZero():
		due = c.PausedAt.Add(parkedTimerPeriod)
		if !due.After(now) {
			due = due.Add(time.Duration(now.Sub(due)/parkedTimerPeriod+1) * parkedTimerPeriod)
		}
		return due.UTC(), true, true
	}
	due, ok = t.due(c)
	return due.UTC(), false, ok
}

// elapsed is the clock's time at now: open time since Since, minus paused
// time (a paused clock stands at its PausedAt). It counts at most a little
// past the longest duration the rule compares with.
func (t *timing) elapsed(c *event.RuleClock, now time.Time) time.Duration {
	end := now
	if !c.PausedAt.IsZero() && c.PausedAt.Before(now) {
		end = c.PausedAt
	}
	limit := t.dur
	if t.hi > limit {
		limit = t.hi
	}
	d := t.cal.Business(c.Since, end, limit+c.PausedTotal+time.Second) - c.PausedTotal
	if d < 0 {
		return 0
	}
	return d
}

// Trace texts of timer.fired evaluations.
const (
	SkipNoClock  = "timer: no running clock for this rule (its episode ended)"
	SkipTimeDone = "timer: already fired for this episode"
	SkipPaused   = "timer: the clock is paused (pause_when holds)"
	SkipNotTimed = "timer: no time-based rule of that id in the current config"
)

// evaluateTimer handles a timer.fired event: only the named rule is
// considered; its when is checked against the current snapshot and its
// clock must have reached the duration (inside within:) before it acts.
// The clock is marked Done in in.Snapshot once the episode is spent.
func (s *Set) evaluateTimer(in Input) Result {
	var res Result
	ev := in.Event
	r := s.byID[ev.Rule]
	te := TraceEntry{Rule: ev.Rule}
	res.Trace = []TraceEntry{te}
	if r == nil || r.timing == nil || !s.listens(r, ev.Connector) {
		res.Trace[0].Skipped = SkipNotTimed
		return res
	}
	t := r.timing
	var c *event.RuleClock
	if in.Snapshot != nil {
		c = in.Snapshot.Clocks[r.ID]
	}
	switch {
	case !r.Enabled:
		te.Skipped = SkipDisabled
	case s.maxHops > 0 && ev.Causation.Hops >= s.maxHops:
		te.Skipped = s.hopSkip
	case c == nil:
		te.Skipped = SkipNoClock
	case c.Done:
		te.Skipped = SkipTimeDone
	default:
		if r.when != nil {
			if ok, failed := r.when.match(ev, in.Snapshot, in.Now); !ok {
				f := failure(failed, ev, in.Snapshot, in.Now)
				te.Failed = &f
				break
			}
		}
		if t.pause != nil {
			if paused, _ := t.pause.match(ev, in.Snapshot, in.Now); paused {
				te.Skipped = SkipPaused
				break
			}
		}
		el := t.elapsed(c, in.Now)
		if el < t.dur {
			te.Skipped = fmt.Sprintf("timer: not due yet (%s of %s elapsed on the %s)", el.Round(time.Second), t.dur, t.cal)
			break
		}
		cc := *c
		cc.Done = true
		in.Snapshot.Clocks[r.ID] = &cc
		if t.window && el > t.hi {
			te.Skipped = fmt.Sprintf("timer: fired late: %s elapsed is past within [%s, %s]; not acting", el.Round(time.Second), t.lo, t.hi)
			break
		}
		var data *TemplateData
		s.tryFire(r, in, &te, &res, &data)
	}
	res.Trace[0] = te
	return res
}
