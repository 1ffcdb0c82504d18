package verify

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fixturesDir is the repository's testdata/fixtures.
const fixturesDir = "../../testdata/fixtures"

// readFixture returns the exact bytes of a shared fixture file.
func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixturesDir, name))
	if err != nil {
		t.Fatalf("read fixture %s: %v", name, err)
	}
	return b
}

// mustNew builds a verifier or fails the test.
func mustNew(t testing.TB, cfg Config) Verifier {
	t.Helper()
	v, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return v
}

// assertRefused checks that err is a refusal whose reason contains want and
// none of the forbidden strings (secrets and expected signatures).
func assertRefused(t testing.TB, err error, want string, forbidden ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("request accepted, want refusal %q", want)
	}
	if !errors.Is(err, ErrUnauthorized) {
		t.Errorf("errors.Is(%v, ErrUnauthorized) = false", err)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %T is not *Error", err)
	}
	if e.Error() != e.Reason {
		t.Errorf("Error() = %q, Reason = %q", e.Error(), e.Reason)
	}
	if !strings.Contains(e.Reason, want) {
		t.Errorf("reason %q does not contain %q", e.Reason, want)
	}
	if strings.ContainsAny(e.Reason, "\r\n") {
		t.Errorf("reason %q is not one line", e.Reason)
	}
	for _, f := range forbidden {
		if f != "" && strings.Contains(e.Reason, f) {
			t.Errorf("reason %q leaks %q", e.Reason, f)
		}
	}
}

// macHex, macB64 compute the documented HMACs independently of the package.
func macRaw(h func() hash.Hash, key string, msg string) []byte {
	m := hmac.New(h, []byte(key))
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func macHex(h func() hash.Hash, key, msg string) string {
	return hex.EncodeToString(macRaw(h, key, msg))
}

func macB64(h func() hash.Hash, key, msg string) string {
	return base64.StdEncoding.EncodeToString(macRaw(h, key, msg))
}

// signer sets the headers a platform would send for r.Body signed with
// secret at time at.
type signer func(secret string, r *Request, at time.Time)

func signGitHub(secret string, r *Request, _ time.Time) {
	r.Header.Set("X-Hub-Signature-256", "sha256="+macHex(sha256.New, secret, string(r.Body)))
}

func signHMACSha1B64(secret string, r *Request, _ time.Time) {
	r.Header.Set("X-Signature", macB64(sha1.New, secret, string(r.Body)))
}

func signHMACSha512Hex(secret string, r *Request, _ time.Time) {
	r.Header.Set("X-Signature", "sha512="+macHex(sha512.New, secret, string(r.Body)))
}

// swID is the webhook-id the standard-webhooks signer uses.
const swID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"

func signStandardWebhooks(secret string, r *Request, at time.Time) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		panic("test secret is not base64: " + err.Error())
	}
	ts := strconv.FormatInt(at.Unix(), 10)
	r.Header.Set("Webhook-Id", swID)
	r.Header.Set("Webhook-Timestamp", ts)
	r.Header.Set("Webhook-Signature", "v1,"+macB64(sha256.New, string(key), swID+"."+ts+"."+string(r.Body)))
}

func signToken(secret string, r *Request, _ time.Time) {
	r.Header.Set("X-Hook-Token", secret)
}

func signZendesk(secret string, r *Request, at time.Time) {
	ts := at.UTC().Format(time.RFC3339)
	r.Header.Set("X-Zendesk-Webhook-Signature-Timestamp", ts)
	r.Header.Set("X-Zendesk-Webhook-Signature", macB64(sha256.New, secret, ts+string(r.Body)))
}

func signSlack(secret string, r *Request, at time.Time) {
	ts := strconv.FormatInt(at.Unix(), 10)
	r.Header.Set("X-Slack-Request-Timestamp", ts)
	r.Header.Set("X-Slack-Signature", "v0="+macHex(sha256.New, secret, "v0:"+ts+":"+string(r.Body)))
}

// signTwilio signs r.URL plus the form parameters of r.Body, per Twilio's
// documentation: keys sorted, each key followed by its value.
func signTwilio(secret string, r *Request, _ time.Time) {
	form, err := url.ParseQuery(string(r.Body))
	if err != nil {
		panic("twilio test body is not a form: " + err.Error())
	}
	r.Header.Set("X-Twilio-Signature", macB64(sha1.New, secret, twilioContent(r.URL, form)))
}

// twilioContent is the documented string Twilio signs.
func twilioContent(u string, form url.Values) string {
	var keys []string
	for k := range form {
		keys = append(keys, k)
	}
	sortStrings(keys)
	var b strings.Builder
	b.WriteString(u)
	for _, k := range keys {
		vs := append([]string(nil), form[k]...)
		sortStrings(vs)
		for _, v := range vs {
			b.WriteString(k + v)
		}
	}
	return b.String()
}

// sortStrings is an insertion sort, kept separate from the package's sort.
func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// newRequest is a POST of body at now with an empty header.
func newRequest(body []byte, contentType string, now time.Time) *Request {
	h := http.Header{}
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	return &Request{Method: http.MethodPost, URL: "https://hooks.example.com/hooks/test", Header: h, Body: body, Now: now}
}

// cloneRequest deep-copies r so that a signer can be applied to the copy.
func cloneRequest(r *Request) *Request {
	c := *r
	c.Header = r.Header.Clone()
	c.Body = append([]byte(nil), r.Body...)
	if r.Form != nil {
		c.Form = url.Values{}
		for k, v := range r.Form {
			c.Form[k] = append([]string(nil), v...)
		}
	}
	return &c
}
