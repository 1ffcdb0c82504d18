package event

import (
	"testing"
	"time"
)

func TestApplyComputesChangesAndDerivedFields(t *testing.T) {
	t0 := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	key := EntityKey{Connector: "zendesk", Entity: "ticket", Reference: "7"}
	e1 := &Event{Connector: "zendesk", Type: "ticket.created", Entity: "ticket", Reference: "7", OccurredAt: t0,
		Fields: map[string]any{"status": "open", "priority": "normal"}}
	s1 := Apply(nil, e1)
	if s1.Key != key || s1.Version != 1 || !s1.StatusSince.Equal(t0) || !s1.CreatedAt.Equal(t0) {
		t.Fatalf("new snapshot wrong: %+v", s1)
	}
	if c := e1.Changes["status"]; c.From != nil || c.To != "open" {
		t.Fatalf("new entity changes: %+v", e1.Changes)
	}

	t1 := t0.Add(time.Hour)
	e2 := &Event{Type: "ticket.updated", Entity: "ticket", Reference: "7", Connector: "zendesk", OccurredAt: t1,
		Fields: map[string]any{"status": "pending", "priority": "normal"}}
	s2 := Apply(s1, e2)
	if len(e2.Changes) != 1 || e2.Changes["status"].From != "open" || e2.Changes["status"].To != "pending" {
		t.Fatalf("changes = %+v, want only status open->pending", e2.Changes)
	}
	if !s2.StatusSince.Equal(t1) || s2.Version != 2 {
		t.Fatalf("status_since %v version %d", s2.StatusSince, s2.Version)
	}
	if s1.Fields["status"] != "open" {
		t.Fatal("Apply mutated the prior snapshot")
	}

	// A mapping's explicit change wins and updates the snapshot even when
	// the field is not in Fields.
	e3 := &Event{Type: "ticket.priority_changed", Entity: "ticket", Reference: "7", Connector: "zendesk", OccurredAt: t1.Add(time.Minute),
		Changes: map[string]Change{"priority": {From: "normal", To: "urgent"}}}
	s3 := Apply(s2, e3)
	if s3.Fields["priority"] != "urgent" || !s3.StatusSince.Equal(t1) {
		t.Fatalf("explicit change not applied: %+v", s3.Fields)
	}
}

func TestApplyMessageCounters(t *testing.T) {
	t0 := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	var s *Snapshot
	for i, tc := range []struct {
		typ, actor string
		want       string
		unanswered int // unanswered_customer_messages after the event
	}{
		{"chat.message_received", "", ActorCustomer, 1},
		{"chat.message_received", ActorCustomer, ActorCustomer, 2},
		{"chat.message_sent", "", ActorAgent, 0},
		// A comment or internal note is activity, not a message, whoever
		// wrote it (Wix Answers' internal notes, Spoki's notes, SmarterTrack's
		// comments): it must not answer the customer nor count as a reply.
		{"chat.message_received", "", ActorCustomer, 1},
		{"ticket.comment_added", ActorAgent, "", 1},
		{"chat.comment_added", ActorCustomer, "", 1},
		{"ticket.comment_added", "", "", 1},
		{"message.received", ActorCustomer, ActorCustomer, 2},
		{"ticket.updated", ActorAgent, "", 2},
		{"ticket.reply_added", ActorAgent, ActorAgent, 0},
	} {
		e := &Event{Type: tc.typ, Actor: Actor{Type: tc.actor}, Entity: "chat", Reference: "1", OccurredAt: t0.Add(time.Duration(i) * time.Minute)}
		if got := MessageDirection(e); got != tc.want {
			t.Errorf("%s/%s direction = %q, want %q", tc.typ, tc.actor, got, tc.want)
		}
		s = Apply(s, e)
		if s.UnansweredCustomerMessages != tc.unanswered {
			t.Errorf("%s/%s: unanswered customer messages %d, want %d", tc.typ, tc.actor, s.UnansweredCustomerMessages, tc.unanswered)
		}
		if v, _ := s.Derived(FieldUnansweredCustomerMessages); v != float64(tc.unanswered) {
			t.Errorf("%s/%s: Derived(%s) = %v", tc.typ, tc.actor, FieldUnansweredCustomerMessages, v)
		}
		if !s.LastActivityAt.Equal(e.OccurredAt) {
			t.Errorf("%s/%s: last activity %v, want %v (every event is activity)", tc.typ, tc.actor, s.LastActivityAt, e.OccurredAt)
		}
	}
	if s.CustomerMessages != 4 || s.AgentReplies != 2 {
		t.Fatalf("counters customer=%d agent=%d, want 4 and 2", s.CustomerMessages, s.AgentReplies)
	}
	if !s.LastAgentMessageAt.Equal(t0.Add(9*time.Minute)) || !s.LastCustomerMessageAt.Equal(t0.Add(7*time.Minute)) {
		t.Fatalf("last times agent=%v customer=%v", s.LastAgentMessageAt, s.LastCustomerMessageAt)
	}
}

