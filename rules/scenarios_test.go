package rules

import (
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/event"
)

// Scenarios of shared/scenarios.md that need no timers, as rule files.

func updatesText(us []event.Update) []string {
	out := make([]string, 0, len(us))
	for _, u := range us {
		s := u.RuleID + " " + u.Kind + " " + u.Connector + "/" + u.Entity + "/" + u.Reference
		if len(u.Set) > 0 {
			keys := make([]string, 0, len(u.Set))
			for k := range u.Set {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				s += " " + k + "=" + event.String(u.Set[k])
			}
		}
		if len(u.AddTags) > 0 {
			s += " +" + strings.Join(u.AddTags, ",+")
		}
		if len(u.RemoveTags) > 0 {
			s += " -" + strings.Join(u.RemoveTags, ",-")
		}
		if u.Webhook != nil {
			s += " " + u.Webhook.Method + " " + u.Webhook.URL
			if u.Webhook.Body != "" {
				s += " " + u.Webhook.Body
			}
		}
		if u.Message != nil {
			s += " " + u.Message.Text
		}
		if u.Log != nil {
			s += " " + u.Log.File + ": " + u.Log.Line
		}
		out = append(out, s)
	}
	return out
}

func checkUpdates(t *testing.T, res Result, matched []string, want []string) {
	t.Helper()
	if len(res.Errors) > 0 {
		t.Fatalf("errors: %+v", res.Errors)
	}
	if !reflect.DeepEqual(res.Matched, matched) {
		t.Errorf("matched = %q, want %q\ntrace %+v", res.Matched, matched, res.Trace)
	}
	if got := updatesText(res.Updates); !reflect.DeepEqual(got, want) {
		t.Errorf("updates:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

const zendeskRules = `rules:
  - id: z1-solve-abandoned-conversations
    on: [ticket.updated]
    connector: zendesk
    when:
      all:
        - { field: status_category, is: open }
        - { field: session_state, changed_to: inactive }
        - { field: inactive_reason, is: user_inactive_or_offline }
    then:
      - set_status: solved
      - add_tags: [abandoned_conversation]
  - id: z2-reassign-for-email-follow-up
    on: [ticket.updated]
    connector: zendesk
    when:
      all:
        - { field: session_state, changed_to: inactive }
        - { field: inactive_reason, is: user_inactive_or_offline }
    then:
      - set_channel: email
      - set_group: email_group
      - set_priority: normal
  - id: z3-reroute-to-secondary-queue
    on: [ticket.updated]
    connector: zendesk
    when:
      all:
        - { field: priority, is: high }
        - { field: session_state, changed_to: inactive }
        - { field: inactive_reason, is: user_inactive_or_offline }
    then:
      - set_priority: low
      - set_group: secondary_group
  - id: z4-tag-for-reporting
    on: [ticket.updated]
    connector: zendesk
    when:
      all:
        - { field: session_state, changed_to: inactive }
        - { field: inactive_reason, is: user_inactive_or_offline }
    then:
      - add_tags: abandoned_conversation
`

func TestScenarioZendeskMessagingSessions(t *testing.T) {
	s := mustCompile(t, zendeskRules, Options{Connectors: []string{"zendesk"}})
	now := at(t, "2025-06-02T10:00:00Z")
	abandoned := func(priority, reason string, changed bool) *event.Event {
		ev := mkEvent("ticket.updated", map[string]any{"status_category": "open", "session_state": "inactive", "inactive_reason": reason, "priority": priority})
		if changed {
			ev.Changes = map[string]event.Change{"session_state": {From: "active", To: "inactive"}}
		}
		return ev
	}
	t.Run("high priority abandoned conversation", func(t *testing.T) {
		res := s.Evaluate(Input{Event: abandoned("high", "user_inactive_or_offline", true), Now: now})
		checkUpdates(t, res,
			[]string{"z1-solve-abandoned-conversations", "z2-reassign-for-email-follow-up", "z3-reroute-to-secondary-queue", "z4-tag-for-reporting"},
			[]string{
				"z1-solve-abandoned-conversations update_entity zendesk/ticket/42 status=solved +abandoned_conversation",
				"z2-reassign-for-email-follow-up update_entity zendesk/ticket/42 channel=email group=email_group priority=normal",
				"z3-reroute-to-secondary-queue update_entity zendesk/ticket/42 group=secondary_group priority=low",
				"z4-tag-for-reporting update_entity zendesk/ticket/42 +abandoned_conversation",
			})
		for _, u := range res.Updates {
			if len(u.RemoveTags) > 0 {
				t.Errorf("a rule removes tags: %+v", u)
			}
		}
	})
	t.Run("normal priority: Z3 does not apply", func(t *testing.T) {
		res := s.Evaluate(Input{Event: abandoned("normal", "user_inactive_or_offline", true), Now: now})
		if !reflect.DeepEqual(res.Matched, []string{"z1-solve-abandoned-conversations", "z2-reassign-for-email-follow-up", "z4-tag-for-reporting"}) {
			t.Errorf("matched %v", res.Matched)
		}
		if f := traceOf(res, "z3-reroute-to-secondary-queue").Failed; f == nil || f.Condition != "priority is high" || f.Actual != "normal" {
			t.Errorf("z3 failure = %+v", f)
		}
	})
	t.Run("another inactive reason", func(t *testing.T) {
		res := s.Evaluate(Input{Event: abandoned("high", "agent_transfer", true), Now: now})
		if len(res.Matched) != 0 || len(res.Trace) != 4 {
			t.Errorf("res = %+v", res)
		}
	})
	t.Run("already inactive, no change", func(t *testing.T) {
		res := s.Evaluate(Input{Event: abandoned("high", "user_inactive_or_offline", false), Now: now})
		f := traceOf(res, "z4-tag-for-reporting").Failed
		if len(res.Matched) != 0 || f == nil || f.Condition != "session_state changed_to inactive" || f.Actual != "unchanged: inactive" {
			t.Errorf("res = %+v failed %+v", res.Matched, f)
		}
	})
	t.Run("another connector", func(t *testing.T) {
		ev := abandoned("high", "user_inactive_or_offline", true)
		ev.Connector = "freshdesk"
		if res := s.Evaluate(Input{Event: ev, Now: now}); len(res.Trace) != 0 {
			t.Errorf("trace = %+v", res.Trace)
		}
	})
}

const spokiRules = `rules:
  - id: s1-in-progress-on-reply
    on: message.received
    connector: spoki
    when:
      all:
        - { field: actor.type, is: customer }
        - { field: status, not_in: [in_progress, resolved] }
    then:
      - update_ticket: { reference: "%%TICKET_REFERENCE%%", status: in_progress, owner: "{{ .Field \"owner\" }}" }
  - id: s3-reclassify-billing
    on: message.received
    connector: spoki
    when: { field: text, contains: billing }
    then:
      - update_ticket: { reference: "%%TICKET_REFERENCE%%", category: Billing }
  - id: s4-resolve-after-confirmation
    on: message.received
    connector: spoki
    when:
      any:
        - { field: custom.button_reply, is: confirm_resolution }
        - { field: text, contains_any: ["problem solved", "it works now"] }
    then:
      - update_ticket: { reference: "%%TICKET_REFERENCE%%", status: resolved }
`

func TestScenarioSpokiUpdateTicket(t *testing.T) {
	opts := Options{Connectors: []string{"spoki", "zendesk"}, ConnectorVars: map[string][]string{"spoki": {"TICKET_REFERENCE", "ORDER_ID", "EMAIL"}}}
	s := mustCompile(t, spokiRules, opts)
	now := at(t, "2025-06-02T10:00:00Z")
	msg := func(text string, fields map[string]any) (*event.Event, *event.Snapshot) {
		ev := &event.Event{ID: "m1", Connector: "spoki", Type: "message.received", Entity: "message", Reference: "wamid.1",
			Actor: event.Actor{Type: "customer"}, Fields: map[string]any{"text": text}, Vars: map[string]string{"TICKET_REFERENCE": "T-77", "EMAIL": "a@b.c"}}
		for k, v := range fields {
			ev.Fields[k] = v
		}
		snap := &event.Snapshot{Fields: map[string]any{"status": "open", "owner": "agent-5", "text": text}}
		return ev, snap
	}
	t.Run("S1 and S3: a customer writes about billing", func(t *testing.T) {
		ev, snap := msg("Hello, I have a question about my Billing", nil)
		res := s.Evaluate(Input{Event: ev, Snapshot: snap, Now: now})
		checkUpdates(t, res, []string{"s1-in-progress-on-reply", "s3-reclassify-billing"}, []string{
			"s1-in-progress-on-reply update_entity spoki/ticket/T-77 owner=agent-5 status=in_progress",
			"s3-reclassify-billing update_entity spoki/ticket/T-77 category=Billing",
		})
	})
	t.Run("S1 skipped once in progress", func(t *testing.T) {
		ev, snap := msg("thanks", nil)
		snap.Fields["status"] = "in_progress"
		res := s.Evaluate(Input{Event: ev, Snapshot: snap, Now: now})
		checkUpdates(t, res, nil, []string{})
	})
	t.Run("S4 by button or words", func(t *testing.T) {
		for _, ev := range []*event.Event{
			func() *event.Event {
				e, _ := msg("ok", map[string]any{"custom.button_reply": "confirm_resolution"})
				return e
			}(),
			func() *event.Event { e, _ := msg("Great, it works now!", nil); return e }(),
		} {
			snap := &event.Snapshot{Fields: map[string]any{"status": "in_progress"}}
			res := s.Evaluate(Input{Event: ev, Snapshot: snap, Now: now})
			checkUpdates(t, res, []string{"s4-resolve-after-confirmation"}, []string{"s4-resolve-after-confirmation update_entity spoki/ticket/T-77 status=resolved"})
		}
	})
	t.Run("no reference variable: an error, never an empty reference", func(t *testing.T) {
		ev, snap := msg("billing", nil)
		delete(ev.Vars, "TICKET_REFERENCE")
		res := s.Evaluate(Input{Event: ev, Snapshot: snap, Now: now})
		if len(res.Updates) != 0 || len(res.Errors) != 2 {
			t.Fatalf("res = %+v", res)
		}
		for _, e := range res.Errors {
			mustContain(t, e.Message, `unknown variable "TICKET_REFERENCE"`)
		}
	})
	t.Run("a variable the connector does not produce is refused at load", func(t *testing.T) {
		bad := strings.Replace(spokiRules, `%%TICKET_REFERENCE%%", category`, `%%TICKET_REFERNCE%%", category`, 1)
		mustContain(t, compileFails(t, bad, opts), `variable %%TICKET_REFERNCE%% is not produced by connector spoki; did you mean "TICKET_REFERENCE"?`)
	})
	t.Run("safeguard: status changed without target may not set status", func(t *testing.T) {
		src := `rules:
  - id: loop
    on: ticket.status_changed
    connector: spoki
    then: [ { update_ticket: { reference: "%%TICKET_REFERENCE%%", status: in_progress } } ]
`
		mustContain(t, compileFails(t, src, opts), `rule "loop" would re-trigger itself`, "update_ticket writes status")
	})
	t.Run("safeguard: status changed to resolved may not set resolved, may set closed", func(t *testing.T) {
		src := `rules:
  - id: loop
    on: ticket.status_changed
    connector: spoki
    when: { field: status, changed_to: resolved }
    then: [ { update_ticket: { reference: "%%TICKET_REFERENCE%%", status: resolved } } ]
`
		mustContain(t, compileFails(t, src, opts), `update_ticket sets status to "resolved", the target of its trigger "status changed_to resolved"`)
		mustCompile(t, strings.Replace(src, "status: resolved }", "status: closed }", 1), opts)
		mustCompile(t, strings.Replace(src, "status: resolved }", "priority: high }", 1), opts)
	})
}

const smarterTrackRules = `rules:
  - id: t1-urgent-in-business-hours
    on: ticket.priority_changed
    connector: smartertrack
    timezone: America/Chicago
    when:
      all:
        - { field: priority, changed_to: urgent }
        - { time_of_day: "09:00-18:00" }
        - { day_of_week: mon-fri }
    then:
      - call_webhook:
          url: "https://ops.example.com/urgent?ticket={{ .Event.Reference }}&priority={{ .Fields.priority }}"
  - id: t1-urgent-after-hours
    on: ticket.priority_changed
    connector: smartertrack
    timezone: America/Chicago
    when:
      all:
        - { field: priority, changed_to: urgent }
        - any:
            - { not: { time_of_day: "09:00-18:00" } }
            - { not: { day_of_week: mon-fri } }
    then:
      - log: { file: /var/log/hookline/after-hours.log, line: "{{ .Now.Format \"2006-01-02T15:04Z07:00\" }} ticket {{ .Event.Reference }} is now {{ .Fields.priority }}" }
  - id: t2-idle-chat-rescue
    on: chat.idle
    connector: smartertrack
    once_per_item: true
    when: { field: idle_minutes, between: [5, 15] }
    then:
      - set_group: rescue
  - id: t4-unhappy-survey
    on: survey.answered
    connector: smartertrack
    when: { field: survey_rating, lte: 2 }
    then:
      - set_priority: high
      - add_tags: unhappy
      - call_webhook: { url: "https://notify.example.com/unhappy", body: { ticket: "{{ .Event.Reference }}", rating: "{{ .Fields.survey_rating }}" } }
  - id: t5-escalate
    on: manual
    connector: smartertrack
    then:
      - set_group: tier2
      - set_owner: escalation_manager
      - set_priority: urgent
      - call_webhook: { url: "https://ops.example.com/escalated/{{ .Event.Reference }}", method: PUT }
`

func TestScenarioSmarterTrack(t *testing.T) {
	s := mustCompile(t, smarterTrackRules, Options{Connectors: []string{"smartertrack"}})
	urgent := func() *event.Event {
		ev := mkEvent("ticket.priority_changed", map[string]any{"priority": "urgent"})
		ev.Connector, ev.Reference = "smartertrack", "R-1"
		ev.Changes = map[string]event.Change{"priority": {From: "normal", To: "urgent"}}
		return ev
	}
	t.Run("T1 in business hours calls the web page", func(t *testing.T) {
		// Monday 10:00 in Chicago (CDT, UTC-5).
		res := s.Evaluate(Input{Event: urgent(), Now: at(t, "2025-06-02T15:00:00Z")})
		checkUpdates(t, res, []string{"t1-urgent-in-business-hours"},
			[]string{"t1-urgent-in-business-hours call_webhook smartertrack/ticket/R-1 POST https://ops.example.com/urgent?ticket=R-1&priority=urgent"})
	})
	for name, now := range map[string]string{"evening": "2025-06-03T01:00:00Z", "saturday": "2025-06-07T15:00:00Z", "early": "2025-06-02T13:59:00Z"} {
		t.Run("T1 outside business hours logs: "+name, func(t *testing.T) {
			res := s.Evaluate(Input{Event: urgent(), Now: at(t, now)})
			if !reflect.DeepEqual(res.Matched, []string{"t1-urgent-after-hours"}) || len(res.Updates) != 1 || res.Updates[0].Log == nil ||
				res.Updates[0].Log.File != "/var/log/hookline/after-hours.log" || !strings.HasSuffix(res.Updates[0].Log.Line, "ticket R-1 is now urgent") {
				t.Errorf("res = %+v", res)
			}
		})
	}
	t.Run("T1 not for other priorities", func(t *testing.T) {
		ev := urgent()
		ev.Changes["priority"] = event.Change{From: "low", To: "high"}
		if res := s.Evaluate(Input{Event: ev, Now: at(t, "2025-06-02T15:00:00Z")}); len(res.Matched) != 0 {
			t.Errorf("matched %v", res.Matched)
		}
	})
	idle := func(minutes float64) *event.Event {
		ev := mkEvent("chat.idle", map[string]any{"idle_minutes": minutes})
		ev.Connector, ev.Entity, ev.Reference = "smartertrack", "chat", "C-9"
		return ev
	}
	t.Run("T2 idle chat between 5 and 15 minutes, once per chat", func(t *testing.T) {
		now := at(t, "2025-06-02T15:00:00Z")
		res := s.Evaluate(Input{Event: idle(7), Now: now})
		checkUpdates(t, res, []string{"t2-idle-chat-rescue"}, []string{"t2-idle-chat-rescue update_entity smartertrack/chat/C-9 group=rescue"})
		snap := &event.Snapshot{Fired: map[string][]time.Time{}}
		for _, f := range res.Firings {
			snap.Fired[f.Rule] = append(snap.Fired[f.Rule], f.At)
		}
		res = s.Evaluate(Input{Event: idle(12), Snapshot: snap, Now: now.Add(5 * time.Minute)})
		if len(res.Matched) != 0 || traceOf(res, "t2-idle-chat-rescue").Skipped != SkipOnce {
			t.Errorf("second idle event: %+v", res.Trace)
		}
		for _, m := range []float64{4, 16} {
			if res := s.Evaluate(Input{Event: idle(m), Now: now}); len(res.Matched) != 0 {
				t.Errorf("idle %v matched", m)
			}
		}
	})
	t.Run("T4 negative survey", func(t *testing.T) {
		ev := mkEvent("survey.answered", map[string]any{"survey_rating": 1.0})
		ev.Connector, ev.Reference = "smartertrack", "R-5"
		res := s.Evaluate(Input{Event: ev, Now: at(t, "2025-06-02T15:00:00Z")})
		checkUpdates(t, res, []string{"t4-unhappy-survey"}, []string{
			"t4-unhappy-survey update_entity smartertrack/ticket/R-5 priority=high +unhappy",
			`t4-unhappy-survey call_webhook smartertrack/ticket/R-5 POST https://notify.example.com/unhappy {"rating":"1","ticket":"R-5"}`,
		})
		ev.Fields["survey_rating"] = 4.0
		if res := s.Evaluate(Input{Event: ev, Now: at(t, "2025-06-02T15:00:00Z")}); len(res.Matched) != 0 {
			t.Errorf("rating 4 matched")
		}
	})
	t.Run("T5 manual escalate on ticket R", func(t *testing.T) {
		ev := mkEvent("ticket.manual", nil)
		ev.Connector, ev.Reference = "smartertrack", "R"
		res, err := s.Run("t5-escalate", Input{Event: ev, Now: at(t, "2025-06-02T15:00:00Z")})
		if err != nil {
			t.Fatal(err)
		}
		checkUpdates(t, res, []string{"t5-escalate"}, []string{
			"t5-escalate update_entity smartertrack/ticket/R group=tier2 owner=escalation_manager priority=urgent",
			"t5-escalate call_webhook smartertrack/ticket/R PUT https://ops.example.com/escalated/R",
		})
	})
}

const spotterRules = `rules:
  - id: w6-reduce-back-and-forth
    on: ticket.comment_added
    once_per_item: true
    when: { field: agent_replies, gte: 4 }
    then:
      - add_tags: back_and_forth
      - set_group: tier2
  - id: w7-priority-raised
    on: ticket.priority_changed
    when:
      all:
        - { field: priority, changed_to: [high, urgent] }
        - { field: status, in: [open, pending] }
        - { field: tags, excludes: no_spotter }
    then:
      - set_group: escalations
      - add_tags: priority_raised
  - id: w8-unhappy-customer
    on: survey.answered
    when:
      all:
        - { field: survey_rating, lte: 2 }
        - { field: priority, lt: urgent }
    then:
      - set_priority: urgent
      - add_tags: unhappy_customer
  - id: w12-assignee-on-leave
    on: "ticket.*"
    when:
      all:
        - { field: status, is: open }
        - any:
            - { field: owner, in: [alice, bob] }
            - { field: owner, in: { field: custom.agents_on_leave } }
    then:
      - set_owner: null
      - set_group: available_agents
`

func TestScenarioSpotter(t *testing.T) {
	s := mustCompile(t, spotterRules, Options{})
	now := at(t, "2025-06-02T10:00:00Z")
	t.Run("W6 fourth agent reply, once per ticket", func(t *testing.T) {
		ev := mkEvent("ticket.comment_added", map[string]any{"status": "open"})
		snap := &event.Snapshot{AgentReplies: 4, Fields: map[string]any{"status": "open"}}
		res := s.Evaluate(Input{Event: ev, Snapshot: snap, Now: now})
		checkUpdates(t, res, []string{"w6-reduce-back-and-forth"}, []string{"w6-reduce-back-and-forth update_entity zendesk/ticket/42 group=tier2 +back_and_forth"})
		snap.AgentReplies = 5
		snap.Fired = map[string][]time.Time{"w6-reduce-back-and-forth": {now}}
		if res := s.Evaluate(Input{Event: ev, Snapshot: snap, Now: now.Add(time.Hour)}); len(res.Matched) != 0 {
			t.Errorf("fired twice: %v", res.Matched)
		}
		snap.AgentReplies, snap.Fired = 3, nil
		if res := s.Evaluate(Input{Event: ev, Snapshot: snap, Now: now}); len(res.Matched) != 0 {
			t.Errorf("3 replies matched")
		}
	})
	t.Run("W7 priority changed to high on an open ticket", func(t *testing.T) {
		ev := mkEvent("ticket.priority_changed", map[string]any{"priority": "high"})
		ev.Changes = map[string]event.Change{"priority": {From: "normal", To: "high"}}
		snap := &event.Snapshot{Fields: map[string]any{"priority": "high", "status": "pending", "tags": []string{"vip"}}}
		res := s.Evaluate(Input{Event: ev, Snapshot: snap, Now: now})
		checkUpdates(t, res, []string{"w7-priority-raised"}, []string{"w7-priority-raised update_entity zendesk/ticket/42 group=escalations +priority_raised"})
		snap.Fields["tags"] = []string{"vip", "no_spotter"}
		res = s.Evaluate(Input{Event: ev, Snapshot: snap, Now: now})
		if f := traceOf(res, "w7-priority-raised").Failed; len(res.Matched) != 0 || f == nil || f.Condition != "tags excludes no_spotter" {
			t.Errorf("opted-out ticket: %+v", f)
		}
	})
	t.Run("W8 negative survey", func(t *testing.T) {
		ev := mkEvent("survey.answered", map[string]any{"survey_rating": 2.0})
		snap := &event.Snapshot{Fields: map[string]any{"priority": "normal", "survey_rating": 2.0}}
		res := s.Evaluate(Input{Event: ev, Snapshot: snap, Now: now})
		checkUpdates(t, res, []string{"w8-unhappy-customer"}, []string{"w8-unhappy-customer update_entity zendesk/ticket/42 priority=urgent +unhappy_customer"})
	})
	t.Run("W12 assignee on leave, by list or by field", func(t *testing.T) {
		for _, snap := range []*event.Snapshot{
			{Fields: map[string]any{"status": "open", "owner": "bob"}},
			{Fields: map[string]any{"status": "open", "owner": "carol", "custom.agents_on_leave": []any{"carol", "dave"}}},
		} {
			res := s.Evaluate(Input{Event: mkEvent("ticket.updated", nil), Snapshot: snap, Now: now})
			checkUpdates(t, res, []string{"w12-assignee-on-leave"}, []string{"w12-assignee-on-leave update_entity zendesk/ticket/42 group=available_agents owner="})
			if v, ok := res.Updates[0].Set["owner"]; !ok || v != nil {
				t.Errorf("owner not cleared: %#v", res.Updates[0].Set)
			}
		}
		res := s.Evaluate(Input{Event: mkEvent("ticket.updated", nil), Snapshot: &event.Snapshot{Fields: map[string]any{"status": "open", "owner": "erin"}}, Now: now})
		if len(res.Matched) != 0 {
			t.Errorf("erin is not on leave")
		}
	})
}
