// Package yamlconf is the shared toolkit for Hookline's admin-edited YAML
// files (gateway, connector and rule files). It owns:
//
//   - positioned errors: every problem is reported as file:line:column: message;
//   - ${ENV} and ${ENV:-default} expansion in scalar values, done after parsing
//     so that positions stay those of the file the admin edits;
//   - strict decoding of YAML nodes into Go structs by their `yaml` tags, where
//     an unknown key is an error that names the nearest valid key;
//   - Go text/template compilation with the %%NAME%% variable shorthand, and
//     Renderer: an execution plan for the templates Hookline uses (fields,
//     methods, variables, if/with/range, json and a few builtins) that renders
//     the same bytes as text/template without its reflective interpreter, and
//     hands everything else (and every failing run) to text/template.
//
// It sits under internal/ because mapping, rules, connectors and gateway all
// need it and DESIGN.md allows mapping and rules to import only event.
package yamlconf
