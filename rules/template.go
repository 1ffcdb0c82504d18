package rules

import (
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/internal/yamlconf"
	"gopkg.in/yaml.v3"
)

// TemplateData is what action templates see:
//
//	{{ .Event.Reference }}  {{ .Event.Actor.Name }}  {{ .Fields.status }}
//	{{ .Var "TICKET_REFERENCE" }} (or %%TICKET_REFERENCE%%)  {{ .Field "customer.email" }}
//	{{ .Snapshot.AgentReplies }}  {{ .Now.Format "2006-01-02" }}  {{ .Rule }}
type TemplateData struct {
	// Event is the event being evaluated.
	Event *event.Event
	// Fields is the entity's state: snapshot fields with the event's fields
	// added where the snapshot lacks them; a null field (one a change
	// cleared) is left out, so it is absent like a field never set. Keys
	// are flat paths: write
	// {{ index .Fields "custom.order_id" }} or {{ .Field "custom.order_id" }}
	// for dotted names.
	Fields map[string]any
	// Snapshot is the entity snapshot after the event (never nil in
	// templates: an empty snapshot stands in when there is no state).
	Snapshot *event.Snapshot
	// Vars are the event's template variables.
	Vars map[string]string
	// Now is the evaluation time.
	Now time.Time
	// Rule is the id of the rule whose action is rendered.
	Rule string

	snap  *event.Snapshot // the real snapshot (may be nil)
	probe bool            // compile-time check: unknown variables and fields render empty
}

// Var returns the event variable name; it fails when the event has no such
// variable, so that a template never renders an empty reference silently.
func (d *TemplateData) Var(name string) (string, error) {
	if d.probe {
		return "x", nil
	}
	if v, ok := d.Vars[name]; ok {
		return v, nil
	}
	return "", fmt.Errorf("%w %q (the event carries: %s)", ErrUnknownVar, name, strings.Join(sortedKeys(d.Vars), ", "))
}

