package mapping

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/internal/yamlconf"
)

var (
	identRe     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	fieldNameRe = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)
)

// actorTypes are the actor types of the event model.
var actorTypes = []string{event.ActorAgent, event.ActorCustomer, event.ActorGateway, event.ActorSystem}

// Compile compiles the `inbound.events` list node of a connector file. file
// is for error positions; connector is the connector name put on every
// event. A nil or null node compiles to a Mapper that maps nothing. Every
// problem is reported (file:line:column, sorted), and the Mapper is nil when
// there is any.
func Compile(file, connector string, events *yaml.Node) (*Mapper, yamlconf.Errors) {
	c := &compiler{file: file}
	m := &Mapper{connector: connector}
	n := yamlconf.Resolve(events)
	if n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		return m, nil
	}
	if n.Kind != yaml.SequenceNode {
		c.errs.Add(file, n, "inbound.events: expected a list of event mappings, got %s", yamlconf.KindName(n))
		return nil, c.errs
	}
	seen := map[string]*yaml.Node{}
	vars, types := map[string]bool{}, map[string]bool{}
	for i, en := range n.Content {
		e, nameNode, ok := c.compileEntry(i, yamlconf.Resolve(en))
		if e == nil {
			continue
		}
		if prev, dup := seen[e.name]; dup {
			c.errs.Add(file, nameNode, "entry name %q is already used at line %d", e.name, prev.Line)
			continue
		}
		seen[e.name] = nameNode
		if !ok {
			continue
		}
		for _, v := range e.varNames {
			vars[v] = true
		}
		outs, closed := e.typeOutcomes()
		for _, t := range outs {
			types[t] = true
		}
		if !closed {
			m.typesOpen = true
		}
		m.entries = append(m.entries, e)
	}
	if len(c.errs) > 0 {
		c.errs.Sort()
		return nil, c.errs
	}
	m.vars, m.types = sortedKeys(vars), sortedKeys(types)
	m.tmpls = c.tmpls
	for field, d := range c.derived {
		if m.derived == nil {
			m.derived = map[string]string{}
		}
		m.derived[field] = d.source
	}
	return m, nil
}

// declareDerived records a field's derived_from (n is the field's spec): a
// change to the field rides with a change to its source, as
// status_category's with status's (event.DerivedFrom). Every entry that
// declares it must name the same source.
func (c *compiler) declareDerived(field string, n *yaml.Node) {
	n = yamlconf.Resolve(n)
	if n.Kind != yaml.MappingNode {
		return
	}
	var src *yaml.Node
	for _, kv := range yamlconf.Pairs(n) {
		if kv.Key.Value == "derived_from" {
			src = yamlconf.Resolve(kv.Value)
		}
	}
	if src == nil {
		return
	}
	switch {
	case src.Kind != yaml.ScalarNode || !fieldNameRe.MatchString(src.Value):
		c.errs.Add(c.file, src, "fields.%s: derived_from: expected the name of the field it is derived from", field)
		return
	case src.Value == field:
		c.errs.Add(c.file, src, "fields.%s: derived_from names the field itself", field)
		return
	}
	if prev, ok := c.derived[field]; ok {
		if prev.source != src.Value {
			c.errs.Add(c.file, src, "fields.%s: derived_from %q, but line %d declares %q", field, src.Value, prev.node.Line, prev.source)
		}
		return
	}
	if c.derived == nil {
		c.derived = map[string]derivedDecl{}
	}
	c.derived[field] = derivedDecl{source: src.Value, node: src}
}

// closedOutcomes returns the texts a spec can produce and whether that set
// is closed: known at compile time (a constant, or a map with map_default
// and an optional default, or a fallback whose set is known).
func (s *spec) closedOutcomes() ([]string, bool) {
	var out []string
	add := func(v any) {
		if v != nil {
			if t := strings.TrimSpace(toString(v)); t != "" {
				out = append(out, t)
			}
		}
	}
	// rest adds what an absent source leads to: the fallback, else default.
	rest := func() bool {
		if s.fallback != nil {
			fb, closed := s.fallback.closedOutcomes()
			out = append(out, fb...)
			if !closed {
				return false
			}
		}
		if s.hasDef {
			add(s.def)
		}
		return true
	}
	switch {
	case s.kind == specConst:
		v, ok := s.constant, s.constant != nil
		if ok && s.mapping != nil {
			v, ok = s.applyMap(v)
		}
		if ok {
			add(v)
			return out, true
		}
		if !rest() {
			return nil, false
		}
		return out, true
	case s.mapping != nil && s.hasMapDefault:
		for _, v := range s.mapping {
			add(v)
		}
		add(s.mapDefault)
		if !rest() {
			return nil, false
		}
		return out, true
	}
	return nil, false
}

