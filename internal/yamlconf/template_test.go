package yamlconf

import "testing"

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
