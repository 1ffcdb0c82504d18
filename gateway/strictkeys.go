package gateway

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/hookline/hookline/internal/yamlconf"
)

// A dry-run request and a config test's event and snapshot are decoded as
// JSON into Go types that ignore unknown keys: a misspelt key ("feilds",
// "advence") would be dropped and the run would answer as if it had not
// been written. The functions here find such keys by walking the value
// beside the type it decodes into, and name the key meant.

var (
	jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	timeType            = reflect.TypeFor[time.Time]()
)

// jsonObjectType returns the struct or map type whose keys an object
// decoded into t must match (pointers followed), or nil when t takes any
// object (any, json.RawMessage, a type that decodes itself).
func jsonObjectType(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == timeType || reflect.PointerTo(t).Implements(jsonUnmarshalerType) || reflect.PointerTo(t).Implements(textUnmarshalerType) {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map, reflect.Slice, reflect.Array:
		if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 {
			return nil
		}
		return t
	}
	return nil
}

// jsonFields returns the JSON keys of struct type t with their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-":
			continue
		case f.Anonymous && name == "":
			for k, v := range jsonFields(f.Type) {
				fields[k] = v
			}
			continue
		case name == "":
			name = f.Name
		}
		fields[name] = f.Type
	}
	return fields
}

func sortedKeys(m map[string]reflect.Type) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// unknownKeyMsg is the message for an object key its type does not have.
func unknownKeyMsg(key string, fields map[string]reflect.Type) string {
	known := sortedKeys(fields)
	return fmt.Sprintf("unknown key %q%s (valid: %s)", key, yamlconf.DidYouMean(key, known), strings.Join(known, ", "))
}

// unknownJSONKeys lists, as "path: message", the keys of the decoded JSON
// value v that type t has no field for.
func unknownJSONKeys(path string, v any, t reflect.Type) []string {
	t = jsonObjectType(t)
	if t == nil {
		return nil
	}
	at := func(k string) string {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	var out []string
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil // a type error: json.Unmarshal reports it
		}
		fields := jsonFields(t)
		for _, k := range sortedMapKeys(obj) {
			ft, known := fields[k]
			if !known {
				where := "unknown key"
				if path != "" {
					where = path + ": unknown key"
				}
				out = append(out, where+strings.TrimPrefix(unknownKeyMsg(k, fields), "unknown key"))
				continue
			}
			out = append(out, unknownJSONKeys(at(k), obj[k], ft)...)
		}
	case reflect.Map:
		obj, _ := v.(map[string]any)
		for _, k := range sortedMapKeys(obj) {
			out = append(out, unknownJSONKeys(at(k), obj[k], t.Elem())...)
		}
	case reflect.Slice, reflect.Array:
		list, _ := v.([]any)
		for i, item := range list {
			out = append(out, unknownJSONKeys(fmt.Sprintf("%s[%d]", path, i), item, t.Elem())...)
		}
	}
	return out
}

func sortedMapKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// unknownYAMLKeys reports, at their file:line:column, the keys of the
// YAML value n (decoded as JSON into type t) that t has no field for.
func unknownYAMLKeys(file string, n *yaml.Node, t reflect.Type, errs *yamlconf.Errors) {
	n = yamlconf.Resolve(n)
	t = jsonObjectType(t)
	if n == nil || t == nil {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		fields := jsonFields(t)
		for _, kv := range yamlconf.Pairs(n) {
			ft, known := fields[kv.Key.Value]
			if !known {
				errs.Add(file, kv.Key, "%s", unknownKeyMsg(kv.Key.Value, fields))
				continue
			}
			unknownYAMLKeys(file, kv.Value, ft, errs)
		}
	case reflect.Map:
		for _, kv := range yamlconf.Pairs(n) {
			unknownYAMLKeys(file, kv.Value, t.Elem(), errs)
		}
	case reflect.Slice, reflect.Array:
		if n.Kind == yaml.SequenceNode {
			for _, item := range n.Content {
				unknownYAMLKeys(file, item, t.Elem(), errs)
			}
		}
	}
}
