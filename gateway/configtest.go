package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/internal/yamlconf"
)

// TestFile is a *_test.yaml config test file kept beside connector and rule
// files.
type TestFile struct {
	Tests []TestCase `yaml:"tests,required"`
}

// TestCase posts one payload (or event) through the config and states what
// must come out. Expectations compare as subsets: only the keys written are
// checked, except matched, which lists exactly the rules that must fire.
//
// Steps continue the case on the same simulated state and clock: a step
// may advance the clock (advance: 48h fires the timers that come due, in
// due order, each at its due time) and/or post another payload or event
// (at the clock after advancing), and states its own expect for what
// happened in that step only.
type TestCase struct {
	Pos         yamlconf.Pos      `yaml:"-"`
	Name        string            `yaml:"name,required"`
	Connector   string            `yaml:"connector"`
	Headers     map[string]string `yaml:"headers"`
	Query       map[string]string `yaml:"query"`
	ContentType string            `yaml:"content_type"`
	Payload     *yaml.Node        `yaml:"payload"`
	Fixture     string            `yaml:"fixture"`
	Event       *yaml.Node        `yaml:"event"`
	Snapshot    *yaml.Node        `yaml:"snapshot"`
	Now         string            `yaml:"now"`
	// Intake runs the payload through the gateway's intake checks first
	// (signature, schema, ...); expect.refused implies it. URL is the
	// webhook URL a signature covers (schemes such as Twilio's).
	Intake bool       `yaml:"intake"`
	URL    string     `yaml:"url"`
	Expect TestExpect `yaml:"expect"`
	Steps  []TestStep `yaml:"steps"`
}

// TestStep is one later step of a case: advance the clock, then post a
// payload, fixture or event if one is given (connector, headers, content
// type, intake and url default to the case's; the query does not).
type TestStep struct {
	Pos         yamlconf.Pos      `yaml:"-"`
	Name        string            `yaml:"name"`
	Advance     string            `yaml:"advance"`
	Connector   string            `yaml:"connector"`
	Headers     map[string]string `yaml:"headers"`
	Query       map[string]string `yaml:"query"`
	ContentType string            `yaml:"content_type"`
	Payload     *yaml.Node        `yaml:"payload"`
	Fixture     string            `yaml:"fixture"`
	Event       *yaml.Node        `yaml:"event"`
	// Intake and URL default to the case's (URL when the step posts to
	// the case's connector); intake: false turns the checks off.
	Intake *bool      `yaml:"intake"`
	URL    string     `yaml:"url"`
	Expect TestExpect `yaml:"expect"`
}

// TestRefused is an expected refusal by the intake checks: the HTTP status
// and, when given, text the reason must contain.
type TestRefused struct {
	Status int    `yaml:"status,required"`
	Reason string `yaml:"reason"`
}

// TestExpect is what a case asserts.
type TestExpect struct {
	Unmapped   *bool      `yaml:"unmapped"`
	Events     *yaml.Node `yaml:"events"`
	Matched    *[]string  `yaml:"matched"`
	NotMatched []string   `yaml:"not_matched"`
	Actions    *yaml.Node `yaml:"actions"`
	Suppressed *int       `yaml:"suppressed"`
	// Errors is how many rule errors (an action that does not render)
	// the step makes; when it is not given, any rule error fails it.
	Errors *int `yaml:"errors"`
	// Refused expects the intake checks to refuse the payload (nothing is
	// mapped then); it turns the intake checks on for the post.
	Refused *TestRefused `yaml:"refused"`
	// Duplicate expects (true) the gateway's intake to answer the post
	// 200 duplicate, processing nothing: an earlier post of the case had
	// its dedupe key within the key's window; false expects it processed.
	// Either turns the intake checks on for the post. A duplicate that
	// is not expected fails the case.
	Duplicate *bool `yaml:"duplicate"`
	// Timers are the timers armed after the step, in due order
	// ({ rule, due, key: { reference } }; due as RFC 3339 in UTC).
	Timers *yaml.Node `yaml:"timers"`
	// Now is the simulated clock after the step (RFC 3339).
	Now string `yaml:"now"`
}

