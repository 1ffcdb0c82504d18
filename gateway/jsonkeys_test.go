package gateway

import (
	"bytes"
	"compress/gzip"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A JSON body that names a key twice in one object is refused 400: the
// schema check (encoding/json, the last wins) and the mapping's paths
// (gjson, the first wins) would read different values, and a Slack body
// whose last "type" is not event_callback skipped the schema's
// event_callback branch (event_id required) while being mapped as one.
func TestDuplicateJSONKeysAreRefused(t *testing.T) {
	ts := startServer(t, copyConfigs(t), nil, nil)
	body := []byte(`{"type":"event_callback","team_id":"T1","api_app_id":"A1","event":{"type":"message","user":"U1","channel":"C1","text":"hi","ts":"1.2"},"type":"x"}`)
	stamp := fmt.Sprint(time.Now().Unix())
	m := hmac.New(sha256.New, []byte("dev-insecure-slack-signing-secret"))
	m.Write([]byte("v0:" + stamp + ":"))
	m.Write(body)
	r := do(t, "POST", ts.URL+"/hooks/slack", body, map[string]string{"Content-Type": "application/json",
		"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": "v0=" + hex.EncodeToString(m.Sum(nil))})
	if r.Status != 400 {
		t.Fatalf("Slack body with \"type\" twice: %d %s; want 400", r.Status, r.Body)
	}
	if reason, _ := r.JSON(t)["error"].(string); !strings.Contains(reason, `duplicate key "type" in the object at /`) {
		t.Fatalf("reason %q does not name the key and its object", reason)
	}
	r = do(t, "POST", ts.URL+"/hooks/generic", []byte(`{"id":"T-1","data":{"status":"open","st\u0061tus":"pending"}}`), map[string]string{"Content-Type": "application/json"})
	if r.Status != 400 {
		t.Fatalf("generic body with data.status twice: %d %s; want 400", r.Status, r.Body)
	}
	if reason, _ := r.JSON(t)["error"].(string); !strings.Contains(reason, `duplicate key "status" in the object at /data`) {
		t.Fatalf("reason %q does not name the key and its object", reason)
	}
}

func TestDuplicateKey(t *testing.T) {
	many := make([]string, 100)
	for i := range many {
		many[i] = fmt.Sprintf(`"k%d":%d`, i, i)
	}
	tests := []struct {
		name, body, key, pointer string
	}{
		{"none", `{"a":1,"b":{"a":2},"c":[{"a":1},{"a":2}]}`, "", ""},
		{"scalar", `"a"`, "", ""},
		{"top level", `{"a":1,"b":2,"a":3}`, "a", ""},
		{"escaped spelling", `{"a":1,"\u0061":2}`, "a", ""},
		{"nested", `{"x":{"y":[1,{"z":1,"z":2}]}}`, "z", "/x/y/1"},
		{"pointer escapes", `{"a/b~c":{"k":1,"k":2}}`, "k", "/a~1b~0c"},
		{"in an array", `[{"a":1},{"b":1,"b":1}]`, "b", "/1"},
		{"big object, unique", "{" + strings.Join(many, ",") + "}", "", ""},
		{"big object, repeat at the end", "{" + strings.Join(many, ",") + `,"k7":0}`, "k7", ""},
		{"big object, repeat inside a member", "{" + strings.Join(many, ",") + `,"in":{"k7":0,"k7":1}}`, "k7", "/in"},
		{"big object in a small one", `{"a":{` + strings.Join(many, ",") + `},"b":1,"a":2}`, "a", ""},
		{"structure inside strings", `{"a":"{\"a\":1,[\\","b":"]},\"a\":","c":"\\"}`, "", ""},
		{"escaped quote in a key", `{"a\"b":1,"a\u0022b":2}`, `a"b`, ""},
		{"whitespace", "{ \"a\" : [ 1 , { \"b\" : 1 ,\n\t\"b\" : 2 } ] }", "b", "/a/1"},
		{"keys of closed objects", `{"a":{"x":1},"b":{"x":1},"x":{"a":1,"b":1}}`, "", ""},
		{"deep pointer", `[[],[0,{"o":{"p":[{"q":1,"q":1}]}}]]`, "q", "/1/1/o/p/0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !json.Valid([]byte(tt.body)) {
				t.Fatalf("test body %s is not valid JSON", tt.body)
			}
			key, pointer, found := duplicateKey([]byte(tt.body))
			if found != (tt.key != "") || key != tt.key || pointer != tt.pointer {
				t.Fatalf("duplicateKey = %q, %q, %v; want %q, %q", key, pointer, found, tt.key, tt.pointer)
			}
		})
	}
}

