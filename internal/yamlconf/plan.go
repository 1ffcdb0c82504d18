package yamlconf

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"text/template"
	"text/template/parse"
)

// plan is a template compiled for execution without text/template. It is
// immutable after compilePlan except for the per-site resolution caches
// (atomics) and the pool of execution states.
type plan struct {
	root   []pnode
	nslots int
	states sync.Pool // *execState
}

type pnodeKind uint8

const (
	pText pnodeKind = iota
	pAction
	pIf
	pWith
	pRange
)

// pnode is one node of the plan's tree.
type pnode struct {
	kind     pnodeKind
	text     []byte  // pText
	pipe     *ppipe  // pAction, pIf, pWith, pRange
	print    bool    // pAction: no declaration, print the value
	numbers  bool    // pAction: printed with numbers as FormatNumber writes them
	strict   bool    // pAction: no value is an error (left to text/template), never "<no value>"
	jsonTail bool    // pAction: printed, and the last command is json
	list     []pnode // pIf, pWith, pRange
	elseList []pnode
	keySlot  int // pRange: variable slots, -1 when absent
	elemSlot int
}

// ppipe is a pipeline: commands, each getting the previous value as its
// final argument, and the variables it declares or assigns.
type ppipe struct {
	cmds []*pcmd
	decl []int
}

type cmdKind uint8

const (
	cDot   cmdKind = iota
	cConst         // lit
	cField         // field chain on dot, arguments to the last element
	cVar           // variable slot, then an optional field chain
	cPipe          // parenthesized pipeline
	cFunc          // function or builtin
)

type funcID uint8

const (
	fJSON funcID = iota
	fLower
	fUpper
	fTrim
	fAnd
	fOr
	fNot
	fEq
	fNe
	fLt
	fLe
	fGt
	fGe
	fLen
	fIndex
	fPrint
	fPrintf
	fContains
	fBefore
	fAfter
	fPathEscape
	fQueryEscape
)

var planFuncs = map[string]funcID{
	"json": fJSON, "lower": fLower, "upper": fUpper, "trim": fTrim,
	"and": fAnd, "or": fOr, "not": fNot, "eq": fEq, "ne": fNe, "lt": fLt, "le": fLe, "gt": fGt, "ge": fGe,
	"len": fLen, "index": fIndex, "print": fPrint, "printf": fPrintf,
	"contains": fContains, "before": fBefore, "after": fAfter,
	"pathescape": fPathEscape, "queryescape": fQueryEscape,
}

// pcmd is a command of a pipeline, or an argument of a call.
type pcmd struct {
	kind   cmdKind
	lit    value
	slot   int
	fields []*fieldSite
	sub    *ppipe
	fn     funcID
	args   []*pcmd
}

// fieldSite is one .Name of a chain, with an inline cache of how the name
// resolves on the last receiver type seen.
type fieldSite struct {
	name    string
	nameVal reflect.Value
	cache   atomic.Pointer[fieldRes]
}

type resKind uint8

const (
	resNone resKind = iota
	resMethod
	resField
	resMap
	resMapStringAny
	resMapStringString
)

// fieldRes is the resolution of a name on one receiver type.
type fieldRes struct {
	typ    reflect.Type // receiver type after indirection
	addr   bool         // receiver addressable (methods of *T apply)
	kind   resKind
	index  int           // method index (on *T when addr) or field index
	fn     reflect.Value // resMethod: the method as a function of receiver and arguments
	method reflect.Type  // resMethod: the method's type with the receiver bound
	fast   bool          // resMethod: method has a signature callFast handles
}

func (f *fieldSite) resolve(t reflect.Type, addr bool) *fieldRes {
	if r := f.cache.Load(); r != nil && r.typ == t && r.addr == addr {
		return r
	}
	r := &fieldRes{typ: t, addr: addr}
	pt := t
	if addr {
		pt = reflect.PointerTo(t)
	}
	if m, ok := pt.MethodByName(f.name); ok {
		r.kind, r.index, r.fn = resMethod, m.Index, m.Func
		in := make([]reflect.Type, m.Type.NumIn()-1)
		for i := range in {
			in[i] = m.Type.In(i + 1)
		}
		out := make([]reflect.Type, m.Type.NumOut())
		for i := range out {
			out[i] = m.Type.Out(i)
		}
		r.method = reflect.FuncOf(in, out, m.Type.IsVariadic())
		r.fast = pt.Kind() == reflect.Pointer && fastSignatures[r.method]
	} else {
		switch t.Kind() {
		case reflect.Struct:
			if sf, ok := t.FieldByName(f.name); ok && sf.IsExported() && len(sf.Index) == 1 {
				r.kind, r.index = resField, sf.Index[0]
			}
		case reflect.Map:
			switch {
			case t == mapStringAnyType:
				r.kind = resMapStringAny
			case t == mapStringStringType:
				r.kind = resMapStringString
			case t.Key() == stringType:
				r.kind = resMap
			}
		}
	}
	f.cache.Store(r)
	return r
}