// TestOutcome is the result of one case.
type TestOutcome struct {
	File     string
	Case     string
	Pos      yamlconf.Pos
	Failures []string
	// Warnings are the mapping's warnings about the case's events (an
	// occurred_at it could not read, ...): they do not fail the case.
	Warnings []string
}

// Passed reports whether the case held.
func (o TestOutcome) Passed() bool { return len(o.Failures) == 0 }

// RunConfigTests runs every test file of the bundle (or the given files) and
// returns one outcome per case. A file that does not parse yields errors;
// a case that CheckConfigTests finds wrong fails with its problems, unrun.
func RunConfigTests(b *Bundle, files []string, env yamlconf.Env) ([]TestOutcome, yamlconf.Errors) {
	if files == nil {
		files = b.TestFiles
	}
	var outcomes []TestOutcome
	var errs yamlconf.Errors
	for _, f := range files {
		tf, ferrs := loadTestFile(f, env)
		errs.Append(ferrs)
		for _, tc := range tf.Tests {
			if problems := caseProblems(b, f, tc); len(problems) > 0 {
				out := TestOutcome{File: f, Case: tc.Name, Pos: tc.Pos}
				for _, p := range problems {
					out.Failures = append(out.Failures, p.Error())
				}
				outcomes = append(outcomes, out)
				continue
			}
			outcomes = append(outcomes, runCase(b, f, tc))
		}
	}
	return outcomes, errs
}

// CheckConfigTests parses and decodes every test file of the bundle (or
// the given files) and checks each case without running it, as
// RunConfigTests does before it runs one: the problems, each at its
// file:line:column.
func CheckConfigTests(b *Bundle, files []string, env yamlconf.Env) yamlconf.Errors {
	if files == nil {
		files = b.TestFiles
	}
	var errs yamlconf.Errors
	for _, f := range files {
		tf, ferrs := loadTestFile(f, env)
		errs.Append(ferrs)
		for _, tc := range tf.Tests {
			errs.Append(caseProblems(b, f, tc))
		}
	}
	return errs
}

// loadTestFile reads, parses and decodes one test file; a file with no
// case is an error (it would pass by testing nothing).
func loadTestFile(f string, env yamlconf.Env) (TestFile, yamlconf.Errors) {
	var tf TestFile
	data, err := os.ReadFile(f)
	if err != nil {
		return tf, yamlconf.Errors{{Pos: yamlconf.Pos{File: f}, Msg: err.Error()}}
	}
	root, errs := yamlconf.Parse(f, data, env)
	if root == nil {
		return tf, errs
	}
	if derrs := yamlconf.Decode(f, root, &tf); len(derrs) > 0 {
		errs.Append(derrs)
		return TestFile{}, errs
	}
	if len(tf.Tests) == 0 {
		n := root
		if doc := yamlconf.Lookup(root, "tests"); doc != nil {
			n = doc
		}
		errs.Add(f, n, "a test file needs at least one case under tests:")
	}
	return tf, errs
}

// caseProblems reports what is wrong with a case before it runs: keys its
// event or snapshot do not have, expectations naming no rule, and a case
// (or step) that asserts nothing.
func caseProblems(b *Bundle, file string, tc TestCase) yamlconf.Errors {
	errs := caseInputErrors(file, tc)
	errs.Append(expectRuleErrors(b, tc.Pos, tc.Expect))
	asserts := tc.Expect.asserts()
	if !asserts {
		errs.Append(nothingAsserted(file, tc.Pos, "case", tc.Payload, len(tc.Steps) > 0))
	}
	for i, st := range tc.Steps {
		errs.Append(caseInputErrors(file, TestCase{Event: st.Event}))
		errs.Append(expectRuleErrors(b, st.Pos, st.Expect))
		last := i == len(tc.Steps)-1
		// A step that only sets the scene for a later one need not
		// assert; a last step that asserts nothing, or one whose
		// payload holds an expect key, is a mistake.
		if !st.Expect.asserts() && (last || yamlconf.Lookup(st.Payload, "expect") != nil) {
			errs.Append(nothingAsserted(file, st.Pos, fmt.Sprintf("step %d", i+1), st.Payload, false))
		}
	}
	return errs
}

