package yamlconf

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"text/template"
)

var varShorthand = regexp.MustCompile(`%%([A-Za-z_][A-Za-z0-9_]*)%%`)

// VarSource is implemented by the data given to templates compiled here: the
// %%NAME%% shorthand becomes {{ .Var "NAME" }}, which must fail (not render
// empty) when the variable is unknown.
type VarSource interface {
	Var(name string) (string, error)
}

// TemplateVars lists the %%NAME%% variables src refers to, in order of first use.
func TemplateVars(src string) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range varShorthand.FindAllStringSubmatch(src, -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			out = append(out, m[1])
		}
	}
	return out
}

// IsTemplate reports whether s holds template syntax or a %%NAME%% variable.
func IsTemplate(s string) bool {
	return strings.Contains(s, "{{") || varShorthand.MatchString(s)
}

// CompileTemplate parses src as a Go text/template after rewriting %%NAME%%
// into {{ .Var "NAME" }}. Missing map keys are errors. Functions: json
// (safe JSON encoding of any value), lower, upper, trim, default, join,
// split, contains, before and after (text around the first separator).
func CompileTemplate(name, src string) (*template.Template, error) {
	rewritten := varShorthand.ReplaceAllString(src, `{{ .Var "$1" }}`)
	t, err := template.New(name).Option("missingkey=error").Funcs(TemplateFuncs()).Parse(rewritten)
	if err != nil {
		return nil, fmt.Errorf("template: %w", cleanTemplateError(err, name))
	}
	return t, nil
}

// textOf is a template value as text: a string as it is, nil as "",
// anything else as fmt prints it (json.Number as its digits).
func textOf(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	}
	return fmt.Sprint(v)
}

// TemplateFuncs returns the function map every Hookline template gets.
func TemplateFuncs() template.FuncMap {
	return template.FuncMap{
		"json": func(v any) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
		// A payload's numbers and booleans come as json.Number and bool:
		// these take any value, as its text (nil: "").
		"lower": func(v any) string { return strings.ToLower(textOf(v)) },
		"upper": func(v any) string { return strings.ToUpper(textOf(v)) },
		"trim":  func(v any) string { return strings.TrimSpace(textOf(v)) },
		"default": func(def, v any) any {
			if v == nil || v == "" {
				return def
			}
			return v
		},
		"split": func(sep string, v any) []string {
			s := strings.TrimSpace(fmt.Sprint(v))
			if s == "" {
				return nil
			}
			if sep == " " {
				return strings.Fields(s)
			}
			return strings.Split(s, sep)
		},
		"contains": func(sub string, v any) bool { return strings.Contains(fmt.Sprint(v), sub) },
		"before": func(sep string, v any) string {
			before, _, _ := strings.Cut(fmt.Sprint(v), sep)
			return before
		},
		"after": func(sep string, v any) string {
			_, after, _ := strings.Cut(fmt.Sprint(v), sep)
			return after
		},
		"join": func(sep string, v any) string {
			switch x := v.(type) {
			case []string:
				return strings.Join(x, sep)
			case []any:
				parts := make([]string, len(x))
				for i, e := range x {
					parts[i] = fmt.Sprint(e)
				}
				return strings.Join(parts, sep)
			}
			return fmt.Sprint(v)
		},
	}
}

// Execute renders t with data into a string.
func Execute(t *template.Template, data any) (string, error) {
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", cleanTemplateError(err, t.Name())
	}
	return b.String(), nil
}

// cleanTemplateError strips the template's internal name prefix so messages
// read well after a file:line:column.
func cleanTemplateError(err error, name string) error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "template: ")
	msg = strings.TrimPrefix(msg, name+":")
	return fmt.Errorf("%s", strings.TrimSpace(msg))
}
