package verify

import (
	"crypto/sha1"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// schemeCase describes one scheme for the shared behaviour tests.
type schemeCase struct {
	name       string
	cfg        Config // without secrets
	sign       signer
	secrets    [3]string // A (configured), B (rotation), C (never configured)
	sigHeader  string    // header carrying the signature
	required   []string  // headers whose absence must be refused by name
	timed      bool      // the scheme checks a timestamp window
	coversBody bool      // the signature covers the body
	ctype      string
}

var plainSecrets = [3]string{"s3cr3t-alpha-0001", "s3cr3t-bravo-0002", "s3cr3t-charlie-0003"}

// whsec secrets: base64 of 24 distinct bytes each.
var whsecSecrets = [3]string{
	"whsec_" + "YWxwaGEtYWxwaGEtYWxwaGEtYWxwaGEt",
	"whsec_" + "YnJhdm8tYnJhdm8tYnJhdm8tYnJhdm8t",
	"whsec_" + "Y2hhcmxpZS1jaGFybGllLWNoYXJsaWUt",
}

func schemeCases() []schemeCase {
	return []schemeCase{
		{name: "github", cfg: Config{Scheme: SchemeGitHub}, sign: signGitHub, secrets: plainSecrets,
			sigHeader: "X-Hub-Signature-256", required: []string{"X-Hub-Signature-256"}, coversBody: true, ctype: "application/json"},
		{name: "meta", cfg: Config{Scheme: SchemeMeta}, sign: signGitHub, secrets: plainSecrets,
			sigHeader: "X-Hub-Signature-256", required: []string{"X-Hub-Signature-256"}, coversBody: true, ctype: "application/json"},
		{name: "hmac-sha1-base64", cfg: Config{Scheme: SchemeHMAC, Header: "X-Signature", Algorithm: "sha1", Encoding: "base64"}, sign: signHMACSha1B64, secrets: plainSecrets,
			sigHeader: "X-Signature", required: []string{"X-Signature"}, coversBody: true, ctype: "application/json"},
		{name: "hmac-sha512-hex-prefix", cfg: Config{Scheme: SchemeHMAC, Header: "X-Signature", Algorithm: "sha512", Prefix: "sha512="}, sign: signHMACSha512Hex, secrets: plainSecrets,
			sigHeader: "X-Signature", required: []string{"X-Signature"}, coversBody: true, ctype: "application/json"},
		{name: "standard-webhooks", cfg: Config{Scheme: SchemeStandardWebhooks}, sign: signStandardWebhooks, secrets: whsecSecrets,
			sigHeader: "Webhook-Signature", required: []string{"webhook-id", "webhook-timestamp", "webhook-signature"}, timed: true, coversBody: true, ctype: "application/json"},
		{name: "token", cfg: Config{Scheme: SchemeToken, Header: "X-Hook-Token"}, sign: signToken, secrets: plainSecrets,
			sigHeader: "X-Hook-Token", required: []string{"X-Hook-Token"}, ctype: "application/json"},
		{name: "zendesk", cfg: Config{Scheme: SchemeZendesk}, sign: signZendesk, secrets: plainSecrets,
			sigHeader: "X-Zendesk-Webhook-Signature", required: []string{"X-Zendesk-Webhook-Signature", "X-Zendesk-Webhook-Signature-Timestamp"}, timed: true, coversBody: true, ctype: "application/json"},
		{name: "slack", cfg: Config{Scheme: SchemeSlack}, sign: signSlack, secrets: plainSecrets,
			sigHeader: "X-Slack-Signature", required: []string{"X-Slack-Signature", "X-Slack-Request-Timestamp"}, timed: true, coversBody: true, ctype: "application/json"},
		{name: "twilio", cfg: Config{Scheme: SchemeTwilio}, sign: signTwilio, secrets: plainSecrets,
			sigHeader: "X-Twilio-Signature", required: []string{"X-Twilio-Signature"}, coversBody: true, ctype: "application/x-www-form-urlencoded"},
	}
}

// bodyFor returns a real fixture payload matching the scheme's content type.
func bodyFor(t *testing.T, sc schemeCase) []byte {
	switch sc.name {
	case "twilio":
		return readFixture(t, "twilio-signature-vector-sdk-params.form")
	case "zendesk":
		return readFixture(t, "zendesk-event-user-active-changed.json")
	case "slack":
		return readFixture(t, "slack-event-callback-message.json")
	case "standard-webhooks":
		return readFixture(t, "standard-webhooks-spec-example-contact-created.json")
	}
	return readFixture(t, "whatsapp-cloud-text-message.json")
}

func TestSchemes(t *testing.T) {
	now := time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)
	for _, sc := range schemeCases() {
		t.Run(sc.name, func(t *testing.T) {
			body := bodyFor(t, sc)
			build := func(secrets ...string) Verifier {
				cfg := sc.cfg
				cfg.Secrets = secrets
				return mustNew(t, cfg)
			}
			signed := func(secret string, at time.Time) *Request {
				r := newRequest(body, sc.ctype, now)
				sc.sign(secret, r, at)
				return r
			}
			// expected returns what the configured secret would have
			// produced for r: it must never appear in a reason.
			expected := func(r *Request) []string {
				c := cloneRequest(r)
				sc.sign(sc.secrets[0], c, now)
				v := c.Header.Get(sc.sigHeader)
				out := []string{sc.secrets[0], v}
				if _, after, ok := strings.Cut(v, "="); ok {
					out = append(out, after)
				}
				if _, after, ok := strings.Cut(v, ","); ok {
					out = append(out, after)
				}
				return out
			}
			a := build(sc.secrets[0])

			t.Run("valid", func(t *testing.T) {
				if err := a.Verify(signed(sc.secrets[0], now)); err != nil {
					t.Fatalf("refused: %v", err)
				}
			})
			t.Run("wrong secret", func(t *testing.T) {
				r := signed(sc.secrets[1], now)
				want := "signature does not match"
				if sc.name == "token" {
					want = "token does not match"
				}
				assertRefused(t, a.Verify(r), want, expected(r)...)
			})
			t.Run("tampered body", func(t *testing.T) {
				r := signed(sc.secrets[0], now)
				r.Body = []byte(strings.Replace(string(r.Body), "1", "2", 1))
				if string(r.Body) == string(body) {
					t.Fatal("tampering changed nothing")
				}
				err := a.Verify(r)
				if !sc.coversBody {
					if err != nil {
						t.Fatalf("token scheme does not cover the body, yet refused: %v", err)
					}
					return
				}
				assertRefused(t, err, "does not match", expected(r)...)
			})
			t.Run("rotation", func(t *testing.T) {
				ab := build(sc.secrets[0], sc.secrets[1])
				for i, s := range sc.secrets[:2] {
					if err := ab.Verify(signed(s, now)); err != nil {
						t.Errorf("secret #%d of two refused: %v", i+1, err)
					}
				}
				r := signed(sc.secrets[2], now)
				assertRefused(t, ab.Verify(r), "does not match", sc.secrets[0], sc.secrets[1])
				// Secret and Secrets together.
				cfg := sc.cfg
				cfg.Secret, cfg.Secrets = sc.secrets[0], []string{sc.secrets[1]}
				if err := mustNew(t, cfg).Verify(signed(sc.secrets[1], now)); err != nil {
					t.Errorf("secrets entry beside secret refused: %v", err)
				}
			})
			t.Run("missing headers", func(t *testing.T) {
				for _, h := range sc.required {
					r := signed(sc.secrets[0], now)
					r.Header.Del(h)
					assertRefused(t, a.Verify(r), "missing "+h, expected(r)...)
					r = signed(sc.secrets[0], now)
					r.Header.Set(h, "")
					assertRefused(t, a.Verify(r), "missing "+h, expected(r)...)
				}
				r := newRequest(body, sc.ctype, now)
				r.Header = nil
				assertRefused(t, a.Verify(r), "missing "+sc.required[0], sc.secrets[0])
			})
			t.Run("lower-case header keys", func(t *testing.T) {
				r := signed(sc.secrets[0], now)
				lower := http.Header{}
				for k, v := range r.Header {
					lower[strings.ToLower(k)] = v
				}
				r.Header = lower
				if err := a.Verify(r); err != nil {
					t.Fatalf("non-canonical header keys refused: %v", err)
				}
			})
			if !sc.timed {
				t.Run("no timestamp", func(t *testing.T) {
					// A week-old signature is fine: the scheme has no clock.
					if err := a.Verify(signed(sc.secrets[0], now.Add(-7*24*time.Hour))); err != nil {
						t.Fatalf("refused: %v", err)
					}
				})
				return
			}
			t.Run("timestamp window", func(t *testing.T) {
				cases := []struct {
					name   string
					at     time.Time
					tol    time.Duration
					reason string
				}{
					{"4m old", now.Add(-4 * time.Minute), 0, ""},
					{"4m ahead", now.Add(4 * time.Minute), 0, ""},
					{"exactly 5m old", now.Add(-5 * time.Minute), 0, ""},
					{"stale 6m", now.Add(-6 * time.Minute), 0, "timestamp outside tolerance (5m0s)"},
					{"future 6m", now.Add(6 * time.Minute), 0, "timestamp outside tolerance (5m0s)"},
					{"a day old", now.Add(-24 * time.Hour), 0, "timestamp outside tolerance (5m0s)"},
					{"stale 2m with 1m tolerance", now.Add(-2 * time.Minute), time.Minute, "timestamp outside tolerance (1m0s)"},
					{"future 2m with 1m tolerance", now.Add(2 * time.Minute), time.Minute, "timestamp outside tolerance (1m0s)"},
					{"9m old with 10m tolerance", now.Add(-9 * time.Minute), 10 * time.Minute, ""},
				}
				for _, c := range cases {
					t.Run(c.name, func(t *testing.T) {
						cfg := sc.cfg
						cfg.Secret = sc.secrets[0]
						cfg.Tolerance = c.tol
						r := signed(sc.secrets[0], c.at)
						err := mustNew(t, cfg).Verify(r)
						if c.reason == "" {
							if err != nil {
								t.Fatalf("refused: %v", err)
							}
							return
						}
						assertRefused(t, err, c.reason, expected(r)...)
					})
				}
			})
			t.Run("zero Now uses the wall clock", func(t *testing.T) {
				r := signed(sc.secrets[0], time.Now())
				r.Now = time.Time{}
				if err := a.Verify(r); err != nil {
					t.Fatalf("fresh request refused with zero Now: %v", err)
				}
				r = signed(sc.secrets[0], now) // 2025: far in the past
				r.Now = time.Time{}
				assertRefused(t, a.Verify(r), "timestamp outside tolerance")
			})
		})
	}
}

