package gateway

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/event"
)

func TestShippedConfigsValidate(t *testing.T) {
	b, errs := Load("../configs", testEnv(nil))
	if len(errs) > 0 {
		t.Fatalf("shipped configs are invalid:\n%v", errs)
	}
	if len(b.Connectors) == 0 || len(b.Rules.Rules()) == 0 || len(b.TestFiles) == 0 {
		t.Fatalf("connectors %d, rules %d, tests %d", len(b.Connectors), len(b.Rules.Rules()), len(b.TestFiles))
	}
}

// The shipped config tests pass: the same check as `hookline test configs`.
func TestShippedConfigTestsPass(t *testing.T) {
	b, errs := Load("../configs", testEnv(nil))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	outcomes, terrs := RunConfigTests(b, nil, testEnv(nil))
	if len(terrs) > 0 {
		t.Fatal(terrs)
	}
	for _, o := range outcomes {
		if !o.Passed() {
			t.Errorf("%s: %s:\n%s", o.Pos, o.Case, strings.Join(o.Failures, "\n"))
		}
	}
}

func TestBrokenConfigGetsPositionedErrors(t *testing.T) {
	dir := copyConfigs(t)
	edit := func(rel, old, new string) {
		p := filepath.Join(dir, rel)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), old) {
			t.Fatalf("%s does not contain %q", rel, old)
		}
		os.WriteFile(p, []byte(strings.Replace(string(b), old, new, 1)), 0o644)
	}
	edit("gateway.yaml", "body_limit: 1MiB", "body_limt: 1MiB")
	edit("rules/zendesk-messaging-sessions.yaml", "changed_to: inactive", "chnaged_to: inactive")
	edit("connectors/zendesk.yaml", "scheme: zendesk", "scheme: zendesc")
	_, errs := Load(dir, testEnv(nil))
	got := errs.Error()
	for _, want := range []string{
		filepath.Join(dir, "gateway.yaml") + `:`,
		`:1: unknown key "body_limt"; did you mean "body_limit"?`,
		`rules/zendesk-messaging-sessions.yaml:`,
		`: unknown condition key "chnaged_to"`,
		`did you mean "changed_to"?`,
		`connectors/zendesk.yaml:`,
		`did you mean "zendesk"?`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("errors lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "unknown connector") {
		t.Errorf("a broken connector file cascades into rule errors:\n%s", got)
	}
	if len(errs) != 3 {
		t.Errorf("want exactly the 3 planted errors, got %d:\n%s", len(errs), got)
	}
	for _, e := range errs {
		if e.Pos.Line == 0 || e.Pos.Col == 0 {
			t.Errorf("an error without line and column: %v", e)
		}
	}
}

func TestWrongExpectationFailsWithDiff(t *testing.T) {
	dir := copyConfigs(t)
	p := filepath.Join(dir, "rules", "zendesk-messaging-sessions_test.yaml")
	b, _ := os.ReadFile(p)
	wrong := strings.Replace(string(b), "set: { status: solved }", "set: { status: pending }", 1)
	if wrong == string(b) {
		t.Fatal("test file changed; update this test")
	}
	os.WriteFile(p, []byte(wrong), 0o644)
	bundle, errs := Load(dir, testEnv(nil))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	outcomes, terrs := RunConfigTests(bundle, []string{p}, testEnv(nil))
	if len(terrs) > 0 {
		t.Fatal(terrs)
	}
	failed := 0
	for _, o := range outcomes {
		if o.Passed() {
			continue
		}
		failed++
		msg := strings.Join(o.Failures, "\n")
		if !strings.Contains(msg, `actions[0].set.status: want "pending", got "solved"`) {
			t.Errorf("failure is not a readable diff:\n%s", msg)
		}
		if o.Pos.Line == 0 || !strings.HasSuffix(o.File, "zendesk-messaging-sessions_test.yaml") {
			t.Errorf("failure does not name its file and case position: %+v", o.Pos)
		}
	}
	if failed != 1 {
		t.Fatalf("want exactly the edited case to fail, %d failed", failed)
	}
}

// retentionConfig writes a config dir whose gateway.yaml ends with extra
// (from line 4 on) and returns it.
func retentionConfig(t *testing.T, extra string) string {
	t.Helper()
	dir := timerConfig(t, timerRules)
	writeFile(t, filepath.Join(dir, "gateway.yaml"), "listen: \"127.0.0.1:0\"\nconnectors: [\"connectors/*.yaml\"]\nrules: [\"rules/*.yaml\"]\n"+extra)
	return dir
}

