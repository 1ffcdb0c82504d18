package connectors

import (
	"bytes"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/connectors/verify"
	"github.com/hookline/hookline/event"
)

// whsecTest is a Standard Webhooks secret (the spec's published test key).
const whsecTest = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func authConnector(t *testing.T, base, auth string) *Outbound {
	t.Helper()
	src := outboundFile("  base_url: " + base + "\n  auth: " + auth + "\n  actions:\n    update:\n      body: '{\"set\": {{ json .Set }}}'\n")
	return loadYAML(t, "auth.yaml", src, nil).Outbound
}

// TestAuthKinds sends a request with each auth kind to a real server and
// checks what arrived.
func TestAuthKinds(t *testing.T) {
	srv, ch := sink(t, 200, `{}`)
	u := &event.Update{Kind: event.KindUpdateEntity, Reference: "r1", Set: map[string]any{"status": "open"}}
	cases := []struct {
		name  string
		auth  string
		check func(t *testing.T, h http.Header)
	}{
		{"none", "{ type: none }", func(t *testing.T, h http.Header) {
			if h.Get("Authorization") != "" || h.Get("X-Hookline-Signature") != "" {
				t.Errorf("unexpected auth headers %v", h)
			}
		}},
		{"basic", "{ type: basic, username: me@example.com/token, password: s3cret }", func(t *testing.T, h http.Header) {
			if got := h.Get("Authorization"); got != basic("me@example.com/token", "s3cret") {
				t.Errorf("Authorization %q", got)
			}
		}},
		{"bearer", "{ type: bearer, token: abc.def }", func(t *testing.T, h http.Header) {
			if got := h.Get("Authorization"); got != "Bearer abc.def" {
				t.Errorf("Authorization %q", got)
			}
		}},
		{"header", "{ type: header, header: x-api-key, value: k-42 }", func(t *testing.T, h http.Header) {
			if got := h.Get("X-Api-Key"); got != "k-42" {
				t.Errorf("X-Api-Key %q", got)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := authConnector(t, srv.URL, tc.auth)
			got, status := send(t, o, u, "dlv-"+tc.name, ch)
			if status != 200 {
				t.Errorf("status %d", status)
			}
			tc.check(t, got.Header)
			if strings.Contains(o.Auth.String(), "s3cret") || strings.Contains(o.Auth.String(), "abc.def") || strings.Contains(o.Auth.String(), "k-42") {
				t.Errorf("Auth.String leaks a secret: %s", o.Auth)
			}
		})
	}
}

// TestSigningRoundTrip signs outbound requests and checks them with the
// inbound verifier of the same scheme: a Hookline on the other side (or any
// receiver following the scheme) accepts them, and tampering is refused.
func TestSigningRoundTrip(t *testing.T) {
	srv, ch := sink(t, 200, `{}`)
	now := time.Now()
	cases := []struct {
		name   string
		auth   string
		verify verify.Config
	}{
		{"hmac default", "{ type: hmac, secret: shh }",
			verify.Config{Scheme: "hmac", Secret: "shh", Header: "X-Hookline-Signature"}},
		{"hmac github style", "{ type: hmac, secret: shh, header: X-Hub-Signature-256, prefix: 'sha256=' }",
			verify.Config{Scheme: "github", Secret: "shh"}},
		{"hmac sha512 base64", "{ type: hmac, secret: shh, header: X-Sig, algorithm: sha512, encoding: base64, prefix: 'v1=' }",
			verify.Config{Scheme: "hmac", Secret: "shh", Header: "X-Sig", Algorithm: "sha512", Encoding: "base64", Prefix: "v1="}},
		{"hmac sha1", "{ type: hmac, secret: shh, header: X-Sig, algorithm: sha1 }",
			verify.Config{Scheme: "hmac", Secret: "shh", Header: "X-Sig", Algorithm: "sha1"}},
		{"standard-webhooks", "{ type: standard-webhooks, secret: " + whsecTest + " }",
			verify.Config{Scheme: "standard-webhooks", Secret: whsecTest}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := authConnector(t, srv.URL, tc.auth)
			u := &event.Update{Kind: event.KindUpdateEntity, Reference: "r1", Set: map[string]any{"status": "solved"}}
			got, _ := send(t, o, u, "msg_01DLV", ch)
			v, err := verify.New(tc.verify)
			if err != nil {
				t.Fatal(err)
			}
			req := &verify.Request{Method: got.Method, URL: srv.URL + got.Path, Header: got.Header, Query: url.Values{}, Body: got.Body, Now: now}
			if err := v.Verify(req); err != nil {
				t.Fatalf("the receiver refused our signature: %v (headers %v)", err, got.Header)
			}
			tampered := *req
			tampered.Body = bytes.Replace(got.Body, []byte("solved"), []byte("closed"), 1)
			if err := v.Verify(&tampered); !errors.Is(err, verify.ErrUnauthorized) {
				t.Errorf("tampered body accepted: %v", err)
			}
			if tc.verify.Scheme == "standard-webhooks" {
				if id := got.Header.Get("Webhook-Id"); id != "msg_01DLV" {
					t.Errorf("webhook-id %q, want the delivery id", id)
				}
				ts, _ := strconv.ParseInt(got.Header.Get("Webhook-Timestamp"), 10, 64)
				if d := now.Unix() - ts; d < -1 || d > 5 {
					t.Errorf("webhook-timestamp %d is not now (%d)", ts, now.Unix())
				}
				late := *req
				late.Now = now.Add(10 * time.Minute)
				if err := v.Verify(&late); !errors.Is(err, verify.ErrUnauthorized) {
					t.Errorf("stale signature accepted: %v", err)
				}
			}
		})
	}
}

// The Standard Webhooks spec's published vector, produced by our signer.
func TestStandardWebhooksKnownAnswer(t *testing.T) {
	o := authConnector(t, "https://example.com", "{ type: standard-webhooks, secret: "+whsecTest+" }")
	req, _ := http.NewRequest("POST", "https://example.com", nil)
	body := readFile(t, fixturesDir+"/standard-webhooks-test-vector-body.json")
	if err := o.Authorize(req, body, "update", "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0)); err != nil {
		t.Fatal(err)
	}
	if got := req.Header.Get("Webhook-Signature"); got != "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=" {
		t.Errorf("webhook-signature %q", got)
	}
	if err := o.Authorize(req, body, "update", "", time.Now()); err == nil {
		t.Error("standard-webhooks without a delivery id must fail")
	}
}

// GitHub's published X-Hub-Signature-256 example, produced by our signer.
func TestHMACKnownAnswer(t *testing.T) {
	o := authConnector(t, "https://example.com", `{ type: hmac, secret: "It's a Secret to Everybody", header: X-Hub-Signature-256, prefix: "sha256=" }`)
	req, _ := http.NewRequest("POST", "https://example.com", nil)
	if err := o.Authorize(req, readFile(t, fixturesDir+"/github-signature-vector-body.txt"), "update", "d", time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := req.Header.Get("X-Hub-Signature-256"); got != "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17" {
		t.Errorf("signature %q", got)
	}
}

func BenchmarkAuthorizeHMAC(b *testing.B) {
	c := loadYAML(b, "b.yaml", outboundFile("  base_url: https://example.com\n  auth: { type: hmac, secret: shh }\n  actions: { update: {} }\n"), nil)
	body := readFile(b, fixturesDir+"/whatsapp-cloud-text-message.json")
	req, _ := http.NewRequest("POST", "https://example.com", nil)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Outbound.Authorize(req, body, "update", "d", now); err != nil {
			b.Fatal(err)
		}
	}
}