func TestMalformedSignatures(t *testing.T) {
	now := time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)
	ts := "1741964966" // now
	zts := now.Format(time.RFC3339)
	tests := []struct {
		name    string
		cfg     Config
		headers map[string]string
		reason  string
	}{
		{"github no prefix", Config{Scheme: SchemeGitHub, Secret: "malformed-test-secret"}, map[string]string{"X-Hub-Signature-256": strings.Repeat("ab", 32)}, `malformed X-Hub-Signature-256 header: expected prefix "sha256="`},
		{"github sha1 prefix", Config{Scheme: SchemeGitHub, Secret: "malformed-test-secret"}, map[string]string{"X-Hub-Signature-256": "sha1=" + strings.Repeat("ab", 20)}, "expected prefix"},
		{"github not hex", Config{Scheme: SchemeGitHub, Secret: "malformed-test-secret"}, map[string]string{"X-Hub-Signature-256": "sha256=" + strings.Repeat("zz", 32)}, "not a hex signature"},
		{"github short", Config{Scheme: SchemeGitHub, Secret: "malformed-test-secret"}, map[string]string{"X-Hub-Signature-256": "sha256=abcd"}, "not a hex signature"},
		{"hmac base64 garbage", Config{Scheme: SchemeHMAC, Secret: "malformed-test-secret", Header: "X-Sig", Encoding: "base64"}, map[string]string{"X-Sig": "!!!not base64!!!"}, "not a base64 signature"},
		{"slack no v0", Config{Scheme: SchemeSlack, Secret: "malformed-test-secret"}, map[string]string{"X-Slack-Signature": "v1=" + strings.Repeat("ab", 32), "X-Slack-Request-Timestamp": ts}, `expected prefix "v0="`},
		{"slack not hex", Config{Scheme: SchemeSlack, Secret: "malformed-test-secret"}, map[string]string{"X-Slack-Signature": "v0=xyz", "X-Slack-Request-Timestamp": ts}, "not a hex signature"},
		{"slack timestamp not a number", Config{Scheme: SchemeSlack, Secret: "malformed-test-secret"}, map[string]string{"X-Slack-Signature": "v0=" + strings.Repeat("ab", 32), "X-Slack-Request-Timestamp": "soon"}, "malformed X-Slack-Request-Timestamp header"},
		{"slack negative timestamp", Config{Scheme: SchemeSlack, Secret: "malformed-test-secret"}, map[string]string{"X-Slack-Signature": "v0=" + strings.Repeat("ab", 32), "X-Slack-Request-Timestamp": "-1741964966"}, "malformed X-Slack-Request-Timestamp header"},
		{"slack huge timestamp", Config{Scheme: SchemeSlack, Secret: "malformed-test-secret"}, map[string]string{"X-Slack-Signature": "v0=" + strings.Repeat("ab", 32), "X-Slack-Request-Timestamp": "99999999999999999999999"}, "malformed X-Slack-Request-Timestamp header"},
		{"zendesk timestamp unix", Config{Scheme: SchemeZendesk, Secret: "malformed-test-secret"}, map[string]string{"X-Zendesk-Webhook-Signature": "AAAA", "X-Zendesk-Webhook-Signature-Timestamp": ts}, "not an RFC 3339 time"},
		{"zendesk signature not base64", Config{Scheme: SchemeZendesk, Secret: "malformed-test-secret"}, map[string]string{"X-Zendesk-Webhook-Signature": "***", "X-Zendesk-Webhook-Signature-Timestamp": zts}, "not a base64 signature"},
		{"standard-webhooks v2 only", Config{Scheme: SchemeStandardWebhooks, Secret: whsecSecrets[0]}, map[string]string{"webhook-id": "m", "webhook-timestamp": ts, "webhook-signature": "v2,abc v1a,def"}, "no v1 signature"},
		{"standard-webhooks bad base64", Config{Scheme: SchemeStandardWebhooks, Secret: whsecSecrets[0]}, map[string]string{"webhook-id": "m", "webhook-timestamp": ts, "webhook-signature": "v1,@@@"}, "no v1 signature"},
		{"twilio not base64", Config{Scheme: SchemeTwilio, Secret: "malformed-test-secret"}, map[string]string{"X-Twilio-Signature": "%%%"}, "not a base64 signature"},
		{"token wrong", Config{Scheme: SchemeToken, Secret: "malformed-test-secret", Header: "X-Token"}, map[string]string{"X-Token": "kk"}, "token does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRequest([]byte(`{"a":1}`), "application/json", now)
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}
			assertRefused(t, mustNew(t, tt.cfg).Verify(r), tt.reason, tt.cfg.Secret)
		})
	}
}