// fastSignatures are the method types callFast calls without reflection (an
// immutable table).
var fastSignatures = map[reflect.Type]bool{
	reflect.TypeFor[func() string](): true, reflect.TypeFor[func() any](): true,
	reflect.TypeFor[func() map[string]any](): true, reflect.TypeFor[func() (string, error)](): true,
	reflect.TypeFor[func(string) string](): true, reflect.TypeFor[func(string) bool](): true,
	reflect.TypeFor[func(string) any](): true, reflect.TypeFor[func(string) (string, error)](): true,
	reflect.TypeFor[func(string) (any, error)](): true, reflect.TypeFor[func(any) string](): true,
	reflect.TypeFor[func(any) (string, error)](): true, reflect.TypeFor[func(any) any](): true,
}

var (
	stringType          = reflect.TypeFor[string]()
	stringSliceType     = reflect.TypeFor[[]string]()
	mapStringAnyType    = reflect.TypeFor[map[string]any]()
	mapStringStringType = reflect.TypeFor[map[string]string]()
	errorType           = reflect.TypeFor[error]()
	stringerType        = reflect.TypeFor[fmt.Stringer]()
	reflectValueType    = reflect.TypeFor[reflect.Value]()
)

// --- compiling -------------------------------------------------------------

type scopeVar struct {
	name string
	slot int
}

type planCompiler struct {
	scopes [][]scopeVar
	nslots int
	why    string // first unsupported construct, for PlanReport
}

func newPlanCompiler() *planCompiler {
	c := &planCompiler{}
	c.push()
	c.declare("$")
	return c
}

// compilePlan returns the plan of t, or nil when t uses anything outside
// the supported subset.
func compilePlan(t *template.Template) *plan {
	if t == nil || t.Tree == nil || t.Root == nil {
		return nil
	}
	c := newPlanCompiler()
	root, ok := c.list(t.Root)
	if !ok {
		return nil
	}
	p := &plan{root: root, nslots: c.nslots}
	p.states.New = func() any { return &execState{vars: make([]value, p.nslots)} }
	return p
}

func (c *planCompiler) fail(format string, args ...any) bool {
	if c.why == "" {
		c.why = fmt.Sprintf(format, args...)
	}
	return false
}

func (c *planCompiler) push() { c.scopes = append(c.scopes, nil) }
func (c *planCompiler) pop()  { c.scopes = c.scopes[:len(c.scopes)-1] }

func (c *planCompiler) declare(name string) int {
	slot := c.nslots
	c.nslots++
	top := len(c.scopes) - 1
	c.scopes[top] = append(c.scopes[top], scopeVar{name, slot})
	return slot
}

func (c *planCompiler) lookup(name string) (int, bool) {
	for i := len(c.scopes) - 1; i >= 0; i-- {
		s := c.scopes[i]
		for j := len(s) - 1; j >= 0; j-- {
			if s[j].name == name {
				return s[j].slot, true
			}
		}
	}
	return 0, false
}

// scopedList compiles l in a variable scope of its own, as text/template
// runs the body and the else of if, with and range.
func (c *planCompiler) scopedList(l *parse.ListNode) ([]pnode, bool) {
	c.push()
	defer c.pop()
	return c.list(l)
}

