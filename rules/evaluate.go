package rules

import (
	"fmt"
	"time"

	"github.com/hookline/hookline/event"
)

// Input is one evaluation: an event, the entity's state and the clock.
type Input struct {
	Event *event.Event
	// Snapshot is the entity's state AFTER this event was applied (Fields
	// merged, derived fields current). Conditions read fields from
	// Snapshot.Fields first, then Event.Fields; derived fields (status_since,
	// agent_replies, ...) from the snapshot; change operators from
	// Event.Changes. May be nil (dry runs without state): then Event.Fields
	// only (derived fields may then be given as event fields).
	Snapshot *event.Snapshot
	// Now is the evaluation time (ages, durations, limits, firings).
	// time_of_day and day_of_week read the event's own time instead
	// (OccurredAt, else ReceivedAt, at most Now).
	Now time.Time
	// RuleFirings counts rule-scope firings of ruleID since a time (kept in
	// the store). nil counts 0.
	RuleFirings func(ruleID string, since time.Time) int
}

// Result is what an evaluation decided. The engine performs nothing: the
// pipeline stores Updates in the outbox, Firings in the snapshot (scope
// item) or the store (scope rule), and Trace with the event.
type Result struct {
	// Matched lists the ids of the rules that fired, in file order.
	Matched []string `json:"matched"`
	// Trace has one entry per rule considered: only rules whose `on` and
	// `connector` match the event are considered, so the trace stays small.
	Trace []TraceEntry `json:"trace"`
	// Updates are the merged intents of the fired rules, rule by rule.
	Updates []event.Update `json:"actions"`
	// Firings are what the pipeline must record for limits and guards.
	Firings []Firing `json:"firings,omitempty"`
	// Errors are runtime failures (a template error, an empty reference):
	// such a rule emits nothing and is not in Matched.
	Errors []RuleError `json:"errors,omitempty"`
}

// Firing is one firing to record: scope "item" goes to Snapshot.Fired (it
// feeds once_per_item, item limits and the per-hour cap), scope "rule" to
// the store (Input.RuleFirings).
type Firing struct {
	Rule  string    `json:"rule"`
	Scope string    `json:"scope"`
	At    time.Time `json:"at"`
}

// RuleError is a rule's runtime failure.
type RuleError struct {
	Rule    string `json:"rule"`
	Message string `json:"message"`
}

// TraceEntry explains one considered rule.
type TraceEntry struct {
	Rule    string `json:"rule"`
	Matched bool   `json:"matched"`
	// Skipped says why the rule did not fire although no condition failed:
	// "disabled", "echo of our own delivery (on_own_changes: false)",
	// "hop limit 5 reached" (these before conditions are evaluated), and,
	// after its conditions held, "once_per_item: already fired",
	// "limit 1 per 24h reached", "firing cap 20/h reached (loop guard)".
	Skipped string `json:"skipped,omitempty"`
	// Failed is the first condition that failed, with the actual value.
	Failed *FailedCondition `json:"failed,omitempty"`
	// Error is set when the rule matched but its actions failed to render.
	Error string `json:"error,omitempty"`
}

// FailedCondition is the condition that stopped a rule.
type FailedCondition struct {
	// Condition is the condition as text, e.g. `status is pending`.
	Condition string `json:"condition"`
	Field     string `json:"field"`
	Actual    any    `json:"actual"`
	// Pos is file:line:column of the condition.
	Pos string `json:"pos"`
}

// Skip reasons that do not depend on settings.
const (
	SkipDisabled = "disabled"
	SkipEcho     = "echo of our own delivery (on_own_changes: false)"
	SkipOnce     = "once_per_item: already fired"
)

// Evaluate runs the event against the rules that listen to its type and
// connector, in file order, each at most once. Actions of one rule do not
// change what later rules see: state changes come back as new events.
func (s *Set) Evaluate(in Input) Result {
	var res Result
	ev := in.Event
	if ev == nil {
		return res
	}
	if ev.Type == event.TypeTimerFired {
		return s.evaluateTimer(in)
	}
	var buf [64]int32
	cands := s.idx.candidates(ev.Type, ev.Connector, buf[:0])
	if len(cands) == 0 {
		return res
	}
	res.Trace = make([]TraceEntry, 0, len(cands))
	hopped := s.maxHops > 0 && ev.Causation.Hops >= s.maxHops
	echo := ownChange(ev)
	var data *TemplateData
	var fails []FailedCondition // one allocation for all failures of this event
	for n, i := range cands {
		r := s.rules[i]
		te := TraceEntry{Rule: r.ID}
		switch {
		case !r.Enabled:
			te.Skipped = SkipDisabled
		case echo && !r.OnOwnChanges:
			te.Skipped = SkipEcho
		case hopped:
			te.Skipped = s.hopSkip
		default:
			if r.when != nil {
				if ok, failed := r.when.match(ev, in.Snapshot, in.Now); !ok {
					if fails == nil {
						fails = make([]FailedCondition, 0, len(cands)-n)
					}
					fails = append(fails, failure(failed, ev, in.Snapshot, in.Now))
					te.Failed = &fails[len(fails)-1]
					break
				}
			}
			s.tryFire(r, in, &te, &res, &data)
		}
		res.Trace = append(res.Trace, te)
	}
	return res
}

