package mapping

import (
	"fmt"
	"slices"
	"strings"
	"text/template"
	"text/template/parse"

	"github.com/hookline/hookline/internal/yamlconf"
)

// tmpl is a compiled Go template used as a value. It runs from its
// compiled plan (yamlconf.Renderer), which the state's methods allow: they
// only look things up.
type tmpl struct {
	r *yamlconf.Renderer
}

// unplanned lists the templates of m that run through text/template rather
// than a compiled plan, with the reason (for tests: every shipped template
// must have a plan).
func (m *Mapper) unplanned() []string {
	var out []string
	for _, t := range m.tmpls {
		if !t.r.Planned() {
			out = append(out, t.r.Name()+": "+yamlconf.PlanReport(t.r.Template()))
		}
	}
	return out
}

func (t *tmpl) exec(st *state) (string, error) {
	out, err := t.r.Execute(st)
	if err != nil {
		return "", fmt.Errorf("%w: %s", ErrTemplate, err)
	}
	return out, nil
}

// templateMethods are the methods template data offers (see doc.go).
var templateMethods = []string{"Field", "Fields", "Header", "Path", "Query", "Root", "Var"}

// templateCall is a call with a literal string argument found in a template
// (`.Path "a.b"`, `.Var "X"`): checked at compile time.
type templateCall struct {
	method string
	arg    string
}

// inspectTemplate walks the parse trees of t and returns the literal calls
// of the data methods, and an error for a field or method of the data that
// does not exist.
func inspectTemplate(t *template.Template) ([]templateCall, error) {
	var calls []templateCall
	var bad error
	var walk func(n parse.Node, dotIsData bool)
	checkField := func(ident []string, dotIsData bool) {
		if !dotIsData || len(ident) == 0 || bad != nil {
			return
		}
		if slices.Contains(templateMethods, ident[0]) {
			return
		}
		names := make([]string, len(templateMethods))
		for i, m := range templateMethods {
			names[i] = "." + m
		}
		bad = fmt.Errorf("template uses .%s, which does not exist%s (available: %s)",
			ident[0], yamlconf.DidYouMean("."+ident[0], names), strings.Join(names, ", "))
	}
	walk = func(n parse.Node, dotIsData bool) {
		switch x := n.(type) {
		case *parse.ListNode:
			if x == nil {
				return
			}
			for _, c := range x.Nodes {
				walk(c, dotIsData)
			}
		case *parse.ActionNode:
			walk(x.Pipe, dotIsData)
		case *parse.PipeNode:
			if x == nil {
				return
			}
			for _, c := range x.Cmds {
				walk(c, dotIsData)
			}
		case *parse.CommandNode:
			if len(x.Args) >= 2 && dotIsData {
				if f, ok := x.Args[0].(*parse.FieldNode); ok && len(f.Ident) == 1 {
					if s, ok := x.Args[1].(*parse.StringNode); ok {
						calls = append(calls, templateCall{method: f.Ident[0], arg: s.Text})
					}
				}
			}
			for _, a := range x.Args {
				walk(a, dotIsData)
			}
		case *parse.FieldNode:
			checkField(x.Ident, dotIsData)
		case *parse.ChainNode:
			walk(x.Node, dotIsData)
		case *parse.IfNode:
			walk(x.Pipe, dotIsData)
			walk(x.List, dotIsData)
			walk(x.ElseList, dotIsData)
		case *parse.RangeNode:
			walk(x.Pipe, dotIsData)
			walk(x.List, false)
			walk(x.ElseList, dotIsData)
		case *parse.WithNode:
			walk(x.Pipe, dotIsData)
			walk(x.List, false)
			walk(x.ElseList, dotIsData)
		case *parse.TemplateNode:
			walk(x.Pipe, dotIsData)
		}
	}
	for _, sub := range t.Templates() {
		if sub.Tree != nil {
			walk(sub.Tree.Root, true)
		}
	}
	return calls, bad
}
