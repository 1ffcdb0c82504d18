package rules

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/event"
)

type opCase struct {
	name    string
	cond    string
	fields  map[string]any
	changes map[string]event.Change
	snap    *event.Snapshot
	actor   event.Actor
	conn    string
	now     string // RFC 3339; default 2025-06-02T10:00:00Z (a Monday)
	opts    Options
	want    bool
	actual  any // when want is false and actual is set: the trace's actual value

	// occurred, received: the event's OccurredAt and ReceivedAt (RFC 3339;
	// default zero).
	occurred, received string
}

func runOpCases(t *testing.T, cases []opCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := mustCompile(t, oneRule(tc.cond), tc.opts)
			ev := mkEvent("ticket.updated", tc.fields)
			ev.Changes = tc.changes
			ev.Actor = tc.actor
			if tc.conn != "" {
				ev.Connector = tc.conn
			}
			if tc.occurred != "" {
				ev.OccurredAt = at(t, tc.occurred)
			}
			if tc.received != "" {
				ev.ReceivedAt = at(t, tc.received)
			}
			now := "2025-06-02T10:00:00Z"
			if tc.now != "" {
				now = tc.now
			}
			res := s.Evaluate(Input{Event: ev, Snapshot: tc.snap, Now: at(t, now)})
			if got := matched(res, "r"); got != tc.want {
				t.Fatalf("%s: matched = %v, want %v (trace %+v, failed %+v)", tc.cond, got, tc.want, res.Trace, traceOf(res, "r").Failed)
			}
			te := traceOf(res, "r")
			if te == nil {
				t.Fatal("no trace entry")
			}
			if !tc.want {
				if te.Failed == nil {
					t.Fatalf("no failed condition in trace: %+v", te)
				}
				if !strings.HasPrefix(te.Failed.Pos, "rules.yaml:4:") {
					t.Errorf("failed pos = %q, want rules.yaml:4:*", te.Failed.Pos)
				}
				if tc.actual != nil && !event.Equal(te.Failed.Actual, tc.actual) {
					t.Errorf("actual = %#v, want %#v", te.Failed.Actual, tc.actual)
				}
			}
		})
	}
}

func TestOperatorIs(t *testing.T) {
	runOpCases(t, []opCase{
		{name: "equal", cond: "{ field: status, is: open }", fields: map[string]any{"status": "open"}, want: true},
		{name: "case-insensitive", cond: "{ field: status, is: open }", fields: map[string]any{"status": "Open"}, want: true},
		{name: "different", cond: "{ field: status, is: pending }", fields: map[string]any{"status": "open"}, want: false, actual: "open"},
		{name: "absent", cond: "{ field: status, is: open }", fields: map[string]any{}, want: false},
		{name: "number", cond: "{ field: survey_rating, is: 2 }", fields: map[string]any{"survey_rating": 2.0}, want: true},
		{name: "number as text", cond: "{ field: survey_rating, is: 2 }", fields: map[string]any{"survey_rating": "2"}, want: true},
		{name: "bool", cond: "{ field: custom.vip, is: true }", fields: map[string]any{"custom.vip": true}, want: true},
		{name: "bool false", cond: "{ field: custom.vip, is: true }", fields: map[string]any{"custom.vip": false}, want: false},
		{name: "nested custom", cond: "{ field: custom.plan, is: gold }", fields: map[string]any{"custom": map[string]any{"plan": "gold"}}, want: true},
		{name: "list value is never equal", cond: "{ field: custom.x, is: a }", fields: map[string]any{"custom.x": []string{"a"}}, want: false},
		{name: "snapshot first", cond: "{ field: status, is: pending }", fields: map[string]any{"status": "open"},
			snap: &event.Snapshot{Fields: map[string]any{"status": "pending"}}, want: true},
		{name: "actor.type", cond: "{ field: actor.type, is: customer }", actor: event.Actor{Type: "customer"}, want: true},
		{name: "actor.type agent", cond: "{ field: actor.type, is: customer }", actor: event.Actor{Type: "agent"}, want: false, actual: "agent"},
		{name: "event.type", cond: "{ field: event.type, is: ticket.updated }", want: true},
		{name: "vars", cond: "{ field: vars.TICKET_REFERENCE, is: 42 }", want: true},
	})
}

