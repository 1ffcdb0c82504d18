package gateway

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/yamlconf"
)

// fixtures is where the platforms' published payloads live (testdata/fixtures).
const fixtures = "../testdata/fixtures"

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, name))
	if err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	return b
}

// testEnv is the environment tests run the example configs with: known
// secrets, so requests can be signed.
func testEnv(extra map[string]string) yamlconf.Env {
	m := map[string]string{
		"WHATSAPP_APP_SECRET":    "test-whatsapp-secret",
		"WHATSAPP_VERIFY_TOKEN":  "test-verify-token",
		"ZENDESK_WEBHOOK_SECRET": "test-zendesk-secret",
	}
	for k, v := range extra {
		m[k] = v
	}
	return yamlconf.MapEnv(m)
}

// copyConfigs copies the shipped configs into a temp dir so a test can edit them.
func copyConfigs(t testing.TB) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.Walk("../configs", func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("../configs", p)
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

type testServer struct {
	*Server
	URL string
}

// startServer runs a real gateway on a loopback port over the given config dir.
func startServer(t testing.TB, cfgDir string, env map[string]string, now func() time.Time) *testServer {
	t.Helper()
	return startServerWith(t, cfgDir, env, now, nil)
}

// startServerWith is startServer with setup called on the server before
// it runs (nil: none).
func startServerWith(t testing.TB, cfgDir string, env map[string]string, now func() time.Time, setup func(*Server)) *testServer {
	t.Helper()
	srv, err := New(Options{ConfigPath: cfgDir, Listen: "127.0.0.1:0", DataDir: t.TempDir(), Env: testEnv(env), Now: now})
	if err != nil {
		t.Fatalf("start gateway: %v", err)
	}
	if setup != nil {
		setup(srv)
	}
	runUntilCleanup(t, srv)
	return &testServer{Server: srv, URL: "http://" + srv.Addr()}
}

// runUntilCleanup runs srv until the test ends and waits until it serves.
func runUntilCleanup(t testing.TB, srv *Server) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for srv.Addr() == "" || !srv.ready.Load() {
		if time.Now().After(deadline) {
			t.Fatal("gateway did not start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway run: %v", err)
		}
	})
}

type response struct {
	Status int
	Body   []byte
	Header http.Header
}

func (r response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("answer is not a JSON object: %v: %s", err, r.Body)
	}
	return m
}

func do(t testing.TB, method, url string, body []byte, headers map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, Body: b, Header: resp.Header}
}

func metaSignature(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// editFile replaces the first old in a config file with new, as an admin
// editing it would; the test fails when old is not there.
func editFile(t testing.TB, file, old, new string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(data), old, new, 1)
	if edited == string(data) {
		t.Fatalf("%s has no %q to edit", file, old)
	}
	if err := os.WriteFile(file, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitFinished waits until inbox item id of the gateway at base is no
// longer pending and returns it as the API shows it.
func waitFinished(t testing.TB, base, id string) map[string]any {
	t.Helper()
	var item map[string]any
	waitFor(t, "inbox item "+id+" finished", func() bool {
		item = do(t, "GET", base+"/api/v1/inbox/"+id, nil, nil).JSON(t)
		return item["state"] != "pending"
	})
	return item
}

func zendeskSignature(secret, stamp string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(stamp))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// runTestFile writes content to the config test file file, loads the
// configs in dir and runs that file, failing t unless it yields want
// outcomes and no errors.
func runTestFile(t *testing.T, dir, file, content string, want int) []TestOutcome {
	t.Helper()
	writeFile(t, file, content)
	b, errs := Load(dir, testEnv(nil))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	outcomes, errs := RunConfigTests(b, []string{file}, testEnv(nil))
	if len(errs) > 0 || len(outcomes) != want {
		t.Fatalf("outcomes %+v errs %v, want %d outcomes", outcomes, errs, want)
	}
	return outcomes
}
