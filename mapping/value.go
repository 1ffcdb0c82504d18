package mapping

import (
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/internal/yamlconf"
)

// specKind is the source of a value spec.
type specKind uint8

const (
	specPath specKind = iota
	specConst
	specTemplate
	specPaths // a path list: the first path with a non-empty value
	specLookup
)

// spec is a compiled value spec: where the value comes from, then the
// optional map and default.
type spec struct {
	kind     specKind
	ref      *pathRef
	refs     []*pathRef // specPaths, in order
	constant any
	tmpl     *tmpl
	lookup   *lookupSpec
	// fallback is evaluated when the source (after map) is absent; a source
	// with a fallback counts empty values as absent.
	fallback *spec

	// split, when set, turns a text value into a list: split at the
	// separator, each part trimmed, empty parts dropped (before map).
	split string

	mapping       map[string]any // nil when there is no map; a nil value drops the value
	mapDefault    any
	hasMapDefault bool
	def           any
	hasDef        bool

	// where names the spec in run-time errors ("fields.status").
	where string
	// isTime marks occurred_at (and its fallbacks): a path list, or a
	// source with a fallback, moves past a Unix timestamp of zero or
	// below ("not set") as past an empty value.
	isTime bool
}

// eval resolves the spec for the current element. ok is false when the
// value is absent (a path that does not resolve, JSON null, an empty
// template result, a value mapped to null; for a path list or a source with
// a fallback also "", false, [] and {}) and neither fallback nor default
// gives one.
func (s *spec) eval(st *state) (v any, ok bool, err error) {
	switch s.kind {
	case specPath:
		v, ok = st.resolve(s.ref)
		if ok && s.fallback != nil && s.skips(v) {
			v, ok = nil, false
		}
	case specPaths:
		sawEmptyText := false
		for _, r := range s.refs {
			if v, ok = st.resolve(r); ok && !s.skips(v) {
				break
			}
			if text, isText := v.(string); ok && isText && text == "" {
				sawEmptyText = true
			}
			v, ok = nil, false
		}
		if !ok && sawEmptyText && s.split != "" {
			// A text that is present but empty ("": the last tag
			// removed) is split as in the single-path form below.
			v, ok = "", true
		}
	case specLookup:
		v, ok = s.lookup.find(st)
		if ok && s.fallback != nil && s.skips(v) {
			v, ok = nil, false
		}
	case specConst:
		v, ok = s.constant, s.constant != nil
	case specTemplate:
		var out string
		out, err = s.tmpl.exec(st)
		if err != nil {
			return nil, false, err
		}
		v, ok = out, out != ""
	}
	if ok && s.split != "" {
		v, ok = splitText(v, s.split)
		if !ok && s.fallback == nil && !s.hasDef {
			// A text with nothing in it ("": the last tag removed) and
			// nothing to fall back on is the empty list: the entity's
			// list is emptied, not left as it was. A map has nothing in
			// it to map.
			return []string{}, true, nil
		}
	}
	if ok && s.mapping != nil {
		v, ok = s.applyMap(v)
	}
	if !ok && s.fallback != nil {
		if v, ok, err = s.fallback.eval(st); err != nil {
			return nil, false, err
		}
	}
	if !ok && s.hasDef {
		return s.def, true, nil
	}
	return v, ok, nil
}

// keepsNull reports whether the spec is a plain single path of the payload
// or of an element, with no path list, fallback, default, map or split: as
// a field's spec, an explicit JSON null there is present (fieldValue), so
// that the event clears the entity's field. Everywhere else null is absent.
func (s *spec) keepsNull() bool {
	return s.kind == specPath && s.mapping == nil && !s.hasMapDefault && s.fallback == nil && s.split == "" && !s.hasDef &&
		(s.ref.base == baseRoot || s.ref.base == baseLevel)
}

// lookupSpec is a lookup source: in the list at in, the first element
// whose value at key has the text of the value at equals; then the value
// at get in that element (the element itself when get is "").
type lookupSpec struct {
	in     *pathRef // the payload or a level element; an object is a list of one
	key    string   // gjson path inside each element
	equals *pathRef // any path form
	get    string   // gjson path inside the element found, or ""
}

// find resolves the lookup. It is absent when the value sought is absent,
// empty or not a scalar, the list is absent, or no element's key matches.
// Scalars compare by their text: the number 2 matches "2", as a map key does.
func (l *lookupSpec) find(st *state) (any, bool) {
	want, ok := st.resolve(l.equals)
	if !ok {
		return nil, false
	}
	wantText, ok := scalarText(want)
	if !ok || wantText == "" {
		return nil, false
	}
	matches := func(el gjson.Result) bool {
		if el.Type != gjson.JSON {
			return false
		}
		k, ok := resultValue(el.Get(l.key))
		if !ok {
			return false
		}
		text, ok := scalarText(k)
		return ok && text == wantText
	}
	list := st.result(l.in)
	var found gjson.Result
	if list.IsArray() {
		list.ForEach(func(_, el gjson.Result) bool {
			if matches(el) {
				found = el
				return false
			}
			return true
		})
	} else if matches(list) {
		found = list
	}
	if !found.Exists() {
		return nil, false
	}
	if l.get == "" {
		return resultValue(found)
	}
	return resultValue(found.Get(l.get))
}

// scalarText is a resolved scalar's text as references write it; ok is
// false for a list or an object.
func scalarText(v any) (string, bool) {
	switch v.(type) {
	case []any, []string, map[string]any:
		return "", false
	}
	return toString(v), true
}