// Text that holds an id is compared as text: a number of more than 15
// digits or with a leading zero is never equal to another one through
// float64; plain numbers that float64 holds exactly still compare
// numerically.
func TestOperatorIsTextIDs(t *testing.T) {
	runOpCases(t, []opCase{
		{name: "17-digit ids differ", cond: `{ field: custom.order_id, is: "12345678901234567" }`,
			fields: map[string]any{"custom.order_id": "12345678901234568"}, want: false, actual: "12345678901234568"},
		{name: "17-digit ids equal", cond: `{ field: custom.order_id, is: "12345678901234567" }`,
			fields: map[string]any{"custom.order_id": "12345678901234567"}, want: true},
		{name: "unquoted 17-digit literal", cond: `{ field: custom.order_id, is: 12345678901234567 }`,
			fields: map[string]any{"custom.order_id": "12345678901234568"}, want: false},
		{name: "16-digit ids differ", cond: `{ field: custom.order_id, in: ["9007199254740993"] }`,
			fields: map[string]any{"custom.order_id": "9007199254740992"}, want: false},
		{name: "leading zero", cond: `{ field: custom.code, is: "7" }`, fields: map[string]any{"custom.code": "007"}, want: false},
		{name: "leading zero literal", cond: `{ field: custom.code, is: "007" }`, fields: map[string]any{"custom.code": "7"}, want: false},
		{name: "leading zero same text", cond: `{ field: custom.code, is: "007" }`, fields: map[string]any{"custom.code": "007"}, want: true},
		{name: "is_not 17 digits", cond: `{ field: custom.order_id, is_not: "12345678901234567" }`,
			fields: map[string]any{"custom.order_id": "12345678901234568"}, want: true},
		{name: "19-digit vars", cond: `{ field: vars.TICKET_REFERENCE, in: ["1234567890123456789"] }`, want: false},
		{name: "decimal text", cond: `{ field: custom.amount, is: "2.50" }`, fields: map[string]any{"custom.amount": "2.5"}, want: true},
		{name: "exponent text", cond: `{ field: custom.amount, is: 1000 }`, fields: map[string]any{"custom.amount": "1e3"}, want: true},
		{name: "15 digits numerically", cond: `{ field: custom.n, is: "1234567890123.5" }`, fields: map[string]any{"custom.n": "1234567890123.50"}, want: true},
		{name: "number field", cond: `{ field: custom.n, is: "12" }`, fields: map[string]any{"custom.n": 12.0}, want: true},
	})
	// vars and event.reference hold long ids too.
	for _, tc := range []struct {
		cond, contact, ref string
		want               bool
	}{
		{`{ field: vars.CONTACT, is: "1234567890123456789" }`, "1234567890123456788", "1", false},
		{`{ field: vars.CONTACT, is: "1234567890123456789" }`, "1234567890123456789", "1", true},
		{`{ field: event.reference, is_not: "12345678901234567" }`, "", "12345678901234568", true},
		{`{ field: event.reference, is: "12345678901234567" }`, "", "12345678901234568", false},
	} {
		s := mustCompile(t, oneRule(tc.cond), Options{})
		ev := mkEvent("ticket.updated", nil)
		ev.Vars["CONTACT"], ev.Reference = tc.contact, tc.ref
		if got := matched(s.Evaluate(Input{Event: ev, Now: time.Now()}), "r"); got != tc.want {
			t.Errorf("%s on contact %s, reference %s: matched %v, want %v", tc.cond, tc.contact, tc.ref, got, tc.want)
		}
	}
}

// A boolean field equals true and false written quoted or not, in any case.
func TestOperatorIsQuotedBool(t *testing.T) {
	vip := func(b bool) map[string]any { return map[string]any{"custom.vip": b} }
	runOpCases(t, []opCase{
		{name: `"true" on true`, cond: `{ field: custom.vip, is: "true" }`, fields: vip(true), want: true},
		{name: `"True" on true`, cond: `{ field: custom.vip, is: "True" }`, fields: vip(true), want: true},
		{name: `"false" on false`, cond: `{ field: custom.vip, in: ["false"] }`, fields: vip(false), want: true},
		{name: `"true" on false`, cond: `{ field: custom.vip, is: "true" }`, fields: vip(false), want: false},
		{name: `is_not "true" on true`, cond: `{ field: custom.vip, is_not: "TRUE" }`, fields: vip(true), want: false},
		{name: `"yes" on true`, cond: `{ field: custom.vip, is: "yes" }`, fields: vip(true), want: false},
		{name: `true on text "true"`, cond: `{ field: custom.vip, is: true }`, fields: map[string]any{"custom.vip": "True"}, want: true},
	})
}

func TestOperatorIsNot(t *testing.T) {
	runOpCases(t, []opCase{
		{name: "different", cond: "{ field: status, is_not: solved }", fields: map[string]any{"status": "open"}, want: true},
		{name: "absent", cond: "{ field: status, is_not: solved }", want: true},
		{name: "same", cond: "{ field: status, is_not: solved }", fields: map[string]any{"status": "solved"}, want: false, actual: "solved"},
	})
}

func TestOperatorInNotIn(t *testing.T) {
	leave := map[string]any{"owner": "alice", "custom.on_leave": []string{"alice", "bob"}}
	runOpCases(t, []opCase{
		{name: "in", cond: "{ field: status, in: [open, pending] }", fields: map[string]any{"status": "pending"}, want: true},
		{name: "not in list", cond: "{ field: status, in: [open, pending] }", fields: map[string]any{"status": "solved"}, want: false},
		{name: "single value", cond: "{ field: status, in: open }", fields: map[string]any{"status": "open"}, want: true},
		{name: "in a field's list", cond: "{ field: owner, in: { field: custom.on_leave } }", fields: leave, want: true},
		{name: "not in a field's list", cond: "{ field: owner, in: { field: custom.on_leave } }", fields: map[string]any{"owner": "carol", "custom.on_leave": []any{"alice"}}, want: false},
		{name: "not_in", cond: "{ field: status, not_in: [solved, closed] }", fields: map[string]any{"status": "open"}, want: true},
		{name: "not_in absent", cond: "{ field: status, not_in: [solved, closed] }", want: true},
		{name: "not_in hit", cond: "{ field: status, not_in: [solved, closed] }", fields: map[string]any{"status": "closed"}, want: false},
		{name: "not_in a field's list", cond: "{ field: owner, not_in: { field: custom.on_leave } }", fields: leave, want: false},
		{name: "numbers", cond: "{ field: survey_rating, in: [1, 2] }", fields: map[string]any{"survey_rating": 1.0}, want: true},
	})
}