func TestEqualAndNormalize(t *testing.T) {
	tests := []struct {
		a, b any
		want bool
	}{
		{"a", "a", true},
		{float64(3), "3", true},
		{[]string{"a", "b"}, []any{"b", "a"}, true},
		{[]string{"a"}, []string{"a", "b"}, false},
		{nil, "", false},
		{nil, nil, true},
		{true, "true", true},
	}
	for _, tt := range tests {
		if got := Equal(Normalize(tt.a), Normalize(tt.b)); got != tt.want {
			t.Errorf("Equal(%v, %v) = %v", tt.a, tt.b, got)
		}
	}
	if got := String(float64(12345)); got != "12345" {
		t.Errorf("String(12345.0) = %q", got)
	}
}

func TestRecordFiringKeepsWindowAndLatest(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := &Snapshot{}
	for i := range 5 {
		s.RecordFiring("r", t0.Add(time.Duration(i)*20*time.Minute), time.Hour)
	}
	// Firings at 0, 20, 40, 60, 80 min; the window ending at 80 keeps 20..80.
	if got := len(s.Fired["r"]); got != 4 {
		t.Fatalf("kept %d firings, want 4: %v", got, s.Fired["r"])
	}
	s.RecordFiring("once", t0, time.Hour)
	s.RecordFiring("once", t0.Add(48*time.Hour), time.Hour)
	if got := s.Fired["once"]; len(got) != 1 || !got[0].Equal(t0.Add(48*time.Hour)) {
		t.Fatalf("latest firing must always be kept: %v", got)
	}
}

// applyStep is one event of an out-of-order table test: its type, actor,
// minute after t0, fields and explicit changes.
type applyStep struct {
	typ, actor string
	minute     int
	fields     map[string]any
	changes    map[string]Change
}

func (st applyStep) event(t0 time.Time) *Event {
	return &Event{Connector: "generic", Type: st.typ, Entity: "ticket", Reference: "1", Actor: Actor{Type: st.actor},
		OccurredAt: t0.Add(time.Duration(st.minute) * time.Minute), Fields: st.fields, Changes: st.changes}
}

