package rules

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/event"
)

// timedRules writes n time-based rules over 25 groups in four families
// (for: on a status, idle: with an owner, since: a customer message on a
// business calendar, for: on another status), as bench/timers does.
func timedRules(n int) string {
	var b strings.Builder
	b.WriteString("rules:\n")
	for k := range n {
		g := fmt.Sprintf("g%02d", k%25)
		fmt.Fprintf(&b, "  - id: t%03d\n    on: [ticket.*]\n", k)
		switch k % 4 {
		case 0:
			fmt.Fprintf(&b, "    when: { all: [ { field: group, is: %s }, { field: status, is: pending } ] }\n    for: 24h\n    pause_when: { field: tags, includes: [snoozed] }\n", g)
		case 1:
			fmt.Fprintf(&b, "    when: { all: [ { field: group, is: %s }, { field: owner, present: true } ] }\n    idle: 48h\n", g)
		case 2:
			fmt.Fprintf(&b, "    when: { all: [ { field: group, is: %s }, { field: last_customer_message_at, after: last_agent_message_at } ] }\n    since: last_customer_message_at\n    for: 4h\n    calendar: support\n", g)
		default:
			fmt.Fprintf(&b, "    when: { all: [ { field: group, is: %s }, { field: status, is: investigating } ] }\n    for: 8h\n    calendar: support\n", g)
		}
		b.WriteString("    then: [ { set_priority: high } ]\n")
	}
	return b.String()
}

// BenchmarkSchedule100Rules is the rules engine's share of arming: one
// event on an entity, 100 time-based rules listening, clocks advanced and
// timer operations returned. It reads only the entity's own snapshot, so
// its cost does not depend on how many entities exist.
func BenchmarkSchedule100Rules(b *testing.B) {
	set := mustCompile(b, timedRules(100), Options{Calendars: testCalendars(b)})
	now := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	snap := &event.Snapshot{Fields: map[string]any{"status": "open", "group": "g03", "owner": "ann"}, LastCustomerMessageAt: now.Add(-time.Hour)}
	statuses := []string{"pending", "open", "investigating"}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		ev := &event.Event{Type: "ticket.status_changed", Connector: "generic", Entity: "ticket", Reference: "1", OccurredAt: now,
			Fields: map[string]any{"status": statuses[i%3]}}
		next := event.Apply(snap, ev)
		in := Input{Event: ev, Snapshot: next, Now: now}
		set.Evaluate(in)
		set.Schedule(in)
		snap = next
		i++
	}
}
