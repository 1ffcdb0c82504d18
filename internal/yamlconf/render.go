package yamlconf

import (
	"bytes"
	"strings"
	"text/template"
)

// Renderer executes one template compiled by CompileTemplate. When every
// node of the template is in the subset the renderer's execution plan
// supports (text; field chains over structs, pointers and string-keyed maps;
// method calls; variables; if, with, range; json, lower, upper, trim and the
// builtins and, or, not, eq, ne, lt, le, gt, ge, len, index, print, printf)
// it renders without text/template, with the same bytes. Anything else, and
// every run that fails or meets a value the plan does not handle (a missing
// map key, a method returning an error, a nil pointer, ...), is executed by text/template, so results and error messages
// are always text/template's. Methods of the data may therefore be called
// twice on a failing run: they must be free of side effects.
//
// The plan assumes the template's functions are those of TemplateFuncs (as
// CompileTemplate sets them). A Renderer is safe for concurrent use.
type Renderer struct {
	t    *template.Template
	plan *plan
}

// NewRenderer returns a renderer of t (which must come from
// CompileTemplate), or nil when t is nil.
func NewRenderer(t *template.Template) *Renderer {
	if t == nil {
		return nil
	}
	return &Renderer{t: t, plan: compilePlan(t)}
}

// CompileRenderer is CompileTemplate followed by NewRenderer.
func CompileRenderer(name, src string) (*Renderer, error) {
	t, err := CompileTemplate(name, src)
	if err != nil {
		return nil, err
	}
	return NewRenderer(t), nil
}

// Template returns the text/template the renderer executes.
func (r *Renderer) Template() *template.Template { return r.t }

// Name returns the template's name.
func (r *Renderer) Name() string { return r.t.Name() }

// Planned reports whether the template compiled to an execution plan (runs
// may still fall back to text/template, see Renderer).
func (r *Renderer) Planned() bool { return r.plan != nil }

// Execute renders data into a string, like Execute(r.Template(), data).
func (r *Renderer) Execute(data any) (string, error) {
	if r.plan != nil {
		if s, ok := r.plan.executeString(data); ok {
			return s, nil
		}
	}
	return Execute(r.t, data)
}

// AppendTo appends the rendering of data to dst. On error dst is returned
// unchanged (its spare capacity may have been written).
func (r *Renderer) AppendTo(dst []byte, data any) ([]byte, error) {
	if r.plan != nil {
		if out, ok := r.plan.appendTo(dst, data); ok {
			return out, nil
		}
	}
	n := len(dst)
	buf := bytes.NewBuffer(dst)
	if err := r.t.Execute(buf, data); err != nil {
		return dst[:n], cleanTemplateError(err, r.t.Name())
	}
	return buf.Bytes(), nil
}

// AppendPlanned runs only the execution plan: it appends the rendering of
// data to dst and reports true, or reports false when there is no plan or
// the plan could not render this data (Execute would use text/template).
// It exists to compare the two paths in tests.
func (r *Renderer) AppendPlanned(dst []byte, data any) ([]byte, bool) {
	if r.plan == nil {
		return dst, false
	}
	return r.plan.appendTo(dst, data)
}

// PlanReport describes why a template has no plan: "" when it has one, else
// the first construct the plan does not support.
func PlanReport(t *template.Template) string {
	if t == nil || t.Tree == nil || t.Root == nil {
		return "no parse tree"
	}
	c := newPlanCompiler()
	if _, ok := c.list(t.Root); !ok {
		if c.why == "" {
			return "unsupported construct"
		}
		return strings.TrimSpace(c.why)
	}
	return ""
}
