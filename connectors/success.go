package connectors

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tidwall/gjson"
	"gopkg.in/yaml.v3"

	"github.com/hookline/hookline/internal/yamlconf"
	"github.com/hookline/hookline/mapping"
)

// SuccessWhen is an action's condition on the JSON response body
// (`success_when`), for platforms that answer a failed call with a success
// status, such as Slack's HTTP 200 {"ok": false, "error": "channel_not_found"}.
// It is checked only after the status code said success; a response that
// fails it is a body failure: dead at once, unless the platform's error code
// (at ErrorPath) is one of RetryErrors, then retried like a retryable status.
type SuccessWhen struct {
	Path        string   // gjson path into the response body
	Equals      any      // the value meaning success: bool, float64 or string (JSON types must match)
	ErrorPath   string   // optional gjson path of the platform's error code, named in reasons
	RetryErrors []string // error codes (at ErrorPath) worth retrying
}

// BodyVerdict is what SuccessWhen.Check found in a response body.
type BodyVerdict struct {
	OK     bool   // the body says success
	Retry  bool   // a failure worth retrying (its error code is in RetryErrors)
	Reason string // why it failed, naming the path and the value: "response ok is false: error channel_not_found"
}

// Check judges a response body. A body that is not JSON, or lacks Path, or
// holds another value there, fails.
func (s *SuccessWhen) Check(body []byte) BodyVerdict {
	r := gjson.GetBytes(body, s.Path)
	switch {
	case !r.Exists() && !gjson.ValidBytes(body):
		return s.failed(body, fmt.Sprintf("response is not JSON (success_when needs %s = %s)", s.Path, literal(s.Equals)))
	case !r.Exists():
		return s.failed(body, fmt.Sprintf("response %s is absent (success_when needs %s)", s.Path, literal(s.Equals)))
	case matches(r, s.Equals):
		return BodyVerdict{OK: true}
	}
	return s.failed(body, fmt.Sprintf("response %s is %s", s.Path, shortRaw(r.Raw)))
}

// failed completes a failing verdict with the error code and whether it is
// retried.
func (s *SuccessWhen) failed(body []byte, reason string) BodyVerdict {
	v := BodyVerdict{Reason: reason}
	if s.ErrorPath == "" {
		return v
	}
	code, ok := errorCode(body, s.ErrorPath)
	if !ok {
		return v
	}
	v.Reason += ": " + s.ErrorPath + " " + shortRaw(code)
	v.Retry = slices.Contains(s.RetryErrors, code)
	return v
}

// errorCode reads a platform's error code at path in a JSON response body,
// as text; false when it is absent or null.
func errorCode(body []byte, path string) (string, bool) {
	e := gjson.GetBytes(body, path)
	if !e.Exists() || e.Type == gjson.Null {
		return "", false
	}
	return e.String(), true
}

// matches compares a JSON value with a scalar of the config: a bool matches
// true or false, a number an equal number, a string an equal string.
func matches(r gjson.Result, want any) bool {
	switch w := want.(type) {
	case bool:
		return (r.Type == gjson.True && w) || (r.Type == gjson.False && !w)
	case float64:
		return r.Type == gjson.Number && r.Num == w
	case string:
		return r.Type == gjson.String && r.Str == w
	}
	return false
}

// literal renders an Equals value the way it appears in JSON.
func literal(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprint(v)
}

// shortRaw cuts a value for a reason to 100 bytes, on one line.
func shortRaw(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 100 {
		return s[:100] + "..."
	}
	return s
}

type successWhenYAML struct {
	Path        *yaml.Node `yaml:"path"`
	Equals      *yaml.Node `yaml:"equals"`
	ErrorPath   *yaml.Node `yaml:"error_path"`
	RetryErrors []string   `yaml:"retry_errors"`
}

// loadSuccessWhen compiles an action's success_when block.
func loadSuccessWhen(file string, n *yaml.Node) (*SuccessWhen, yamlconf.Errors) {
	var errs yamlconf.Errors
	if n.Kind != yaml.MappingNode {
		errs.Add(file, n, "success_when: expected a mapping like { path: ok, equals: true }, got %s", yamlconf.KindName(n))
		return nil, errs
	}
	var y successWhenYAML
	errs.Append(yamlconf.Decode(file, n, &y))
	if len(errs) > 0 {
		return nil, errs
	}
	s := &SuccessWhen{RetryErrors: y.RetryErrors}
	path := func(key string, p *yaml.Node) string {
		if p.Kind != yaml.ScalarNode {
			errs.Add(file, p, "success_when.%s: expected a gjson path, got %s", key, yamlconf.KindName(p))
			return ""
		}
		if err := mapping.CheckPath(p.Value); err != nil {
			errs.Add(file, p, "success_when.%s: %v", key, err)
		}
		return p.Value
	}
	if y.Path == nil {
		errs.Add(file, n, "success_when: missing required key %q (the gjson path of the response field that says success, e.g. ok)", "path")
	} else {
		s.Path = path("path", y.Path)
	}
	if y.Equals == nil {
		errs.Add(file, n, "success_when: missing required key %q (the value meaning success, e.g. true)", "equals")
	} else if v, err := yamlconf.ToValue(y.Equals); err != nil || y.Equals.Kind != yaml.ScalarNode {
		errs.Add(file, y.Equals, "success_when.equals: expected true, false, a number or a string, got %s", yamlconf.KindName(y.Equals))
	} else {
		switch x := v.(type) {
		case bool, string, float64:
			s.Equals = x
		default:
			errs.Add(file, y.Equals, "success_when.equals: expected true, false, a number or a string, got %s", yamlconf.KindName(y.Equals))
		}
	}
	if y.ErrorPath != nil {
		s.ErrorPath = path("error_path", y.ErrorPath)
	}
	if rn := yamlconf.Lookup(n, "retry_errors"); rn != nil {
		if y.ErrorPath == nil {
			errs.Add(file, rn, "success_when.retry_errors needs error_path (the path of the platform's error code, e.g. error)")
		}
		for i, c := range y.RetryErrors {
			if strings.TrimSpace(c) == "" {
				errs.Add(file, rn.Content[i], "success_when.retry_errors: empty error code")
			}
		}
	}
	return s, errs
}
