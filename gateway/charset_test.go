package gateway

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/hookline/hookline/connectors"
	"github.com/hookline/hookline/connectors/verify"
)

// A body's declared charset is honoured: ISO-8859-1 and windows-1252 are
// converted to UTF-8 before the body is parsed, a UTF-8 byte order mark is
// dropped, other charsets are refused 415, and JSON that is not UTF-8 is
// refused 400 instead of being stored with U+FFFD in place of its text.
func TestDeclaredCharsets(t *testing.T) {
	ts := startServer(t, copyConfigs(t), nil, nil)
	const jsonCT, formCT = "application/json", "application/x-www-form-urlencoded"
	tests := []struct {
		name, ctype, body string
		status            int
		want              string // in the stored payload (202) or the reason
	}{
		{"JSON ISO-8859-1", jsonCT + "; charset=ISO-8859-1", "{\"id\":\"L1\",\"subject\":\"caf\xe9\"}", 202, `"subject":"café"`},
		{"JSON latin1, quoted", jsonCT + `; charset="latin1"`, "{\"id\":\"L2\",\"subject\":\"na\xefve\"}", 202, `"subject":"naïve"`},
		{"JSON windows-1252", jsonCT + "; charset=windows-1252", "{\"id\":\"L3\",\"subject\":\"\x80 5 \x93ok\x94\"}", 202, `"subject":"€ 5 “ok”"`},
		{"form ISO-8859-1, percent-encoded", formCT + "; charset=iso-8859-1", "id=L4&subject=caf%E9+cr%E8me", 202, `"subject":"café crème"`},
		{"form ISO-8859-1, raw bytes", formCT + "; charset=ISO-8859-1", "id=L5&subject=caf\xe9", 202, `"subject":"café"`},
		{"JSON UTF-8 with a BOM", jsonCT + "; charset=utf-8", "\xEF\xBB\xBF{\"id\":\"B1\",\"subject\":\"café\"}", 202, `{"id":"B1","subject":"café"}`},
		{"JSON UTF-8 with a BOM, no charset", jsonCT, "\xEF\xBB\xBF{\"id\":\"B2\"}", 202, `{"id":"B2"}`},
		{"JSON UTF-8 declared", jsonCT + "; charset=UTF-8", `{"id":"U1","subject":"café"}`, 202, `"subject":"café"`},
		{"JSON US-ASCII", jsonCT + "; charset=us-ascii", `{"id":"U2"}`, 202, `{"id":"U2"}`},
		{"JSON UTF-16", jsonCT + "; charset=utf-16", "{\x00}\x00", 415, `unsupported charset "utf-16"`},
		{"form Shift_JIS", formCT + "; charset=Shift_JIS", "id=S1", 415, `unsupported charset "shift_jis"`},
		{"JSON not UTF-8, no charset", jsonCT, "{\"id\":\"X1\",\"subject\":\"caf\xe9\"}", 400, "not valid UTF-8 at byte 26"},
		{"JSON not UTF-8, declared UTF-8", jsonCT + "; charset=utf-8", "{\"id\":\"X2\",\"subject\":\"caf\xe9\"}", 400, "not valid UTF-8"},
		{"form not UTF-8, no charset", formCT, "id=X3&subject=caf%E9", 400, "not UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, "POST", ts.URL+"/hooks/generic", []byte(tt.body), map[string]string{"Content-Type": tt.ctype})
			if r.Status != tt.status {
				t.Fatalf("status %d %s; want %d", r.Status, r.Body, tt.status)
			}
			if r.Status != 202 {
				if reason, _ := r.JSON(t)["error"].(string); !strings.Contains(reason, tt.want) {
					t.Fatalf("reason %q lacks %q", reason, tt.want)
				}
				return
			}
			item := waitFinished(t, ts.URL, r.JSON(t)["id"].(string))
			stored, _ := json.Marshal(item["body"])
			if !strings.Contains(string(stored), tt.want) {
				t.Fatalf("stored payload %s lacks %s", stored, tt.want)
			}
			if item["state"] != "processed" {
				t.Fatalf("state %v: %v", item["state"], item["reason"])
			}
		})
	}
}

// A signature covers the bytes as sent: a body declared ISO-8859-1 verifies
// over its raw bytes, not over their UTF-8 conversion.
func TestCharsetConversionFollowsTheSignatureCheck(t *testing.T) {
	ts := startServer(t, copyConfigs(t), nil, nil)
	body := []byte("{\"type\":\"notification_event\",\"topic\":\"ping\",\"id\":\"notif_1\",\"data\":{\"item\":{\"type\":\"ping\",\"message\":\"caf\xe9\"}}}")
	sign := func(b []byte) string {
		m := hmac.New(sha1.New, []byte("dev-insecure-intercom-secret"))
		m.Write(b)
		return "sha1=" + hex.EncodeToString(m.Sum(nil))
	}
	const ct = "application/json; charset=ISO-8859-1"
	converted := []byte(strings.Replace(string(body), "caf\xe9", "café", 1))
	if r := do(t, "POST", ts.URL+"/hooks/intercom", body, map[string]string{"Content-Type": ct, "X-Hub-Signature": sign(converted)}); r.Status != 401 {
		t.Fatalf("signed over the converted body: %d %s; want 401", r.Status, r.Body)
	}
	r := do(t, "POST", ts.URL+"/hooks/intercom", body, map[string]string{"Content-Type": ct, "X-Hub-Signature": sign(body)})
	if r.Status != 202 {
		t.Fatalf("signed over the bytes sent: %d %s; want 202", r.Status, r.Body)
	}
	item := waitFinished(t, ts.URL, r.JSON(t)["id"].(string))
	if stored, _ := json.Marshal(item["body"]); !strings.Contains(string(stored), `"message":"café"`) {
		t.Fatalf("stored payload %s, want the message converted to café", stored)
	}
}

// A signature over form parameters (Twilio's) covers them as sent: a form
// declared ISO-8859-1 is verified with its parameters' raw bytes, and the
// payload holds them as UTF-8.
func TestFormParametersAreVerifiedAsSent(t *testing.T) {
	const token, u = "12345", "https://hooks.example.com/hooks/twilio"
	v, err := verify.New(verify.Config{Scheme: verify.SchemeTwilio, Secret: token})
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha1.New, []byte(token))
	m.Write([]byte(u + "Body" + "caf\xe9" + "From" + "+1555"))
	req := &verify.Request{Method: "POST", URL: u, Body: []byte("From=%2B1555&Body=caf%E9"), Header: http.Header{
		"Content-Type":       {"application/x-www-form-urlencoded; charset=ISO-8859-1"},
		"X-Twilio-Signature": {base64.StdEncoding.EncodeToString(m.Sum(nil))},
	}}
	adm, r := admit(&connectors.Inbound{Verifier: v}, req.Header.Get("Content-Type"), req)
	if r != nil {
		t.Fatalf("refused: %+v", r)
	}
	if want := `{"From":"+1555","Body":"café"}`; string(adm.payload) != want || !adm.converted {
		t.Fatalf("payload %s (converted %v), want %s", adm.payload, adm.converted, want)
	}
}
