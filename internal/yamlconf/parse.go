package yamlconf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Env looks up an environment variable; os.LookupEnv fits.
type Env func(name string) (string, bool)

// NoEnv is an Env in which no variable is set.
func NoEnv(string) (string, bool) { return "", false }

// MapEnv returns an Env backed by m.
func MapEnv(m map[string]string) Env {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

var yamlLineErr = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// shellForm matches what a shell would expand inside ${...} but Hookline
// does not: a name with spaces around it, or followed by -, =, ?, + (with
// or without a colon) other than :-.
var shellForm = regexp.MustCompile(`^\s*[A-Za-z_][A-Za-z0-9_]*\s*(:?[-=?+].*)?$`)

// Parse parses one YAML document from data and expands ${VAR} and
// ${VAR:-default} in every scalar value (keys are left alone). A variable
// that is unset and has no default is an error at its position. An empty
// document yields a nil node and no error.
func Parse(file string, data []byte, env Env) (*yaml.Node, Errors) {
	return ParseObserved(file, data, env, nil)
}

// DefaultObserver is told each time a ${VAR:-default} falls back to its
// default, with the variable's name and the default's value.
type DefaultObserver func(name, value string)

// ParseObserved is Parse that also reports every default taken to observe
// (which may be nil), so callers can warn about development secrets in use.
func ParseObserved(file string, data []byte, env Env, observe DefaultObserver) (*yaml.Node, Errors) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, Errors{syntaxError(file, err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, Errors{Errorf(file, &extra, "only one YAML document per file is supported (found a second one)")}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if env == nil {
		env = NoEnv
	}
	var errs Errors
	checkAliases(file, root, &errs)
	dropDuplicateKeys(file, root, &errs)
	expandNode(file, root, env, observe, &errs, false)
	return root, errs
}

// dropDuplicateKeys reports every key that a mapping of the file gives
// more than once, at the repeat, naming where the first one is, and keeps
// only the first: YAML wants keys unique, and a repeat (two value_maps
// entries, two headers) would otherwise win silently. Keys are compared by
// their text, as every decoder here reads them. Nodes reached through an
// alias are checked where they are defined. A YAML merge key (<<) is
// reported and dropped too: nothing here merges.
func dropDuplicateKeys(file string, n *yaml.Node, errs *Errors) {
	switch n.Kind {
	case yaml.MappingNode:
		var first map[string]*yaml.Node
		kept := n.Content[:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
				// The decoders here read nodes, which keep << as a key:
				// say so once, rather than "unknown key" everywhere.
				errs.Add(file, k, "YAML merge keys (<<) are not supported; repeat the keys or use an anchor on the whole value")
				continue
			}
			if k.Kind == yaml.ScalarNode {
				if prev, dup := first[k.Value]; dup {
					errs.Add(file, k, "key %q appears twice (first at line %d, column %d)", k.Value, prev.Line, prev.Column)
					continue
				}
				if first == nil {
					first = make(map[string]*yaml.Node, len(n.Content)/2)
				}
				first[k.Value] = k
			}
			dropDuplicateKeys(file, v, errs)
			kept = append(kept, k, v)
		}
		n.Content = kept
	case yaml.SequenceNode, yaml.DocumentNode:
		for _, c := range n.Content {
			dropDuplicateKeys(file, c, errs)
		}
	}
}

func syntaxError(file string, err error) *Error {
	msg := err.Error()
	if m := yamlLineErr.FindStringSubmatch(msg); m != nil {
		var line int
		fmt.Sscanf(m[1], "%d", &line)
		return &Error{Pos: Pos{File: file, Line: line, Col: 1}, Msg: "YAML syntax: " + m[2]}
	}
	return &Error{Pos: Pos{File: file}, Msg: "YAML syntax: " + strings.TrimPrefix(msg, "yaml: ")}
}

func expandNode(file string, n *yaml.Node, env Env, observe DefaultObserver, errs *Errors, isKey bool) {
	switch n.Kind {
	case yaml.ScalarNode:
		if isKey || !strings.Contains(n.Value, "${") {
			return
		}
		v, err := expandEnv(n.Value, env, observe)
		if err != nil {
			errs.Add(file, n, "%v", err)
		}
		n.Value = v
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			expandNode(file, n.Content[i], env, observe, errs, true)
			expandNode(file, n.Content[i+1], env, observe, errs, false)
		}
	case yaml.SequenceNode, yaml.DocumentNode:
		for _, c := range n.Content {
			expandNode(file, c, env, observe, errs, false)
		}
	case yaml.AliasNode:
		// Aliases point at nodes expanded where they are defined.
	}
}

// KeyValue is one entry of a YAML mapping.
type KeyValue struct {
	Key   *yaml.Node
	Value *yaml.Node
}

