package mapping

import (
	"strings"
	"testing"
)

// TestSplit covers `split:`: text becomes a list of its trimmed, non-empty
// parts before map; lists and other values pass through.
func TestSplit(t *testing.T) {
	const payload = `{
		"tags": "refund, vip ,,", "list": ["a", "b"], "one": "solo", "blank": " , ,", "n": 7,
		"codes": "1;2;9", "alt": "x,y"
	}`
	tests := []struct {
		name string
		spec string
		want any // nil: field x absent
	}{
		{"text splits, trimmed, empty parts dropped", `{ path: tags, split: "," }`, []string{"refund", "vip"}},
		{"a list passes through", `{ path: list, split: "," }`, []string{"a", "b"}},
		{"one part is a list of one", `{ path: one, split: "," }`, []string{"solo"}},
		{"a number passes through", `{ path: n, split: "," }`, 7.0},
		{"nothing left is absent", `{ path: blank, split: "," }`, nil},
		{"nothing left takes default", `{ path: blank, split: ",", default: none }`, "none"},
		{"nothing left takes the fallback", `{ path: blank, split: ",", fallback: { path: alt, split: "," } }`, []string{"x", "y"}},
		{"map after split, element by element", `{ path: codes, split: ";", map: { "1": low, "2": high, "9": null } }`, []string{"low", "high"}},
		{"path list then split", `{ path: [nope, tags], split: "," }`, []string{"refund", "vip"}},
		{"other separator", `{ path: alt, split: ";" }`, []string{"x,y"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkFieldX(t, mustCompile(t, fieldEntry(tc.spec)), Input{Body: []byte(payload)}, tc.want, nil)
		})
	}
}

func TestSplitCompileErrors(t *testing.T) {
	for _, tc := range []struct{ name, spec, want string }{
		{"empty separator", `{ path: tags, split: "" }`, `split: expected the separator as a non-empty string`},
		{"not a string", `{ path: tags, split: [","] }`, `split: expected the separator as a non-empty string`},
		{"number", `{ path: tags, split: 1 }`, `split: expected the separator as a non-empty string`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, errs := compileSrc(t, fieldEntry(tc.spec))
			if len(errs) == 0 || m != nil || !strings.Contains(errs.Error(), tc.want) {
				t.Fatalf("errors %v, want %q", errs, tc.want)
			}
		})
	}
}
