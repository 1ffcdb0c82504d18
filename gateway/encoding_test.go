package gateway

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
)

func gzipped(t *testing.T, p []byte) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write(p); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return b.Bytes()
}

// Compressed webhooks: gzip, deflate and br bodies are inflated and then
// checked (signature, size, JSON) as if sent plain; a body that inflates
// beyond the connector's limit is refused 413 after reading no more than
// the limit (a quarter megabyte of gzip that would inflate to 64 MiB);
// other encodings get 415 and a corrupt stream 400.
func TestCompressedBodies(t *testing.T) {
	ts := startServer(t, copyConfigs(t), nil, nil)
	fixture := readFixture(t, "whatsapp-cloud-text-message.json")
	var deflated, br bytes.Buffer
	zw := zlib.NewWriter(&deflated)
	zw.Write(fixture)
	zw.Close()
	bw := brotli.NewWriter(&br)
	bw.Write(fixture)
	bw.Close()
	// The same payload three ways: the first is taken and processed, the
	// other two are its duplicates (the dedupe key is read from the
	// inflated payload).
	var first string
	for _, c := range []struct {
		enc  string
		body []byte
	}{{"gzip", gzipped(t, fixture)}, {"deflate", deflated.Bytes()}, {"br", br.Bytes()}} {
		r := do(t, "POST", ts.URL+"/hooks/whatsapp", c.body, map[string]string{"Content-Type": "application/json",
			"Content-Encoding": c.enc, "X-Hub-Signature-256": metaSignature("test-whatsapp-secret", fixture)})
		m := r.JSON(t)
		switch {
		case first == "" && r.Status == 202:
			first = m["id"].(string)
			if item := waitFinished(t, ts.URL, first); item["state"] != "processed" {
				t.Fatalf("%s body: %v (%v)", c.enc, item["state"], item["reason"])
			}
		case first != "" && r.Status == 200 && m["duplicate"] == true && m["id"] == first:
		default:
			t.Fatalf("%s body signed over its JSON: %d %s", c.enc, r.Status, r.Body)
		}
	}
	bomb := gzipped(t, bytes.Repeat([]byte(" "), 64<<20))
	for _, tt := range []struct {
		name, enc string
		body      []byte
		status    int
		reason    string
	}{
		{"bomb", "gzip", bomb, 413, "body (gzip, decompressed) of more than 1048576 bytes exceeds the limit of 1048576 bytes"},
		{"unknown encoding", "compress", fixture, 415, `unsupported content encoding \"compress\"`},
		{"corrupt gzip", "gzip", []byte("not gzip at all"), 400, "body is not valid gzip"},
	} {
		r := do(t, "POST", ts.URL+"/hooks/whatsapp", tt.body, map[string]string{"Content-Type": "application/json", "Content-Encoding": tt.enc})
		if r.Status != tt.status || !strings.Contains(string(r.Body), tt.reason) {
			t.Errorf("%s: %d %s, want %d with %q", tt.name, r.Status, r.Body, tt.status, tt.reason)
		}
	}
	// The admin API's JSON bodies take the same road.
	r := do(t, "POST", ts.URL+"/api/v1/subscriptions", bomb, map[string]string{"Content-Type": "application/json", "Content-Encoding": "gzip"})
	if r.Status != 413 {
		t.Errorf("a gzip bomb to the admin API: %d %s, want 413", r.Status, r.Body)
	}
}

// A token sent under a name of the connector's own choosing (no "token" or
// "secret" in it) is not kept in the inbox either: not in the headers,
// not in the query, not in a GET webhook's payload.
func TestConnectorTokenNamesAreRedacted(t *testing.T) {
	dir := copyConfigs(t)
	file := filepath.Join(dir, "connectors", "generic.yaml")
	editFile(t, file, "header: X-Hookline-Token", "header: X-Webhook-Key")
	editFile(t, file, "query: token", "query: key")
	editFile(t, file, `secret: "${GENERIC_TOKEN:-}"`, `secret: "s3cr3t-shared"`)
	editFile(t, file, "  verify:\n", "  accept_get: true\n  verify:\n")
	ts := startServer(t, dir, nil, nil)
	for i, req := range []struct {
		method, query string
		headers       map[string]string
	}{
		{"POST", "", map[string]string{"Content-Type": "application/json", "X-Webhook-Key": "s3cr3t-shared"}},
		{"POST", "?key=s3cr3t-shared", map[string]string{"Content-Type": "application/json"}},
		{"GET", "?key=s3cr3t-shared&type=ticket.updated&id=T-GET", nil},
	} {
		var body []byte
		if req.method == "POST" {
			body = fmt.Appendf(nil, `{"type": "ticket.updated", "id": "T-%d"}`, i)
		}
		r := do(t, req.method, ts.URL+"/hooks/generic"+req.query, body, req.headers)
		if r.Status != 202 {
			t.Fatalf("%s %s: %d %s", req.method, req.query, r.Status, r.Body)
		}
		item := do(t, "GET", ts.URL+"/api/v1/inbox/"+r.JSON(t)["id"].(string), nil, nil)
		if bytes.Contains(item.Body, []byte("s3cr3t-shared")) {
			t.Errorf("%s %s: the inbox keeps the token: %s", req.method, req.query, item.Body)
		}
	}
}
