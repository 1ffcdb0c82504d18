package connectors

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/hookline/hookline/connectors/verify"
	"github.com/hookline/hookline/mapping"
)

// Inbound is the compiled `inbound:` section of a connector file: how the
// gateway authenticates, checks, deduplicates and maps the platform's
// webhooks.
type Inbound struct {
	Verifier  verify.Verifier
	Scheme    string          // the configured verify scheme (also when Unsigned)
	Schema    string          // payload schema name ("" none)
	Dedupe    Dedupe          // how the dedupe key of a request is found
	Mapper    *mapping.Mapper // payload -> events
	BodyLimit int             // bytes; 0 = gateway default
	Unsigned  bool            // true when requests are accepted without verification (warn at start-up)
	// AcceptGet takes webhooks sent as GET requests whose query parameters
	// are the payload (SmarterTrack's Call Web Page, some legacy tools).
	AcceptGet bool
	// URLFromRequest is set when the signature covers the request's URL and
	// no public_url is configured (twilio): the URL checked is built from
	// the request's Host and X-Forwarded-* headers, which a sender chooses.
	URLFromRequest bool
	// SecretHeaders (canonical names) and SecretParams (query parameters)
	// carry this connector's credential in clear (the token scheme's):
	// the gateway never stores their values, whatever they are called.
	SecretHeaders, SecretParams []string
	// MaxEntityFields is how many fields the snapshot of one entity of this
	// connector may hold (inbound.max_entity_fields): an event that would
	// grow it past that fails instead.
	MaxEntityFields int
	// Reply is the answer to a webhook taken, accepted or duplicate
	// (inbound.reply); nil: the gateway's JSON with the inbox id.
	Reply *Reply

	handshake handshake
}

// DefaultMaxEntityFields is the cap of fields per entity snapshot unless
// the connector sets inbound.max_entity_fields.
const DefaultMaxEntityFields = 10000

// Dedupe sources.
const (
	DedupeHeader = "header"
	DedupePath   = "path"
	DedupeBody   = "body"
)

// Dedupe names where the dedupe key of a request comes from.
type Dedupe struct {
	Source string        // header | path | body
	Name   string        // header name (canonical) or gjson payload path; "" for body
	Window time.Duration // 0 = gateway default
	// FallbackWindow is how long the body-hash key of a request without
	// the header or path value is remembered (header and path sources
	// only); 0 = Window.
	FallbackWindow time.Duration
}

// MaxDedupeKeyLen is the longest dedupe key a header or payload path
// gives that is kept as it is; a longer one is replaced by "sha256:" and
// the SHA-256 hex of it (the store indexes keys of a bounded size).
const MaxDedupeKeyLen = 1024

