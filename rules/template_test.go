package rules

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/internal/yamlconf"
	"gopkg.in/yaml.v3"
)

// TestFastTemplatesRenderLikeTextTemplate: the fast path must give the same
// output, and fail where text/template fails.
func TestFastTemplatesRenderLikeTextTemplate(t *testing.T) {
	ev := &event.Event{ID: "e1", InboxID: "i1", Connector: "spoki", Type: "message.received", Entity: "message", Reference: "m-1",
		Actor:  event.Actor{Type: "customer", ID: "c1", Name: "Ann", Email: "ann@example.com"},
		Fields: map[string]any{"text": "hi", "rating": 2.0, "tags": []string{"a", "b"}, "none": nil, "flag": true},
		Vars:   map[string]string{"TICKET_REFERENCE": "T-1", "EMPTY": ""}}
	snap := &event.Snapshot{Fields: map[string]any{"status": "open", "text": "older"}, AgentReplies: 3}
	srcs := []string{
		"plain text", "", "%%TICKET_REFERENCE%%", "ref %%TICKET_REFERENCE%%/%%EMPTY%%!", `{{ .Var "TICKET_REFERENCE" }}`,
		"{{.Rule}}", "{{ .Event.ID }} {{ .Event.InboxID }} {{ .Event.Type }} {{ .Event.Connector }} {{ .Event.Entity }} {{ .Event.Reference }}",
		"{{ .Event.Actor.Type }}:{{ .Event.Actor.ID }}:{{ .Event.Actor.Name }}:{{ .Event.Actor.Email }}",
		"{{ .Fields.status }} {{ .Fields.text }} {{ .Fields.rating }} {{ .Fields.tags }} {{ .Fields.flag }}", "{{ .Fields.none }}",
		`{{ .Field "status" }}|{{ .Field "agent_replies" }}|{{ .Field "missing" }}|{{ .Field "actor.name" }}|{{ .Field "tags" }}`,
		"%%MISSING%%", `{{ .Var "MISSING" }}`, "{{ .Fields.missing }}", "a %% b %%c", "100%",
	}
	for _, src := range srcs {
		fast := compileFast(src)
		if fast == nil {
			t.Errorf("%q: not compiled by the fast path", src)
			continue
		}
		slow, err := yamlconf.CompileStrictTemplate("t", src)
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		d1 := newTemplateData(ev, snap, time.Now())
		d1.Rule = "r1"
		d2 := newTemplateData(ev, snap, time.Now())
		d2.Rule = "r1"
		d2.complete()
		got, err1 := fast.execute(d1)
		want, err2 := yamlconf.Execute(slow, d2)
		if (err1 != nil) != (err2 != nil) {
			t.Errorf("%q: fast error %v, text/template error %v", src, err1, err2)
			continue
		}
		if err1 == nil && got != want {
			t.Errorf("%q: fast %q, text/template %q", src, got, want)
		}
	}
	// Numbers print as plain digits when whole, on both paths.
	ev.Fields["amount"], ev.Fields["ratio"] = 1e6, 0.125
	for src, want := range map[string]string{
		`{{ .Field "amount" }}/{{ .Fields.amount }}/{{ .Field "ratio" }}`: "1000000/1000000/0.125",
		`{{ if .Fields.amount }}{{ .Field "amount" }}{{ end }}`:           "1000000",
	} {
		d := newTemplateData(ev, snap, time.Now())
		if fast := compileFast(src); fast != nil {
			if got, err := fast.execute(d); err != nil || got != want {
				t.Errorf("%q: fast %q, %v, want %q", src, got, err, want)
			}
		}
		slow, err := yamlconf.CompileRenderer("t", src)
		if err != nil {
			t.Fatal(err)
		}
		d.complete()
		if got, err := slow.Execute(d); err != nil || got != want {
			t.Errorf("%q: template %q, %v, want %q", src, got, err, want)
		}
		if got, err := yamlconf.Execute(slow.Template(), d); err != nil || got != want {
			t.Errorf("%q: text/template %q, %v, want %q", src, got, err, want)
		}
	}
	for _, src := range []string{"{{ .Now }}", "{{ .Fields.status | upper }}", "{{- .Rule }}", `{{ if .Rule }}x{{ end }}`, "{{ .Event.Referense }}", "{{ .Event.Fields.x }}", "{{ .Rule "} {
		if compileFast(src) != nil {
			t.Errorf("%q: taken by the fast path", src)
		}
	}
}

// shippedRuleTemplates returns every template string of configs/rules/*.yaml.
func shippedRuleTemplates(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../configs/rules/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no shipped rules: %v", err)
	}
	var out []string
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode && yamlconf.IsTemplate(n.Value) {
			out = append(out, n.Value)
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var root yaml.Node
		if err := yaml.Unmarshal(data, &root); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		walk(&root)
	}
	return out
}

