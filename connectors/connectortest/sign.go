package connectortest

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hookline/hookline/connectors/verify"
)

// Signer signs r (whose Body, URL, Query and Content-Type header are set) the
// way the platform would with secret at time at: it sets signature headers or
// query parameters on r.
type Signer func(r *verify.Request, secret string, at time.Time)

// SignHubSHA256 signs like Meta and GitHub: X-Hub-Signature-256:
// sha256=<hex HMAC-SHA256(secret, body)>.
func SignHubSHA256(r *verify.Request, secret string, _ time.Time) {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(r.Body)
	header(r).Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(m.Sum(nil)))
}

// SignZendesk signs like Zendesk webhooks: X-Zendesk-Webhook-Signature =
// base64(HMAC-SHA256(secret, timestamp + body)) with the RFC 3339
// X-Zendesk-Webhook-Signature-Timestamp.
func SignZendesk(r *verify.Request, secret string, at time.Time) {
	ts := at.UTC().Format(time.RFC3339)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write(r.Body)
	h := header(r)
	h.Set("X-Zendesk-Webhook-Signature-Timestamp", ts)
	h.Set("X-Zendesk-Webhook-Signature", base64.StdEncoding.EncodeToString(m.Sum(nil)))
}

// SignSlack signs like Slack: X-Slack-Signature: v0=<hex HMAC-SHA256(signing
// secret, "v0:" + timestamp + ":" + body)> with the Unix-seconds
// X-Slack-Request-Timestamp.
func SignSlack(r *verify.Request, secret string, at time.Time) {
	ts := strconv.FormatInt(at.Unix(), 10)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("v0:" + ts + ":"))
	m.Write(r.Body)
	h := header(r)
	h.Set("X-Slack-Request-Timestamp", ts)
	h.Set("X-Slack-Signature", "v0="+hex.EncodeToString(m.Sum(nil)))
}

// SignTwilio returns a signer that signs like Twilio: X-Twilio-Signature =
// base64(HMAC-SHA1(auth token, URL + each form key and value, keys in byte
// order, a repeated key's values sorted)). The URL is publicURL (the URL
// configured at Twilio, without query) plus the request's query; when
// publicURL is "" the request's own URL is used.
func SignTwilio(publicURL string) Signer {
	return func(r *verify.Request, secret string, _ time.Time) {
		signed := r.URL
		if publicURL != "" {
			signed = publicURL
			if _, q, ok := strings.Cut(r.URL, "?"); ok && q != "" {
				signed += "?" + q
			} else if len(r.Query) > 0 {
				signed += "?" + r.Query.Encode()
			}
		}
		var params url.Values
		if verify.ContentKind(header(r).Get("Content-Type")) == "form" {
			params, _ = url.ParseQuery(string(r.Body))
		}
		keys := make([]string, 0, len(params))
		for k := range params {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		m := hmac.New(sha1.New, []byte(secret))
		m.Write([]byte(signed))
		for _, k := range keys {
			vs := append([]string(nil), params[k]...)
			sort.Strings(vs)
			for _, v := range vs {
				m.Write([]byte(k))
				m.Write([]byte(v))
			}
		}
		header(r).Set("X-Twilio-Signature", base64.StdEncoding.EncodeToString(m.Sum(nil)))
	}
}

// SignTokenHeader returns a signer that sends the secret in header name, the
// way platforms that cannot sign send a shared token (a custom header set in
// the platform's webhook settings).
func SignTokenHeader(name string) Signer {
	return func(r *verify.Request, secret string, _ time.Time) {
		header(r).Set(name, secret)
	}
}

// SignTokenQuery returns a signer that sends the secret as the query
// parameter name of the hook URL (for platforms whose webhook settings take
// only a URL). It updates both r.Query and r.URL.
func SignTokenQuery(name string) Signer {
	return func(r *verify.Request, secret string, _ time.Time) {
		if r.Query == nil {
			r.Query = url.Values{}
		}
		r.Query.Set(name, secret)
		base, _, _ := strings.Cut(r.URL, "?")
		r.URL = base + "?" + r.Query.Encode()
	}
}

// SignStandardWebhooks returns a signer that signs like the Standard Webhooks
// specification: webhook-id (id), webhook-timestamp (Unix seconds) and
// webhook-signature: v1,<base64 HMAC-SHA256(key, id.timestamp.body)> where the
// key is the base64 after "whsec_" in secret.
func SignStandardWebhooks(id string) Signer {
	return func(r *verify.Request, secret string, at time.Time) {
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
		if err != nil {
			key = []byte(secret) // a wrong secret: the signature will not match
		}
		ts := strconv.FormatInt(at.Unix(), 10)
		m := hmac.New(sha256.New, key)
		m.Write([]byte(id + "." + ts + "."))
		m.Write(r.Body)
		h := header(r)
		h.Set("Webhook-Id", id)
		h.Set("Webhook-Timestamp", ts)
		h.Set("Webhook-Signature", "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
	}
}

func header(r *verify.Request) http.Header {
	if r.Header == nil {
		r.Header = http.Header{}
	}
	return r.Header
}

// BasicAuth returns the Authorization header value of HTTP basic auth, for
// WantRequest.Headers.
func BasicAuth(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}