// typeOutcomes returns the event types the entry can produce and whether
// that set is closed: the type spec's own closed set, or, for a type read
// from a path through a map without map_default, the mapped values the
// entry's match allows on that same path (match: { path: p, in: [...] }
// with type: { path: p, map: {...} } is closed: no other value gets there).
func (e *entry) typeOutcomes() ([]string, bool) {
	s := e.typ
	if out, closed := s.closedOutcomes(); closed {
		return out, true
	}
	if s.kind != specPath || s.mapping == nil || s.split != "" || e.match == nil {
		return nil, false
	}
	allowed, ok := e.match.valuesOf(s.ref)
	if !ok {
		return nil, false
	}
	var out []string
	for _, v := range allowed {
		if _, text := v.(string); !text {
			// The match compares numbers by value ("01" equals 1), the
			// map by text: which key a payload hits is not known here.
			return nil, false
		}
		m, ok := s.applyMap(v)
		if !ok || m == nil {
			// Mapped to nothing: the fallback or default decides, and
			// their set is not followed here.
			return nil, false
		}
		if t := strings.TrimSpace(toString(m)); t != "" {
			out = append(out, t)
		}
	}
	return out, true
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// compiler collects the errors of one Compile call.
type compiler struct {
	file  string
	errs  yamlconf.Errors
	tmpls []*tmpl // every template compiled, for Mapper.unplanned
	// derived is what the fields' derived_from declare: field -> source,
	// with the node that declared it first.
	derived map[string]derivedDecl
}

// derivedDecl is one derived_from declaration.
type derivedDecl struct {
	source string
	node   *yaml.Node
}

// entrySpec is the YAML shape of one entry; polymorphic parts stay nodes.
type entrySpec struct {
	Name       *yaml.Node `yaml:"name"`
	Match      *yaml.Node `yaml:"match"`
	Each       *yaml.Node `yaml:"each"`
	Where      *yaml.Node `yaml:"where"`
	Type       *yaml.Node `yaml:"type"`
	Entity     *yaml.Node `yaml:"entity"`
	Reference  *yaml.Node `yaml:"reference"`
	OccurredAt *yaml.Node `yaml:"occurred_at"`
	Actor      *yaml.Node `yaml:"actor"`
	Fields     *yaml.Node `yaml:"fields"`
	Changes    *yaml.Node `yaml:"changes"`
	Vars       *yaml.Node `yaml:"vars"`
	Stop       bool       `yaml:"stop"`
}

// specCtx is what a value spec may refer to.
type specCtx struct {
	where string // "fields.status", for messages
	sc    scope
	e     *entry
	// constString makes a plain string a constant instead of a path (type,
	// entity, actor.type).
	constString bool
	// vars are the variables a template may use here (for vars: the ones
	// defined before).
	vars []string
	// fields are the fields a template's .Field may read here (for fields:
	// the ones defined before; for vars: none, they are computed first);
	// allFields are all of the entry's, for messages.
	fields, allFields []string
	inVars            bool
}

// compileEntry compiles one entry; ok is false when it had errors (the
// entry is still returned, when it has a name, for the duplicate-name check).
func (c *compiler) compileEntry(i int, n *yaml.Node) (e *entry, nameNode *yaml.Node, ok bool) {
	if n.Kind != yaml.MappingNode {
		c.errs.Add(c.file, n, "events[%d]: expected a mapping (name, match, type, entity, reference, ...), got %s", i, yamlconf.KindName(n))
		return nil, n, false
	}
	before := len(c.errs)
	var es entrySpec
	c.errs.Append(yamlconf.Decode(c.file, n, &es))
	e = &entry{name: fmt.Sprintf("events[%d]", i), stop: es.Stop, tmplPaths: map[string]*pathRef{}}
	nameNode = n
	if es.Name != nil {
		nameNode = es.Name
		if es.Name.Kind != yaml.ScalarNode || strings.TrimSpace(es.Name.Value) == "" {
			c.errs.Add(c.file, es.Name, "name: expected a non-empty string, got %s", yamlconf.KindName(es.Name))
		} else {
			e.name = es.Name.Value
		}
	}

	if es.Each != nil {
		if e.levels = c.compileEach(es.Each); e.levels == nil {
			// Paths below would be judged against the wrong levels: report
			// each alone for this entry.
			return e, nameNode, false
		}
	}
	e.scope = scope{depth: len(e.levels), names: map[string]int{}}
	for k, l := range e.levels {
		if l.name != "" {
			e.scope.names[l.name] = k
		}
	}
	fieldPairs := c.namedPairs(es.Fields, "fields", fieldNameRe, "a field name (dot-separated parts of letters, digits, _ and -)")
	fieldNames := make([]string, len(fieldPairs))
	for j, kv := range fieldPairs {
		fieldNames[j] = kv.Key.Value
	}
	ctx := func(where string) specCtx {
		return specCtx{where: where, sc: e.scope, e: e, vars: e.varNames, fields: fieldNames, allFields: fieldNames}
	}

	// vars first: templates elsewhere may use them.
	varPairs := c.namedPairs(es.Vars, "vars", identRe, "a variable name (letters, digits and _, not starting with a digit)")
	for _, kv := range varPairs {
		e.varNames = append(e.varNames, kv.Key.Value)
	}
	for j, kv := range varPairs {
		vc := ctx("vars." + kv.Key.Value)
		vc.vars = e.varNames[:j]
		vc.fields, vc.inVars = nil, true
		if s := c.compileSpec(kv.Value, vc); s != nil {
			e.vars = append(e.vars, namedSpec{name: kv.Key.Value, spec: s})
		}
	}
	for j, kv := range fieldPairs {
		fc := ctx("fields." + kv.Key.Value)
		fc.fields = fieldNames[:j]
		if s := c.compileSpec(kv.Value, fc); s != nil {
			e.fields = append(e.fields, namedSpec{name: kv.Key.Value, spec: s})
			c.declareDerived(kv.Key.Value, kv.Value)
		}
	}
	for _, kv := range c.namedPairs(es.Changes, "changes", fieldNameRe, "a field name (dot-separated parts of letters, digits, _ and -)") {
		if ch, ok := c.compileChange(kv, e, ctx); ok {
			e.changes = append(e.changes, ch)
		}
	}

	e.typ = c.requiredSpec(n, es.Type, "type", "the event type, like ticket.status_changed", specCtx{where: "type", sc: e.scope, e: e, vars: e.varNames, fields: fieldNames, allFields: fieldNames, constString: true})
	e.entity = c.requiredSpec(n, es.Entity, "entity", "the entity type, like ticket or message", specCtx{where: "entity", sc: e.scope, e: e, vars: e.varNames, fields: fieldNames, allFields: fieldNames, constString: true})
	e.reference = c.requiredSpec(n, es.Reference, "reference",
		"every event needs the platform's key of its entity (use reference: { value: ... } for a constant)", ctx("reference"))
	if es.OccurredAt != nil {
		e.occurredAt = c.compileSpec(es.OccurredAt, ctx("occurred_at"))
		for f := e.occurredAt; f != nil; f = f.fallback {
			f.isTime = true
		}
		if s := e.occurredAt; s != nil && s.kind == specConst {
			if _, ok := parseTime(s.constant); !ok {
				c.errs.Add(c.file, es.OccurredAt, "occurred_at: %s is not an RFC 3339 time or a Unix timestamp", event.String(s.constant))
			}
		}
	}
	if es.Actor != nil {
		c.compileActor(es.Actor, e, ctx)
	}
	if es.Match != nil {
		e.match = c.compileCond(es.Match, scope{})
	}
	if es.Where != nil {
		e.where = c.compileCond(es.Where, e.scope)
	}
	nameAliasedErrors(n, e.name, c.errs[before:])
	return e, nameNode, len(c.errs) == before
}

// nameAliasedErrors prefixes the errors of entry n that lie outside it
// (in a value it shares through a YAML alias, reported where the anchor
// is, maybe in an entry that is fine) with the entry's name and the alias.
func nameAliasedErrors(n *yaml.Node, name string, errs yamlconf.Errors) {
	if len(errs) == 0 {
		return
	}
	var aliases []*yaml.Node
	end := lastLine(n, &aliases)
	for _, e := range errs {
		if e.Pos.Line >= n.Line && e.Pos.Line <= end {
			continue
		}
		prefix := fmt.Sprintf("entry %q: ", name)
		for _, a := range aliases {
			if t := yamlconf.Resolve(a); t != nil && e.Pos.Line >= t.Line && e.Pos.Line <= lastLine(t, nil) {
				prefix = fmt.Sprintf("entry %q (through the alias *%s at line %d): ", name, a.Value, a.Line)
				break
			}
		}
		e.Msg = prefix + e.Msg
	}
}

// lastLine returns the last line of n's text, without following aliases;
// the aliases met are appended to aliases when it is not nil.
func lastLine(n *yaml.Node, aliases *[]*yaml.Node) int {
	end := n.Line
	for _, c := range n.Content {
		if c.Kind == yaml.AliasNode {
			if aliases != nil {
				*aliases = append(*aliases, c)
			}
			end = max(end, c.Line)
			continue
		}
		end = max(end, lastLine(c, aliases))
	}
	return end
}

// namedPairs returns the entries of a name -> spec mapping after checking
// the names.
func (c *compiler) namedPairs(n *yaml.Node, key string, nameRe *regexp.Regexp, want string) []yamlconf.KeyValue {
	n = yamlconf.Resolve(n)
	if n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		c.errs.Add(c.file, n, "%s: expected a mapping of name: value, got %s", key, yamlconf.KindName(n))
		return nil
	}
	seen := map[string]bool{}
	var out []yamlconf.KeyValue
	for _, kv := range yamlconf.Pairs(n) {
		name := kv.Key.Value
		switch {
		case !nameRe.MatchString(name):
			c.errs.Add(c.file, kv.Key, "%s: %q is not %s", key, name, want)
		case seen[name]:
			c.errs.Add(c.file, kv.Key, "%s: %q appears twice", key, name)
		default:
			seen[name] = true
			out = append(out, kv)
		}
	}
	return out
}

