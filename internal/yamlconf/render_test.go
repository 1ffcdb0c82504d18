package yamlconf

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

type kindT string

type stringerT struct{ N int }

func (s stringerT) String() string { return fmt.Sprintf("S(%d)", s.N) }

type ptrStringer struct{ N int }

func (p *ptrStringer) String() string { return fmt.Sprintf("P(%d)", p.N) }

type errT struct{ msg string }

func (e errT) Error() string { return "err:" + e.msg }

type inner struct {
	Name  string
	Next  *inner
	Attrs map[string]any
}

type rdata struct {
	Name     string
	Num      int
	Big      int64
	U        uint8
	F        float64
	B        bool
	Tags     []string
	NilTags  []string
	Ints     []int
	Set      map[string]any
	Vars     map[string]string
	NilMap   map[string]any
	Inner    *inner
	NilInner *inner
	Val      inner
	Any      any
	NilAny   any
	Kind     kindT
	Str      stringerT
	PStr     ptrStringer
	Err      error
	NilErr   error
	Now      time.Time
	Fn       func() string
	Nested   map[string]map[string]any
	IntKeys  map[int]string
}

func (d *rdata) Var(name string) (string, error) {
	if v, ok := d.Vars[name]; ok {
		return v, nil
	}
	return "", fmt.Errorf("unknown variable %q", name)
}
func (d *rdata) Has(name string) bool { _, ok := d.Set[name]; return ok }
func (d *rdata) Field(name string) any {
	if v, ok := d.Set[name]; ok {
		return v
	}
	return ""
}
func (d *rdata) Number(v any) (string, error) {
	if f, ok := v.(float64); ok {
		return fmt.Sprint(f), nil
	}
	return "", errors.New("not a number")
}
func (d *rdata) Custom() map[string]any   { return map[string]any{"b": 2.5, "a": "x<y"} }
func (d *rdata) Fail() (string, error)    { return "", errT{"fail"} }
func (d *rdata) Panic() string            { panic("boom") }
func (d *rdata) Join(a, b string) string  { return a + "+" + b }
func (d *rdata) KindOf() kindT            { return d.Kind }
func (d *rdata) Twice(n int) int          { return 2 * n }
func (d *rdata) NilPtr() *inner           { return nil }
func (d *rdata) Pair() (int, int)         { return 1, 2 }
func (d *rdata) Esc(v any) string         { return fmt.Sprintf("[%v]", v) }
func (d *rdata) NoArgs() string           { return "noargs" }
func (d *rdata) Cond() any                { return nil }
func (d *rdata) Inners() []*inner         { return []*inner{d.Inner, d.Inner} }
func (i inner) Upper() string             { return strings.ToUpper(i.Name) }
func (i *inner) PtrName() (string, error) { return "*" + i.Name, nil }

func newRData() *rdata {
	in := &inner{Name: "in", Attrs: map[string]any{"k": "v", "n": 3.0}}
	in.Next = &inner{Name: "next"}
	return &rdata{
		Name: "Ann <ann@example.com> & co", Num: 42, Big: 1 << 40, U: 7, F: 2.5, B: true,
		Tags: []string{"b", "a<", "\u2028x"}, NilTags: nil, Ints: []int{3, 1, 2},
		Set:   map[string]any{"status": "solved", "priority": "high", "group": 12.0, "none": nil, "flag": false, "list": []any{"x", 1.0}},
		Vars:  map[string]string{"TICKET_REFERENCE": "T-1", "EMPTY": "", "HTML": "<b>&</b>"},
		Inner: in, Val: inner{Name: "val"}, Any: "any-string", Kind: "kind-a",
		Str: stringerT{3}, PStr: ptrStringer{4}, Err: errT{"field"},
		Now:     time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC),
		Fn:      func() string { return "fn" },
		Nested:  map[string]map[string]any{"a": {"b": "c"}},
		IntKeys: map[int]string{2: "two", 1: "one"},
	}
}

