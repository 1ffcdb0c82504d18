package rules

import (
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/event"
)

// timedRule is one rule of id r on ticket events with the given time keys
// (YAML lines of the rule, indented by four spaces).
func timedRule(keys ...string) string {
	src := "rules:\n  - id: r\n    on: [ticket.*]\n    when: { field: status, is: pending }\n"
	for _, k := range keys {
		src += "    " + k + "\n"
	}
	return src + "    then: [ { set_priority: high } ]\n"
}

func TestTimerDue(t *testing.T) {
	rome := mustLoc(t, "Europe/Rome")
	since := time.Date(2026, 1, 9, 16, 0, 0, 0, rome) // a Friday, 16:00 in Rome
	cals := testCalendars(t)
	cases := []struct {
		name  string
		src   string
		rule  string
		clock *event.RuleClock
		due   time.Time
		ok    bool
	}{
		{"for: wall clock", timedRule("for: 48h"), "r", &event.RuleClock{Since: since}, since.Add(48 * time.Hour), true},
		{"paused time is added", timedRule("for: 1h"), "r", &event.RuleClock{Since: since, PausedTotal: 30 * time.Minute}, since.Add(90 * time.Minute), true},
		{"idle: with within: and no duration fires at the low end", timedRule("idle: true", "within: [5m, 15m]"), "r", &event.RuleClock{Since: since}, since.Add(5 * time.Minute), true},
		// 2h on Friday, 2h on Monday 12 January.
		{"calendar", timedRule("for: 4h", "calendar: support"), "r", &event.RuleClock{Since: since}, time.Date(2026, 1, 12, 11, 0, 0, 0, rome), true},
		{"disabled rule keeps its due", timedRule("for: 2h", "enabled: false"), "r", &event.RuleClock{Since: since}, since.Add(2 * time.Hour), true},
		{"done clock", timedRule("for: 1h"), "r", &event.RuleClock{Since: since, Done: true}, time.Time{}, false},
		{"paused clock: parked a year after the pause", timedRule("for: 1h"), "r", &event.RuleClock{Since: since, PausedAt: since.Add(time.Minute)}, since.Add(time.Minute + parkedTimerPeriod), true},
		{"paused for longer: parked a period later", timedRule("for: 1h"), "r", &event.RuleClock{Since: since.Add(-parkedTimerPeriod), PausedAt: since.Add(-parkedTimerPeriod - time.Minute)}, since.Add(parkedTimerPeriod - time.Minute), true},
		{"no clock", timedRule("for: 1h"), "r", nil, time.Time{}, false},
		{"unknown rule", timedRule("for: 1h"), "gone", &event.RuleClock{Since: since}, time.Time{}, false},
		{"not time-based", timedRule(), "r", &event.RuleClock{Since: since}, time.Time{}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			set := mustCompile(t, tc.src, Options{Calendars: cals})
			due, ok := set.TimerDue(tc.rule, tc.clock, since)
			if ok != tc.ok || !due.Equal(tc.due) {
				t.Fatalf("TimerDue = %v, %v; want %v, %v", due, ok, tc.due, tc.ok)
			}
			if ok && due.Location() != time.UTC {
				t.Fatalf("due %v is not in UTC", due)
			}
		})
	}
}

// TimerDue agrees with what Schedule arms for the same clock.
func TestTimerDueMatchesSchedule(t *testing.T) {
	for _, keys := range [][]string{{"for: 48h"}, {"for: 4h", "calendar: support"}, {"idle: 30m"}} {
		set := mustCompile(t, timedRule(keys...), Options{Calendars: testCalendars(t)})
		now := time.Date(2026, 1, 9, 15, 0, 0, 0, time.UTC)
		ev := mkEvent("ticket.updated", map[string]any{"status": "pending"})
		ev.OccurredAt = now
		snap := &event.Snapshot{Key: ev.Key(), Fields: map[string]any{"status": "pending"}}
		ops := set.Schedule(Input{Event: ev, Snapshot: snap, Now: now})
		if len(ops) != 1 || ops[0].Op != TimerArm {
			t.Fatalf("%v: ops %+v", keys, ops)
		}
		due, ok := set.TimerDue("r", snap.Clocks["r"], now)
		if !ok || !due.Equal(ops[0].Due) {
			t.Fatalf("%v: TimerDue %v %v, Schedule armed %v", keys, due, ok, ops[0].Due)
		}
	}
}

