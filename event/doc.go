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
// Events may be applied out of order (a platform retries an older webhook
// after a newer one went through): the snapshot keeps, per field, the time
// of the event its value is from (Snapshot.FieldsAt), and Apply lets an
// event change a field only when the event is not older than that; see
// Apply for the derived fields and message counters.
//
// The package imports nothing of Hookline's and holds no mutable state.
package event
