package rules

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/internal/yamlconf"
)

// timerSim drives one entity through events and a fake clock the way the
// gateway does: Apply, Evaluate, Schedule, then keep the timers the ops
// ask for; advance fires due timers in due order as timer.fired events.
type timerSim struct {
	t      *testing.T
	set    *Set
	snap   *event.Snapshot
	now    time.Time
	timers map[string]time.Time // rule -> due
	parked map[string]time.Time // rule -> due of a paused clock's parked timer
	ops    []TimerOp            // ops of the last step
	fired  []string             // rules that fired in the last step
	trace  []TraceEntry         // trace of the last timer.fired
	seq    int
}

func newTimerSim(t *testing.T, set *Set, start time.Time) *timerSim {
	return &timerSim{t: t, set: set, now: start, timers: map[string]time.Time{}, parked: map[string]time.Time{}}
}

func (s *timerSim) step(ev *event.Event) Result {
	s.t.Helper()
	s.seq++
	ev.ID = fmt.Sprintf("ev%d", s.seq)
	ev.Connector, ev.Entity, ev.Reference = "zendesk", "ticket", "42"
	if ev.OccurredAt.IsZero() && ev.Type != event.TypeTimerFired {
		ev.OccurredAt = s.now
	}
	ev.ReceivedAt = s.now
	next := event.Apply(s.snap, ev)
	in := Input{Event: ev, Snapshot: next, Now: s.now}
	res := s.set.Evaluate(in)
	for _, f := range res.Firings {
		next.RecordFiring(f.Rule, f.At, time.Hour)
	}
	ops := s.set.Schedule(in)
	if ev.Type == event.TypeTimerFired {
		delete(s.timers, ev.Rule)
		delete(s.parked, ev.Rule)
	}
	// Parked timers are kept apart: they only let a reload find a paused
	// clock, and advance does not fire them.
	for _, op := range ops {
		delete(s.timers, op.Rule)
		delete(s.parked, op.Rule)
		switch {
		case op.Op == TimerCancel:
		case op.Parked:
			s.parked[op.Rule] = op.Due
		default:
			s.timers[op.Rule] = op.Due
		}
	}
	s.ops = append(s.ops, ops...)
	s.fired = append(s.fired, res.Matched...)
	s.snap = next
	return res
}

// send applies an event at the current time.
func (s *timerSim) send(typ string, fields map[string]any, actor string) Result {
	s.t.Helper()
	s.ops, s.fired = nil, nil
	return s.step(&event.Event{Type: typ, Fields: fields, Actor: event.Actor{Type: actor}})
}

// advance moves the clock by d, firing every timer due on the way at its due time.
func (s *timerSim) advance(d time.Duration) {
	s.t.Helper()
	s.ops, s.fired = nil, nil
	end := s.now.Add(d)
	for {
		rule, due := s.nextDue()
		if rule == "" || due.After(end) {
			break
		}
		if due.After(s.now) {
			s.now = due
		}
		s.fire(rule)
	}
	s.now = end
}

// fire delivers rule's timer now, whatever its due time (a late or early scheduler).
func (s *timerSim) fire(rule string) {
	s.t.Helper()
	res := s.step(&event.Event{Type: event.TypeTimerFired, Rule: rule, OccurredAt: s.timers[rule], Actor: event.Actor{Type: event.ActorSystem}})
	s.trace = res.Trace
}

func (s *timerSim) nextDue() (string, time.Time) {
	var rule string
	var due time.Time
	for r, d := range s.timers {
		if rule == "" || d.Before(due) || d.Equal(due) && r < rule {
			rule, due = r, d
		}
	}
	return rule, due
}

func (s *timerSim) wantFired(rules ...string) {
	s.t.Helper()
	if rules == nil {
		rules = []string{}
	}
	got := append([]string{}, s.fired...)
	if got == nil {
		got = []string{}
	}
	if !reflect.DeepEqual(got, rules) {
		s.t.Fatalf("at %s fired %q, want %q (trace %+v)", s.now.Format(time.RFC3339), got, rules, s.trace)
	}
}

func (s *timerSim) wantTimer(rule string, due time.Time) {
	s.t.Helper()
	got, ok := s.timers[rule]
	if due.IsZero() {
		if ok {
			s.t.Fatalf("rule %s has a timer due %s, want none", rule, got.Format(time.RFC3339))
		}
		return
	}
	if !ok || !got.Equal(due) {
		s.t.Fatalf("rule %s timer = %v (armed %v), want %s", rule, got, ok, due.Format(time.RFC3339))
	}
}

const pendingRule = `rules:
  - id: pending-too-long
    on: [ticket.*]
    when: { field: status, is: pending }
    for: 48h
    then: [ { set_priority: high } ]
`

func TestForArmsFiresOnceAndRearmsAfterEpisode(t *testing.T) {
	set := mustCompile(t, pendingRule, Options{})
	t0 := at(t, "2026-01-05T10:00:00Z")
	s := newTimerSim(t, set, t0)
	s.send("ticket.created", map[string]any{"status": "open"}, "customer")
	s.wantTimer("pending-too-long", time.Time{})
	if len(s.ops) != 0 {
		t.Fatalf("ops for an open ticket: %+v", s.ops)
	}

	s.advance(time.Hour)
	s.send("ticket.status_changed", map[string]any{"status": "pending"}, "agent")
	due := t0.Add(49 * time.Hour)
	if want := []TimerOp{{Rule: "pending-too-long", Op: TimerArm, Due: due}}; !reflect.DeepEqual(s.ops, want) {
		t.Fatalf("ops = %+v, want %+v", s.ops, want)
	}
	// Other events while pending keep the clock and the timer as they are.
	s.advance(10 * time.Hour)
	s.send("ticket.comment_added", map[string]any{"text": "note"}, "agent")
	if len(s.ops) != 0 {
		t.Fatalf("an event that keeps the condition moved the timer: %+v", s.ops)
	}
	s.advance(37*time.Hour + 59*time.Minute)
	s.wantFired()
	s.advance(time.Minute)
	s.wantFired("pending-too-long")
	s.wantTimer("pending-too-long", time.Time{})
	if c := s.snap.Clocks["pending-too-long"]; c == nil || !c.Done || !c.Since.Equal(t0.Add(time.Hour)) {
		t.Fatalf("clock after firing = %+v", c)
	}
	// Still pending: the episode is spent, nothing fires again.
	s.send("ticket.comment_added", map[string]any{"text": "again"}, "agent")
	s.advance(200 * time.Hour)
	s.wantFired()

	// The condition turns false and true again: a new episode.
	s.send("ticket.status_changed", map[string]any{"status": "open"}, "agent")
	if s.snap.Clocks["pending-too-long"] != nil {
		t.Fatal("clock kept after the condition turned false")
	}
	s.advance(time.Hour)
	s.send("ticket.status_changed", map[string]any{"status": "pending"}, "agent")
	s.wantTimer("pending-too-long", s.now.Add(48*time.Hour))
	s.advance(48 * time.Hour)
	s.wantFired("pending-too-long")
}

func TestForCancelsWhenConditionTurnsFalse(t *testing.T) {
	set := mustCompile(t, pendingRule, Options{})
	s := newTimerSim(t, set, at(t, "2026-01-05T10:00:00Z"))
	s.send("ticket.status_changed", map[string]any{"status": "pending"}, "agent")
	s.advance(47 * time.Hour)
	s.send("ticket.message_received", map[string]any{"status": "open"}, "customer")
	if want := []TimerOp{{Rule: "pending-too-long", Op: TimerCancel}}; !reflect.DeepEqual(s.ops, want) {
		t.Fatalf("ops = %+v, want %+v", s.ops, want)
	}
	s.advance(100 * time.Hour)
	s.wantFired()
}

