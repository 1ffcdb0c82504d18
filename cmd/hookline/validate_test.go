package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// validate refuses a listen address that serve cannot listen on ("8080"
// for ":8080"), at its position; it used to say ok, and serve refused it
// only after creating the data directory.
func TestValidateRefusesListenWithoutPort(t *testing.T) {
	dir := deliveryConfig(t)
	gy := filepath.Join(dir, "gateway.yaml")
	data, err := os.ReadFile(gy)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(gy, append([]byte("listen: \"8080\"\n"), data...), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := runValidate([]string{dir}, &out, &errb); code != 1 || !strings.Contains(out.String(), gy+`:1:9: listen "8080": missing port in address`) {
		t.Errorf("validate: exit %d\n%s%s", code, out.String(), errb.String())
	}

	dataDir := filepath.Join(t.TempDir(), "data")
	out.Reset()
	errb.Reset()
	if code := runServe([]string{"--config", dir, "--data", dataDir}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "missing port in address") {
		t.Errorf("serve: exit %d\n%s", code, errb.String())
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Errorf("serve created the data directory of a config it refuses (%v)", err)
	}
}

// validate checks the config tests as hookline test reads them: a test
// file that does not decode, an empty one, a case naming no rule and a
// case that asserts nothing are problems at their position; it used to
// parse none of them.
func TestValidateChecksTestFiles(t *testing.T) {
	for _, c := range []struct {
		name, content, want string
	}{
		{"unknown key", "tests:\n  - name: x\n    conector: generic\n", `:3:5: unknown key "conector"; did you mean "connector"?`},
		{"no case", "tests: []\n", ":1:8: a test file needs at least one case under tests:"},
		{"no rule", "tests:\n  - name: x\n    connector: generic\n    payload: { type: ticket.updated, reference: T1 }\n    expect: { not_matched: [no-such-rule] }\n", `:2:5: not_matched: no rule "no-such-rule" in the config`},
		{"asserts nothing", "tests:\n  - name: x\n    connector: generic\n    payload: { type: ticket.updated, reference: T1, expect: { matched: [] } }\n", ":2:5: case asserts nothing, but its payload has a key expect at"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := deliveryConfig(t)
			file := filepath.Join(dir, "rules", "x_test.yaml")
			if err := os.WriteFile(file, []byte(c.content), 0o644); err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			if code := runValidate([]string{dir}, &out, &errb); code != 1 || !strings.Contains(out.String(), file+c.want) {
				t.Errorf("validate: exit %d, want 1 and %q\n%s%s", code, file+c.want, out.String(), errb.String())
			}
		})
	}
}
