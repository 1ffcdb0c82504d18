package rules

import (
	"strconv"
	"strings"
	"time"

	"github.com/hookline/hookline/event"
)

// vkind is the shape of a field value as conditions see it.
type vkind uint8

const (
	vNone  vkind = iota // absent or null
	vStr                // string
	vNum                // float64
	vBool               // bool
	vTime               // time.Time
	vStrs               // []string (tags)
	vOther              // []any, maps, anything else
)

// val is a field value unpacked without allocating: reading a field for a
// condition must not box numbers or times into interfaces.
type val struct {
	k   vkind
	b   bool
	s   string
	f   float64
	t   time.Time
	ss  []string
	raw any // vOther only
}

// fromAny unpacks a model value.
func fromAny(v any) val {
	switch x := v.(type) {
	case nil:
		return val{}
	case string:
		return val{k: vStr, s: x}
	case float64:
		return val{k: vNum, f: x}
	case bool:
		return val{k: vBool, b: x}
	case time.Time:
		if x.IsZero() {
			return val{}
		}
		return val{k: vTime, t: x}
	case []string:
		return val{k: vStrs, ss: x}
	case int:
		return val{k: vNum, f: float64(x)}
	case int64:
		return val{k: vNum, f: float64(x)}
	case float32:
		return val{k: vNum, f: float64(x)}
	}
	return val{k: vOther, raw: v}
}

// box returns the value as a JSON-friendly interface (for traces; allocates).
func (v val) box() any {
	switch v.k {
	case vStr:
		return v.s
	case vNum:
		return v.f
	case vBool:
		return v.b
	case vTime:
		return v.t
	case vStrs:
		return v.ss
	case vOther:
		return v.raw
	}
	return nil
}

// empty reports whether the value counts as absent: null, "", an empty list.
func (v val) empty() bool {
	switch v.k {
	case vNone:
		return true
	case vStr:
		return v.s == ""
	case vStrs:
		return len(v.ss) == 0
	case vOther:
		if l, ok := v.raw.([]any); ok {
			return len(l) == 0
		}
		if m, ok := v.raw.(map[string]any); ok {
			return len(m) == 0
		}
	}
	return false
}

// number returns the value as a number: numbers, and strings that hold one.
func (v val) number() (float64, bool) {
	switch v.k {
	case vNum:
		return v.f, true
	case vStr:
		return parseNumber(v.s)
	}
	return 0, false
}

