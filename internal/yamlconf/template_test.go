package yamlconf

import (
	"encoding/json"
	"testing"
)

// pathescape keeps a value one path segment, "." and ".." included;
// queryescape keeps it one query value.
func TestURLEscapeFunctions(t *testing.T) {
	cases := []struct{ src, want string }{
		{`{{ .V | pathescape }}`, "..%2Fadmin%2Fusers%3Frole=owner&x=1%23f"},
		{`{{ pathescape .V }}`, "..%2Fadmin%2Fusers%3Frole=owner&x=1%23f"},
		{`{{ .V | queryescape }}`, "..%2Fadmin%2Fusers%3Frole%3Downer%26x%3D1%23f"},
		{`{{ "." | pathescape }}/{{ ".." | pathescape }}/{{ "a.b" | pathescape }}`, "%2E/%2E%2E/a.b"},
		{`{{ 1000000 | pathescape }}`, "1000000"},
		{`{{ .N | pathescape }}`, ""},
		{`{{ .ID | pathescape }}/{{ .ID | queryescape }}/{{ .ID | upper }}/{{ .F | trim }}`, "12345678/12345678/12345678/0.25"},
	}
	data := map[string]any{"V": "../admin/users?role=owner&x=1#f", "N": nil, "ID": 12345678.0, "F": 0.25}
	for _, tc := range cases {
		tmpl, err := CompileTemplate("t", tc.src)
		if err != nil {
			t.Fatalf("%s: %v", tc.src, err)
		}
		got, err := Execute(tmpl, data)
		if err != nil || got != tc.want {
			t.Errorf("%s = %q, %v; want %q", tc.src, got, err, tc.want)
		}
	}
}

// eq, ne, lt, le, gt and ge take a payload's values as they come: numbers
// of any type and numeric texts compare as numbers, an absent value ("" or
// nil) is no error, and the plan and text/template agree.
func TestTemplateComparisons(t *testing.T) {
	data := map[string]any{
		"num": json.Number("4"), "frac": json.Number("4.0"), "float": 4.0, "text": "4", "word": "open",
		"yes": true, "empty": "", "null": nil, "big": json.Number("12345678901234567890"),
		"big1": json.Number("12345678901234567891"), "bigint": 12345678901234567890.0,
	}
	cases := []struct{ src, want string }{
		{`{{ eq .num 4 }} {{ eq .num 4.0 }} {{ eq .frac 4 }} {{ eq .float 4 }} {{ eq .num "4" }} {{ eq .text 4 }}`, "true true true true true true"},
		{`{{ eq .num 5 }} {{ eq .num "04x" }} {{ eq .word 4 }} {{ eq .empty 4 }} {{ eq .null 0 }} {{ eq .yes 1 }}`, "false false false false false false"},
		{`{{ eq .text "4.0" }} {{ eq .text "4" }} {{ eq .word "open" }} {{ eq .word "closed" "open" }}`, "false true true true"},
		{`{{ eq .empty true }} {{ eq .null true }} {{ eq .yes true }} {{ eq .yes "true" }} {{ eq .empty "" }} {{ eq .null "" }}`, "false false true true true true"},
		{`{{ ne .num 4 }} {{ ne .empty true }} {{ ne .null 3 }}`, "false true true"},
		{`{{ eq .big .big1 }} {{ eq .big "12345678901234567890" }} {{ lt .big .big1 }} {{ eq .bigint .big }} {{ eq .frac "4.00" }}`, "false true true false true"},
		{`{{ lt .num 5 }} {{ le .num 4 }} {{ gt .num 3.5 }} {{ ge .frac 4 }} {{ gt .text 3 }} {{ lt 10 .num }}`, "true true true true true false"},
		{`{{ lt .empty 5 }} {{ gt .empty 5 }} {{ lt .null 5 }} {{ ge .word 1 }} {{ le .yes 1 }} {{ lt .empty "b" }}`, "false false false false false false"},
		{`{{ lt "a" "b" }} {{ gt "10" "9" }} {{ lt .word "p" }}`, "true false true"},
		{`{{ if eq .num 4 }}urgent{{ else }}normal{{ end }}`, "urgent"},
	}
	for _, tc := range cases {
		tmpl, err := CompileTemplate("t", tc.src)
		if err != nil {
			t.Fatalf("%s: %v", tc.src, err)
		}
		viaText, err := Execute(tmpl, data)
		if err != nil || viaText != tc.want {
			t.Errorf("%s through text/template = %q, %v; want %q", tc.src, viaText, err, tc.want)
		}
		r := NewRenderer(tmpl)
		planned, ran := r.AppendPlanned(nil, data)
		if !ran || string(planned) != tc.want {
			t.Errorf("%s on the plan = %q (rendered %v); want %q", tc.src, planned, ran, tc.want)
		}
	}
}

// join, print and printf's %v and %s print numbers as actions do (a
// payload's 1e6 as 1000000); printf's other verbs format as fmt does.
func TestPrintFunctionsPrintNumbers(t *testing.T) {
	data := map[string]any{"ids": []any{json.Number("1e6"), json.Number("2"), 3e6, "x"}, "n": json.Number("1e6"), "f": 2.5, "big": 1e6}
	cases := []struct{ src, want string }{
		{`{{ join "," .ids }}`, "1000000,2,3000000,x"},
		{`{{ join "," .n }}`, "1000000"},
		{`{{ printf "%v|%s|%5v|%d|%.2f|%v" .n .n .f 7 .f .big }}`, "1000000|1000000|  2.5|7|2.50|1000000"},
		{`{{ print .big .f "s" .n 1 }}`, "1000000 2.5s10000001"}, // fmt.Sprint spacing: json.Number is a string kind
		{`{{ print "a" "b" 1 2 }}`, "ab1 2"},
	}
	for _, tc := range cases {
		tmpl, err := CompileTemplate("t", tc.src)
		if err != nil {
			t.Fatalf("%s: %v", tc.src, err)
		}
		got, err := Execute(tmpl, data)
		if err != nil || got != tc.want {
			t.Errorf("%s = %q, %v; want %q", tc.src, got, err, tc.want)
		}
		if planned, ran := NewRenderer(tmpl).AppendPlanned(nil, data); ran && string(planned) != tc.want {
			t.Errorf("%s on the plan = %q; want %q", tc.src, planned, tc.want)
		}
	}
}