// nothingAsserted is the error of a case or step without expectations,
// naming a payload key expect (an expect: indented one level too deep).
// A case with steps may leave the asserting to them.
func nothingAsserted(file string, pos yamlconf.Pos, what string, payload *yaml.Node, hasSteps bool) yamlconf.Errors {
	if k := payloadKey(payload, "expect"); k != nil {
		return yamlconf.Errors{{Pos: pos, Msg: fmt.Sprintf("%s asserts nothing, but its payload has a key expect at %s: is expect: indented one level too deep?", what, yamlconf.At(file, k))}}
	}
	if hasSteps {
		return nil
	}
	return yamlconf.Errors{{Pos: pos, Msg: what + " asserts nothing: give expect: (matched, actions, events, timers, ...)"}}
}

// payloadKey returns the key node named key of a mapping payload, or nil.
func payloadKey(payload *yaml.Node, key string) *yaml.Node {
	for _, kv := range yamlconf.Pairs(payload) {
		if kv.Key.Value == key {
			return kv.Key
		}
	}
	return nil
}

// expectRuleErrors reports the rule ids of matched and not_matched that
// name no rule: a misspelled not_matched would pass by silence.
func expectRuleErrors(b *Bundle, pos yamlconf.Pos, ex TestExpect) yamlconf.Errors {
	var errs yamlconf.Errors
	for _, list := range []struct {
		what string
		ids  []string
	}{{"matched", deref(ex.Matched)}, {"not_matched", ex.NotMatched}} {
		for _, id := range list.ids {
			if b.Rules.Rule(id) == nil {
				errs = append(errs, &yamlconf.Error{Pos: pos, Msg: fmt.Sprintf("%s: no rule %q in the config%s", list.what, id, yamlconf.DidYouMean(id, ruleIDs(b)))})
			}
		}
	}
	return errs
}

// asserts reports whether the expectation checks anything.
func (ex TestExpect) asserts() bool { return !reflect.ValueOf(ex).IsZero() }

func runCase(b *Bundle, file string, tc TestCase) TestOutcome {
	out := TestOutcome{File: file, Case: tc.Name, Pos: tc.Pos}
	fail := func(format string, args ...any) { out.Failures = append(out.Failures, fmt.Sprintf(format, args...)) }
	req, err := caseRequest(file, tc)
	if err != nil {
		fail("%v", err)
		return out
	}
	now := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC) // a Monday, so day-of-week rules are deterministic
	if tc.Now != "" {
		t, err := time.Parse(time.RFC3339, tc.Now)
		if err != nil {
			fail("now: %q is not an RFC 3339 time", tc.Now)
			return out
		}
		now = t
	}
	sim := NewSimulation(b, now)
	res, err := sim.Post(req)
	if err != nil {
		fail("%v", err)
		return out
	}
	out.Warnings = append(out.Warnings, res.Warnings...)
	checkExpect(file, tc.Expect, res, fail)
	for i, st := range tc.Steps {
		name := fmt.Sprintf("step %d", i+1)
		if st.Name != "" {
			name += " (" + st.Name + ")"
		}
		stepFail := func(format string, args ...any) { fail("%s at %s: %s", name, st.Pos, fmt.Sprintf(format, args...)) }
		res, err := runStep(file, tc, st, sim)
		if err != nil {
			stepFail("%v", err)
			return out
		}
		for _, w := range res.Warnings {
			out.Warnings = append(out.Warnings, name+": "+w)
		}
		checkExpect(file, st.Expect, res, stepFail)
	}
	return out
}

