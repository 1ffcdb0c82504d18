package rules

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/hookline/hookline/internal/yamlconf"
)

// fastTemplate renders the common simple templates (text with %%VAR%%,
// {{ .Rule }}, {{ .Event.Reference }}, {{ .Fields.status }}, {{ .Var "X" }},
// {{ .Field "path" }}) without text/template: same output and errors, a
// fraction of the time and allocations. Anything else uses text/template.
type fastTemplate struct {
	parts []fastPart
}

type fastKind uint8

const (
	fLit fastKind = iota
	fRule
	fEvent  // a string member of the event (arg: member name)
	fActor  // a member of the event's actor
	fFields // .Fields.<key>
	fVar    // .Var "NAME" or %%NAME%%
	fField  // .Field "path"
)

type fastPart struct {
	kind fastKind
	lit  string // fLit: the text; others: the action's source for errors
	arg  string
	ref  fieldRef // fField
}

var (
	fastAction = regexp.MustCompile(`\{\{|%%([A-Za-z_][A-Za-z0-9_]*)%%`)
	fastExpr   = regexp.MustCompile(`^\s*(?:\.(Rule)|\.Event\.(ID|Type|Connector|Entity|Reference|InboxID)|\.Event\.Actor\.(Type|ID|Name|Email)|\.Fields\.([A-Za-z_][A-Za-z0-9_]*)|\.Var\s+"([A-Za-z_][A-Za-z0-9_]*)"|\.Field\s+"([A-Za-z_][A-Za-z0-9_.-]*)")\s*$`)
)

// compileFast returns a fast template for src, or nil when src needs text/template.
func compileFast(src string) *fastTemplate {
	t := &fastTemplate{}
	rest := src
	for rest != "" {
		loc := fastAction.FindStringSubmatchIndex(rest)
		if loc == nil {
			t.parts = append(t.parts, fastPart{kind: fLit, lit: rest})
			break
		}
		if loc[0] > 0 {
			t.parts = append(t.parts, fastPart{kind: fLit, lit: rest[:loc[0]]})
		}
		if loc[2] >= 0 { // %%NAME%%
			name := rest[loc[2]:loc[3]]
			t.parts = append(t.parts, fastPart{kind: fVar, arg: name, lit: `.Var "` + name + `"`})
			rest = rest[loc[1]:]
			continue
		}
		end := strings.Index(rest[loc[1]:], "}}")
		if end < 0 {
			return nil
		}
		body := rest[loc[1] : loc[1]+end]
		if strings.HasPrefix(body, "-") || strings.HasSuffix(body, "-") || strings.Contains(body, "{{") {
			return nil
		}
		m := fastExpr.FindStringSubmatch(body)
		if m == nil {
			return nil
		}
		p := fastPart{lit: strings.TrimSpace(body)}
		switch {
		case m[1] != "":
			p.kind = fRule
		case m[2] != "":
			p.kind, p.arg = fEvent, m[2]
		case m[3] != "":
			p.kind, p.arg = fActor, m[3]
		case m[4] != "":
			p.kind, p.arg = fFields, m[4]
		case m[5] != "":
			p.kind, p.arg = fVar, m[5]
		case m[6] != "":
			p.kind, p.arg, p.ref = fField, m[6], newFieldRef(m[6])
		}
		t.parts = append(t.parts, p)
		rest = rest[loc[1]+end+2:]
	}
	return t
}

// execute renders the template as text/template would.
func (t *fastTemplate) execute(d *TemplateData) (string, error) {
	if len(t.parts) == 1 {
		return t.parts[0].render(d)
	}
	var b strings.Builder
	for i := range t.parts {
		s, err := t.parts[i].render(d)
		if err != nil {
			return "", err
		}
		b.WriteString(s)
	}
	return b.String(), nil
}

func (p *fastPart) render(d *TemplateData) (string, error) {
	ev := d.Event
	switch p.kind {
	case fLit:
		return p.lit, nil
	case fRule:
		return d.Rule, nil
	case fEvent:
		switch p.arg {
		case "ID":
			return ev.ID, nil
		case "Type":
			return ev.Type, nil
		case "Connector":
			return ev.Connector, nil
		case "Entity":
			return ev.Entity, nil
		case "Reference":
			return ev.Reference, nil
		case "InboxID":
			return ev.InboxID, nil
		}
	case fActor:
		switch p.arg {
		case "Type":
			return ev.Actor.Type, nil
		case "ID":
			return ev.Actor.ID, nil
		case "Name":
			return ev.Actor.Name, nil
		case "Email":
			return ev.Actor.Email, nil
		}
	case fFields:
		v, ok := d.lookup(p.arg)
		if !ok {
			return "", fmt.Errorf("executing at <%s>: map has no entry for key %q", p.lit, p.arg)
		}
		return yamlconf.TextOf(v), nil
	case fVar:
		s, err := d.Var(p.arg)
		if err != nil {
			return "", fmt.Errorf("executing at <%s>: error calling Var: %w", p.lit, err)
		}
		return s, nil
	case fField:
		v := p.ref.get(d.Event, d.snap).box()
		if v == nil {
			return "", nil
		}
		return yamlconf.TextOf(v), nil
	}
	return "", nil
}
