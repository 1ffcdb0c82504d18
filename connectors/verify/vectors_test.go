package verify

import (
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// vector is one entry of testdata/fixtures/signature-vectors.json.
type vector struct {
	Name            string            `json:"name"`
	Scheme          string            `json:"scheme"`
	Secret          string            `json:"secret"`
	Body            *string           `json:"body"`
	BodyFile        string            `json:"body_file"`
	HeaderName      string            `json:"header_name"`
	TimestampHeader string            `json:"timestamp_header"`
	IDHeader        string            `json:"id_header"`
	Timestamp       string            `json:"timestamp"`
	ID              string            `json:"id"`
	URL             string            `json:"url"`
	Params          map[string]string `json:"params"`
	Expected        string            `json:"expected"`
	Valid           bool              `json:"valid"`
}

// loadVectors reads the published known-answer vectors.
func loadVectors(t *testing.T) []vector {
	t.Helper()
	var vs []vector
	if err := json.Unmarshal(readFixture(t, "signature-vectors.json"), &vs); err != nil {
		t.Fatalf("decode signature-vectors.json: %v", err)
	}
	if len(vs) == 0 {
		t.Fatal("signature-vectors.json holds no vectors")
	}
	return vs
}

// vectorBody returns the vector's exact body: its body_file when the file
// exists (checked against the inline body), else the inline body. For Twilio
// vectors without a body, the form encoding of params.
func vectorBody(t *testing.T, v vector) []byte {
	t.Helper()
	if v.BodyFile != "" {
		b, err := os.ReadFile(filepath.Join(fixturesDir, v.BodyFile))
		switch {
		case err == nil:
			if v.Body != nil && string(b) != *v.Body {
				t.Fatalf("%s: body_file %s differs from the inline body", v.Name, v.BodyFile)
			}
			return b
		case errors.Is(err, fs.ErrNotExist) && v.Body != nil:
			t.Logf("%s: body_file %s is not in the fixtures; using the vector's inline body", v.Name, v.BodyFile)
		default:
			t.Fatalf("%s: read body_file: %v", v.Name, err)
		}
	}
	if v.Body != nil {
		return []byte(*v.Body)
	}
	form := url.Values{}
	for k, val := range v.Params {
		form.Set(k, val)
	}
	return []byte(form.Encode())
}

// vectorRequest builds the request and config a vector describes.
func vectorRequest(t *testing.T, v vector) (Config, *Request) {
	t.Helper()
	body := vectorBody(t, v)
	r := &Request{Method: http.MethodPost, Header: http.Header{}, Body: body}
	r.Header.Set(v.HeaderName, v.Expected)
	if v.Timestamp != "" {
		ts, err := strconv.ParseInt(v.Timestamp, 10, 64)
		if err != nil {
			t.Fatalf("%s: timestamp: %v", v.Name, err)
		}
		r.Now = time.Unix(ts, 0).Add(30 * time.Second)
	}
	switch v.Scheme {
	case "github-hmac-sha256-hex":
		return Config{Scheme: SchemeGitHub, Secret: v.Secret}, r
	case "slack-v0":
		r.Header.Set(v.TimestampHeader, v.Timestamp)
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return Config{Scheme: SchemeSlack, Secret: v.Secret}, r
	case "standard-webhooks-v1":
		r.Header.Set("webhook-id", v.ID)
		r.Header.Set("webhook-timestamp", v.Timestamp)
		return Config{Scheme: SchemeStandardWebhooks, Secret: v.Secret}, r
	case "twilio-hmac-sha1-form":
		r.URL = v.URL
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return Config{Scheme: SchemeTwilio, Secret: v.Secret}, r
	}
	t.Fatalf("%s: unknown vector scheme %q", v.Name, v.Scheme)
	return Config{}, nil
}

func TestPublishedVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			cfg, r := vectorRequest(t, v)
			err := mustNew(t, cfg).Verify(r)
			if v.Valid {
				if err != nil {
					t.Fatalf("published valid vector refused: %v", err)
				}
				// The same bytes with one byte changed must fail.
				tampered := cloneRequest(r)
				tampered.Body = append(tampered.Body, ' ')
				if cfg.Scheme == SchemeTwilio {
					tampered.Body = []byte(strings.Replace(string(r.Body), "1234", "1235", 1))
				}
				assertRefused(t, mustNew(t, cfg).Verify(tampered), "does not match", v.Secret, v.Expected)
				// A different secret must fail.
				cfg.Secret = otherSecret(cfg.Scheme)
				assertRefused(t, mustNew(t, cfg).Verify(r), "does not match", cfg.Secret)
				return
			}
			assertRefused(t, err, "signature does not match", v.Secret)
		})
	}
}