// runStep advances the clock and/or posts the step's payload or event.
func runStep(file string, tc TestCase, st TestStep, sim *Simulation) (*SimResult, error) {
	res := newSimResult()
	posts := st.Payload != nil || st.Fixture != "" || st.Event != nil
	if st.Advance == "" && !posts {
		return nil, errors.New("a step needs advance:, or a payload, fixture or event")
	}
	if st.Advance != "" {
		d, err := yamlconf.ParseDuration(st.Advance)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("advance: expected a duration like 48h, got %q", st.Advance)
		}
		later, err := sim.Advance(d)
		if err != nil {
			return nil, err
		}
		res.add(later)
	}
	if posts {
		sc := TestCase{Connector: st.Connector, Headers: st.Headers, Query: st.Query, ContentType: st.ContentType, Payload: st.Payload, Fixture: st.Fixture, Event: st.Event,
			Intake: tc.Intake, URL: st.URL, Expect: TestExpect{Refused: st.Expect.Refused, Duplicate: st.Expect.Duplicate}}
		if st.Intake != nil {
			sc.Intake = *st.Intake
		}
		if sc.Connector == "" {
			sc.Connector = tc.Connector
		}
		if sc.URL == "" && sc.Connector == tc.Connector {
			sc.URL = tc.URL
		}
		if sc.Headers == nil {
			sc.Headers = tc.Headers
		}
		if sc.ContentType == "" {
			sc.ContentType = tc.ContentType
		}
		req, err := caseRequest(file, sc)
		if err != nil {
			return nil, err
		}
		posted, err := sim.Post(req)
		if err != nil {
			return nil, err
		}
		res.add(posted)
	}
	return res, nil
}

