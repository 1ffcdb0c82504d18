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
// A field of e.Fields whose value is nil (a platform's explicit JSON null:
// "owner": null, the ticket is unassigned) clears the snapshot's field as an
// explicit change to nil does: the change old -> nil is recorded and the
// field is kept with the value nil; for a field the snapshot does not have,
// it records no change and stores nothing.
// Explicit changes whose field is not in e.Fields also update the snapshot.
// Derived fields follow: status_since when status changes, last_activity_at,
// last customer/agent message times and message counters (an agent message
// resets unanswered_customer_messages, a customer message adds one).
//
// Events may come out of order (a platform retries an older webhook after a
// newer one went through). The event's time is its occurred_at, else its
// received_at; the snapshot keeps, per field, the time of the event its
// value is from (Snapshot.FieldsAt). A field whose value is from a later
// event than e keeps it, and e reports no change of it (neither computed
// nor explicit); events of equal times apply in the order processed. An
// explicit change whose to value the snapshot already holds from an event
// of the same time or later is dropped (one save reported by several
// webhooks that each carry the whole state, as Zendesk's do); for a field
// of unknown time the snapshot's updated_at stands in. created_at is the
// earliest event's time; status_since, updated_at and the last message
// times never move backwards. An agent message answers the customer's
// messages only when it is not older than the customer's last one; a
// customer message counts as unanswered only when it is newer than the
// agent side's last message.
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
		if at.Before(next.CreatedAt) {
			next.CreatedAt = at
		}
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
		if next.newerThan(field, at) {
			delete(e.Changes, field)
			continue
		}
		old, had := next.Fields[field]
		c, explicit := e.Changes[field]
		if explicit && had && Equal(old, c.To) && next.settledBy(field, at) {
			delete(e.Changes, field)
			explicit = false
		}
		if !explicit && !had && v == nil {
			// A null (a platform's "owner": null) for a field the
			// snapshot never had changes nothing and stores nothing.
			continue
		}
		if !explicit && (!had || !Equal(old, v)) {
			e.Changes[field] = Change{From: old, To: v}
		}
		next.Fields[field] = v
		next.setFieldAt(field, at)
	}
	for field, c := range e.Changes {
		if _, inFields := e.Fields[field]; inFields {
			continue
		}
		old, had := next.Fields[field]
		if next.newerThan(field, at) || (had && Equal(old, c.To) && next.settledBy(field, at)) {
			delete(e.Changes, field)
			continue
		}
		next.Fields[field] = c.To
		next.setFieldAt(field, at)
	}
	if len(e.Changes) == 0 {
		e.Changes = nil
	}
	if _, changed := e.Changes[FieldStatus]; changed || (s == nil && next.Fields[FieldStatus] != nil) {
		if at.After(next.StatusSince) {
			next.StatusSince = at
		}
	}
	if at.After(next.LastActivityAt) {
		next.LastActivityAt = at
	}
	switch MessageDirection(e) {
	case ActorCustomer:
		next.CustomerMessages++
		if at.After(next.LastAgentMessageAt) {
			next.UnansweredCustomerMessages++
		}
		if at.After(next.LastCustomerMessageAt) {
			next.LastCustomerMessageAt = at
		}
	case ActorAgent:
		next.AgentReplies++
		if !at.Before(next.LastCustomerMessageAt) {
			next.UnansweredCustomerMessages = 0
		}
		if at.After(next.LastAgentMessageAt) {
			next.LastAgentMessageAt = at
		}
	}
	if len(e.Vars) > 0 && !maps.Equal(next.Vars, e.Vars) && (s == nil || !at.Before(next.UpdatedAt)) {
		next.Vars = maps.Clone(e.Vars) // replaced whole, never changed in place
	}
	next.Version++
	if at.After(next.UpdatedAt) {
		next.UpdatedAt = at
	}
	return next
}

// newerThan reports whether the snapshot's value of field is from an event
// later than at (false when the field's time is unknown).
func (s *Snapshot) newerThan(field string, at time.Time) bool {
	t, known := s.FieldsAt[field]
	return known && t.After(at)
}

// settledBy reports whether the snapshot's value of field is from an event
// of time at or later; for a field of unknown time, whether the snapshot was
// last updated at or after at.
func (s *Snapshot) settledBy(field string, at time.Time) bool {
	if t, known := s.FieldsAt[field]; known {
		return !t.Before(at)
	}
	return !s.UpdatedAt.Before(at)
}

// setFieldAt notes that the value of field is from an event of time at.
func (s *Snapshot) setFieldAt(field string, at time.Time) {
	if s.FieldsAt == nil {
		s.FieldsAt = make(map[string]time.Time, len(s.Fields))
	}
	s.FieldsAt[field] = at
}

// Clone returns a deep copy of the snapshot's maps (values are shared, as
// they are never mutated in place).
func (s *Snapshot) Clone() *Snapshot {
	c := *s
	c.Fields = make(map[string]any, len(s.Fields)+8)
	for k, v := range s.Fields {
		c.Fields[k] = v
	}
	if s.FieldsAt != nil {
		c.FieldsAt = make(map[string]time.Time, len(s.FieldsAt)+8)
		for k, v := range s.FieldsAt {
			c.FieldsAt[k] = v
		}
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
