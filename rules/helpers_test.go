package rules

import (
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/internal/yamlconf"
)

// compileSrc parses src as the file rules.yaml and compiles it.
func compileSrc(t testing.TB, src string, opts Options) (*Set, yamlconf.Errors) {
	t.Helper()
	n, errs := yamlconf.Parse("rules.yaml", []byte(src), nil)
	if len(errs) > 0 {
		t.Fatalf("parse: %v", errs)
	}
	return Compile([]File{{Name: "rules.yaml", Node: n}}, opts)
}

// mustCompile compiles src and fails the test on any error.
func mustCompile(t testing.TB, src string, opts Options) *Set {
	t.Helper()
	s, errs := compileSrc(t, src, opts)
	if len(errs) > 0 {
		t.Fatalf("compile:\n%v", errs)
	}
	if s == nil {
		t.Fatal("compile returned a nil set without errors")
	}
	return s
}

// compileFails compiles src, expects errors and returns them as text.
func compileFails(t testing.TB, src string, opts Options) string {
	t.Helper()
	s, errs := compileSrc(t, src, opts)
	if len(errs) == 0 {
		t.Fatalf("compile succeeded, want an error; source:\n%s", src)
	}
	if s != nil {
		t.Fatal("compile returned a set together with errors")
	}
	return errs.Error()
}

// oneRule wraps a condition (YAML flow text) into a rule on every event
// type; the condition sits on line 4 of rules.yaml.
func oneRule(cond string) string {
	return "rules:\n  - id: r\n    on: [\"*\"]\n    when: " + cond + "\n    then: [ { log: { file: a.log, line: hit } } ]\n"
}

// mkEvent builds an event of the zendesk connector on ticket 42.
func mkEvent(typ string, fields map[string]any) *event.Event {
	return &event.Event{ID: "ev1", Connector: "zendesk", Type: typ, Entity: "ticket", Reference: "42",
		Fields: fields, Vars: map[string]string{"TICKET_REFERENCE": "42"}}
}

func matched(res Result, id string) bool {
	for _, m := range res.Matched {
		if m == id {
			return true
		}
	}
	return false
}

func traceOf(res Result, id string) *TraceEntry {
	for i := range res.Trace {
		if res.Trace[i].Rule == id {
			return &res.Trace[i]
		}
	}
	return nil
}

func mustContain(t testing.TB, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("missing %q in:\n%s", w, got)
		}
	}
}

// at parses an RFC 3339 time or fails.
func at(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustLoc(t testing.TB, name string) *time.Location {
	t.Helper()
	l, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