func TestStandardWebhooksSignatureList(t *testing.T) {
	now := time.Unix(1614265330, 0)
	v := mustNew(t, Config{Scheme: SchemeStandardWebhooks, Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
	const good = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	body := readFixture(t, "standard-webhooks-test-vector-body.json")
	tests := []struct {
		name, header string
		ok           bool
	}{
		{"single", good, true},
		{"after a wrong one", "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= " + good, true},
		{"after other versions and junk", "v1a,xyz v2,abc nocomma " + good, true},
		{"extra spaces", "  " + good + "   ", true},
		{"wrong version label", strings.Replace(good, "v1,", "v2,", 1), false},
		{"only wrong", "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=", false},
		{"comma-joined instead of space", "v1,abc," + good, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRequest(body, "application/json", now)
			r.Header.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
			r.Header.Set("webhook-timestamp", "1614265330")
			r.Header.Set("webhook-signature", tt.header)
			err := v.Verify(r)
			if tt.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tt.ok {
				assertRefused(t, err, "", "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
			}
		})
	}
	t.Run("svix aliases", func(t *testing.T) {
		r := newRequest(body, "application/json", now)
		r.Header.Set("svix-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
		r.Header.Set("svix-timestamp", "1614265330")
		r.Header.Set("svix-signature", good)
		if err := v.Verify(r); err != nil {
			t.Fatalf("svix-* headers refused: %v", err)
		}
		r.Header.Del("svix-id")
		assertRefused(t, v.Verify(r), "missing svix-id header")
	})
	t.Run("id is signed", func(t *testing.T) {
		r := newRequest(body, "application/json", now)
		r.Header.Set("webhook-id", "msg_other")
		r.Header.Set("webhook-timestamp", "1614265330")
		r.Header.Set("webhook-signature", good)
		assertRefused(t, v.Verify(r), "signature does not match")
	})
	t.Run("raw base64 secret", func(t *testing.T) {
		raw := mustNew(t, Config{Scheme: SchemeStandardWebhooks, Secret: "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
		r := newRequest(body, "application/json", now)
		r.Header.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
		r.Header.Set("webhook-timestamp", "1614265330")
		r.Header.Set("webhook-signature", good)
		if err := raw.Verify(r); err != nil {
			t.Fatalf("raw base64 secret refused: %v", err)
		}
	})
}

func TestToken(t *testing.T) {
	const secret = "tok-7f3a9c"
	tests := []struct {
		name   string
		cfg    Config
		header map[string]string
		query  url.Values
		rawURL string
		reason string // "" means accepted
	}{
		{"header", Config{Header: "X-Token"}, map[string]string{"X-Token": secret}, nil, "", ""},
		{"header wrong", Config{Header: "X-Token"}, map[string]string{"X-Token": secret + "x"}, nil, "", "token does not match"},
		{"header prefix only", Config{Header: "X-Token"}, map[string]string{"X-Token": secret[:5]}, nil, "", "token does not match"},
		{"header missing", Config{Header: "X-Token"}, nil, url.Values{"token": {secret}}, "", "missing X-Token header"},
		{"query", Config{Query: "token"}, nil, url.Values{"token": {secret}}, "", ""},
		{"query from URL when Query is nil", Config{Query: "token"}, nil, nil, "https://h/x?token=" + secret, ""},
		{"query wrong", Config{Query: "token"}, nil, url.Values{"token": {"nope"}}, "", "token does not match"},
		{"query missing", Config{Query: "token"}, map[string]string{"X-Token": secret}, nil, "", "missing token query parameter"},
		{"both: header used", Config{Header: "X-Token", Query: "token"}, map[string]string{"X-Token": secret}, nil, "", ""},
		{"both: query used when header absent", Config{Header: "X-Token", Query: "token"}, nil, url.Values{"token": {secret}}, "", ""},
		{"both: wrong header not rescued by query", Config{Header: "X-Token", Query: "token"}, map[string]string{"X-Token": "bad"}, url.Values{"token": {secret}}, "", "token does not match"},
		{"both: none", Config{Header: "X-Token", Query: "token"}, nil, nil, "", "missing X-Token header or token query parameter"},
		{"authorization bearer", Config{Header: "Authorization"}, map[string]string{"Authorization": "Bearer " + secret}, nil, "", ""},
		{"authorization bare", Config{Header: "Authorization"}, map[string]string{"Authorization": secret}, nil, "", ""},
		{"authorization basic", Config{Header: "Authorization"}, map[string]string{"Authorization": "Basic " + secret}, nil, "", "token does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Scheme, cfg.Secret = SchemeToken, secret
			r := newRequest(nil, "", time.Now())
			r.Query, r.URL = tt.query, tt.rawURL
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			err := mustNew(t, cfg).Verify(r)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			assertRefused(t, err, tt.reason, secret)
		})
	}
}

func TestNone(t *testing.T) {
	v := mustNew(t, Config{Scheme: SchemeNone})
	if err := v.Verify(&Request{}); err != nil {
		t.Fatalf("none refused: %v", err)
	}
}

func TestTwilioURLs(t *testing.T) {
	const token = "12345"
	body := readFixture(t, "twilio-signature-vector-sdk-params.form")
	form, _ := url.ParseQuery(string(body))
	sigFor := func(u string, f url.Values) string { return macB64(sha1.New, token, twilioContent(u, f)) }
	tests := []struct {
		name      string
		publicURL string
		reqURL    string
		query     url.Values
		signedURL string
		ok        bool
	}{
		{"public_url behind a proxy, query appended", "https://mycompany.com/myapp.php", "http://10.0.0.5:8080/myapp.php?foo=1&bar=2", nil,
			"https://mycompany.com/myapp.php?foo=1&bar=2", true},
		{"public_url, query from Query when URL has none", "https://mycompany.com/myapp.php", "", url.Values{"foo": {"1"}},
			"https://mycompany.com/myapp.php?foo=1", true},
		{"public_url, no query", "https://mycompany.com/myapp.php", "http://10.0.0.5:8080/myapp.php", nil,
			"https://mycompany.com/myapp.php", true},
		{"public_url, signed with :443", "https://mycompany.com/myapp.php", "http://10.0.0.5/myapp.php", nil,
			"https://mycompany.com:443/myapp.php", true},
		{"public_url with port, signed without", "https://mycompany.com:8443/myapp.php", "http://10.0.0.5/myapp.php", nil,
			"https://mycompany.com/myapp.php", true},
		{"public_url, different path signed", "https://mycompany.com/myapp.php", "http://10.0.0.5/myapp.php", nil,
			"https://mycompany.com/other.php", false},
		{"public_url, query differs", "https://mycompany.com/myapp.php", "http://10.0.0.5/myapp.php?foo=2", nil,
			"https://mycompany.com/myapp.php?foo=1", false},
		{"request URL without public_url", "", "https://mycompany.com/myapp.php?foo=1", nil,
			"https://mycompany.com/myapp.php?foo=1", true},
		{"request URL http signed with :80", "", "http://mycompany.com/myapp.php", nil,
			"http://mycompany.com:80/myapp.php", true},
		{"request URL signed for another host", "", "https://mycompany.com/myapp.php", nil,
			"https://evil.example/myapp.php", false},
		{"scheme differs", "", "http://mycompany.com/myapp.php", nil,
			"https://mycompany.com/myapp.php", false},
		{"IPv6 host with port", "", "https://[2001:db8::1]:8443/hook", nil,
			"https://[2001:db8::1]/hook", true},
		{"IPv6 host without port", "", "https://[2001:db8::1]/hook", nil,
			"https://[2001:db8::1]:443/hook", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := mustNew(t, Config{Scheme: SchemeTwilio, Secret: token, PublicURL: tt.publicURL})
			r := &Request{Method: http.MethodPost, URL: tt.reqURL, Query: tt.query, Header: http.Header{}, Body: body}
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
			r.Header.Set("X-Twilio-Signature", sigFor(tt.signedURL, form))
			err := v.Verify(r)
			if tt.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tt.ok {
				assertRefused(t, err, "signature does not match", token)
			}
		})
	}
	t.Run("relative URL", func(t *testing.T) {
		v := mustNew(t, Config{Scheme: SchemeTwilio, Secret: token})
		r := &Request{URL: "/myapp.php", Header: http.Header{}, Body: body}
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("X-Twilio-Signature", sigFor("/myapp.php", form))
		assertRefused(t, v.Verify(r), "request URL is not absolute")
	})
	t.Run("GET with empty body", func(t *testing.T) {
		v := mustNew(t, Config{Scheme: SchemeTwilio, Secret: token})
		u := "https://mycompany.com/status?CallSid=CA1&CallStatus=completed"
		r := &Request{Method: http.MethodGet, URL: u, Header: http.Header{}}
		r.Header.Set("X-Twilio-Signature", sigFor(u, nil))
		if err := v.Verify(r); err != nil {
			t.Fatalf("refused: %v", err)
		}
		// The URL signature cannot be replayed with a forged query.
		r.URL = strings.Replace(u, "completed", "failed", 1)
		assertRefused(t, v.Verify(r), "signature does not match")
	})
	t.Run("malformed form body", func(t *testing.T) {
		v := mustNew(t, Config{Scheme: SchemeTwilio, Secret: token})
		r := &Request{URL: "https://mycompany.com/x", Header: http.Header{}, Body: []byte("a=%zz")}
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("X-Twilio-Signature", sigFor("https://mycompany.com/x", nil))
		assertRefused(t, v.Verify(r), "malformed form body")
	})
}

// TestTwilioGetSignsTheURLOnly: for a GET (a number set to "HTTP GET")
// Twilio signs the full URL, its parameters already in the query, and
// appends nothing. The gateway hands a GET's query to the verifier as Form
// and Body too (its payload); they must not be signed a second time.
// Known answers computed apart, with
// printf '%s' URL | openssl dgst -sha1 -hmac 12345 -binary | base64.
func TestTwilioGetSignsTheURLOnly(t *testing.T) {
	const token = "12345"
	tests := []struct {
		name, url, sig string
		valid          bool
	}{
		{"query from the SDKs' vectors", "https://mycompany.com/myapp.php?foo=1&bar=2", "zYQTYrRWXE7LtzbG4PfP7/bkkGo=", true},
		{"call parameters in the query",
			"https://mycompany.com/myapp.php?CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309&To=%2B18005551212",
			"T7Kd5RCUUBX04jdtz+DzR2/IyXg=", true},
		{"signed as a POST (URL plus sorted parameters)", "https://mycompany.com/myapp.php?foo=1&bar=2",
			macB64(sha1.New, token, twilioContent("https://mycompany.com/myapp.php?foo=1&bar=2", url.Values{"foo": {"1"}, "bar": {"2"}})), false},
	}
	v := mustNew(t, Config{Scheme: SchemeTwilio, Secret: token})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, rawQuery, _ := strings.Cut(tt.url, "?")
			query, err := url.ParseQuery(rawQuery)
			if err != nil {
				t.Fatal(err)
			}
			// As the gateway passes an accept_get webhook: the query is also
			// the body and the form.
			r := &Request{Method: http.MethodGet, URL: tt.url, Header: http.Header{}, Query: query, Form: query, Body: []byte(query.Encode())}
			r.Header.Set("X-Twilio-Signature", tt.sig)
			err = v.Verify(r)
			if tt.valid && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tt.valid {
				assertRefused(t, err, "signature does not match", token)
			}
		})
	}
}

