package rules

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hookline/hookline/event"
)

// actRule wraps actions (YAML lines, indented under then:) into a rule on ticket.updated.
func actRule(extra, actions string) string {
	return "rules:\n  - id: r\n    on: ticket.updated\n" + extra + "    then:\n" + actions
}

func fire(t *testing.T, src string, opts Options, ev *event.Event, snap *event.Snapshot) Result {
	t.Helper()
	s := mustCompile(t, src, opts)
	return s.Evaluate(Input{Event: ev, Snapshot: snap, Now: at(t, "2025-06-02T10:00:00Z")})
}

func TestSetActions(t *testing.T) {
	cases := []struct {
		action string
		field  string
		want   any
	}{
		{"set_status: solved", "status", "solved"},
		{"set_priority: high", "priority", "high"},
		{"set_owner: senior_support", "owner", "senior_support"},
		{"set_owner: null", "owner", nil},
		{"set_group: email_group", "group", "email_group"},
		{"set_group: 360012345", "group", 360012345.0},
		{"set_category: Billing", "category", "Billing"},
		{"set_channel: email", "channel", "email"},
		{`set_owner: "{{ .Event.Actor.ID }}"`, "owner", "agent-7"},
		{`set_category: "{{ index .Fields \"custom.kind\" | upper }}"`, "category", "REFUND"},
		{`set_group: "{{ .Field \"custom.kind\" }}-team"`, "group", "refund-team"},
	}
	for _, tc := range cases {
		t.Run(tc.action, func(t *testing.T) {
			ev := mkEvent("ticket.updated", map[string]any{"custom.kind": "refund"})
			ev.Actor = event.Actor{Type: "agent", ID: "agent-7"}
			ev.Causation.Hops = 2
			res := fire(t, actRule("", "      - "+tc.action+"\n"), Options{}, ev, nil)
			if len(res.Errors) > 0 {
				t.Fatalf("errors: %+v", res.Errors)
			}
			want := []event.Update{{Kind: event.KindUpdateEntity, RuleID: "r", EventID: "ev1", Connector: "zendesk", Entity: "ticket",
				Reference: "42", Set: map[string]any{tc.field: tc.want}, Hops: 3, Vars: ev.Vars}}
			if !reflect.DeepEqual(res.Updates, want) {
				t.Errorf("updates = %+v\nwant      %+v", res.Updates, want)
			}
		})
	}
}

func TestSetFieldsAndTags(t *testing.T) {
	src := actRule("    deliver_to: crm\n", `      - set_fields:
          status: open
          custom.order_id: "{{ .Var \"ORDER_ID\" }}"
          custom.score: 5
          custom.labels: [a, b]
      - add_tags: [vip, "{{ .Fields.plan }}", vip]
      - remove_tags: spam
      - add_tags: Gold
`)
	ev := mkEvent("ticket.updated", map[string]any{"plan": "gold"})
	ev.Vars = map[string]string{"ORDER_ID": "A-9"}
	res := fire(t, src, Options{}, ev, nil)
	if len(res.Updates) != 1 {
		t.Fatalf("updates = %+v, errors %+v", res.Updates, res.Errors)
	}
	u := res.Updates[0]
	wantSet := map[string]any{"status": "open", "custom.order_id": "A-9", "custom.score": 5.0, "custom.labels": []any{"a", "b"}}
	if u.Connector != "crm" || !reflect.DeepEqual(u.Set, wantSet) ||
		!reflect.DeepEqual(u.AddTags, []string{"vip", "gold"}) || !reflect.DeepEqual(u.RemoveTags, []string{"spam"}) {
		t.Errorf("update = %+v", u)
	}
}

