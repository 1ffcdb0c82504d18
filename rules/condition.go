package rules

import (
	"cmp"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hookline/hookline/event"
)

// op is a compiled condition's operator.
type op uint8

const (
	opAll op = iota
	opAny
	opNot
	opIs
	opIsNot
	opIn
	opNotIn
	opChanged
	opChangedTo
	opChangedFrom
	opNotChanged
	opContains
	opNotContains
	opContainsAny
	opMatches
	opGt
	opGte
	opLt
	opLte
	opBetween
	opPresent
	opAbsent
	opIncludes
	opExcludes
	opIncludesAll
	opTimeOfDay
	opDayOfWeek
	opAfter
	opBefore
)

// fieldOperators maps the operator keys that take a `field:` to their op.
var fieldOperators = map[string]op{
	"is":           opIs,
	"is_not":       opIsNot,
	"in":           opIn,
	"not_in":       opNotIn,
	"changed":      opChanged,
	"changed_to":   opChangedTo,
	"changed_from": opChangedFrom,
	"not_changed":  opNotChanged,
	"contains":     opContains,
	"not_contains": opNotContains,
	"contains_any": opContainsAny,
	"matches":      opMatches,
	"gt":           opGt,
	"gte":          opGte,
	"lt":           opLt,
	"lte":          opLte,
	"between":      opBetween,
	"present":      opPresent,
	"absent":       opAbsent,
	"includes":     opIncludes,
	"excludes":     opExcludes,
	"includes_all": opIncludesAll,
	"time_of_day":  opTimeOfDay,
	"day_of_week":  opDayOfWeek,
	"after":        opAfter,
	"before":       opBefore,
	"all":          opAll,
	"any":          opAny,
	"not":          opNot,
}

// conditionKeys returns every key a condition mapping may hold (sorted), for
// nearest-name suggestions.
func conditionKeys() []string {
	keys := make([]string, 0, len(fieldOperators)+2)
	for k := range fieldOperators {
		keys = append(keys, k)
	}
	keys = append(keys, "field", "tz")
	sort.Strings(keys)
	return keys
}

// scalar is a literal operand of an equality operator.
type scalar struct {
	s     string // text form
	f     float64
	isNum bool
	// exactNum: the text is a plain number float64 holds exactly, so text
	// values equal it numerically (else only as text).
	exactNum bool
	b        bool
	isBool   bool
	t        time.Time
	isTime   bool
}

// bound is an operand of gt/gte/lt/lte/between.
type bound struct {
	kind bkind
	f    float64
	d    time.Duration
	t    time.Time
	s    string // enum value
}

type bkind uint8

const (
	bNum bkind = iota
	bDur
	bTime
	bEnum
)

// enumOrder is one ordered enum.
type enumOrder struct {
	values []string
	rank   map[string]int
}

func newEnumOrder(values []string) *enumOrder {
	o := &enumOrder{values: values, rank: make(map[string]int, len(values))}
	for i, v := range values {
		o.rank[v] = i
	}
	return o
}

func (o *enumOrder) rankOf(s string) (int, bool) {
	if r, ok := o.rank[s]; ok {
		return r, true
	}
	for i, v := range o.values {
		if strings.EqualFold(v, s) {
			return i, true
		}
	}
	return 0, false
}

// fieldEnums is the enum of one field: a default order and per-connector overrides.
type fieldEnums struct {
	def    *enumOrder
	byConn map[string]*enumOrder
}

func (e *fieldEnums) forConnector(c string) *enumOrder {
	if o, ok := e.byConn[c]; ok {
		return o
	}
	return e.def
}

// cond is one compiled condition: a tree node (all/any/not) or a leaf.
// Evaluation (match) reads only its arguments and the compiled operands, so
// it is safe for concurrent use and allocates nothing.
type cond struct {
	op    op
	kids  []*cond
	field fieldRef

	scalars []scalar  // is, is_not, in, not_in, changed_to, changed_from
	listRef *fieldRef // in/not_in against another field's list
	other   *fieldRef // after/before: the timestamp field compared with
	words   []string  // contains*, includes* (lower-cased for contains*)
	re      *regexp.Regexp
	lo, hi  bound       // gt.. (lo), between (lo, hi)
	enums   *fieldEnums // ordered enum of the field, if any
	flag    bool        // changed/present: the expected truth
	from    int         // time_of_day: minutes after midnight, inclusive
	to      int         // time_of_day: minutes after midnight, exclusive
	days    uint8       // day_of_week: bit per time.Weekday
	loc     *time.Location

	text string // `status is pending`
	pos  string // file:line:column
}

