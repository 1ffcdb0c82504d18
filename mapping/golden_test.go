package mapping

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/internal/yamlconf"
)

var update = flag.Bool("update", false, "rewrite the expected sections of testdata/*.txt")

// fixturesDir holds the real platform payloads.
const fixturesDir = "../testdata/fixtures"

// section is one "-- name --" part of a golden file.
type section struct {
	name string
	body string
}

// golden is a single-file test case: a free-text comment, then sections.
//
//	-- mapping.yaml --      the inbound.events list
//	-- fixture --           a file name in testdata/fixtures, or
//	-- payload.json --      the payload itself
//	-- headers --           optional, "Name: value" lines
//	-- query --             optional, a URL query string
//	-- received_at --       optional RFC 3339 time (default 2025-06-01T12:00:00Z)
//	-- events.json --       expected events (raw omitted), or
//	-- error --             the expected Map error, or
//	-- compile-errors --    the expected Compile errors, one per line
type golden struct {
	comment  string
	sections []section
}

func parseGolden(data string) golden {
	var g golden
	lines := strings.SplitAfter(data, "\n")
	cur := -1
	for _, ln := range lines {
		trimmed := strings.TrimRight(ln, "\r\n")
		if strings.HasPrefix(trimmed, "-- ") && strings.HasSuffix(trimmed, " --") && len(trimmed) > 6 {
			g.sections = append(g.sections, section{name: strings.TrimSpace(trimmed[3 : len(trimmed)-3])})
			cur = len(g.sections) - 1
			continue
		}
		if cur < 0 {
			g.comment += ln
		} else {
			g.sections[cur].body += ln
		}
	}
	return g
}

func (g *golden) get(name string) (string, bool) {
	for _, s := range g.sections {
		if s.name == name {
			return s.body, true
		}
	}
	return "", false
}

func (g *golden) set(name, body string) {
	for i := range g.sections {
		if g.sections[i].name == name {
			g.sections[i].body = body
			return
		}
	}
	g.sections = append(g.sections, section{name: name, body: body})
}

func (g *golden) String() string {
	var b strings.Builder
	b.WriteString(g.comment)
	for _, s := range g.sections {
		fmt.Fprintf(&b, "-- %s --\n%s", s.name, s.body)
	}
	return b.String()
}

// eventView is the part of an event golden files show. Raw is shown only
// when it is not the whole payload (an event of an each entry keeps its
// element).
type eventView struct {
	Type       string                  `json:"type"`
	Entity     string                  `json:"entity"`
	Reference  string                  `json:"reference"`
	OccurredAt time.Time               `json:"occurred_at"`
	Actor      event.Actor             `json:"actor"`
	Fields     map[string]any          `json:"fields"`
	Changes    map[string]event.Change `json:"changes,omitempty"`
	Vars       map[string]string       `json:"vars,omitempty"`
	Raw        json.RawMessage         `json:"raw,omitempty"`
}

func renderEvents(evs []*event.Event, body []byte) string {
	views := make([]eventView, 0, len(evs))
	for _, e := range evs {
		v := eventView{e.Type, e.Entity, e.Reference, e.OccurredAt, e.Actor, e.Fields, e.Changes, e.Vars, nil}
		if !bytes.Equal(e.Raw, body) {
			v.Raw = e.Raw
		}
		views = append(views, v)
	}
	b, err := json.MarshalIndent(views, "", "  ")
	if err != nil {
		panic(err)
	}
	return string(b) + "\n"
}

func goldenInput(t *testing.T, g *golden) Input {
	t.Helper()
	in := Input{ReceivedAt: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	if name, ok := g.get("fixture"); ok {
		b, err := os.ReadFile(filepath.Join(fixturesDir, strings.TrimSpace(name)))
		if err != nil {
			t.Fatalf("read fixture: %v", err)
		}
		in.Body = b
	} else if p, ok := g.get("payload.json"); ok {
		in.Body = []byte(p)
	} else {
		t.Fatal("golden file has neither fixture nor payload.json")
	}
	if h, ok := g.get("headers"); ok {
		in.Header = map[string][]string{}
		for _, ln := range strings.Split(strings.TrimSpace(h), "\n") {
			k, v, found := strings.Cut(ln, ":")
			if !found {
				t.Fatalf("bad header line %q", ln)
			}
			k = textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(k))
			in.Header[k] = append(in.Header[k], strings.TrimSpace(v))
		}
	}
	if q, ok := g.get("query"); ok {
		vals, err := url.ParseQuery(strings.TrimSpace(q))
		if err != nil {
			t.Fatalf("bad query: %v", err)
		}
		in.Query = vals
	}
	if r, ok := g.get("received_at"); ok {
		ts, err := time.Parse(time.RFC3339, strings.TrimSpace(r))
		if err != nil {
			t.Fatalf("bad received_at: %v", err)
		}
		in.ReceivedAt = ts
	}
	return in
}

func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			g := parseGolden(string(data))
			src, ok := g.get("mapping.yaml")
			if !ok {
				t.Fatal("no mapping.yaml section")
			}
			changed := false
			check := func(name, got string) {
				want, ok := g.get(name)
				if *update {
					if !ok || want != got {
						g.set(name, got)
						changed = true
					}
					return
				}
				if !ok {
					t.Fatalf("no %s section; run with -update to create it. Got:\n%s", name, got)
				}
				if got != want {
					t.Errorf("%s differs.\n--- got\n%s--- want\n%s", name, got, want)
				}
			}
			node, perrs := yamlconf.Parse("mapping.yaml", []byte(src), nil)
			if len(perrs) > 0 {
				t.Fatalf("parse: %v", perrs)
			}
			m, errs := Compile("mapping.yaml", "test", node)
			if _, wantErrs := g.get("compile-errors"); wantErrs || len(errs) > 0 {
				// Positions count from the mapping.yaml section's first line.
				check("compile-errors", errs.Error()+"\n")
			} else {
				in := goldenInput(t, &g)
				evs, err := m.Map(in)
				if _, wantErr := g.get("error"); wantErr || err != nil {
					got := "<nil>"
					if err != nil {
						got = err.Error()
					}
					check("error", got+"\n")
					if err == nil {
						check("events.json", renderEvents(evs, in.Body))
					}
				} else {
					for i, e := range evs {
						if !json.Valid(e.Raw) || !bytes.Contains(in.Body, e.Raw) {
							t.Errorf("event %d: Raw is not the payload or a part of it", i)
						}
						if e.Connector != "test" || !e.ReceivedAt.Equal(in.ReceivedAt) {
							t.Errorf("event %d: connector %q received_at %v", i, e.Connector, e.ReceivedAt)
						}
					}
					check("events.json", renderEvents(evs, in.Body))
				}
			}
			if changed {
				if err := os.WriteFile(file, []byte(g.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				t.Logf("updated %s", file)
			}
		})
	}
}
