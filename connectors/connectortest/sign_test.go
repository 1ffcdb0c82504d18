package connectortest_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/hookline/hookline/connectors/connectortest"
	"github.com/hookline/hookline/connectors/verify"
)

// vector is one entry of testdata/fixtures/signature-vectors.json.
type vector struct {
	Name       string            `json:"name"`
	Scheme     string            `json:"scheme"`
	Secret     string            `json:"secret"`
	Body       string            `json:"body"`
	ID         string            `json:"id"`
	Timestamp  string            `json:"timestamp"`
	URL        string            `json:"url"`
	Params     map[string]string `json:"params"`
	HeaderName string            `json:"header_name"`
	Expected   string            `json:"expected"`
	Valid      bool              `json:"valid"`
}

// The suite's signers reproduce the platforms' published signature vectors,
// and what they sign verifies with package verify: the suite signs requests
// the way the platforms do.
func TestSignersReproducePublishedVectors(t *testing.T) {
	data, err := os.ReadFile(fx("signature-vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vectors []vector
	if err := json.Unmarshal(data, &vectors); err != nil {
		t.Fatal(err)
	}
	schemes := map[string]struct {
		sign   func(v vector) connectortest.Signer
		verify verify.Config
	}{
		"github-hmac-sha256-hex": {func(vector) connectortest.Signer { return connectortest.SignHubSHA256 }, verify.Config{Scheme: verify.SchemeGitHub}},
		"slack-v0":               {func(vector) connectortest.Signer { return connectortest.SignSlack }, verify.Config{Scheme: verify.SchemeSlack}},
		"standard-webhooks-v1":   {func(v vector) connectortest.Signer { return connectortest.SignStandardWebhooks(v.ID) }, verify.Config{Scheme: verify.SchemeStandardWebhooks}},
		"twilio-hmac-sha1-form":  {func(vector) connectortest.Signer { return connectortest.SignTwilio("") }, verify.Config{Scheme: verify.SchemeTwilio}},
	}
	seen := map[string]bool{}
	for _, v := range vectors {
		t.Run(v.Name, func(t *testing.T) {
			sc, ok := schemes[v.Scheme]
			if !ok {
				t.Fatalf("no signer for scheme %q", v.Scheme)
			}
			seen[v.Scheme] = true
			at := time.Unix(0, 0)
			if v.Timestamp != "" {
				sec, err := strconv.ParseInt(v.Timestamp, 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				at = time.Unix(sec, 0)
			}
			body := []byte(v.Body)
			h := http.Header{"Content-Type": {"application/json"}}
			if v.Params != nil {
				form := url.Values{}
				for k, val := range v.Params {
					form.Set(k, val)
				}
				body = []byte(form.Encode())
				h.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			r := &verify.Request{Method: http.MethodPost, URL: v.URL, Header: h, Body: body, Now: at}
			sc.sign(v)(r, v.Secret, at)
			got := r.Header.Get(v.HeaderName)
			if (got == v.Expected) != v.Valid {
				t.Errorf("%s = %q; published %q (valid: %v)", v.HeaderName, got, v.Expected, v.Valid)
			}
			cfg := sc.verify
			cfg.Secret = v.Secret
			vf, err := verify.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if v.Params != nil {
				_, r.Form, _ = verify.DecodeForm(body)
			}
			if err := vf.Verify(r); err != nil {
				t.Errorf("package verify refuses what the signer signed: %v", err)
			}
		})
	}
	for s := range schemes {
		if !seen[s] {
			t.Errorf("no published vector exercised the %s signer", s)
		}
	}
}

// A token signer puts the secret where the verifier looks for it.
func TestTokenSigners(t *testing.T) {
	cases := []struct {
		name string
		sign connectortest.Signer
		cfg  verify.Config
	}{
		{"header", connectortest.SignTokenHeader("X-Hookline-Token"), verify.Config{Scheme: verify.SchemeToken, Header: "X-Hookline-Token"}},
		{"query", connectortest.SignTokenQuery("token"), verify.Config{Scheme: verify.SchemeToken, Query: "token"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Secret = "s3cret"
			vf, err := verify.New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			r := &verify.Request{Method: http.MethodPost, URL: "https://h.example/hooks/x?event=a", Query: url.Values{"event": {"a"}}, Body: []byte(`{}`)}
			tc.sign(r, "s3cret", time.Now())
			if err := vf.Verify(r); err != nil {
				t.Fatalf("verify: %v", err)
			}
			wrong := &verify.Request{Method: http.MethodPost, URL: "https://h.example/hooks/x", Body: []byte(`{}`)}
			tc.sign(wrong, "other", time.Now())
			if err := vf.Verify(wrong); err == nil {
				t.Fatalf("a wrong token verified")
			}
			if tc.name == "query" && r.Query.Get("event") != "a" {
				t.Errorf("the query signer dropped the other parameters: %v", r.Query)
			}
		})
	}
}