func (c *compiler) requiredSpec(entryNode, n *yaml.Node, key, why string, ctx specCtx) *spec {
	if n == nil {
		c.errs.Add(c.file, entryNode, "missing required key %q: %s", key, why)
		return nil
	}
	s := c.compileSpec(n, ctx)
	if s != nil && s.kind == specConst && strings.TrimSpace(toString(s.constant)) == "" {
		c.errs.Add(c.file, n, "%s must not be empty", key)
		return nil
	}
	if s != nil && s.kind == specConst && ctx.constString && strings.ContainsAny(toString(s.constant), " \t\n") {
		c.errs.Add(c.file, n, "%s %q must not contain spaces", key, toString(s.constant))
		return nil
	}
	return s
}

// compileEach compiles `each`: a path whose "#" parts separate levels, or a
// list of levels, each a path or { path, as }.
func (c *compiler) compileEach(n *yaml.Node) []level {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" || strings.TrimSpace(n.Value) == "" {
			c.errs.Add(c.file, n, "each: expected a path like entry.#.changes.#.value.messages, got %s", yamlconf.KindName(n))
			return nil
		}
		parts := splitEach(n.Value)
		levels := make([]level, 0, len(parts))
		for _, p := range parts {
			if err := c.checkLevelPath(p, true); err != nil {
				c.errs.Add(c.file, n, "each %q: %v", n.Value, err)
				return nil
			}
			levels = append(levels, level{path: p})
		}
		return levels
	case yaml.SequenceNode:
		if len(n.Content) == 0 {
			c.errs.Add(c.file, n, "each: empty list of levels")
			return nil
		}
		var levels []level
		names := map[string]bool{}
		for _, it := range n.Content {
			it = yamlconf.Resolve(it)
			var l level
			pathNode := it
			switch it.Kind {
			case yaml.ScalarNode:
				l.path = it.Value
			case yaml.MappingNode:
				var ls struct {
					Path *yaml.Node `yaml:"path"`
					As   *yaml.Node `yaml:"as"`
				}
				if errs := yamlconf.Decode(c.file, it, &ls); len(errs) > 0 {
					c.errs.Append(errs)
					return nil
				}
				if ls.Path == nil || ls.Path.Kind != yaml.ScalarNode {
					c.errs.Add(c.file, it, "each level: needs path (a string)")
					return nil
				}
				pathNode, l.path = ls.Path, ls.Path.Value
				if ls.As != nil {
					switch name := ls.As.Value; {
					case ls.As.Kind != yaml.ScalarNode || !identRe.MatchString(name):
						c.errs.Add(c.file, ls.As, "each level: as %s is not a name (letters, digits and _)", yamlconf.KindName(ls.As))
						return nil
					case slices.Contains(reservedLevelNames, name):
						c.errs.Add(c.file, ls.As, "each level: %q is reserved for $%s; choose another name", name, name)
						return nil
					case names[name]:
						c.errs.Add(c.file, ls.As, "each level: name %q is used twice", name)
						return nil
					default:
						names[name] = true
						l.name = name
					}
				}
			default:
				c.errs.Add(c.file, it, "each level: expected a path or { path, as }, got %s", yamlconf.KindName(it))
				return nil
			}
			if strings.TrimSpace(l.path) == "" {
				c.errs.Add(c.file, pathNode, "each level: empty path (use @this for the element itself)")
				return nil
			}
			if err := c.checkLevelPath(l.path, false); err != nil {
				c.errs.Add(c.file, pathNode, "each level %q: %v", l.path, err)
				return nil
			}
			levels = append(levels, l)
		}
		return levels
	}
	c.errs.Add(c.file, n, "each: expected a path or a list of levels, got %s", yamlconf.KindName(n))
	return nil
}