func TestUpdateTicket(t *testing.T) {
	t.Run("merged with the event entity's intents", func(t *testing.T) {
		src := actRule("", `      - set_priority: high
      - update_ticket: { reference: "%%TICKET_REFERENCE%%", status: in_progress, owner: "{{ .Field \"owner\" }}" }
      - add_tags: touched
`)
		res := fire(t, src, Options{}, mkEvent("ticket.updated", map[string]any{"owner": "alice"}), nil)
		if len(res.Updates) != 1 {
			t.Fatalf("want one merged update, got %+v (errors %+v)", res.Updates, res.Errors)
		}
		u := res.Updates[0]
		if u.Reference != "42" || u.Entity != "ticket" || !reflect.DeepEqual(u.Set, map[string]any{"priority": "high", "status": "in_progress", "owner": "alice"}) ||
			!reflect.DeepEqual(u.AddTags, []string{"touched"}) {
			t.Errorf("update = %+v", u)
		}
	})
	t.Run("another ticket and another system", func(t *testing.T) {
		src := actRule("", `      - update_ticket: { reference: "%%ORDER_ID%%", category: Billing }
      - update_ticket: { reference: "%%ORDER_ID%%", priority: urgent, connector: helpdesk }
      - set_status: open
`)
		ev := mkEvent("message.received", nil)
		ev.Type, ev.Connector, ev.Entity, ev.Reference = "ticket.updated", "spoki", "message", "m-1"
		ev.Vars = map[string]string{"ORDER_ID": "ORD-7"}
		res := fire(t, src, Options{}, ev, nil)
		got := make([]string, 0, len(res.Updates))
		for _, u := range res.Updates {
			b, _ := json.Marshal(u.Set)
			got = append(got, u.Connector+"/"+u.Entity+"/"+u.Reference+" "+string(b))
		}
		want := []string{`spoki/ticket/ORD-7 {"category":"Billing"}`, `helpdesk/ticket/ORD-7 {"priority":"urgent"}`, `spoki/message/m-1 {"status":"open"}`}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("updates = %q\nwant      %q", got, want)
		}
	})
	runtime := []struct {
		name, ref string
		vars      map[string]string
		want      string
	}{
		{"unknown variable", "%%ORDER_ID%%", map[string]string{"TICKET_REFERENCE": "42"}, `unknown variable "ORDER_ID" (the event carries: TICKET_REFERENCE)`},
		{"empty reference", `{{ .Field "custom.none" }}`, nil, "empty reference: the template rendered nothing, no update is sent"},
		{"empty variable", "%%EMPTY%%", map[string]string{"EMPTY": ""}, "empty reference"},
		{"too long", "%%LONG%%", map[string]string{"LONG": strings.Repeat("x", 257)}, "257 characters, at most 256 allowed"},
	}
	for _, tc := range runtime {
		t.Run(tc.name, func(t *testing.T) {
			src := actRule("", "      - update_ticket: { reference: \""+strings.ReplaceAll(tc.ref, `"`, `\"`)+"\", status: open }\n")
			ev := mkEvent("ticket.updated", nil)
			ev.Vars = tc.vars
			res := fire(t, src, Options{}, ev, nil)
			if len(res.Updates) != 0 || len(res.Matched) != 0 || len(res.Firings) != 0 {
				t.Fatalf("a failed rule emitted something: %+v", res)
			}
			if len(res.Errors) != 1 || res.Errors[0].Rule != "r" {
				t.Fatalf("errors = %+v", res.Errors)
			}
			mustContain(t, res.Errors[0].Message, tc.want, "rules.yaml:5:")
			if te := traceOf(res, "r"); te == nil || te.Matched || te.Error == "" {
				t.Errorf("trace = %+v", te)
			}
		})
	}
}

