package mapping

import "testing"

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
			want: `c.yaml:7:22: unknown key "mapp"; did you mean "map"? (valid: default, fallback, lookup, map, map_default, path, split, template, value)` + "\n" +
				`c.yaml:7:22: entry "second" (through the alias *s at line 13): unknown key "mapp"; did you mean "map"? (valid: default, fallback, lookup, map, map_default, path, split, template, value)`,
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
