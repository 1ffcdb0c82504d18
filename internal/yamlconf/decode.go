package yamlconf

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Unmarshaler is implemented by config types that decode themselves from a
// node (conditions, actions, polymorphic values). Decode calls it instead of
// its reflective rules.
type Unmarshaler interface {
	UnmarshalConfig(file string, n *yaml.Node) Errors
}

var (
	unmarshalerType = reflect.TypeFor[Unmarshaler]()
	nodePtrType     = reflect.TypeFor[*yaml.Node]()
	nodeType        = reflect.TypeFor[yaml.Node]()
	posType         = reflect.TypeFor[Pos]()
	durationType    = reflect.TypeFor[time.Duration]()
)

// Decode decodes node n of file into out (a pointer) strictly:
//
//   - struct fields are matched by their `yaml:"name"` tag (fields without a
//     tag or tagged "-" are skipped); an unknown key is an error naming the
//     nearest valid key; `yaml:"name,required"` makes a key mandatory;
//   - a field of type Pos tagged `yaml:"-"` named Pos receives the node's position;
//   - *yaml.Node fields keep the raw node for later compilation;
//   - time.Duration accepts Go durations ("15m", "48h") and "2d"-style days;
//   - scalars convert with positioned errors; types implementing Unmarshaler
//     decode themselves.
//
// All problems are collected; decoding continues past the first one.
func Decode(file string, n *yaml.Node, out any) Errors {
	var errs Errors
	rv := reflect.ValueOf(out)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		panic("yamlconf.Decode: out must be a non-nil pointer")
	}
	decodeValue(file, Resolve(n), rv.Elem(), &errs)
	return errs
}

func decodeValue(file string, n *yaml.Node, v reflect.Value, errs *Errors) {
	if n == nil {
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(unmarshalerType) {
		if v.Kind() == reflect.Pointer && v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		errs.Append(v.Addr().Interface().(Unmarshaler).UnmarshalConfig(file, n))
		return
	}
	switch v.Type() {
	case nodePtrType:
		v.Set(reflect.ValueOf(n))
		return
	case nodeType:
		v.Set(reflect.ValueOf(*n))
		return
	case durationType:
		if d, ok := scalar(file, n, "a duration like 15m or 48h", errs); ok {
			dur, err := ParseDuration(d)
			if err != nil {
				errs.Add(file, n, "%v", err)
				return
			}
			v.SetInt(int64(dur))
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if n.Tag == "!!null" {
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		decodeValue(file, n, v.Elem(), errs)
	case reflect.Struct:
		decodeStruct(file, n, v, errs)
	case reflect.String:
		if s, ok := scalar(file, n, "a string", errs); ok {
			v.SetString(s)
		}
	case reflect.Bool:
		if s, ok := scalar(file, n, "true or false", errs); ok {
			b, err := strconv.ParseBool(s)
			if err != nil {
				errs.Add(file, n, "expected true or false, got %q", s)
				return
			}
			v.SetBool(b)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if s, ok := scalar(file, n, "a whole number", errs); ok {
			i, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 10, 64)
			if err != nil {
				errs.Add(file, n, "expected a whole number, got %q", s)
				return
			}
			v.SetInt(i)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if s, ok := scalar(file, n, "a whole number", errs); ok {
			i, err := strconv.ParseUint(strings.ReplaceAll(s, "_", ""), 10, 64)
			if err != nil {
				errs.Add(file, n, "expected a whole non-negative number, got %q", s)
				return
			}
			v.SetUint(i)
		}
	case reflect.Float32, reflect.Float64:
		if s, ok := scalar(file, n, "a number", errs); ok {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				errs.Add(file, n, "expected a number, got %q", s)
				return
			}
			v.SetFloat(f)
		}
	case reflect.Slice:
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			return
		}
		items := n.Content
		if n.Kind != yaml.SequenceNode {
			// A single value where a list is expected is a one-element list.
			items = []*yaml.Node{n}
		}
		s := reflect.MakeSlice(v.Type(), len(items), len(items))
		for i, c := range items {
			decodeValue(file, Resolve(c), s.Index(i), errs)
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			return
		}
		if n.Kind != yaml.MappingNode {
			errs.Add(file, n, "expected a mapping, got %s", KindName(n))
			return
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		for _, kv := range Pairs(n) {
			key := reflect.New(v.Type().Key()).Elem()
			decodeValue(file, kv.Key, key, errs)
			val := reflect.New(v.Type().Elem()).Elem()
			decodeValue(file, kv.Value, val, errs)
			v.SetMapIndex(key, val)
		}
	case reflect.Interface:
		val, err := ToValue(n)
		if err != nil {
			errs.Add(file, n, "%v", err)
			return
		}
		if val != nil {
			v.Set(reflect.ValueOf(val))
		}
	default:
		panic(fmt.Sprintf("yamlconf.Decode: unsupported kind %s", v.Kind()))
	}
}

func scalar(file string, n *yaml.Node, want string, errs *Errors) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		errs.Add(file, n, "expected %s, got %s", want, KindName(n))
		return "", false
	}
	return n.Value, true
}

type fieldInfo struct {
	index    int
	required bool
}

// FieldNames returns the yaml keys a struct type accepts, sorted.
func FieldNames(t reflect.Type) []string {
	names := make([]string, 0, t.NumField())
	for name := range structFields(t) {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

func structFields(t reflect.Type) map[string]fieldInfo {
	fields := make(map[string]fieldInfo, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		if tag == "" || tag == "-" || !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		fields[name] = fieldInfo{index: i, required: strings.Contains(opts, "required")}
	}
	return fields
}

func decodeStruct(file string, n *yaml.Node, v reflect.Value, errs *Errors) {
	t := v.Type()
	if f, ok := t.FieldByName("Pos"); ok && f.Type == posType {
		v.FieldByIndex(f.Index).Set(reflect.ValueOf(At(file, n)))
	}
	if n.Kind != yaml.MappingNode {
		errs.Add(file, n, "expected a mapping, got %s", KindName(n))
		return
	}
	fields := structFields(t)
	seen := make(map[string]bool, len(fields))
	for _, kv := range Pairs(n) {
		name := kv.Key.Value
		fi, ok := fields[name]
		if !ok {
			errs.Add(file, kv.Key, "unknown key %q%s (valid: %s)", name, DidYouMean(name, FieldNames(t)), strings.Join(FieldNames(t), ", "))
			continue
		}
		if seen[name] {
			errs.Add(file, kv.Key, "key %q appears twice", name)
			continue
		}
		seen[name] = true
		decodeValue(file, kv.Value, v.Field(fi.index), errs)
	}
	var missing []string
	for name, fi := range fields {
		if fi.required && !seen[name] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	for _, name := range missing {
		errs.Add(file, n, "missing required key %q", name)
	}
}

// ParseDuration parses a Go duration, also accepting whole days ("2d") and
// weeks ("1w") as admins write them.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("expected a duration like 15m or 48h, got an empty value")
	}
	for _, unit := range []struct {
		suffix string
		d      time.Duration
	}{{"d", 24 * time.Hour}, {"w", 7 * 24 * time.Hour}} {
		if strings.HasSuffix(s, unit.suffix) {
			n, err := strconv.ParseFloat(strings.TrimSuffix(s, unit.suffix), 64)
			if err == nil {
				return time.Duration(n * float64(unit.d)), nil
			}
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("expected a duration like 15m, 48h or 2d, got %q", s)
	}
	return d, nil
}
