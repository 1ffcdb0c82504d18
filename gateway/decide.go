package gateway

import (
	"fmt"
	"time"

	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/rules"
	"github.com/hookline/hookline/store"
)

// firingWindow is how long a snapshot keeps a rule's firing times: the
// loop guard's hourly cap needs an hour, a per-item limit its own window.
// The latest firing is always kept, for once_per_item.
func firingWindow(set *rules.Set, rule string) time.Duration {
	window := time.Hour
	if r := set.Rule(rule); r != nil && r.Limit != nil && r.Limit.Scope == rules.ScopeItem && r.Limit.Per > window {
		window = r.Limit.Per
	}
	return window
}

// decision is what the pure part of the pipeline decided for one event.
type decision struct {
	Next   *event.Snapshot
	Result rules.Result
	// Timers are the timer operations the time-based rules' clocks need
	// (Next.Clocks already reflects them).
	Timers []rules.TimerOp
}

// decide folds ev into the prior snapshot and runs the rules over it. It is
// shared by the pipeline (with the store's counters) and by dry runs and
// config tests (with the run's own, in memory), so all three decide the
// same way.
//
// With run set, the named rule's actions run on demand regardless of its
// conditions (manual events); other rules are not evaluated. After the
// rules, the clocks of the time-based rules that listen to the event are
// advanced (rules.Set.Schedule) and the timer operations returned.
// A timer.fired event is evaluated for its rule only (ev.Rule).
//
// applied, when not nil, is event.Apply(prior, ev) already done by the
// caller (ev.Changes then already holds the computed changes).
func decide(set *rules.Set, ev *event.Event, prior, applied *event.Snapshot, now time.Time, firings ruleFirings, run string) (decision, error) {
	next := applied
	if next == nil {
		next = event.Apply(prior, ev)
	}
	var res rules.Result
	in := rules.Input{Event: ev, Snapshot: next, Now: now, RuleFirings: firings.Count}
	if run != "" {
		var err error
		if res, err = set.Run(run, in); err != nil {
			return decision{}, err
		}
	} else if set != nil {
		res = set.Evaluate(in)
	}
	for _, f := range res.Firings {
		switch f.Scope {
		case rules.ScopeItem:
			next.RecordFiring(f.Rule, f.At, firingWindow(set, f.Rule))
		case rules.ScopeRule:
			if err := firings.Record(f.Rule, f.At); err != nil {
				return decision{}, fmt.Errorf("record firing of %s: %w", f.Rule, err)
			}
		}
	}
	var timers []rules.TimerOp
	if set != nil {
		timers = set.Schedule(in)
	}
	return decision{Next: next, Result: res, Timers: timers}, nil
}

// ruleFirings counts and records the firings of rules whose limit has
// scope rule (limit: { scope: rule }): the store's in the pipeline, the
// run's own in dry runs and config tests.
type ruleFirings interface {
	// Count is how many times rule fired at or after since.
	Count(rule string, since time.Time) int
	// Record notes that rule fired at at.
	Record(rule string, at time.Time) error
}

// storeFirings are the rule firings of the pipeline's transaction. A
// count it cannot read counts 0 for the rules (whose callback has no
// error) and is kept, the first one, for err: the caller fails the event
// with it, as it fails one whose firing cannot be recorded.
type storeFirings struct {
	tx       *store.Tx
	firstErr *error
}

func newStoreFirings(tx *store.Tx) storeFirings {
	return storeFirings{tx: tx, firstErr: new(error)}
}

// Count reads the store's count; an error counts 0 and is kept for err.
func (f storeFirings) Count(rule string, since time.Time) int {
	n, err := f.tx.RuleFirings(rule, since)
	if err != nil && *f.firstErr == nil {
		*f.firstErr = fmt.Errorf("read firings of rule %s: %w", rule, err)
	}
	return n
}

// err is the first error Count met, nil when none.
func (f storeFirings) err() error { return *f.firstErr }

// Record stores the firing in the transaction.
func (f storeFirings) Record(rule string, at time.Time) error { return f.tx.RecordRuleFiring(rule, at) }

// EventTrace is what the gateway keeps with every event to explain it: the
// rules' trace plus what the pipeline did with their decisions.
type EventTrace struct {
	Matched    []string           `json:"matched"`
	Rules      []rules.TraceEntry `json:"rules"`
	Errors     []rules.RuleError  `json:"errors,omitempty"`
	Deliveries []string           `json:"deliveries,omitempty"`
	Suppressed []string           `json:"suppressed,omitempty"`
	Guards     []string           `json:"guards,omitempty"`
	// Timers are the timers this event armed, moved or cancelled.
	Timers []rules.TimerOp `json:"timers,omitempty"`
	// Warnings are the mapping's warnings about this event: what it took
	// in a way the admin should know of (an occurred_at it could not read,
	// replaced by the receive time).
	Warnings []string `json:"warnings,omitempty"`
}