// checkExpect reports where a result differs from what is expected.
func checkExpect(file string, ex TestExpect, res *SimResult, fail func(string, ...any)) {
	failed := false
	f := func(format string, args ...any) { failed = true; fail(format, args...) }
	switch got := res.Refused; {
	case ex.Refused != nil && got == nil:
		f("refused: want status %d, but the intake checks let the payload through", ex.Refused.Status)
	case ex.Refused == nil && got != nil:
		f("the intake checks refused the payload: %d %s", got.Status, got.Reason)
	case got != nil && got.Status != ex.Refused.Status:
		f("refused: want status %d, got %d %s", ex.Refused.Status, got.Status, got.Reason)
	case got != nil && !strings.Contains(got.Reason, ex.Refused.Reason):
		f("refused: the reason %q does not contain %q", got.Reason, ex.Refused.Reason)
	}
	dup := res.Duplicate
	switch {
	case ex.Duplicate == nil && dup != nil:
		f("the gateway answers this post 200 duplicate and processes nothing: %s (expect duplicate: true to assert it)", dup.why())
	case ex.Duplicate != nil && *ex.Duplicate && dup == nil:
		f("duplicate: want the gateway to answer the post 200 duplicate, but it processed it")
	case ex.Duplicate != nil && !*ex.Duplicate && dup != nil:
		f("duplicate: want the post processed, but the gateway answers it 200 duplicate: %s", dup.why())
	}
	if dup != nil {
		// Nothing is processed: say so once for each expectation of
		// something, instead of a diff against nothing.
		if ex.Matched != nil && len(*ex.Matched) > 0 {
			f("matched: want %s, but the post is a duplicate: the gateway processes nothing", compact(*ex.Matched))
		}
		for _, l := range []struct {
			what string
			n    *yaml.Node
		}{{"events", ex.Events}, {"actions", ex.Actions}} {
			if n := yamlconf.Resolve(l.n); n != nil && n.Kind == yaml.SequenceNode && len(n.Content) > 0 {
				f("%s: want %d, but the post is a duplicate: the gateway processes nothing", l.what, len(n.Content))
			}
		}
		ex.Matched, ex.Events, ex.Actions = nil, nil, nil
	}
	if ex.Unmapped != nil && *ex.Unmapped != res.Unmapped {
		f("unmapped: want %v, got %v", *ex.Unmapped, res.Unmapped)
	}
	if ex.Matched != nil {
		want := append([]string{}, (*ex.Matched)...)
		got := append([]string{}, res.Matched...)
		if !reflect.DeepEqual(want, got) {
			f("matched rules differ:\n%s", diffLists(want, got))
		}
	}
	for _, r := range ex.NotMatched {
		for _, m := range res.Matched {
			if m == r {
				f("rule %s matched but must not", r)
			}
		}
	}
	if ex.Events != nil {
		compareList(file, "events", ex.Events, res.Events, f)
	}
	if ex.Actions != nil {
		compareList(file, "actions", ex.Actions, res.Actions, f)
	}
	if ex.Timers != nil {
		compareList(file, "timers", ex.Timers, res.Timers, f)
	}
	if ex.Now != "" {
		if t, err := time.Parse(time.RFC3339, ex.Now); err != nil {
			f("now: %q is not an RFC 3339 time", ex.Now)
		} else if !t.Equal(res.Now) {
			f("now: want %s, got %s", ex.Now, res.Now.Format(time.RFC3339))
		}
	}
	if ex.Suppressed != nil && *ex.Suppressed != len(res.Suppressed) {
		f("suppressed: want %d no-op updates, got %d %v", *ex.Suppressed, len(res.Suppressed), res.Suppressed)
	}
	switch {
	case ex.Errors != nil && *ex.Errors != len(res.Errors):
		f("errors: want %d rule errors, got %d %v", *ex.Errors, len(res.Errors), res.Errors)
	case ex.Errors == nil:
		// A rule error nobody expected fails the case: a negative
		// expectation (not_matched, actions: []) would pass by it.
		for _, e := range res.Errors {
			f("rule %s: %s (expect errors: to allow it)", e.Rule, e.Message)
		}
	}
	if failed && len(res.Trace) > 0 {
		var lines []string
		for _, t := range res.Trace {
			line := fmt.Sprintf("event %d (%s) rule %s: matched=%v", t.Event, res.Events[t.Event].Type, t.Rule, t.Matched)
			if t.Skipped != "" {
				line += " skipped: " + t.Skipped
			}
			if t.Failed != nil {
				line += fmt.Sprintf(" failed: %s (actual %v)", t.Failed.Condition, t.Failed.Actual)
			}
			if t.Error != "" {
				line += " error: " + t.Error
			}
			lines = append(lines, line)
		}
		fail("trace:\n    %s", strings.Join(lines, "\n    "))
	}
}

// why says why a post is a duplicate, for a failure message.
func (d *SimDuplicate) why() string {
	return fmt.Sprintf("its dedupe key %q was posted at %s, within its window %s", d.Key, d.PostedAt.UTC().Format(time.RFC3339), d.Window)
}

// caseRequest is the dry-run request of a case (a step passes itself as
// one): its payload from the fixture, payload or event, through the intake
// checks when it sets intake or expects a refusal or says whether it is a
// duplicate.
func caseRequest(file string, tc TestCase) (SimRequest, error) {
	req := SimRequest{Connector: tc.Connector, Headers: tc.Headers, Query: tc.Query, ContentType: tc.ContentType,
		Intake: tc.Intake || tc.Expect.Refused != nil || tc.Expect.Duplicate != nil, URL: tc.URL}
	switch {
	case tc.Fixture != "":
		p := tc.Fixture
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(file), p)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return req, fmt.Errorf("fixture: %w", err)
		}
		if strings.Contains(tc.ContentType, "form") {
			data, _ = json.Marshal(string(data))
		}
		req.Payload = data
	case tc.Payload != nil:
		v, err := yamlconf.ToExactValue(tc.Payload) // a 17-digit id keeps its digits, as in a real webhook
		if err != nil {
			return req, fmt.Errorf("payload: %w", err)
		}
		req.Payload, _ = json.Marshal(v)
	case tc.Event != nil: // its keys were checked with the case's (caseProblems)
		v, err := yamlconf.ToValue(tc.Event)
		if err != nil {
			return req, fmt.Errorf("event: %w", err)
		}
		raw, _ := json.Marshal(v)
		req.Event = &event.Event{}
		if err := json.Unmarshal(raw, req.Event); err != nil {
			return req, fmt.Errorf("event: %w", err)
		}
	default:
		return req, fmt.Errorf("a case needs payload, fixture or event")
	}
	if tc.Snapshot != nil {
		v, err := yamlconf.ToValue(tc.Snapshot)
		if err != nil {
			return req, fmt.Errorf("snapshot: %w", err)
		}
		raw, _ := json.Marshal(v)
		req.Snapshot = &event.Snapshot{}
		if err := json.Unmarshal(raw, req.Snapshot); err != nil {
			return req, fmt.Errorf("snapshot: %w", err)
		}
	}
	return req, nil
}