// parseNumber parses s as a float only when it looks like one, so that
// ordinary words never reach strconv (whose errors allocate).
func parseNumber(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && c != '.' && c != '-' && c != '+' && c != 'e' && c != 'E' && c != '_' {
			return 0, false
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil
}

// maxExactDigits is the longest run of significant digits a text may have
// to be compared as a number: float64 holds every 15-digit number exactly,
// and longer digit strings are ids (order numbers, phone numbers).
const maxExactDigits = 15

// exactNumber parses s as a number for equality only when it is a plain
// decimal that float64 holds exactly: an optional minus, digits without a
// leading zero (or a single 0), an optional fraction and exponent, at most
// maxExactDigits significant digits. Like the gateway's fingerprintValue,
// anything else ("007", "12345678901234567", "+5") is compared as text.
func exactNumber(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	if digits, ok := event.PlainDecimal(s); !ok || digits > maxExactDigits {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil
}

// timeOf returns the value as a time: times and RFC 3339 strings.
func (v val) timeOf() (time.Time, bool) {
	switch v.k {
	case vTime:
		return v.t, true
	case vStr:
		return parseTimestamp(v.s)
	}
	return time.Time{}, false
}

// instant returns the value as the time a since: field holds: what timeOf
// reads, and also Unix seconds, milliseconds, microseconds or nanoseconds
// as a number or a numeric string, as mapped occurred_at reads them
// (event.ParseTime). Conditions keep timeOf: there a number is a duration
// in seconds.
func (v val) instant() (time.Time, bool) {
	switch v.k {
	case vTime:
		return v.t, true
	case vNum:
		return event.ParseTime(v.f)
	case vStr:
		return event.ParseTime(v.s)
	}
	return time.Time{}, false
}

// parseTimestamp parses an RFC 3339 timestamp, rejecting early what cannot be
// one so that ordinary strings do not reach time.Parse.
func parseTimestamp(s string) (time.Time, bool) {
	if len(s) < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	return t, err == nil
}

// durationOf returns the value as a duration: a number of seconds or a
// duration string ("90s", "15m", "2d").
func (v val) durationOf() (time.Duration, bool) {
	switch v.k {
	case vNum:
		return time.Duration(v.f * float64(time.Second)), true
	case vStr:
		return parseDurationValue(v.s)
	}
	return 0, false
}

// parseDurationValue parses a duration field value without allocating for
// values that are plainly not durations.
func parseDurationValue(s string) (time.Duration, bool) {
	s = strings.TrimSpace(s)
	if s == "" || !(s[0] >= '0' && s[0] <= '9' || s[0] == '.' || s[0] == '-') {
		return 0, false
	}
	if f, ok := parseNumber(s); ok {
		return time.Duration(f * float64(time.Second)), true
	}
	last := s[len(s)-1]
	switch last {
	case 'd', 'w':
		f, ok := parseNumber(s[:len(s)-1])
		if !ok {
			return 0, false
		}
		unit := 24 * time.Hour
		if last == 'w' {
			unit *= 7
		}
		return time.Duration(f * float64(unit)), true
	case 's', 'm', 'h':
		d, err := time.ParseDuration(s)
		return d, err == nil
	}
	return 0, false
}

// eachString calls fn for every string of a list value (or the one string of
// a scalar) until fn returns true; it reports whether fn did.
func (v val) anyString(fn func(string) bool) bool {
	switch v.k {
	case vStr:
		return fn(v.s)
	case vStrs:
		for _, s := range v.ss {
			if fn(s) {
				return true
			}
		}
	case vOther:
		if l, ok := v.raw.([]any); ok {
			for _, e := range l {
				if s, ok := e.(string); ok {
					if fn(s) {
						return true
					}
				} else if e != nil && fn(event.String(e)) {
					return true
				}
			}
		}
	case vNum, vBool:
		return fn(event.String(v.box()))
	}
	return false
}

// fieldType is what the engine knows about a field's values at compile time.
type fieldType uint8

const (
	tAny    fieldType = iota // unknown (custom.*, connector-specific fields)
	tString                  // text
	tNumber                  // numbers
	tTime                    // timestamps
	tTags                    // list of strings
)

func (t fieldType) String() string {
	switch t {
	case tString:
		return "a text field"
	case tNumber:
		return "a number field"
	case tTime:
		return "a timestamp field"
	case tTags:
		return "a tag list"
	}
	return "a field"
}

// knownFields types the fields of the common model (DESIGN.md). Other fields
// are typed tAny and checked by their values at run time.
var knownFields = map[string]fieldType{
	event.FieldStatus:         tString,
	event.FieldStatusCategory: tString,
	event.FieldPriority:       tString,
	event.FieldOwner:          tString,
	event.FieldGroup:          tString,
	event.FieldDepartment:     tString,
	event.FieldCategory:       tString,
	event.FieldChannel:        tString,
	event.FieldTags:           tTags,
	event.FieldSubject:        tString,
	event.FieldText:           tString,
	event.FieldLanguage:       tString,
	event.FieldSessionState:   tString,
	event.FieldInactiveReason: tString,
	event.FieldSurveyRating:   tNumber,
	"customer.name":           tString,
	"customer.email":          tString,
	"customer.phone":          tString,

	event.FieldStatusSince:                tTime,
	event.FieldLastActivityAt:             tTime,
	event.FieldLastCustomerMessageAt:      tTime,
	event.FieldLastAgentMessageAt:         tTime,
	event.FieldAgentReplies:               tNumber,
	event.FieldCustomerMessages:           tNumber,
	event.FieldUnansweredCustomerMessages: tNumber,

	"actor.type":      tString,
	"actor.id":        tString,
	"actor.name":      tString,
	"actor.email":     tString,
	"event.type":      tString,
	"event.connector": tString,
	"event.entity":    tString,
	"event.reference": tString,
}

// refKind says where a field reference reads from.
type refKind uint8

const (
	refField     refKind = iota // Snapshot.Fields, then Event.Fields
	refDerived                  // a derived snapshot field
	refActor                    // actor.type|id|name|email
	refEventMeta                // event.type|connector|entity|reference
	refVar                      // vars.NAME
)

// fieldRef is a compiled field path.
type fieldRef struct {
	path string
	kind refKind
	sub  string   // actor/event member, var name
	dots []string // path split on dots, for nested maps (nil when no dot)
	typ  fieldType
}

func newFieldRef(path string) fieldRef {
	f := fieldRef{path: path, kind: refField, typ: knownFields[path]}
	switch {
	case event.IsDerived(path):
		f.kind = refDerived
	case strings.HasPrefix(path, "actor."):
		f.kind, f.sub = refActor, strings.TrimPrefix(path, "actor.")
	case strings.HasPrefix(path, "event."):
		f.kind, f.sub = refEventMeta, strings.TrimPrefix(path, "event.")
	case strings.HasPrefix(path, "vars."):
		f.kind, f.sub, f.typ = refVar, strings.TrimPrefix(path, "vars."), tString
	}
	if f.kind == refField && strings.Contains(path, ".") {
		f.dots = strings.Split(path, ".")
	}
	return f
}

// get reads the field for an event and the entity snapshot after it.
func (f *fieldRef) get(ev *event.Event, snap *event.Snapshot) val {
	switch f.kind {
	case refDerived:
		if snap == nil {
			// Dry runs without state may carry derived values as fields.
			if v, ok := lookupField(ev.Fields, f); ok {
				return fromAny(v)
			}
		}
		return derived(snap, f.path)
	case refActor:
		switch f.sub {
		case "type":
			return strVal(ev.Actor.Type)
		case "id":
			return strVal(ev.Actor.ID)
		case "name":
			return strVal(ev.Actor.Name)
		case "email":
			return strVal(ev.Actor.Email)
		}
		return val{}
	case refEventMeta:
		switch f.sub {
		case "type":
			return strVal(ev.Type)
		case "connector":
			return strVal(ev.Connector)
		case "entity":
			return strVal(ev.Entity)
		case "reference":
			return strVal(ev.Reference)
		}
		return val{}
	case refVar:
		if s, ok := ev.Vars[f.sub]; ok {
			return val{k: vStr, s: s}
		}
		return val{}
	}
	if snap != nil {
		if v, ok := lookupField(snap.Fields, f); ok {
			return fromAny(v)
		}
	}
	if v, ok := lookupField(ev.Fields, f); ok {
		return fromAny(v)
	}
	return val{}
}

func strVal(s string) val {
	if s == "" {
		return val{}
	}
	return val{k: vStr, s: s}
}

// lookupField finds a flat dotted key, else descends nested maps.
func lookupField(m map[string]any, f *fieldRef) (any, bool) {
	if m == nil {
		return nil, false
	}
	if v, ok := m[f.path]; ok {
		return v, true
	}
	if f.dots == nil {
		return nil, false
	}
	var cur any = m
	for _, part := range f.dots {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = mm[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// derived reads a derived snapshot field without boxing.
func derived(s *event.Snapshot, name string) val {
	if s == nil {
		switch name {
		case event.FieldAgentReplies, event.FieldCustomerMessages, event.FieldUnansweredCustomerMessages:
			return val{k: vNum}
		}
		return val{}
	}
	t := func(t time.Time) val {
		if t.IsZero() {
			return val{}
		}
		return val{k: vTime, t: t}
	}
	switch name {
	case event.FieldStatusSince:
		return t(s.StatusSince)
	case event.FieldLastActivityAt:
		return t(s.LastActivityAt)
	case event.FieldLastCustomerMessageAt:
		return t(s.LastCustomerMessageAt)
	case event.FieldLastAgentMessageAt:
		return t(s.LastAgentMessageAt)
	case event.FieldAgentReplies:
		return val{k: vNum, f: float64(s.AgentReplies)}
	case event.FieldCustomerMessages:
		return val{k: vNum, f: float64(s.CustomerMessages)}
	case event.FieldUnansweredCustomerMessages:
		return val{k: vNum, f: float64(s.UnansweredCustomerMessages)}
	}
	return val{}
}
