package connectors

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/yamlconf"
	"github.com/hookline/hookline/schemas"
)

// fixturesDir holds the platforms' published payloads (read-only).
const fixturesDir = "../testdata/fixtures"

// shippedDir holds the example connector files.
const shippedDir = "../configs/connectors"

// shippedFiles returns the example connector files (not the config tests
// kept beside them).
func shippedFiles(t testing.TB) []string {
	t.Helper()
	all, err := filepath.Glob(filepath.Join(shippedDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, f := range all {
		if !strings.HasSuffix(f, "_test.yaml") {
			files = append(files, f)
		}
	}
	return files
}

// Development defaults of the shipped connectors' secrets.
const (
	devWhatsAppSecret = "dev-insecure-whatsapp-secret"
	devVerifyToken    = "dev-insecure-verify-token"
	devZendeskSecret  = "dev-insecure-zendesk-secret"
)

var (
	registryOnce sync.Once
	registry     *schemas.Registry
	registryErr  error
)

// testRegistry compiles the embedded schemas once per test binary.
func testRegistry(t testing.TB) *schemas.Registry {
	t.Helper()
	registryOnce.Do(func() { registry, registryErr = schemas.New() })
	if registryErr != nil {
		t.Fatalf("schemas.New: %v", registryErr)
	}
	return registry
}

// loadShipped loads configs/connectors/<name>.yaml with env as the environment.
func loadShipped(t testing.TB, name string, env map[string]string) *Connector {
	t.Helper()
	p := filepath.Join(shippedDir, name+".yaml")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return loadYAML(t, p, string(data), env)
}

// loadYAML parses and loads src, failing the test on any error.
func loadYAML(t testing.TB, file, src string, env map[string]string) *Connector {
	t.Helper()
	c, errs := tryLoad(t, file, src, env)
	if len(errs) > 0 {
		t.Fatalf("load %s:\n%v", file, errs)
	}
	return c
}

// tryLoad parses and loads src and returns the errors of both steps.
func tryLoad(t testing.TB, file, src string, env map[string]string) (*Connector, yamlconf.Errors) {
	t.Helper()
	root, errs := yamlconf.Parse(file, []byte(src), yamlconf.MapEnv(env))
	if len(errs) > 0 {
		return nil, errs
	}
	return Load(file, root, LoadOptions{Schemas: testRegistry(t)})
}

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signHeaders returns the headers a platform using scheme would send with body.
func signHeaders(scheme, secret string, body []byte, now time.Time) http.Header {
	h := http.Header{}
	switch scheme {
	case "meta", "github":
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(body)
		h.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(m.Sum(nil)))
	case "zendesk":
		ts := now.UTC().Format(time.RFC3339)
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte(ts))
		m.Write(body)
		h.Set("X-Zendesk-Webhook-Signature-Timestamp", ts)
		h.Set("X-Zendesk-Webhook-Signature", base64.StdEncoding.EncodeToString(m.Sum(nil)))
	}
	return h
}

// errorLines renders errors one per line, for comparisons.
func errorLines(errs yamlconf.Errors) string {
	lines := make([]string, len(errs))
	for i, e := range errs {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// hmacHex is hex(HMAC-SHA256(secret, body)).
func hmacHex(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}