// on: lists the events that start and re-arm a clock, but any event of the
// entity ends its episode once when: no longer holds: a ticket that leaves
// pending through an event type on: does not list and comes back through
// one it lists starts a new episode, timed from its return.
func TestEpisodeEndsOnEventsThatOnDoesNotList(t *testing.T) {
	src := `rules:
  - id: pending-long
    on: [ticket.status_changed]
    when: { field: status, is: pending }
    for: 1h
    then: [ { set_priority: high } ]
`
	set := mustCompile(t, src, Options{})
	t0 := at(t, "2026-01-05T10:00:00Z")
	cancel := []TimerOp{{Rule: "pending-long", Op: TimerCancel}}
	for _, tc := range []struct {
		name       string
		firstFor   time.Duration // how long the first pending period lasts
		firstFires bool
		unlisted   map[string]any // the ticket.updated the ticket then gets
		wantOps    []TimerOp      // ... and the timer ops it brings
		ends       bool           // ... whether it ends the episode
	}{
		{"after the firing", 90 * time.Minute, true, map[string]any{"status": "open"}, nil, true},
		{"before the firing", 30 * time.Minute, false, map[string]any{"status": "open"}, cancel, true},
		{"when still holds", 30 * time.Minute, false, map[string]any{"subject": "still waiting"}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTimerSim(t, set, t0)
			s.send("ticket.status_changed", map[string]any{"status": "pending"}, "agent")
			s.advance(tc.firstFor)
			if tc.firstFires {
				s.wantFired("pending-long")
			} else {
				s.wantFired()
			}
			before := s.snap.Clocks["pending-long"]
			s.send("ticket.updated", tc.unlisted, "agent")
			if !reflect.DeepEqual(s.ops, tc.wantOps) {
				t.Fatalf("ops of the unlisted event = %+v, want %+v", s.ops, tc.wantOps)
			}
			if c := s.snap.Clocks["pending-long"]; tc.ends && c != nil || !tc.ends && !reflect.DeepEqual(c, before) {
				t.Fatalf("clock after the unlisted event = %+v (before %+v), want ended %v", c, before, tc.ends)
			}
			if !tc.ends {
				s.advance(time.Hour - tc.firstFor)
				s.wantFired("pending-long")
				return
			}
			s.advance(15 * time.Minute)
			s.send("ticket.status_changed", map[string]any{"status": "pending"}, "agent")
			s.wantTimer("pending-long", s.now.Add(time.Hour))
			s.advance(59 * time.Minute)
			s.wantFired()
			s.advance(time.Minute)
			s.wantFired("pending-long")
		})
	}
}

// A timer that fires while the condition no longer holds (a lost cancel)
// acts on nothing: the when is re-checked against the current snapshot.
func TestTimerRechecksConditionOnCurrentSnapshot(t *testing.T) {
	set := mustCompile(t, pendingRule, Options{})
	s := newTimerSim(t, set, at(t, "2026-01-05T10:00:00Z"))
	s.send("ticket.status_changed", map[string]any{"status": "pending"}, "agent")
	due := s.timers["pending-too-long"]
	s.snap.Fields["status"] = "open" // state changed behind the clock's back
	s.now = due
	s.fire("pending-too-long")
	s.wantFired()
	if tr := s.trace[0]; tr.Failed == nil || tr.Failed.Condition != "status is pending" || tr.Failed.Actual != "open" {
		t.Fatalf("trace = %+v", tr)
	}
	if s.snap.Clocks["pending-too-long"] != nil || len(s.timers) != 0 {
		t.Fatalf("clock %+v timers %v after a failed re-check", s.snap.Clocks, s.timers)
	}
}

func TestTimerFiredConsidersOnlyTheNamedRule(t *testing.T) {
	src := pendingRule + `  - id: everything
    on: ["*"]
    then: [ { add_tags: [seen] } ]
  - id: other-timer
    on: [ticket.*]
    when: { field: status, is: pending }
    for: 1h
    then: [ { add_tags: [hour] } ]
`
	set := mustCompile(t, src, Options{})
	s := newTimerSim(t, set, at(t, "2026-01-05T10:00:00Z"))
	res := s.send("ticket.status_changed", map[string]any{"status": "pending"}, "agent")
	if !reflect.DeepEqual(res.Matched, []string{"everything"}) || len(res.Trace) != 1 {
		t.Fatalf("an event evaluated time-based rules: matched %q trace %+v", res.Matched, res.Trace)
	}
	s.advance(time.Hour)
	s.wantFired("other-timer")
	if len(s.trace) != 1 || s.trace[0].Rule != "other-timer" {
		t.Fatalf("timer.fired trace = %+v", s.trace)
	}
	// A timer of a rule that is gone (config reloaded) does nothing.
	res = set.Evaluate(Input{Event: &event.Event{Type: event.TypeTimerFired, Rule: "gone", Connector: "zendesk"}, Snapshot: s.snap, Now: s.now})
	if len(res.Matched) != 0 || res.Trace[0].Skipped != SkipNotTimed {
		t.Fatalf("unknown rule: %+v", res)
	}
}

func TestPauseWhenStopsTheClock(t *testing.T) {
	src := `rules:
  - id: unanswered
    on: [ticket.*]
    when: { field: last_customer_message_at, after: last_agent_message_at }
    since: last_customer_message_at
    for: 4h
    pause_when: { field: status, is: snoozed }
    then: [ { set_priority: high } ]
`
	set := mustCompile(t, src, Options{})
	t0 := at(t, "2026-01-05T10:00:00Z")
	s := newTimerSim(t, set, t0)
	s.send("ticket.message_received", map[string]any{"status": "open", "text": "help"}, "customer")
	s.wantTimer("unanswered", t0.Add(4*time.Hour))
	s.advance(time.Hour)
	s.send("ticket.status_changed", map[string]any{"status": "snoozed"}, "agent")
	s.wantTimer("unanswered", time.Time{})
	if c := s.snap.Clocks["unanswered"]; c == nil || !c.PausedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("clock while snoozed = %+v", c)
	}
	s.advance(5 * time.Hour)
	s.wantFired()
	s.send("ticket.status_changed", map[string]any{"status": "open"}, "system")
	if c := s.snap.Clocks["unanswered"]; c == nil || c.PausedTotal != 5*time.Hour || !c.PausedAt.IsZero() {
		t.Fatalf("clock after resume = %+v", c)
	}
	s.wantTimer("unanswered", t0.Add(9*time.Hour))
	s.advance(3*time.Hour - time.Second)
	s.wantFired()
	s.advance(time.Second)
	s.wantFired("unanswered")

	// An agent reply ends the episode; the next customer message starts a new one.
	s.send("ticket.message_sent", map[string]any{"text": "on it"}, "agent")
	if s.snap.Clocks["unanswered"] != nil {
		t.Fatalf("clock after the reply = %+v", s.snap.Clocks["unanswered"])
	}
	s.advance(time.Hour)
	s.send("ticket.message_received", map[string]any{"text": "thanks, but"}, "customer")
	s.wantTimer("unanswered", s.now.Add(4*time.Hour))
	// A second customer message moves the start of the clock (since: field).
	s.advance(time.Hour)
	s.send("ticket.message_received", map[string]any{"text": "hello?"}, "customer")
	if want := []TimerOp{{Rule: "unanswered", Op: TimerMove, Due: s.now.Add(4 * time.Hour)}}; !reflect.DeepEqual(s.ops, want) {
		t.Fatalf("ops = %+v, want %+v", s.ops, want)
	}
}

const calendarYAML = `support:
  timezone: Europe/Rome
  hours: { mon-fri: "09:00-18:00" }
  holidays: ["2026-01-06"]
everyday:
  timezone: Europe/Rome
  hours: { mon-sun: "09:00-18:00" }
allday:
  timezone: Europe/Rome
  hours: { mon-sun: "00:00-24:00" }
`

func testCalendars(t testing.TB) map[string]*Calendar {
	t.Helper()
	return calendarsFrom(t, calendarYAML)
}