func TestOperatorChanges(t *testing.T) {
	ch := func(from, to any) map[string]event.Change {
		return map[string]event.Change{"status": {From: from, To: to}}
	}
	runOpCases(t, []opCase{
		{name: "changed", cond: "{ field: status, changed: true }", changes: ch("open", "pending"), want: true},
		{name: "changed from nothing", cond: "{ field: status, changed: true }", changes: ch(nil, "new"), want: true},
		{name: "no change", cond: "{ field: status, changed: true }", want: false},
		{name: "same value is no change", cond: "{ field: status, changed: true }", changes: ch("open", "open"), want: false},
		{name: "changed false", cond: "{ field: status, changed: false }", want: true},
		{name: "changed_to", cond: "{ field: status, changed_to: pending }", changes: ch("open", "pending"), want: true},
		{name: "changed_to other", cond: "{ field: status, changed_to: solved }", changes: ch("open", "pending"), want: false,
			actual: nil},
		{name: "changed_to list", cond: "{ field: status, changed_to: [solved, closed] }", changes: ch("open", "closed"), want: true},
		{name: "changed_to without change", cond: "{ field: status, changed_to: pending }", fields: map[string]any{"status": "pending"}, want: false},
		{name: "changed_from", cond: "{ field: status, changed_from: open }", changes: ch("open", "pending"), want: true},
		{name: "changed_from other", cond: "{ field: status, changed_from: new }", changes: ch("open", "pending"), want: false},
		{name: "not_changed", cond: "{ field: status, not_changed: true }", want: true},
		{name: "not_changed with change", cond: "{ field: status, not_changed: true }", changes: ch("open", "pending"), want: false},
	})
}

// changed_to and changed_from need a real change (from != to), as changed does.
func TestOperatorChangedToNeedsAChange(t *testing.T) {
	same := map[string]event.Change{"status": {From: "solved", To: "solved"}}
	runOpCases(t, []opCase{
		{name: "changed_to, from == to", cond: `{ field: status, changed_to: solved }`, fields: map[string]any{"status": "solved"}, changes: same, want: false},
		{name: "changed_from, from == to", cond: `{ field: status, changed_from: solved }`, fields: map[string]any{"status": "solved"}, changes: same, want: false},
		{name: "changed_to, case only", cond: `{ field: status, changed_to: solved }`, fields: map[string]any{"status": "Solved"},
			changes: map[string]event.Change{"status": {From: "solved", To: "Solved"}}, want: true},
		{name: "changed_to, a change", cond: `{ field: status, changed_to: solved }`, fields: map[string]any{"status": "solved"},
			changes: map[string]event.Change{"status": {From: "open", To: "solved"}}, want: true},
	})
}

func TestOperatorContains(t *testing.T) {
	runOpCases(t, []opCase{
		{name: "word", cond: "{ field: text, contains: billing }", fields: map[string]any{"text": "A question about Billing, please"}, want: true},
		{name: "whole words only", cond: "{ field: text, contains: billing }", fields: map[string]any{"text": "rebilling"}, want: false, actual: "rebilling"},
		{name: "all words", cond: "{ field: text, contains: [billing, refund] }", fields: map[string]any{"text": "billing and refund"}, want: true},
		{name: "all words, one missing", cond: "{ field: text, contains: [billing, refund] }", fields: map[string]any{"text": "billing only"}, want: false},
		{name: "phrase", cond: "{ field: subject, contains: \"credit card\" }", fields: map[string]any{"subject": "My CREDIT CARD was charged"}, want: true},
		{name: "unicode fold", cond: "{ field: text, contains: ÉTÉ }", fields: map[string]any{"text": "cet été-là"}, want: true},
		{name: "absent", cond: "{ field: text, contains: billing }", want: false},
		{name: "not_contains", cond: "{ field: text, not_contains: [refund, chargeback] }", fields: map[string]any{"text": "hello"}, want: true},
		{name: "not_contains hit", cond: "{ field: text, not_contains: [refund, chargeback] }", fields: map[string]any{"text": "Refund!"}, want: false},
		{name: "not_contains absent", cond: "{ field: text, not_contains: refund }", want: true},
		{name: "contains_any", cond: "{ field: text, contains_any: [billing, invoice] }", fields: map[string]any{"text": "the invoice."}, want: true},
		{name: "contains_any none", cond: "{ field: text, contains_any: [billing, invoice] }", fields: map[string]any{"text": "hello"}, want: false},
		{name: "in a list value", cond: "{ field: custom.notes, contains_any: [urgent] }", fields: map[string]any{"custom.notes": []any{"a", "very urgent"}}, want: true},
	})
}