func (c *compiler) checkLevelPath(p string, emptyOK bool) error {
	if p == "" {
		if emptyOK {
			return nil
		}
		return fmt.Errorf("empty path")
	}
	if strings.HasPrefix(p, "$") {
		return fmt.Errorf("each paths are relative to the enclosing level; $ prefixes are not allowed here")
	}
	return checkGJSON(p)
}

// specMapping is the mapping form of a value spec.
type specMapping struct {
	Path       *yaml.Node `yaml:"path"`
	Value      *yaml.Node `yaml:"value"`
	Template   *yaml.Node `yaml:"template"`
	Map        *yaml.Node `yaml:"map"`
	MapDefault *yaml.Node `yaml:"map_default"`
	Default    *yaml.Node `yaml:"default"`
	Fallback   *yaml.Node `yaml:"fallback"`
	Split      *yaml.Node `yaml:"split"`
	Lookup     *yaml.Node `yaml:"lookup"`
	// DerivedFrom names the field this one is derived from (fields only).
	DerivedFrom *yaml.Node `yaml:"derived_from"`
}

// compileSpec compiles a value spec: a plain string (a path, or a constant
// where ctx.constString; a template when it holds {{ or %%NAME%%), or a
// mapping with one of path (a path or a list of paths), value, template and
// optional split, map, map_default, fallback (another value spec), default.
func (c *compiler) compileSpec(n *yaml.Node, ctx specCtx) *spec {
	n = yamlconf.Resolve(n)
	s := &spec{where: ctx.where}
	switch n.Kind {
	case yaml.ScalarNode:
		switch {
		case n.Tag == "!!null":
			c.errs.Add(c.file, n, "%s: expected a path, a template or { path | value | template: ... }, got null", ctx.where)
			return nil
		case n.Tag != "!!str" && !ctx.constString:
			c.errs.Add(c.file, n, "%s: %s would be read as a path; write { value: %s } for a constant, or quote it for a path", ctx.where, n.Value, n.Value)
			return nil
		case yamlconf.IsTemplate(n.Value):
			s.kind = specTemplate
			if s.tmpl = c.compileTemplate(n, n.Value, ctx); s.tmpl == nil {
				return nil
			}
		case ctx.constString:
			v, err := yamlconf.ToValue(n)
			if err != nil {
				c.errs.Add(c.file, n, "%s: %v", ctx.where, err)
				return nil
			}
			s.kind, s.constant = specConst, event.Normalize(v)
		default:
			if !c.setPath(s, n, ctx) {
				return nil
			}
		}
		return s
	case yaml.MappingNode:
	default:
		c.errs.Add(c.file, n, "%s: expected a path, a template or { path | value | template: ... }, got %s", ctx.where, yamlconf.KindName(n))
		return nil
	}
	var sm specMapping
	before := len(c.errs)
	c.errs.Append(yamlconf.Decode(c.file, n, &sm))
	var sources []string
	for _, src := range []struct {
		key  string
		node *yaml.Node
	}{{"path", sm.Path}, {"value", sm.Value}, {"template", sm.Template}, {"lookup", sm.Lookup}} {
		if src.node != nil {
			sources = append(sources, src.key)
		}
	}
	switch len(sources) {
	case 0:
		if sm.Fallback != nil {
			c.errs.Add(c.file, n, "%s: fallback needs a source to fall back from: add path, template or lookup (a fallback alone is just its own value spec)", ctx.where)
			return nil
		}
		c.errs.Add(c.file, n, "%s: needs one of path, value, template or lookup", ctx.where)
		return nil
	case 1:
	default:
		c.errs.Add(c.file, n, "%s: takes one of path, value, template or lookup, got %s", ctx.where, strings.Join(sources, " and "))
		return nil
	}
	switch {
	case sm.Path != nil && sm.Path.Kind == yaml.SequenceNode:
		if !c.setPaths(s, sm.Path, ctx) {
			return nil
		}
	case sm.Path != nil:
		if sm.Path.Kind != yaml.ScalarNode || sm.Path.Tag == "!!null" {
			c.errs.Add(c.file, sm.Path, "%s: path: expected a string or a list of paths, got %s", ctx.where, yamlconf.KindName(sm.Path))
			return nil
		}
		if !c.setPath(s, sm.Path, ctx) {
			return nil
		}
	case sm.Value != nil:
		if sm.Value.Tag == "!!null" {
			c.errs.Add(c.file, sm.Value, "%s: value: null is no value; leave the key out instead", ctx.where)
			return nil
		}
		v, err := yamlconf.ToValue(sm.Value)
		if err != nil {
			c.errs.Add(c.file, sm.Value, "%s: value: %v", ctx.where, err)
			return nil
		}
		s.kind, s.constant = specConst, event.Normalize(v)
		if sm.Map != nil && sm.Value.Kind != yaml.ScalarNode {
			c.errs.Add(c.file, sm.Map, "%s: map applies to scalar values, but value is %s", ctx.where, yamlconf.KindName(sm.Value))
			return nil
		}
	case sm.Lookup != nil:
		s.kind = specLookup
		if s.lookup = c.compileLookup(sm.Lookup, ctx); s.lookup == nil {
			return nil
		}
	case sm.Template != nil:
		if sm.Template.Kind != yaml.ScalarNode {
			c.errs.Add(c.file, sm.Template, "%s: template: expected a string, got %s", ctx.where, yamlconf.KindName(sm.Template))
			return nil
		}
		s.kind = specTemplate
		if s.tmpl = c.compileTemplate(sm.Template, sm.Template.Value, ctx); s.tmpl == nil {
			return nil
		}
	}
	if sm.Map != nil {
		s.mapping = c.compileMap(sm.Map, ctx.where)
	}
	if sm.MapDefault != nil {
		switch {
		case sm.Map == nil:
			c.errs.Add(c.file, sm.MapDefault, "%s: map_default needs map", ctx.where)
		case sm.MapDefault.Kind != yaml.ScalarNode:
			c.errs.Add(c.file, sm.MapDefault, "%s: map_default must be a scalar, got %s", ctx.where, yamlconf.KindName(sm.MapDefault))
		default:
			v, err := yamlconf.ToValue(sm.MapDefault)
			if err != nil {
				c.errs.Add(c.file, sm.MapDefault, "%s: map_default: %v", ctx.where, err)
			}
			s.mapDefault, s.hasMapDefault = event.Normalize(v), true
		}
	}
	if sm.Default != nil {
		if sm.Default.Tag == "!!null" {
			c.errs.Add(c.file, sm.Default, "%s: default: null is the same as no default", ctx.where)
		} else if v, err := yamlconf.ToValue(sm.Default); err != nil {
			c.errs.Add(c.file, sm.Default, "%s: default: %v", ctx.where, err)
		} else {
			s.def, s.hasDef = event.Normalize(v), true
		}
	}
	if sm.Split != nil {
		if sm.Split.Kind != yaml.ScalarNode || sm.Split.Tag != "!!str" || sm.Split.Value == "" {
			c.errs.Add(c.file, sm.Split, "%s: split: expected the separator as a non-empty string (e.g. \",\"), got %s", ctx.where, yamlconf.KindName(sm.Split))
		} else {
			s.split = sm.Split.Value
		}
	}
	if sm.DerivedFrom != nil && (!strings.HasPrefix(ctx.where, "fields.") || strings.HasSuffix(ctx.where, ".fallback")) {
		c.errs.Add(c.file, sm.DerivedFrom, "%s: derived_from applies to an event field's own spec (fields: { owner_email: { path: ..., derived_from: owner } })", ctx.where)
	}
	if sm.Fallback != nil {
		switch {
		case sm.Value != nil:
			c.errs.Add(c.file, sm.Fallback, "%s: fallback does not go with value (a constant is never absent); use default", ctx.where)
		case sm.Fallback.Tag == "!!null":
			c.errs.Add(c.file, sm.Fallback, "%s: fallback: null is the same as no fallback", ctx.where)
		default:
			fc := ctx
			fc.where = ctx.where + ".fallback"
			if s.fallback = c.compileSpec(sm.Fallback, fc); s.fallback == nil && len(c.errs) == before {
				c.errs.Add(c.file, sm.Fallback, "%s: invalid fallback", ctx.where)
			}
		}
	}
	if len(c.errs) > before {
		return nil
	}
	return s
}