// Field returns a field of the entity (snapshot first, then the event),
// including derived fields (status_since, agent_replies, ...) and actor.*,
// event.*; an absent field renders as "".
func (d *TemplateData) Field(path string) any {
	if d.probe {
		return ""
	}
	f := newFieldRef(path)
	v := f.get(d.Event, d.snap).box()
	if v == nil {
		return ""
	}
	return v
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// newTemplateData builds the data for one event. The merged Fields map and
// the stand-in snapshot are built only when a text/template needs them.
func newTemplateData(ev *event.Event, snap *event.Snapshot, now time.Time) *TemplateData {
	vars := ev.Vars
	if vars == nil {
		vars = map[string]string{}
	}
	return &TemplateData{Event: ev, Snapshot: snap, snap: snap, Vars: vars, Now: now}
}

// complete builds what the fast path skips: the merged Fields and a
// non-nil Snapshot.
func (d *TemplateData) complete() {
	if d.Fields != nil {
		return
	}
	ev, snap := d.Event, d.snap
	fields := make(map[string]any, len(ev.Fields)+8)
	if snap != nil {
		for k, v := range snap.Fields {
			if v != nil {
				fields[k] = v
			}
		}
	}
	for k, v := range ev.Fields {
		if _, ok := fields[k]; !ok && v != nil {
			fields[k] = v
		}
	}
	d.Fields = fields
	if d.Snapshot == nil {
		d.Snapshot = &event.Snapshot{Key: ev.Key(), Fields: fields}
	}
}

// lookup reads a key of the merged fields without building them. A null
// (a field a change cleared) is absent, as in complete.
func (d *TemplateData) lookup(key string) (any, bool) {
	if d.Fields != nil {
		v, ok := d.Fields[key]
		return v, ok
	}
	if d.snap != nil {
		if v := d.snap.Fields[key]; v != nil {
			return v, true
		}
	}
	v := d.Event.Fields[key]
	return v, v != nil
}

// tval is an action value: a literal or a template.
type tval struct {
	lit  any
	tmpl *yamlconf.Renderer // plan when it has one, else text/template
	fast *fastTemplate      // set for simple templates: rendered without either
	src  string
	pos  yamlconf.Pos
}

func (v *tval) isTemplate() bool { return v.tmpl != nil || v.fast != nil }

// render returns the literal, or the template's output.
func (v *tval) render(d *TemplateData) (any, error) {
	if v.fast != nil {
		return v.fast.execute(d)
	}
	if v.tmpl == nil {
		return v.lit, nil
	}
	d.complete()
	return v.tmpl.Execute(d)
}

// renderString renders to text.
func (v *tval) renderString(d *TemplateData) (string, error) {
	x, err := v.render(d)
	if err != nil {
		return "", err
	}
	return event.String(x), nil
}

var dotVar = regexp.MustCompile(`\.Var\s+"([A-Za-z_][A-Za-z0-9_]*)"`)

var cantEvaluate = regexp.MustCompile(`can't evaluate field (\w+) in type \*?([\w.]+)`)

// value compiles a scalar into a literal or a template, checking variables
// against the rule's connectors and trying the template against an empty
// event to catch misspelt names at load time.
func (c *compiler) value(rc *ruleCtx, n *yaml.Node, what string) (tval, bool) {
	n = yamlconf.Resolve(n)
	tv := tval{pos: yamlconf.At(rc.file, n)}
	if n.Kind != yaml.ScalarNode {
		c.errorf(rc.file, n, "%s: expected a value or a template, got %s", what, yamlconf.KindName(n))
		return tv, false
	}
	if !yamlconf.IsTemplate(n.Value) {
		v, err := yamlconf.ToValue(n)
		if err != nil {
			c.errorf(rc.file, n, "%s: %v", what, err)
			return tv, false
		}
		tv.lit = v
		return tv, true
	}
	return c.template(rc, n, n.Value, what)
}

// template compiles src (at node n) as an action template.
func (c *compiler) template(rc *ruleCtx, n *yaml.Node, src, what string) (tval, bool) {
	tv := tval{pos: yamlconf.At(rc.file, n), src: src}
	ok := c.checkVars(rc, n, src, what)
	if tv.fast = compileFast(src); tv.fast != nil {
		return tv, ok
	}
	t, cached := c.templates[src]
	if !cached {
		var err error
		if t, err = yamlconf.CompileStrictTemplate("template", src); err != nil {
			c.errorf(rc.file, n, "%s: %v", what, err)
			return tv, false
		}
		c.templates[src] = t
	}
	tv.tmpl = yamlconf.NewRenderer(t)
	if cached {
		return tv, ok
	}
	probe := &TemplateData{Event: &event.Event{}, Fields: map[string]any{}, Snapshot: &event.Snapshot{}, Vars: map[string]string{}, probe: true}
	if _, err := yamlconf.Execute(t, probe); err != nil {
		if m := cantEvaluate.FindStringSubmatch(err.Error()); m != nil {
			c.errorf(rc.file, n, "%s: template: %s has no field %q%s (it has: %s)", what, m[2], m[1],
				yamlconf.DidYouMean(m[1], templateNames(m[2])), strings.Join(templateNames(m[2]), ", "))
			ok = false
		}
	}
	return tv, ok
}

// templateNames lists the fields and methods templates can use on a type
// named in a text/template error.
func templateNames(typeName string) []string {
	var t reflect.Type
	switch {
	case strings.HasSuffix(typeName, "TemplateData"):
		t = reflect.TypeFor[*TemplateData]()
	case strings.HasSuffix(typeName, "event.Event"):
		t = reflect.TypeFor[*event.Event]()
	case strings.HasSuffix(typeName, "event.Snapshot"):
		t = reflect.TypeFor[*event.Snapshot]()
	case strings.HasSuffix(typeName, "event.Actor"):
		t = reflect.TypeFor[event.Actor]()
	case strings.HasSuffix(typeName, "event.Causation"):
		t = reflect.TypeFor[event.Causation]()
	default:
		return nil
	}
	var names []string
	for i := range t.NumMethod() {
		names = append(names, t.Method(i).Name)
	}
	st := t
	if st.Kind() == reflect.Pointer {
		st = st.Elem()
	}
	for i := range st.NumField() {
		if st.Field(i).IsExported() {
			names = append(names, st.Field(i).Name)
		}
	}
	sort.Strings(names)
	return names
}

// checkVars refuses %%VAR%% (and .Var "VAR") names that the rule's
// connectors do not produce, when both are known.
func (c *compiler) checkVars(rc *ruleCtx, n *yaml.Node, src, what string) bool {
	if c.connVars == nil || len(rc.connectors) == 0 {
		return true
	}
	names := yamlconf.TemplateVars(src)
	for _, m := range dotVar.FindAllStringSubmatch(src, -1) {
		names = append(names, m[1])
	}
	ok := true
	for _, name := range names {
		for _, conn := range rc.connectors {
			vars, known := c.connVars[conn]
			if !known || vars[name] {
				continue
			}
			produced := make([]string, 0, len(vars))
			for v := range vars {
				produced = append(produced, v)
			}
			sort.Strings(produced)
			c.errorf(rc.file, n, "%s: variable %%%%%s%%%% is not produced by connector %s%s (it produces: %s)", what, name, conn, yamlconf.DidYouMean(name, produced), strings.Join(produced, ", "))
			ok = false
		}
	}
	return ok
}