func TestOperatorMatches(t *testing.T) {
	runOpCases(t, []opCase{
		{name: "match", cond: `{ field: customer.email, matches: "@example\\.com$" }`, fields: map[string]any{"customer.email": "a@example.com"}, want: true},
		{name: "no match", cond: `{ field: customer.email, matches: "@example\\.com$" }`, fields: map[string]any{"customer.email": "a@example.org"}, want: false},
		{name: "any tag", cond: `{ field: tags, matches: "^vip" }`, fields: map[string]any{"tags": []string{"x", "vip-gold"}}, want: true},
		{name: "absent", cond: `{ field: subject, matches: "." }`, want: false},
		{name: "number as text", cond: `{ field: custom.order, matches: "^[0-9]+$" }`, fields: map[string]any{"custom.order": 1234.0}, want: true},
		{name: "ignores case", cond: `{ field: customer.email, matches: "@example\\.com$" }`, fields: map[string]any{"customer.email": "Bob@Example.COM"}, want: true},
		{name: "ignores case on tags", cond: `{ field: tags, matches: "^VIP-" }`, fields: map[string]any{"tags": []string{"vip-gold"}}, want: true},
		{name: "case-sensitive on request", cond: `{ field: customer.email, matches: "(?-i)@example\\.com$" }`, fields: map[string]any{"customer.email": "Bob@Example.COM"}, want: false},
	})
}

func TestOperatorOrderNumbers(t *testing.T) {
	r := func(v any) map[string]any { return map[string]any{"survey_rating": v} }
	runOpCases(t, []opCase{
		{name: "lte equal", cond: "{ field: survey_rating, lte: 2 }", fields: r(2.0), want: true},
		{name: "lte above", cond: "{ field: survey_rating, lte: 2 }", fields: r(3.0), want: false, actual: 3.0},
		{name: "lte text number", cond: "{ field: survey_rating, lte: 2 }", fields: r("1"), want: true},
		{name: "lte absent", cond: "{ field: survey_rating, lte: 2 }", want: false},
		{name: "lte not a number", cond: "{ field: survey_rating, lte: 2 }", fields: r("bad"), want: false},
		{name: "lt", cond: "{ field: survey_rating, lt: 2 }", fields: r(2.0), want: false},
		{name: "gt", cond: "{ field: survey_rating, gt: 4.5 }", fields: r(5.0), want: true},
		{name: "gte", cond: "{ field: survey_rating, gte: 5 }", fields: r(5.0), want: true},
		{name: "derived", cond: "{ field: agent_replies, gte: 3 }", snap: &event.Snapshot{AgentReplies: 3}, want: true},
		{name: "derived below", cond: "{ field: agent_replies, gte: 3 }", snap: &event.Snapshot{AgentReplies: 2}, want: false, actual: 2.0},
		{name: "derived without snapshot", cond: "{ field: agent_replies, gte: 3 }", fields: map[string]any{"agent_replies": 4.0}, want: true},
		{name: "derived without anything", cond: "{ field: agent_replies, gte: 3 }", want: false, actual: 0.0},
		{name: "between", cond: "{ field: custom.idle_minutes, between: [5, 15] }", fields: map[string]any{"custom.idle_minutes": 10.0}, want: true},
		{name: "between low end", cond: "{ field: custom.idle_minutes, between: [5, 15] }", fields: map[string]any{"custom.idle_minutes": 5.0}, want: true},
		{name: "between high end", cond: "{ field: custom.idle_minutes, between: [5, 15] }", fields: map[string]any{"custom.idle_minutes": 15.0}, want: true},
		{name: "between below", cond: "{ field: custom.idle_minutes, between: [5, 15] }", fields: map[string]any{"custom.idle_minutes": 4.0}, want: false},
	})
}

