package mapping

import (
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/internal/yamlconf"
)

// condOp is a condition's operator.
type condOp uint8

const (
	opAll condOp = iota
	opAny
	opNot
	opEquals
	opNotEquals
	opIn
	opNotIn
	opExists
	opMatches
	opContains
)

// cond is a compiled match or where condition: a tree of all/any/not over
// leaves that test one value.
type cond struct {
	op     condOp
	kids   []*cond
	ref    *pathRef
	want   any   // equals, not_equals, contains
	list   []any // in, not_in
	exists bool
	re     *regexp.Regexp
}

// valuesOf returns the only values the condition lets the value at ref
// have, when it pins them: an equals or in on that path, alone or as one
// of the conditions of an all.
func (c *cond) valuesOf(ref *pathRef) ([]any, bool) {
	switch c.op {
	case opAll:
		for _, k := range c.kids {
			if vs, ok := k.valuesOf(ref); ok {
				return vs, true
			}
		}
	case opEquals:
		if c.ref.same(ref) {
			return []any{c.want}, true
		}
	case opIn:
		if c.ref.same(ref) {
			return c.list, true
		}
	}
	return nil, false
}

// eval reports whether the condition holds for the current element.
func (c *cond) eval(st *state) bool {
	switch c.op {
	case opAll:
		for _, k := range c.kids {
			if !k.eval(st) {
				return false
			}
		}
		return true
	case opAny:
		for _, k := range c.kids {
			if k.eval(st) {
				return true
			}
		}
		return false
	case opNot:
		return !c.kids[0].eval(st)
	}
	v, ok := st.resolve(c.ref)
	switch c.op {
	case opExists:
		return ok == c.exists
	case opEquals:
		return ok && event.Equal(event.Normalize(v), c.want)
	case opNotEquals:
		return !ok || !event.Equal(event.Normalize(v), c.want)
	case opIn, opNotIn:
		found := false
		if ok {
			n := event.Normalize(v)
			for _, w := range c.list {
				if event.Equal(n, w) {
					found = true
					break
				}
			}
		}
		return found == (c.op == opIn)
	case opMatches:
		if !ok {
			return false
		}
		if list, isList := event.Normalize(v).([]string); isList {
			for _, s := range list {
				if c.re.MatchString(s) {
					return true
				}
			}
			return false
		}
		if items, isList := v.([]any); isList {
			for _, e := range items {
				if c.re.MatchString(toString(e)) {
					return true
				}
			}
			return false
		}
		return c.re.MatchString(toString(v))
	case opContains:
		if !ok {
			return false
		}
		switch x := event.Normalize(v).(type) {
		case string:
			return strings.Contains(x, event.String(c.want))
		case []string, []any:
			for _, e := range event.Strings(x) {
				if event.Equal(e, c.want) {
					return true
				}
			}
		}
		return false
	}
	return false
}

// condSpec is the YAML shape of one condition; every key is a node so the
// compiler knows which were given and where.
type condSpec struct {
	Path      *yaml.Node `yaml:"path"`
	Header    *yaml.Node `yaml:"header"`
	Query     *yaml.Node `yaml:"query"`
	Equals    *yaml.Node `yaml:"equals"`
	NotEquals *yaml.Node `yaml:"not_equals"`
	In        *yaml.Node `yaml:"in"`
	NotIn     *yaml.Node `yaml:"not_in"`
	Exists    *yaml.Node `yaml:"exists"`
	Matches   *yaml.Node `yaml:"matches"`
	Contains  *yaml.Node `yaml:"contains"`
	All       *yaml.Node `yaml:"all"`
	Any       *yaml.Node `yaml:"any"`
	Not       *yaml.Node `yaml:"not"`
}

// operatorNames lists the leaf operators, for messages.
const operatorNames = "equals, not_equals, in, not_in, exists, matches, contains"

// compileCond compiles a condition node: a list (all must hold), a tree node
// (all/any/not) or a leaf.
func (c *compiler) compileCond(n *yaml.Node, sc scope) *cond {
	n = yamlconf.Resolve(n)
	if n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		c.errs.Add(c.file, n, "expected a condition or a list of conditions, got nothing")
		return nil
	}
	if n.Kind == yaml.SequenceNode {
		return c.compileList(opAll, n, sc)
	}
	var cs condSpec
	if errs := yamlconf.Decode(c.file, n, &cs); len(errs) > 0 {
		c.errs.Append(errs)
		return nil
	}
	trees := 0
	for _, t := range []*yaml.Node{cs.All, cs.Any, cs.Not} {
		if t != nil {
			trees++
		}
	}
	if trees > 0 {
		if trees > 1 || len(n.Content) > 2 {
			c.errs.Add(c.file, n, "a condition with all, any or not takes that one key only; nest them to combine")
			return nil
		}
		switch {
		case cs.All != nil:
			return c.compileList(opAll, cs.All, sc)
		case cs.Any != nil:
			return c.compileList(opAny, cs.Any, sc)
		default:
			kid := c.compileCond(cs.Not, sc)
			if kid == nil {
				return nil
			}
			return &cond{op: opNot, kids: []*cond{kid}}
		}
	}
	return c.compileLeaf(n, &cs, sc)
}

