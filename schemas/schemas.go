package schemas

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

//go:embed payload/*.json config/*.schema.json
var files embed.FS

// baseURL is the identifier prefix of every embedded schema; schemas refer to
// each other relative to it. Nothing is ever fetched from it.
const baseURL = "https://hookline.dev/schemas/"

// Registry holds the compiled embedded schemas. It is immutable after New.
type Registry struct {
	payload map[string]*jsonschema.Schema
	config  map[string]*jsonschema.Schema
}

// New compiles every embedded schema once.
func New() (*Registry, error) {
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	c.AssertFormat = true
	// Only the embedded resources exist: a reference to anything else fails
	// instead of reaching the network or the file system.
	c.LoadURL = func(u string) (io.ReadCloser, error) {
		return nil, fmt.Errorf("%w: %s is not embedded", ErrUnknownSchema, u)
	}
	r := &Registry{payload: map[string]*jsonschema.Schema{}, config: map[string]*jsonschema.Schema{}}
	dirs := []struct {
		dir string
		out map[string]*jsonschema.Schema
	}{{"payload", r.payload}, {"config", r.config}}
	var names [][2]string
	for _, d := range dirs {
		entries, err := fs.ReadDir(files, d.dir)
		if err != nil {
			return nil, fmt.Errorf("read embedded schemas %s: %w", d.dir, err)
		}
		for _, e := range entries {
			p := path.Join(d.dir, e.Name())
			data, err := files.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("read embedded schema %s: %w", p, err)
			}
			if err := c.AddResource(baseURL+p, bytes.NewReader(data)); err != nil {
				return nil, fmt.Errorf("add schema %s: %w", p, err)
			}
			names = append(names, [2]string{d.dir, e.Name()})
		}
	}
	for _, n := range names {
		p := path.Join(n[0], n[1])
		s, err := c.Compile(baseURL + p)
		if err != nil {
			return nil, fmt.Errorf("compile schema %s: %w", p, err)
		}
		if n[0] == "payload" {
			r.payload[n[1]] = s
		} else {
			r.config[n[1]] = s
		}
	}
	return r, nil
}

// Names returns the payload schema names (file names such as
// "zendesk-ticket-event.json"), sorted.
func (r *Registry) Names() []string { return sortedKeys(r.payload) }

// Has reports whether a payload schema of that name is embedded. The ".json"
// suffix may be left out.
func (r *Registry) Has(name string) bool {
	_, ok := r.payload[canonical(name)]
	return ok
}

// ConfigNames returns the config-file schema names (such as
// "connector.schema.json"), sorted.
func (r *Registry) ConfigNames() []string { return sortedKeys(r.config) }

// Validate checks a decoded JSON document (from json.Unmarshal into any)
// against payload schema name. It returns nil when the document is valid, a
// *ValidationError when it is not, and an error wrapping ErrUnknownSchema for
// an unknown name.
func (r *Registry) Validate(name string, doc any) error {
	s, ok := r.payload[canonical(name)]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownSchema, name)
	}
	return check(canonical(name), s, doc)
}

// ValidateJSON decodes body (numbers kept exact) and validates it like Validate.
func (r *Registry) ValidateJSON(name string, body []byte) error {
	s, ok := r.payload[canonical(name)]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownSchema, name)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("validate against %s: %w: %v", name, ErrInvalidJSON, err)
	}
	if dec.More() {
		return fmt.Errorf("validate against %s: %w: data after the JSON value", name, ErrInvalidJSON)
	}
	return check(canonical(name), s, doc)
}

// ValidateConfig validates a config document (a YAML file converted to
// JSON-shaped values) against config schema name ("connector.schema.json",
// "gateway.schema.json", "rules.schema.json", "test.schema.json"; the short
// names "connector", "gateway", "rules" and "test" also work).
func (r *Registry) ValidateConfig(name string, doc any) error {
	n := name
	if !strings.HasSuffix(n, ".json") {
		n += ".schema.json"
	}
	s, ok := r.config[n]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownSchema, name)
	}
	return check(n, s, doc)
}

// ConfigSchema returns the source of a config-file schema, for tools that
// write it next to the admin's files.
func ConfigSchema(name string) ([]byte, error) {
	b, err := files.ReadFile(path.Join("config", name))
	if err != nil {
		return nil, fmt.Errorf("%w %q", ErrUnknownSchema, name)
	}
	return b, nil
}

func canonical(name string) string {
	if strings.HasSuffix(name, ".json") {
		return name
	}
	return name + ".json"
}

func sortedKeys(m map[string]*jsonschema.Schema) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func check(name string, s *jsonschema.Schema, doc any) error {
	err := s.Validate(doc)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if errors.As(err, &ve) {
		p, reason := mostSpecific(ve)
		return &ValidationError{Schema: name, Pointer: p, Reason: reason}
	}
	var te jsonschema.InvalidJSONTypeError
	if errors.As(err, &te) {
		return &ValidationError{Schema: name, Reason: "document holds a value that is not JSON (" + string(te) + ")"}
	}
	return fmt.Errorf("validate against %s: %w", name, err)
}

// mostSpecific picks the deepest leaf cause of a validation error and renders
// its pointer and reason. A missing required property is reported at the
// property's own pointer.
func mostSpecific(ve *jsonschema.ValidationError) (pointer, reason string) {
	bestDepth := -1
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		p, r := leafText(e)
		d := strings.Count(p, "/")
		if d > bestDepth {
			bestDepth, pointer, reason = d, p, r
		}
	}
	walk(ve)
	if bestDepth < 0 {
		return ve.InstanceLocation, ve.Message
	}
	return pointer, reason
}

func leafText(e *jsonschema.ValidationError) (string, string) {
	msg := e.Message
	if rest, ok := strings.CutPrefix(msg, "missing properties: "); ok {
		// rest is like 'id', 'time'; report the first one.
		first, _, _ := strings.Cut(rest, ",")
		first = strings.Trim(strings.TrimSpace(first), "'")
		return e.InstanceLocation + "/" + EscapePointer(first), "missing property"
	}
	return e.InstanceLocation, msg
}

// EscapePointer escapes s as a JSON pointer token (RFC 6901: ~ as ~0, / as ~1).
func EscapePointer(s string) string {
	s = strings.ReplaceAll(s, "~", "~0")
	return strings.ReplaceAll(s, "/", "~1")
}