func TestOperatorOrderEnums(t *testing.T) {
	p := func(v string) map[string]any { return map[string]any{"priority": v} }
	spoki := Options{ConnectorEnums: map[string]map[string][]string{"spoki": {"priority": {"bassa", "media", "alta"}}}}
	runOpCases(t, []opCase{
		{name: "gt", cond: "{ field: priority, gt: normal }", fields: p("high"), want: true},
		{name: "gt equal", cond: "{ field: priority, gt: normal }", fields: p("normal"), want: false, actual: "normal"},
		{name: "gte", cond: "{ field: priority, gte: normal }", fields: p("normal"), want: true},
		{name: "lt", cond: "{ field: priority, lt: high }", fields: p("low"), want: true},
		{name: "lte urgent", cond: "{ field: priority, lte: high }", fields: p("urgent"), want: false},
		{name: "case", cond: "{ field: priority, gt: normal }", fields: p("URGENT"), want: true},
		{name: "unknown value", cond: "{ field: priority, gt: low }", fields: p("critical"), want: false},
		{name: "between", cond: "{ field: priority, between: [normal, high] }", fields: p("high"), want: true},
		{name: "between outside", cond: "{ field: priority, between: [normal, high] }", fields: p("urgent"), want: false},
		{name: "per connector", cond: "{ field: priority, gt: bassa }", fields: p("alta"), conn: "spoki", opts: spoki, want: true},
		{name: "per connector, other connector's values", cond: "{ field: priority, gt: bassa }", fields: p("high"), conn: "spoki", opts: spoki, want: false},
		{name: "numeric enum", cond: "{ field: priority, gt: 2 }", fields: map[string]any{"priority": 3.0}, conn: "smartertrack",
			opts: Options{ConnectorEnums: map[string]map[string][]string{"smartertrack": {"priority": {"1", "2", "3", "4"}}}}, want: true},
		{name: "custom enum", cond: "{ field: custom.severity, gte: sev2 }", fields: map[string]any{"custom.severity": "sev3"},
			opts: Options{Enums: map[string][]string{"custom.severity": {"sev1", "sev2", "sev3"}}}, want: true},
	})
}

func TestOperatorOrderDurations(t *testing.T) {
	now := at(t, "2025-06-02T10:00:00Z")
	runOpCases(t, []opCase{
		{name: "age of a derived timestamp", cond: "{ field: status_since, gt: 15m }", snap: &event.Snapshot{StatusSince: now.Add(-20 * time.Minute)}, want: true},
		{name: "too young", cond: "{ field: status_since, gt: 15m }", snap: &event.Snapshot{StatusSince: now.Add(-10 * time.Minute)}, want: false},
		{name: "no timestamp", cond: "{ field: status_since, gt: 15m }", snap: &event.Snapshot{}, want: false},
		{name: "age of a timestamp field", cond: "{ field: custom.due_at, lt: 1h }", fields: map[string]any{"custom.due_at": "2025-06-02T09:30:00Z"}, want: true},
		{name: "days", cond: "{ field: last_customer_message_at, gte: 2d }", snap: &event.Snapshot{LastCustomerMessageAt: now.Add(-49 * time.Hour)}, want: true},
		{name: "duration text", cond: "{ field: custom.wait, gt: 15m }", fields: map[string]any{"custom.wait": "20m"}, want: true},
		{name: "duration seconds", cond: "{ field: custom.wait, gt: 15m }", fields: map[string]any{"custom.wait": 1200.0}, want: true},
		{name: "duration seconds below", cond: "{ field: custom.wait, gt: 15m }", fields: map[string]any{"custom.wait": 600.0}, want: false},
		{name: "between durations", cond: "{ field: last_activity_at, between: [5m, 15m] }", snap: &event.Snapshot{LastActivityAt: now.Add(-7 * time.Minute)}, want: true},
		{name: "between durations outside", cond: "{ field: last_activity_at, between: [5m, 15m] }", snap: &event.Snapshot{LastActivityAt: now.Add(-16 * time.Minute)}, want: false},
		{name: "absolute timestamp", cond: `{ field: custom.due_at, lt: "2025-06-01T00:00:00Z" }`, fields: map[string]any{"custom.due_at": "2025-05-01T00:00:00Z"}, want: true},
		{name: "text is not a duration", cond: "{ field: custom.wait, gt: 15m }", fields: map[string]any{"custom.wait": "long"}, want: false},
	})
}

func TestOperatorPresence(t *testing.T) {
	runOpCases(t, []opCase{
		{name: "present", cond: "{ field: owner, present: true }", fields: map[string]any{"owner": "alice"}, want: true},
		{name: "present empty", cond: "{ field: owner, present: true }", fields: map[string]any{"owner": ""}, want: false},
		{name: "present absent", cond: "{ field: owner, present: true }", want: false},
		{name: "present empty tags", cond: "{ field: tags, present: true }", fields: map[string]any{"tags": []string{}}, want: false},
		{name: "present false", cond: "{ field: owner, present: false }", want: true},
		{name: "absent", cond: "{ field: owner, absent: true }", want: true},
		{name: "absent null", cond: "{ field: owner, absent: true }", fields: map[string]any{"owner": nil}, want: true},
		{name: "absent set", cond: "{ field: owner, absent: true }", fields: map[string]any{"owner": "bob"}, want: false, actual: "bob"},
		{name: "derived zero time", cond: "{ field: last_agent_message_at, absent: true }", snap: &event.Snapshot{}, want: true},
	})
}