// setPaths compiles a list of paths (the first one with a non-empty value
// wins).
func (c *compiler) setPaths(s *spec, n *yaml.Node, ctx specCtx) bool {
	if len(n.Content) == 0 {
		c.errs.Add(c.file, n, "%s: path: empty list; give one path or more (the first with a non-empty value wins)", ctx.where)
		return false
	}
	ok := true
	refs := make([]*pathRef, 0, len(n.Content))
	for i, it := range n.Content {
		it = yamlconf.Resolve(it)
		if it.Kind != yaml.ScalarNode || it.Tag != "!!str" {
			c.errs.Add(c.file, it, "%s: path[%d]: expected a path (a string), got %s", ctx.where, i, yamlconf.KindName(it))
			ok = false
			continue
		}
		if yamlconf.IsTemplate(it.Value) {
			c.errs.Add(c.file, it, "%s: path[%d]: %q is a template, not a path; use fallback: { template: ... } for a computed value", ctx.where, i, it.Value)
			ok = false
			continue
		}
		ref, err := parsePath(it.Value, ctx.sc)
		if err != nil {
			c.errs.Add(c.file, it, "%s: path %q: %v", ctx.where, it.Value, err)
			ok = false
			continue
		}
		refs = append(refs, ref)
	}
	if !ok {
		return false
	}
	s.kind, s.refs = specPaths, refs
	return true
}

