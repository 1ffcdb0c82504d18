// Package schemas owns Hookline's JSON Schemas (draft 2020-12), embedded in
// the binary:
//
//   - payload/*.json describe the inbound payloads of platforms (the Zendesk
//     event-subscription envelope and trigger bodies, the WhatsApp Cloud API
//     webhook, Slack Events API callbacks). A connector file names one with
//     `inbound.schema:`; the gateway validates each parsed payload against it
//     and answers 422 with the JSON pointer of the failing field.
//   - config/*.schema.json describe the admin's config files for editors:
//     connector.schema.json (configs/connectors/*.yaml), gateway.schema.json
//     (configs/gateway.yaml), rules.schema.json (configs/rules/*.yaml: rule
//     keys, every operator and action, durations, the time-based keys) and
//     test.schema.json (configs/**/*_test.yaml config tests, with steps). Put
//     `# yaml-language-server: $schema=../../schemas/config/rules.schema.json`
//     at the top of a rules file (connector.schema.json for a connector file,
//     test.schema.json for a test file) to get completion, hover help and
//     checks while typing. The gateway's own loader and the rules compiler
//     are the authority (positioned errors with nearest-name suggestions,
//     field types, enum values, templates, loop guards); these schemas follow
//     them and are meant never to be stricter (a fuzz test compares them),
//     except that they ask for the canonical YAML type of a scalar (true, not
//     "true" or 1, for a flag).
//
// Payload schemas are permissive where platforms add fields
// (additionalProperties is left open) and strict on what the example
// connectors' mappings rely on (the identifiers, types and timestamps they
// read).
//
// New compiles every embedded schema once; a Registry is immutable and safe
// for concurrent use. Validate reports the most specific failure: the deepest
// failing JSON pointer, with a one-line reason. A missing required property is
// reported at the pointer of the property itself ("/detail/id", "missing
// property"), not at its parent.
package schemas
