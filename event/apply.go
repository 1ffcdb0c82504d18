package event

import (
	"maps"
	"strings"
	"time"
)

// MessageDirection classifies an event as a customer message, an agent
// message, or neither, from its type and actor.
//
// Types whose verb is message_received, received, message_sent, replied or
// reply_added count as messages. The actor type decides when given (customer
// or agent); otherwise message_sent and replied mean an agent wrote, and the
// others that the customer did.
//
// A comment or note (comment_added, note_added) is activity, never a message,
// whoever wrote it: platforms use it for internal notes the customer never
// sees (Wix Answers, Spoki, Intercom, SmarterTrack's comments), so it neither
// answers the customer nor counts as a reply. It still moves
// last_activity_at. A connector that receives public replies as comments
// maps them to message_received or message_sent instead.
func MessageDirection(e *Event) string {
	_, verb, _ := strings.Cut(e.Type, ".")
	switch verb {
	case "message_received", "received", "message_sent", "replied", "reply_added":
	default:
		return ""
	}
	switch e.Actor.Type {
	case ActorCustomer, ActorAgent:
		return e.Actor.Type
	case ActorGateway, ActorSystem:
		return ""
	}
	switch verb {
	case "message_sent", "replied":
		return ActorAgent
	}
	return ActorCustomer
}

// Apply folds event e into snapshot s (creating it when s is nil) and returns
// the updated snapshot. It fills e.Changes for every field of e.Fields whose
// value differs from the snapshot (fields the mapping gave explicit changes
// for keep them); on a new entity every field counts as changed from nil.
// Explicit changes whose field is not in e.Fields also update the snapshot.
// Derived fields follow: status_since when status changes, last_activity_at,
// last customer/agent message times and message counters (an agent message
// resets unanswered_customer_messages, a customer message adds one).
//
// timer.fired events change nothing but are returned with the snapshot as is.
// Apply does not mutate the snapshot passed in; it returns a copy.
func Apply(s *Snapshot, e *Event) *Snapshot {
	at := e.OccurredAt
	if at.IsZero() {
		at = e.ReceivedAt
	}
	var next *Snapshot
	if s == nil {
		next = &Snapshot{Key: e.Key(), Fields: make(map[string]any, len(e.Fields)+len(e.Changes)), CreatedAt: at}
	} else {
		next = s.Clone()
	}
	if e.Type == TypeTimerFired {
		return next
	}
	if e.Changes == nil {
		hint := 0
		if s == nil { // a new entity: every field is a change
			hint = len(e.Fields)
		}
		e.Changes = make(map[string]Change, hint)
	}
	for field, v := range e.Fields {
		old, had := next.Fields[field]
		if _, explicit := e.Changes[field]; !explicit && (!had || !Equal(old, v)) {
			if had || v != nil {
				e.Changes[field] = Change{From: old, To: v}
			}
		}
		next.Fields[field] = v
	}
	for field, c := range e.Changes {
		if _, inFields := e.Fields[field]; !inFields {
			next.Fields[field] = c.To
		}
	}
	if len(e.Changes) == 0 {
		e.Changes = nil
	}
	if _, changed := e.Changes[FieldStatus]; changed || (s == nil && next.Fields[FieldStatus] != nil) {
		next.StatusSince = at
	}
	if at.After(next.LastActivityAt) {
		next.LastActivityAt = at
	}
	switch MessageDirection(e) {
	case ActorCustomer:
		next.CustomerMessages++
		next.UnansweredCustomerMessages++
		if at.After(next.LastCustomerMessageAt) {
			next.LastCustomerMessageAt = at
		}
	case ActorAgent:
		next.AgentReplies++
		next.UnansweredCustomerMessages = 0
		if at.After(next.LastAgentMessageAt) {
			next.LastAgentMessageAt = at
		}
	}
	if len(e.Vars) > 0 && !maps.Equal(next.Vars, e.Vars) {
		next.Vars = maps.Clone(e.Vars) // replaced whole, never changed in place
	}
	next.Version++
	next.UpdatedAt = at
	return next
}

// Clone returns a deep copy of the snapshot's maps (values are shared, as
// they are never mutated in place).
func (s *Snapshot) Clone() *Snapshot {
	c := *s
	c.Fields = make(map[string]any, len(s.Fields)+8)
	for k, v := range s.Fields {
		c.Fields[k] = v
	}
	if s.Fired != nil {
		c.Fired = make(map[string][]time.Time, len(s.Fired))
		for k, v := range s.Fired {
			c.Fired[k] = append([]time.Time(nil), v...)
		}
	}
	if s.Clocks != nil {
		c.Clocks = make(map[string]*RuleClock, len(s.Clocks))
		for k, v := range s.Clocks {
			cc := *v
			c.Clocks[k] = &cc
		}
	}
	return &c
}

// RecordFiring notes that rule fired at t. Entries older than t-window are
// dropped, except the most recent one, which is always kept (once-per-item
// rules need to know that a rule ever fired).
func (s *Snapshot) RecordFiring(rule string, t time.Time, window time.Duration) {
	if s.Fired == nil {
		s.Fired = map[string][]time.Time{}
	}
	list := append(s.Fired[rule], t)
	cut := t.Add(-window)
	keep := list[:0]
	for i, at := range list {
		if !at.Before(cut) || i == len(list)-1 {
			keep = append(keep, at)
		}
	}
	s.Fired[rule] = keep
}
