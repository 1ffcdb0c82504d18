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