func (c *compiler) setPath(s *spec, n *yaml.Node, ctx specCtx) bool {
	ref, err := parsePath(n.Value, ctx.sc)
	if err != nil {
		c.errs.Add(c.file, n, "%s: path %q: %v", ctx.where, n.Value, err)
		return false
	}
	s.kind, s.ref = specPath, ref
	return true
}

// compileLookup compiles a lookup source: { in, key, equals, get }. in
// and equals are paths as elsewhere (in must point into the payload); key
// and get are paths inside each element of the list.
func (c *compiler) compileLookup(n *yaml.Node, ctx specCtx) *lookupSpec {
	if n.Kind != yaml.MappingNode {
		c.errs.Add(c.file, n, "%s: lookup: expected { in, key, equals, get }, got %s", ctx.where, yamlconf.KindName(n))
		return nil
	}
	var y struct {
		In     *yaml.Node `yaml:"in,required"`
		Key    *yaml.Node `yaml:"key,required"`
		Equals *yaml.Node `yaml:"equals,required"`
		Get    *yaml.Node `yaml:"get"`
	}
	if errs := yamlconf.Decode(c.file, n, &y); len(errs) > 0 {
		for _, e := range errs {
			if strings.HasPrefix(e.Msg, "missing required key") {
				e.Msg = ctx.where + ": lookup: " + e.Msg
			}
		}
		c.errs.Append(errs)
		return nil
	}
	before := len(c.errs)
	text := func(key string, v *yaml.Node) (string, bool) {
		if v.Kind != yaml.ScalarNode || v.Tag != "!!str" || v.Value == "" {
			c.errs.Add(c.file, v, "%s: lookup: %s: expected a path (a string), got %s", ctx.where, key, yamlconf.KindName(v))
			return "", false
		}
		return v.Value, true
	}
	path := func(key string, v *yaml.Node) *pathRef {
		src, ok := text(key, v)
		if !ok {
			return nil
		}
		ref, err := parsePath(src, ctx.sc)
		if err != nil {
			c.errs.Add(c.file, v, "%s: lookup: %s: path %q: %v", ctx.where, key, src, err)
			return nil
		}
		return ref
	}
	inner := func(key string, v *yaml.Node) string {
		src, ok := text(key, v)
		if !ok {
			return ""
		}
		if strings.HasPrefix(src, "$") {
			c.errs.Add(c.file, v, "%s: lookup: %s: %q: key and get are paths inside each element of the list; $ prefixes are not allowed here", ctx.where, key, src)
			return ""
		}
		if err := checkGJSON(src); err != nil {
			c.errs.Add(c.file, v, "%s: lookup: %s: %q: %v", ctx.where, key, src, err)
			return ""
		}
		return src
	}
	l := &lookupSpec{in: path("in", y.In), key: inner("key", y.Key), equals: path("equals", y.Equals)}
	if l.in != nil && l.in.base != baseRoot && l.in.base != baseLevel {
		c.errs.Add(c.file, y.In, "%s: lookup: in: %s is not a list of the payload", ctx.where, l.in.src)
	}
	if y.Get != nil {
		l.get = inner("get", y.Get)
	}
	if len(c.errs) > before {
		return nil
	}
	return l
}

