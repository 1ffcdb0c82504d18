package rules

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"text/template"
	"time"

	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/internal/yamlconf"
	"gopkg.in/yaml.v3"
)

// rawFile is the root of a rules file.
type rawFile struct {
	Rules []*yaml.Node `yaml:"rules"`
}

// rawRule is one rule as written; nodes are kept where compilation needs
// positions or polymorphic values.
type rawRule struct {
	Pos            yamlconf.Pos `yaml:"-"`
	ID             string       `yaml:"id,required"`
	Name           string       `yaml:"name"`
	Description    string       `yaml:"description"`
	Enabled        *bool        `yaml:"enabled"`
	On             *yaml.Node   `yaml:"on,required"`
	Connector      *yaml.Node   `yaml:"connector"`
	Timezone       *yaml.Node   `yaml:"timezone"`
	When           *yaml.Node   `yaml:"when"`
	Then           *yaml.Node   `yaml:"then,required"`
	DeliverTo      *yaml.Node   `yaml:"deliver_to"`
	Limit          *yaml.Node   `yaml:"limit"`
	OncePerItem    bool         `yaml:"once_per_item"`
	OnOwnChanges   bool         `yaml:"on_own_changes"`
	AllowRetrigger bool         `yaml:"allow_retrigger"`
	For            *yaml.Node   `yaml:"for"`
	Idle           *yaml.Node   `yaml:"idle"`
	Since          *yaml.Node   `yaml:"since"`
	Within         *yaml.Node   `yaml:"within"`
	PauseWhen      *yaml.Node   `yaml:"pause_when"`
	Calendar       *yaml.Node   `yaml:"calendar"`
}

type rawLimit struct {
	Max   int        `yaml:"max,required"`
	Per   *yaml.Node `yaml:"per,required"`
	Scope *yaml.Node `yaml:"scope"`
}

