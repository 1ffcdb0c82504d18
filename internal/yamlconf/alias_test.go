package yamlconf

import (
	"strings"
	"testing"
)

// An alias that refers to a node containing it would make every reader
// recurse forever (a stack overflow kills the process, at start-up or on a
// reload): Parse reports it at the alias and leaves null in its place.
func TestParseRefusesAliasCycles(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"list in itself", "default: &loop [a, *loop]\n", `c.yaml:1:20: alias *loop refers to a value that contains it: it would repeat without end`},
		{"mapping in itself", "a: &m\n  b: 1\n  c: *m\n", `c.yaml:3:6: alias *m refers to a value that contains it: it would repeat without end`},
		{"deep inside", "a: &top\n  - x: [1, { y: [*top] }]\n", `c.yaml:2:18: alias *top refers to a value that contains it: it would repeat without end`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, errs := Parse("c.yaml", []byte(tt.src), nil)
			if len(errs) != 1 || errs[0].Error() != tt.want {
				t.Fatalf("errors %v; want %s", errs, tt.want)
			}
			// What the callers go on reading is finite.
			if _, err := ToValue(root); err != nil {
				t.Fatalf("ToValue after the error: %v", err)
			}
			var out map[string]any
			if errs := Decode("c.yaml", root, &out); len(errs) != 0 {
				t.Fatalf("Decode after the error: %v", errs)
			}
		})
	}
}

// aliasBomb is a file of depth levels of anchors, each a list of width
// aliases of the one before: it expands to width^depth nodes.
func aliasBomb(depth, width int) string {
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for d := 1; d <= depth; d++ {
		b.WriteString("a" + string(rune('0'+d)) + ": &a" + string(rune('0'+d)) + " [")
		for w := range width {
			if w > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + string(rune('0'+d-1)))
		}
		b.WriteString("]\n")
	}
	return b.String()
}

// Aliases may add at most maxAliasNodes nodes to a file, and a value
// converted with ToValue may have at most MaxValueNodes: a few hundred bytes
// of anchors (billion laughs) cannot make a reader build millions of values.
func TestAliasExpansionIsBounded(t *testing.T) {
	root, errs := Parse("c.yaml", []byte(aliasBomb(9, 10)), nil)
	// a0 to a3 add 12,300 nodes, each *a3 11,110: the 8th in a4 is too many.
	if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), "c.yaml:5:45: YAML aliases expand this file by more than 100000 nodes") {
		t.Fatalf("errors %v; want one at the 8th alias of line 5", errs)
	}
	if n := CountNodes(root, 10*maxAliasNodes); n > 2*maxAliasNodes {
		t.Fatalf("the parsed file still expands to %d nodes", n)
	}

	root, errs = Parse("c.yaml", []byte(aliasBomb(3, 10)), nil) // 11,111 nodes in a3, within the file's bound
	if len(errs) != 0 {
		t.Fatalf("parse: %v", errs)
	}
	_, err := ToValue(Lookup(root, "a3"))
	if err == nil || err.Error() != "the value expands to more than 10000 nodes (check YAML aliases)" {
		t.Fatalf("ToValue of an 11,111-node value: %v", err)
	}
	if _, err := ToValue(Lookup(root, "a2")); err != nil {
		t.Fatalf("ToValue of a 1,111-node value: %v", err)
	}
}