func TestTwilioRepeatedKeys(t *testing.T) {
	const token, u = "12345", "https://mycompany.com/hook"
	// Documented order: keys sorted, a repeated key's values sorted.
	want := macB64(sha1.New, token, u+"Bodyhi"+"MediaUrla"+"MediaUrlb"+"MediaUrlc")
	v := mustNew(t, Config{Scheme: SchemeTwilio, Secret: token})
	for _, body := range []string{
		"MediaUrl=b&Body=hi&MediaUrl=c&MediaUrl=a",
		"MediaUrl=c&MediaUrl=b&MediaUrl=a&Body=hi",
		"Body=hi&MediaUrl=a&MediaUrl=b&MediaUrl=c",
	} {
		r := &Request{URL: u, Header: http.Header{}, Body: []byte(body)}
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("X-Twilio-Signature", want)
		if err := v.Verify(r); err != nil {
			t.Errorf("%s: refused: %v", body, err)
		}
	}
	// Dropping one of the repeated values breaks the signature.
	r := &Request{URL: u, Header: http.Header{}, Body: []byte("MediaUrl=b&Body=hi&MediaUrl=a")}
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("X-Twilio-Signature", want)
	assertRefused(t, v.Verify(r), "signature does not match", want)
	// Form given by the caller is not reordered in place.
	form := url.Values{"MediaUrl": {"c", "a", "b"}, "Body": {"hi"}}
	r = &Request{URL: u, Header: http.Header{}, Form: form, Body: []byte("MediaUrl=c&MediaUrl=a&MediaUrl=b&Body=hi")}
	r.Header.Set("X-Twilio-Signature", want)
	if err := v.Verify(r); err != nil {
		t.Fatalf("refused: %v", err)
	}
	if !slices.Equal(form["MediaUrl"], []string{"c", "a", "b"}) {
		t.Errorf("Verify reordered the caller's form: %v", form["MediaUrl"])
	}
}

