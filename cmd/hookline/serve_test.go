package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SIGHUP (kill -HUP, systemd's ExecReload) reloads the config and logs the
// outcome, a refusal included; it used to end the gateway (exit 129).
func TestSIGHUPReloadsTheConfig(t *testing.T) {
	bin := buildBinary(t)
	dir := deliveryConfig(t)
	gw := startGateway(t, bin, filepath.Join(dir, "gateway.yaml"), t.TempDir())
	exited := make(chan error, 1)
	go func() { exited <- gw.cmd.Wait() }()
	hangup := func(want string) {
		t.Helper()
		if err := gw.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		deadline := time.After(10 * time.Second)
		for !strings.Contains(gw.Logs(), want) {
			select {
			case err := <-exited:
				t.Fatalf("SIGHUP ended the gateway (%v):\n%s", err, gw.Logs())
			case <-deadline:
				t.Fatalf("no %q in the log after SIGHUP:\n%s", want, gw.Logs())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}

	rule := "\n  - id: also-done\n    on: [ticket.created]\n    connector: generic\n    then: [ { set_status: done } ]\n"
	f, err := os.OpenFile(filepath.Join(dir, "rules", "done.yaml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(rule); err != nil {
		t.Fatal(err)
	}
	f.Close()
	hangup("config reloaded")
	if !strings.Contains(gw.Logs(), "rules=2") {
		t.Errorf("the reload did not load the added rule:\n%s", gw.Logs())
	}

	if err := os.WriteFile(filepath.Join(dir, "rules", "broken.yaml"), []byte("rules: [ { id: x } ]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hangup("config reload refused")
	if r, err := http.Get(gw.URL + "/healthz"); err != nil || r.StatusCode != 200 {
		t.Fatalf("healthz after SIGHUP: %v", err)
	}

	if err := gw.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, gw.Logs())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
}
