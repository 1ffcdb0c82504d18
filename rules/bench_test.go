package rules

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/internal/yamlconf"
)

// genRules writes n rules in a realistic mix: exact event types over seven
// entities, some entity.* globs and a few catch-alls, 60% filtered on one of
// five connectors. Like real automations, each rule has one discriminating
// condition on the entity's state (a status, a change, words, a tag, a
// rating...) and zero to three more of assorted operators, sometimes in an
// any: group; then two or three actions, templates included (some shared,
// like %%TICKET_REFERENCE%%, some unique per rule).
func genRules(n int, seed uint64) string {
	rng := rand.New(rand.NewPCG(seed, 1))
	types := []string{"ticket.created", "ticket.updated", "ticket.status_changed", "ticket.priority_changed", "ticket.assigned",
		"ticket.comment_added", "ticket.deleted", "chat.started", "chat.message_received", "chat.message_sent", "chat.ended",
		"chat.transferred", "chat.idle", "message.received", "message.status", "survey.answered", "call.created", "call.ended",
		"task.created", "task.updated", "kb.created", "kb.updated", "contact.updated", "call.modified", "task.deleted"}
	entities := []string{"ticket", "chat", "message", "survey", "call", "task", "kb"}
	conns := []string{"zendesk", "spoki", "smartertrack", "freshdesk", "twilio"}
	discriminators := []string{
		"{ field: status, is: %s }",
		"{ field: status, in: [%s, on_hold] }",
		"{ field: session_state, changed_to: inactive }",
		"{ field: priority, changed_to: [high, urgent] }",
		"{ field: status, changed_to: %s }",
		"{ field: text, contains_any: [refund, %s, cancel] }",
		"{ field: tags, includes: [vip, %s] }",
		"{ field: survey_rating, lte: 2 }",
		"{ field: agent_replies, gte: 3 }",
		"{ field: custom.plan, in: [gold, platinum] }",
		"{ field: group, is: %s }",
		"{ field: priority, is: normal }",
	}
	others := []string{
		"{ field: priority, gte: high }",
		"{ field: priority, is_not: low }",
		"{ field: status, changed: true }",
		"{ field: subject, not_contains: spam }",
		"{ field: tags, excludes: [no_automation] }",
		"{ field: status_since, gt: 2h }",
		"{ field: owner, present: true }",
		"{ field: actor.type, is: customer }",
		`{ time_of_day: "09:00-18:00" }`,
		"{ day_of_week: mon-fri }",
		`{ field: customer.email, matches: "@(example|test)\\.com$" }`,
		"{ not: { field: group, is: %s } }",
	}
	words := []string{"open", "new", "pending", "solved", "tier2", "urgent", "billing"}
	fill := func(c string) string {
		if strings.Contains(c, "%s") {
			return fmt.Sprintf(c, words[rng.IntN(len(words))])
		}
		return c
	}
	var b strings.Builder
	b.WriteString("rules:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - id: rule-%04d\n", i)
		switch x := rng.IntN(100); {
		case x < 1:
			b.WriteString("    on: \"*\"\n")
		case x < 10:
			fmt.Fprintf(&b, "    on: \"%s.*\"\n", entities[rng.IntN(len(entities))])
		case x < 20:
			fmt.Fprintf(&b, "    on: [%s, %s]\n", types[rng.IntN(len(types))], types[rng.IntN(len(types))])
		default:
			fmt.Fprintf(&b, "    on: %s\n", types[rng.IntN(len(types))])
		}
		if rng.IntN(100) < 60 {
			fmt.Fprintf(&b, "    connector: %s\n", conns[rng.IntN(len(conns))])
		}
		b.WriteString("    when:\n      all:\n")
		b.WriteString("        - " + fill(discriminators[rng.IntN(len(discriminators))]) + "\n")
		k := rng.IntN(4)
		if k >= 2 && rng.IntN(3) == 0 {
			b.WriteString("        - any:\n")
			for range k {
				b.WriteString("            - " + fill(others[rng.IntN(len(others))]) + "\n")
			}
		} else {
			for range k {
				b.WriteString("        - " + fill(others[rng.IntN(len(others))]) + "\n")
			}
		}
		if rng.IntN(5) == 0 {
			b.WriteString("    limit: { max: 1, per: 1h }\n")
		}
		b.WriteString("    then:\n")
		switch rng.IntN(3) {
		case 0:
			fmt.Fprintf(&b, "      - set_group: group_%d\n      - add_tags: [auto, \"{{ .Rule }}\"]\n", i%40)
		case 1:
			b.WriteString("      - update_ticket: { reference: \"%%TICKET_REFERENCE%%\", category: Billing }\n")
			b.WriteString("      - add_tags: escalated\n")
		default:
			fmt.Fprintf(&b, "      - set_group: tier2\n      - send_message: \"Rule %d: ticket {{ .Event.Reference }} is {{ .Fields.status }}\"\n", i)
		}
		if rng.IntN(3) == 0 {
			fmt.Fprintf(&b, "      - call_webhook: { url: \"https://hooks.example.com/r%d/{{ .Event.Reference }}\", body: { status: \"{{ .Fields.status }}\", rule: \"{{ .Rule }}\" } }\n", i)
		}
	}
	return b.String()
}