// deepArrays is a JSON document of depth arrays around one string of blob
// bytes: valid for json.Valid, which allows up to 10,000 levels.
func deepArrays(depth, blob int) []byte {
	return []byte(strings.Repeat("[", depth) + `"` + strings.Repeat("x", blob) + `"` + strings.Repeat("]", depth))
}

// The duplicate-key check reads the document once: a body nested 9,000
// deep around a 1 MB string (1 MiB, the default body_limit) costs about
// what json.Valid does, not depth times size (seconds of CPU).
func TestDuplicateKeyIsLinearInDeepNesting(t *testing.T) {
	const depth = 9000
	body := []byte(strings.Repeat("[", depth) + `"` + strings.Repeat("x", 1<<20-2*depth-20) + `",{"a":1,"a":2}` + strings.Repeat("]", depth))
	start := time.Now()
	if !json.Valid(body) {
		t.Fatal("test body is not valid JSON")
	}
	valid := time.Since(start)
	start = time.Now()
	done := make(chan struct{})
	var key, pointer string
	go func() { key, pointer, _ = duplicateKey(body); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("duplicateKey still running after 5s on a %d-byte body (json.Valid: %v)", len(body), valid)
	}
	took := time.Since(start)
	t.Logf("%d-byte body: json.Valid %v, duplicateKey %v", len(body), valid, took)
	if want := strings.Repeat("/0", depth-1) + "/1"; key != "a" || pointer != want {
		t.Fatalf("duplicateKey = %q at %.20q...; want \"a\" at /0/0/.../1", key, pointer)
	}
	if took > 200*time.Millisecond+10*valid {
		t.Fatalf("duplicateKey took %v on a %d-byte body, json.Valid %v", took, len(body), valid)
	}
}

// A request with a bad signature is refused 401 before its body is read
// further than json.Valid: a deeply nested 1 MiB body (1 KB gzipped) costs
// the sender's signature nothing and the gateway next to nothing; a body
// with a key twice is refused 401, not 400, when unsigned.
func TestUnsignedBodyIsRefusedBeforeTheKeyCheck(t *testing.T) {
	ts := startServer(t, copyConfigs(t), nil, nil)
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write(deepArrays(9000, 1<<20-18000-2))
	zw.Close()
	start := time.Now()
	r := do(t, "POST", ts.URL+"/hooks/whatsapp", zb.Bytes(), map[string]string{
		"Content-Type": "application/json", "Content-Encoding": "gzip", "X-Hub-Signature-256": "sha256=00"})
	took := time.Since(start)
	if r.Status != 401 {
		t.Fatalf("deeply nested body with a bad signature: %d %s; want 401", r.Status, r.Body)
	}
	if took > 500*time.Millisecond {
		t.Fatalf("a %d-byte unsigned request took %v to be refused", zb.Len(), took)
	}
	r = do(t, "POST", ts.URL+"/hooks/whatsapp", []byte(`{"object":"whatsapp_business_account","object":"x"}`), map[string]string{
		"Content-Type": "application/json", "X-Hub-Signature-256": "sha256=00"})
	if r.Status != 401 {
		t.Fatalf("body with a key twice and a bad signature: %d %s; want 401 (the signature is checked first)", r.Status, r.Body)
	}
}

// BenchmarkDuplicateKey measures the check on typical webhooks: it runs
// on every JSON body the gateway takes.
func BenchmarkDuplicateKey(b *testing.B) {
	for _, name := range []string{"zendesk-ticket-status-changed.json", "intercom-conversation-user-replied.json"} {
		body, err := os.ReadFile(filepath.Join("..", "connectors", "testdata", "payloads", name))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("%s/%dB", strings.TrimSuffix(name, ".json"), len(body)), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, dup := duplicateKey(body); dup {
					b.Fatal("duplicate key in a fixture")
				}
			}
		})
	}
}
