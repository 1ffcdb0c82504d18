package mapping

import (
	"strings"
	"testing"
)

// TestSplit covers `split:`: text becomes a list of its trimmed, non-empty
// parts before map; lists and other values pass through; a text with no
// part is the empty list, unless a default or fallback stands in.
func TestSplit(t *testing.T) {
	const payload = `{
		"tags": "refund, vip ,,", "list": ["a", "b"], "one": "solo", "blank": " , ,", "n": 7,
		"codes": "1;2;9", "alt": "x,y", "empty": ""
	}`
	runFieldCases(t, payload, []fieldCase{
		{name: "text splits, trimmed, empty parts dropped", spec: `{ path: tags, split: "," }`, want: []string{"refund", "vip"}},
		{name: "a list passes through", spec: `{ path: list, split: "," }`, want: []string{"a", "b"}},
		{name: "one part is a list of one", spec: `{ path: one, split: "," }`, want: []string{"solo"}},
		{name: "a number passes through", spec: `{ path: n, split: "," }`, want: 7.0},
		// The last tag removed: the list is emptied, not left as it was.
		{name: "nothing left is the empty list", spec: `{ path: blank, split: "," }`, want: []string{}},
		{name: "nothing left is the empty list, whatever its map", spec: `{ path: blank, split: ",", map: { a: x }, map_default: other }`, want: []string{}},
		{name: "nothing left takes default", spec: `{ path: blank, split: ",", default: none }`, want: "none"},
		{name: "nothing left takes the fallback", spec: `{ path: blank, split: ",", fallback: { path: alt, split: "," } }`, want: []string{"x", "y"}},
		{name: "map after split, element by element", spec: `{ path: codes, split: ";", map: { "1": low, "2": high, "9": null } }`, want: []string{"low", "high"}},
		{name: "path list then split", spec: `{ path: [nope, tags], split: "," }`, want: []string{"refund", "vip"}},
		// Freshdesk's documented tags: { path: [ticket.tags], split: "," }.
		{name: "path list of an empty text is the empty list", spec: `{ path: [empty], split: "," }`, want: []string{}},
		{name: "path list: an empty text, then absent", spec: `{ path: [empty, nope], split: "," }`, want: []string{}},
		{name: "path list: an empty text, then a list", spec: `{ path: [empty, alt], split: "," }`, want: []string{"x", "y"}},
		{name: "path list all absent stays absent", spec: `{ path: [nope, gone], split: "," }`, want: nil},
		{name: "path list of an empty text takes default", spec: `{ path: [empty], split: ",", default: none }`, want: "none"},
		{name: "other separator", spec: `{ path: alt, split: ";" }`, want: []string{"x,y"}},
	}, nil)
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