func TestOperatorTags(t *testing.T) {
	tags := func(v ...string) map[string]any { return map[string]any{"tags": v} }
	runOpCases(t, []opCase{
		{name: "includes any", cond: "{ field: tags, includes: [vip, gold] }", fields: tags("gold", "x"), want: true},
		{name: "includes none", cond: "{ field: tags, includes: [vip, gold] }", fields: tags("silver"), want: false},
		{name: "includes case", cond: "{ field: tags, includes: vip }", fields: tags("VIP"), want: true},
		{name: "includes absent", cond: "{ field: tags, includes: vip }", want: false},
		{name: "includes []any", cond: "{ field: tags, includes: vip }", fields: map[string]any{"tags": []any{"vip"}}, want: true},
		{name: "excludes", cond: "{ field: tags, excludes: [spam] }", fields: tags("vip"), want: true},
		{name: "excludes hit", cond: "{ field: tags, excludes: [spam, junk] }", fields: tags("junk"), want: false},
		{name: "excludes absent", cond: "{ field: tags, excludes: spam }", want: true},
		{name: "includes_all", cond: "{ field: tags, includes_all: [a, b] }", fields: tags("a", "b", "c"), want: true},
		{name: "includes_all partial", cond: "{ field: tags, includes_all: [a, b] }", fields: tags("a"), want: false},
	})
}

func TestOperatorTimeOfDay(t *testing.T) {
	rome := Options{Location: mustLoc(t, "Europe/Rome")}
	runOpCases(t, []opCase{
		{name: "inside", cond: `{ time_of_day: "09:00-17:30" }`, now: "2025-06-02T10:00:00Z", want: true},
		{name: "start inclusive", cond: `{ time_of_day: "09:00-17:30" }`, now: "2025-06-02T09:00:00Z", want: true},
		{name: "end exclusive", cond: `{ time_of_day: "09:00-17:30" }`, now: "2025-06-02T17:30:00Z", want: false, actual: "17:30 UTC"},
		{name: "before", cond: `{ time_of_day: "09:00-17:30" }`, now: "2025-06-02T08:59:00Z", want: false},
		{name: "across midnight, late", cond: `{ time_of_day: "22:00-06:00" }`, now: "2025-06-02T23:00:00Z", want: true},
		{name: "across midnight, early", cond: `{ time_of_day: "22:00-06:00" }`, now: "2025-06-02T05:59:00Z", want: true},
		{name: "across midnight, end", cond: `{ time_of_day: "22:00-06:00" }`, now: "2025-06-02T06:00:00Z", want: false},
		{name: "across midnight, noon", cond: `{ time_of_day: "22:00-06:00" }`, now: "2025-06-02T12:00:00Z", want: false},
		{name: "until midnight", cond: `{ time_of_day: "18:00-24:00" }`, now: "2025-06-02T23:59:00Z", want: true},
		{name: "condition tz", cond: `{ time_of_day: "09:00-10:00", tz: Europe/Rome }`, now: "2025-06-02T07:30:00Z", want: true},
		{name: "condition tz outside", cond: `{ time_of_day: "09:00-10:00", tz: Europe/Rome }`, now: "2025-06-02T09:30:00Z", want: false, actual: "11:30 CEST"},
		{name: "gateway zone", cond: `{ time_of_day: "09:00-10:00" }`, now: "2025-06-02T07:30:00Z", opts: rome, want: true},
		{name: "condition tz beats gateway zone", cond: `{ time_of_day: "09:00-10:00", tz: UTC }`, now: "2025-06-02T09:30:00Z", opts: rome, want: true},
		// DST days in Europe/Rome: 2025-03-30 02:00 CET -> 03:00 CEST; 2025-10-26 03:00 CEST -> 02:00 CET.
		{name: "spring forward, before the gap", cond: `{ time_of_day: "01:30-03:30", tz: Europe/Rome }`, now: "2025-03-30T00:45:00Z", want: true},
		{name: "spring forward, after the gap", cond: `{ time_of_day: "01:30-03:30", tz: Europe/Rome }`, now: "2025-03-30T01:15:00Z", want: true},
		{name: "spring forward, past the window", cond: `{ time_of_day: "01:30-03:30", tz: Europe/Rome }`, now: "2025-03-30T01:45:00Z", want: false, actual: "03:45 CEST"},
		{name: "business hours follow summer time", cond: `{ time_of_day: "09:00-18:00", tz: Europe/Rome }`, now: "2025-03-30T07:30:00Z", want: true},
		{name: "business hours the day before", cond: `{ time_of_day: "09:00-18:00", tz: Europe/Rome }`, now: "2025-03-29T07:30:00Z", want: false},
		{name: "fall back, first 02:15", cond: `{ time_of_day: "02:00-02:30", tz: Europe/Rome }`, now: "2025-10-26T00:15:00Z", want: true},
		{name: "fall back, second 02:15", cond: `{ time_of_day: "02:00-02:30", tz: Europe/Rome }`, now: "2025-10-26T01:15:00Z", want: true},
	})
}

