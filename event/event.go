package event

import (
	"encoding/json"
	"time"
)

// Actor types.
const (
	ActorCustomer = "customer"
	ActorAgent    = "agent"
	ActorSystem   = "system"
	// ActorGateway marks an event that is an echo of Hookline's own delivery.
	ActorGateway = "gateway"
)

// TypeTimerFired is the event type the scheduler emits when a rule's timer is due.
const TypeTimerFired = "timer.fired"

// Actor is who caused an event.
type Actor struct {
	Type  string `json:"type,omitempty"`
	ID    string `json:"id,omitempty"`
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
}

// Change is one field's transition carried by an event.
type Change struct {
	From any `json:"from"`
	To   any `json:"to"`
}

// Causation links an event to the delivery of ours that caused it, when known.
type Causation struct {
	// Hops counts how many Hookline deliveries lie behind this event.
	Hops int `json:"hops"`
	// DeliveryID is the delivery that (probably) caused this event.
	DeliveryID string `json:"delivery_id,omitempty"`
	// Echo is true when the event's changes all match fingerprints of our own
	// recent deliveries.
	Echo bool `json:"echo,omitempty"`
	// EchoedFields lists, when only some of the event's changes match
	// fingerprints of our own deliveries (a partial echo: Echo stays
	// false and rules run on the event as a person's), the fields whose
	// changes were ours; Hops and DeliveryID are then inherited from them.
	EchoedFields []string `json:"echoed_fields,omitempty"`
}

// Event is one normalized occurrence on an entity of a connected platform.
type Event struct {
	ID         string            `json:"id"`
	InboxID    string            `json:"inbox_id,omitempty"`
	Connector  string            `json:"connector"`
	Type       string            `json:"type"`
	Entity     string            `json:"entity"`
	Reference  string            `json:"reference"`
	OccurredAt time.Time         `json:"occurred_at"`
	ReceivedAt time.Time         `json:"received_at"`
	Actor      Actor             `json:"actor"`
	Fields     map[string]any    `json:"fields"`
	Changes    map[string]Change `json:"changes,omitempty"`
	Vars       map[string]string `json:"vars,omitempty"`
	Raw        json.RawMessage   `json:"raw,omitempty"`
	Causation  Causation         `json:"causation"`
	// Rule names the rule a timer.fired event is for; empty otherwise.
	Rule string `json:"rule,omitempty"`
}

// Key returns the entity key of the event.
func (e *Event) Key() EntityKey {
	return EntityKey{Connector: e.Connector, Entity: e.Entity, Reference: e.Reference}
}

// EntityKey identifies one entity of one connector.
type EntityKey struct {
	Connector string `json:"connector"`
	Entity    string `json:"entity"`
	Reference string `json:"reference"`
}

// String renders the key as connector/entity/reference.
func (k EntityKey) String() string { return k.Connector + "/" + k.Entity + "/" + k.Reference }
