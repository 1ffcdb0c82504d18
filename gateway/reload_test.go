package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// runGateway runs a gateway with opts (the test environment unless opts
// says otherwise), logging into the returned buffer.
func runGateway(t *testing.T, opts Options) (*Server, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	if opts.Env == nil {
		opts.Env = testEnv(nil)
	}
	opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	srv, err := New(opts)
	if err != nil {
		t.Fatalf("start gateway: %v", err)
	}
	runUntilCleanup(t, srv)
	return srv, logs
}

// runWatched runs a gateway over the config in dir with --watch on.
func runWatched(t *testing.T, dir string) (*Server, *syncBuffer) {
	t.Helper()
	return runGateway(t, Options{ConfigPath: dir, Listen: "127.0.0.1:0", DataDir: t.TempDir(), Watch: true})
}

const extraRule = `
  - id: extra-%d
    on: ticket.updated
    connector: generic
    when: { field: status, is: open }
    then:
      - add_tags: x
    deliver_to: generic
`

// extraRules is a rule file of one rule per id.
func extraRules(ids ...int) []byte {
	s := "rules:\n"
	for _, id := range ids {
		s += fmt.Sprintf(extraRule, id)
	}
	return []byte(s)
}

func ruleCount(s *Server) int { return len(s.Bundle().Rules.Rules()) }

// waitRules waits up to 4 s (the watcher debounces 300 ms) for the config
// in force to have n rules.
func waitRules(s *Server, n int) bool {
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		if ruleCount(s) == n {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

func writeRules(t *testing.T, file string, ids ...int) {
	t.Helper()
	if err := os.WriteFile(file, extraRules(ids...), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A directory of rules added to gateway.yaml while the gateway runs is
// watched from then on: edits of its files are reloaded. The watcher used
// to compute its directories once, at start. The directory may come
// before the edit of gateway.yaml or after it (that edit is then refused:
// its pattern matches no file yet).
func TestWatchFollowsDirectoryIncludedByReload(t *testing.T) {
	for _, folderFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("folder first %v", folderFirst), func(t *testing.T) {
			cfg := copyConfigs(t)
			srv, logs := runWatched(t, cfg)
			base := ruleCount(srv)
			more := filepath.Join(cfg, "more")
			include := func() {
				editFile(t, filepath.Join(cfg, "gateway.yaml"), `rules: ["rules/*.yaml"]`, `rules: ["rules/*.yaml", "more/*.yaml"]`)
			}
			if folderFirst {
				if err := os.Mkdir(more, 0o755); err != nil {
					t.Fatal(err)
				}
				writeRules(t, filepath.Join(more, "extra.yaml"), 1)
				include()
			} else {
				include()
				waitFor(t, "the refused reload", func() bool { return strings.Contains(logs.String(), "matches no file") })
				if err := os.Mkdir(more, 0o755); err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Second) // the reload the new folder causes is refused too: it is empty
				writeRules(t, filepath.Join(more, "extra.yaml"), 1)
			}
			if !waitRules(srv, base+1) {
				t.Fatalf("more/ included in gateway.yaml was not loaded: rules in force %d, want %d", ruleCount(srv), base+1)
			}
			writeRules(t, filepath.Join(more, "extra.yaml"), 1, 2)
			if !waitRules(srv, base+2) {
				t.Errorf("an edit of more/extra.yaml was not reloaded: rules in force %d, want %d", ruleCount(srv), base+2)
			}
		})
	}
}

// A rules directory replaced as a whole (rm -r and a copy, a deploy
// script) is watched again: inotify drops the watch of a removed
// directory, and the watcher used to ignore the directory's re-creation.
func TestWatchDirectoryRemovedAndCreatedAgain(t *testing.T) {
	cfg := copyConfigs(t)
	srv, logs := runWatched(t, cfg)
	base := ruleCount(srv)
	rulesDir := filepath.Join(cfg, "rules")
	saved := t.TempDir()
	if err := os.CopyFS(saved, os.DirFS(rulesDir)); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(rulesDir); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the refused reload", func() bool { return strings.Contains(logs.String(), "matches no file") })
	writeRules(t, filepath.Join(saved, "extra.yaml"), 1)
	if err := os.CopyFS(rulesDir, os.DirFS(saved)); err != nil {
		t.Fatal(err)
	}
	if !waitRules(srv, base+1) {
		t.Fatalf("the re-created rules/ was not reloaded: rules in force %d, want %d", ruleCount(srv), base+1)
	}
	writeRules(t, filepath.Join(rulesDir, "extra.yaml"), 1, 2)
	if !waitRules(srv, base+2) {
		t.Errorf("an edit in the re-created rules/ was not reloaded: rules in force %d, want %d", ruleCount(srv), base+2)
	}
}

// Kubernetes ConfigMap volumes update by swapping the ..data symlink, which
// changes no *.yaml name in the watched directory: every update, not only
// the first, is reloaded.
func TestWatchConfigMapSymlinkSwaps(t *testing.T) {
	src := copyConfigs(t)
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.CopyFS(filepath.Join(root, "..2026_01_01_00_00_00.1"), os.DirFS(src)))
	must(os.Symlink("..2026_01_01_00_00_00.1", filepath.Join(root, "..data")))
	for _, n := range []string{"gateway.yaml", "connectors", "rules"} {
		must(os.Symlink(filepath.Join("..data", n), filepath.Join(root, n)))
	}
	srv, _ := runWatched(t, root)
	base := ruleCount(srv)

	// What the kubelet does on each update.
	previous := filepath.Join(root, "..2026_01_01_00_00_00.1")
	for i, ids := range [][]int{{1}, {1, 2}, {1, 2, 3}} {
		version := filepath.Join(root, fmt.Sprintf("..2026_01_0%d_00_00_00.%d", i+2, i+2))
		must(os.CopyFS(version, os.DirFS(src)))
		writeRules(t, filepath.Join(version, "rules", "extra.yaml"), ids...)
		must(os.Symlink(filepath.Base(version), filepath.Join(root, "..data_tmp")))
		must(os.Rename(filepath.Join(root, "..data_tmp"), filepath.Join(root, "..data")))
		must(os.RemoveAll(previous))
		previous = version
		if !waitRules(srv, base+len(ids)) {
			t.Fatalf("ConfigMap update %d was not reloaded: rules in force %d, want %d", i+1, ruleCount(srv), base+len(ids))
		}
	}
}