// caseInputErrors reports the keys of a case's (or step's) event and
// snapshot that event.Event and event.Snapshot do not have: decoded as
// JSON, a misspelt key would be dropped without a word.
func caseInputErrors(file string, tc TestCase) yamlconf.Errors {
	var errs yamlconf.Errors
	if tc.Event != nil {
		unknownYAMLKeys(file, tc.Event, reflect.TypeFor[event.Event](), &errs)
	}
	if tc.Snapshot != nil {
		unknownYAMLKeys(file, tc.Snapshot, reflect.TypeFor[event.Snapshot](), &errs)
	}
	return errs
}

func deref(p *[]string) []string {
	if p == nil {
		return nil
	}
	return *p
}

// ruleIDs lists the ids of the config's rules (for suggestions).
func ruleIDs(b *Bundle) []string {
	var ids []string
	for _, r := range b.Rules.Rules() {
		ids = append(ids, r.ID)
	}
	return ids
}

// compareList checks that the actual list has as many items as expected and
// that each expected item is a subset of the actual one at the same index.
// Each failure starts with the file:line:column of the expected value it
// concerns (of the list, for a count mismatch and an extra item); on a
// count mismatch the items both lists have are still compared, and the
// missing and extra ones are named.
func compareList(file, what string, want *yaml.Node, got any, fail func(string, ...any)) {
	list := yamlconf.Resolve(want)
	at := yamlconf.At(file, list)
	w, err := yamlconf.ToExactValue(want)
	if err != nil {
		fail("%s: %s: %v", at, what, err)
		return
	}
	wl, isList := w.([]any)
	if !isList && w != nil {
		fail("%s: %s: expected a list (of %s, each a subset of what is made), got %s", at, what, what, yamlconf.KindName(want))
		return
	}
	var items []*yaml.Node // the expected items' nodes, as wl holds their values
	if list.Kind == yaml.SequenceNode {
		items = list.Content
	}
	gl, _ := jsonShape(got).([]any)
	if len(wl) != len(gl) {
		fail("%s: %s: want %d, got %d", at, what, len(wl), len(gl))
	}
	for i := range wl {
		var item *yaml.Node // an alias: where it is used; its values are at its anchor
		if i < len(items) {
			item = items[i]
		}
		path := fmt.Sprintf("%s[%d]", what, i)
		if i >= len(gl) {
			fail("%s: %s: missing: want %s", yamlconf.At(file, item), path, compact(wl[i]))
			continue
		}
		var diffs []string
		subset(file, path, item, wl[i], gl[i], &diffs)
		for _, d := range diffs {
			fail("%s", d)
		}
	}
	for i := len(wl); i < len(gl); i++ {
		fail("%s: %s[%d]: extra: %s", at, what, i, madeItem(what, gl[i]))
	}
}

// jsonShape returns v as its JSON decodes (numbers as json.Number: what is
// made keeps its digits too).
func jsonShape(v any) any {
	raw, _ := json.Marshal(v)
	var out any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	_ = dec.Decode(&out)
	return out
}