func TestOtherActions(t *testing.T) {
	src := actRule("", `      - call_webhook:
          url: "https://hooks.example.com/t/{{ .Event.Reference }}?p={{ .Fields.priority }}"
          headers: { X-Rule: "{{ .Rule }}", X-Static: yes }
          body: { ref: "%%TICKET_REFERENCE%%", priority: "{{ .Fields.priority }}", n: 3, list: [a, "{{ .Event.Type }}"] }
      - call_webhook: { url: "https://example.com/ping", method: get, body: "at {{ .Now.Format \"15:04\" }}" }
      - send_message: "Hi {{ .Event.Actor.Name }}, we are on it"
      - send_message: { text: "agent replies so far: {{ .Snapshot.AgentReplies }}", to: "%%PHONE%%" }
      - log: { file: /var/log/hookline/urgent.log, line: "{{ .Event.Reference }} {{ .Fields.priority }}" }
`)
	ev := mkEvent("ticket.updated", map[string]any{"priority": "urgent"})
	ev.Actor.Name = "Ann"
	ev.Vars["PHONE"] = "+39000"
	res := fire(t, src, Options{}, ev, &event.Snapshot{AgentReplies: 2, Fields: map[string]any{"priority": "urgent"}})
	if len(res.Errors) > 0 {
		t.Fatalf("errors: %+v", res.Errors)
	}
	if len(res.Updates) != 5 {
		t.Fatalf("updates = %+v", res.Updates)
	}
	w := res.Updates[0]
	if w.Kind != event.KindCallWebhook || w.Webhook.Method != "POST" || w.Webhook.URL != "https://hooks.example.com/t/42?p=urgent" ||
		!reflect.DeepEqual(w.Webhook.Headers, map[string]string{"X-Rule": "r", "X-Static": "yes"}) ||
		w.Webhook.Body != `{"list":["a","ticket.updated"],"n":3,"priority":"urgent","ref":"42"}` {
		t.Errorf("webhook = %+v", w.Webhook)
	}
	if g := res.Updates[1].Webhook; g.Method != "GET" || g.Body != "at 10:00" {
		t.Errorf("get = %+v", g)
	}
	if m := res.Updates[2]; m.Kind != event.KindSendMessage || m.Message.Text != "Hi Ann, we are on it" || m.Message.To != "" {
		t.Errorf("message = %+v", m.Message)
	}
	if m := res.Updates[3].Message; m.Text != "agent replies so far: 2" || m.To != "+39000" {
		t.Errorf("message = %+v", m)
	}
	if l := res.Updates[4]; l.Kind != event.KindLog || l.Log.File != "/var/log/hookline/urgent.log" || l.Log.Line != "42 urgent" {
		t.Errorf("log = %+v", l.Log)
	}
	for _, u := range res.Updates {
		if u.RuleID != "r" || u.EventID != "ev1" || u.Hops != 1 || u.Connector != "zendesk" || u.Reference != "42" {
			t.Errorf("common fields = %+v", u)
		}
	}
}

