package rules

import (
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/internal/yamlconf"
)

// FuzzCompile: any rules file compiles or fails with positioned errors,
// never panics; a compiled set evaluates and runs without panicking.
func FuzzCompile(f *testing.F) {
	for _, seed := range []string{zendeskRules, spokiRules, smarterTrackRules, spotterRules, genRules(5, 1),
		oneRule("{ field: status, is: open }"), oneRule(noMatchTree), oneRule(`{ time_of_day: "22:00-06:00", tz: Europe/Rome }`),
		"rules:\n  - id: r\n    on: x\n    then: [ { set_status: [} ]\n", "rules: 5\n", "", "rules:\n  - id: r\n    on: ticket.*\n    then: [ { add_tags: a }, { remove_tags: a } ]\n",
	} {
		f.Add(seed)
	}
	ev := &event.Event{ID: "e", Connector: "zendesk", Type: "ticket.updated", Entity: "ticket", Reference: "1",
		Fields: map[string]any{"status": "open", "priority": "high", "text": "billing", "tags": []string{"vip"}},
		Vars:   map[string]string{"TICKET_REFERENCE": "1"}, Changes: map[string]event.Change{"status": {From: "new", To: "open"}}}
	f.Fuzz(func(t *testing.T, src string) {
		n, errs := yamlconf.Parse("f.yaml", []byte(src), nil)
		if len(errs) > 0 {
			return
		}
		s, errs := Compile([]File{{Name: "f.yaml", Node: n}}, Options{})
		if len(errs) > 0 {
			if s != nil {
				t.Fatal("set with errors")
			}
			for _, e := range errs {
				if e.Pos.File != "f.yaml" || e.Msg == "" {
					t.Fatalf("unpositioned error %+v", e)
				}
			}
			return
		}
		now := time.Date(2025, 3, 30, 1, 30, 0, 0, time.UTC)
		s.Evaluate(Input{Event: ev, Now: now})
		for _, r := range s.Rules() {
			if _, err := s.Run(r.ID, Input{Event: ev, Snapshot: &event.Snapshot{}, Now: now}); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// FuzzContainsWord compares the allocation-free word matcher with a regular
// expression on ASCII text.
func FuzzContainsWord(f *testing.F) {
	for _, s := range [][2]string{{"A question about Billing", "billing"}, {"rebilling", "billing"}, {"credit  card", "credit card"},
		{"x-ray", "x"}, {"#urgent now", "#urgent"}, {"", "a"}, {"aaa", "aa"}, {"end.", "end"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, text, term string) {
		if !isASCII(text) || !isASCII(term) || strings.TrimSpace(term) == "" {
			return
		}
		lower := strings.ToLower(term)
		pre, post := "", ""
		if isWordByte(lower[0]) {
			pre = `(?:^|[^A-Za-z0-9_])`
		}
		if isWordByte(lower[len(lower)-1]) {
			post = `(?:$|[^A-Za-z0-9_])`
		}
		re := regexp.MustCompile("(?i)" + pre + regexp.QuoteMeta(lower) + post)
		if got, want := containsWord(text, lower), re.MatchString(text); got != want {
			t.Fatalf("containsWord(%q, %q) = %v, regexp says %v", text, lower, got, want)
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func isWordByte(b byte) bool {
	return b == '_' || 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
}
