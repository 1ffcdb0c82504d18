package gateway

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