// Event type patterns and rule ids.
var (
	idPattern   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
	typePattern = regexp.MustCompile(`^[A-Za-z0-9_.*-]+$`)
	fieldPath   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$`)
)

// OnManual is the `on` value of a rule that only runs on demand (Set.Run).
const OnManual = "manual"

// compiler holds what compiling one set needs; it lives for one Compile call.
type compiler struct {
	loc        *time.Location
	enums      map[string]*fieldEnums
	connectors map[string]bool
	connList   []string
	connVars   map[string]map[string]bool
	connTypes  map[string][]string
	templates  map[string]*template.Template // by source: compiled once per set
	calendars  map[string]*Calendar
	openSpans  map[*Calendar]openSpan // computed once per calendar a rule names
	errs       yamlconf.Errors
	warns      yamlconf.Errors
}

// ruleCtx is what compiling one rule's parts needs to know about the rule.
type ruleCtx struct {
	file       string
	id         string
	connectors []string
	loc        *time.Location
	deliverTo  string
	timed      bool // the rule has for: or idle: (its conditions are re-checked by timers)
	nodes      int  // condition and body nodes compiled so far (aliases expanded)
	tooBig     bool // the node budget was exceeded and reported
}

// maxRuleNodes bounds the conditions and body values one rule may expand
// to, so that YAML aliases cannot blow a rule up exponentially: as much as
// one value converted by yamlconf.
const maxRuleNodes = yamlconf.MaxValueNodes

// spend counts one compiled node against the rule's budget; false means
// the budget is exceeded (reported once per rule).
func (c *compiler) spend(rc *ruleCtx, n *yaml.Node) bool {
	rc.nodes++
	if rc.nodes <= maxRuleNodes {
		return true
	}
	if !rc.tooBig {
		rc.tooBig = true
		c.errorf(rc.file, n, "rule %q is too large: its conditions and values expand to more than %d nodes (check YAML aliases)", rc.id, maxRuleNodes)
	}
	return false
}

func (c *compiler) errorf(file string, n *yaml.Node, format string, args ...any) {
	c.errs.Add(file, n, format, args...)
}

// Compile compiles rule files into an immutable Set. All problems of all
// files are reported, sorted by position; when there is any, the Set is nil:
// a rule set is accepted or refused as a whole.
func Compile(files []File, opts Options) (*Set, yamlconf.Errors) {
	c := newCompiler(opts)
	s := &Set{byID: map[string]*Rule{}}
	s.maxFire = opts.MaxFiringsPerHour
	if s.maxFire == 0 {
		s.maxFire = DefaultMaxFiringsPerHour
	}
	s.maxHops = opts.MaxHops
	if s.maxHops == 0 {
		s.maxHops = DefaultMaxHops
	}
	s.hopSkip = fmt.Sprintf("hop limit %d reached", s.maxHops)
	s.capSkip = fmt.Sprintf("firing cap %d/h reached (loop guard)", s.maxFire)

	for _, f := range files {
		if f.Node == nil {
			continue
		}
		var raw rawFile
		if errs := yamlconf.Decode(f.Name, f.Node, &raw); len(errs) > 0 {
			c.errs.Append(errs)
			continue
		}
		for _, rn := range raw.Rules {
			r := c.rule(f.Name, rn)
			if r == nil {
				continue
			}
			if prev, dup := s.byID[r.ID]; dup {
				c.errorf(f.Name, yamlconf.Lookup(rn, "id"), "rule id %q is already used at %s; ids must be unique across all rule files", r.ID, prev.Pos)
				continue
			}
			r.index = len(s.rules)
			s.rules = append(s.rules, r)
			s.byID[r.ID] = r
		}
	}
	if len(c.errs) > 0 {
		c.errs.Sort()
		return nil, c.errs
	}
	var plain, timed []*Rule
	for _, r := range s.rules {
		if r.timing != nil {
			timed = append(timed, r)
		} else {
			plain = append(plain, r)
		}
	}
	s.idx = buildIndex(plain)
	s.tidx = buildIndex(timed)
	c.warns.Sort()
	s.warnings = c.warns
	return s, nil
}

func newCompiler(opts Options) *compiler {
	c := &compiler{loc: opts.Location, enums: map[string]*fieldEnums{}, templates: map[string]*template.Template{}, calendars: opts.Calendars,
		openSpans: map[*Calendar]openSpan{}}
	if c.loc == nil {
		c.loc = time.UTC
	}
	defaults := DefaultEnums()
	for field, order := range opts.Enums {
		defaults[field] = order
	}
	for field, order := range defaults {
		c.enums[field] = &fieldEnums{def: newEnumOrder(order), byConn: map[string]*enumOrder{}}
	}
	for conn, fields := range opts.ConnectorEnums {
		for field, order := range fields {
			fe := c.enums[field]
			if fe == nil {
				fe = &fieldEnums{byConn: map[string]*enumOrder{}}
				c.enums[field] = fe
			}
			fe.byConn[conn] = newEnumOrder(order)
		}
	}
	if opts.Connectors != nil {
		c.connectors = map[string]bool{}
		for _, n := range opts.Connectors {
			c.connectors[n] = true
		}
		c.connList = append([]string(nil), opts.Connectors...)
		sort.Strings(c.connList)
	}
	c.connTypes = opts.ConnectorTypes
	if opts.ConnectorVars != nil {
		c.connVars = map[string]map[string]bool{}
		for conn, vars := range opts.ConnectorVars {
			m := map[string]bool{}
			for _, v := range vars {
				m[v] = true
			}
			c.connVars[conn] = m
		}
	}
	return c
}

// checkOnTypes warns about each `on:` pattern of r that no event type of
// its connectors matches, when every one of them has a known set of types
// (Options.ConnectorTypes): such a rule never runs, most often because of
// a misspelt type.
func (c *compiler) checkOnTypes(file string, on *yaml.Node, r *Rule) {
	if c.connTypes == nil || on == nil || r.Manual || len(r.Connectors) == 0 {
		return
	}
	produced := []string{event.TypeTimerFired}
	for _, conn := range r.Connectors {
		types, known := c.connTypes[conn]
		if !known {
			return
		}
		produced = append(produced, types...)
	}
	what := "connector " + r.Connectors[0] + " produces"
	if len(r.Connectors) > 1 {
		what = "connectors " + strings.Join(r.Connectors, ", ") + " produce"
	}
	for _, p := range r.On {
		if !slices.ContainsFunc(produced, func(t string) bool { return typeMatches(p, t) }) {
			at := on // the pattern's own item when on: is a list
			if on.Kind == yaml.SequenceNode {
				for _, item := range on.Content {
					if item.Value == p {
						at = item
						break
					}
				}
			}
			c.warns.Add(file, at, "rule %q: on: %q matches no event type that %s%s", r.ID, p, what, yamlconf.DidYouMean(p, produced))
		}
	}
}

// patternKind is how an `on:` pattern matches event types.
type patternKind uint8

const (
	patExact  patternKind = iota // no *: the type itself
	patPrefix                    // one * at the end: types starting with the rest
	patGlob                      // any other *: a path.Match glob
)

// splitPattern classifies an `on:` pattern; prefix is the pattern without
// its final * for patPrefix.
func splitPattern(p string) (kind patternKind, prefix string) {
	switch star := strings.IndexByte(p, '*'); {
	case star < 0:
		return patExact, p
	case star == len(p)-1:
		return patPrefix, p[:star]
	}
	return patGlob, p
}

// typeMatches reports whether event type t matches an `on:` pattern as the
// rule index does (splitPattern).
func typeMatches(pattern, t string) bool {
	switch kind, prefix := splitPattern(pattern); kind {
	case patExact:
		return pattern == t
	case patPrefix:
		return strings.HasPrefix(t, prefix)
	}
	ok, _ := path.Match(pattern, t)
	return ok
}

// rule compiles one rule node; it returns nil when the rule has errors that
// make it unusable (errors are recorded either way).
func (c *compiler) rule(file string, n *yaml.Node) *Rule {
	var raw rawRule
	before := len(c.errs)
	c.errs.Append(yamlconf.Decode(file, n, &raw))
	if len(c.errs) > before && raw.ID == "" {
		return nil
	}
	r := &Rule{ID: raw.ID, Name: raw.Name, Description: raw.Description, Pos: raw.Pos, Enabled: true,
		OncePerItem: raw.OncePerItem, OnOwnChanges: raw.OnOwnChanges, AllowRetrigger: raw.AllowRetrigger}
	if raw.Enabled != nil {
		r.Enabled = *raw.Enabled
	}
	if raw.ID == "" {
		c.errorf(file, n, "rule id must not be empty: every rule needs a unique id (it names the rule in traces, limits and the API)")
		return nil
	}
	if !idPattern.MatchString(raw.ID) {
		c.errorf(file, yamlconf.Lookup(n, "id"), "rule id %q: use letters, digits, '-', '_' and '.', starting with a letter or digit (at most 128 characters)", raw.ID)
	}
	rc := &ruleCtx{file: file, id: raw.ID, loc: c.loc}

	if raw.On != nil {
		r.On = c.stringList(file, raw.On, "event type")
		for _, p := range r.On {
			if p == OnManual {
				r.Manual = true
				if len(r.On) > 1 {
					c.errorf(file, raw.On, "rule %q: `on: manual` marks a rule that only runs on demand; it cannot be combined with event types", r.ID)
				}
				continue
			}
			if !typePattern.MatchString(p) {
				c.errorf(file, raw.On, "rule %q: invalid event type pattern %q (use entity.verb, with * as a wildcard, e.g. ticket.*)", r.ID, p)
			}
		}
	}
	if raw.Connector != nil {
		// A connector listed twice would index the rule twice, and it
		// would fire twice per event: it is listed once.
		names := c.stringList(file, raw.Connector, "connector name")
		r.Connectors = names[:0]
		for _, name := range names {
			if slices.Contains(r.Connectors, name) {
				c.warns.Add(file, raw.Connector, "rule %q: connector %q is listed twice; it counts once", r.ID, name)
				continue
			}
			r.Connectors = append(r.Connectors, name)
			c.checkConnector(file, raw.Connector, name, "connector")
		}
		rc.connectors = r.Connectors
		c.checkOnTypes(file, raw.On, r)
	}
	if raw.DeliverTo != nil {
		if raw.DeliverTo.Kind != yaml.ScalarNode || raw.DeliverTo.Value == "" {
			c.errorf(file, raw.DeliverTo, "deliver_to: expected a connector name, got %s", yamlconf.KindName(raw.DeliverTo))
		} else {
			r.DeliverTo = raw.DeliverTo.Value
			c.checkConnector(file, raw.DeliverTo, r.DeliverTo, "deliver_to")
		}
		rc.deliverTo = r.DeliverTo
	}
	if raw.Timezone != nil {
		if loc := c.location(file, raw.Timezone); loc != nil {
			rc.loc = loc
			r.Timezone = raw.Timezone.Value
		}
	}
	if raw.Limit != nil {
		r.Limit, r.limitS = c.limit(file, raw.Limit)
	}
	if raw.AllowRetrigger && raw.Limit == nil {
		c.errorf(file, yamlconf.Lookup(n, "allow_retrigger"), "rule %q: allow_retrigger: true needs a limit (e.g. limit: { max: 1, per: 1h })", r.ID)
	}
	rc.timed = raw.For != nil || raw.Idle != nil
	if raw.When != nil {
		r.when = c.condOrError(rc, raw.When, "when")
	}
	r.timing = c.timing(rc, r, &raw, n)
	if raw.Then != nil {
		r.actions = c.actions(rc, raw.Then)
	}
	if !r.AllowRetrigger {
		c.loopGuard(rc, r)
	}
	return r
}

// stringList reads a scalar or a list of scalars; every bad item is
// reported.
func (c *compiler) stringList(file string, n *yaml.Node, what string) []string {
	out, bad, items := scalarItems(n)
	for _, it := range bad {
		c.errorf(file, it, "expected a %s, got %s", what, yamlconf.KindName(it))
	}
	if len(out) == 0 && items == 0 {
		c.errorf(file, n, "expected at least one %s", what)
	}
	return out
}

// scalarItems reads a scalar or a list of scalars: the trimmed non-empty
// values, the items that are not (null, empty, not a scalar), and how many
// items there were.
func scalarItems(n *yaml.Node) (out []string, bad []*yaml.Node, items int) {
	list := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		list = n.Content
	}
	for _, it := range list {
		it = yamlconf.Resolve(it)
		if it.Kind != yaml.ScalarNode || it.Tag == "!!null" || strings.TrimSpace(it.Value) == "" {
			bad = append(bad, it)
			continue
		}
		out = append(out, strings.TrimSpace(it.Value))
	}
	return out, bad, len(list)
}

func (c *compiler) checkConnector(file string, n *yaml.Node, name, key string) {
	if c.connectors == nil || c.connectors[name] {
		return
	}
	c.errorf(file, n, "%s: unknown connector %q%s (known: %s)", key, name, yamlconf.DidYouMean(name, c.connList), strings.Join(c.connList, ", "))
}

func (c *compiler) location(file string, n *yaml.Node) *time.Location {
	if n.Kind != yaml.ScalarNode || n.Value == "" {
		c.errorf(file, n, "expected an IANA time zone like Europe/Rome, got %s", yamlconf.KindName(n))
		return nil
	}
	loc, err := time.LoadLocation(n.Value)
	if err != nil {
		c.errorf(file, n, "unknown time zone %q (use an IANA name like Europe/Rome or America/New_York)", n.Value)
		return nil
	}
	return loc
}

func (c *compiler) limit(file string, n *yaml.Node) (*Limit, string) {
	var raw rawLimit
	errs := yamlconf.Decode(file, n, &raw)
	c.errs.Append(errs)
	if len(errs) > 0 {
		return nil, ""
	}
	l := &Limit{Max: raw.Max, Scope: ScopeItem}
	if raw.Max < 1 {
		c.errorf(file, yamlconf.Lookup(n, "max"), "limit max must be at least 1, got %d", raw.Max)
	}
	perText := ""
	if raw.Per.Kind != yaml.ScalarNode {
		c.errorf(file, raw.Per, "limit per: expected a duration like 1h or 24h, got %s", yamlconf.KindName(raw.Per))
	} else if d, err := yamlconf.ParseDuration(raw.Per.Value); err != nil || d <= 0 {
		c.errorf(file, raw.Per, "limit per: expected a positive duration like 1h or 24h, got %q", raw.Per.Value)
	} else {
		l.Per, perText = d, raw.Per.Value
	}
	if raw.Scope != nil {
		switch s := raw.Scope.Value; s {
		case ScopeItem, ScopeRule:
			l.Scope = s
		default:
			c.errorf(file, raw.Scope, "limit scope: unknown scope %q%s (valid: item, rule)", s, yamlconf.DidYouMean(s, []string{ScopeItem, ScopeRule}))
		}
	}
	return l, fmt.Sprintf("limit %d per %s reached", l.Max, perText)
}

// condOrError compiles the condition under key (when, pause_when). A node
// that yields no condition is always an error: were it silently dropped,
// the rule would hold unconditionally.
func (c *compiler) condOrError(rc *ruleCtx, n *yaml.Node, key string) *cond {
	before := len(c.errs)
	k := c.cond(rc, n)
	if k == nil && len(c.errs) == before && !rc.tooBig { // too big: said once
		c.errorf(rc.file, n, "rule %q: %s: no condition that can be checked", rc.id, key)
	}
	return k
}

// cond compiles a condition node: a mapping (one condition or a tree) or a
// list (all of its items).
func (c *compiler) cond(rc *ruleCtx, n *yaml.Node) *cond {
	n = yamlconf.Resolve(n)
	file := rc.file
	if !c.spend(rc, n) {
		return nil
	}
	switch n.Kind {
	case yaml.SequenceNode:
		return c.group(rc, opAll, "all", n)
	case yaml.MappingNode:
	default:
		c.errorf(file, n, "expected a condition like { field: status, is: open }, or all:/any:/not:, got %s", yamlconf.KindName(n))
		return nil
	}
	pairs := yamlconf.Pairs(n)
	var fieldN, tzN *yaml.Node
	var opKVs []yamlconf.KeyValue
	unknown := false
	for _, kv := range pairs {
		switch k := kv.Key.Value; k {
		case "field":
			fieldN = kv.Value
		case "tz":
			tzN = kv.Value
		default:
			if _, ok := fieldOperators[k]; ok {
				opKVs = append(opKVs, kv)
				continue
			}
			c.errorf(file, kv.Key, "unknown condition key %q%s (operators: %s)", k, yamlconf.DidYouMean(k, conditionKeys()), strings.Join(operatorNames(), ", "))
			unknown = true
		}
	}
	if len(opKVs) == 0 {
		if unknown {
			return nil
		}
		switch {
		case fieldN != nil:
			c.errorf(file, n, "condition on field %q has no operator (e.g. is, in, changed_to, gt)", fieldN.Value)
		case len(pairs) == 0:
			c.errorf(file, n, "empty condition")
		default: // tz: alone
			c.errorf(file, n, `condition has no operator (tz: only sets the time zone of a time_of_day or day_of_week condition, e.g. { time_of_day: "09:00-18:00", tz: Europe/Madrid })`)
		}
		return nil
	}
	if len(opKVs) > 1 {
		c.errorf(file, opKVs[1].Key, "one operator per condition (found %q and %q); combine several with all: or any:", opKVs[0].Key.Value, opKVs[1].Key.Value)
		return nil
	}
	kv := opKVs[0]
	o := fieldOperators[kv.Key.Value]
	switch o {
	case opAll, opAny, opNot:
		if len(pairs) > 1 {
			c.errorf(file, n, "%s: must be the only key of its mapping", kv.Key.Value)
			return nil
		}
		if o == opNot {
			v := yamlconf.Resolve(kv.Value)
			if v.Kind != yaml.MappingNode {
				c.errorf(file, v, "not: takes one condition (a mapping); to negate several, wrap them: not: { any: [...] }")
				return nil
			}
			kid := c.cond(rc, v)
			if kid == nil {
				return nil
			}
			return &cond{op: opNot, kids: []*cond{kid}, text: "not (" + kid.text + ")", pos: yamlconf.At(file, kv.Key).String()}
		}
		return c.group(rc, o, kv.Key.Value, kv.Value)
	}
	return c.leafCond(rc, n, kv, fieldN, tzN)
}

func (c *compiler) group(rc *ruleCtx, o op, name string, n *yaml.Node) *cond {
	n = yamlconf.Resolve(n)
	if n.Kind != yaml.SequenceNode {
		c.errorf(rc.file, n, "%s: expected a list of conditions, got %s", name, yamlconf.KindName(n))
		return nil
	}
	if len(n.Content) == 0 {
		c.errorf(rc.file, n, "%s: empty list of conditions", name)
		return nil
	}
	g := &cond{op: o, pos: yamlconf.At(rc.file, n).String()}
	texts := make([]string, 0, len(n.Content))
	for _, item := range n.Content {
		if k := c.cond(rc, item); k != nil {
			g.kids = append(g.kids, k)
			texts = append(texts, k.text)
		}
	}
	if len(g.kids) == 0 {
		return nil
	}
	g.text = name + " [" + strings.Join(texts, "; ") + "]"
	return g
}

// operatorNames lists the operators (not tree keys) for messages.
func operatorNames() []string {
	var out []string
	for k, o := range fieldOperators {
		if o > opNot {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// leafCond compiles a condition with one operator.
func (c *compiler) leafCond(rc *ruleCtx, n *yaml.Node, kv yamlconf.KeyValue, fieldN, tzN *yaml.Node) *cond {
	file := rc.file
	name := kv.Key.Value
	o := fieldOperators[name]
	v := kv.Value
	l := &cond{op: o, loc: rc.loc, pos: yamlconf.At(file, n).String()}
	if o == opTimeOfDay || o == opDayOfWeek {
		if fieldN != nil {
			c.errorf(file, fieldN, "%s takes no field: it reads the current time", name)
			return nil
		}
		if tzN != nil {
			loc := c.location(file, tzN)
			if loc == nil {
				return nil
			}
			l.loc = loc
		}
		zone := l.loc.String()
		if o == opTimeOfDay {
			if !c.timeOfDay(file, v, l) {
				return nil
			}
			l.text = fmt.Sprintf("time_of_day %s (%s)", v.Value, zone)
		} else {
			if !c.dayOfWeek(file, v, l) {
				return nil
			}
			l.text = fmt.Sprintf("day_of_week %s (%s)", nodeText(v), zone)
		}
		return l
	}
	if fieldN == nil {
		c.errorf(file, kv.Key, "%s needs a field: (e.g. { field: status, %s: ... })", name, name)
		return nil
	}
	if tzN != nil {
		c.errorf(file, tzN, "tz: only applies to time_of_day and day_of_week conditions")
	}
	if fieldN.Kind != yaml.ScalarNode || !fieldPath.MatchString(fieldN.Value) {
		c.errorf(file, fieldN, "field: expected a field path like status, customer.email or custom.order_id, got %s", yamlconf.KindName(fieldN))
		return nil
	}
	f := newFieldRef(fieldN.Value)
	if !c.checkField(file, fieldN, f) {
		return nil
	}
	l.field = f
	l.enums = c.enums[f.path]
	l.text = f.path + " " + name + " " + nodeText(v)
	if !c.checkOperatorOnType(file, kv.Key, f, name, o, l.enums != nil) || !c.timedLeafCheck(rc, kv.Key, name, o, f) {
		return nil
	}
	ok := true
	switch o {
	case opIs, opIsNot:
		ok = c.scalars(rc, v, l, name, false)
	case opIn, opNotIn:
		if v.Kind == yaml.MappingNode {
			ref := yamlconf.Lookup(v, "field")
			if ref == nil || len(v.Content) != 2 || ref.Kind != yaml.ScalarNode || !fieldPath.MatchString(ref.Value) {
				c.errorf(file, v, "%s: expected a list of values or { field: <a list field> }, got a mapping", name)
				return nil
			}
			lr := newFieldRef(ref.Value)
			l.listRef = &lr
			return l
		}
		ok = c.scalars(rc, v, l, name, true)
	case opChangedTo, opChangedFrom:
		ok = c.scalars(rc, v, l, name, true)
	case opChanged, opNotChanged, opPresent, opAbsent:
		b, good := boolNode(v)
		if !good {
			c.errorf(file, v, "%s: expected true or false, got %s", name, yamlconf.KindName(v))
			return nil
		}
		l.flag = b
		if b {
			l.text = f.path + " " + name
		}
	case opContains, opNotContains, opContainsAny:
		words := c.words(file, v, name)
		if words == nil {
			return nil
		}
		for i, w := range words {
			words[i] = strings.ToLower(w)
		}
		l.words = words
	case opIncludes, opExcludes, opIncludesAll:
		if l.words = c.words(file, v, name); l.words == nil {
			return nil
		}
	case opMatches:
		if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
			c.errorf(file, v, "matches: expected a regular expression (RE2), got %s", yamlconf.KindName(v))
			return nil
		}
		// Text comparisons ignore case; (?-i) in the pattern turns that off.
		re, err := regexp.Compile("(?i)" + v.Value)
		if err != nil {
			c.errorf(file, v, "matches: invalid regular expression: %v", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
			return nil
		}
		l.re = re
	case opAfter, opBefore:
		v = yamlconf.Resolve(v)
		if v.Kind != yaml.ScalarNode || !fieldPath.MatchString(v.Value) {
			c.errorf(file, v, "%s: expected a timestamp field to compare with (e.g. last_agent_message_at), got %s", name, yamlconf.KindName(v))
			return nil
		}
		o := newFieldRef(v.Value)
		if o.kind != refField && o.kind != refDerived || o.typ != tTime && o.typ != tAny {
			c.errorf(file, v, "%s: %s is not a timestamp field%s (timestamp fields: %s)", name, o.path, yamlconf.DidYouMean(o.path, timestampFields()), strings.Join(timestampFields(), ", "))
			return nil
		}
		l.other = &o
	case opGt, opGte, opLt, opLte:
		l.lo, ok = c.bound(rc, v, f, name, l.enums)
	case opBetween:
		if v.Kind != yaml.SequenceNode || len(v.Content) != 2 {
			c.errorf(file, v, "between: expected [low, high], got %s", yamlconf.KindName(v))
			return nil
		}
		var ok2 bool
		l.lo, ok = c.bound(rc, v.Content[0], f, name, l.enums)
		l.hi, ok2 = c.bound(rc, v.Content[1], f, name, l.enums)
		if ok && ok2 {
			if l.lo.kind != l.hi.kind {
				c.errorf(file, v, "between: both ends must be of the same kind (numbers, durations, timestamps or %s values)", f.path)
				return nil
			}
			if boundGreater(l.lo, l.hi, l.enums) {
				c.errorf(file, v, "between: low end %s is above high end %s", nodeText(v.Content[0]), nodeText(v.Content[1]))
				return nil
			}
		}
		ok = ok && ok2
	}
	if !ok {
		return nil
	}
	return l
}

// checkField validates a field path beyond its syntax.
func (c *compiler) checkField(file string, n *yaml.Node, f fieldRef) bool {
	switch f.kind {
	case refActor:
		valid := []string{"actor.type", "actor.id", "actor.name", "actor.email"}
		if _, ok := knownFields[f.path]; !ok {
			c.errorf(file, n, "unknown field %q%s (valid: %s)", f.path, yamlconf.DidYouMean(f.path, valid), strings.Join(valid, ", "))
			return false
		}
	case refEventMeta:
		valid := []string{"event.type", "event.connector", "event.entity", "event.reference"}
		if _, ok := knownFields[f.path]; !ok {
			c.errorf(file, n, "unknown field %q%s (valid: %s)", f.path, yamlconf.DidYouMean(f.path, valid), strings.Join(valid, ", "))
			return false
		}
	case refVar:
		if f.sub == "" {
			c.errorf(file, n, "vars.: name a variable, e.g. vars.TICKET_REFERENCE")
			return false
		}
	case refField:
		if _, known := knownFields[f.path]; !known && !strings.HasPrefix(f.path, "custom.") {
			names := make([]string, 0, len(knownFields))
			for k := range knownFields {
				names = append(names, k)
			}
			sort.Strings(names)
			if near := yamlconf.Nearest(f.path, names); near != "" {
				c.warns.Add(file, n, "field %q is not a field of the common model; did you mean %q? (connector-specific fields are fine; custom fields read best as custom.<name>)", f.path, near)
			}
		}
	}
	return true
}

// checkOperatorOnType refuses operators that cannot apply to a typed field.
func (c *compiler) checkOperatorOnType(file string, n *yaml.Node, f fieldRef, name string, o op, enum bool) bool {
	bad := func(hint string) bool {
		c.errorf(file, n, "%s cannot be used on %s (%s is %s); %s", name, f.path, f.path, f.typ, hint)
		return false
	}
	switch o {
	case opChanged, opNotChanged, opChangedTo, opChangedFrom:
		if f.kind != refField {
			c.errorf(file, n, "%s: %s carries no changes (only fields of the event's state do; derived fields, actor.*, event.* and vars.* do not)", name, f.path)
			return false
		}
	}
	if (o == opAfter || o == opBefore) && f.typ != tTime && f.typ != tAny {
		return bad("after and before compare timestamps (status_since, last_activity_at, last_customer_message_at, last_agent_message_at)")
	}
	switch f.typ {
	case tString:
		switch o {
		case opGt, opGte, opLt, opLte, opBetween:
			if !enum {
				return bad("order comparisons need an ordered enum for the field (gateway enums), or use is/in")
			}
		case opIncludes, opExcludes, opIncludesAll:
			return bad("includes/excludes work on tag lists; use in or not_in for one value")
		}
	case tNumber:
		switch o {
		case opContains, opNotContains, opContainsAny, opMatches:
			return bad("compare numbers with is, in, gt, gte, lt, lte or between")
		case opIncludes, opExcludes, opIncludesAll:
			return bad("use in or not_in for one value")
		}
	case tTime:
		switch o {
		case opIs, opIsNot, opIn, opNotIn, opChangedTo, opChangedFrom, opContains, opNotContains, opContainsAny, opMatches, opIncludes, opExcludes, opIncludesAll:
			return bad("compare a timestamp's age with gt/lt/between and a duration like 15m, or a timestamp")
		}
	case tTags:
		switch o {
		case opIs, opIsNot, opIn, opNotIn, opChangedTo, opChangedFrom:
			return bad("use includes (any of), includes_all or excludes (none of)")
		case opContains, opNotContains, opContainsAny:
			return bad("use includes (any of), includes_all or excludes (none of) to test tags")
		case opGt, opGte, opLt, opLte, opBetween:
			return bad("tags have no order")
		}
	}
	return true
}

// scalars reads the operand(s) of an equality operator.
func (c *compiler) scalars(rc *ruleCtx, n *yaml.Node, l *cond, name string, list bool) bool {
	file := rc.file
	items := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		if !list {
			c.errorf(file, n, "%s takes one value; to test several use in or not_in", name)
			return false
		}
		items = n.Content
		if len(items) == 0 {
			c.errorf(file, n, "%s: empty list", name)
			return false
		}
	}
	ok := true
	for _, it := range items {
		it = yamlconf.Resolve(it)
		if it.Kind != yaml.ScalarNode {
			c.errorf(file, it, "%s: expected a value, got %s", name, yamlconf.KindName(it))
			ok = false
			continue
		}
		if it.Tag == "!!null" {
			c.errorf(file, it, "%s: null is not a value to compare with; use absent: true or present: true", name)
			ok = false
			continue
		}
		s := scalar{s: it.Value}
		s.f, s.isNum = parseNumber(it.Value)
		_, s.exactNum = exactNumber(it.Value)
		// A boolean field equals true and false written quoted too, in
		// any case (as text comparisons ignore case).
		if it.Tag == "!!bool" || strings.EqualFold(it.Value, "true") || strings.EqualFold(it.Value, "false") {
			s.isBool, s.b = true, strings.EqualFold(it.Value, "true")
		}
		s.t, s.isTime = parseTimestamp(it.Value)
		if l.field.typ == tNumber && !s.isNum {
			c.errorf(file, it, "%s is a number field; %s %q is not a number", l.field.path, name, it.Value)
			ok = false
			continue
		}
		if l.enums != nil && !c.enumCheck(rc, it, l.field.path, it.Value) {
			ok = false
			continue
		}
		l.scalars = append(l.scalars, s)
	}
	return ok
}

// enumCheck verifies that value belongs to the ordered enum of field for the
// rule's connectors (or, without a connector filter, to the default order or
// any connector's order).
func (c *compiler) enumCheck(rc *ruleCtx, n *yaml.Node, field, value string) bool {
	fe := c.enums[field]
	if fe == nil {
		return true
	}
	if len(rc.connectors) > 0 {
		for _, conn := range rc.connectors {
			o := fe.forConnector(conn)
			if o == nil {
				continue
			}
			if _, ok := o.rankOf(value); !ok {
				c.errorf(rc.file, n, "%q is not a %s value for connector %s%s (valid: %s)", value, field, conn, yamlconf.DidYouMean(value, o.values), strings.Join(o.values, ", "))
				return false
			}
		}
		return true
	}
	orders := make([]*enumOrder, 0, 1+len(fe.byConn))
	if fe.def != nil {
		orders = append(orders, fe.def)
	}
	for _, o := range fe.byConn {
		orders = append(orders, o)
	}
	var all []string
	for _, o := range orders {
		if _, ok := o.rankOf(value); ok {
			return true
		}
		all = append(all, o.values...)
	}
	if len(orders) == 0 {
		return true
	}
	all = dedupe(all)
	c.errorf(rc.file, n, "%q is not a %s value%s (valid: %s)", value, field, yamlconf.DidYouMean(value, all), strings.Join(all, ", "))
	return false
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	out := in[:0]
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// words reads a string or a list of strings; the first bad item is the
// only one reported, and the whole list is then refused.
func (c *compiler) words(file string, n *yaml.Node, name string) []string {
	out, bad, _ := scalarItems(n)
	if len(bad) > 0 {
		c.errorf(file, bad[0], "%s: expected a word or a list of words, got %s", name, yamlconf.KindName(bad[0]))
		return nil
	}
	if len(out) == 0 {
		c.errorf(file, n, "%s: empty list", name)
	}
	return out
}

// bound reads an operand of gt/gte/lt/lte/between, typed by the field.
func (c *compiler) bound(rc *ruleCtx, n *yaml.Node, f fieldRef, name string, enums *fieldEnums) (bound, bool) {
	file := rc.file
	n = yamlconf.Resolve(n)
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		c.errorf(file, n, "%s: expected a number, a duration like 15m or a timestamp, got %s", name, yamlconf.KindName(n))
		return bound{}, false
	}
	s := n.Value
	if enums != nil {
		if !c.enumCheck(rc, n, f.path, s) {
			return bound{}, false
		}
		return bound{kind: bEnum, s: s}, true
	}
	if fv, ok := parseNumber(s); ok {
		if f.typ == tTime {
			c.errorf(file, n, "%s is a timestamp field: compare its age with a duration like %sm, or with a timestamp", f.path, s)
			return bound{}, false
		}
		return bound{kind: bNum, f: fv}, true
	}
	if d, err := yamlconf.ParseDuration(s); err == nil {
		if f.typ == tNumber {
			c.errorf(file, n, "%s is a number field; %s %q is a duration, not a number", f.path, name, s)
			return bound{}, false
		}
		return bound{kind: bDur, d: d}, true
	}
	if t, ok := parseTimestamp(s); ok {
		if f.typ == tNumber {
			c.errorf(file, n, "%s is a number field; %s %q is a timestamp, not a number", f.path, name, s)
			return bound{}, false
		}
		return bound{kind: bTime, t: t}, true
	}
	what := "a number, a duration like 15m or an RFC 3339 timestamp"
	switch f.typ {
	case tNumber:
		what = "a number (" + f.path + " is a number field)"
	case tTime:
		what = "a duration like 15m or an RFC 3339 timestamp (" + f.path + " is a timestamp field)"
	}
	c.errorf(file, n, "%s: expected %s, got %q", name, what, s)
	return bound{}, false
}

func boundGreater(a, b bound, enums *fieldEnums) bool {
	switch a.kind {
	case bNum:
		return a.f > b.f
	case bDur:
		return a.d > b.d
	case bTime:
		return a.t.After(b.t)
	case bEnum:
		if enums != nil && enums.def != nil {
			ra, ok1 := enums.def.rankOf(a.s)
			rb, ok2 := enums.def.rankOf(b.s)
			return ok1 && ok2 && ra > rb
		}
	}
	return false
}

func boolNode(n *yaml.Node) (bool, bool) {
	n = yamlconf.Resolve(n)
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		return false, false
	}
	return strings.EqualFold(n.Value, "true"), true
}

// timeOfDay parses "HH:MM-HH:MM".
func (c *compiler) timeOfDay(file string, n *yaml.Node, l *cond) bool {
	bad := func() bool {
		c.errorf(file, n, "time_of_day: expected a window like \"09:00-17:30\" (it may cross midnight: \"22:00-06:00\"), got %s", yamlconf.KindName(n))
		return false
	}
	if n.Kind != yaml.ScalarNode {
		return bad()
	}
	a, b, ok := strings.Cut(strings.ReplaceAll(n.Value, " ", ""), "-")
	if !ok {
		return bad()
	}
	from, ok1 := clock(a, false)
	to, ok2 := clock(b, true)
	if !ok1 || !ok2 {
		return bad()
	}
	if from == to {
		c.errorf(file, n, "time_of_day: the window %q is empty; start and end must differ", n.Value)
		return false
	}
	l.from, l.to = from, to
	return true
}

// clock parses HH:MM into minutes after midnight; "24:00" only as an end.
func clock(s string, end bool) (int, bool) {
	h, m, ok := strings.Cut(s, ":")
	if !ok || len(h) < 1 || len(h) > 2 || len(m) != 2 {
		return 0, false
	}
	hh, ok1 := parseNumber(h)
	mm, ok2 := parseNumber(m)
	if !ok1 || !ok2 || hh != float64(int(hh)) || mm != float64(int(mm)) || mm < 0 || mm > 59 || hh < 0 {
		return 0, false
	}
	if hh == 24 && mm == 0 && end {
		return 24 * 60, true
	}
	if hh > 23 {
		return 0, false
	}
	return int(hh)*60 + int(mm), true
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "sunday": time.Sunday,
	"mon": time.Monday, "monday": time.Monday,
	"tue": time.Tuesday, "tuesday": time.Tuesday,
	"wed": time.Wednesday, "wednesday": time.Wednesday,
	"thu": time.Thursday, "thursday": time.Thursday,
	"fri": time.Friday, "friday": time.Friday,
	"sat": time.Saturday, "saturday": time.Saturday,
}

// dayOfWeek parses a day, a list of days, ranges like mon-fri, weekdays, weekend.
func (c *compiler) dayOfWeek(file string, n *yaml.Node, l *cond) bool {
	items := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		items = n.Content
	}
	names := []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun", "weekdays", "weekend"}
	for _, it := range items {
		it = yamlconf.Resolve(it)
		if it.Kind != yaml.ScalarNode {
			c.errorf(file, it, "day_of_week: expected day names like mon or mon-fri, got %s", yamlconf.KindName(it))
			return false
		}
		for _, part := range strings.Split(it.Value, ",") {
			p := strings.ToLower(strings.TrimSpace(part))
			switch p {
			case "weekdays":
				l.days |= 0b0111110
				continue
			case "weekend":
				l.days |= 0b1000001
				continue
			}
			a, b, isRange := strings.Cut(p, "-")
			da, ok := weekdays[a]
			if !ok {
				c.errorf(file, it, "day_of_week: unknown day %q%s (use mon, tue, wed, thu, fri, sat, sun, ranges like mon-fri, weekdays or weekend)", a, yamlconf.DidYouMean(a, names))
				return false
			}
			db := da
			if isRange {
				if db, ok = weekdays[b]; !ok {
					c.errorf(file, it, "day_of_week: unknown day %q%s", b, yamlconf.DidYouMean(b, names))
					return false
				}
			}
			for d := da; ; d = (d + 1) % 7 {
				l.days |= 1 << uint(d)
				if d == db {
					break
				}
			}
		}
	}
	if l.days == 0 {
		c.errorf(file, n, "day_of_week: no days given")
		return false
	}
	return true
}

// nodeText renders a node compactly for condition texts.
func nodeText(n *yaml.Node) string {
	n = yamlconf.Resolve(n)
	if n == nil {
		return ""
	}
	switch n.Kind {
	case yaml.ScalarNode:
		return n.Value
	case yaml.SequenceNode:
		parts := make([]string, len(n.Content))
		for i, c := range n.Content {
			parts[i] = nodeText(c)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case yaml.MappingNode:
		var parts []string
		for _, kv := range yamlconf.Pairs(n) {
			parts = append(parts, kv.Key.Value+": "+nodeText(kv.Value))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return ""
}
