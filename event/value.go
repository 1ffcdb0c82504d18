package event

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Well-known field names of the common model.
const (
	FieldStatus         = "status"
	FieldStatusCategory = "status_category"
	FieldPriority       = "priority"
	FieldOwner          = "owner"
	FieldGroup          = "group"
	FieldDepartment     = "department"
	FieldCategory       = "category"
	FieldChannel        = "channel"
	FieldTags           = "tags"
	FieldSubject        = "subject"
	FieldText           = "text"
	FieldLanguage       = "language"
	FieldSessionState   = "session_state"
	FieldInactiveReason = "inactive_reason"
	FieldSurveyRating   = "survey_rating"
)

// DerivedFrom names, for a field connectors derive from another one, that
// field: status_category is the platform's status grouped. A change to a
// derived field comes with a change to its source, and means nothing more.
func DerivedFrom(field string) (source string, ok bool) {
	if field == FieldStatusCategory {
		return FieldStatus, true
	}
	return "", false
}

// Normalize converts a decoded value into the model's JSON shape: integers
// and other numbers become float64, maps become map[string]any, slices of
// strings become []string, time.Time stays time.Time. Unknown kinds are
// rendered with fmt.
func Normalize(v any) any {
	switch x := v.(type) {
	case nil, string, bool, float64, time.Time:
		return x
	case []string:
		return x
	case json.Number:
		if f, err := x.Float64(); err == nil {
			return f
		}
		return x.String()
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case int32:
		return float64(x)
	case uint64:
		return float64(x)
	case float32:
		return float64(x)
	case []any:
		allStrings := true
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = Normalize(e)
			if _, ok := out[i].(string); !ok {
				allStrings = false
			}
		}
		if allStrings && len(x) > 0 {
			s := make([]string, len(out))
			for i, e := range out {
				s[i] = e.(string)
			}
			return s
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = Normalize(e)
		}
		return out
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(rv.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return float64(rv.Uint())
	}
	return fmt.Sprint(v)
}

// String renders a value as text: strings as they are, numbers without a
// trailing ".0", times as RFC 3339, lists joined with ", ", nil as "".
func String(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e15 {
			return strconv.FormatInt(int64(x), 10)
		}
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case []string:
		return strings.Join(x, ", ")
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = String(e)
		}
		return strings.Join(parts, ", ")
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// Float returns v as a number when it is one or a string that parses as one.
func Float(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		return f, err == nil
	case bool:
		return 0, false
	}
	return 0, false
}

// Time returns v as a time when it is one or an RFC 3339 string.
func Time(v any) (time.Time, bool) {
	switch x := v.(type) {
	case time.Time:
		return x, !x.IsZero()
	case string:
		t, err := time.Parse(time.RFC3339Nano, x)
		return t, err == nil
	}
	return time.Time{}, false
}

// Strings returns v as a list of strings: a []string as is, a []any element
// by element, a single scalar as a one-element list, nil as nil.
func Strings(v any) []string {
	switch x := v.(type) {
	case nil:
		return nil
	case []string:
		return x
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			out = append(out, String(e))
		}
		return out
	case string:
		if x == "" {
			return nil
		}
		return []string{x}
	}
	return []string{String(v)}
}

// Equal reports whether two model values are the same. Lists compare as
// sets when both are string lists (tags), numbers compare numerically, and a
// number equals the string that parses to it.
func Equal(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case []string, []any:
		ys, ok := b.([]string)
		if !ok {
			if _, isAny := b.([]any); !isAny {
				return false
			}
			ys = Strings(b)
		}
		xs := Strings(x)
		if len(xs) != len(ys) {
			return false
		}
		xc := append([]string(nil), xs...)
		yc := append([]string(nil), ys...)
		sort.Strings(xc)
		sort.Strings(yc)
		for i := range xc {
			if xc[i] != yc[i] {
				return false
			}
		}
		return true
	case float64:
		y, ok := Float(b)
		return ok && x == y
	case time.Time:
		y, ok := Time(b)
		return ok && x.Equal(y)
	}
	if b == nil {
		return false
	}
	if fb, ok := b.(float64); ok {
		fa, ok := Float(a)
		return ok && fa == fb
	}
	if tb, ok := b.(time.Time); ok {
		ta, ok := Time(a)
		return ok && ta.Equal(tb)
	}
	return String(a) == String(b)
}

// PlainDecimal reports whether s is a plain decimal number (an optional
// minus, digits without a leading zero or a single 0, an optional fraction
// and an optional exponent) and how many significant digits its integer
// and fraction parts hold. Digit strings it refuses ("007", "+5", " 5")
// are identifiers or text, not numbers.
func PlainDecimal(s string) (digits int, ok bool) {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	start := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == start || (s[start] == '0' && i-start > 1) {
		return 0, false
	}
	digits = i - start
	if i < len(s) && s[i] == '.' {
		i++
		frac := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == frac {
			return 0, false
		}
		digits += i - frac
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		exp := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == exp {
			return 0, false
		}
	}
	return digits, i == len(s)
}