func TestRetentionConfig(t *testing.T) {
	const day = 24 * time.Hour
	cases := []struct {
		name, yaml string
		want       Retention
		warn       string // a warning that must be given
		err        string // the error that must be given, after "gateway.yaml:"
	}{
		{name: "defaults", yaml: "",
			want: Retention{Inbox: KeepFor(30 * day), Events: KeepFor(90 * day), Deliveries: KeepFor(30 * day), Interval: time.Minute}},
		{name: "empty section", yaml: "retention: {}\n",
			want: Retention{Inbox: DefaultInboxRetention, Events: DefaultEventRetention, Deliveries: DefaultDeliveryRetention, Interval: DefaultHousekeepingInterval}},
		{name: "values", yaml: "retention:\n  inbox: 7d\n  events: 2w\n  deliveries: 36h\n  interval: 10m\n",
			want: Retention{Inbox: KeepFor(7 * day), Events: KeepFor(14 * day), Deliveries: KeepFor(36 * time.Hour), Interval: 10 * time.Minute}},
		{name: "forever", yaml: "retention:\n  inbox: forever\n  events: 0\n  deliveries: \"0d\"\n",
			want: Retention{Inbox: KeepForever, Events: KeepForever, Deliveries: KeepForever, Interval: time.Minute}},
		{name: "partly set", yaml: "retention: { events: 1h }\n",
			want: Retention{Inbox: DefaultInboxRetention, Events: KeepFor(time.Hour), Deliveries: DefaultDeliveryRetention, Interval: DefaultHousekeepingInterval}},
		{name: "inbox shorter than the dedupe window", yaml: "retention:\n  inbox: 1d\n",
			want: Retention{Inbox: KeepFor(day), Events: DefaultEventRetention, Deliveries: DefaultDeliveryRetention, Interval: DefaultHousekeepingInterval},
			warn: "retention.inbox (1d) is shorter than intake.dedupe_window (72h0m0s)"},
		{name: "minutes for months", yaml: "retention:\n  inbox: 30m\n",
			err: `5:10: retention "30m" is shorter than the minimum of 1h0m0s`},
		{name: "not a duration", yaml: "retention:\n  events: never\n",
			err: `5:11: expected a duration like 12h, 30d or 2w, or 0 or forever, got "never"`},
		{name: "capitalised forever", yaml: "retention:\n  events: Forever\n",
			err: `5:11: expected a duration like 12h, 30d or 2w, or 0 or forever, got "Forever"; did you mean "forever"?`},
		{name: "negative", yaml: "retention:\n  deliveries: -5d\n",
			err: `5:15: retention "-5d" is negative`},
		{name: "a list", yaml: "retention:\n  inbox: [30d]\n",
			err: `5:10: expected a duration like 12h, 30d or 2w, or 0 or forever, got a list`},
		{name: "misspelt key", yaml: "retention:\n  evnets: 90d\n",
			err: `5:3: unknown key "evnets"; did you mean "events"?`},
		{name: "negative interval", yaml: "retention:\n  interval: -1m\n",
			err: `5:13: retention.interval -1m0s is negative`},
		{name: "interval not a duration", yaml: "retention:\n  interval: often\n",
			err: `5:13: expected a duration like 15m, 48h or 2d, got "often"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := retentionConfig(t, tc.yaml)
			b, errs := Load(dir, testEnv(nil))
			if tc.err != "" {
				want := filepath.Join(dir, "gateway.yaml") + ":" + tc.err
				if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), want) {
					t.Fatalf("errors:\n%v\nwant one starting with\n%s", errs, want)
				}
				return
			}
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			if got := b.File.Retention; got != tc.want {
				t.Errorf("retention = %+v, want %+v", got, tc.want)
			}
			warned := false
			for _, w := range b.Warnings {
				warned = warned || strings.Contains(w, "retention.")
				if tc.warn != "" && strings.Contains(w, tc.warn) {
					return
				}
			}
			if tc.warn != "" {
				t.Errorf("no warning %q in %q", tc.warn, b.Warnings)
			} else if warned {
				t.Errorf("unexpected retention warning in %q", b.Warnings)
			}
		})
	}
}

func TestKeepFor(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		k      KeepFor
		s      string
		cutoff time.Time // zero: kept forever
	}{
		{KeepFor(30 * 24 * time.Hour), "30d", now.AddDate(0, 0, -30)},
		{KeepFor(36 * time.Hour), "36h0m0s", now.Add(-36 * time.Hour)},
		{KeepForever, "forever", time.Time{}},
	}
	for _, tc := range cases {
		if got := tc.k.String(); got != tc.s {
			t.Errorf("String() = %q, want %q", got, tc.s)
		}
		cutoff, ok := tc.k.Cutoff(now)
		if ok != !tc.cutoff.IsZero() || !cutoff.Equal(tc.cutoff) {
			t.Errorf("%s: Cutoff = %v, %v; want %v", tc.s, cutoff, ok, tc.cutoff)
		}
		if tc.k.Forever() != tc.cutoff.IsZero() {
			t.Errorf("%s: Forever() = %v", tc.s, tc.k.Forever())
		}
	}
}

// A twilio connector without public_url checks signatures against the URL
// the request names, which the sender chooses: the config says so at
// start-up, and stops saying so once public_url is set.
func TestTwilioWithoutPublicURLWarns(t *testing.T) {
	const warning = "connector twilio checks signatures against the URL each request names"
	has := func(b *Bundle) bool {
		for _, w := range b.Warnings {
			if strings.Contains(w, warning) {
				return true
			}
		}
		return false
	}
	b, errs := Load(copyConfigs(t), testEnv(nil))
	if len(errs) > 0 || !has(b) {
		t.Fatalf("without public_url: %v, warnings %q", errs, b.Warnings)
	}
	b, errs = Load(copyConfigs(t), testEnv(map[string]string{"TWILIO_PUBLIC_URL": "https://hooks.example.com/hooks/twilio"}))
	if len(errs) > 0 || has(b) {
		t.Fatalf("with public_url: %v, warnings %q", errs, b.Warnings)
	}
}

// Test files beside rule files are found whether they are named
// *_test.yaml or *_test.yml (a .yml test that was skipped passed by
// silence).
func TestYmlTestFilesAreFound(t *testing.T) {
	dir := copyConfigs(t)
	src := filepath.Join(dir, "rules", "spoki-timers_test.yaml")
	if err := os.Rename(src, strings.TrimSuffix(src, ".yaml")+".yml"); err != nil {
		t.Fatal(err)
	}
	b, errs := Load(dir, testEnv(nil))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if !slices.ContainsFunc(b.TestFiles, func(f string) bool { return strings.HasSuffix(f, "spoki-timers_test.yml") }) {
		t.Fatalf("test files %v: the .yml one is missing", b.TestFiles)
	}
}

// Expectations that could never fail are refused: actions or timers
// written as a map rather than a list (which read as "none expected"),
// and a matched or not_matched rule id that names no rule.
func TestConfigTestExpectationsThatCannotFail(t *testing.T) {
	dir := copyConfigs(t)
	tests := `tests:
  - name: actions as a map
    connector: spoki
    payload: { event: ticket_status_changed, ticket: { reference: ORD-1, status: Open, phone: "+39333", updated_at: "2026-01-05T10:00:00Z" } }
    expect: { actions: { rule: s2-escalate-waiting-ticket } }
  - name: timers as a map
    connector: spoki
    payload: { event: ticket_status_changed, ticket: { reference: ORD-2, status: Open, phone: "+39333", updated_at: "2026-01-05T10:00:00Z" } }
    expect: { timers: { rule: s2-escalate-waiting-ticket } }
  - name: a misspelled rule id
    connector: spoki
    payload: { event: ticket_status_changed, ticket: { reference: ORD-3, status: Open, phone: "+39333", updated_at: "2026-01-05T10:00:00Z" } }
    expect: { not_matched: [s2-escalate-waitng-ticket] }
`
	outcomes := runTestFile(t, dir, filepath.Join(dir, "rules", "traps_test.yaml"), tests, 3)
	for i, want := range []string{
		"actions: expected a list (of actions, each a subset of what is made), got a mapping",
		"timers: expected a list (of timers, each a subset of what is made), got a mapping",
		`not_matched: no rule "s2-escalate-waitng-ticket" in the config; did you mean "s2-escalate-waiting-ticket"?`,
	} {
		if f := outcomes[i].Failures; len(f) != 1 || !strings.Contains(f[0], want) {
			t.Errorf("case %d failures %q, want one with %q", i+1, f, want)
		}
	}
}

// POST /api/v1/rules/{id}/run gives the rule the template variables of the
// entity's last event, as a timer firing does: the shipped Spoki rule
// addresses the ticket by %%TICKET_REFERENCE%% and makes its delivery.
func TestRunRuleHasTheEntitysVars(t *testing.T) {
	ts := startServer(t, copyConfigs(t), nil, nil)
	ev := &event.Event{Connector: "spoki", Type: "ticket.status_changed", Entity: "ticket", Reference: "ORD-9",
		Fields: map[string]any{"status": "waiting"}, Vars: map[string]string{"TICKET_REFERENCE": "ORD-9", "CUSTOMER_PHONE": "+39333"}}
	if err := ts.ApplyEvents([]*event.Event{ev}); err != nil {
		t.Fatal(err)
	}
	r := do(t, "POST", ts.URL+"/api/v1/rules/s2-escalate-waiting-ticket/run",
		[]byte(`{"connector": "spoki", "entity": "ticket", "reference": "ORD-9"}`), map[string]string{"Content-Type": "application/json"})
	var got struct{ Trace EventTrace }
	if err := json.Unmarshal(r.Body, &got); err != nil || r.Status != 200 {
		t.Fatalf("run: %d %s", r.Status, r.Body)
	}
	if len(got.Trace.Errors) != 0 || len(got.Trace.Deliveries) != 1 {
		t.Fatalf("run of the Spoki rule: errors %v, deliveries %v (%s)", got.Trace.Errors, got.Trace.Deliveries, r.Body)
	}
}

// Freshdesk renders a ticket's tags as one text; when the last tag is
// removed it sends "". That empties the ticket's tags in Hookline too
// (before, it counted as absent and the old tags stayed, so a later
// add_tags sent them back to Freshdesk).
func TestFreshdeskRemovedTagsStayRemoved(t *testing.T) {
	ts := startServer(t, copyConfigs(t), nil, nil)
	post := func(tags string) {
		t.Helper()
		body := fmt.Appendf(nil, `{"event": "ticket.updated", "ticket": {"id": "1042", "status": "Open", "tags": %q}}`, tags)
		r := do(t, "POST", ts.URL+"/hooks/freshdesk", body, map[string]string{"Content-Type": "application/json",
			"X-Hookline-Token": "dev-insecure-freshdesk-webhook-token"})
		if r.Status != 202 {
			t.Fatalf("post: %d %s", r.Status, r.Body)
		}
		if item := waitFinished(t, ts.URL, r.JSON(t)["id"].(string)); item["state"] != "processed" {
			t.Fatalf("webhook: %v %v", item["state"], item["reason"])
		}
	}
	post("refund,vip")
	post("")
	snap, err := ts.Store().Entity(event.EntityKey{Connector: "freshdesk", Entity: "ticket", Reference: "1042"})
	if err != nil {
		t.Fatal(err)
	}
	if tags := event.Strings(snap.Fields["tags"]); len(tags) != 0 {
		t.Fatalf("tags after Freshdesk removed the last one: %v, want none", tags)
	}
}

// The rule compiler's warnings reach the admin (validate, serve and
// reloads print Bundle.Warnings), and a misspelt `on:` type of a rule
// pinned to a connector that never produces it is one of them, with the
// nearest type.
func TestLoadReportsRuleWarnings(t *testing.T) {
	dir := copyConfigs(t)
	writeFile(t, filepath.Join(dir, "rules", "extra.yaml"), `rules:
  - id: literal-reference
    on: chat.message_received
    connector: spoki
    then:
      - update_ticket: { reference: "ORD-1234", status: open }
  - id: misspelt-type
    on: [chat.mesage_received]
    connector: spoki
    then:
      - log: { file: x.log, line: x }
  - id: closed-by-match   # spoki's contact types come from a mapped query value
    on: [contact.tag_added, "chat.*", "*.status_changed"]
    connector: spoki
    then:
      - log: { file: x.log, line: x }
  - id: open-types        # zendesk's trigger bodies carry their own type
    on: [ticket.anything]
    connector: zendesk
    then:
      - log: { file: x.log, line: x }
  - id: uncarried
    on: [ticket.updated]
    connector: zendesk
    then:
      - set_channel: email
      - set_status: open
      - update_ticket: { reference: "%%TICKET_REFERENCE%%", connector: freshdesk, category: billing, priority: high }
  - id: carried
    on: [ticket.updated]
    connector: zendesk
    then:
      - set_status: open
      - add_tags: [x]
      - set_fields: { owner: null, custom.plan: gold }
`)
	b, errs := Load(dir, testEnv(nil))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	all := strings.Join(b.Warnings, "\n")
	for _, want := range []string{
		`extra.yaml:6:37: update_ticket.reference "ORD-1234" is literal`,
		`extra.yaml:8:10: rule "misspelt-type": on: "chat.mesage_received" matches no event type that connector spoki produces; did you mean "chat.message_received"?`,
		`extra.yaml:26:9: rule "uncarried": set_channel changes channel, which connector zendesk cannot send: update_ticket (carries `,
		`extra.yaml:28:9: rule "uncarried": update_ticket changes category, which connector freshdesk cannot send: update_ticket (carries `,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("warnings lack %q:\n%s", want, all)
		}
	}
	for _, quiet := range []string{"closed-by-match", "open-types", `"carried"`, "set_status changes"} {
		if strings.Contains(all, quiet) {
			t.Errorf("rule %s is warned about:\n%s", quiet, all)
		}
	}
	// The shipped configs give neither warning.
	b, errs = Load(copyConfigs(t), testEnv(nil))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	for _, w := range b.Warnings {
		if strings.Contains(w, "is literal") || strings.Contains(w, "matches no event type") || strings.Contains(w, "cannot send") {
			t.Errorf("shipped configs warn: %s", w)
		}
	}
}

// Include globs skip the hidden files editors keep beside the ones they
// edit, so that validate and reloads do not fail while a buffer is open:
// Emacs's .#name.yaml lock (a dangling symlink), macOS's ._name.yaml and
// a ._name_test.yaml beside the tests. A pattern whose own name starts
// with a dot still matches hidden files.
func TestIncludeGlobsSkipHiddenFiles(t *testing.T) {
	dir := copyConfigs(t)
	rulesDir := filepath.Join(dir, "rules")
	if err := os.Symlink("admin@host.1234:1700000000", filepath.Join(rulesDir, ".#spoki-timers.yaml")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"._spoki-timers.yaml", "._spoki-timers_test.yaml"} {
		if err := os.WriteFile(filepath.Join(rulesDir, name), []byte("\x00\x05\x16\x07 AppleDouble"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, errs := Load(dir, testEnv(nil))
	if len(errs) > 0 {
		t.Fatalf("config with editors' hidden files beside the rule files is refused:\n%v", errs)
	}
	for _, f := range append(slices.Clone(b.RuleFiles), b.TestFiles...) {
		if strings.HasPrefix(filepath.Base(f), ".") {
			t.Errorf("hidden file %s loaded", f)
		}
	}

	// A pattern that names hidden files takes them.
	if err := os.WriteFile(filepath.Join(rulesDir, ".hidden-rules.yaml"), extraRules(1), 0o644); err != nil {
		t.Fatal(err)
	}
	editFile(t, filepath.Join(dir, "gateway.yaml"), `rules: ["rules/*.yaml"]`, `rules: ["rules/[a-z]*.yaml", "rules/.hidden-*.yaml"]`)
	b, errs = Load(dir, testEnv(nil))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if !slices.Contains(b.RuleFiles, filepath.Join(rulesDir, ".hidden-rules.yaml")) {
		t.Errorf("rule files %v lack the one a pattern names", b.RuleFiles)
	}
}

// listen must be host:port: validate used to accept "8080", which serve
// refuses only after creating the data directory.
func TestListenMustBeHostPort(t *testing.T) {
	for _, tc := range []struct {
		listen string
		want   string // "": valid
	}{
		{`":8081"`, ""},
		{`"127.0.0.1:0"`, ""},
		{`"[::1]:8080"`, ""},
		{`"8080"`, `listen "8080": missing port in address; expected host:port`},
		{`8080`, `listen "8080": missing port in address`},
		{`"localhost:http"`, `listen "localhost:http": port "http" is not a number from 0 to 65535`},
		{`":70000"`, `port "70000" is not a number`},
		{`"::1:8080"`, `listen "::1:8080": too many colons in address`},
	} {
		t.Run(tc.listen, func(t *testing.T) {
			dir := copyConfigs(t)
			gy := filepath.Join(dir, "gateway.yaml")
			editFile(t, gy, `listen: ":8080"`, "listen: "+tc.listen)
			_, errs := Load(dir, testEnv(nil))
			if tc.want == "" {
				if len(errs) > 0 {
					t.Fatalf("refused: %v", errs)
				}
				return
			}
			if len(errs) != 1 || !strings.Contains(errs.Error(), tc.want) || !strings.HasPrefix(errs.Error(), gy+":4:9: ") {
				t.Errorf("errors %q, want one at %s:4:9 saying %q", errs.Error(), gy, tc.want)
			}
		})
	}
}
