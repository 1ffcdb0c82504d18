// Package event owns Hookline's common model: the normalized Event every
// connector mapping produces, the Changes it carries, the Actor who caused it,
// the entity Snapshot the pipeline keeps per (connector, entity, reference),
// and the Update intents that rules decide and delivery sends.
//
// Field names are flat dotted paths ("status", "customer.email",
// "custom.order_id"). Values are JSON-shaped: string, float64, bool, nil,
// []string (tags) or []any. Use Normalize to bring any decoded value into
// that shape before storing it in Fields.
//
// The package imports nothing of Hookline's and holds no mutable state.
package event