func benchSet(tb testing.TB) *Set {
	tb.Helper()
	return mustCompile(tb, genRules(1000, 7), Options{})
}

func benchInput() Input {
	now := time.Date(2025, 6, 2, 10, 0, 0, 0, time.UTC)
	ev := &event.Event{ID: "e", Connector: "zendesk", Type: "ticket.updated", Entity: "ticket", Reference: "42",
		Actor:   event.Actor{Type: "agent", ID: "a1"},
		Fields:  map[string]any{"status": "pending", "priority": "normal", "session_state": "active", "text": "hello there", "subject": "a question"},
		Changes: map[string]event.Change{"priority": {From: "low", To: "normal"}},
		Vars:    map[string]string{"TICKET_REFERENCE": "42"}}
	snap := &event.Snapshot{Fields: map[string]any{"status": "pending", "priority": "normal", "tags": []string{"basic"}, "owner": "a1", "group": "tier1",
		"customer.email": "x@mail.org", "custom.plan": "basic"}, StatusSince: now.Add(-30 * time.Minute), AgentReplies: 1}
	return Input{Event: ev, Snapshot: snap, Now: now}
}

// BenchmarkEvaluate1000Rules evaluates one event against 1,000 rules and
// reports the median (p50) time per evaluation.
func BenchmarkEvaluate1000Rules(b *testing.B) {
	s := benchSet(b)
	in := benchInput()
	res := s.Evaluate(in)
	samples := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		s.Evaluate(in)
		samples = append(samples, time.Since(t0))
	}
	b.StopTimer()
	b.ReportMetric(float64(len(res.Trace)), "considered")
	b.ReportMetric(float64(len(res.Matched)), "matched")
	slices.Sort(samples)
	b.ReportMetric(float64(samples[len(samples)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(samples[len(samples)*99/100].Nanoseconds()), "p99-ns")
}

// BenchmarkEvaluate1000RulesOtherEvent is the same with another event type and connector.
func BenchmarkEvaluate1000RulesOtherEvent(b *testing.B) {
	s := benchSet(b)
	in := benchInput()
	in.Event.Type = "kb.created"
	in.Event.Connector = "spoki"
	res := s.Evaluate(in)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		s.Evaluate(in)
	}
	b.StopTimer()
	b.ReportMetric(float64(len(res.Trace)), "considered")
	b.ReportMetric(float64(len(res.Matched)), "matched")
}

// BenchmarkCompile1000Rules compiles parsed YAML of 1,000 rules.
func BenchmarkCompile1000Rules(b *testing.B) {
	n, errs := yamlconf.Parse("rules.yaml", []byte(genRules(1000, 7)), nil)
	if errs != nil {
		b.Fatal(errs)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, errs := Compile([]File{{Name: "rules.yaml", Node: n}}, Options{}); errs != nil {
			b.Fatal(errs)
		}
	}
}

// BenchmarkParseAndCompile1000Rules includes YAML parsing.
func BenchmarkParseAndCompile1000Rules(b *testing.B) {
	src := []byte(genRules(1000, 7))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		n, _ := yamlconf.Parse("rules.yaml", src, nil)
		if _, errs := Compile([]File{{Name: "rules.yaml", Node: n}}, Options{}); errs != nil {
			b.Fatal(errs)
		}
	}
}

const noMatchTree = `{ all: [
  { field: tags, excludes: [no_automation] },
  { any: [ { field: status, in: [open, new] }, { field: priority, gt: high }, { field: text, contains_any: [refund, billing] } ] },
  { not: { field: owner, absent: true } },
  { field: status_since, gt: 2h } ] }`