// TestRendererMatchesTextTemplate runs each template through the plan and
// through text/template: same bytes, same error text. plans says whether
// the template compiles to a plan; runs whether the plan renders this data
// itself (false: it hands the run to text/template).
func TestRendererMatchesTextTemplate(t *testing.T) {
	cases := []struct {
		src         string
		plans, runs bool
	}{
		{"plain text", true, true},
		{"", true, true},
		{"{{/* comment */}}a", true, true},
		{"{{ .Name }}|{{ .Num }}|{{ .Big }}|{{ .U }}|{{ .F }}|{{ .B }}", true, true},
		{"{{ .Tags }} {{ .NilTags }} {{ .Ints }}", true, true},
		{"{{ .Set.status }} {{ .Set.group }} {{ .Set.flag }} {{ .Set.list }}", true, true},
		{"{{ .Set.none }}", true, true},
		{"{{ .NilAny }}|{{ .Any }}", true, true},
		{"{{ .NilMap }}", true, true},
		{"{{ .Inner.Name }} {{ .Inner.Next.Name }} {{ .Val.Name }} {{ .Inner.Attrs.k }} {{ .Inner.Attrs.n }}", true, true},
		{"{{ .Inner }}", true, true},
		{"{{ .NilInner }}", true, true},
		{"{{ .Kind }} {{ .KindOf }}", true, true},
		{"{{ .Str }} {{ .PStr }} {{ .Err }} {{ .NilErr }}", true, true},
		{"{{ .Now }}", true, true},
		{`{{ .Now.Format "2006-01-02T15:04:05Z07:00" }}`, true, true},
		{"{{ .Val.Upper }} {{ .Inner.Upper }} {{ .Inner.PtrName }}", true, true},
		{`{{ .Var "TICKET_REFERENCE" }} %%TICKET_REFERENCE%% %%EMPTY%%!`, true, true},
		{`%%MISSING%%`, true, false},
		{`{{ .Var "MISSING" }}`, true, false},
		{"{{ .Set.missing }}", true, false},
		{"{{ .Vars.MISSING }}", true, false},
		{"{{ .Nested.a.b }} {{ .Nested.a.zz }}", true, false},
		{"{{ .NilInner.Name }}", true, false},
		{"{{ .NilMap.x }}", true, false},
		{"{{ .Fail }}", true, false},
		{"{{ .Panic }}", true, false},
		{"{{ .Pair }}", true, false},
		{"{{ .Nope }}", true, false},
		{"{{ .Name.Foo }}", true, false},
		{"{{ .Num 3 }}", true, false},
		{"{{ .Fn }}", true, false},
		{"{{ .NilPtr.Name }}", true, false},
		{`{{ .Join "a" "b" }} {{ .Twice 21 }}`, true, true},
		{`{{ .Twice "x" }}`, true, false},
		{`{{ .Twice 1.5 }}`, true, false},
		{`{{ .Esc .Num }} {{ .Esc .Set.none }} {{ .Esc nil }}`, false, false},
		{`{{ .Esc .Num }} {{ .Esc .Set.none }} {{ .Esc "s" }} {{ .Esc 3 }} {{ .Esc 1.5 }} {{ .Esc true }}`, true, true},
		{`{{ .Has "status" }} {{ .Has "nope" }}`, true, true},
		{`{{ json .Name }} {{ json .Tags }} {{ json .NilTags }} {{ json .Vars }} {{ json .Set }} {{ json .Custom }}`, true, true},
		{`{{ json .Num }} {{ json .F }} {{ json .Kind }} {{ json .Set.none }} {{ json .Inner }} {{ json nil }}`, false, false},
		{`{{ json .Num }} {{ json .F }} {{ json .Kind }} {{ json .Set.none }} {{ json .Inner }} {{ json .Now }}`, true, true},
		{`{{ json (.Field "status") }} {{ .Name | json }} {{ .Vars.HTML | json }} {{ json (index .Vars "HTML") }}`, true, true},
		{`{{ json .Fn }}`, true, false},
		{`{{ .Number (.Field "group") }} {{ .Number (.Field "status") }}`, true, false},
		{`{{ .Number (.Field "group") }}`, true, true},
		{`{{ lower .Name }} {{ upper .Name }} {{ trim "  x  " }} {{ .Name | lower }}`, true, true},
		{`{{ .Name | pathescape }}/{{ ".." | pathescape }}?q={{ queryescape .Name }}&n={{ .Num | queryescape }}`, true, true},
		{`{{ lower .Kind }}`, true, true}, // any value, as its text (TemplateFuncs' lower)
		{`{{ contains "." .Name }} {{ before "." "a.b.c" }} {{ after "." "a.b.c" }} {{ before "x" .Name }}|{{ after "x" .Name }}|`, true, true},
		{`{{ $t := "ticket.updated" }}{{ if contains "." $t }}{{ before "." $t }}{{ else }}item{{ end }}`, true, true},
		{`{{ contains "1" .Num }} {{ before "." .Num }}`, true, false},
		{`{{ lower .Num }}`, true, true},
		{`{{ lower .Set.status }}`, true, true},
		{`{{ if .B }}yes{{ else }}no{{ end }}{{ if .NilTags }}t{{ else if .Tags }}tags{{ end }}`, true, true},
		{`{{ if .Set.none }}x{{ else }}none{{ end }}{{ if .NilAny }}x{{ end }}{{ if .Val }}struct{{ end }}{{ if .NilInner }}x{{ end }}`, true, true},
		{`{{ if .Fn }}fn{{ end }}{{ if .F }}f{{ end }}{{ if .U }}u{{ end }}`, true, true},
		{`{{ with .Inner }}{{ .Name }}{{ end }}{{ with .NilInner }}x{{ else }}nil{{ end }}`, true, true},
		{`{{ with .Set.none }}x{{ else with .Set.status }}{{ . }}{{ end }}`, true, true},
		{`{{ with "const" }}{{ . }}{{ end }}{{ with $.Name }}{{ $.Num }}{{ end }}`, true, true},
		{`{{ $sep := "" }}{{ range .Tags }}{{ $sep }}{{ . }}{{ $sep = "," }}{{ end }}`, true, true},
		{`{{ range $i, $t := .Tags }}{{ $i }}={{ $t }};{{ end }}{{ range .NilTags }}x{{ else }}empty{{ end }}`, true, true},
		{`{{ range $k, $v := .Set }}{{ $k }}:{{ json $v }},{{ end }}`, true, true},
		{`{{ range $k, $v := .Vars }}{{ $k }}={{ $v }};{{ end }}{{ range .Custom }}{{ . }}{{ end }}`, true, true},
		{`{{ range .Inners }}{{ .Name }}{{ .PtrName }}{{ end }}`, true, true},
		{`{{ range .IntKeys }}{{ . }}{{ end }}`, true, false},
		{`{{ range .Name }}{{ . }}{{ end }}`, true, false},
		{`{{ range .NilMap }}x{{ else }}nilmap{{ end }}{{ range .Set.none }}x{{ else }}nil{{ end }}`, true, true},
		{`{{ range $x := .Ints }}{{ $x }}{{ end }}{{ $x := 5 }}{{ $x }}`, true, true},
		{`{{ $x := 1 }}{{ if true }}{{ $x := 2 }}{{ $x }}{{ end }}{{ $x }}{{ if true }}{{ $x = 3 }}{{ end }}{{ $x }}`, true, true},
		{`{{ if $v := .Set.status }}{{ $v }}{{ else }}{{ $v }}{{ end }}`, true, true},
		{`{{ if or .NilTags .Tags }}or{{ end }}{{ if and .B .NilTags }}x{{ else }}and{{ end }}{{ or .NilAny "dflt" }}{{ and 1 0 }}`, true, true},
		{`{{ if not .B }}x{{ else }}not{{ end }}{{ not .NilTags }}`, true, true},
		{`{{ eq .Name "x" }} {{ eq .Set.status "solved" }} {{ eq .Kind "kind-a" }} {{ ne .Num 42 }} {{ eq .Num 1 42 }} {{ eq .B true }}`, true, true},
		{`{{ eq .Num "x" }} {{ eq .F 2.5 }} {{ lt .Num 1.5 }} {{ eq .Set.none "" }} {{ ne .B "true" }}`, true, true},
		{`{{ eq .Num }}`, false, false},
		{`{{ gt (len .Tags) 1 }} {{ lt .Name "B" }} {{ le 1 1 }} {{ ge 1 2 }} {{ len .Name }} {{ len .Set }} {{ len .Inner.Attrs }}`, true, true},
		{`{{ len .Num }}`, true, false},
		{`{{ index .Vars "TICKET_REFERENCE" }}|{{ index .Vars "NOPE" }}|{{ index .Set "status" }}|{{ index .Set "nope" }}|{{ index .Tags 1 }}`, true, true},
		{`{{ index .Tags 9 }}`, true, false},
		{`{{ index .NilMap "x" }}`, true, true},
		{`{{ with index .Vars "NOPE" }}x{{ else }}no{{ end }}`, true, true},
		{`{{ print .Name 1 .NilAny }} {{ printf "%v-%d-%s" .Set.status .Num .Kind }} {{ printf "%q" .Tags }}`, true, true},
		{`{{ $.Var (printf "X%s" "Y") }}`, true, false},
		{`{{ .Name | printf "%s!" }} {{ "a" | print "b" }}`, true, true},
		{`{{ .Custom.a }} {{ .Custom.b }}`, true, true},
		{`{{ default "x" .Name }}`, false, false},
		{`{{ define "x" }}a{{ end }}{{ template "x" }}`, false, false},
		{`{{ range .Tags }}{{ break }}{{ end }}`, false, false},
		{`{{ (.Inner).Name }}`, false, false},
		{`{{ 1.5 }} {{ 7 }} {{ true }} {{ 'a' }}`, true, true},
		{`{{ . }}`, true, true},
	}
	data := newRData()
	for _, c := range cases {
		tmpl, err := CompileTemplate("t", c.src)
		if err != nil {
			t.Fatalf("%q: %v", c.src, err)
		}
		r := NewRenderer(tmpl)
		if r.Planned() != c.plans {
			t.Errorf("%q: planned %v, want %v (%s)", c.src, r.Planned(), c.plans, PlanReport(tmpl))
		}
		_, ran := r.AppendPlanned(nil, data)
		if ran != c.runs {
			t.Errorf("%q: plan rendered %v, want %v", c.src, ran, c.runs)
		}
		want, werr := Execute(tmpl, data)
		got, gerr := r.Execute(data)
		if fmt.Sprint(werr) != fmt.Sprint(gerr) || got != want {
			t.Errorf("%q:\n got %q, %v\nwant %q, %v", c.src, got, gerr, want, werr)
		}
		if ran {
			if werr != nil {
				t.Errorf("%q: the plan rendered but text/template fails: %v", c.src, werr)
			}
			b, _ := r.AppendPlanned([]byte("pre:"), data)
			if string(b) != "pre:"+want {
				t.Errorf("%q: AppendPlanned %q, want %q", c.src, b, "pre:"+want)
			}
		}
		ab, aerr := r.AppendTo([]byte("pre:"), data)
		switch {
		case fmt.Sprint(aerr) != fmt.Sprint(werr):
			t.Errorf("%q: AppendTo error %v, want %v", c.src, aerr, werr)
		case werr == nil && string(ab) != "pre:"+want:
			t.Errorf("%q: AppendTo %q, want %q", c.src, ab, "pre:"+want)
		case werr != nil && string(ab) != "pre:":
			t.Errorf("%q: AppendTo on error returned %q, want dst unchanged", c.src, ab)
		}
	}
}