func TestActionConfigErrors(t *testing.T) {
	vars := Options{Connectors: []string{"spoki", "zendesk"}, ConnectorVars: map[string][]string{"spoki": {"TICKET_REFERENCE", "EMAIL"}}}
	cases := []struct {
		name, extra, actions string
		opts                 Options
		want                 []string
	}{
		{"unknown action", "", "      - set_stauts: open\n", Options{}, []string{`rules.yaml:5:9: unknown action "set_stauts"; did you mean "set_status"?`}},
		{"two keys", "", "      - { set_status: open, set_priority: high }\n", Options{}, []string{"expected one action per list item"}},
		{"no reference", "", "      - update_ticket: { status: open }\n", Options{}, []string{`missing required key "reference"`}},
		{"empty reference", "", "      - update_ticket: { reference: \"\", status: open }\n", Options{}, []string{"update_ticket.reference: required"}},
		{"no change", "", "      - update_ticket: { reference: \"%%TICKET_REFERENCE%%\" }\n", Options{}, []string{"update_ticket: set at least one of status, priority, category, owner"}},
		{"misspelt update_ticket key", "", "      - update_ticket: { reference: \"%%TICKET_REFERENCE%%\", staus: open }\n", Options{}, []string{`unknown key "staus"; did you mean "status"?`}},
		{"single-percent variable", "", "      - update_ticket: { reference: \"%TICKET_REFERENCE%\", status: open }\n", Options{}, []string{`update_ticket.reference "%TICKET_REFERENCE%" is literal text; did you mean the variable %%TICKET_REFERENCE%%?`}},
		{"literal reference too long", "", "      - update_ticket: { reference: " + strings.Repeat("r", 257) + ", status: open }\n", Options{}, []string{"at most 256 characters, got 257"}},
		{"unknown connector", "", "      - update_ticket: { reference: \"%%TICKET_REFERENCE%%\", status: open, connector: zendsk }\n", vars, []string{`update_ticket.connector: unknown connector "zendsk"; did you mean "zendesk"?`}},
		{"variable not produced", "    connector: spoki\n", "      - update_ticket: { reference: \"%%ORDER_ID%%\", status: open }\n", vars, []string{`variable %%ORDER_ID%% is not produced by connector spoki (it produces: EMAIL, TICKET_REFERENCE)`}},
		{"variable misspelt", "    connector: spoki\n", "      - send_message: \"{{ .Var \\\"EMAIL_\\\" }}\"\n", vars, []string{`variable %%EMAIL_%% is not produced by connector spoki; did you mean "EMAIL"?`}},
		{"set_fields key", "", "      - set_fields: { staus: open }\n", Options{}, []string{`set_fields: field "staus" cannot be set; did you mean "status"?`}},
		{"set_fields derived", "", "      - set_fields: { agent_replies: 3 }\n", Options{}, []string{`field "agent_replies" cannot be set`}},
		{"set_fields empty", "", "      - set_fields: {}\n", Options{}, []string{"set_fields: expected a mapping of field: value"}},
		{"priority value", "", "      - set_priority: hgih\n", Options{}, []string{`"hgih" is not a priority value; did you mean "high"?`}},
		{"priority per connector", "    connector: spoki\n", "      - set_priority: high\n", Options{ConnectorEnums: map[string]map[string][]string{"spoki": {"priority": {"bassa", "alta"}}}}, []string{`"high" is not a priority value for connector spoki`}},
		{"status null", "", "      - set_status: null\n", Options{}, []string{"status cannot be cleared"}},
		{"set a list", "", "      - set_owner: [a, b]\n", Options{}, []string{"set_owner: expected a value, got a list"}},
		{"tag added and removed", "", "      - add_tags: [a, b]\n      - remove_tags: [B]\n", Options{}, []string{`rules.yaml:6:9: rule "r": tag "b" is both added and removed (add_tags at rules.yaml:5:9)`}},
		{"field written twice", "", "      - set_status: open\n      - update_ticket: { reference: \"%%TICKET_REFERENCE%%\", owner: x }\n      - set_fields: { status: pending }\n", Options{}, []string{`set_fields writes status again (first written by set_status at rules.yaml:5:9)`}},
		{"empty tag", "", "      - add_tags: [\"\"]\n", Options{}, []string{"add_tags: expected a tag"}},
		{"bad template", "", "      - set_owner: \"{{ .Event.Actor.Name \"\n", Options{}, []string{"set_owner: template:"}},
		{"template field typo", "", "      - set_owner: \"{{ .Event.Referense }}\"\n", Options{}, []string{`set_owner: template: event.Event has no field "Referense"; did you mean "Reference"?`}},
		{"template data typo", "", "      - set_owner: \"{{ .Feilds.owner }}\"\n", Options{}, []string{`has no field "Feilds"; did you mean "Fields"?`}},
		{"webhook url", "", "      - call_webhook: { url: ftp://x }\n", Options{}, []string{`call_webhook.url: expected an http:// or https:// URL, got "ftp://x"`}},
		{"webhook method", "", "      - call_webhook: { url: \"https://x\", method: PSOT }\n", Options{}, []string{`call_webhook.method: unknown method "PSOT"; did you mean "POST"?`}},
		{"webhook key", "", "      - call_webhook: { url: \"https://x\", heders: {} }\n", Options{}, []string{`unknown key "heders"; did you mean "headers"?`}},
		{"message text", "", "      - send_message: { to: x }\n", Options{}, []string{`missing required key "text"`}},
		{"log line", "", "      - log: { file: a.log }\n", Options{}, []string{`missing required key "line"`}},
		{"deliver_to list", "    deliver_to: [a, b]\n", "      - set_status: open\n", Options{}, []string{"deliver_to: expected a connector name, got a list"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mustContain(t, compileFails(t, actRule(tc.extra, tc.actions), tc.opts), tc.want...)
		})
	}
}

