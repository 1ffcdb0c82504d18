package yamlconf

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

type testRule struct {
	Pos     Pos               `yaml:"-"`
	ID      string            `yaml:"id,required"`
	Enabled bool              `yaml:"enabled"`
	For     time.Duration     `yaml:"for"`
	Max     int               `yaml:"max"`
	Tags    []string          `yaml:"tags"`
	Labels  map[string]string `yaml:"labels"`
}

type testFile struct {
	Rules []testRule `yaml:"rules"`
}

func TestDecodeStrictWithPositions(t *testing.T) {
	src := "rules:\n  - id: a\n    enabeld: true\n    for: 2d\n  - max: x\n    tags: solo\n"
	n, errs := Parse("r.yaml", []byte(src), nil)
	if len(errs) != 0 {
		t.Fatalf("parse: %v", errs)
	}
	var f testFile
	errs = Decode("r.yaml", n, &f)
	got := errs.Error()
	for _, want := range []string{
		`r.yaml:3:5: unknown key "enabeld"; did you mean "enabled"?`,
		`r.yaml:5:10: expected a whole number, got "x"`,
		`r.yaml:5:5: missing required key "id"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("errors lack %q; got:\n%s", want, got)
		}
	}
	if f.Rules[0].For != 48*time.Hour {
		t.Errorf("for = %v, want 48h", f.Rules[0].For)
	}
	if f.Rules[0].Pos.Line != 2 || f.Rules[0].Pos.Col != 5 {
		t.Errorf("pos = %v, want 2:5", f.Rules[0].Pos)
	}
	if len(f.Rules[1].Tags) != 1 || f.Rules[1].Tags[0] != "solo" {
		t.Errorf("scalar to list: %v", f.Rules[1].Tags)
	}
}

func TestEnvExpansion(t *testing.T) {
	env := MapEnv(map[string]string{"HOST": "example.com", "EMPTY": ""})
	tests := []struct {
		src, want, err string
	}{
		{"v: ${HOST}", "example.com", ""},
		{"v: https://${HOST}/x", "https://example.com/x", ""},
		{"v: ${MISSING:-fallback}", "fallback", ""},
		{"v: ${MISSING:-}", "", ""},
		{"v: ${EMPTY:-d}", "d", ""},
		{"v: ${MISSING:-https://${HOST}.x}/y", "https://example.com.x/y", ""},
		{"v: ${MISSING:-https://${NOPE:-fallback}.x}", "https://fallback.x", ""},
		{"v: cost $5 and ${ not a ref", "cost $5 and ${ not a ref", ""},
		{"v: ${MISSING}", "", "f.yaml:1:4: environment variable MISSING is not set"},
		// A shell's other forms are errors, not text left in the value.
		{"v: ${HOST-default}", "", `f.yaml:1:4: "${HOST-default}": only ${VAR} and ${VAR:-default} are expanded`},
		{"v: ${HOST:=x}", "", `"${HOST:=x}": only ${VAR} and ${VAR:-default} are expanded`},
		{"v: ${HOST:?unset}", "", `"${HOST:?unset}": only`},
		{"v: '${ HOST }'", "", `"${ HOST }": only`},
		{"v: '{\"a\": \"${1x}\"}'", `{"a": "${1x}"}`, ""},
	}
	for _, tt := range tests {
		n, errs := Parse("f.yaml", []byte(tt.src), env)
		if tt.err != "" {
			if !strings.Contains(errs.Error(), tt.err) {
				t.Errorf("%s: errors %q lack %q", tt.src, errs.Error(), tt.err)
			}
			continue
		}
		if len(errs) != 0 {
			t.Fatalf("%s: %v", tt.src, errs)
		}
		if got := Lookup(n, "v").Value; got != tt.want {
			t.Errorf("%s = %q, want %q", tt.src, got, tt.want)
		}
	}
}

func TestSyntaxErrorHasLine(t *testing.T) {
	_, errs := Parse("bad.yaml", []byte("a: 1\nb: [1, 2\n"), nil)
	if len(errs) != 1 || errs[0].Pos.Line == 0 || !strings.HasPrefix(errs[0].Error(), "bad.yaml:") {
		t.Fatalf("want one positioned syntax error, got %v", errs)
	}
}

type vars map[string]string

func (v vars) Var(name string) (string, error) {
	if s, ok := v[name]; ok {
		return s, nil
	}
	return "", &Error{Msg: "unknown variable " + name}
}

func TestTemplateShorthand(t *testing.T) {
	tpl, err := CompileTemplate("t", "ticket %%TICKET_REFERENCE%% {{ json \"a\\\"b\" }}")
	if err != nil {
		t.Fatal(err)
	}
	out, err := Execute(tpl, vars{"TICKET_REFERENCE": "42"})
	if err != nil || out != `ticket 42 "a\"b"` {
		t.Fatalf("got %q, %v", out, err)
	}
	if _, err := Execute(tpl, vars{}); err == nil || !strings.Contains(err.Error(), "unknown variable TICKET_REFERENCE") {
		t.Fatalf("unknown var must fail, got %v", err)
	}
	if got := TemplateVars("%%A%% and %%B%% and %%A%%"); strings.Join(got, ",") != "A,B" {
		t.Fatalf("vars = %v", got)
	}
}

func TestNearest(t *testing.T) {
	cands := []string{"changed_to", "changed_from", "contains", "is_not", "includes"}
	for in, want := range map[string]string{"chnaged_to": "changed_to", "contians": "contains", "isnot": "is_not", "zzzzzz": ""} {
		if got := Nearest(in, cands); got != want {
			t.Errorf("Nearest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"15m": 15 * time.Minute, "2d": 48 * time.Hour, "1w": 168 * time.Hour, "1h30m": 90 * time.Minute} {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("%s = %v, %v", in, got, err)
		}
	}
	if _, err := ParseDuration("soon"); err == nil {
		t.Error("soon must fail")
	}
}

func FuzzExpandEnv(f *testing.F) {
	for _, s := range []string{"${A}", "${A:-${B:-c}}", "$", "${", "${}", "x${A:-}y", "${A:-${B}"} {
		f.Add(s)
	}
	env := MapEnv(map[string]string{"A": "1"})
	f.Fuzz(func(t *testing.T, s string) {
		out, _ := ExpandEnv(s, env)
		if !strings.Contains(s, "${") && out != s {
			t.Fatalf("text without references changed: %q -> %q", s, out)
		}
	})
}

// lower, upper and trim take a payload's numbers and booleans (json.Number,
// bool) as their text: a mapping that lower-cases a status works whether
// the platform sends "Open", 2 or true.
func TestCaseFunctionsTakeAnyValue(t *testing.T) {
	tpl, err := CompileTemplate("t", `{{ lower .A }}|{{ upper .B }}|{{ trim .C }}|{{ lower .D }}|{{ lower .E }}`)
	if err != nil {
		t.Fatal(err)
	}
	data := map[string]any{"A": json.Number("2"), "B": true, "C": " x ", "D": nil, "E": "Open"}
	out, err := Execute(tpl, data)
	if err != nil || out != "2|TRUE|x||open" {
		t.Fatalf("got %q, %v", out, err)
	}
}

// A key given twice in any mapping of a file is an error at the second one,
// naming where the first one is; only the first one is kept, so decoders
// see each key once and do not report it again.
func TestParseDuplicateKeys(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string // exact error lines; none: no error
	}{
		{"top level", "a: 1\nb: 2\na: 3\n", []string{`d.yaml:3:1: key "a" appears twice (first at line 1, column 1)`}},
		{"nested free-form map", "maps:\n  status:\n    open: new\n    solved: closed\n    open: pending\n",
			[]string{`d.yaml:5:5: key "open" appears twice (first at line 3, column 5)`}},
		{"flow mapping", "headers: { X-A: 1, X-B: 2, X-A: 3 }\n", []string{`d.yaml:1:28: key "X-A" appears twice (first at line 1, column 12)`}},
		{"three times", "a: 1\na: 2\na: 3\n", []string{
			`d.yaml:2:1: key "a" appears twice (first at line 1, column 1)`,
			`d.yaml:3:1: key "a" appears twice (first at line 1, column 1)`,
		}},
		{"inside a list", "l:\n  - { k: 1, k: 2 }\n", []string{`d.yaml:2:13: key "k" appears twice (first at line 2, column 7)`}},
		{"quoted and plain are one key", "a: 1\n\"a\": 2\n", []string{`d.yaml:2:1: key "a" appears twice (first at line 1, column 1)`}},
		{"same key in sibling maps is fine", "x: { a: 1 }\ny: { a: 2 }\n", nil},
		{"alias reused is fine", "x: &m { a: 1 }\ny: *m\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, errs := Parse("d.yaml", []byte(tt.src), nil)
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if len(tt.want) > 0 {
				// The first one is kept, the others dropped.
				v, err := ToValue(n)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := json.Marshal(v)
				if strings.Contains(string(b), `"a":2`) || strings.Contains(string(b), `"open":"pending"`) {
					t.Errorf("a later duplicate was kept: %s", b)
				}
			}
		})
	}
}

// Decode reports a duplicate struct key once, not once from Parse and once
// from Decode.
func TestDuplicateKeyReportedOnce(t *testing.T) {
	n, errs := Parse("r.yaml", []byte("rules:\n  - id: a\n    id: b\n"), nil)
	var f testFile
	errs.Append(Decode("r.yaml", n, &f))
	if len(errs) != 1 || errs[0].Error() != `r.yaml:3:5: key "id" appears twice (first at line 2, column 5)` {
		t.Fatalf("errors: %v", errs)
	}
	if f.Rules[0].ID != "a" {
		t.Errorf("id = %q, want the first one", f.Rules[0].ID)
	}
}

// A YAML merge key is refused once, plainly, at the key; the rest of the
// mapping is read as written.
func TestParseRefusesMergeKeys(t *testing.T) {
	src := "base: &b { x: 1 }\nitem:\n  <<: *b\n  y: 2\n"
	root, errs := Parse("c.yaml", []byte(src), nil)
	want := "c.yaml:3:3: YAML merge keys (<<) are not supported; repeat the keys or use an anchor on the whole value"
	if errs.Error() != want {
		t.Fatalf("errors\n got: %v\nwant: %s", errs, want)
	}
	if item := Lookup(root, "item"); item == nil || len(item.Content) != 2 || Lookup(item, "y") == nil {
		t.Errorf("item = %+v, want only y: 2 left", item)
	}
}

// An unknown template function names the nearest one.
func TestTemplateUnknownFunctionSuggestion(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{`{{ lowr .x }}`, `template: 1: function "lowr" not defined; did you mean "lower"?`},
		{`{{ jion "," .x }}`, `template: 1: function "jion" not defined; did you mean "join"?`},
		{`{{ prnitf "%v" .x }}`, `template: 1: function "prnitf" not defined; did you mean "printf"?`},
		{`{{ zzzzzzz .x }}`, `template: 1: function "zzzzzzz" not defined`},
	} {
		_, err := CompileTemplate("t", tc.src)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: error %v, want %s", tc.src, err, tc.want)
		}
	}
}
