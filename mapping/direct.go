package mapping

import (
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// The functions here read field values straight from gjson results, without
// decoding them into interface values first and normalizing a copy: the
// fast path of `fields` entries that are plain paths (`custom: "@this"`,
// `customer: customer`). They give exactly what putField(resultValue(r))
// gives, or putField(fieldValue(r)) for a field that keeps an explicit
// null: the same absent cases, the same normalized values, the same
// flattened names (null members included, as nil).

// maxDecodeDepth is the nesting encoding/json refuses beyond; resultValue
// counts a deeper value as absent, and so does putResult.
const maxDecodeDepth = 10000

// result returns the gjson result a root or level path points at (absent:
// Type Null, not Exists).
func (st *state) result(r *pathRef) gjson.Result {
	b := st.root
	if r.base == baseLevel {
		b = st.elems[r.level]
	}
	if r.path == "" {
		return b
	}
	if b.Type != gjson.JSON {
		return gjson.Result{}
	}
	return b.Get(r.path)
}

// direct reports whether a field spec can take the fast path: a plain path
// of the payload or of the current element, read fresh (not a shared path,
// whose values are cached as interface values), with no map, split or
// fallback.
func (s *spec) direct() bool {
	return s.kind == specPath && s.mapping == nil && s.fallback == nil && s.split == "" && !s.ref.shared &&
		(s.ref.base == baseRoot || s.ref.base == baseLevel)
}

// putResult stores r under name as putField(resultValue(r)) would and
// reports whether r was present; with keepNull, as
// putField(fieldValue(r)) would (an explicit JSON null is present and
// stored as nil). check is the path's mayBreak.
func putResult(fields map[string]any, name string, r gjson.Result, check, keepNull bool) bool {
	if r.Type != gjson.JSON {
		v, ok := resultValue(r)
		if !ok && keepNull && isNull(r) {
			v, ok = nil, true
		}
		if ok {
			putField(fields, name, v)
		}
		return ok
	}
	if tooDeep(r.Raw) {
		return false
	}
	// A result of a path that may break (a literal such as !{, or @fromstr
	// on a string that holds broken JSON) may not be JSON: resultValue
	// does not decode such text, so it is absent here too. A result with
	// an index points into the (valid) body and needs no check.
	if check && r.Index == 0 && !gjson.Valid(r.Raw) {
		return false
	}
	flattenResult(fields, name, r, 0)
	return true
}

// flattenResult is flattenInto for a gjson value nested in a decoded JSON
// value (strings and numbers as encoding/json reads them).
func flattenResult(fields map[string]any, name string, r gjson.Result, depth int) {
	if !r.IsObject() || depth >= maxFlattenDepth {
		fields[name] = normResult(r) // a null member is stored as nil
		return
	}
	// Read the members once into a small buffer, checking for duplicate
	// keys on the way (the last of them wins when decoding, so such an
	// object is flattened from its decoded form, as before).
	var small [smallObject]member
	members := small[:0]
	dup, big := false, false
	r.ForEach(func(k, v gjson.Result) bool {
		key := keyText(k)
		for _, m := range members {
			if m.key == key {
				dup = true
				return false
			}
		}
		if len(members) == cap(members) {
			big = true
			return false
		}
		members = append(members, member{key, v})
		return true
	})
	switch {
	case dup || (big && hasDuplicateKeys(r)):
		flattenInto(fields, name, normResult(r), depth)
	case big:
		r.ForEach(func(k, v gjson.Result) bool {
			flattenResult(fields, name+"."+keyText(k), v, depth+1)
			return true
		})
	default:
		// One string holds every member's name, each a substring of it:
		// one allocation instead of one per member.
		n := 0
		for _, m := range members {
			n += len(name) + 1 + len(m.key)
		}
		var b strings.Builder
		b.Grow(n)
		for _, m := range members {
			b.WriteString(name)
			b.WriteByte('.')
			b.WriteString(m.key)
		}
		names, off := b.String(), 0
		for _, m := range members {
			end := off + len(name) + 1 + len(m.key)
			flattenResult(fields, names[off:end], m.val, depth+1)
			off = end
		}
	}
}

// smallObject is how many members flattenResult buffers on the stack.
const smallObject = 32

// member is one key and value of a JSON object.
type member struct {
	key string
	val gjson.Result
}

// normResult converts a gjson value nested in decoded JSON into the
// model's shape, as event.Normalize of the encoding/json decoding (with
// UseNumber) does: numbers float64 (text when out of range), string arrays
// []string, other arrays []any, objects map[string]any, null nil.
func normResult(r gjson.Result) any {
	switch r.Type {
	case gjson.String:
		return stringText(r)
	case gjson.Number:
		if r.Raw == "" {
			return r.Num
		}
		if f, err := strconv.ParseFloat(r.Raw, 64); err == nil {
			return f
		}
		return r.Raw
	case gjson.True:
		return true
	case gjson.False:
		return false
	case gjson.JSON:
		if r.IsArray() {
			var out []any
			allStrings := true
			r.ForEach(func(_, el gjson.Result) bool {
				v := normResult(el)
				if _, ok := v.(string); !ok {
					allStrings = false
				}
				out = append(out, v)
				return true
			})
			if out == nil {
				return []any{}
			}
			if allStrings {
				s := make([]string, len(out))
				for i, e := range out {
					s[i] = e.(string)
				}
				return s
			}
			return out
		}
		out := make(map[string]any)
		r.ForEach(func(k, v gjson.Result) bool {
			out[keyText(k)] = normResult(v)
			return true
		})
		return out
	}
	return nil
}

// stringText returns a JSON string as encoding/json decodes it: gjson's
// text when the raw string has no escapes and is valid UTF-8 (the common
// case, where both agree), else encoding/json's own reading (it replaces
// invalid UTF-8 and lone surrogates with U+FFFD).
func stringText(r gjson.Result) string {
	if strings.IndexByte(r.Raw, '\\') < 0 && utf8.ValidString(r.Raw) {
		return r.Str
	}
	var s string
	if err := json.Unmarshal([]byte(r.Raw), &s); err != nil {
		return r.Str
	}
	return s
}

// keyText is stringText for an object key.
func keyText(k gjson.Result) string { return stringText(k) }

// hasDuplicateKeys reports whether an object names a key twice.
func hasDuplicateKeys(r gjson.Result) bool {
	var small [32]string
	keys := small[:0]
	var seen map[string]struct{}
	dup := false
	r.ForEach(func(k, _ gjson.Result) bool {
		key := keyText(k)
		if seen != nil {
			if _, ok := seen[key]; ok {
				dup = true
				return false
			}
			seen[key] = struct{}{}
			return true
		}
		for _, prev := range keys {
			if prev == key {
				dup = true
				return false
			}
		}
		if len(keys) < cap(keys) {
			keys = append(keys, key)
			return true
		}
		seen = make(map[string]struct{}, 2*len(keys))
		for _, prev := range keys {
			seen[prev] = struct{}{}
		}
		seen[key] = struct{}{}
		return true
	})
	return dup
}

// tooDeep reports whether a JSON text nests deeper than encoding/json
// accepts. Each level takes two bytes at least, so short texts are never
// too deep and are not scanned.
func tooDeep(raw string) bool {
	if len(raw) <= 2*maxDecodeDepth {
		return false
	}
	depth := 0
	for i := 0; i < len(raw); i++ {
		switch raw[i] {
		case '"':
			for i++; i < len(raw) && raw[i] != '"'; i++ {
				if raw[i] == '\\' {
					i++
				}
			}
		case '{', '[':
			if depth++; depth > maxDecodeDepth {
				return true
			}
		case '}', ']':
			depth--
		}
	}
	return false
}