// TestShippedRuleTemplatesPlanMatchesTextTemplate: every template of the
// shipped rules renders the same through the renderer's plan as through
// text/template, for an event that has the variables and one that lacks
// them; each has a plan, and the plan renders the complete event itself.
func TestShippedRuleTemplatesPlanMatchesTextTemplate(t *testing.T) {
	srcs := shippedRuleTemplates(t)
	if len(srcs) < 10 {
		t.Fatalf("only %d templates found in the shipped rules", len(srcs))
	}
	full := &event.Event{ID: "01EVT", Connector: "smartertrack", Type: "ticket.priority_changed", Entity: "ticket", Reference: "T-77",
		Actor:  event.Actor{Type: "agent", ID: "a1", Name: "Bob <b@example.com>", Email: "b@example.com"},
		Fields: map[string]any{"priority": "high", "subject": `Refund "asap" & more`, "survey_rating": 2.0, "text": "bad", "customer.email": "c@example.com", "customer.phone": "+39 333", "owner": "ann", "group": "billing"},
		Vars:   map[string]string{"TICKET_REFERENCE": "T-77", "CUSTOMER_PHONE": "+39 333", "TICKET_NUMBER": "77"}}
	bare := &event.Event{ID: "01EVU", Type: "timer.fired", Entity: "call", Reference: "c-1"}
	snap := &event.Snapshot{Fields: map[string]any{"status": "pending"}, AgentReplies: 2}
	now := time.Date(2024, 5, 6, 7, 8, 9, 0, time.FixedZone("CEST", 2*3600))
	for _, src := range srcs {
		tmpl, err := yamlconf.CompileTemplate("template", src)
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		r := yamlconf.NewRenderer(tmpl)
		if !r.Planned() {
			t.Errorf("%q: no plan: %s", src, yamlconf.PlanReport(tmpl))
		}
		for i, ev := range []*event.Event{full, bare} {
			d := newTemplateData(ev, snap, now)
			d.Rule = "r1"
			d.complete()
			want, werr := yamlconf.Execute(tmpl, d)
			got, gerr := r.Execute(d)
			if got != want || fmt.Sprint(gerr) != fmt.Sprint(werr) {
				t.Errorf("%q event %d:\n got %q, %v\nwant %q, %v", src, i, got, gerr, want, werr)
			}
			b, ran := r.AppendPlanned(nil, d)
			if ran && (werr != nil || string(b) != want) {
				t.Errorf("%q event %d: plan rendered %q; text/template %q, %v", src, i, b, want, werr)
			}
			if ev == full && !ran {
				t.Errorf("%q: the plan did not render the complete event", src)
			}
		}
	}
}

// A field cleared by a change (present in the snapshot, null) is absent for
// templates on every path: .Fields and .Snapshot.Fields fail like a missing
// key, .Field renders "", and "<no value>" is never printed.
func TestTemplateNullFieldIsAbsent(t *testing.T) {
	prior := &event.Snapshot{Fields: map[string]any{"owner": "123", "status": "open"}}
	ev := mkEvent("ticket.assigned", map[string]any{"status": "open", "custom.cleared": nil})
	ev.Changes = map[string]event.Change{"owner": {From: "123", To: nil}}
	snap := event.Apply(prior, ev)
	if v, ok := snap.Fields["owner"]; !ok || v != nil {
		t.Fatalf("setup: the snapshot should hold owner: null, has %v %v", v, ok)
	}
	cases := []struct {
		name, action string
		want         string // the rendered text; "" when the rule must fail
	}{
		{"fast .Fields", `send_message: "Handled by {{ .Fields.owner }}"`, ""},
		{"text/template .Fields", `send_message: "Handled by {{ .Fields.owner | upper }}"`, ""},
		{"text/template if .Fields", `send_message: "{{ if .Fields.owner }}Handled by {{ .Fields.owner }}{{ else }}Unassigned{{ end }}"`, ""},
		{"index .Fields", `send_message: "Handled by {{ index .Fields \"owner\" }}"`, ""},
		{".Snapshot.Fields", `send_message: "Handled by {{ .Snapshot.Fields.owner }}"`, ""},
		{".Event.Fields", `send_message: "Cleared {{ index .Event.Fields \"custom.cleared\" }}"`, ""},
		{"index absent key", `send_message: "Order {{ index .Fields \"custom.order_id\" }}"`, ""},
		{".Event.Changes", `send_message: "Was {{ .Event.Changes.owner.From }}, now {{ .Event.Changes.owner.To }}"`, ""},
		{"webhook body", `call_webhook: { url: "https://ops.example.com/x", body: { owner: "{{ .Fields.owner }}" } }`, ""},
		{"set_group", `set_group: "{{ .Fields.owner }}"`, ""},
		{".Field default", `send_message: "Handled by {{ .Field \"owner\" | default \"nobody\" }}"`, "Handled by nobody"},
		{"fast .Field", `send_message: "Handled by {{ .Field \"owner\" }}."`, "Handled by ."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := mustCompile(t, "rules:\n  - id: r\n    on: [ticket.assigned]\n    then:\n      - "+tc.action+"\n", Options{})
			res := s.Evaluate(Input{Event: ev, Snapshot: snap, Now: time.Now()})
			for _, u := range res.Updates {
				text := fmt.Sprintf("%v", u.Set)
				if u.Message != nil {
					text += u.Message.Text
				}
				if u.Webhook != nil {
					text += u.Webhook.Body
				}
				if strings.Contains(text, "no value") {
					t.Fatalf("rendered %q", text)
				}
			}
			if tc.want == "" {
				if len(res.Updates) != 0 || len(res.Errors) != 1 {
					t.Fatalf("want a RuleError, got updates %+v errors %+v", res.Updates, res.Errors)
				}
				return
			}
			if len(res.Updates) != 1 || res.Updates[0].Message == nil || res.Updates[0].Message.Text != tc.want {
				t.Fatalf("want %q, got updates %+v errors %+v", tc.want, res.Updates, res.Errors)
			}
		})
	}
}