// splitText splits a text value at sep into a list of its trimmed,
// non-empty parts ("refund, vip" -> [refund vip]); ok is false when no
// part is left. Values that are not text (a list already, a number) pass
// through unchanged.
func splitText(v any, sep string) (any, bool) {
	text, isText := v.(string)
	if !isText {
		return v, true
	}
	var out []any
	for _, part := range strings.Split(text, sep) {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out, len(out) > 0
}

// skips reports whether a path list, or a source with a fallback, moves
// past v: an empty value, or in a time a Unix timestamp of zero or below.
func (s *spec) skips(v any) bool {
	return isEmpty(v) || (s.isTime && unsetTimestamp(v))
}

// unsetTimestamp reports whether v is a number, or a text of one, that is
// zero or below: what payloads send for a time that is not set, and what
// event.ParseTime does not read as a time.
func unsetTimestamp(v any) bool {
	var text string
	switch x := v.(type) {
	case json.Number:
		text = string(x)
	case float64:
		return x <= 0
	case string:
		text = strings.TrimSpace(x)
	default:
		return false
	}
	f, err := strconv.ParseFloat(text, 64)
	return err == nil && f <= 0
}

// isEmpty reports whether a resolved value is one a Go template's `with`
// skips: "", false, an empty list or object. Numbers, zero included, are
// never empty (JSON numbers resolve as json.Number, which `with` keeps).
func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case bool:
		return !x
	case []any:
		return len(x) == 0
	case []string:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

// applyMap translates a value through the map: a scalar by its text, a list
// element by element. Values the map does not name pass through unchanged,
// or become map_default when it is set.
func (s *spec) applyMap(v any) (any, bool) {
	switch x := v.(type) {
	case []any:
		out := make([]any, 0, len(x))
		for _, e := range x {
			if m, ok := s.mapOne(e); ok {
				out = append(out, m)
			}
		}
		return out, len(out) > 0
	case map[string]any:
		return v, true
	}
	return s.mapOne(v)
}

func (s *spec) mapOne(v any) (any, bool) {
	if m, found := s.mapping[keyString(v)]; found {
		return m, m != nil
	}
	if s.hasMapDefault {
		return s.mapDefault, s.mapDefault != nil
	}
	return v, v != nil
}

// keyString renders a scalar as the text a map key is matched against: a
// payload's number as references write it (120.0 and 1.2e2 are "120").
func keyString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return numberText(string(x))
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return event.String(x)
	}
	return event.String(v)
}

// toString renders a resolved value as event text (reference, vars, actor):
// numbers from the payload keep their exact digits, and a whole number
// written with a fraction or an exponent (1000000.0, 1e6: what some
// senders' JSON encoders write) is written as the integer, so that one
// ticket does not become several entities.
func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return numberText(string(x))
	}
	return event.String(event.Normalize(v))
}

// numberText is a JSON number literal as a reference: as it is, unless it
// has a fraction or an exponent and is a whole number that float64 holds
// exactly, which is written as plain digits (as templates print it).
func numberText(lit string) string { return yamlconf.FormatNumberLiteral(lit) }

// resultValue converts a gjson result into a resolved value. JSON null and
// a result that does not exist are absent. Top-level numbers are kept as
// json.Number so that large ids keep their digits.
func resultValue(r gjson.Result) (any, bool) {
	switch r.Type {
	case gjson.String:
		return r.Str, true
	case gjson.Number:
		if r.Raw == "" {
			return r.Num, true
		}
		return json.Number(r.Raw), true
	case gjson.True:
		return true, true
	case gjson.False:
		return false, true
	case gjson.JSON:
		// encoding/json rather than r.Value(): it is linear in the size of
		// the value (gjson's is not on deeply nested arrays) and refuses
		// nesting deeper than 10,000, which then counts as absent.
		dec := json.NewDecoder(strings.NewReader(r.Raw))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		// One value and nothing after it: a modifier such as @fromstr
		// can hand back text with more behind the first value.
		if _, err := dec.Token(); err != io.EOF {
			return nil, false
		}
		return v, v != nil
	}
	return nil, false
}

// fieldValue is resultValue for a field's plain single path (no path list,
// fallback, default, map or split): an explicit JSON null there is present,
// with the value nil (a platform's "owner": null: the ticket is
// unassigned, and the entity's owner is cleared).
func fieldValue(r gjson.Result) (any, bool) {
	if isNull(r) {
		return nil, true
	}
	return resultValue(r)
}

// isNull reports whether r is an explicit JSON null (not a path that does
// not resolve).
func isNull(r gjson.Result) bool {
	return r.Type == gjson.Null && strings.TrimSpace(r.Raw) == "null"
}

// maxFlattenDepth bounds how many object levels putField flattens into
// dotted names; deeper objects stay map values.
const maxFlattenDepth = 8

// putField stores a present value under a flat dotted field name; a JSON
// object is flattened into name.key entries. A nil value (an explicit JSON
// null), and a null member of an object, is stored as nil: the event
// carries the field as null, which clears it in the entity.
func putField(fields map[string]any, name string, v any) {
	flattenInto(fields, name, event.Normalize(v), 0)
}

func flattenInto(fields map[string]any, name string, n any, depth int) {
	if obj, ok := n.(map[string]any); ok && depth < maxFlattenDepth {
		for k, e := range obj {
			flattenInto(fields, name+"."+k, e, depth+1)
		}
		return
	}
	fields[name] = n
}

// parseTime reads occurred_at: an RFC 3339 string or one of its common
// variants, or Unix seconds, milliseconds, microseconds or nanoseconds as a
// number or a numeric string (event.ParseTime, shared with the rules'
// since: fields).
func parseTime(v any) (time.Time, bool) { return event.ParseTime(v) }