// compileMap compiles a `map` of scalar -> scalar (null drops the value).
func (c *compiler) compileMap(n *yaml.Node, where string) map[string]any {
	if n.Kind != yaml.MappingNode {
		c.errs.Add(c.file, n, "%s: map: expected a mapping of value: replacement, got %s", where, yamlconf.KindName(n))
		return nil
	}
	out := make(map[string]any, len(n.Content)/2)
	for _, kv := range yamlconf.Pairs(n) {
		if kv.Key.Kind != yaml.ScalarNode {
			c.errs.Add(c.file, kv.Key, "%s: map keys must be scalars, got %s", where, yamlconf.KindName(kv.Key))
			continue
		}
		if kv.Value.Kind != yaml.ScalarNode {
			c.errs.Add(c.file, kv.Value, "%s: map value for %q must be a scalar, got %s", where, kv.Key.Value, yamlconf.KindName(kv.Value))
			continue
		}
		key := kv.Key.Value
		if tag := kv.Key.ShortTag(); tag == "!!float" || tag == "!!int" {
			// An unquoted number matches a payload's number as the payload
			// spells it canonically (keyString): 1.0 is the key "1".
			key = numberText(key)
		}
		if _, dup := out[key]; dup {
			c.errs.Add(c.file, kv.Key, "%s: map key %q appears twice", where, key)
			continue
		}
		v, err := yamlconf.ToValue(kv.Value)
		if err != nil {
			c.errs.Add(c.file, kv.Value, "%s: map: %v", where, err)
			continue
		}
		out[key] = event.Normalize(v)
	}
	return out
}

// compileTemplate compiles a template and checks its literal .Path, .Root,
// .Var and .Field arguments and the names it uses on its data.
func (c *compiler) compileTemplate(n *yaml.Node, src string, ctx specCtx) *tmpl {
	t, err := yamlconf.CompileTemplate(ctx.where, src)
	if err != nil {
		c.errs.Add(c.file, n, "%s: %v", ctx.where, err)
		return nil
	}
	calls, err := inspectTemplate(t)
	if err != nil {
		c.errs.Add(c.file, n, "%s: %v", ctx.where, err)
		return nil
	}
	ok := true
	for _, call := range calls {
		switch call.method {
		case "Path":
			ref, err := parsePath(call.arg, ctx.sc)
			if err != nil {
				c.errs.Add(c.file, n, "%s: template: .Path %q: %v", ctx.where, call.arg, err)
				ok = false
				continue
			}
			ctx.e.tmplPaths[call.arg] = ref
		case "Root":
			if call.arg != "" {
				if err := checkGJSON(call.arg); err != nil {
					c.errs.Add(c.file, n, "%s: template: .Root %q: %v", ctx.where, call.arg, err)
					ok = false
				}
			}
		case "Field":
			if msg := ctx.fieldProblem(call.arg); msg != "" {
				c.errs.Add(c.file, n, "%s: template uses .Field %q%s", ctx.where, call.arg, msg)
				ok = false
			}
		case "Var":
			if slices.Contains(ctx.vars, call.arg) {
				continue
			}
			ok = false
			if slices.Contains(ctx.e.varNames, call.arg) {
				c.errs.Add(c.file, n, "%s: template uses variable %q before it is defined (vars are evaluated in file order)", ctx.where, call.arg)
				continue
			}
			defined := "this entry has no vars"
			if len(ctx.e.varNames) > 0 {
				defined = "this entry defines: " + strings.Join(ctx.e.varNames, ", ")
			}
			c.errs.Add(c.file, n, "%s: template uses unknown variable %q%s (%s)", ctx.where, call.arg, yamlconf.DidYouMean(call.arg, ctx.e.varNames), defined)
		}
	}
	if !ok {
		return nil
	}
	tm := &tmpl{r: yamlconf.NewRenderer(t)}
	c.tmpls = append(c.tmpls, tm)
	return tm
}