func (c *compiler) compileList(op condOp, n *yaml.Node, sc scope) *cond {
	n = yamlconf.Resolve(n)
	items := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		items = n.Content
		if len(items) == 0 {
			c.errs.Add(c.file, n, "empty condition list")
			return nil
		}
	}
	out := &cond{op: op}
	okAll := true
	for _, it := range items {
		k := c.compileCond(it, sc)
		if k == nil {
			okAll = false
			continue
		}
		out.kids = append(out.kids, k)
	}
	if !okAll {
		return nil
	}
	return out
}

func (c *compiler) compileLeaf(n *yaml.Node, cs *condSpec, sc scope) *cond {
	var sources []string
	var ref *pathRef
	fail := false
	for _, s := range []struct {
		key  string
		node *yaml.Node
	}{{"path", cs.Path}, {"header", cs.Header}, {"query", cs.Query}} {
		if s.node == nil {
			continue
		}
		sources = append(sources, s.key)
		if s.node.Kind != yaml.ScalarNode || s.node.Value == "" {
			c.errs.Add(c.file, s.node, "%s: expected a non-empty string, got %s", s.key, yamlconf.KindName(s.node))
			fail = true
			continue
		}
		src := s.node.Value
		switch s.key {
		case "header":
			src = prefixHeader + "." + src
		case "query":
			src = prefixQuery + "." + src
		}
		r, err := parsePath(src, sc)
		if err != nil {
			c.errs.Add(c.file, s.node, "%s %q: %v", s.key, s.node.Value, err)
			fail = true
			continue
		}
		ref = r
	}
	switch len(sources) {
	case 0:
		c.errs.Add(c.file, n, "a condition needs one of path, header or query (or all, any, not)")
		return nil
	case 1:
	default:
		c.errs.Add(c.file, n, "a condition takes one of path, header or query, got %s", strings.Join(sources, " and "))
		return nil
	}
	type opNode struct {
		op   condOp
		key  string
		node *yaml.Node
	}
	var ops []opNode
	for _, o := range []opNode{
		{opEquals, "equals", cs.Equals}, {opNotEquals, "not_equals", cs.NotEquals},
		{opIn, "in", cs.In}, {opNotIn, "not_in", cs.NotIn}, {opExists, "exists", cs.Exists},
		{opMatches, "matches", cs.Matches}, {opContains, "contains", cs.Contains},
	} {
		if o.node != nil {
			ops = append(ops, o)
		}
	}
	if len(ops) != 1 {
		if len(ops) == 0 {
			c.errs.Add(c.file, n, "a condition needs an operator: one of %s", operatorNames)
		} else {
			c.errs.Add(c.file, ops[1].node, "a condition takes one operator, got %s and %s; combine conditions in a list or with all/any", ops[0].key, ops[1].key)
		}
		return nil
	}
	o := ops[0]
	out := &cond{op: o.op, ref: ref}
	switch o.op {
	case opEquals, opNotEquals, opContains:
		if o.node.Kind == yaml.ScalarNode && o.node.Tag == "!!null" {
			c.errs.Add(c.file, o.node, "%s: null is not a value here; use exists: false for an absent or null value", o.key)
			return nil
		}
		if o.op == opContains && o.node.Kind != yaml.ScalarNode {
			c.errs.Add(c.file, o.node, "contains: expected a scalar, got %s", yamlconf.KindName(o.node))
			return nil
		}
		v, err := yamlconf.ToValue(o.node)
		if err != nil {
			c.errs.Add(c.file, o.node, "%s: %v", o.key, err)
			return nil
		}
		out.want = event.Normalize(v)
	case opIn, opNotIn:
		if o.node.Kind != yaml.SequenceNode {
			c.errs.Add(c.file, o.node, "%s: expected a list of values, got %s", o.key, yamlconf.KindName(o.node))
			return nil
		}
		for _, it := range o.node.Content {
			v, err := yamlconf.ToValue(it)
			if err != nil {
				c.errs.Add(c.file, it, "%s: %v", o.key, err)
				return nil
			}
			out.list = append(out.list, event.Normalize(v))
		}
	case opExists:
		var b bool
		if errs := yamlconf.Decode(c.file, o.node, &b); len(errs) > 0 {
			c.errs.Append(errs)
			return nil
		}
		out.exists = b
	case opMatches:
		if o.node.Kind != yaml.ScalarNode {
			c.errs.Add(c.file, o.node, "matches: expected a regular expression, got %s", yamlconf.KindName(o.node))
			return nil
		}
		re, err := regexp.Compile(o.node.Value)
		if err != nil {
			c.errs.Add(c.file, o.node, "matches: invalid RE2 pattern %q: %v", o.node.Value, err)
			return nil
		}
		out.re = re
	}
	if fail {
		return nil
	}
	return out
}