func TestTimingSignature(t *testing.T) {
	const cal = "support:\n  timezone: Europe/Rome\n  hours: { mon-fri: \"09:00-18:00\" }\n  holidays: [\"2026-01-06\"]\n"
	base := timedRule("for: 48h", "calendar: support")
	sig := func(t *testing.T, src, cals string) string {
		t.Helper()
		return mustCompile(t, src, Options{Calendars: calendarsFrom(t, cals)}).TimingSignature("r")
	}
	want := sig(t, base, cal)
	if !strings.HasPrefix(want, signatureVersion) {
		t.Fatalf("signature %q lacks its version", want)
	}
	cases := []struct {
		name, src, cals string
		same            bool
	}{
		{"identical", base, cal, true},
		{"condition and actions do not count", strings.Replace(strings.Replace(base, "is: pending", "is: open", 1), "high", "urgent", 1), cal, true},
		{"pause_when", timedRule("for: 48h", "calendar: support", "pause_when: { field: priority, is: low }"), cal, false},
		{"connector filter", timedRule("for: 48h", "calendar: support", "connector: zendesk"), cal, false},
		{"enabled does not count", timedRule("for: 48h", "calendar: support", "enabled: false"), cal, true},
		{"holiday order does not count", base, strings.Replace(cal, `["2026-01-06"]`, `["2026-01-06", "2026-01-06"]`, 1), true},
		{"duration", timedRule("for: 24h", "calendar: support"), cal, false},
		{"kind", timedRule("idle: 48h", "calendar: support"), cal, false},
		{"within", timedRule("for: 48h", "within: [48h, 50h]", "calendar: support"), cal, false},
		{"since", timedRule("for: 48h", "since: created_at", "calendar: support"), cal, false},
		{"no calendar", timedRule("for: 48h"), cal, false},
		{"calendar name", strings.Replace(base, "calendar: support", "calendar: other", 1), strings.Replace(cal, "support:", "other:", 1), false},
		{"calendar hours", base, strings.Replace(cal, "09:00-18:00", "08:00-18:00", 1), false},
		{"calendar days", base, strings.Replace(cal, "mon-fri", "mon-sat", 1), false},
		{"calendar holidays", base, strings.Replace(cal, "2026-01-06", "2026-01-07", 1), false},
		{"calendar zone", base, strings.Replace(cal, "Europe/Rome", "Europe/Paris", 1), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := sig(t, tc.src, tc.cals)
			if (got == want) != tc.same {
				t.Fatalf("signature %q vs %q: same = %v, want %v", got, want, got == want, tc.same)
			}
		})
	}
}

func TestTimingSignatureOfNonTimedRules(t *testing.T) {
	src := timedRule() + "  - id: t\n    on: [ticket.*]\n    idle: 1h\n    then: [ { set_priority: high } ]\n"
	set := mustCompile(t, src, Options{})
	if s := set.TimingSignature("r"); s != "" {
		t.Fatalf("event rule signature %q", s)
	}
	if s := set.TimingSignature("missing"); s != "" {
		t.Fatalf("unknown rule signature %q", s)
	}
	all := set.TimingSignatures()
	if len(all) != 1 || all["t"] == "" || all["t"] != set.TimingSignature("t") {
		t.Fatalf("TimingSignatures = %v", all)
	}
}