func TestOperatorDayOfWeek(t *testing.T) {
	runOpCases(t, []opCase{
		{name: "monday", cond: "{ day_of_week: [mon, tue] }", now: "2025-06-02T10:00:00Z", want: true},
		{name: "sunday", cond: "{ day_of_week: [mon, tue] }", now: "2025-06-01T10:00:00Z", want: false, actual: "sun"},
		{name: "range", cond: "{ day_of_week: mon-fri }", now: "2025-06-06T10:00:00Z", want: true},
		{name: "range excludes saturday", cond: "{ day_of_week: mon-fri }", now: "2025-06-07T10:00:00Z", want: false},
		{name: "wrapping range", cond: "{ day_of_week: fri-mon }", now: "2025-06-01T10:00:00Z", want: true},
		{name: "weekend", cond: "{ day_of_week: weekend }", now: "2025-06-07T10:00:00Z", want: true},
		{name: "full names", cond: "{ day_of_week: [Monday] }", now: "2025-06-02T10:00:00Z", want: true},
		{name: "zone moves the day", cond: "{ day_of_week: mon, tz: Europe/Rome }", now: "2025-06-01T23:30:00Z", want: true},
		{name: "zone moves the day back", cond: "{ day_of_week: sun, tz: America/New_York }", now: "2025-06-02T02:00:00Z", want: true},
	})
}

// Time of day and day of week are those of the event, not of its
// processing: a change made at 17:59 is made in business hours, even when a
// backlog or a replay days later processes it after 18:00.
func TestTimeConditionsJudgeTheEventTime(t *testing.T) {
	const hours = `{ time_of_day: "09:00-18:00", tz: America/New_York }`
	const weekdays = `{ day_of_week: mon-fri, tz: America/New_York }`
	runOpCases(t, []opCase{
		// Monday 2026-01-05: 17:59 EST is 22:59Z.
		{name: "occurred 17:59, processed 18:01", cond: hours, occurred: "2026-01-05T22:59:00Z", received: "2026-01-05T23:00:30Z", now: "2026-01-05T23:01:00Z", want: true},
		{name: "occurred 18:01, processed 18:01", cond: hours, occurred: "2026-01-05T23:01:00Z", now: "2026-01-05T23:01:00Z", want: false, actual: "18:01 EST"},
		{name: "occurred 08:59, processed 09:30", cond: hours, occurred: "2026-01-05T13:59:00Z", now: "2026-01-05T14:30:00Z", want: false, actual: "08:59 EST"},
		{name: "replayed days later", cond: hours, occurred: "2026-01-05T15:00:00Z", now: "2026-01-10T03:00:00Z", want: true},
		{name: "no occurred_at: the receive time", cond: hours, received: "2026-01-05T22:59:00Z", now: "2026-01-05T23:01:00Z", want: true},
		{name: "no time at all: now", cond: hours, now: "2026-01-05T23:01:00Z", want: false, actual: "18:01 EST"},
		{name: "an occurred_at ahead of now counts as now", cond: hours, occurred: "2026-01-05T23:30:00Z", now: "2026-01-05T22:30:00Z", want: true},
		// Friday 2026-01-09 17:00 EST, replayed on Saturday.
		{name: "weekday of the event", cond: weekdays, occurred: "2026-01-09T22:00:00Z", now: "2026-01-10T15:00:00Z", want: true},
		{name: "weekend event processed on Monday", cond: weekdays, occurred: "2026-01-10T15:00:00Z", now: "2026-01-12T15:00:00Z", want: false, actual: "sat"},
	})
}

// A timer.fired event's own time is its due time: a timer due at 17:59 that
// the scheduler runs at 18:01 is judged at 17:59.
func TestTimerTimeOfDayJudgedAtItsDueTime(t *testing.T) {
	src := `rules:
  - id: pending-in-hours
    on: [ticket.*]
    when:
      all:
        - { field: status, is: pending }
        - { time_of_day: "09:00-18:00", tz: America/New_York }
    for: 1h
    then: [ { set_priority: high } ]
`
	s := mustCompile(t, src, Options{})
	due := at(t, "2026-01-05T22:59:00Z") // 17:59 EST
	for _, tc := range []struct {
		name     string
		occurred time.Time
		now      time.Time
		want     bool
	}{
		{"fired on time", due, due, true},
		{"fired two minutes late", due, due.Add(2 * time.Minute), true},
		{"due after hours", due.Add(2 * time.Minute), due.Add(2 * time.Minute), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap := &event.Snapshot{Fields: map[string]any{"status": "pending"},
				Clocks: map[string]*event.RuleClock{"pending-in-hours": {Since: tc.occurred.Add(-time.Hour)}}}
			ev := mkEvent(event.TypeTimerFired, nil)
			ev.Rule = "pending-in-hours"
			ev.OccurredAt = tc.occurred
			ev.ReceivedAt = tc.now
			res := s.Evaluate(Input{Event: ev, Snapshot: snap, Now: tc.now})
			if got := matched(res, "pending-in-hours"); got != tc.want {
				t.Fatalf("matched = %v, want %v (trace %+v)", got, tc.want, res.Trace)
			}
		})
	}
}

