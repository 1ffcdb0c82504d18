// Package schemas owns Hookline's JSON Schemas (draft 2020-12), embedded in
// the binary:
//
//   - payload/*.json describe the inbound payloads of platforms (the Zendesk
//     event-subscription envelope and trigger bodies, the WhatsApp Cloud API
//     webhook, Slack Events API callbacks). A connector file names one with
//     `inbound.schema:`; the gateway validates each parsed payload against it
//     and answers 422 with the JSON pointer of the failing field.
//   - config/*.schema.json describe the admin's config files (connector and
//     gateway files) for editors: put
//     `# yaml-language-server: $schema=../../schemas/config/connector.schema.json`
//     at the top of a connector file to get completion and checks while typing.
//     The gateway's own loader is the authority (positioned errors with
//     nearest-name suggestions); these schemas follow it.
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