func TestReclock(t *testing.T) {
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	snap := &event.Snapshot{Key: event.EntityKey{Connector: "zendesk", Entity: "ticket", Reference: "42"},
		Fields: map[string]any{"status": "pending"}, StatusSince: t0, LastActivityAt: t0.Add(30 * time.Minute)}
	const holds, fails = "pause_when: { field: status, is: pending }", "pause_when: { field: status, is: snoozed }"
	now := t0.Add(3 * time.Hour)
	cases := []struct {
		name    string
		src     string
		clock   *event.RuleClock
		want    *event.RuleClock
		changed bool
	}{
		{"not measured from a field", timedRule("for: 1h"), &event.RuleClock{Since: t0}, &event.RuleClock{Since: t0}, false},
		{"the field still holds the start", timedRule("for: 1h", "since: status_since"), &event.RuleClock{Since: t0, PausedTotal: time.Minute}, &event.RuleClock{Since: t0, PausedTotal: time.Minute}, false},
		{"the field moved: a fresh episode", timedRule("for: 1h", "since: last_activity_at"), &event.RuleClock{Since: t0, PausedTotal: time.Minute, Done: true},
			&event.RuleClock{Since: t0.Add(30 * time.Minute)}, true},
		{"a paused clock stays paused, from the new start", timedRule("for: 1h", "since: last_activity_at", holds), &event.RuleClock{Since: t0, PausedAt: t0.Add(time.Minute)},
			&event.RuleClock{Since: t0.Add(30 * time.Minute), PausedAt: t0.Add(30 * time.Minute)}, true},
		{"a window already past", timedRule("for: 1h", "since: last_activity_at", "within: [1h, 2h]"), &event.RuleClock{Since: t0},
			&event.RuleClock{Since: t0.Add(30 * time.Minute), Done: true}, true},
		{"the entity lacks the field: the episode ends", timedRule("for: 1h", "since: last_customer_message_at"), &event.RuleClock{Since: t0}, nil, true},
		{"no clock", timedRule("for: 1h", "since: last_activity_at"), nil, nil, false},
		{"pause_when removed: the clock resumes at now", timedRule("for: 1h"), &event.RuleClock{Since: t0, PausedAt: t0.Add(time.Hour), PausedTotal: time.Minute},
			&event.RuleClock{Since: t0, PausedTotal: 2*time.Hour + time.Minute}, true},
		{"pause_when no longer holds: the clock resumes at now", timedRule("for: 1h", fails), &event.RuleClock{Since: t0, PausedAt: t0.Add(time.Hour)},
			&event.RuleClock{Since: t0, PausedTotal: 2 * time.Hour}, true},
		{"pause_when removed, on a calendar: closed time is not paused time", timedRule("for: 1h", "calendar: support"),
			&event.RuleClock{Since: t0.Add(-20 * time.Hour), PausedAt: t0.Add(-19 * time.Hour)}, // Sunday 16:00 in Rome
			&event.RuleClock{Since: t0.Add(-20 * time.Hour), PausedTotal: 5 * time.Hour}, true}, // Monday 09:00-14:00
		{"pause_when still holds: the clock stays paused", timedRule("for: 1h", holds), &event.RuleClock{Since: t0, PausedAt: t0.Add(time.Hour)},
			&event.RuleClock{Since: t0, PausedAt: t0.Add(time.Hour)}, false},
		{"pause_when holds now: the clock pauses at now", timedRule("for: 1h", holds), &event.RuleClock{Since: t0},
			&event.RuleClock{Since: t0, PausedAt: now}, true},
		{"a done clock stays done", timedRule("for: 1h"), &event.RuleClock{Since: t0, PausedAt: t0.Add(time.Hour), Done: true},
			&event.RuleClock{Since: t0, PausedAt: t0.Add(time.Hour), Done: true}, false},
		{"resumed past its window: done", timedRule("for: 1h", "within: [1h, 2h]"), &event.RuleClock{Since: t0, PausedAt: t0.Add(150 * time.Minute)},
			&event.RuleClock{Since: t0, PausedTotal: 30 * time.Minute, Done: true}, true},
		{"the connector filter still admits the entity", timedRule("for: 1h", "connector: [generic, zendesk]"), &event.RuleClock{Since: t0}, &event.RuleClock{Since: t0}, false},
		{"the connector filter leaves the entity out: the episode ends", timedRule("for: 1h", "connector: generic", holds), &event.RuleClock{Since: t0, PausedAt: t0.Add(time.Hour)}, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			set := mustCompile(t, tc.src, Options{Calendars: testCalendars(t)})
			var before event.RuleClock
			if tc.clock != nil {
				before = *tc.clock
			}
			got, changed := set.Reclock("r", snap, tc.clock, now)
			if changed != tc.changed || (got == nil) != (tc.want == nil) || got != nil && *got != *tc.want {
				t.Fatalf("Reclock = %+v, %v; want %+v, %v", got, changed, tc.want, tc.changed)
			}
			if tc.clock != nil && *tc.clock != before {
				t.Fatalf("Reclock changed the clock it was given: %+v, was %+v", *tc.clock, before)
			}
		})
	}
}