// calendarsFrom parses the calendars of a gateway.yaml text.
func calendarsFrom(t testing.TB, src string) map[string]*Calendar {
	t.Helper()
	n, errs := yamlconf.Parse("gateway.yaml", []byte(src), nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	cals, errs := ParseCalendars("gateway.yaml", n)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return cals
}

func TestBusinessHoursAcrossWeekendAndHoliday(t *testing.T) {
	src := `rules:
  - id: pending-business
    on: [ticket.*]
    when: { field: status, is: pending }
    for: 4h
    calendar: support
    then: [ { set_priority: high } ]
`
	set := mustCompile(t, src, Options{Calendars: testCalendars(t)})
	rome := mustLoc(t, "Europe/Rome")
	cases := []struct {
		name, start, due string
	}{
		// Friday 16:00: 2h on Friday, 2h on Monday.
		{"over the weekend", "2026-01-09T16:00:00+01:00", "2026-01-12T11:00:00+01:00"},
		// Monday 16:00: Tuesday 6 January is a holiday.
		{"over a holiday", "2026-01-05T16:00:00+01:00", "2026-01-07T11:00:00+01:00"},
		// Saturday: the clock starts on Monday at opening.
		{"started while closed", "2026-01-10T12:00:00+01:00", "2026-01-12T13:00:00+01:00"},
		// Inside one day.
		{"same day", "2026-01-08T09:30:00+01:00", "2026-01-08T13:30:00+01:00"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start, due := at(t, tc.start), at(t, tc.due)
			s := newTimerSim(t, set, start)
			s.send("ticket.status_changed", map[string]any{"status": "pending"}, "agent")
			s.wantTimer("pending-business", due)
			s.advance(due.Sub(start) - time.Second)
			s.wantFired()
			s.advance(time.Second)
			s.wantFired("pending-business")
			if got := s.now.In(rome).Format("Mon 15:04"); got != due.In(rome).Format("Mon 15:04") {
				t.Fatalf("fired at %s", got)
			}
		})
	}
}

func TestBusinessHoursAcrossDSTChanges(t *testing.T) {
	cals := testCalendars(t)
	cases := []struct {
		name, cal, from string
		d               time.Duration
		want            string
	}{
		// Rome switches to CEST on Sunday 29 March 2026: Saturday 17:00 CET
		// + 1h that day + 1h on Sunday = Sunday 10:00 CEST (08:00Z, not 09:00Z).
		{"spring forward", "everyday", "2026-03-28T17:00:00+01:00", 2 * time.Hour, "2026-03-29T08:00:00Z"},
		// Back to CET on Sunday 25 October 2026: Sunday 10:00 CET = 09:00Z.
		{"fall back", "everyday", "2026-10-24T17:00:00+02:00", 2 * time.Hour, "2026-10-25T09:00:00Z"},
		// Around the clock: the spring Sunday has 23 hours, the autumn one 25.
		{"23-hour day", "allday", "2026-03-29T00:00:00+01:00", 23 * time.Hour, "2026-03-29T22:00:00Z"},
		{"25-hour day", "allday", "2026-10-25T00:00:00+02:00", 25 * time.Hour, "2026-10-25T23:00:00Z"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cal := cals[tc.cal]
			from := at(t, tc.from)
			got, ok := cal.Add(from, tc.d)
			if !ok || !got.Equal(at(t, tc.want)) {
				t.Fatalf("Add(%s, %s) = %s, want %s", tc.from, tc.d, got.UTC().Format(time.RFC3339), tc.want)
			}
			if b := cal.Business(from, got, 0); b != tc.d {
				t.Fatalf("Business back = %s, want %s", b, tc.d)
			}
		})
	}
	// The whole DST Sunday counts 23 hours of "00:00-24:00" time.
	allday := cals["allday"]
	if b := allday.Business(at(t, "2026-03-29T00:00:00+01:00"), at(t, "2026-03-30T00:00:00+02:00"), 0); b != 23*time.Hour {
		t.Fatalf("spring Sunday = %s", b)
	}
	// A for: rule on the calendar fires at the DST-correct instant.
	src := "rules:\n  - id: r\n    on: [ticket.*]\n    when: { field: status, is: pending }\n    for: 2h\n    calendar: everyday\n    then: [ { add_tags: [late] } ]\n"
	s := newTimerSim(t, mustCompile(t, src, Options{Calendars: cals}), at(t, "2026-03-28T17:00:00+01:00"))
	s.send("ticket.status_changed", map[string]any{"status": "pending"}, "agent")
	s.wantTimer("r", at(t, "2026-03-29T08:00:00Z"))
}

// Add and Business are inverse on every calendar, for many starts and lengths.
func TestCalendarAddBusinessInverse(t *testing.T) {
	cals := testCalendars(t)
	start := at(t, "2026-03-20T07:13:00Z")
	for name, cal := range cals {
		for i := 0; i < 400; i++ {
			from := start.Add(time.Duration(i*i*7919) * time.Second % (60 * 24 * time.Hour))
			d := time.Duration(i*37%(80*60)+1) * time.Minute
			due, ok := cal.Add(from, d)
			if !ok {
				t.Fatalf("%s: Add(%s, %s) found no time", name, from, d)
			}
			if b := cal.Business(from, due, 0); b != d {
				t.Fatalf("%s: Business(%s, Add(%s)) = %s", name, from, d, b)
			}
			if b := cal.Business(from, due.Add(-time.Second), 0); b >= d {
				t.Fatalf("%s: %s reached before Add's answer %s", name, d, due)
			}
		}
	}
	var wall *Calendar
	if due, _ := wall.Add(start, time.Hour); !due.Equal(start.Add(time.Hour)) || wall.Business(start, due, 0) != time.Hour {
		t.Fatal("a nil calendar is not wall-clock time")
	}
}

func TestWithinWindows(t *testing.T) {
	src := `rules:
  - id: chat-idle
    on: [chat.*]
    when: { field: status, is: active }
    idle: true
    within: [5m, 15m]
    then: [ { set_group: rescue } ]
    once_per_item: true
`
	set := mustCompile(t, src, Options{})
	t0 := at(t, "2026-01-05T10:00:00Z")
	start := func() *timerSim {
		s := newTimerSim(t, set, t0)
		s.step(&event.Event{Type: "chat.started", Fields: map[string]any{"status": "active"}, Actor: event.Actor{Type: "customer"}})
		s.wantTimer("chat-idle", t0.Add(5*time.Minute))
		return s
	}
	t.Run("inside", func(t *testing.T) {
		s := start()
		s.advance(5 * time.Minute)
		s.wantFired("chat-idle")
	})
	t.Run("early", func(t *testing.T) {
		s := start()
		s.now = t0.Add(3 * time.Minute)
		s.fire("chat-idle")
		s.wantFired()
		mustContain(t, s.trace[0].Skipped, "not due yet (3m0s of 5m0s elapsed")
		s.wantTimer("chat-idle", t0.Add(5*time.Minute)) // re-armed
		s.advance(2 * time.Minute)
		s.wantFired("chat-idle")
	})
	t.Run("late", func(t *testing.T) {
		s := start()
		s.now = t0.Add(20 * time.Minute) // the gateway was down when it came due
		s.fire("chat-idle")
		s.wantFired()
		mustContain(t, s.trace[0].Skipped, "fired late: 20m0s elapsed is past within [5m0s, 15m0s]; not acting")
		s.wantTimer("chat-idle", time.Time{})
		if c := s.snap.Clocks["chat-idle"]; c == nil || !c.Done {
			t.Fatalf("clock after a late timer = %+v", c)
		}
	})
	t.Run("once per chat", func(t *testing.T) {
		s := start()
		s.advance(5 * time.Minute)
		s.wantFired("chat-idle")
		s.send("chat.message_received", map[string]any{"text": "still there?"}, "customer")
		s.advance(5 * time.Minute)
		s.wantFired()
		if s.trace[0].Skipped != SkipOnce {
			t.Fatalf("trace = %+v", s.trace)
		}
	})
}

