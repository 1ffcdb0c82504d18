// Package mapping owns connector mappings: it compiles the `inbound.events`
// list of a connector file into a Mapper, a pure function from one payload to
// zero or more events.
package mapping