// Webhooks arrive out of order (a platform retries the older one): an event
// older than what the snapshot already holds for a field neither rolls the
// field back nor reports a change of it, and the snapshot's times never move
// backwards.
func TestApplyOutOfOrderKeepsTheNewerState(t *testing.T) {
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	tests := []struct {
		name  string
		steps []applyStep
		// after the last step
		fields                        map[string]any
		changes                       map[string]Change // of the last event
		statusSince, updated, created time.Time
	}{
		{
			name: "older status after newer is ignored",
			steps: []applyStep{
				{typ: "ticket.updated", minute: 5, fields: map[string]any{"status": "solved"}},
				{typ: "ticket.updated", minute: 0, fields: map[string]any{"status": "pending"}},
			},
			fields: map[string]any{"status": "solved"}, statusSince: at(5), updated: at(5), created: at(0),
		},
		{
			name: "older event still sets the fields it is the latest for",
			steps: []applyStep{
				{typ: "ticket.updated", minute: 5, fields: map[string]any{"status": "solved"}},
				{typ: "ticket.updated", minute: 0, fields: map[string]any{"status": "pending", "owner": "alice"}},
			},
			fields: map[string]any{"status": "solved", "owner": "alice"}, changes: map[string]Change{"owner": {To: "alice"}},
			statusSince: at(5), updated: at(5), created: at(0),
		},
		{
			name: "older explicit change after newer is ignored",
			steps: []applyStep{
				{typ: "ticket.updated", minute: 0, fields: map[string]any{"priority": "low"}},
				{typ: "ticket.priority_changed", minute: 10, changes: map[string]Change{"priority": {From: "normal", To: "high"}}},
				{typ: "ticket.priority_changed", minute: 5, changes: map[string]Change{"priority": {From: "low", To: "normal"}}},
			},
			fields: map[string]any{"priority": "high"}, updated: at(10), created: at(0),
		},
		{
			name: "older field with an explicit change after newer is ignored",
			steps: []applyStep{
				{typ: "ticket.status_changed", minute: 5, fields: map[string]any{"status": "solved"}, changes: map[string]Change{"status": {From: "pending", To: "solved"}}},
				{typ: "ticket.status_changed", minute: 0, fields: map[string]any{"status": "pending"}, changes: map[string]Change{"status": {From: "open", To: "pending"}}},
			},
			fields: map[string]any{"status": "solved"}, statusSince: at(5), updated: at(5), created: at(0),
		},
		{
			name: "equal times: the later processed wins",
			steps: []applyStep{
				{typ: "ticket.updated", minute: 5, fields: map[string]any{"status": "solved"}},
				{typ: "ticket.updated", minute: 5, fields: map[string]any{"status": "pending"}},
			},
			fields: map[string]any{"status": "pending"}, changes: map[string]Change{"status": {From: "solved", To: "pending"}},
			statusSince: at(5), updated: at(5), created: at(5),
		},
		{
			name: "in order: every change applies",
			steps: []applyStep{
				{typ: "ticket.updated", minute: 0, fields: map[string]any{"status": "pending"}},
				{typ: "ticket.updated", minute: 5, fields: map[string]any{"status": "solved"}},
			},
			fields: map[string]any{"status": "solved"}, changes: map[string]Change{"status": {From: "pending", To: "solved"}},
			statusSince: at(5), updated: at(5), created: at(0),
		},
		{
			name: "a field first seen on an older event is taken",
			steps: []applyStep{
				{typ: "ticket.updated", minute: 5, fields: map[string]any{"status": "solved"}},
				{typ: "ticket.updated", minute: 0, fields: map[string]any{"group": "billing"}},
			},
			fields: map[string]any{"status": "solved", "group": "billing"}, changes: map[string]Change{"group": {To: "billing"}},
			statusSince: at(5), updated: at(5), created: at(0),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s *Snapshot
			var last *Event
			for _, st := range tt.steps {
				last = st.event(t0)
				s = Apply(s, last)
			}
			if len(s.Fields) != len(tt.fields) {
				t.Errorf("fields = %v, want %v", s.Fields, tt.fields)
			}
			for f, want := range tt.fields {
				if !Equal(s.Fields[f], want) {
					t.Errorf("field %s = %v, want %v", f, s.Fields[f], want)
				}
			}
			if len(last.Changes) != len(tt.changes) {
				t.Errorf("changes of the last event = %v, want %v", last.Changes, tt.changes)
			}
			for f, want := range tt.changes {
				if got, ok := last.Changes[f]; !ok || !Equal(got.From, want.From) || !Equal(got.To, want.To) {
					t.Errorf("change of %s = %v, want %v", f, got, want)
				}
			}
			if !s.StatusSince.Equal(tt.statusSince) || !s.UpdatedAt.Equal(tt.updated) || !s.CreatedAt.Equal(tt.created) {
				t.Errorf("status_since %v updated_at %v created_at %v, want %v %v %v",
					s.StatusSince, s.UpdatedAt, s.CreatedAt, tt.statusSince, tt.updated, tt.created)
			}
			if s.Version != uint64(len(tt.steps)) {
				t.Errorf("version %d, want %d (every event counts)", s.Version, len(tt.steps))
			}
		})
	}
}

// A snapshot written before fields' times were kept knows no field's time:
// an event is taken as it comes, as before.
func TestApplyUnknownFieldTimesAcceptTheEvent(t *testing.T) {
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	old := &Snapshot{Key: EntityKey{Connector: "generic", Entity: "ticket", Reference: "1"}, Fields: map[string]any{"status": "solved"},
		Version: 3, CreatedAt: t0, UpdatedAt: t0.Add(5 * time.Minute), StatusSince: t0.Add(5 * time.Minute)}
	e := applyStep{typ: "ticket.updated", minute: 1, fields: map[string]any{"status": "pending"}}.event(t0)
	s := Apply(old, e)
	if s.Fields["status"] != "pending" || e.Changes["status"].To != "pending" {
		t.Fatalf("status %v, changes %v: want the event taken (pending)", s.Fields["status"], e.Changes)
	}
	if !s.StatusSince.Equal(t0.Add(5*time.Minute)) || !s.UpdatedAt.Equal(t0.Add(5*time.Minute)) {
		t.Errorf("status_since %v updated_at %v moved backwards", s.StatusSince, s.UpdatedAt)
	}
	if !s.FieldsAt["status"].Equal(e.OccurredAt) {
		t.Errorf("fields_at = %v, want status as of %v", s.FieldsAt, e.OccurredAt)
	}
	if old.FieldsAt != nil {
		t.Error("Apply mutated the prior snapshot's field times")
	}
}