// TestRendererDataShapes: dot of other shapes than a struct pointer.
func TestRendererDataShapes(t *testing.T) {
	srcs := []string{"{{ . }}", "{{ .a }}", "{{ json . }}", "{{ range . }}{{ . }},{{ end }}", "{{ if . }}t{{ else }}f{{ end }}", "{{ $ }}"}
	datas := []any{nil, "str", 3, map[string]any{"a": 1.5}, map[string]string{"a": "b"}, []string{"x", "y"}, *newRData()}
	for _, src := range srcs {
		tmpl, err := CompileTemplate("t", src)
		if err != nil {
			t.Fatal(err)
		}
		r := NewRenderer(tmpl)
		if !r.Planned() {
			t.Errorf("%q: no plan: %s", src, PlanReport(tmpl))
		}
		for _, d := range datas {
			want, werr := Execute(tmpl, d)
			got, gerr := r.Execute(d)
			if fmt.Sprint(werr) != fmt.Sprint(gerr) || got != want {
				t.Errorf("%q on %T: got %q, %v; want %q, %v", src, d, got, gerr, want, werr)
			}
		}
	}
	if NewRenderer(nil) != nil {
		t.Error("NewRenderer(nil) is not nil")
	}
}

// TestRendererConcurrent: the per-site caches see several types at once.
func TestRendererConcurrent(t *testing.T) {
	r, err := CompileRenderer("t", `{{ .Name }}{{ range .Tags }}{{ . }}{{ end }}{{ json .Set }}`)
	if err != nil {
		t.Fatal(err)
	}
	type other struct {
		Tags []string
		Name string
		Set  map[string]string
	}
	datas := []any{newRData(), &other{Name: "o", Tags: []string{"t"}, Set: map[string]string{"k": "v"}}, map[string]any{"Name": "m", "Tags": []any{1.0}, "Set": 1}}
	wants := make([]string, len(datas))
	for i, d := range datas {
		if wants[i], err = Execute(r.Template(), d); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error)
	for w := range 4 {
		go func() {
			for i := range 200 {
				k := (i + w) % len(datas)
				got, err := r.Execute(datas[k])
				if err != nil || got != wants[k] {
					done <- fmt.Errorf("data %d: %q, %v; want %q", k, got, err, wants[k])
					return
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

var fuzzTemplates = []string{
	`{{ .Name }}|{{ json .Name }}|{{ .Set.a }}|{{ json .Set }}|{{ json .Vars }}|{{ json .Tags }}`,
	`{{ if .Has "a" }}"a": {{ json (.Field "a") }}{{ end }}{{ with .Set.n }}{{ . }}|{{ json . }}{{ end }}{{ .Set.f }}`,
	`{{ $sep := "" }}{{ range $k, $v := .Set }}{{ $sep }}{{ json $k }}:{{ json $v }}{{ $sep = "," }}{{ end }}`,
	`{{ lower .Name }}{{ upper (index .Vars "X") }}{{ trim .Name }}{{ len .Name }}{{ eq .Name (index .Vars "X") }}`,
	`{{ .Number (.Field "f") }}{{ printf "%v|%q" .Set.n .Name }}%%X%%`,
	`%%X%%/{{ .Var "X" }}/{{ or .Name "empty" }}/{{ if lt .Name "m" }}lt{{ end }}`,
}

// FuzzRendererMatchesTextTemplate feeds random strings and numbers to a fixed
// set of templates: the plan and text/template agree byte for byte.
func FuzzRendererMatchesTextTemplate(f *testing.F) {
	f.Add("Ann", "x", int64(3), 2.5)
	f.Add("<b>&amp;</b>", "\u2028\u2029\x00\x1f\x7f", int64(-1), -0.0)
	f.Add("\xff\xfe", `"quoted"\`, int64(1)<<53, 1e21)
	f.Add("", "", int64(0), 1e-7)
	var rs []*Renderer
	for _, src := range fuzzTemplates {
		src = strings.ReplaceAll(src, "%%X%%", "%%X%%")
		r, err := CompileRenderer("f", src)
		if err != nil {
			f.Fatal(err)
		}
		if !r.Planned() {
			f.Fatalf("%q: no plan: %s", src, PlanReport(r.Template()))
		}
		rs = append(rs, r)
	}
	f.Fuzz(func(t *testing.T, s1, s2 string, n int64, fl float64) {
		d := newRData()
		d.Name = s1
		d.Set = map[string]any{"a": s2, "n": n, "f": fl, s1: s2}
		d.Vars = map[string]string{"X": s2, s2: s1}
		d.Tags = []string{s1, s2}
		for _, r := range rs {
			want, werr := Execute(r.Template(), d)
			got, gerr := r.Execute(d)
			if fmt.Sprint(werr) != fmt.Sprint(gerr) || got != want {
				t.Fatalf("%q:\n got %q, %v\nwant %q, %v", r.Template().Root.String(), got, gerr, want, werr)
			}
		}
	})
}

func BenchmarkRendererJSONBody(b *testing.B) {
	src := `{"ticket": {
	{{- $sep := "" }}
	{{- if .Has "status" }}{{ $sep }}"status": {{ json (.Field "status") }}{{ $sep = "," }}{{ end }}
	{{- if .Has "priority" }}{{ $sep }}"priority": {{ json (.Field "priority") }}{{ $sep = "," }}{{ end }}
	{{- if .Tags }}{{ $sep }}"additional_tags": {{ json .Tags }}{{ $sep = "," }}{{ end }}
	}}`
	r, err := CompileRenderer("b", src)
	if err != nil {
		b.Fatal(err)
	}
	d := newRData()
	b.Run("plan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := r.Execute(d); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("text_template", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Execute(r.Template(), d); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// Numbers a template prints come out as plain digits when whole (as
// references print them), in the shortest form otherwise, on the plan and
// through text/template alike: never 1e+06.
func TestTemplatePrintsNumbers(t *testing.T) {
	tests := []struct {
		v    any
		want string
	}{
		{1e6, "1000000"},
		{-3e6, "-3000000"},
		{1234567.0, "1234567"},
		{1e15, "1000000000000000"},
		{123456789012345680.0, "123456789012345680"},
		{1e21, "1000000000000000000000"},
		{0.0, "0"},
		{2.5, "2.5"},
		{0.1, "0.1"},
		{1234.5678, "1234.5678"},
		{1e-7, "1e-07"},
		{float32(0.1), "0.1"},
		{float32(16777216), "16777216"},
		{7, "7"},
		{"1e6", "1e6"}, // text stays as it was written
		// A payload's number (.Path) keeps its digits, unless it is a whole
		// number written with a fraction or an exponent.
		{json.Number("1e6"), "1000000"},
		{json.Number("1000000.0"), "1000000"},
		{json.Number("12345678901234567890"), "12345678901234567890"},
		{json.Number("1.50"), "1.50"},
		{json.Number("9007199254740993.0"), "9007199254740993.0"},
	}
	for _, src := range []string{`{{ .Field "x" }}`, `{{ .Set.x }}`, `{{ index .Set "x" }}`, `{{ with .Set.x }}{{ . }}{{ end }}`, `{{ $v := .Set.x }}{{ $v }}`, `%%V%%{{ .Field "x" }}`,
		`{{ printf "%v" (.Field "x") }}`, `{{ print (.Field "x") }}`, `{{ .Set.x | print }}`} {
		tmpl, err := CompileTemplate("t", src)
		if err != nil {
			t.Fatal(err)
		}
		r := NewRenderer(tmpl)
		if !r.Planned() {
			t.Fatalf("%s: no plan: %s", src, PlanReport(tmpl))
		}
		for _, tt := range tests {
			if tt.v == 0.0 && strings.HasPrefix(src, "{{ with") {
				continue // with skips a zero
			}
			data := newRData()
			data.Set = map[string]any{"x": tt.v}
			data.Vars = map[string]string{"V": ""}
			planned, ran := r.AppendPlanned(nil, data)
			if !ran {
				t.Fatalf("%s with %v: the plan did not render", src, tt.v)
			}
			viaText, err := Execute(tmpl, data)
			if err != nil {
				t.Fatal(err)
			}
			if string(planned) != tt.want || viaText != tt.want {
				t.Errorf("%s with %T %v: plan %q, text/template %q, want %q", src, tt.v, tt.v, planned, viaText, tt.want)
			}
		}
	}
}

// A strict template never prints "<no value>": a null or a key index does
// not find fails with ErrNoValue on the plan and on text/template, while
// CompileTemplate keeps text/template's output.
// (Errors are flattened to text by cleanTemplateError.)
func TestStrictTemplateNoValue(t *testing.T) {
	data := map[string]any{"owner": nil, "name": "Ann", "n": 1e6}
	cases := []struct {
		src, want string // want "": ErrNoValue
	}{
		{"{{ .owner }}", ""},
		{"by {{ .owner }}!", ""},
		{`{{ index . "missing" }}`, ""},
		{"{{ if .owner }}x{{ else }}{{ .owner }}{{ end }}", ""},
		{"{{ .owner | upper }}|{{ json .owner }}|{{ .name }}|{{ .n }}", "|null|Ann|1000000"},
	}
	for _, tc := range cases {
		strict, err := CompileStrictTemplate("t", tc.src)
		if err != nil {
			t.Fatal(err)
		}
		r := NewRenderer(strict)
		for path, render := range map[string]func() (string, error){
			"renderer":      func() (string, error) { return r.Execute(data) },
			"text/template": func() (string, error) { return Execute(strict, data) },
		} {
			got, err := render()
			if tc.want == "" {
				if err == nil || !strings.Contains(err.Error(), ErrNoValue.Error()) || got != "" {
					t.Errorf("%s %q: got %q, %v; want ErrNoValue", path, tc.src, got, err)
				}
				continue
			}
			if err != nil || got != tc.want {
				t.Errorf("%s %q: got %q, %v; want %q", path, tc.src, got, err, tc.want)
			}
		}
		if tc.want == "" {
			if _, ok := r.AppendPlanned(nil, data); ok {
				t.Errorf("%q: the plan printed no value", tc.src)
			}
		}
		loose, err := CompileRenderer("t", tc.src)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := loose.Execute(data); tc.want == "" && (err != nil || !strings.Contains(got, "<no value>")) {
			t.Errorf("CompileTemplate %q: got %q, %v; want text/template's <no value>", tc.src, got, err)
		}
	}
}