func TestIdleRearmsOnEveryEvent(t *testing.T) {
	src := `rules:
  - id: stuck
    on: [ticket.*]
    when: { field: owner, present: true }
    idle: 30m
    then: [ { set_priority: urgent } ]
`
	set := mustCompile(t, src, Options{})
	t0 := at(t, "2026-01-05T10:00:00Z")
	s := newTimerSim(t, set, t0)
	s.send("ticket.created", map[string]any{"status": "open"}, "customer")
	s.wantTimer("stuck", time.Time{}) // no owner
	s.send("ticket.assigned", map[string]any{"owner": "ann"}, "agent")
	s.wantTimer("stuck", t0.Add(30*time.Minute))
	s.advance(10 * time.Minute)
	s.send("ticket.comment_added", map[string]any{"text": "looking"}, "agent")
	if want := []TimerOp{{Rule: "stuck", Op: TimerMove, Due: t0.Add(40 * time.Minute)}}; !reflect.DeepEqual(s.ops, want) {
		t.Fatalf("ops = %+v", s.ops)
	}
	// An echo of our own delivery is no activity.
	s.step(&event.Event{Type: "ticket.updated", Fields: map[string]any{"priority": "normal"}, Actor: event.Actor{Type: event.ActorGateway}, Causation: event.Causation{Echo: true}})
	s.wantTimer("stuck", t0.Add(40*time.Minute))
	s.advance(30 * time.Minute)
	s.wantFired("stuck")
	s.advance(5 * time.Hour)
	s.wantFired()
	s.send("ticket.message_received", map[string]any{"text": "any news?"}, "customer")
	s.wantTimer("stuck", s.now.Add(30*time.Minute))
	s.advance(30 * time.Minute)
	s.wantFired("stuck")
}

// An event older than the idle clock's start (a platform's delayed retry,
// out-of-order delivery) is no new activity: the clock stays as it is,
// fired or not, instead of restarting at its own start without Done.
func TestIdleClockIgnoresOlderEvents(t *testing.T) {
	src := `rules:
  - id: stuck
    on: [ticket.*]
    when: { field: owner, present: true }
    idle: 30m
    then: [ { set_priority: urgent } ]
`
	set := mustCompile(t, src, Options{})
	t0 := at(t, "2026-01-05T10:00:00Z")
	for _, tc := range []struct {
		name     string
		lateAt   time.Duration // when the old event arrives, from t0
		firedYet bool
	}{
		{"before the timer fires", 20 * time.Minute, false},
		{"after the timer fired", 45 * time.Minute, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTimerSim(t, set, t0)
			s.send("ticket.assigned", map[string]any{"owner": "ann"}, "agent")
			s.advance(10 * time.Minute)
			s.send("ticket.comment_added", map[string]any{"text": "x"}, "agent") // the clock starts again at t0+10m
			s.wantTimer("stuck", t0.Add(40*time.Minute))
			s.advance(tc.lateAt - 10*time.Minute)
			if tc.firedYet {
				s.wantFired("stuck")
			}
			before := *s.snap.Clocks["stuck"]
			// The webhook of a comment made at t0+5m arrives now.
			s.ops, s.fired = nil, nil
			s.step(&event.Event{Type: "ticket.comment_added", OccurredAt: t0.Add(5 * time.Minute), Fields: map[string]any{"text": "old"}, Actor: event.Actor{Type: "agent"}})
			if c := s.snap.Clocks["stuck"]; c == nil || *c != before || len(s.ops) != 0 {
				t.Fatalf("after the old event: clock %+v ops %+v, want the clock %+v as it was and no timer op", c, s.ops, before)
			}
			s.advance(2 * time.Hour)
			if tc.firedYet {
				s.wantFired() // nothing happened on the ticket since t0+10m
			} else {
				s.wantFired("stuck")
			}
		})
	}
}

func TestSinceFieldStartsClockInThePast(t *testing.T) {
	src := `rules:
  - id: unattended
    on: [chat.*]
    when:
      all:
        - { field: status, is: active }
        - { field: last_customer_message_at, after: last_agent_message_at }
    since: last_customer_message_at
    for: 5m
    then: [ { set_priority: high } ]
`
	set := mustCompile(t, src, Options{})
	t0 := at(t, "2026-01-05T10:00:00Z")
	s := newTimerSim(t, set, t0)
	// The webhook arrives two minutes after the message was written.
	s.ops, s.fired = nil, nil
	s.step(&event.Event{Type: "chat.message_received", OccurredAt: t0.Add(-2 * time.Minute), Fields: map[string]any{"status": "active"}, Actor: event.Actor{Type: "customer"}})
	s.wantTimer("unattended", t0.Add(3*time.Minute))
	s.advance(time.Minute)
	s.send("chat.message_sent", map[string]any{"text": "hi"}, "agent")
	s.wantTimer("unattended", time.Time{})
	s.advance(10 * time.Minute)
	s.wantFired()
	s.send("chat.message_received", map[string]any{"text": "?"}, "customer")
	s.wantTimer("unattended", s.now.Add(5*time.Minute))
	s.advance(5 * time.Minute)
	s.wantFired("unattended")
}

func TestAfterBeforeOperators(t *testing.T) {
	t1, t2 := at(t, "2026-01-05T10:00:00Z"), at(t, "2026-01-05T11:00:00Z")
	cases := []struct {
		cond      string
		cust, agt time.Time
		want      bool
	}{
		{"{ field: last_customer_message_at, after: last_agent_message_at }", t2, t1, true},
		{"{ field: last_customer_message_at, after: last_agent_message_at }", t1, t2, false},
		{"{ field: last_customer_message_at, after: last_agent_message_at }", t1, time.Time{}, true},
		{"{ field: last_customer_message_at, after: last_agent_message_at }", time.Time{}, t1, false},
		{"{ field: last_customer_message_at, before: last_agent_message_at }", t1, t2, true},
		{"{ field: last_customer_message_at, before: last_agent_message_at }", t1, time.Time{}, false},
		{"{ field: last_customer_message_at, before: last_agent_message_at }", t1, t1, false},
	}
	for _, tc := range cases {
		set := mustCompile(t, oneRule(tc.cond), Options{})
		snap := &event.Snapshot{Fields: map[string]any{}, LastCustomerMessageAt: tc.cust, LastAgentMessageAt: tc.agt}
		res := set.Evaluate(Input{Event: mkEvent("ticket.updated", nil), Snapshot: snap, Now: t2})
		if matched(res, "r") != tc.want {
			t.Errorf("%s with customer %v agent %v: %v, want %v", tc.cond, tc.cust, tc.agt, !tc.want, tc.want)
		}
	}
}