// One save on a platform that sends one webhook per changed field, each
// with the whole current state (Zendesk: status_changed and
// priority_changed): the second event's explicit change is already in the
// snapshot and is not reported again.
func TestApplyExplicitChangeAlreadyHeld(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	created := applyStep{typ: "ticket.created", minute: 0, fields: map[string]any{"status": "new", "priority": "low"}}
	statusChanged := applyStep{typ: "ticket.status_changed", minute: 15, fields: map[string]any{"status": "open", "priority": "high"},
		changes: map[string]Change{"status": {From: "new", To: "open"}}}
	priorityChanged := applyStep{typ: "ticket.priority_changed", minute: 15, fields: map[string]any{"status": "open", "priority": "high"},
		changes: map[string]Change{"priority": {From: "low", To: "high"}}}
	tests := []struct {
		name  string
		steps []applyStep
		want  []map[string]Change // changes of each step after the first
	}{
		{"status first", []applyStep{created, statusChanged, priorityChanged}, []map[string]Change{
			{"status": {From: "new", To: "open"}, "priority": {From: "low", To: "high"}}, nil}},
		{"priority first", []applyStep{created, priorityChanged, statusChanged}, []map[string]Change{
			{"priority": {From: "low", To: "high"}, "status": {From: "new", To: "open"}}, nil}},
		{"explicit change without fields", []applyStep{created,
			{typ: "ticket.updated", minute: 15, fields: map[string]any{"priority": "high"}},
			{typ: "ticket.priority_changed", minute: 15, changes: map[string]Change{"priority": {From: "low", To: "high"}}}},
			[]map[string]Change{{"priority": {From: "low", To: "high"}}, nil}},
		{"held since earlier: a new transition is kept", []applyStep{created,
			{typ: "ticket.updated", minute: 10, fields: map[string]any{"priority": "high"}},
			{typ: "ticket.priority_changed", minute: 15, changes: map[string]Change{"priority": {From: "low", To: "high"}}}},
			[]map[string]Change{{"priority": {From: "low", To: "high"}}, {"priority": {From: "low", To: "high"}}}},
		{"explicit change to another value is kept", []applyStep{created, statusChanged,
			{typ: "ticket.priority_changed", minute: 15, changes: map[string]Change{"priority": {From: "high", To: "urgent"}}}},
			[]map[string]Change{{"status": {From: "new", To: "open"}, "priority": {From: "low", To: "high"}}, {"priority": {From: "high", To: "urgent"}}}},
		{"dropped explicit change falls back to the fields", []applyStep{created, statusChanged,
			{typ: "ticket.priority_changed", minute: 15, fields: map[string]any{"priority": "urgent"}, changes: map[string]Change{"priority": {From: "low", To: "high"}}}},
			[]map[string]Change{{"status": {From: "new", To: "open"}, "priority": {From: "low", To: "high"}}, {"priority": {From: "high", To: "urgent"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Apply(nil, tt.steps[0].event(t0))
			for i, st := range tt.steps[1:] {
				e := st.event(t0)
				s = Apply(s, e)
				want := tt.want[i]
				if len(e.Changes) != len(want) {
					t.Errorf("step %d (%s): changes %v, want %v", i+1, st.typ, e.Changes, want)
					continue
				}
				for f, w := range want {
					if got, ok := e.Changes[f]; !ok || !Equal(got.From, w.From) || !Equal(got.To, w.To) {
						t.Errorf("step %d (%s): change of %s = %v, want %v", i+1, st.typ, f, got, w)
					}
				}
			}
		})
	}
}

// Message counters with messages out of order: an agent reply older than
// the customer's last message does not answer it, and a customer message
// older than the agent's last reply was answered by it.
func TestApplyMessageCountersOutOfOrder(t *testing.T) {
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	customer := func(m int) applyStep { return applyStep{typ: "chat.message_received", minute: m} }
	agent := func(m int) applyStep { return applyStep{typ: "chat.message_sent", minute: m} }
	tests := []struct {
		name                                string
		steps                               []applyStep
		unanswered, customerMsgs, agentMsgs int
		lastCustomer, lastAgent             int // minutes
	}{
		{"late agent reply does not answer a newer message", []applyStep{customer(5), agent(0)}, 1, 1, 1, 5, 0},
		{"late customer message was answered", []applyStep{agent(5), customer(0)}, 0, 1, 1, 0, 5},
		{"in order", []applyStep{customer(0), agent(5)}, 0, 1, 1, 0, 5},
		{"in order, customer after agent", []applyStep{agent(0), customer(5)}, 1, 1, 1, 5, 0},
		{"agent reply at the same time answers", []applyStep{customer(5), agent(5)}, 0, 1, 1, 5, 5},
		{"late customer messages between replies", []applyStep{customer(0), agent(5), customer(10), customer(3)}, 1, 3, 1, 10, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s *Snapshot
			for _, st := range tt.steps {
				s = Apply(s, st.event(t0))
			}
			if s.UnansweredCustomerMessages != tt.unanswered || s.CustomerMessages != tt.customerMsgs || s.AgentReplies != tt.agentMsgs {
				t.Errorf("unanswered %d customer %d agent %d, want %d %d %d", s.UnansweredCustomerMessages, s.CustomerMessages, s.AgentReplies,
					tt.unanswered, tt.customerMsgs, tt.agentMsgs)
			}
			if !s.LastCustomerMessageAt.Equal(t0.Add(time.Duration(tt.lastCustomer)*time.Minute)) || !s.LastAgentMessageAt.Equal(t0.Add(time.Duration(tt.lastAgent)*time.Minute)) {
				t.Errorf("last customer %v last agent %v", s.LastCustomerMessageAt, s.LastAgentMessageAt)
			}
		})
	}
}

// The template variables a timer renders with are the latest event's: a
// late webhook does not replace them.
func TestApplyLateEventKeepsVars(t *testing.T) {
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	newer := applyStep{typ: "ticket.updated", minute: 5}.event(t0)
	newer.Vars = map[string]string{"ORDER": "B"}
	older := applyStep{typ: "ticket.updated", minute: 0}.event(t0)
	older.Vars = map[string]string{"ORDER": "A"}
	if s := Apply(Apply(nil, newer), older); s.Vars["ORDER"] != "B" {
		t.Errorf("vars = %v, want the 10:05 event's", s.Vars)
	}
	later := applyStep{typ: "ticket.updated", minute: 5}.event(t0)
	later.Vars = map[string]string{"ORDER": "C"}
	if s := Apply(Apply(nil, newer), later); s.Vars["ORDER"] != "C" {
		t.Errorf("vars = %v, want the later processed event's of equal time", s.Vars)
	}
}

// A null field (a platform's "owner": null) clears the snapshot's field as
// an explicit change to null does: the change old -> nil is recorded and
// the field is kept as nil. A null for a field the snapshot never had
// records no change and stores nothing.
func TestApplyNullFieldClears(t *testing.T) {
	t0 := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	ev := func(at time.Time, fields map[string]any, changes map[string]Change) *Event {
		return &Event{Connector: "generic", Type: "ticket.updated", Entity: "ticket", Reference: "9", OccurredAt: at,
			Fields: fields, Changes: changes}
	}
	s1 := Apply(nil, ev(t0, map[string]any{"owner": "alice", "status": "open"}, nil))
	// An explicit change to nil, as Zendesk's event.current: null gives.
	explicit := Apply(s1, ev(t0.Add(time.Minute), nil, map[string]Change{"owner": {From: "alice", To: nil}}))
	e2 := ev(t0.Add(time.Minute), map[string]any{"owner": nil, "group": nil, "status": "open"}, nil)
	s2 := Apply(s1, e2)
	want := map[string]Change{"owner": {From: "alice", To: nil}}
	if len(e2.Changes) != 1 || e2.Changes["owner"] != want["owner"] {
		t.Errorf("changes = %#v, want %#v", e2.Changes, want)
	}
	for name, s := range map[string]*Snapshot{"null field": s2, "explicit change": explicit} {
		if v, has := s.Fields["owner"]; !has || v != nil {
			t.Errorf("%s: owner = %#v (present %v), want kept as nil", name, v, has)
		}
		if _, has := s.Fields["group"]; has {
			t.Errorf("%s: group stored although the snapshot never had it: %#v", name, s.Fields)
		}
	}
	// Null again: no change.
	e3 := ev(t0.Add(2*time.Minute), map[string]any{"owner": nil}, nil)
	Apply(s2, e3)
	if e3.Changes != nil {
		t.Errorf("null after null: changes = %#v, want none", e3.Changes)
	}
}