func TestPortVariants(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"https://a.com/x?y=1", []string{"https://a.com/x?y=1", "https://a.com:443/x?y=1"}},
		{"https://a.com", []string{"https://a.com", "https://a.com:443"}},
		{"https://a.com?q", []string{"https://a.com?q", "https://a.com:443?q"}},
		{"HTTP://a.com/x", []string{"HTTP://a.com/x", "HTTP://a.com:80/x"}},
		{"https://a.com:443/x", []string{"https://a.com:443/x", "https://a.com/x"}},
		{"http://a.com:8080/x", []string{"http://a.com:8080/x", "http://a.com/x"}},
		{"https://u:p@a.com/x", []string{"https://u:p@a.com/x", "https://u:p@a.com:443/x"}},
		{"https://[::1]/x", []string{"https://[::1]/x", "https://[::1]:443/x"}},
		{"https://[::1]:9/x", []string{"https://[::1]:9/x", "https://[::1]/x"}},
		{"ftp://a.com/x", []string{"ftp://a.com/x"}},
		{"/relative", []string{"/relative"}},
	}
	for _, tt := range tests {
		if got := portVariants(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("portVariants(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		is      error
		message string // substring of the error; "" means New succeeds
	}{
		{"hmac defaults", Config{Scheme: "hmac", Secret: "k", Header: "X-Sig"}, nil, ""},
		{"github", Config{Scheme: "github", Secret: "k"}, nil, ""},
		{"meta", Config{Scheme: "meta", Secrets: []string{"a", "b"}}, nil, ""},
		{"standard-webhooks whsec", Config{Scheme: "standard-webhooks", Secret: whsecSecrets[0], Tolerance: time.Minute}, nil, ""},
		{"standard-webhooks raw base64", Config{Scheme: "standard-webhooks", Secret: "YWxwaGEtYWxwaGEtYWxwaGEtYWxwaGEt"}, nil, ""},
		{"token query", Config{Scheme: "token", Secret: "k", Query: "t"}, nil, ""},
		{"none", Config{Scheme: "none"}, nil, ""},
		{"zendesk", Config{Scheme: "zendesk", Secret: "k"}, nil, ""},
		{"slack", Config{Scheme: "slack", Secret: "k"}, nil, ""},
		{"twilio public_url", Config{Scheme: "twilio", Secret: "k", PublicURL: "https://h.example.com:8443/hooks/twilio"}, nil, ""},

		{"unknown scheme suggests", Config{Scheme: "githb", Secret: "k"}, ErrUnknownScheme, `unknown verify scheme "githb"; did you mean "github"?`},
		{"unknown scheme suggests standard-webhooks", Config{Scheme: "standard-webhook", Secret: "k"}, ErrUnknownScheme, `did you mean "standard-webhooks"?`},
		{"unknown scheme no suggestion", Config{Scheme: "kerberos", Secret: "k"}, ErrUnknownScheme, `unknown verify scheme "kerberos"`},
		{"empty scheme lists valid ones", Config{Secret: "k"}, ErrUnknownScheme, "valid schemes: hmac, github, meta"},
		{"scheme is case-sensitive", Config{Scheme: "GitHub", Secret: "k"}, ErrUnknownScheme, `did you mean "github"?`},
		{"missing secret", Config{Scheme: "github"}, ErrMissingSecret, "set secret or secrets"},
		{"empty secrets entry", Config{Scheme: "slack", Secrets: []string{"a", ""}}, ErrMissingSecret, "secrets[1] is empty"},
		{"hmac missing header", Config{Scheme: "hmac", Secret: "k"}, ErrInvalidConfig, "header is required"},
		{"hmac bad algorithm", Config{Scheme: "hmac", Secret: "k", Header: "X", Algorithm: "md5"}, ErrInvalidConfig, `algorithm "md5" is not one of sha1, sha256, sha512`},
		{"hmac bad encoding", Config{Scheme: "hmac", Secret: "k", Header: "X", Encoding: "base32"}, ErrInvalidConfig, `encoding "base32" is not one of hex, base64`},
		{"standard-webhooks bad secret", Config{Scheme: "standard-webhooks", Secret: "whsec_not*base64"}, ErrInvalidConfig, `secret #1 is not "whsec_" followed by base64`},
		{"standard-webhooks empty key", Config{Scheme: "standard-webhooks", Secret: "whsec_"}, ErrInvalidConfig, "not \"whsec_\" followed by base64"},
		{"standard-webhooks second secret bad", Config{Scheme: "standard-webhooks", Secrets: []string{whsecSecrets[0], "plain"}}, ErrInvalidConfig, "secret #2"},
		{"token without header or query", Config{Scheme: "token", Secret: "k"}, ErrInvalidConfig, "set header or query"},
		{"github with header", Config{Scheme: "github", Secret: "k", Header: "X-Other"}, ErrInvalidConfig, `field "header" does not apply`},
		{"slack with algorithm", Config{Scheme: "slack", Secret: "k", Algorithm: "sha1"}, ErrInvalidConfig, `field "algorithm" does not apply`},
		{"hmac with tolerance", Config{Scheme: "hmac", Secret: "k", Header: "X", Tolerance: time.Minute}, ErrInvalidConfig, `field "tolerance" does not apply`},
		{"none with secret", Config{Scheme: "none", Secret: "k"}, ErrInvalidConfig, `field "secret" does not apply`},
		{"zendesk with public_url", Config{Scheme: "zendesk", Secret: "k", PublicURL: "https://x"}, ErrInvalidConfig, `field "public_url" does not apply`},
		{"negative tolerance", Config{Scheme: "slack", Secret: "k", Tolerance: -time.Minute}, ErrInvalidConfig, "tolerance -1m0s is negative"},
		{"twilio public_url with query", Config{Scheme: "twilio", Secret: "k", PublicURL: "https://h/x?a=1"}, ErrInvalidConfig, "must not carry a query"},
		{"twilio public_url relative", Config{Scheme: "twilio", Secret: "k", PublicURL: "/hooks/twilio"}, ErrInvalidConfig, "absolute http or https URL"},
		{"twilio public_url ftp", Config{Scheme: "twilio", Secret: "k", PublicURL: "ftp://h/x"}, ErrInvalidConfig, "absolute http or https URL"},
		{"twilio public_url unparsable", Config{Scheme: "twilio", Secret: "k", PublicURL: "https://h/%zz"}, ErrInvalidConfig, "public_url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := New(tt.cfg)
			if tt.message == "" {
				if err != nil || v == nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("New accepted %+v", tt.cfg)
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("error %q does not wrap %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Errorf("error %q does not contain %q", err, tt.message)
			}
			for _, s := range append([]string{tt.cfg.Secret}, tt.cfg.Secrets...) {
				if len(s) > len("whsec_") && strings.Contains(err.Error(), s) {
					t.Errorf("error %q leaks secret %q", err, s)
				}
			}
		})
	}
}

func TestSchemesList(t *testing.T) {
	want := []string{"hmac", "github", "meta", "standard-webhooks", "token", "none", "zendesk", "slack", "twilio"}
	got := Schemes()
	if !slices.Equal(got, want) {
		t.Fatalf("Schemes() = %v, want %v", got, want)
	}
	got[0] = "mutated"
	if Schemes()[0] != "hmac" {
		t.Fatal("Schemes returns shared state")
	}
}

func TestErrorType(t *testing.T) {
	err := error(&Error{Reason: "missing X header"})
	if err.Error() != "missing X header" {
		t.Errorf("Error() = %q", err.Error())
	}
	if !errors.Is(err, ErrUnauthorized) {
		t.Error("errors.Is(*Error, ErrUnauthorized) = false")
	}
	if errors.Is(err, ErrInvalidConfig) {
		t.Error("*Error matches ErrInvalidConfig")
	}
	wrapped := errors.Join(errors.New("ctx"), err)
	if !errors.Is(wrapped, ErrUnauthorized) {
		t.Error("wrapped *Error does not match ErrUnauthorized")
	}
}

// Timestamp schemes name each accepted request for the intake's replay
// guard: the same signed request gives the same key, a request signed at
// another time another key, and the window covers the tolerance on both
// sides. Other schemes and refused requests give none.
func TestReplayKey(t *testing.T) {
	now := time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)
	for _, sc := range schemeCases() {
		body := bodyFor(t, sc)
		cfg := sc.cfg
		cfg.Secrets = sc.secrets[:]
		if sc.timed {
			cfg.Tolerance = 3 * time.Minute
		}
		v := mustNew(t, cfg)
		key := func(at time.Time) string {
			t.Helper()
			r := newRequest(body, sc.ctype, now)
			if sc.ctype == "application/x-www-form-urlencoded" {
				r.Form, _ = url.ParseQuery(string(body))
			}
			sc.sign(sc.secrets[1], r, at)
			if err := v.Verify(r); err != nil {
				t.Fatalf("%s: %v", sc.name, err)
			}
			if r.ReplayKey != "" && r.ReplayWindow != 6*time.Minute {
				t.Errorf("%s: replay window %s, want twice the tolerance", sc.name, r.ReplayWindow)
			}
			return r.ReplayKey
		}
		first, again, later := key(now), key(now), key(now.Add(-time.Minute))
		if !sc.timed {
			if first != "" {
				t.Errorf("%s: replay key %q for a scheme without a timestamp", sc.name, first)
			}
			continue
		}
		if first == "" || first != again || first == later {
			t.Errorf("%s: keys %q, %q, %q: want the same for the same request, another for another time", sc.name, first, again, later)
		}
		// Another spelling of the same signature is the same request.
		respell := map[string]func(h http.Header){
			"slack": func(h http.Header) {
				h.Set("X-Slack-Signature", "v0="+strings.ToUpper(strings.TrimPrefix(h.Get("X-Slack-Signature"), "v0=")))
			},
			"standard-webhooks": func(h http.Header) { h.Set("Webhook-Signature", h.Get("Webhook-Signature")+" v1,AAAA") },
		}
		if f := respell[sc.name]; f != nil {
			r := newRequest(body, sc.ctype, now)
			sc.sign(sc.secrets[1], r, now)
			f(r.Header)
			if err := v.Verify(r); err != nil || r.ReplayKey != first {
				t.Errorf("%s: the same signature spelt another way: %v, key %q, want %q", sc.name, err, r.ReplayKey, first)
			}
		}
		r := newRequest(body, sc.ctype, now)
		sc.sign(sc.secrets[1], r, now)
		r.Body = append([]byte(" "), body...) // no longer what was signed
		if v.Verify(r) == nil || r.ReplayKey != "" {
			t.Errorf("%s: a refused request got replay key %q", sc.name, r.ReplayKey)
		}
	}
}