// match evaluates the condition for an event, the entity snapshot after it
// (may be nil) and the current time. time_of_day and day_of_week read the
// event's own time (eventTime: occurred_at, else received_at, never later
// than now; a timer.fired event's is its due time); ages and limits read now. It returns whether the condition holds
// and, when it does not, the leaf that decided the failure (for traces).
// It is the one entry point timers use too: a re-check evaluates `when`
// against the snapshot with a synthetic timer.fired event.
func (c *cond) match(ev *event.Event, snap *event.Snapshot, now time.Time) (bool, *cond) {
	switch c.op {
	case opAll:
		for _, k := range c.kids {
			if ok, f := k.match(ev, snap, now); !ok {
				return false, f
			}
		}
		return true, nil
	case opAny:
		var first *cond
		for _, k := range c.kids {
			ok, f := k.match(ev, snap, now)
			if ok {
				return true, nil
			}
			if first == nil {
				first = f
			}
		}
		return false, first
	case opNot:
		if ok, _ := c.kids[0].match(ev, snap, now); ok {
			return false, c
		}
		return true, nil
	}
	if c.leaf(ev, snap, now) {
		return true, nil
	}
	return false, c
}

// leaf evaluates a leaf condition.
func (c *cond) leaf(ev *event.Event, snap *event.Snapshot, now time.Time) bool {
	switch c.op {
	case opTimeOfDay:
		t := eventTime(ev, now).In(c.loc)
		m := t.Hour()*60 + t.Minute()
		if c.from < c.to {
			return m >= c.from && m < c.to
		}
		return m >= c.from || m < c.to
	case opDayOfWeek:
		return c.days&(1<<uint(eventTime(ev, now).In(c.loc).Weekday())) != 0
	case opChanged, opNotChanged:
		changed := isChanged(ev, c.field.path)
		if c.op == opNotChanged {
			return changed != c.flag
		}
		return changed == c.flag
	case opChangedTo, opChangedFrom:
		// A real change, as for changed: a change to the same value is none.
		ch, ok := ev.Changes[c.field.path]
		if !ok {
			return false
		}
		from, to := fromAny(ch.From), fromAny(ch.To)
		if sameValue(from, to, ch) {
			return false
		}
		if c.op == opChangedFrom {
			return c.anyScalar(from)
		}
		return c.anyScalar(to)
	}

	v := c.field.get(ev, snap)
	switch c.op {
	case opIs:
		return c.anyScalar(v)
	case opIsNot:
		return !c.anyScalar(v)
	case opIn:
		if c.listRef != nil {
			return c.inList(v, ev, snap)
		}
		return c.anyScalar(v)
	case opNotIn:
		if c.listRef != nil {
			return !c.inList(v, ev, snap)
		}
		return !c.anyScalar(v)
	case opContains:
		for _, w := range c.words {
			if !v.anyString(func(s string) bool { return containsWord(s, w) }) {
				return false
			}
		}
		return true
	case opNotContains, opContainsAny:
		found := false
		for _, w := range c.words {
			if v.anyString(func(s string) bool { return containsWord(s, w) }) {
				found = true
				break
			}
		}
		return found == (c.op == opContainsAny)
	case opMatches:
		return v.anyString(c.re.MatchString)
	case opGt, opGte, opLt, opLte:
		r, ok := c.compare(v, c.lo, ev.Connector, now)
		if !ok {
			return false
		}
		switch c.op {
		case opGt:
			return r > 0
		case opGte:
			return r >= 0
		case opLt:
			return r < 0
		}
		return r <= 0
	case opBetween:
		r1, ok1 := c.compare(v, c.lo, ev.Connector, now)
		r2, ok2 := c.compare(v, c.hi, ev.Connector, now)
		return ok1 && ok2 && r1 >= 0 && r2 <= 0
	case opPresent:
		return !v.empty() == c.flag
	case opAbsent:
		return v.empty() == c.flag
	case opIncludes, opExcludes:
		found := false
		for _, w := range c.words {
			if v.anyString(func(s string) bool { return strings.EqualFold(s, w) }) {
				found = true
				break
			}
		}
		return found == (c.op == opIncludes)
	case opIncludesAll:
		for _, w := range c.words {
			if !v.anyString(func(s string) bool { return strings.EqualFold(s, w) }) {
				return false
			}
		}
		return true
	case opAfter, opBefore:
		t, ok := v.timeOf()
		if !ok {
			return false
		}
		o, has := c.other.get(ev, snap).timeOf()
		if c.op == opAfter {
			return !has || t.After(o) // an absent other time means "never"
		}
		return has && t.Before(o)
	}
	return false
}