func TestOperatorTrees(t *testing.T) {
	f := map[string]any{"status": "open", "priority": "high"}
	runOpCases(t, []opCase{
		{name: "all", cond: "{ all: [ { field: status, is: open }, { field: priority, is: high } ] }", fields: f, want: true},
		{name: "all fails on second", cond: "{ all: [ { field: status, is: open }, { field: priority, is: low } ] }", fields: f, want: false, actual: "high"},
		{name: "list means all", cond: "[ { field: status, is: open }, { field: priority, is: high } ]", fields: f, want: true},
		{name: "any", cond: "{ any: [ { field: status, is: solved }, { field: priority, is: high } ] }", fields: f, want: true},
		{name: "any fails with the first", cond: "{ any: [ { field: status, is: solved }, { field: priority, is: low } ] }", fields: f, want: false, actual: "open"},
		{name: "not", cond: "{ not: { field: status, is: solved } }", fields: f, want: true},
		{name: "not fails", cond: "{ not: { field: status, is: open } }", fields: f, want: false, actual: "open"},
		{name: "nested", cond: "{ all: [ { any: [ { field: status, is: pending }, { not: { field: priority, is: low } } ] }, { field: tags, excludes: spam } ] }", fields: f, want: true},
	})
}

func TestRuleTimezone(t *testing.T) {
	src := `rules:
  - id: r
    on: ["*"]
    timezone: America/New_York
    when: { time_of_day: "09:00-17:00" }
    then: [ { log: { file: a.log, line: x } } ]
`
	s := mustCompile(t, src, Options{Location: mustLoc(t, "Asia/Tokyo")})
	for now, want := range map[string]bool{"2025-06-02T14:00:00Z": true, "2025-06-02T12:00:00Z": false} {
		res := s.Evaluate(Input{Event: mkEvent("ticket.updated", nil), Now: at(t, now)})
		if matched(res, "r") != want {
			t.Errorf("at %s matched = %v, want %v", now, !want, want)
		}
	}
	if got := s.Rule("r").Timezone; got != "America/New_York" {
		t.Errorf("Timezone = %q", got)
	}
}

func TestFailedConditionText(t *testing.T) {
	s := mustCompile(t, oneRule("{ all: [ { field: status, is: open }, { field: priority, gt: normal } ] }"), Options{})
	res := s.Evaluate(Input{Event: mkEvent("ticket.updated", map[string]any{"status": "open", "priority": "low"}), Now: at(t, "2025-06-02T10:00:00Z")})
	te := traceOf(res, "r")
	want := FailedCondition{Condition: "priority gt normal", Field: "priority", Actual: "low", Pos: "rules.yaml:4:49"}
	if te == nil || te.Failed == nil || *te.Failed != want {
		t.Fatalf("failed = %+v, want %+v", te.Failed, want)
	}
}

// The trace of a failed change operator shows the change, or, when the
// event does not change the field, "unchanged: <its value>"; nil only for a
// field that is really absent.
func TestFailedChangeConditionActual(t *testing.T) {
	inactive := &event.Snapshot{Fields: map[string]any{"session_state": "inactive", "tags": []string{"a", "b"}}}
	for _, tc := range []struct {
		name    string
		cond    string
		fields  map[string]any
		changes map[string]event.Change
		snap    *event.Snapshot
		want    any
	}{
		{name: "changed_to, unchanged in the snapshot", cond: "{ field: session_state, changed_to: inactive }", snap: inactive, want: "unchanged: inactive"},
		{name: "changed_to, unchanged in the event", cond: "{ field: session_state, changed_to: inactive }", fields: map[string]any{"session_state": "inactive"}, want: "unchanged: inactive"},
		{name: "changed_from, unchanged", cond: "{ field: session_state, changed_from: active }", snap: inactive, want: "unchanged: inactive"},
		{name: "changed, unchanged list", cond: "{ field: tags, changed: true }", snap: inactive, want: "unchanged: [a b]"},
		{name: "changed, unchanged number", cond: "{ field: survey_rating, changed: true }", fields: map[string]any{"survey_rating": 2.0}, want: "unchanged: 2"},
		{name: "changed_to, unchanged empty text", cond: "{ field: owner, changed_to: ann }", fields: map[string]any{"owner": ""}, want: "unchanged: "},
		{name: "changed_to, absent", cond: "{ field: session_state, changed_to: inactive }", want: nil},
		{name: "changed_to, absent with a snapshot", cond: "{ field: priority, changed_to: high }", snap: inactive, want: nil},
		{name: "changed_to another value", cond: "{ field: session_state, changed_to: inactive }", snap: inactive,
			changes: map[string]event.Change{"session_state": {From: "inactive", To: "active"}}, want: event.Change{From: "inactive", To: "active"}},
		{name: "not_changed, changed", cond: "{ field: session_state, not_changed: true }", snap: inactive,
			changes: map[string]event.Change{"session_state": {From: "active", To: "inactive"}}, want: event.Change{From: "active", To: "inactive"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mustCompile(t, oneRule(tc.cond), Options{})
			ev := mkEvent("ticket.updated", tc.fields)
			ev.Changes = tc.changes
			res := s.Evaluate(Input{Event: ev, Snapshot: tc.snap, Now: at(t, "2025-06-02T10:00:00Z")})
			te := traceOf(res, "r")
			if te == nil || te.Failed == nil {
				t.Fatalf("no failed condition: %+v", res.Trace)
			}
			if !reflect.DeepEqual(te.Failed.Actual, tc.want) {
				t.Fatalf("actual = %#v, want %#v", te.Failed.Actual, tc.want)
			}
		})
	}
}