func TestVariablesCheckedOnlyWhenKnown(t *testing.T) {
	vars := Options{ConnectorVars: map[string][]string{"spoki": {"TICKET_REFERENCE"}}}
	// No connector filter: the check cannot know which mapping produces the event.
	mustCompile(t, actRule("", "      - update_ticket: { reference: \"%%ORDER_ID%%\", status: open }\n"), vars)
	// A connector whose variables are not listed is not checked either.
	mustCompile(t, actRule("    connector: other\n", "      - update_ticket: { reference: \"%%ORDER_ID%%\", status: open }\n"), vars)
	mustCompile(t, actRule("    connector: spoki\n", "      - update_ticket: { reference: \"%%TICKET_REFERENCE%%\", status: open }\n"), vars)
}

func TestRuntimeTagConflict(t *testing.T) {
	src := actRule("", "      - add_tags: [\"{{ .Fields.a }}\"]\n      - remove_tags: [\"{{ .Fields.b }}\"]\n")
	res := fire(t, src, Options{}, mkEvent("ticket.updated", map[string]any{"a": "x", "b": "X"}), nil)
	if len(res.Updates) != 0 || len(res.Errors) != 1 {
		t.Fatalf("res = %+v", res)
	}
	mustContain(t, res.Errors[0].Message, `tag "x" is both added and removed`)
}

func TestRuntimeEmptySetValue(t *testing.T) {
	src := actRule("", "      - set_owner: \"{{ .Field \\\"custom.nobody\\\" }}\"\n")
	res := fire(t, src, Options{}, mkEvent("ticket.updated", nil), nil)
	if len(res.Updates) != 0 || len(res.Errors) != 1 {
		t.Fatalf("res = %+v", res)
	}
	mustContain(t, res.Errors[0].Message, "the template renders empty")
}

func TestRuntimeConflictingUpdateTicket(t *testing.T) {
	src := actRule("", `      - update_ticket: { reference: "%%A%%", status: open }
      - update_ticket: { reference: "%%B%%", status: pending }
`)
	ev := mkEvent("ticket.updated", nil)
	ev.Vars = map[string]string{"A": "7", "B": "7"}
	res := fire(t, src, Options{}, ev, nil)
	if len(res.Updates) != 0 || len(res.Errors) != 1 {
		t.Fatalf("res = %+v", res)
	}
	mustContain(t, res.Errors[0].Message, "status is written twice with different values")
	ev.Vars = map[string]string{"A": "7", "B": "8"}
	if res := fire(t, src, Options{}, ev, nil); len(res.Updates) != 2 {
		t.Fatalf("two tickets: %+v", res)
	}
}