// BenchmarkConditionNoMatch evaluates a compiled, non-matching condition
// tree: it must report 0 allocs/op.
func BenchmarkConditionNoMatch(b *testing.B) {
	s := mustCompile(b, oneRule(noMatchTree), Options{})
	c := s.Rule("r").when
	in := benchInput()
	if ok, _ := c.match(in.Event, in.Snapshot, in.Now); ok {
		b.Fatal("tree matches")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		c.match(in.Event, in.Snapshot, in.Now)
	}
}

// TestConditionEvalAllocatesNothing checks every operator, matching and not.
func TestConditionEvalAllocatesNothing(t *testing.T) {
	conds := []string{
		noMatchTree,
		"{ field: status, is: pending }", "{ field: status, is: open }", "{ field: status, is_not: open }",
		"{ field: status, in: [open, pending] }", "{ field: status, not_in: [open] }",
		"{ field: owner, in: { field: custom.on_leave } }",
		"{ field: priority, changed: true }", "{ field: status, changed: true }", "{ field: priority, changed_to: normal }",
		"{ field: priority, changed_from: high }", "{ field: status, not_changed: true }",
		"{ field: text, contains: [hello, there] }", "{ field: text, not_contains: refund }", "{ field: text, contains_any: [refund, billing] }",
		"{ field: text, contains: HÉLLO }",
		"{ field: priority, gt: low }", "{ field: priority, lte: low }", "{ field: priority, between: [normal, urgent] }",
		"{ field: agent_replies, gte: 3 }", "{ field: survey_rating, lt: 3 }", "{ field: custom.wait, gt: 5m }", "{ field: custom.wait_s, gt: 5m }",
		"{ field: status_since, gt: 2h }", "{ field: status_since, between: [10m, 1h] }", `{ field: custom.due, lt: "2026-01-01T00:00:00Z" }`,
		"{ field: owner, present: true }", "{ field: owner, absent: true }",
		"{ field: tags, includes: [vip, gold] }", "{ field: tags, excludes: basic }", "{ field: tags, includes_all: [basic, x] }",
		`{ time_of_day: "09:00-18:00", tz: Europe/Rome }`, "{ day_of_week: [sat, sun], tz: America/New_York }",
		"{ field: actor.type, is: customer }", "{ field: event.type, is: ticket.updated }", "{ field: vars.TICKET_REFERENCE, is: 42 }",
		"{ field: custom.nested.deep, is: x }",
	}
	if !raceEnabled {
		conds = append(conds, `{ field: customer.email, matches: "@example\\.com$" }`)
	}
	in := benchInput()
	in.Snapshot.Fields["custom.on_leave"] = []any{"zed", "a1"}
	in.Snapshot.Fields["custom.wait"] = "7m"
	in.Snapshot.Fields["custom.wait_s"] = 120.0
	in.Snapshot.Fields["custom.due"] = "2025-12-01T00:00:00Z"
	in.Snapshot.Fields["custom"] = map[string]any{"nested": map[string]any{"deep": "y"}}
	for _, src := range conds {
		s := mustCompile(t, oneRule(src), Options{})
		c := s.Rule("r").when
		if n := testing.AllocsPerRun(100, func() { c.match(in.Event, in.Snapshot, in.Now) }); n != 0 {
			t.Errorf("%s: %v allocs per evaluation, want 0", src, n)
		}
	}
}

// TestIndexedOutRulesCostNothing: rules filtered out by the index appear
// nowhere, and an event no rule listens to allocates nothing.
func TestIndexedOutRulesCostNothing(t *testing.T) {
	// Without the catch-all rules (on: "*"), nobody listens to this type.
	s := mustCompile(t, strings.ReplaceAll(genRules(1000, 7), `on: "*"`, "on: never.happens"), Options{})
	in := benchInput()
	in.Event.Type = "nobody.listens"
	if n := testing.AllocsPerRun(100, func() { s.Evaluate(in) }); n != 0 {
		t.Errorf("%v allocs for an event no rule listens to", n)
	}
	in.Event.Type = "ticket.updated"
	res := s.Evaluate(in)
	for _, te := range res.Trace {
		r := s.Rule(te.Rule)
		listens := false
		for _, p := range r.On {
			if p == "ticket.updated" || p == "ticket.*" {
				listens = true
			}
		}
		if !listens || (len(r.Connectors) > 0 && r.Connectors[0] != "zendesk") {
			t.Errorf("trace holds %s (on %v, connector %v)", r.ID, r.On, r.Connectors)
		}
	}
	if len(res.Trace) == 0 || len(res.Trace) > 200 {
		t.Errorf("considered %d of 1000", len(res.Trace))
	}
}