// madeItem names an event, action or timer that was made (its JSON shape)
// in a few words: an event's type and entity, an action's rule, kind and
// target, a timer's rule, due time and entity.
func madeItem(what string, v any) string {
	m, ok := v.(map[string]any)
	if !ok {
		return compact(v)
	}
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }
	entity := func(m map[string]any) string {
		var parts []string
		for _, k := range []string{"connector", "entity", "reference"} {
			if s := str(m, k); s != "" {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, "/")
	}
	var words []string
	switch what {
	case "events":
		words = []string{str(m, "type"), entity(m)}
	case "actions":
		words = []string{"rule " + str(m, "rule"), str(m, "kind"), entity(m)}
	case "timers":
		key, _ := m["key"].(map[string]any)
		words = []string{"rule " + str(m, "rule"), "due " + str(m, "due"), "on " + entity(key)}
	default:
		return compact(v)
	}
	return strings.Join(strings.Fields(strings.Join(words, " ")), " ")
}

// subset records where want (the value of node n in file) is not contained
// in got, each difference at the position of the expected value it
// concerns.
func subset(file, path string, n *yaml.Node, want, got any, diffs *[]string) {
	n = yamlconf.Resolve(n)
	at := yamlconf.At(file, n)
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			*diffs = append(*diffs, fmt.Sprintf("%s: %s: want an object, got %s", at, path, compact(got)))
			return
		}
		keys := make([]string, 0, len(w))
		for k := range w {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			child := yamlconf.Lookup(n, k)
			gv, present := g[k]
			if !present {
				if isZeroJSON(w[k]) {
					continue // omitempty leaves a zero value out
				}
				*diffs = append(*diffs, fmt.Sprintf("%s: %s.%s: want %s, got nothing", yamlconf.At(file, child), path, k, compact(w[k])))
				continue
			}
			subset(file, path+"."+k, child, w[k], gv, diffs)
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			*diffs = append(*diffs, fmt.Sprintf("%s: %s: want %s, got %s", at, path, compact(want), compact(got)))
			return
		}
		for i := range w {
			var item *yaml.Node
			if n != nil && n.Kind == yaml.SequenceNode && i < len(n.Content) {
				item = n.Content[i]
			}
			subset(file, fmt.Sprintf("%s[%d]", path, i), item, w[i], g[i], diffs)
		}
	default:
		if !leafEqual(want, got) {
			*diffs = append(*diffs, fmt.Sprintf("%s: %s: want %s, got %s", at, path, compact(want), compact(got)))
		}
	}
}

// isZeroJSON reports whether v is a zero value a field marked omitempty
// leaves out of the JSON: null, false, "", 0, [] or {}.
func isZeroJSON(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case bool:
		return !v
	case string:
		return v == ""
	case json.Number:
		f, err := v.Float64()
		return err == nil && f == 0
	case float64:
		return v == 0
	case int:
		return v == 0
	case int64:
		return v == 0
	case []any:
		return len(v) == 0
	case map[string]any:
		return len(v) == 0
	}
	return false
}

// leafEqual compares an expected value with what was made. An integer
// written unquoted that float64 cannot hold exactly (more than 15 digits:
// an id) must have the same digits, as a number or as text; other values
// compare as event.Equal does.
func leafEqual(want, got any) bool {
	if n, ok := want.(json.Number); ok && isLongInteger(string(n)) {
		switch g := got.(type) {
		case json.Number:
			return string(g) == string(n)
		case string:
			return g == string(n)
		}
		return false
	}
	return event.Equal(event.Normalize(want), event.Normalize(got))
}

// isLongInteger reports whether s is an integer literal of more than 15
// digits (a float64 may round it).
func isLongInteger(s string) bool {
	s = strings.TrimPrefix(s, "-")
	if len(s) <= 15 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func compact(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func diffLists(want, got []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "    - want: %s\n    + got:  %s", compact(want), compact(got))
	return b.String()
}