// body_limit raised by a reload above the read ceiling of the start (8 MiB
// for limits up to 2 MiB) applies: Fiber's ceiling used to be fixed when
// the app was built, and a 9 MiB webhook under a reloaded 16 MiB limit
// got a connection reset.
func TestReloadRaisesBodyLimitAboveStartCeiling(t *testing.T) {
	body := []byte(`{"type":"ticket.updated","id":"1","text":"` + strings.Repeat("a", 9<<20) + `"}`)
	post := func(s *Server) string {
		resp, err := http.Post("http://"+s.Addr()+"/hooks/generic", "application/json", bytes.NewReader(body))
		if err != nil {
			return "transport error: " + err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return fmt.Sprintf("%d %s", resp.StatusCode, b)
	}
	// Control: the same limit set at start takes the webhook.
	atStart := copyConfigs(t)
	editFile(t, filepath.Join(atStart, "gateway.yaml"), "body_limit: 1MiB", "body_limit: 16MiB")
	control, _ := runGateway(t, Options{ConfigPath: atStart, Listen: "127.0.0.1:0", DataDir: t.TempDir()})
	if got := post(control); !strings.HasPrefix(got, "202") {
		t.Fatalf("control (16MiB at start): %s", got)
	}

	cfg := copyConfigs(t)
	srv, _ := runGateway(t, Options{ConfigPath: cfg, Listen: "127.0.0.1:0", DataDir: t.TempDir()})
	if got := post(srv); !strings.HasPrefix(got, "413") && !strings.HasPrefix(got, "transport error") {
		t.Fatalf("a %d-byte webhook under the limit of 1MiB: %s", len(body), got)
	}
	editFile(t, filepath.Join(cfg, "gateway.yaml"), "body_limit: 1MiB", "body_limit: 16MiB")
	if err := srv.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := post(srv); !strings.HasPrefix(got, "202") {
		t.Errorf("a %d-byte webhook under the reloaded body_limit of 16MiB: %s", len(body), got)
	}
}

// A reload cannot apply listen, data_dir, delivery.workers,
// delivery.log_dir or egress.allow: it keeps the values in force and warns
// about each, in the log and in the reload API's answer; they used to be
// dropped without a word (all but egress.allow). Live settings and those
// the command line overrides give no such warning.
func TestReloadWarnsAboutRestartOnlySettings(t *testing.T) {
	type fields struct {
		listen, dataDir, logDir string
		workers                 int
		egress                  string
	}
	inForce := func(s *Server) fields {
		f := s.Bundle().File
		return fields{f.Listen, f.DataDir, f.Delivery.LogDir, f.Delivery.Workers, fmt.Sprint(s.Bundle().EgressAllow)}
	}
	for _, tc := range []struct {
		name     string
		old, new string
		override bool   // the gateway starts with --listen and --data
		warning  string // "": none
	}{
		{"listen", `listen: "127.0.0.1:0"`, `listen: "127.0.0.1:1"`, false, "listen changed from 127.0.0.1:0 to 127.0.0.1:1"},
		{"listen overridden", `listen: "127.0.0.1:0"`, `listen: "127.0.0.1:1"`, true, ""},
		{"data_dir", "data_dir: DATA", "data_dir: OTHER", false, "data_dir changed from DATA to OTHER"},
		{"data_dir overridden", "data_dir: DATA", "data_dir: OTHER", true, ""},
		{"delivery.workers", "workers: 32", "workers: 2", false, "delivery.workers changed from 32 to 2"},
		{"delivery.log_dir", "# log_dir: /var/log/hookline", `log_dir: "OTHER"`, false, "delivery.log_dir changed from (unset) to OTHER"},
		{"egress.allow", "  allow: []", `  allow: ["10.9.0.0/16"]`, false, "egress.allow (with HOOKLINE_EGRESS_ALLOW) changed from [] to [10.9.0.0/16]"},
		{"body_limit (live)", "body_limit: 1MiB", "body_limit: 2MiB", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := copyConfigs(t)
			gy := filepath.Join(cfg, "gateway.yaml")
			data, other := t.TempDir(), t.TempDir()
			editFile(t, gy, `listen: ":8080"`, `listen: "127.0.0.1:0"`)
			editFile(t, gy, `data_dir: "./data"`, "data_dir: "+data)
			opts := Options{ConfigPath: cfg}
			if tc.override {
				opts.Listen, opts.DataDir = "127.0.0.1:0", t.TempDir()
			}
			srv, logs := runGateway(t, opts)
			before := inForce(srv)
			replace := strings.NewReplacer("DATA", data, "OTHER", other)
			editFile(t, gy, replace.Replace(tc.old), replace.Replace(tc.new))
			resp, err := http.Post("http://"+srv.Addr()+"/api/v1/config/reload", "", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var answer struct {
				Status   string   `json:"status"`
				Warnings []string `json:"warnings"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil || answer.Status != "reloaded" || answer.Warnings == nil {
				t.Fatalf("reload: %d %+v %v", resp.StatusCode, answer, err)
			}
			restart := func(w string) bool { return strings.Contains(w, "takes effect at the next restart") }
			if tc.warning == "" {
				if i := slices.IndexFunc(answer.Warnings, restart); i >= 0 {
					t.Errorf("a reload that changed %s warns %q", tc.name, answer.Warnings[i])
				}
				return
			}
			want := replace.Replace(tc.warning)
			if !slices.ContainsFunc(answer.Warnings, func(w string) bool { return strings.HasPrefix(w, want) && restart(w) }) {
				t.Errorf("reload answer warnings %q, want one starting %q", answer.Warnings, want)
			}
			if !strings.Contains(logs.String(), "config reload: "+want) {
				t.Errorf("no warning %q in the log:\n%s", want, logs.String())
			}
			if after := inForce(srv); after != before {
				t.Errorf("settings in force after the reload %+v, want those of the start %+v", after, before)
			}
		})
	}
}

// A connector whose default: is a YAML anchor holding an alias to itself
// used to overflow the stack while loading (a fatal error, not a panic):
// a reload killed the running gateway. It is a config error at the alias;
// the reload is refused and the gateway keeps its config.
func TestReloadRefusesSelfReferencingAlias(t *testing.T) {
	cfg := copyConfigs(t)
	srv, _ := runGateway(t, Options{ConfigPath: cfg, Listen: "127.0.0.1:0", DataDir: t.TempDir()})
	generic := filepath.Join(cfg, "connectors", "generic.yaml")
	editFile(t, generic, "tags: tags", "tags: { path: tags, default: &loop [a, *loop] }")
	err := srv.Reload()
	if want := generic + ":73:48: alias *loop refers to a value that contains it"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("reload with a self-referencing alias: %v; want an error containing %s", err, want)
	}
	resp, err := http.Post("http://"+srv.Addr()+"/hooks/generic", "application/json", strings.NewReader(`{"type":"ticket.updated","id":"1"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 202 {
		t.Fatalf("after the refused reload, a webhook got %d; want 202", resp.StatusCode)
	}
}