func TestEntityUpdates(t *testing.T) {
	set := mustCompile(t, `rules:
  - id: r
    on: [ticket.updated]
    then:
      - set_status: open
      - set_fields: { owner: null, custom.plan: gold }
      - add_tags: [a]
      - remove_tags: [b]
      - update_ticket: { reference: "%%REFERENCE%%", connector: other, priority: high }
      - log: { file: x.log, line: x }
`, Options{})
	var got []string
	for _, eu := range set.Rules()[0].EntityUpdates() {
		fields := append([]string(nil), eu.Fields...)
		slices.Sort(fields)
		got = append(got, fmt.Sprintf("%d %s %q %q %v %v", eu.Pos.Line, eu.Action, eu.Connector, eu.Entity, fields, eu.Tags))
	}
	want := []string{
		`5 set_status "" "" [status] false`,
		`6 set_fields "" "" [custom.plan owner] false`,
		`7 add_tags "" "" [] true`,
		`8 remove_tags "" "" [] true`,
		`9 update_ticket "other" "ticket" [priority] false`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("EntityUpdates:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A send_message whose text or templated to: renders empty is a RuleError,
// never a message: the WhatsApp connector sends a message without to: to
// the customer.
func TestRuntimeEmptyMessage(t *testing.T) {
	cases := []struct {
		name, action, want string
	}{
		{"to renders empty", `      - send_message: { text: "Internal: VIP waiting", to: '{{ .Field "custom.manager_phone" }}' }` + "\n", "send_message.to"},
		{"to renders blank", `      - send_message: { text: "Internal: VIP waiting", to: ' {{ .Field "custom.manager_phone" }} ' }` + "\n", "send_message.to"},
		{"text renders empty", `      - send_message: '{{ .Field "custom.auto_reply" }}'` + "\n", "send_message.text"},
		{"text renders blank", `      - send_message: { text: ' {{ .Field "custom.auto_reply" }}  ', to: "+391234" }` + "\n", "send_message.text"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := fire(t, actRule("", tc.action), Options{}, mkEvent("ticket.updated", nil), nil)
			if len(res.Updates) != 0 || len(res.Errors) != 1 {
				t.Fatalf("updates %+v, errors %+v", res.Updates, res.Errors)
			}
			mustContain(t, res.Errors[0].Message, tc.want, "renders empty")
		})
	}
	src := actRule("", `      - send_message: { text: '{{ .Field "custom.auto_reply" }}', to: ' {{ .Field "custom.manager_phone" }}' }`+"\n")
	res := fire(t, src, Options{}, mkEvent("ticket.updated", map[string]any{"custom.auto_reply": "hi", "custom.manager_phone": "+39 1"}), nil)
	if len(res.Updates) != 1 || res.Updates[0].Message.Text != "hi" || res.Updates[0].Message.To != "+39 1" {
		t.Fatalf("res = %+v", res)
	}
}

// An update a rule sends through another connector (deliver_to) for the
// event platform's own entity names that entity in StateOf, so that the
// gateway checks and renders it against that entity's snapshot; an
// update_ticket with connector: names that connector's ticket, read as it
// is.
func TestUpdateStateOf(t *testing.T) {
	zendesk42 := &event.EntityKey{Connector: "zendesk", Entity: "ticket", Reference: "42"}
	tests := []struct {
		name, extra, actions string
		want                 map[string]*event.EntityKey // target connector/reference -> StateOf
	}{
		{"no deliver_to", "", "      - set_status: open\n", map[string]*event.EntityKey{"zendesk/42": nil}},
		{"deliver_to the event's own connector", "    deliver_to: zendesk\n", "      - set_status: open\n", map[string]*event.EntityKey{"zendesk/42": nil}},
		{"set_status through deliver_to", "    deliver_to: crm\n", "      - set_status: open\n", map[string]*event.EntityKey{"crm/42": zendesk42}},
		{"tags through deliver_to", "    deliver_to: crm\n", "      - add_tags: [x]\n", map[string]*event.EntityKey{"crm/42": zendesk42}},
		{"update_ticket without connector through deliver_to", "    deliver_to: crm\n", "      - update_ticket: { reference: \"7\", status: open }\n",
			map[string]*event.EntityKey{"crm/7": {Connector: "zendesk", Entity: "ticket", Reference: "7"}}},
		{"update_ticket naming a connector", "    deliver_to: crm\n", "      - update_ticket: { reference: \"7\", status: open, connector: helpdesk }\n",
			map[string]*event.EntityKey{"helpdesk/7": nil}},
		{"update_ticket naming the deliver_to connector", "    deliver_to: crm\n", "      - update_ticket: { reference: \"7\", status: open, connector: crm }\n",
			map[string]*event.EntityKey{"crm/7": nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := fire(t, actRule(tt.extra, tt.actions), Options{}, mkEvent("ticket.updated", nil), nil)
			if len(res.Errors) > 0 || len(res.Updates) != len(tt.want) {
				t.Fatalf("updates %+v, errors %+v", res.Updates, res.Errors)
			}
			for _, u := range res.Updates {
				want, ok := tt.want[u.Connector+"/"+u.Reference]
				if !ok {
					t.Fatalf("update of %s/%s, want only %v", u.Connector, u.Reference, tt.want)
				}
				if !reflect.DeepEqual(u.StateOf, want) {
					t.Errorf("update of %s/%s: StateOf = %v, want %v", u.Connector, u.Reference, u.StateOf, want)
				}
			}
		})
	}
}
