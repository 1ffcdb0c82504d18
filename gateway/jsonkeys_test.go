package gateway

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, pointer, found := duplicateKey([]byte(tt.body))
			if found != (tt.key != "") || key != tt.key || pointer != tt.pointer {
				t.Fatalf("duplicateKey = %q, %q, %v; want %q, %q", key, pointer, found, tt.key, tt.pointer)
			}
		})
	}
}
