package mapping

import (
	"testing"

	"github.com/hookline/hookline/internal/yamlconf"
)

// An error in a value an entry shares through a YAML alias is reported at
// the anchor, which may sit in another entry that is fine: the message
// names the entry and the alias the problem came through.
func TestAliasedSpecErrorsNameTheEntry(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{
			name: "alias of fields into an entry without the level",
			src: `
- name: first
  type: t.a
  entity: e
  reference: id
  each: [entry, { path: changes, as: change }]
  fields: &f
    phone: $change.value.phone
- name: second
  type: t.b
  entity: e
  reference: id
  fields: *f
`,
			want: `c.yaml:8:12: entry "second" (through the alias *f at line 13): fields.phone: path "$change.value.phone": unknown path prefix "$change" (valid: $header, $parent, $query, $root; a literal $ key is written \$)`,
		},
		{
			name: "alias of one spec",
			src: `
- name: first
  type: t.a
  entity: e
  reference: id
  fields:
    s: &s { path: a, mapp: {} }
- name: second
  type: t.b
  entity: e
  reference: id
  fields:
    t: *s
`,
			want: `c.yaml:7:22: unknown key "mapp"; did you mean "map"? (valid: default, derived_from, fallback, lookup, map, map_default, path, split, template, value)` + "\n" +
				`c.yaml:7:22: entry "second" (through the alias *s at line 13): unknown key "mapp"; did you mean "map"? (valid: default, derived_from, fallback, lookup, map, map_default, path, split, template, value)`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, errs := compileSrc(t, tc.src)
			if m != nil || errs.Error() != tc.want {
				t.Errorf("errors\n got: %v\nwant: %s", errs, tc.want)
			}
		})
	}
}

// A connector's default: that is a YAML anchor containing an alias to
// itself, or a few hundred bytes of nested aliases (billion laughs), is a
// config error at the alias, not a crash of the process (a stack overflow
// at start-up, `hookline validate` or a reload) or gigabytes of values.
func TestAliasCyclesAndBombsAreConfigErrors(t *testing.T) {
	const entry = `
- name: t
  type: x
  entity: ticket
  reference: id
  fields:
`
	tests := []struct{ name, field, want string }{
		{"self-referencing anchor", `    tags: { path: tags, default: &loop [a, *loop] }`,
			`c.yaml:7:44: alias *loop refers to a value that contains it: it would repeat without end`},
		{"nested aliases", `    tags:
      path: tags
      default: &f [&e [&d [&c [&b [&a [x,x,x,x,x,x,x,x,x,x], *a,*a,*a,*a,*a,*a,*a,*a,*a], *b,*b,*b,*b,*b,*b,*b,*b,*b], *c,*c,*c,*c,*c,*c,*c,*c,*c], *d,*d,*d,*d,*d,*d,*d,*d,*d], *e,*e,*e,*e,*e,*e,*e,*e,*e]`,
			`c.yaml:9:173: YAML aliases expand this file by more than 100000 nodes (*d is 11111 nodes): write the values out, or share less`},
		{"aliases within the file's bound, over the value's", `    tags:
      path: tags
      default: &d [&c [&b [&a [x,x,x,x,x,x,x,x,x,x], *a,*a,*a,*a,*a,*a,*a,*a,*a], *b,*b,*b,*b,*b,*b,*b,*b,*b], *c,*c,*c,*c,*c,*c,*c,*c,*c]`,
			`c.yaml:9:16: fields.tags: default: the value expands to more than 10000 nodes (check YAML aliases)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := entry + tt.field + "\n"
			node, errs := yamlconf.Parse("c.yaml", []byte(src), nil)
			if len(errs) == 0 {
				_, errs = Compile("c.yaml", "conn", node)
			}
			if len(errs) != 1 || errs[0].Error() != tt.want {
				t.Fatalf("errors %v; want %s", errs, tt.want)
			}
		})
	}
}
