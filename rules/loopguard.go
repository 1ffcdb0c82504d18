package rules

import (
	"slices"
	"strings"

	"github.com/hookline/hookline/event"
)

// typeWatches maps the verb of an event type to the field whose change it
// announces: a rule `on: [ticket.status_changed]` watches status.
var typeWatches = map[string]string{
	"status_changed":   event.FieldStatus,
	"priority_changed": event.FieldPriority,
	"assigned":         event.FieldOwner,
}

// watch is a field change that triggers a rule; targets nil means any value.
type watch struct {
	field   string
	targets []string
	text    string
	pos     string
}

// loopGuard refuses a rule whose own actions would re-fire its trigger: for
// every field the rule watches for a change (changed, changed_to, or an
// `on:` type such as ticket.status_changed), no action may write that field
// (when the trigger has no target value) or write one of the target values
// (or a template, which might render one).
func (c *compiler) loopGuard(rc *ruleCtx, r *Rule) {
	watches := collectWatches(r.when, nil)
	for _, p := range r.On {
		if strings.Contains(p, "*") {
			continue
		}
		i := strings.LastIndexByte(p, '.')
		field, ok := typeWatches[p[i+1:]]
		if !ok || slices.ContainsFunc(watches, func(w watch) bool { return w.field == field }) {
			continue
		}
		w := watch{field: field, text: "on: " + p, pos: r.Pos.String()}
		w.targets = conjunctTargets(r.when, field)
		if w.targets != nil {
			w.text += " with " + field + " in [" + strings.Join(w.targets, ", ") + "]"
		}
		watches = append(watches, w)
	}
	if len(watches) == 0 {
		return
	}
	for _, a := range r.actions {
		if a.kind == actUpdateTicket && a.connector != "" && len(r.Connectors) > 0 && !slices.Contains(r.Connectors, a.connector) {
			continue // writes to another system than the rule listens to
		}
		if a.kind != actUpdateTicket && r.DeliverTo != "" && len(r.Connectors) > 0 && !slices.Contains(r.Connectors, r.DeliverTo) {
			continue
		}
		for _, w := range watches {
			switch a.kind {
			case actSet, actUpdateTicket:
				for _, op := range a.sets {
					if op.field != w.field {
						continue
					}
					if w.targets == nil {
						c.errorf(rc.file, a.node, "rule %q would re-trigger itself: %s writes %s, and its trigger %q (%s) fires on any change of %s; write another field, or set allow_retrigger: true with a limit",
							r.ID, a.name, w.field, w.text, w.pos, w.field)
						continue
					}
					if op.v.isTemplate() {
						c.errorf(rc.file, a.node, "rule %q may re-trigger itself: %s writes %s from a template that may render %s, the target of its trigger %q (%s); write a literal value, or set allow_retrigger: true with a limit",
							r.ID, a.name, w.field, strings.Join(w.targets, " or "), w.text, w.pos)
						continue
					}
					v := event.String(op.v.lit)
					if slices.ContainsFunc(w.targets, func(t string) bool { return strings.EqualFold(t, v) }) {
						c.errorf(rc.file, a.node, "rule %q would re-trigger itself: %s sets %s to %q, the target of its trigger %q (%s); set another value, or set allow_retrigger: true with a limit",
							r.ID, a.name, w.field, v, w.text, w.pos)
					}
				}
			case actAddTags, actRemoveTags:
				if w.field == event.FieldTags {
					c.errorf(rc.file, a.node, "rule %q would re-trigger itself: %s changes tags, and its trigger %q (%s) fires on a change of tags; set allow_retrigger: true with a limit",
						r.ID, a.name, w.text, w.pos)
				}
			}
		}
	}
}

// collectWatches gathers change conditions outside any `not`.
func collectWatches(c *cond, out []watch) []watch {
	if c == nil {
		return out
	}
	switch c.op {
	case opAll, opAny:
		for _, k := range c.kids {
			out = collectWatches(k, out)
		}
	case opChanged:
		if c.flag {
			out = append(out, watch{field: c.field.path, text: c.text, pos: c.pos})
		}
	case opNotChanged:
		if !c.flag {
			out = append(out, watch{field: c.field.path, text: c.text, pos: c.pos})
		}
	case opChangedTo:
		w := watch{field: c.field.path, text: c.text, pos: c.pos}
		for _, s := range c.scalars {
			w.targets = append(w.targets, s.s)
		}
		out = append(out, w)
	}
	return out
}

// conjunctTargets returns the values a top-level is/in/changed_to condition
// restricts field to, or nil when the rule does not restrict it.
func conjunctTargets(when *cond, field string) []string {
	if when == nil {
		return nil
	}
	conj := []*cond{when}
	if when.op == opAll {
		conj = when.kids
	}
	for _, k := range conj {
		if k.field.path != field || k.listRef != nil {
			continue
		}
		switch k.op {
		case opIs, opIn, opChangedTo:
			var out []string
			for _, s := range k.scalars {
				out = append(out, s.s)
			}
			return out
		}
	}
	return nil
}