// Key returns the dedupe key of a request: the header's value, the payload
// path's value (gjson, on the JSON payload: form posts converted), or a
// SHA-256 hex of the body; when the header or path is absent or empty, it
// falls back to the body hash so that an exact retry is still recognized.
// A header or path value over MaxDedupeKeyLen bytes is hashed.
func (d Dedupe) Key(h http.Header, body []byte) string {
	if key, named := d.namedKey(h, body); named {
		return key
	}
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// namedKey is the key the header or payload path names (bounded), and
// false when the source is the body or names nothing: the caller hashes
// the body then, once.
func (d Dedupe) namedKey(h http.Header, body []byte) (string, bool) {
	switch d.Source {
	case DedupeHeader:
		if v := headerValue(h, d.Name); v != "" {
			return boundedKey(v), true
		}
	case DedupePath:
		if r := gjson.GetBytes(body, d.Name); r.Exists() {
			v := r.String()
			if r.IsObject() || r.IsArray() {
				v = r.Raw
			}
			if v != "" {
				return boundedKey(v), true
			}
		}
	}
	return "", false
}

// boundedKey is key, or "sha256:" and its SHA-256 hex when it is longer
// than MaxDedupeKeyLen.
func boundedKey(key string) string {
	if len(key) <= MaxDedupeKeyLen {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// RequestKey is Key for a whole request, with how long the key is
// remembered (0: the gateway's default): Window, or FallbackWindow when a
// header or path source fell back to the body hash. When the key is the
// body hash, the query string is hashed with the body, so that two posts
// that differ only in their query (?event=ticket_created vs
// ?event=ticket_closed, or a GET whose query is the payload) are not taken
// for one another. Parameters whose names say they carry a credential are
// left out, so a rotated token does not make a retry look new.
func (d Dedupe) RequestKey(h http.Header, query url.Values, body []byte) (key string, window time.Duration) {
	if key, named := d.namedKey(h, body); named {
		return key, d.Window
	}
	window = d.Window
	if d.Source != DedupeBody && d.FallbackWindow > 0 {
		window = d.FallbackWindow
	}
	if len(query) == 0 {
		sum := sha256.Sum256(body)
		return hex.EncodeToString(sum[:]), window
	}
	kept := url.Values{}
	for k, v := range query {
		if !credentialParam(k) {
			kept[k] = v
		}
	}
	hash := sha256.New()
	hash.Write(body)
	hash.Write([]byte{0})
	hash.Write([]byte(kept.Encode()))
	return hex.EncodeToString(hash.Sum(nil)), window
}

func credentialParam(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"token", "secret", "password", "key", "signature", "sig"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// String renders the dedupe source as written in a connector file.
func (d Dedupe) String() string {
	if d.Source == DedupeBody || d.Source == "" {
		return DedupeBody
	}
	return d.Source + ":" + d.Name
}

func headerValue(h http.Header, name string) string {
	if vs := h.Values(name); len(vs) > 0 {
		return strings.TrimSpace(vs[0])
	}
	for k, vs := range h {
		if strings.EqualFold(k, name) && len(vs) > 0 {
			return strings.TrimSpace(vs[0])
		}
	}
	return ""
}

// Handshake schemes.
const (
	HandshakeMeta  = "meta"
	HandshakeSlack = "slack"
)

// HandshakeSchemes returns the valid handshake scheme names.
func HandshakeSchemes() []string { return []string{HandshakeMeta, HandshakeSlack} }

type handshake struct {
	scheme      string // "" none
	verifyToken string // meta
}

// HandshakeResponse is the answer to a platform's verification handshake.
type HandshakeResponse struct {
	Status      int
	ContentType string
	Body        []byte
}

// HandshakeScheme returns the connector's handshake scheme ("" none).
func (in *Inbound) HandshakeScheme() string { return in.handshake.scheme }

// maxChallenge bounds the challenge echoed back; platforms send short tokens.
const maxChallenge = 1024

// Handshake answers a platform's verification handshake when r is one;
// handled is false otherwise.
//
// meta (WhatsApp Cloud API, Messenger, Instagram): a GET carrying hub.mode is
// a handshake. With hub.mode=subscribe and a hub.verify_token equal
// (constant-time) to the configured token it is answered 200 text/plain with
// the hub.challenge value; a wrong token or mode gets 403, a missing or
// oversized challenge 400.
//
// slack: a POST whose JSON body is {"type":"url_verification","challenge":...}
// is answered 200 text/plain with the challenge. The gateway calls Handshake
// for POSTs only after the signature verified.
func (in *Inbound) Handshake(r *verify.Request) (resp *HandshakeResponse, handled bool) {
	if in == nil || r == nil {
		return nil, false
	}
	switch in.handshake.scheme {
	case HandshakeMeta:
		if r.Method != http.MethodGet || !r.Query.Has("hub.mode") {
			return nil, false
		}
		mode := r.Query.Get("hub.mode")
		token := r.Query.Get("hub.verify_token")
		ok := subtle.ConstantTimeCompare([]byte(token), []byte(in.handshake.verifyToken)) == 1
		if mode != "subscribe" || !ok || in.handshake.verifyToken == "" {
			return text(http.StatusForbidden, "verification failed: hub.mode must be subscribe and hub.verify_token must match\n"), true
		}
		ch := r.Query.Get("hub.challenge")
		if ch == "" || len(ch) > maxChallenge {
			return text(http.StatusBadRequest, "missing or oversized hub.challenge\n"), true
		}
		return text(http.StatusOK, ch), true
	case HandshakeSlack:
		if r.Method != http.MethodPost || !gjson.ValidBytes(r.Body) {
			return nil, false
		}
		res := gjson.GetManyBytes(r.Body, "type", "challenge")
		if res[0].String() != "url_verification" {
			return nil, false
		}
		ch := res[1].String()
		if ch == "" || len(ch) > maxChallenge {
			return text(http.StatusBadRequest, "missing or oversized challenge\n"), true
		}
		return text(http.StatusOK, ch), true
	}
	return nil, false
}

func text(status int, body string) *HandshakeResponse {
	return &HandshakeResponse{Status: status, ContentType: "text/plain; charset=utf-8", Body: []byte(body)}
}