// isChanged reports whether the event carries a real change of field.
func isChanged(ev *event.Event, field string) bool {
	ch, ok := ev.Changes[field]
	if !ok {
		return false
	}
	return !sameValue(fromAny(ch.From), fromAny(ch.To), ch)
}

// sameValue compares two values of a change without allocating for scalars.
func sameValue(a, b val, ch event.Change) bool {
	if a.k != b.k {
		if a.k == vNone || b.k == vNone {
			return false
		}
		return event.Equal(ch.From, ch.To)
	}
	switch a.k {
	case vNone:
		return true
	case vStr:
		return a.s == b.s
	case vNum:
		return a.f == b.f
	case vBool:
		return a.b == b.b
	case vTime:
		return a.t.Equal(b.t)
	}
	return event.Equal(ch.From, ch.To)
}

// anyScalar reports whether v equals one of the condition's scalars.
func (c *cond) anyScalar(v val) bool {
	for i := range c.scalars {
		if equalScalar(v, &c.scalars[i]) {
			return true
		}
	}
	return false
}

// equalScalar compares a value with a literal: text case-insensitively,
// numbers numerically (a numeric string equals its number, when both texts
// are plain numbers float64 holds exactly: see exactNumber), times as
// instants.
func equalScalar(v val, s *scalar) bool {
	switch v.k {
	case vStr:
		if strings.EqualFold(v.s, s.s) {
			return true
		}
		if s.isNum {
			if !s.exactNum {
				return false
			}
			f, ok := exactNumber(v.s)
			return ok && f == s.f
		}
		if s.isTime {
			t, ok := parseTimestamp(v.s)
			return ok && t.Equal(s.t)
		}
	case vNum:
		return s.isNum && v.f == s.f
	case vBool:
		return s.isBool && v.b == s.b
	case vTime:
		return s.isTime && v.t.Equal(s.t)
	}
	return false
}

// inList reports whether v is one of the values of the listRef field.
func (c *cond) inList(v val, ev *event.Event, snap *event.Snapshot) bool {
	if v.empty() {
		return false
	}
	list := c.listRef.get(ev, snap)
	switch v.k {
	case vStr:
		return list.anyString(func(s string) bool { return strings.EqualFold(s, v.s) })
	case vNum:
		return list.anyString(func(s string) bool { f, ok := parseNumber(s); return ok && f == v.f })
	}
	return false
}

// compare orders v against a bound: -1, 0, 1; ok is false when v cannot be
// compared (absent, wrong type, not in the enum).
func (c *cond) compare(v val, b bound, connector string, now time.Time) (int, bool) {
	switch b.kind {
	case bNum:
		f, ok := v.number()
		if !ok {
			return 0, false
		}
		return cmpFloat(f, b.f), true
	case bDur:
		var d time.Duration
		if t, ok := v.timeOf(); ok {
			d = now.Sub(t)
		} else if d, ok = v.durationOf(); !ok {
			return 0, false
		}
		return cmp.Compare(d, b.d), true
	case bTime:
		t, ok := v.timeOf()
		if !ok {
			return 0, false
		}
		return t.Compare(b.t), true
	case bEnum:
		s := v.s
		switch {
		case c.enums == nil:
			return 0, false
		case v.k == vNum: // numeric enums (priority 1..4) arrive as numbers
			s = event.String(v.f)
		case v.k != vStr:
			return 0, false
		}
		o := c.enums.forConnector(connector)
		if o == nil {
			return 0, false
		}
		ra, ok1 := o.rankOf(s)
		rb, ok2 := o.rankOf(b.s)
		if !ok1 || !ok2 {
			return 0, false
		}
		return cmp.Compare(ra, rb), true
	}
	return 0, false
}

