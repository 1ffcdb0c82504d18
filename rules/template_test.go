package rules

import (
	"testing"
	"time"

	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/internal/yamlconf"
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
		slow, err := yamlconf.CompileTemplate("t", src)
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
	for _, src := range []string{"{{ .Now }}", "{{ .Fields.status | upper }}", "{{- .Rule }}", `{{ if .Rule }}x{{ end }}`, "{{ .Event.Referense }}", "{{ .Event.Fields.x }}", "{{ .Rule "} {
		if compileFast(src) != nil {
			t.Errorf("%q: taken by the fast path", src)
		}
	}
}