// Run runs one rule's actions on demand for an entity regardless of its
// conditions and `on` (SmarterTrack's manual events); a disabled rule, the
// hop limit and the rule's limits still apply and are reported in the trace.
func (s *Set) Run(ruleID string, in Input) (Result, error) {
	r := s.byID[ruleID]
	if r == nil {
		return Result{}, fmt.Errorf("run rule %q: %w", ruleID, ErrUnknownRule)
	}
	if in.Event == nil {
		return Result{}, fmt.Errorf("run rule %q: no event for the entity", ruleID)
	}
	var res Result
	te := TraceEntry{Rule: r.ID}
	switch {
	case !r.Enabled:
		te.Skipped = SkipDisabled
	case s.maxHops > 0 && in.Event.Causation.Hops >= s.maxHops:
		te.Skipped = s.hopSkip
	default:
		var data *TemplateData
		s.tryFire(r, in, &te, &res, &data)
	}
	res.Trace = []TraceEntry{te}
	return res, nil
}

// tryFire applies limits and, when allowed, runs the rule's actions.
func (s *Set) tryFire(r *Rule, in Input, te *TraceEntry, res *Result, data **TemplateData) {
	if reason := s.limited(r, in); reason != "" {
		te.Skipped = reason
		return
	}
	if *data == nil {
		*data = newTemplateData(in.Event, in.Snapshot, in.Now)
	}
	updates, err := s.fire(r, in.Event, *data)
	if err != nil {
		te.Error = err.Error()
		res.Errors = append(res.Errors, RuleError{Rule: r.ID, Message: err.Error()})
		return
	}
	te.Matched = true
	res.Matched = append(res.Matched, r.ID)
	res.Updates = append(res.Updates, updates...)
	res.Firings = append(res.Firings, Firing{Rule: r.ID, Scope: ScopeItem, At: in.Now})
	if r.Limit != nil && r.Limit.Scope == ScopeRule {
		res.Firings = append(res.Firings, Firing{Rule: r.ID, Scope: ScopeRule, At: in.Now})
	}
}

// limited returns why the rule may not fire now, or "".
func (s *Set) limited(r *Rule, in Input) string {
	var fired []time.Time
	if in.Snapshot != nil {
		fired = in.Snapshot.Fired[r.ID]
	}
	if r.OncePerItem && len(fired) > 0 {
		return SkipOnce
	}
	if r.Limit != nil {
		since := in.Now.Add(-r.Limit.Per)
		n := 0
		if r.Limit.Scope == ScopeRule {
			if in.RuleFirings != nil {
				n = in.RuleFirings(r.ID, since)
			}
		} else {
			n = countSince(fired, since)
		}
		if n >= r.Limit.Max {
			return r.limitS
		}
	}
	if s.maxFire > 0 && countSince(fired, in.Now.Add(-time.Hour)) >= s.maxFire {
		return s.capSkip
	}
	return ""
}

func countSince(ts []time.Time, since time.Time) int {
	n := 0
	for _, t := range ts {
		if t.After(since) {
			n++
		}
	}
	return n
}

// failure describes a failed leaf for the trace.
func failure(c *cond, ev *event.Event, snap *event.Snapshot, now time.Time) FailedCondition {
	f := FailedCondition{Condition: c.text, Field: c.field.path, Pos: c.pos}
	if c.op == opNot && len(c.kids) == 1 {
		f.Field = c.kids[0].field.path
	}
	f.Actual = c.actual(ev, snap, now)
	return f
}

// ownChange reports whether ev is Hookline's own change coming back (an
// echo, or an event the gateway made): rules skip it unless
// on_own_changes, and it does not restart idle or since: clocks.
func ownChange(ev *event.Event) bool {
	return ev.Causation.Echo || ev.Actor.Type == event.ActorGateway
}