// cmpFloat orders two numbers; unlike cmp.Compare, NaN (possible in a
// YAML constant, .nan) is equal to everything rather than the smallest.
func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// containsWord reports whether text holds term (already lower-case) as a
// whole word or phrase, case-insensitively, without allocating. A term that
// starts or ends with a non-word character needs no boundary on that side.
func containsWord(text, term string) bool {
	if term == "" {
		return false
	}
	first, _ := utf8.DecodeRuneInString(term)
	last, _ := utf8.DecodeLastRuneInString(term)
	needBefore, needAfter := isWordRune(first), isWordRune(last)
	for i := 0; i < len(text); {
		if n, ok := hasPrefixFold(text[i:], term); ok {
			if (!needBefore || i == 0 || !isWordRune(lastRune(text[:i]))) &&
				(!needAfter || i+n == len(text) || !isWordRune(firstRune(text[i+n:]))) {
				return true
			}
		}
		if text[i] < utf8.RuneSelf {
			i++
		} else {
			_, size := utf8.DecodeRuneInString(text[i:])
			i += size
		}
	}
	return false
}

// hasPrefixFold reports whether s starts with lowerPrefix ignoring case and
// returns how many bytes of s the prefix covered.
func hasPrefixFold(s, lowerPrefix string) (int, bool) {
	i, j := 0, 0
	for j < len(lowerPrefix) {
		if i >= len(s) {
			return 0, false
		}
		a, b := s[i], lowerPrefix[j]
		if a < utf8.RuneSelf && b < utf8.RuneSelf {
			if 'A' <= a && a <= 'Z' {
				a += 'a' - 'A'
			}
			if a != b {
				return 0, false
			}
			i++
			j++
			continue
		}
		r1, n1 := utf8.DecodeRuneInString(s[i:])
		r2, n2 := utf8.DecodeRuneInString(lowerPrefix[j:])
		if r1 != r2 && unicode.ToLower(r1) != r2 {
			return 0, false
		}
		i += n1
		j += n2
	}
	return i, true
}

func isWordRune(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r)
}

func firstRune(s string) rune {
	r, _ := utf8.DecodeRuneInString(s)
	return r
}

func lastRune(s string) rune {
	r, _ := utf8.DecodeLastRuneInString(s)
	return r
}

// actual returns what the trace shows as the actual value of a failed leaf.
func (c *cond) actual(ev *event.Event, snap *event.Snapshot, now time.Time) any {
	switch c.op {
	case opTimeOfDay:
		return eventTime(ev, now).In(c.loc).Format("15:04 MST")
	case opDayOfWeek:
		return strings.ToLower(eventTime(ev, now).In(c.loc).Weekday().String()[:3])
	case opChanged, opNotChanged, opChangedTo, opChangedFrom:
		if ch, ok := ev.Changes[c.field.path]; ok {
			return ch
		}
		// The event does not change the field: show what it holds, so
		// that "changed_to inactive" failing on an inactive field does
		// not read as if the field were missing.
		switch v := c.field.get(ev, snap).box(); v.(type) {
		case nil:
			return nil
		case []string, []any:
			return fmt.Sprintf("unchanged: %v", v)
		default:
			return "unchanged: " + event.String(v)
		}
	case opNot:
		if len(c.kids) == 1 && c.kids[0].op > opNot {
			return c.kids[0].actual(ev, snap, now)
		}
		return nil
	}
	if c.op < opIs {
		return nil
	}
	return c.field.get(ev, snap).box()
}