// compileChange compiles one `changes` entry: { from, to } value specs; to
// defaults to the event's field of the same name. A side without its own map
// uses the map of that field.
func (c *compiler) compileChange(kv yamlconf.KeyValue, e *entry, ctx func(string) specCtx) (changeSpec, bool) {
	name := kv.Key.Value
	where := "changes." + name
	var cs struct {
		From *yaml.Node `yaml:"from"`
		To   *yaml.Node `yaml:"to"`
	}
	if kv.Value.Kind != yaml.MappingNode {
		c.errs.Add(c.file, kv.Value, "%s: expected { from: ..., to: ... }, got %s", where, yamlconf.KindName(kv.Value))
		return changeSpec{}, false
	}
	if errs := yamlconf.Decode(c.file, kv.Value, &cs); len(errs) > 0 {
		c.errs.Append(errs)
		return changeSpec{}, false
	}
	var field *spec
	for _, f := range e.fields {
		if f.name == name {
			field = f.spec
		}
	}
	if cs.From == nil {
		c.errs.Add(c.file, kv.Value, "%s: missing required key \"from\"", where)
		return changeSpec{}, false
	}
	if cs.To == nil && field == nil {
		c.errs.Add(c.file, kv.Value, "%s: needs to, or a field %q in fields to take it from", where, name)
		return changeSpec{}, false
	}
	out := changeSpec{name: name}
	inherit := func(s *spec) *spec {
		if s != nil && s.mapping == nil && field != nil && field.mapping != nil {
			cp := *s
			cp.mapping, cp.mapDefault, cp.hasMapDefault = field.mapping, field.mapDefault, field.hasMapDefault
			return &cp
		}
		return s
	}
	if out.from = inherit(c.compileSpec(cs.From, ctx(where+".from"))); out.from == nil {
		return changeSpec{}, false
	}
	if cs.To != nil {
		if out.to = inherit(c.compileSpec(cs.To, ctx(where+".to"))); out.to == nil {
			return changeSpec{}, false
		}
	}
	return out, true
}

func (c *compiler) compileActor(n *yaml.Node, e *entry, ctx func(string) specCtx) {
	var as struct {
		Type  *yaml.Node `yaml:"type"`
		ID    *yaml.Node `yaml:"id"`
		Name  *yaml.Node `yaml:"name"`
		Email *yaml.Node `yaml:"email"`
	}
	if errs := yamlconf.Decode(c.file, n, &as); len(errs) > 0 {
		c.errs.Append(errs)
		return
	}
	if as.Type != nil {
		tc := ctx("actor.type")
		tc.constString = true
		if s := c.compileSpec(as.Type, tc); s != nil {
			c.checkActorTypes(as.Type, s)
			e.actor.typ = s
		}
	}
	for _, f := range []struct {
		node *yaml.Node
		dst  **spec
		name string
	}{{as.ID, &e.actor.id, "actor.id"}, {as.Name, &e.actor.name, "actor.name"}, {as.Email, &e.actor.email, "actor.email"}} {
		if f.node != nil {
			*f.dst = c.compileSpec(f.node, ctx(f.name))
		}
	}
}

// checkActorTypes refuses every actor type spec s can produce that is
// known at compile time (its constants, map values, map_default and
// default, through its fallbacks) and is not one of actorTypes. gateway
// marks Hookline's own changes, which rules skip: only an actor.type that
// is a constant may say it, never a value a payload picks or leads to.
func (c *compiler) checkActorTypes(n *yaml.Node, s *spec) {
	constant := s.kind == specConst
	check := func(where string, v any) {
		if v == nil {
			return
		}
		t := toString(v)
		switch {
		case !slices.Contains(actorTypes, t):
			c.errs.Add(c.file, n, "%s: unknown actor type %q%s (valid: %s)", where, t, yamlconf.DidYouMean(t, actorTypes), strings.Join(actorTypes, ", "))
		case t == event.ActorGateway && !constant:
			c.errs.Add(c.file, n, "%s: actor type %q marks Hookline's own changes (rules skip them) and may only be a constant actor.type, not a value the payload selects; use customer, agent or system", where, t)
		}
	}
	for f := s; f != nil; f = f.fallback {
		if f.kind == specConst {
			check(f.where, f.constant)
		}
		keys := make([]string, 0, len(f.mapping))
		for k := range f.mapping {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			check(fmt.Sprintf("%s: map value for %q", f.where, k), f.mapping[k])
		}
		if f.hasMapDefault {
			check(f.where+": map_default", f.mapDefault)
		}
		if f.hasDef {
			check(f.where+": default", f.def)
		}
	}
}

// fieldProblem says why .Field name always renders "" here (the rest of
// the message), or "" when it reads a field computed before: one of
// ctx.fields, or a dotted name inside one (an object field is flattened).
func (ctx specCtx) fieldProblem(name string) string {
	defines := func(fields []string) bool {
		for _, f := range fields {
			if name == f || strings.HasPrefix(name, f+".") {
				return true
			}
		}
		return false
	}
	switch {
	case defines(ctx.fields):
		return ""
	case ctx.inVars && defines(ctx.allFields):
		return ", but vars are computed before fields: it is always empty here"
	case defines(ctx.allFields):
		return " before it is computed (fields are computed in file order): it is always empty here; move this field below it"
	case len(ctx.allFields) == 0:
		return ", but this entry has no fields"
	}
	return fmt.Sprintf(", which this entry does not define%s (fields: %s)", yamlconf.DidYouMean(name, ctx.allFields), strings.Join(ctx.allFields, ", "))
}
