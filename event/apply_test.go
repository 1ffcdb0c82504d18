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