func (c *planCompiler) list(l *parse.ListNode) ([]pnode, bool) {
	if l == nil {
		return nil, true
	}
	out := make([]pnode, 0, len(l.Nodes))
	for _, n := range l.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
			if k := len(out); k > 0 && out[k-1].kind == pText {
				out[k-1].text = append(out[k-1].text[:len(out[k-1].text):len(out[k-1].text)], n.Text...)
				continue
			}
			out = append(out, pnode{kind: pText, text: n.Text})
		case *parse.CommentNode:
		case *parse.ActionNode:
			pipe, numbers, strict := n.Pipe, false, false
			if k := len(pipe.Cmds); k > 1 {
				if is, st := isPrintNumbers(pipe.Cmds[k-1]); is {
					// CompileTemplate's call: done by print itself.
					cp := *pipe
					cp.Cmds = cp.Cmds[:k-1]
					pipe, numbers, strict = &cp, true, st
				}
			}
			p, ok := c.pipe(pipe)
			if !ok {
				return nil, false
			}
			pn := pnode{kind: pAction, pipe: p, print: len(n.Pipe.Decl) == 0, numbers: numbers, strict: strict}
			last := p.cmds[len(p.cmds)-1]
			pn.jsonTail = pn.print && last.kind == cFunc && last.fn == fJSON
			out = append(out, pn)
		case *parse.IfNode:
			pn, ok := c.branch(pIf, &n.BranchNode)
			if !ok {
				return nil, false
			}
			out = append(out, pn)
		case *parse.WithNode:
			pn, ok := c.branch(pWith, &n.BranchNode)
			if !ok {
				return nil, false
			}
			out = append(out, pn)
		case *parse.RangeNode:
			pn, ok := c.rangeNode(n)
			if !ok {
				return nil, false
			}
			out = append(out, pn)
		default:
			return nil, c.fail("%s", n)
		}
	}
	return out, true
}

func (c *planCompiler) branch(kind pnodeKind, b *parse.BranchNode) (pnode, bool) {
	c.push()
	defer c.pop()
	p, ok := c.pipe(b.Pipe)
	if !ok {
		return pnode{}, false
	}
	pn := pnode{kind: kind, pipe: p}
	pn.list, ok = c.scopedList(b.List)
	if !ok {
		return pnode{}, false
	}
	pn.elseList, ok = c.scopedList(b.ElseList)
	return pn, ok
}

func (c *planCompiler) rangeNode(r *parse.RangeNode) (pnode, bool) {
	c.push()
	defer c.pop()
	if r.Pipe.IsAssign || len(r.Pipe.Decl) > 2 {
		return pnode{}, c.fail("range assigning variables")
	}
	cmds, ok := c.cmds(r.Pipe)
	if !ok {
		return pnode{}, false
	}
	pn := pnode{kind: pRange, pipe: &ppipe{cmds: cmds}, keySlot: -1, elemSlot: -1}
	for _, v := range r.Pipe.Decl {
		if len(v.Ident) != 1 {
			return pnode{}, c.fail("variable %s", v)
		}
		pn.pipe.decl = append(pn.pipe.decl, c.declare(v.Ident[0]))
	}
	switch len(pn.pipe.decl) {
	case 1:
		pn.elemSlot = pn.pipe.decl[0]
	case 2:
		pn.keySlot, pn.elemSlot = pn.pipe.decl[0], pn.pipe.decl[1]
	}
	pn.list, ok = c.scopedList(r.List)
	if !ok {
		return pnode{}, false
	}
	pn.elseList, ok = c.scopedList(r.ElseList)
	return pn, ok
}

func (c *planCompiler) cmds(p *parse.PipeNode) ([]*pcmd, bool) {
	if p == nil || len(p.Cmds) == 0 {
		return nil, c.fail("empty pipeline")
	}
	out := make([]*pcmd, len(p.Cmds))
	for i, cmd := range p.Cmds {
		pc, ok := c.cmd(cmd, i > 0)
		if !ok {
			return nil, false
		}
		out[i] = pc
	}
	return out, true
}

// pipe compiles a pipeline and its declarations (into the current scope).
func (c *planCompiler) pipe(p *parse.PipeNode) (*ppipe, bool) {
	cmds, ok := c.cmds(p)
	if !ok {
		return nil, false
	}
	pp := &ppipe{cmds: cmds}
	for _, v := range p.Decl {
		if len(v.Ident) != 1 {
			return nil, c.fail("variable %s", v)
		}
		if p.IsAssign {
			slot, ok := c.lookup(v.Ident[0])
			if !ok {
				return nil, c.fail("undefined variable %s", v.Ident[0])
			}
			pp.decl = append(pp.decl, slot)
		} else {
			pp.decl = append(pp.decl, c.declare(v.Ident[0]))
		}
	}
	return pp, true
}

func (c *planCompiler) sites(idents []string) []*fieldSite {
	out := make([]*fieldSite, len(idents))
	for i, name := range idents {
		out[i] = &fieldSite{name: name, nameVal: reflect.ValueOf(name)}
	}
	return out
}

