package event

// Update kinds.
const (
	// KindUpdateEntity changes fields and tags of an entity on a platform
	// (set_*, add_tags, remove_tags, set_fields, update_ticket).
	KindUpdateEntity = "update_entity"
	// KindCallWebhook calls an arbitrary URL (Call Web Page, Notify External Provider).
	KindCallWebhook = "call_webhook"
	// KindSendMessage sends a chat reply or message.
	KindSendMessage = "send_message"
	// KindLog appends one line to a log file.
	KindLog = "log"
)

// Update is one intent decided by a rule for one target: the unit the outbox
// stores and delivery sends. Intents of one rule on one event are merged so
// that each target gets a single Update.
type Update struct {
	Kind   string `json:"kind"`
	RuleID string `json:"rule"`
	// EventID is the event that made the rule fire.
	EventID string `json:"event_id"`
	// Connector is the outbound connector that carries the update.
	Connector string `json:"connector"`
	Entity    string `json:"entity,omitempty"`
	Reference string `json:"reference,omitempty"`

	// Set holds field -> new value (status, priority, owner, group, category,
	// channel, custom.*). Omitted fields keep their current value.
	Set        map[string]any `json:"set,omitempty"`
	AddTags    []string       `json:"add_tags,omitempty"`
	RemoveTags []string       `json:"remove_tags,omitempty"`

	Webhook *WebhookCall `json:"webhook,omitempty"`
	Message *Message     `json:"message,omitempty"`
	Log     *LogLine     `json:"log,omitempty"`

	// Hops is the causation depth the delivery will carry (event hops + 1).
	Hops int `json:"hops"`
	// Vars are the template variables of the event, for outbound rendering.
	Vars map[string]string `json:"vars,omitempty"`
	// StateOf, when set, is the entity the update changes, whose snapshot
	// its no-op check and rendering (.Current) read instead of the
	// target's: a rule's own-entity actions and its update_ticket without
	// connector:, sent through another connector (deliver_to), update the
	// event platform's entity, which that connector knows nothing of.
	StateOf *EntityKey `json:"state_of,omitempty"`
}

// WebhookCall is a rendered call_webhook action.
type WebhookCall struct {
	URL     string            `json:"url"`
	Method  string            `json:"method"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    string            `json:"body,omitempty"`
}

// Message is a rendered send_message action.
type Message struct {
	Text string `json:"text"`
	// To is the recipient when the platform needs one (a phone number, a channel).
	To string `json:"to,omitempty"`
}

// LogLine is a rendered log action.
type LogLine struct {
	File string `json:"file"`
	Line string `json:"line"`
}

// MergeTags returns cur followed by add, minus remove, each tag once, in
// order of first appearance: a tag list after an update's tag changes.
func MergeTags(cur, add, remove []string) []string {
	out := make([]string, 0, len(cur)+len(add))
	seen := make(map[string]bool, len(cur)+len(add)+len(remove))
	for _, t := range remove {
		seen[t] = true
	}
	for _, list := range [][]string{cur, add} {
		for _, t := range list {
			if t != "" && !seen[t] {
				seen[t] = true
				out = append(out, t)
			}
		}
	}
	return out
}

// StateKey is the entity whose state u is checked and rendered against, and
// whose fingerprints its delivery writes: StateOf when a deliver_to rule
// sends it through another connector, else its own target.
func (u *Update) StateKey() EntityKey {
	if u.StateOf != nil {
		return *u.StateOf
	}
	return EntityKey{Connector: u.Connector, Entity: u.Entity, Reference: u.Reference}
}