func TestTimerConfigErrors(t *testing.T) {
	opts := Options{Calendars: testCalendars(t)}
	rule := func(lines ...string) string {
		return "rules:\n  - id: r\n    on: [ticket.*]\n" + strings.Join(lines, "\n") + "\n    then: [ { set_priority: high } ]\n"
	}
	cases := []struct {
		name, src string
		want      []string
	}{
		{"unknown calendar", rule("    for: 4h", "    calendar: suport"), []string{`rules.yaml:5:15: calendar: unknown calendar "suport"; did you mean "support"? (known: allday, everyday, support)`}},
		{"since on a text field", rule("    for: 4h", "    since: status"), []string{`rules.yaml:5:12: since: status is a text field, not a timestamp`}},
		{"since misspelt", rule("    for: 4h", "    since: last_customer_mesage_at"), []string{`since: unknown field "last_customer_mesage_at"; did you mean "last_customer_message_at"?`}},
		{"since with idle", rule("    idle: 4h", "    since: status_since"), []string{`rules.yaml:5:12: rule "r": since: goes with for:`}},
		{"within order", rule("    idle: true", "    within: [15m, 5m]"), []string{`rules.yaml:5:13: within: low end 15m is above high end 5m`}},
		{"within shape", rule("    idle: true", "    within: 5m"), []string{`within: expected [low, high] durations like [5m, 15m]`}},
		{"duration outside within", rule("    idle: 20m", "    within: [5m, 15m]"), []string{`rules.yaml:4:11: idle: 20m is outside within [5m, 15m]`}},
		{"true without within", rule("    idle: true"), []string{`idle: expected a duration like 30m or 48h (true only with within:`}},
		{"bad duration", rule("    for: soon"), []string{`rules.yaml:4:10: for: expected a positive duration like 15m, 48h or 2d, got "soon"`}},
		{"too long", rule("    for: 400d"), []string{`for: 400d is longer than the longest timer, 366d`}},
		{"time keys without a timer", rule("    since: status_since", "    pause_when: { field: status, is: snoozed }"), []string{`rules.yaml:4:12: rule "r": since: applies to time-based rules only`, `pause_when: applies to time-based rules only`}},
		{"changed_to in a timed rule", rule("    when: { field: status, changed_to: pending }", "    for: 4h"), []string{`rules.yaml:4:28: changed_to cannot be used in a time-based rule`}},
		{"actor in a timed rule", rule("    when: { field: actor.type, is: agent }", "    idle: 4h"), []string{`actor.type cannot be used in a time-based rule`}},
		{"changed in pause_when", rule("    for: 4h", "    pause_when: { field: status, changed: true }"), []string{`changed cannot be used in a time-based rule`}},
		{"timer.fired in on", "rules:\n  - id: r\n    on: [timer.fired]\n    for: 1h\n    then: [ { set_priority: high } ]\n", []string{`timer.fired events are the rule's own timers`}},
		{"manual with a timer", "rules:\n  - id: r\n    on: manual\n    for: 1h\n    then: [ { set_priority: high } ]\n", []string{"`on: manual` rules run on demand and cannot have for:"}},
		{"after on a text field", oneRule("{ field: status, after: last_agent_message_at }"), []string{`after cannot be used on status`}},
		{"after a text field", oneRule("{ field: status_since, after: subject }"), []string{`after: subject is not a timestamp field`}},
		{"loop guard still applies", "rules:\n  - id: r\n    on: [ticket.status_changed]\n    when: { field: status, is: pending }\n    for: 1h\n    then: [ { set_status: pending } ]\n", []string{`rule "r" would re-trigger itself: set_status sets status to "pending"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mustContain(t, compileFails(t, tc.src, opts), tc.want...)
		})
	}
	// No calendars at all.
	mustContain(t, compileFails(t, rule("    for: 4h", "    calendar: support"), Options{}), `gateway.yaml defines no calendars`)
}

func TestTimerSpecIsListed(t *testing.T) {
	src := `rules:
  - id: w
    on: [chat.*]
    idle: 10m
    within: [5m, 15m]
    pause_when: { field: status, is: snoozed }
    calendar: support
    then: [ { set_group: rescue } ]
`
	set := mustCompile(t, src, Options{Calendars: testCalendars(t)})
	got := set.Rule("w").Timer
	want := &TimerSpec{Kind: TimerIdle, Duration: 10 * time.Minute, Within: []time.Duration{5 * time.Minute, 15 * time.Minute},
		PauseWhen: "status is snoozed", Calendar: "support"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("timer = %+v, want %+v", got, want)
	}
}

func TestCalendarErrors(t *testing.T) {
	cases := []struct {
		src  string
		want string
	}{
		{"c: { timezone: Europe/Roma, hours: { mon: \"09:00-18:00\" } }", `gateway.yaml:1:16: calendar c: unknown time zone "Europe/Roma"`},
		{"c: { timezone: UTC, hours: { weekdays: \"09:00-18:00\" } }", `gateway.yaml:1:30: calendar c: hours: "weekdays" is not a day or a day range`},
		{"c: { timezone: UTC, hours: { mon: \"18:00-09:00\" } }", `that does not cross midnight`},
		{"c: { timezone: UTC, hours: { mon: \"9-18\" } }", `expected a window like "09:00-18:00"`},
		{"c: { timezone: UTC, hours: { mon: [\"09:00-13:00\", \"12:00-18:00\"] } }", `windows overlap`},
		{"c: { timezone: UTC, hours: { mon-fri: \"09:00-18:00\", fri: \"09:00-12:00\" } }", `hours: fri windows overlap (the day is in two entries)`},
		{"c: { timezone: UTC, hours: { mon: \"09:00-18:00\" }, holidays: [\"25/12/2026\"] }", `holidays: expected a date like 2026-12-25, got "25/12/2026"`},
		{"c: { timezone: UTC, hours: { mon: \"09:00-18:00\" }, holiday: [] }", `unknown key "holiday"; did you mean "holidays"?`},
		{"c: { hours: { mon: \"09:00-18:00\" } }", `calendar c: timezone is required`},
		{"c: { timezone: UTC }", `calendar c: hours are required`},
		{"c: [a]", `calendar c: expected { timezone, hours, holidays }`},
	}
	for _, tc := range cases {
		n, errs := yamlconf.Parse("gateway.yaml", []byte(tc.src), nil)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		cals, errs := ParseCalendars("gateway.yaml", n)
		if cals != nil || len(errs) == 0 {
			t.Errorf("%s: no error", tc.src)
			continue
		}
		mustContain(t, errs.Error(), tc.want)
	}
	cals, errs := ParseCalendars("gateway.yaml", nil)
	if len(errs) > 0 || len(cals) != 0 {
		t.Fatalf("nil node: %v %v", cals, errs)
	}
}

// Schedule drops the clocks of rules that are gone and cancels their timers.
func TestScheduleDropsClocksOfRemovedRules(t *testing.T) {
	set := mustCompile(t, pendingRule, Options{})
	snap := &event.Snapshot{Fields: map[string]any{"status": "open"}, Clocks: map[string]*event.RuleClock{"old-rule": {Since: time.Now()}}}
	ops := set.Schedule(Input{Event: mkEvent("ticket.updated", nil), Snapshot: snap, Now: time.Now()})
	sort.Slice(ops, func(i, j int) bool { return ops[i].Rule < ops[j].Rule })
	if want := []TimerOp{{Rule: "old-rule", Op: TimerCancel}}; !reflect.DeepEqual(ops, want) {
		t.Fatalf("ops = %+v", ops)
	}
	if len(snap.Clocks) != 0 {
		t.Fatalf("clocks = %+v", snap.Clocks)
	}
}

// FuzzParseCalendars: any calendars node parses or fails with positioned
// errors, never panics; a parsed calendar's Add and Business are inverse.
func FuzzParseCalendars(f *testing.F) {
	for _, seed := range []string{calendarYAML, "c: { timezone: UTC, hours: { fri-mon: [\"00:00-01:00\", \"23:00-24:00\"] } }",
		"c: { timezone: America/New_York, hours: { sun: \"01:30-03:30\" }, holidays: [\"2026-03-08\"] }", "c: [", "c: 5", ""} {
		f.Add(seed, int64(1774742400), uint32(3600))
	}
	f.Fuzz(func(t *testing.T, src string, from int64, secs uint32) {
		n, errs := yamlconf.Parse("g.yaml", []byte(src), nil)
		if len(errs) > 0 {
			return
		}
		cals, errs := ParseCalendars("g.yaml", n)
		if len(errs) > 0 {
			if cals != nil {
				t.Fatal("calendars with errors")
			}
			for _, e := range errs {
				if e.Pos.File != "g.yaml" || e.Msg == "" {
					t.Fatalf("unpositioned error %+v", e)
				}
			}
			return
		}
		start := time.Unix(from%(1<<33), 0)
		d := time.Duration(secs%(30*24*3600)+1) * time.Second
		for _, c := range cals {
			due, ok := c.Add(start, d)
			if !ok {
				continue
			}
			if got := c.Business(start, due, 0); got != d {
				t.Fatalf("%s: Business(%s, Add(%s)) = %s", c.Name, start, d, got)
			}
		}
	})
}

// FuzzTimerRules: any rules file with time keys compiles or fails cleanly;
// a compiled set schedules and handles its own timers without panicking.
func FuzzTimerRules(f *testing.F) {
	for _, seed := range []string{pendingRule, timedRules(4),
		"rules:\n  - id: r\n    on: [chat.*]\n    idle: true\n    within: [5m, 15m]\n    pause_when: { field: status, is: snoozed }\n    then: [ { set_group: rescue } ]\n",
		"rules:\n  - id: r\n    on: [ticket.*]\n    since: custom.due\n    for: 1h\n    calendar: allday\n    then: [ { add_tags: [x] } ]\n"} {
		f.Add(seed)
	}
	cals := testCalendars(f)
	f.Fuzz(func(t *testing.T, src string) {
		n, errs := yamlconf.Parse("f.yaml", []byte(src), nil)
		if len(errs) > 0 {
			return
		}
		s, errs := Compile([]File{{Name: "f.yaml", Node: n}}, Options{Calendars: cals})
		if len(errs) > 0 {
			return
		}
		now := time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC)
		ev := &event.Event{Connector: "zendesk", Type: "ticket.updated", Entity: "ticket", Reference: "1", OccurredAt: now,
			Fields: map[string]any{"status": "pending", "owner": "a", "custom.due": "2026-03-28T10:00:00Z"}}
		snap := event.Apply(nil, ev)
		ops := s.Schedule(Input{Event: ev, Snapshot: snap, Now: now})
		for _, op := range ops {
			fired := &event.Event{Connector: "zendesk", Type: event.TypeTimerFired, Entity: "ticket", Reference: "1", Rule: op.Rule}
			next := event.Apply(snap, fired)
			in := Input{Event: fired, Snapshot: next, Now: op.Due.Add(time.Hour)}
			s.Evaluate(in)
			s.Schedule(in)
		}
	})
}

// A since: clock on a field that the rule's own update moves when it comes
// back (last_activity_at: every event moves it, echoes too) is not
// restarted by that echo, as an idle clock is not: the rule fires once for
// the quiet period, not again every period after its own update.
func TestSinceClockIgnoresEchoes(t *testing.T) {
	src := `rules:
  - id: quiet
    on: [ticket.*]
    when: { field: owner, present: true }
    since: last_activity_at
    for: 2h
    then: [ { add_tags: [quiet] } ]
`
	set := mustCompile(t, src, Options{})
	t0 := at(t, "2026-01-05T10:00:00Z")
	s := newTimerSim(t, set, t0)
	s.send("ticket.updated", map[string]any{"owner": "ana"}, "agent")
	s.wantTimer("quiet", t0.Add(2*time.Hour))
	fired := 0
	for range 5 {
		s.advance(2 * time.Hour)
		fired += len(s.fired)
		// The platform echoes the tag the rule added.
		s.ops, s.fired = nil, nil
		s.step(&event.Event{Type: "ticket.updated", Fields: map[string]any{"tags": []any{"quiet"}},
			Actor: event.Actor{Type: event.ActorGateway}, Causation: event.Causation{Echo: true, Hops: 1}})
	}
	if fired != 1 {
		t.Fatalf("fired %d times in 10 quiet hours, want once", fired)
	}
	// A person's event starts a new quiet period.
	s.send("ticket.updated", map[string]any{"owner": "bo"}, "agent")
	s.wantTimer("quiet", s.now.Add(2*time.Hour))
}

// A since: clock that an echo of our own update left running (the echo
// moved last_activity_at) fires once for the quiet period: its timer's
// firing keeps the clock it fired, instead of starting a new episode from
// the moved field, whether echoes come before the firing, after each one,
// or both.
func TestSinceClockFiresOnceAfterEchoes(t *testing.T) {
	src := `rules:
  - id: quiet-pending
    on: [ticket.*]
    when: { field: status, is: pending }
    since: last_activity_at
    for: 2h
    then: [ { set_priority: high } ]
`
	set := mustCompile(t, src, Options{})
	for _, tc := range []struct {
		name                        string
		echoBefore, echoAfterFiring bool
	}{
		{"echo before the firing", true, false},
		{"echoes before and after each firing", true, true},
		{"echoes after each firing", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t0 := at(t, "2026-01-05T10:00:00Z")
			s := newTimerSim(t, set, t0)
			s.send("ticket.created", map[string]any{"status": "pending"}, "customer")
			s.wantTimer("quiet-pending", t0.Add(2*time.Hour))
			echo := func(fields map[string]any) {
				s.advance(time.Minute)
				s.ops, s.fired = nil, nil
				s.step(&event.Event{Type: "ticket.updated", Fields: fields, Actor: event.Actor{Type: event.ActorGateway}, Causation: event.Causation{Echo: true, Hops: 1}})
			}
			if tc.echoBefore {
				echo(map[string]any{"tags": []any{"other-rule"}}) // another rule's update
				s.wantTimer("quiet-pending", t0.Add(2*time.Hour))
			}
			fired := 0
			for range 12 { // a day nobody touches the ticket
				s.advance(2 * time.Hour)
				fired += len(s.fired)
				if len(s.fired) > 0 && tc.echoAfterFiring {
					echo(map[string]any{"priority": "high"}) // the rule's own update
				}
			}
			if fired != 1 {
				t.Fatalf("fired %d times in a quiet day, want once (clock %+v, timers %v)", fired, s.snap.Clocks["quiet-pending"], s.timers)
			}
			// A person's event starts a new quiet period.
			s.send("ticket.updated", map[string]any{"subject": "any news?"}, "customer")
			s.wantTimer("quiet-pending", s.now.Add(2*time.Hour))
		})
	}
}

// A clock paused under a pause_when that a reload removed resumes at the
// entity's next event (the time it stood paused counts as paused) instead
// of staying paused for good.
func TestClockResumesWhenPauseWhenIsRemoved(t *testing.T) {
	const rule = `rules:
  - id: pending-1h
    on: [ticket.*]
    when: { field: status, is: pending }
    for: 1h
%s    then: [ { set_priority: high } ]
`
	withPause := mustCompile(t, fmt.Sprintf(rule, "    pause_when: { field: snoozed, is: true }\n"), Options{})
	without := mustCompile(t, fmt.Sprintf(rule, ""), Options{})
	t0 := at(t, "2026-01-05T10:00:00Z")
	s := newTimerSim(t, withPause, t0)
	s.send("ticket.status_changed", map[string]any{"status": "pending"}, "agent")
	s.wantTimer("pending-1h", t0.Add(time.Hour))
	s.advance(30 * time.Minute)
	s.send("ticket.updated", map[string]any{"snoozed": true}, "agent")
	s.wantTimer("pending-1h", time.Time{})
	s.set = without // the reload
	s.advance(time.Hour)
	s.send("ticket.comment_added", map[string]any{}, "agent")
	if c := s.snap.Clocks["pending-1h"]; c == nil || !c.PausedAt.IsZero() || c.PausedTotal != time.Hour {
		t.Fatalf("clock after the reload and an event: %+v, want resumed with an hour paused", c)
	}
	s.wantTimer("pending-1h", t0.Add(2*time.Hour))
	s.advance(30 * time.Minute)
	s.wantFired("pending-1h")
}

// Openings that start or end in the hour the clock skips in spring are
// cut at the end of the gap, in Rome (where time.Date moves such a time an
// hour later) as in New York (an hour earlier): Business and Add agree.
func TestBusinessHoursInTheSkippedHour(t *testing.T) {
	cals := calendarsFrom(t, `rome:
  timezone: Europe/Rome
  hours: { sun: ["01:00-02:30", "02:30-03:15", "03:15-05:00"] }
newyork:
  timezone: America/New_York
  hours: { sun: ["01:00-02:15", "02:15-02:45", "02:45-04:00"] }
`)
	for _, tc := range []struct {
		cal, day, next string
		open           time.Duration // the Sunday's real open time
		add            time.Duration
		due            string
	}{
		// 01:00 CET - 02:00 CET (= 03:00 CEST), then 03:00-05:00 CEST.
		{"rome", "2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00", 3 * time.Hour, 2 * time.Hour, "2026-03-29T04:00:00+02:00"},
		// 01:00-02:00 EST (= 03:00 EDT), then 03:00-04:00 EDT; 02:15-02:45
		// does not exist that night.
		{"newyork", "2026-03-08T00:00:00-05:00", "2026-03-09T00:00:00-04:00", 2 * time.Hour, 90 * time.Minute, "2026-03-08T03:30:00-04:00"},
	} {
		cal := cals[tc.cal]
		if b := cal.Business(at(t, tc.day), at(t, tc.next), 0); b != tc.open {
			t.Errorf("%s: open time on the spring Sunday = %s, want %s", tc.cal, b, tc.open)
		}
		got, ok := cal.Add(at(t, tc.day), tc.add)
		if !ok || !got.Equal(at(t, tc.due)) {
			t.Errorf("%s: Add(%s, %s) = %s, want %s", tc.cal, tc.day, tc.add, got, tc.due)
		}
		if b := cal.Business(at(t, tc.day), got, 0); b != tc.add {
			t.Errorf("%s: Business back = %s, want %s", tc.cal, b, tc.add)
		}
	}
}

// A window ending at "24:00" ends at the next day's first instant, also
// where the clocks spring forward at midnight (00:00 -> 01:00: Santiago,
// Havana, the Azores, Asuncion until 2024): the day before keeps its last
// hour, and a 24/7 calendar is open every real hour.
func TestAllDayCalendarAcrossMidnightDSTChanges(t *testing.T) {
	for _, tc := range []struct{ zone, from string }{
		{"America/Santiago", "2026-09-05T12:00:00-04:00"}, // Sat; 24:00 -> 01:00 on Sun Sep 6
		{"America/Havana", "2026-03-07T12:00:00-05:00"},   // Sat; 00:00 -> 01:00 on Sun Mar 8
		{"Atlantic/Azores", "2026-03-28T12:00:00-01:00"},  // Sat; 00:00 -> 01:00 on Sun Mar 29
		{"America/Asuncion", "2024-10-05T12:00:00-04:00"}, // Sat; 00:00 -> 01:00 on Sun Oct 6 2024
	} {
		for _, hours := range []string{`{ mon-sun: "00:00-24:00" }`, `{ mon-sun: ["00:00-12:00", "12:00-24:00"] }`, `{ sat: "12:00-24:00", sun: "00:00-12:00" }`} {
			cal := calendarsFrom(t, "c:\n  timezone: "+tc.zone+"\n  hours: "+hours+"\n")["c"]
			from := at(t, tc.from)
			to := from.Add(23 * time.Hour) // Sunday noon: the night lost an hour
			if h, _, _ := to.In(cal.Location).Clock(); h != 12 {
				t.Fatalf("%s: no midnight change between %s and %s", tc.zone, from, to.In(cal.Location))
			}
			if got := cal.Business(from, to, 0); got != 23*time.Hour {
				t.Errorf("%s %s: Business from Saturday noon to Sunday noon = %s, want 23h", tc.zone, hours, got)
			}
			if due, ok := cal.Add(from, 23*time.Hour); !ok || !due.Equal(to) {
				t.Errorf("%s %s: Add(Saturday noon, 23h) = %s, want %s", tc.zone, hours, due, to)
			}
		}
	}
}

// A calendar open around the clock is open every real hour of a year in
// zones with every kind of daylight saving change (at midnight, at 02:00,
// by 30 minutes or 2 hours, backwards in summer): Business and Add count
// wall time as real time.
func TestAllDayCalendarOpenEveryHourInEveryZone(t *testing.T) {
	zones := []string{"Europe/Rome", "America/New_York", "America/Santiago", "America/Havana", "America/Asuncion",
		"Australia/Lord_Howe", "Pacific/Auckland", "Pacific/Chatham", "Asia/Beirut", "America/Sao_Paulo", "Africa/Cairo",
		"America/Scoresbysund", "Atlantic/Azores", "America/Nuuk", "Asia/Tehran", "Antarctica/Troll", "Asia/Gaza",
		"Africa/Casablanca", "Europe/Chisinau", "America/Mexico_City", "America/Miquelon", "America/St_Johns", "Europe/Dublin"}
	for _, zone := range zones {
		t.Run(zone, func(t *testing.T) {
			for _, hours := range []string{`{ mon-sun: "00:00-24:00" }`, `{ mon-sun: ["00:00-12:00", "12:00-24:00"] }`} {
				cal := calendarsFrom(t, "c:\n  timezone: "+zone+"\n  hours: "+hours+"\n")["c"]
				start := time.Date(2026, 1, 1, 0, 30, 0, 0, time.UTC)
				for h := range 366 * 24 {
					from := start.Add(time.Duration(h) * time.Hour)
					to := from.Add(7 * time.Hour)
					if got := cal.Business(from, to, 0); got != 7*time.Hour {
						t.Fatalf("%s: Business(%s, +7h) = %s, want 7h", hours, from.In(cal.Location), got)
					}
					if due, ok := cal.Add(from, 7*time.Hour); !ok || !due.Equal(to) {
						t.Fatalf("%s: Add(%s, 7h) = %s, want %s", hours, from.In(cal.Location), due.In(cal.Location), to.In(cal.Location))
					}
				}
			}
		})
	}
}

// A night shift written as the overnight error message advises, with day
// ranges: evenings mon-fri and early mornings tue-sat. The days in both
// entries have both windows; the week's open time is 5 x 8 hours.
func TestCalendarDayInTwoEntries(t *testing.T) {
	cal := calendarsFrom(t, `nights:
  timezone: Europe/Rome
  hours: { mon-fri: "22:00-24:00", tue-sat: "00:00-06:00" }
`)["nights"]
	mon := at(t, "2026-01-05T00:00:00+01:00")
	if b := cal.Business(mon, mon.AddDate(0, 0, 7), 0); b != 40*time.Hour {
		t.Fatalf("open time in the week = %s, want 40h", b)
	}
	// Friday 22:00 + 8h: the shift ends Saturday 06:00.
	fri := at(t, "2026-01-09T22:00:00+01:00")
	if due, ok := cal.Add(fri, 8*time.Hour); !ok || !due.Equal(at(t, "2026-01-10T06:00:00+01:00")) {
		t.Fatalf("Add(Fri 22:00, 8h) = %s", due)
	}
}

// A since: field may hold its time as mapped occurred_at does: an RFC 3339
// text, or Unix seconds or milliseconds as a number or a numeric text.
func TestSinceReadsUnixTimestamps(t *testing.T) {
	set := mustCompile(t, `rules:
  - id: open-since
    on: [ticket.*]
    when: { field: status, is: open }
    since: custom.opened_at
    for: 2h
    then: [ { set_priority: high } ]
`, Options{})
	t0 := at(t, "2026-01-05T10:00:00Z")
	opened := t0.Add(-30 * time.Minute)
	for _, tc := range []struct {
		name  string
		value any
		due   time.Time // zero: no clock
	}{
		{"RFC 3339 text", "2026-01-05T09:30:00Z", opened.Add(2 * time.Hour)},
		{"time", opened, opened.Add(2 * time.Hour)},
		{"Unix seconds", float64(opened.Unix()), opened.Add(2 * time.Hour)},
		{"Unix seconds as text", fmt.Sprint(opened.Unix()), opened.Add(2 * time.Hour)},
		{"Unix seconds with a fraction", fmt.Sprint(opened.Unix()) + ".5", opened.Add(2*time.Hour + 500*time.Millisecond)},
		{"Unix milliseconds", float64(opened.UnixMilli()), opened.Add(2 * time.Hour)},
		{"Unix milliseconds as text", fmt.Sprint(opened.UnixMilli()), opened.Add(2 * time.Hour)},
		{"a word", "yesterday", time.Time{}},
		{"empty", "", time.Time{}},
		{"a flag", true, time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTimerSim(t, set, t0)
			s.send("ticket.updated", map[string]any{"status": "open", "custom.opened_at": tc.value}, "agent")
			s.wantTimer("open-since", tc.due)
			if c := s.snap.Clocks["open-since"]; tc.due.IsZero() != (c == nil) || c != nil && !c.Since.Equal(tc.due.Add(-2*time.Hour)) {
				t.Fatalf("clock %+v, want one from %v", c, tc.due.Add(-2*time.Hour))
			}
		})
	}
}

// A for: or idle: duration that the rule's calendar cannot accumulate in
// the ten years its timers look ahead is a config error at the duration,
// naming the rule, the duration and the calendar; one it can is accepted.
func TestDurationBeyondCalendarIsAConfigError(t *testing.T) {
	// Every Monday from 2026-01-05 for eleven years is a holiday.
	var mondays []string
	for d := at(t, "2026-01-05T00:00:00Z"); d.Year() < 2037; d = d.AddDate(0, 0, 7) {
		mondays = append(mondays, `"`+d.Format(time.DateOnly)+`"`)
	}
	cals := calendarsFrom(t, `weekly-hour:
  timezone: Europe/Rome
  hours: { mon: "09:00-10:00" }
mondays-off:
  timezone: UTC
  hours: { mon: "09:00-17:00" }
  holidays: [`+strings.Join(mondays, ", ")+`]
support:
  timezone: Europe/Rome
  hours: { mon-fri: "09:00-18:00" }
  holidays: ["2026-12-25", "2026-12-26"]
`)
	// The bound is what Add can reach from the worst start: just after a
	// Monday's opening hour.
	afterOpening := at(t, "2026-01-05T09:00:00Z") // 10:00 in Rome
	if _, ok := cals["weekly-hour"].Add(afterOpening, 522*time.Hour); !ok {
		t.Fatal("522h not reached from a Monday after its opening")
	}
	if _, ok := cals["weekly-hour"].Add(afterOpening, 523*time.Hour); ok {
		t.Fatal("523h reached from a Monday after its opening")
	}
	rule := func(lines ...string) string {
		return "rules:\n  - id: r\n    on: [ticket.*]\n    when: { field: status, is: pending }\n" + strings.Join(lines, "\n") + "\n    then: [ { set_priority: high } ]\n"
	}
	for _, tc := range []struct {
		name, src string
		want      string // "" compiles
	}{
		{"a year of open time on an hour a week", rule("    for: 366d", "    calendar: weekly-hour"),
			`rules.yaml:5:10: rule "r": for: 366d can never be reached on calendar weekly-hour (Europe/Rome): it is open at most 522h in ten years`},
		{"just over ten years of open time", rule("    idle: 523h", "    calendar: weekly-hour"),
			`rules.yaml:5:11: rule "r": idle: 523h can never be reached on calendar weekly-hour (Europe/Rome)`},
		{"within ten years of open time", rule("    for: 500h", "    calendar: weekly-hour"), ""},
		{"exactly ten years of open time", rule("    for: 522h", "    calendar: weekly-hour"), ""},
		{"at the low end of within, beyond", rule("    for: true", "    within: [523h, 600h]", "    calendar: weekly-hour"),
			`rules.yaml:5:10: rule "r": for: true (within: from 523h) can never be reached`},
		{"holidays close every open day", rule("    for: 1h", "    calendar: mondays-off"),
			`rules.yaml:5:10: rule "r": for: 1h can never be reached on calendar mondays-off (UTC) for an episode that starts on 2025-12-30: its holidays leave it open 0h in the ten years from then`},
		{"an ordinary calendar", rule("    for: 366d", "    calendar: support"), ""},
		{"at the low end of within", rule("    idle: true", "    within: [5m, 15m]", "    calendar: weekly-hour"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := Options{Calendars: cals}
			if tc.want == "" {
				mustCompile(t, tc.src, opts)
				return
			}
			mustContain(t, compileFails(t, tc.src, opts), tc.want)
		})
	}
}

// A paused clock keeps a parked timer (so that a reload can find it): due a
// period after the pause, re-parked a period later when it fires while the
// clock still stands, and moved to the clock's due time when it resumes.
func TestPausedClockKeepsParkedTimer(t *testing.T) {
	set := mustCompile(t, `rules:
  - id: pending-1h
    on: [ticket.*]
    when: { field: status, is: pending }
    for: 1h
    pause_when: { field: snoozed, is: true }
    then: [ { set_priority: high } ]
`, Options{})
	t0 := at(t, "2026-01-05T10:00:00Z")
	s := newTimerSim(t, set, t0)
	s.send("ticket.status_changed", map[string]any{"status": "pending"}, "agent")
	s.advance(30 * time.Minute)
	s.send("ticket.updated", map[string]any{"snoozed": true}, "agent")
	paused := t0.Add(30 * time.Minute)
	if want := []TimerOp{{Rule: "pending-1h", Op: TimerMove, Due: paused.Add(parkedTimerPeriod), Parked: true}}; !reflect.DeepEqual(s.ops, want) {
		t.Fatalf("ops when paused = %+v, want %+v", s.ops, want)
	}
	// Another event while paused leaves the parked timer alone.
	s.advance(time.Hour)
	s.send("ticket.comment_added", map[string]any{}, "agent")
	if len(s.ops) != 0 {
		t.Fatalf("ops of an event while paused = %+v", s.ops)
	}
	// The parked timer fires (a year on) with the clock still paused.
	s.now = paused.Add(parkedTimerPeriod)
	s.ops = nil
	s.fire("pending-1h")
	if len(s.trace) != 1 || s.trace[0].Skipped != SkipPaused {
		t.Fatalf("trace of the parked timer = %+v", s.trace)
	}
	if want := []TimerOp{{Rule: "pending-1h", Op: TimerArm, Due: paused.Add(2 * parkedTimerPeriod), Parked: true}}; !reflect.DeepEqual(s.ops, want) {
		t.Fatalf("ops of the parked timer = %+v, want %+v", s.ops, want)
	}
	s.advance(time.Hour)
	s.send("ticket.updated", map[string]any{"snoozed": false}, "agent")
	if want := []TimerOp{{Rule: "pending-1h", Op: TimerMove, Due: s.now.Add(30 * time.Minute)}}; !reflect.DeepEqual(s.ops, want) {
		t.Fatalf("ops when resumed = %+v, want %+v", s.ops, want)
	}
	s.advance(30 * time.Minute)
	s.wantFired("pending-1h")
}

// A clock of a rule whose connector filter no longer admits the entity's
// connector (a reload edited it) ends at the entity's next event or timer,
// and its timer is cancelled.
func TestClockEndsWhenConnectorFilterLeavesEntityOut(t *testing.T) {
	const rule = `rules:
  - id: pending-1h
    on: [ticket.*]
    connector: %s
    when: { field: status, is: pending }
    for: 1h
    then: [ { set_priority: high } ]
`
	before := mustCompile(t, fmt.Sprintf(rule, "zendesk"), Options{})
	after := mustCompile(t, fmt.Sprintf(rule, "freshdesk"), Options{})
	t0 := at(t, "2026-01-05T10:00:00Z")
	for _, next := range []string{"event", "timer"} {
		t.Run(next, func(t *testing.T) {
			s := newTimerSim(t, before, t0)
			s.send("ticket.status_changed", map[string]any{"status": "pending"}, "agent")
			s.wantTimer("pending-1h", t0.Add(time.Hour))
			s.set = after // the reload
			if next == "event" {
				s.send("ticket.updated", map[string]any{"subject": "still pending"}, "agent")
				if want := []TimerOp{{Rule: "pending-1h", Op: TimerCancel}}; !reflect.DeepEqual(s.ops, want) {
					t.Fatalf("ops = %+v, want %+v", s.ops, want)
				}
			} else {
				s.advance(time.Hour)
				s.wantFired()
			}
			if c := s.snap.Clocks["pending-1h"]; c != nil {
				t.Fatalf("clock left behind: %+v", c)
			}
			s.wantTimer("pending-1h", time.Time{})
		})
	}
}