// Pairs returns the entries of a mapping node in file order (nil for other kinds).
func Pairs(n *yaml.Node) []KeyValue {
	n = Resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	out := make([]KeyValue, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		out = append(out, KeyValue{Key: n.Content[i], Value: Resolve(n.Content[i+1])})
	}
	return out
}

// Lookup returns the value of key in mapping node n, or nil.
func Lookup(n *yaml.Node, key string) *yaml.Node {
	for _, kv := range Pairs(n) {
		if kv.Key.Value == key {
			return kv.Value
		}
	}
	return nil
}

// Resolve follows alias nodes.
func Resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// KindName names a node's kind for error messages.
func KindName(n *yaml.Node) string {
	n = Resolve(n)
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "a document"
}

// ToValue converts a node into a JSON-shaped Go value (string, float64, bool,
// nil, []any, map[string]any).
// A value that expands to more than MaxValueNodes nodes (through YAML
// aliases) is an error.
func ToValue(n *yaml.Node) (any, error) { return boundedValue(n, false) }

// ToExactValue is ToValue with integers as json.Number of their decimal
// digits, so that an integer float64 cannot hold (a 17-digit id) keeps
// every digit when encoded as JSON (config tests' payloads and
// expectations).
func ToExactValue(n *yaml.Node) (any, error) { return boundedValue(n, true) }

func boundedValue(n *yaml.Node, exact bool) (any, error) {
	if CountNodes(n, MaxValueNodes) > MaxValueNodes {
		return nil, fmt.Errorf("the value expands to more than %d nodes (check YAML aliases)", MaxValueNodes)
	}
	return toValue(n, exact)
}

func toValue(n *yaml.Node, exact bool) (any, error) {
	n = Resolve(n)
	if n == nil {
		return nil, nil
	}
	switch n.Kind {
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, err
		}
		switch x := v.(type) {
		case int:
			if exact {
				return json.Number(strconv.Itoa(x)), nil
			}
			return float64(x), nil
		case int64:
			if exact {
				return json.Number(strconv.FormatInt(x, 10)), nil
			}
			return float64(x), nil
		case uint64:
			if exact {
				return json.Number(strconv.FormatUint(x, 10)), nil
			}
			return float64(x), nil
		}
		return v, nil
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := toValue(c, exact)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		for _, kv := range Pairs(n) {
			v, err := toValue(kv.Value, exact)
			if err != nil {
				return nil, err
			}
			out[kv.Key.Value] = v
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported YAML node")
}

// ExpandEnv replaces ${VAR} and ${VAR:-default} in s. Defaults may themselves
// hold references (${A:-https://${B:-example}.test}). A variable that is unset
// or empty takes its default; with no default it is an error naming it. Text
// that is not a well-formed reference is kept as it is.
func ExpandEnv(s string, env Env) (string, error) { return expandEnv(s, env, nil) }

func expandEnv(s string, env Env, observe DefaultObserver) (string, error) {
	var b strings.Builder
	var firstErr error
	for i := 0; i < len(s); {
		if s[i] != '$' || i+1 >= len(s) || s[i+1] != '{' {
			b.WriteByte(s[i])
			i++
			continue
		}
		end := matchingBrace(s, i+2)
		name, def, hasDef := strings.Cut(s[i+2:max(end, i+2)], ":-")
		if end >= 0 && !validEnvName(name) && shellForm.MatchString(s[i+2:end]) {
			// ${VAR-x}, ${VAR:=x}, ${VAR:?x}, ${ VAR }: a shell's forms,
			// which would otherwise stay in the value as text.
			if firstErr == nil {
				firstErr = fmt.Errorf("%q: only ${VAR} and ${VAR:-default} are expanded", s[i:end+1])
			}
			b.WriteString(s[i : end+1])
			i = end + 1
			continue
		}
		if end < 0 || !validEnvName(name) {
			b.WriteString("${")
			i += 2
			continue
		}
		if v, ok := env(name); ok && v != "" {
			b.WriteString(v)
		} else if hasDef {
			v, err := expandEnv(def, env, observe)
			if err != nil && firstErr == nil {
				firstErr = err
			}
			if observe != nil {
				observe(name, v)
			}
			b.WriteString(v)
		} else if firstErr == nil {
			firstErr = fmt.Errorf("environment variable %s is not set (give a default with ${%s:-value})", name, name)
		}
		i = end + 1
	}
	return b.String(), firstErr
}

// matchingBrace returns the index of the "}" closing a reference whose body
// starts at from, counting nested "${", or -1.
func matchingBrace(s string, from int) int {
	depth := 0
	for j := from; j < len(s); j++ {
		switch {
		case s[j] == '$' && j+1 < len(s) && s[j+1] == '{':
			depth++
			j++
		case s[j] == '}':
			if depth == 0 {
				return j
			}
			depth--
		}
	}
	return -1
}

func validEnvName(name string) bool {
	if name == "" {
		return false
	}
	for i, c := range name {
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