// otherSecret is a well-formed secret for scheme that signed nothing here.
func otherSecret(scheme string) string {
	if scheme == SchemeStandardWebhooks {
		return "whsec_b2xkLXNlY3JldC0wMDAwMDAwMDAwMDA=" // base64("old-secret-000000000000")
	}
	return "old-secret-0000"
}

// TestPublishedVectorsRotation: a vector's secret listed second among
// several active secrets still verifies.
func TestPublishedVectorsRotation(t *testing.T) {
	for _, v := range loadVectors(t) {
		if !v.Valid {
			continue
		}
		t.Run(v.Name, func(t *testing.T) {
			cfg, r := vectorRequest(t, v)
			cfg.Secrets = []string{otherSecret(cfg.Scheme), cfg.Secret}
			cfg.Secret = ""
			if err := mustNew(t, cfg).Verify(r); err != nil {
				t.Fatalf("second of two secrets refused: %v", err)
			}
			cfg.Secrets = cfg.Secrets[:1]
			assertRefused(t, mustNew(t, cfg).Verify(r), "signature does not match")
		})
	}
}

// TestGitHubVectorWithOtherSchemes: the GitHub vector is also a known answer
// for meta and for the generic hmac scheme configured the GitHub way.
func TestGitHubVectorWithOtherSchemes(t *testing.T) {
	var gh vector
	for _, v := range loadVectors(t) {
		if v.Scheme == "github-hmac-sha256-hex" {
			gh = v
		}
	}
	if gh.Name == "" {
		t.Fatal("no GitHub vector in signature-vectors.json")
	}
	_, r := vectorRequest(t, gh)
	for _, cfg := range []Config{
		{Scheme: SchemeMeta, Secret: gh.Secret},
		{Scheme: SchemeHMAC, Secret: gh.Secret, Header: "X-Hub-Signature-256", Prefix: "sha256="},
		{Scheme: SchemeHMAC, Secret: gh.Secret, Header: "x-hub-signature-256", Prefix: "sha256=", Algorithm: "SHA256", Encoding: "hex"},
	} {
		if err := mustNew(t, cfg).Verify(r); err != nil {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
	// Without the prefix configured, "sha256=" is not hex: refused.
	err := mustNew(t, Config{Scheme: SchemeHMAC, Secret: gh.Secret, Header: "X-Hub-Signature-256"}).Verify(r)
	assertRefused(t, err, "malformed X-Hub-Signature-256 header", gh.Expected)
}

// TestTwilioFormFixture: the SDK-params form file is the body of the
// twilio-python vector and verifies as received.
func TestTwilioFormFixture(t *testing.T) {
	var tv vector
	for _, v := range loadVectors(t) {
		if v.Name == "twilio-python-compute-signature" {
			tv = v
		}
	}
	if tv.Name == "" {
		t.Fatal("twilio-python vector missing")
	}
	body := readFixture(t, "twilio-signature-vector-sdk-params.form")
	form, err := url.ParseQuery(string(body))
	if err != nil {
		t.Fatalf("parse form fixture: %v", err)
	}
	if len(form) != len(tv.Params) {
		t.Fatalf("form fixture has %d keys, vector %d", len(form), len(tv.Params))
	}
	for k, want := range tv.Params {
		if got := form[k]; len(got) != 1 || got[0] != want {
			t.Errorf("form fixture %s = %q, vector %q", k, got, want)
		}
	}
	v := mustNew(t, Config{Scheme: SchemeTwilio, Secret: tv.Secret})
	for _, withForm := range []bool{false, true} {
		r := &Request{Method: http.MethodPost, URL: tv.URL, Header: http.Header{}, Body: body}
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set(tv.HeaderName, tv.Expected)
		if withForm {
			r.Form = form
		}
		if err := v.Verify(r); err != nil {
			t.Errorf("form fixture (Form set: %v) refused: %v", withForm, err)
		}
	}
}

// twilioGoVectors are further known answers from twilio/twilio-go
// client/request_validator_test.go (auth token "12345").
var twilioGoParams = url.Values{
	"Digits": {"1234"}, "CallSid": {"CA1234567890ABCDE"}, "To": {"+18005551212"},
	"Caller": {"+14158675309"}, "From": {"+14158675309"},
	"ReasonConferenceEnded": {"test"}, "Reason": {"Participant"},
}

func TestTwilioGoSDKVectors(t *testing.T) {
	const (
		testURL  = "https://mycompany.com/myapp.php?foo=1&bar=2"
		bodyHash = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
		jsonBody = `{"property": "value", "boolean": true}`
		formBody = `property=value&boolean=true`
		httpURL  = "http://mycompany.com/myapp.php?foo=1&bar=2"
	)
	tests := []struct {
		name, url, body, ctype, sig string
		form                        url.Values
		valid                       bool
	}{
		{"validates", testURL, "", "", "vOEb5UThFn24KEfnOFLQY2AE5FY=", twilioGoParams, true},
		{"wrong signature", testURL, "", "", "WRONGSIGNATUREWRONGSIGNATURE", twilioGoParams, false},
		{"https with port, signed without", strings.Replace(testURL, ".com", ".com:1234", 1), "", "", "vOEb5UThFn24KEfnOFLQY2AE5FY=", twilioGoParams, true},
		{"https with default port, signed without", strings.Replace(testURL, ".com", ".com:443", 1), "", "", "vOEb5UThFn24KEfnOFLQY2AE5FY=", twilioGoParams, true},
		{"http without port", httpURL, "", "", "n2xBNyzSW7rfYStDtOFiFMv7qNo=", twilioGoParams, true},
		{"http with port, signed without", strings.Replace(httpURL, ".com", ".com:1234", 1), "", "", "n2xBNyzSW7rfYStDtOFiFMv7qNo=", twilioGoParams, true},
		{"ReasonConferenceEnded sorted before Reason", testURL, "", "", "95+Bu0JVPi0r/SsESZCVf0dWAjw=", twilioGoParams, false},
		{"json body with bodySHA256", testURL + "&bodySHA256=" + bodyHash, jsonBody, "application/json", "a9nBmqA0ju/hNViExpshrM61xv4=", nil, true},
		{"json body, only bodySHA256 in URL", "https://mycompany.com/myapp.php?bodySHA256=" + bodyHash, jsonBody, "application/json", "y77kIzt2vzLz71DgmJGsen2scGs=", nil, true},
		{"form body", testURL, formBody, "application/x-www-form-urlencoded", "NBdBDr/T/lgjI+tlgpXjKZQZs/k=", nil, true},
		{"json body without bodySHA256", testURL, jsonBody, "application/json", "vOEb5UThFn24KEfnOFLQY2AE5FY=", nil, false},
		{"json body tampered", testURL + "&bodySHA256=" + bodyHash, strings.Replace(jsonBody, "true", "false", 1), "application/json", "a9nBmqA0ju/hNViExpshrM61xv4=", nil, false},
	}
	v := mustNew(t, Config{Scheme: SchemeTwilio, Secret: "12345"})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Request{Method: http.MethodPost, URL: tt.url, Header: http.Header{}, Body: []byte(tt.body), Form: tt.form}
			if tt.ctype != "" {
				r.Header.Set("Content-Type", tt.ctype)
			}
			r.Header.Set("X-Twilio-Signature", tt.sig)
			err := v.Verify(r)
			if tt.valid && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tt.valid {
				assertRefused(t, err, "", "12345")
			}
		})
	}
}
