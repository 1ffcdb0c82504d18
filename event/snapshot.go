package event

import "time"

// Snapshot is the gateway's last known state of one entity, with the fields
// derived from its history that time-based rules read.
type Snapshot struct {
	Key    EntityKey      `json:"key"`
	Fields map[string]any `json:"fields"`
	// FieldsAt is, per field, the time of the event its value is from (its
	// occurred_at, else received_at): an event older than that does not
	// change the field. A field without an entry (snapshots written before
	// these times were kept) takes any event's value.
	FieldsAt  map[string]time.Time `json:"fields_at,omitempty"`
	Version   uint64               `json:"version"`
	CreatedAt time.Time            `json:"created_at"`
	UpdatedAt time.Time            `json:"updated_at"`

	StatusSince           time.Time `json:"status_since,omitzero"`
	LastActivityAt        time.Time `json:"last_activity_at,omitzero"`
	LastCustomerMessageAt time.Time `json:"last_customer_message_at,omitzero"`
	LastAgentMessageAt    time.Time `json:"last_agent_message_at,omitzero"`
	AgentReplies          int       `json:"agent_replies"`
	CustomerMessages      int       `json:"customer_messages"`
	// UnansweredCustomerMessages counts the customer's messages since the
	// agent side last wrote (0 right after an agent message): 1 on a
	// customer message means it is the first one after the agent's, a reply.
	UnansweredCustomerMessages int `json:"unanswered_customer_messages"`

	// Fired records, per rule id, when the rule fired for this entity
	// (most recent last, trimmed to what limits need).
	Fired map[string][]time.Time `json:"fired,omitempty"`
	// Clocks holds per-rule timer clocks (pause accounting) for time-based rules.
	Clocks map[string]*RuleClock `json:"clocks,omitempty"`
	// Vars are the template variables (%%TICKET_REFERENCE%%) of the last
	// event that carried any: a timer firing on the entity renders its
	// actions with them, also after retention pruned the events.
	Vars map[string]string `json:"vars,omitempty"`
}

// RuleClock is the state of one time-based rule's clock on one entity.
type RuleClock struct {
	// Since is when the current episode started (the condition became true).
	Since time.Time `json:"since,omitzero"`
	// PausedAt is set while the pause_when condition holds.
	PausedAt time.Time `json:"paused_at,omitzero"`
	// PausedTotal is the paused time accumulated in this episode.
	PausedTotal time.Duration `json:"paused_total"`
	// Done is true once the rule fired for this episode.
	Done bool `json:"done,omitempty"`
}

// Derived snapshot field names, readable by rules like any event field.
const (
	FieldStatusSince           = "status_since"
	FieldLastActivityAt        = "last_activity_at"
	FieldLastCustomerMessageAt = "last_customer_message_at"
	FieldLastAgentMessageAt    = "last_agent_message_at"
	FieldAgentReplies          = "agent_replies"
	FieldCustomerMessages      = "customer_messages"
	// FieldUnansweredCustomerMessages is Snapshot.UnansweredCustomerMessages.
	FieldUnansweredCustomerMessages = "unanswered_customer_messages"
)

// Derived returns the value of a derived snapshot field by name.
// ok is false when name is not a derived field; a zero time is returned as nil.
func (s *Snapshot) Derived(name string) (v any, ok bool) {
	if s == nil {
		switch name {
		case FieldStatusSince, FieldLastActivityAt, FieldLastCustomerMessageAt, FieldLastAgentMessageAt:
			return nil, true
		case FieldAgentReplies, FieldCustomerMessages, FieldUnansweredCustomerMessages:
			return float64(0), true
		}
		return nil, false
	}
	t := func(t time.Time) any {
		if t.IsZero() {
			return nil
		}
		return t
	}
	switch name {
	case FieldStatusSince:
		return t(s.StatusSince), true
	case FieldLastActivityAt:
		return t(s.LastActivityAt), true
	case FieldLastCustomerMessageAt:
		return t(s.LastCustomerMessageAt), true
	case FieldLastAgentMessageAt:
		return t(s.LastAgentMessageAt), true
	case FieldAgentReplies:
		return float64(s.AgentReplies), true
	case FieldCustomerMessages:
		return float64(s.CustomerMessages), true
	case FieldUnansweredCustomerMessages:
		return float64(s.UnansweredCustomerMessages), true
	}
	return nil, false
}

// IsDerived reports whether name is a derived snapshot field.
func IsDerived(name string) bool {
	_, ok := (*Snapshot)(nil).Derived(name)
	return ok
}