func (c *planCompiler) cmd(cmd *parse.CommandNode, hasFinal bool) (*pcmd, bool) {
	first, rest := cmd.Args[0], cmd.Args[1:]
	switch n := first.(type) {
	case *parse.FieldNode:
		args, ok := c.args(rest)
		return &pcmd{kind: cField, fields: c.sites(n.Ident), args: args}, ok
	case *parse.VariableNode:
		slot, ok := c.lookup(n.Ident[0])
		if !ok {
			return nil, c.fail("undefined variable %s", n.Ident[0])
		}
		if len(n.Ident) == 1 {
			if len(rest) > 0 || hasFinal {
				return nil, c.fail("arguments to variable %s", n)
			}
			return &pcmd{kind: cVar, slot: slot}, true
		}
		args, ok := c.args(rest)
		return &pcmd{kind: cVar, slot: slot, fields: c.sites(n.Ident[1:]), args: args}, ok
	case *parse.IdentifierNode:
		fn, ok := planFuncs[n.Ident]
		if !ok {
			return nil, c.fail("function %s", n.Ident)
		}
		count := len(rest)
		if hasFinal {
			count++
		}
		switch fn {
		case fJSON, fLower, fUpper, fTrim, fPathEscape, fQueryEscape, fNot, fLen:
			ok = count == 1
		case fIndex, fNe, fLt, fLe, fGt, fGe, fContains, fBefore, fAfter:
			ok = count == 2
		case fEq:
			ok = count >= 2
		case fAnd, fOr, fPrintf:
			ok = count >= 1
		}
		if !ok {
			return nil, c.fail("%s with %d arguments", n.Ident, count)
		}
		args, ok := c.args(rest)
		return &pcmd{kind: cFunc, fn: fn, args: args}, ok
	case *parse.PipeNode:
		if len(rest) > 0 || hasFinal || len(n.Decl) > 0 {
			return nil, c.fail("pipeline %s", n)
		}
		cmds, ok := c.cmds(n)
		return &pcmd{kind: cPipe, sub: &ppipe{cmds: cmds}}, ok
	}
	if len(rest) > 0 || hasFinal {
		return nil, c.fail("arguments to %s", first)
	}
	return c.arg(first)
}

func (c *planCompiler) args(nodes []parse.Node) ([]*pcmd, bool) {
	if len(nodes) == 0 {
		return nil, true
	}
	out := make([]*pcmd, len(nodes))
	for i, n := range nodes {
		a, ok := c.arg(n)
		if !ok {
			return nil, false
		}
		out[i] = a
	}
	return out, true
}

// arg compiles an operand: a constant, dot, a field chain or a variable
// (called without arguments), or a parenthesized pipeline.
func (c *planCompiler) arg(n parse.Node) (*pcmd, bool) {
	switch n := n.(type) {
	case *parse.DotNode:
		return &pcmd{kind: cDot}, true
	case *parse.StringNode:
		return &pcmd{kind: cConst, lit: strValue(n.Text)}, true
	case *parse.BoolNode:
		return &pcmd{kind: cConst, lit: rvValue(reflect.ValueOf(n.True))}, true
	case *parse.NumberNode:
		// text/template's idealConstant.
		switch {
		case n.IsComplex:
		case n.IsFloat && !isHexConst(n.Text) && !strings.HasPrefix(n.Text, "'") && strings.ContainsAny(n.Text, ".eEpP"):
			return &pcmd{kind: cConst, lit: rvValue(reflect.ValueOf(n.Float64))}, true
		case n.IsInt && int64(int(n.Int64)) == n.Int64:
			return &pcmd{kind: cConst, lit: rvValue(reflect.ValueOf(int(n.Int64)))}, true
		}
		return nil, c.fail("number %s", n.Text)
	case *parse.FieldNode:
		return &pcmd{kind: cField, fields: c.sites(n.Ident)}, true
	case *parse.VariableNode:
		slot, ok := c.lookup(n.Ident[0])
		if !ok {
			return nil, c.fail("undefined variable %s", n.Ident[0])
		}
		pc := &pcmd{kind: cVar, slot: slot}
		if len(n.Ident) > 1 {
			pc.fields = c.sites(n.Ident[1:])
		}
		return pc, true
	case *parse.PipeNode:
		if len(n.Decl) > 0 {
			return nil, c.fail("pipeline %s", n)
		}
		cmds, ok := c.cmds(n)
		return &pcmd{kind: cPipe, sub: &ppipe{cmds: cmds}}, ok
	}
	return nil, c.fail("operand %s", n)
}

func isHexConst(s string) bool {
	return len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') && !strings.ContainsAny(s, "pP")
}
