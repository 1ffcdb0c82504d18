package rules

import "testing"

func TestLoopGuardRefuses(t *testing.T) {
	cases := []struct {
		name string
		src  string
		want []string
	}{
		{"spoki: status changed without target sets the status", `rules:
  - id: spoki-status
    on: ticket.status_changed
    then:
      - update_ticket: { reference: "%%TICKET_REFERENCE%%", status: resolved }
`, []string{`rules.yaml:5:9: rule "spoki-status" would re-trigger itself: update_ticket writes status, and its trigger "on: ticket.status_changed" (rules.yaml:2:5) fires on any change of status`}},
		{"spoki: status changed to X sets X", `rules:
  - id: to-resolved
    on: ticket.status_changed
    when: { field: status, changed_to: [resolved, closed] }
    then:
      - update_ticket: { reference: "%%TICKET_REFERENCE%%", status: Resolved }
`, []string{`rule "to-resolved" would re-trigger itself: update_ticket sets status to "Resolved", the target of its trigger "status changed_to [resolved, closed]" (rules.yaml:4:11)`}},
		{"changed operator", `rules:
  - id: r
    on: ticket.updated
    when: { all: [ { field: status, is_not: x }, { any: [ { field: priority, changed: true } ] } ] }
    then: [ { set_priority: high } ]
`, []string{`rules.yaml:5:15: rule "r" would re-trigger itself: set_priority writes priority`, `"priority changed" (rules.yaml:4:59)`}},
		{"changed_to with a template", `rules:
  - id: r
    on: ticket.updated
    when: { field: owner, changed_to: alice }
    then: [ { set_owner: "{{ .Fields.next }}" } ]
`, []string{`set_owner writes owner from a template that may render alice`}},
		{"set_fields of a watched custom field", `rules:
  - id: r
    on: ticket.updated
    when: { field: custom.stage, changed: true }
    then: [ { set_fields: { custom.stage: done } } ]
`, []string{`set_fields writes custom.stage`}},
		{"tags", `rules:
  - id: r
    on: ticket.updated
    when: { field: tags, changed: true }
    then: [ { add_tags: seen } ]
`, []string{`add_tags changes tags`}},
		{"priority_changed type with is", `rules:
  - id: r
    on: ticket.priority_changed
    when: { field: priority, is: urgent }
    then: [ { set_priority: urgent } ]
`, []string{`set_priority sets priority to "urgent", the target of its trigger "on: ticket.priority_changed with priority in [urgent]"`}},
		{"assigned type", `rules:
  - id: r
    on: [ticket.assigned]
    then: [ { set_owner: bob } ]
`, []string{`set_owner writes owner, and its trigger "on: ticket.assigned"`}},
		{"deliver_to the same connector", `rules:
  - id: r
    on: ticket.status_changed
    connector: zendesk
    deliver_to: zendesk
    then: [ { set_status: open } ]
`, []string{`rule "r" would re-trigger itself`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mustContain(t, compileFails(t, tc.src, Options{}), tc.want...)
		})
	}
}

func TestLoopGuardAccepts(t *testing.T) {
	cases := []struct{ name, src string }{
		{"spoki: status changed sets another field", `rules:
  - id: r
    on: ticket.status_changed
    then:
      - update_ticket: { reference: "%%TICKET_REFERENCE%%", priority: high, owner: senior_support }
`},
		{"status changed to X sets Y", `rules:
  - id: r
    on: ticket.status_changed
    when: { field: status, changed_to: resolved }
    then: [ { update_ticket: { reference: "%%TICKET_REFERENCE%%", status: closed } } ]
`},
		{"priority_changed type with is sets another priority", `rules:
  - id: r
    on: ticket.priority_changed
    when: { field: priority, is: high }
    then: [ { set_priority: urgent } ]
`},
		{"changed_from does not re-fire", `rules:
  - id: r
    on: ticket.updated
    when: { field: status, changed_from: new }
    then: [ { set_status: open } ]
`},
		{"not changed is no trigger", `rules:
  - id: r
    on: ticket.updated
    when: { not: { field: status, changed: true } }
    then: [ { set_status: open } ]
`},
		{"writes to another system", `rules:
  - id: r
    on: ticket.status_changed
    connector: zendesk
    then: [ { update_ticket: { reference: "%%TICKET_REFERENCE%%", status: open, connector: crm } } ]
`},
		{"deliver_to another system", `rules:
  - id: r
    on: ticket.status_changed
    connector: zendesk
    deliver_to: crm
    then: [ { set_status: open } ]
`},
		{"glob types are not watches", `rules:
  - id: r
    on: "ticket.*"
    when: { field: status, is: new }
    then: [ { set_status: open } ]
`},
		{"opt-out with a limit", `rules:
  - id: r
    on: ticket.status_changed
    allow_retrigger: true
    limit: { max: 1, per: 1h }
    then: [ { set_status: open } ]
`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { mustCompile(t, tc.src, Options{}) })
	}
}
