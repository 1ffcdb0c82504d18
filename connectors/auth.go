package connectors

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/hookline/hookline/internal/yamlconf"
)

// Auth kinds of an outbound connector.
const (
	AuthNone             = "none"
	AuthBasic            = "basic"
	AuthBearer           = "bearer"
	AuthHeader           = "header"
	AuthHMAC             = "hmac"
	AuthStandardWebhooks = "standard-webhooks"
)

// DefaultSignatureHeader is the header an hmac-signed request carries when the
// connector names none.
const DefaultSignatureHeader = "X-Hookline-Signature"

// Auth is how requests of an outbound connector authenticate: credentials
// (basic, bearer, header) or request signing that lets the receiver verify
// Hookline (hmac, standard-webhooks). Secrets are never rendered by String or
// JSON encoding.
type Auth struct {
	Type      string `json:"type"`
	Username  string `json:"username,omitempty"` // basic
	Password  string `json:"-"`                  // basic
	Token     string `json:"-"`                  // bearer
	Header    string `json:"header,omitempty"`   // header: header name; hmac: signature header
	Value     string `json:"-"`                  // header: header value
	Secret    string `json:"-"`                  // hmac, standard-webhooks
	Algorithm string `json:"algorithm,omitempty"`
	Encoding  string `json:"encoding,omitempty"`
	Prefix    string `json:"prefix,omitempty"`

	key []byte // standard-webhooks: decoded signing key
}

// AuthTypes returns the valid auth type names.
func AuthTypes() []string {
	return []string{AuthNone, AuthBasic, AuthBearer, AuthHeader, AuthHMAC, AuthStandardWebhooks}
}

// String describes the auth without its secrets.
func (a Auth) String() string {
	switch a.Type {
	case AuthBasic:
		return "basic (user " + a.Username + ")"
	case AuthHeader:
		return "header " + a.Header
	case AuthHMAC:
		return fmt.Sprintf("hmac %s/%s in %s", a.Algorithm, a.Encoding, a.Header)
	case "":
		return AuthNone
	}
	return a.Type
}

type authYAML struct {
	Type      *yaml.Node `yaml:"type"`
	Username  *yaml.Node `yaml:"username"`
	Password  *yaml.Node `yaml:"password"`
	Token     *yaml.Node `yaml:"token"`
	Header    *yaml.Node `yaml:"header"`
	Value     *yaml.Node `yaml:"value"`
	Secret    *yaml.Node `yaml:"secret"`
	Algorithm *yaml.Node `yaml:"algorithm"`
	Encoding  *yaml.Node `yaml:"encoding"`
	Prefix    *yaml.Node `yaml:"prefix"`
}

// authFields lists, per type, the keys it uses and which of them must be non-empty.
var authFields = map[string]struct{ allowed, required []string }{
	AuthNone:             {},
	AuthBasic:            {allowed: []string{"username", "password"}, required: []string{"username", "password"}},
	AuthBearer:           {allowed: []string{"token"}, required: []string{"token"}},
	AuthHeader:           {allowed: []string{"header", "value"}, required: []string{"header", "value"}},
	AuthHMAC:             {allowed: []string{"secret", "header", "algorithm", "encoding", "prefix"}, required: []string{"secret"}},
	AuthStandardWebhooks: {allowed: []string{"secret"}, required: []string{"secret"}},
}

func loadAuth(file string, n *yaml.Node) (Auth, yamlconf.Errors) {
	var errs yamlconf.Errors
	var y authYAML
	errs.Append(yamlconf.Decode(file, n, &y))
	if n.Kind != yaml.MappingNode {
		return Auth{}, errs
	}
	known := yamlconf.FieldNames(reflect.TypeFor[authYAML]())
	if y.Type == nil {
		errs.Add(file, n, "auth: missing required key \"type\" (valid: %s)", strings.Join(AuthTypes(), ", "))
		return Auth{}, errs
	}
	a := Auth{Type: y.Type.Value}
	spec, ok := authFields[a.Type]
	if !ok {
		errs.Add(file, y.Type, "unknown auth type %q%s (valid: %s)", a.Type, yamlconf.DidYouMean(a.Type, AuthTypes()), strings.Join(AuthTypes(), ", "))
		return a, errs
	}
	val := func(nd *yaml.Node) string {
		if nd == nil {
			return ""
		}
		return nd.Value
	}
	a.Username, a.Password, a.Token = val(y.Username), val(y.Password), val(y.Token)
	a.Header, a.Value, a.Secret = val(y.Header), val(y.Value), val(y.Secret)
	a.Algorithm, a.Encoding, a.Prefix = val(y.Algorithm), val(y.Encoding), val(y.Prefix)
	for _, kv := range yamlconf.Pairs(n) {
		k := kv.Key.Value
		if k == "type" || !slices.Contains(known, k) {
			continue // unknown keys are reported by Decode
		}
		if !slices.Contains(spec.allowed, k) {
			errs.Add(file, kv.Key, "auth type %s does not use %q (it uses: %s)", a.Type, k, strings.Join(append([]string{"type"}, spec.allowed...), ", "))
		}
	}
	for _, k := range spec.required {
		nd := yamlconf.Lookup(n, k)
		if nd == nil {
			errs.Add(file, n, "auth type %s: missing required key %q", a.Type, k)
		} else if strings.TrimSpace(nd.Value) == "" {
			errs.Add(file, nd, "auth type %s: %s is empty (is its environment variable set?)", a.Type, k)
		}
	}
	switch a.Type {
	case AuthHeader:
		if a.Header != "" && !validHeaderName(a.Header) {
			errs.Add(file, y.Header, "invalid header name %q", a.Header)
		}
		if err := checkHeaderValue(a.Value); err != nil {
			errs.Add(file, y.Value, "header %v", err)
		}
	case AuthBearer:
		if err := checkHeaderValue(a.Token); err != nil {
			errs.Add(file, y.Token, "token: %v", err)
		}
	case AuthHMAC:
		if a.Header == "" {
			a.Header = DefaultSignatureHeader
		} else if !validHeaderName(a.Header) {
			errs.Add(file, y.Header, "invalid header name %q", a.Header)
		}
		if a.Algorithm == "" {
			a.Algorithm = "sha256"
		} else if newHash(a.Algorithm) == nil {
			errs.Add(file, y.Algorithm, "unknown algorithm %q%s (valid: sha1, sha256, sha512)", a.Algorithm, yamlconf.DidYouMean(a.Algorithm, []string{"sha1", "sha256", "sha512"}))
		}
		if a.Encoding == "" {
			a.Encoding = "hex"
		} else if a.Encoding != "hex" && a.Encoding != "base64" {
			errs.Add(file, y.Encoding, "unknown encoding %q%s (valid: hex, base64)", a.Encoding, yamlconf.DidYouMean(a.Encoding, []string{"hex", "base64"}))
		}
	case AuthStandardWebhooks:
		if a.Secret != "" {
			key, err := decodeWebhookSecret(a.Secret)
			if err != nil {
				errs.Add(file, y.Secret, "standard-webhooks secret: %v", err)
			}
			a.key = key
		}
	}
	return a, errs
}

// decodeWebhookSecret decodes a Standard Webhooks secret: "whsec_" followed by
// base64, or the base64 alone.
func decodeWebhookSecret(s string) ([]byte, error) {
	raw := strings.TrimPrefix(s, "whsec_")
	key, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		return nil, fmt.Errorf("expected whsec_ followed by base64 (the signing key), got something else")
	}
	if len(key) < 16 {
		return nil, fmt.Errorf("the key is %d bytes; use at least 16 (24 to 64 recommended)", len(key))
	}
	return key, nil
}

func newHash(alg string) func() hash.Hash {
	switch alg {
	case "sha1":
		return sha1.New
	case "sha256":
		return sha256.New
	case "sha512":
		return sha512.New
	}
	return nil
}

// Authorize applies auth and request signing to req at send time: basic,
// bearer, header (name/value), hmac (the configured header carries the
// prefix and the hex or base64 HMAC of body, as the inbound hmac scheme
// checks it), standard-webhooks v1 (webhook-id = deliveryID, webhook-timestamp
// = now in Unix seconds, webhook-signature = "v1,"+base64 HMAC-SHA256 of
// id.timestamp.body). body must be the exact bytes sent. For call_webhook
// requests (action == "") nothing is applied: their URL is arbitrary and must
// not receive the platform's credentials.
func (o *Outbound) Authorize(req *http.Request, body []byte, action string, deliveryID string, now time.Time) error {
	if action == "" || o == nil {
		return nil
	}
	a := o.Auth
	switch a.Type {
	case "", AuthNone:
		return nil
	case AuthBasic:
		req.SetBasicAuth(a.Username, a.Password)
	case AuthBearer:
		req.Header.Set("Authorization", "Bearer "+a.Token)
	case AuthHeader:
		req.Header.Set(a.Header, a.Value)
	case AuthHMAC:
		h := newHash(a.Algorithm)
		if h == nil {
			return fmt.Errorf("connector %s: sign request: unknown algorithm %q", o.Name, a.Algorithm)
		}
		m := hmac.New(h, []byte(a.Secret))
		m.Write(body)
		sum := m.Sum(nil)
		var enc string
		if a.Encoding == "base64" {
			enc = base64.StdEncoding.EncodeToString(sum)
		} else {
			enc = hex.EncodeToString(sum)
		}
		req.Header.Set(a.Header, a.Prefix+enc)
	case AuthStandardWebhooks:
		if deliveryID == "" {
			return fmt.Errorf("connector %s: sign request: standard-webhooks needs a delivery id", o.Name)
		}
		key := a.key
		if key == nil {
			var err error
			if key, err = decodeWebhookSecret(a.Secret); err != nil {
				return fmt.Errorf("connector %s: sign request: %w", o.Name, err)
			}
		}
		ts := strconv.FormatInt(now.Unix(), 10)
		m := hmac.New(sha256.New, key)
		m.Write([]byte(deliveryID))
		m.Write([]byte{'.'})
		m.Write([]byte(ts))
		m.Write([]byte{'.'})
		m.Write(body)
		req.Header.Set("Webhook-Id", deliveryID)
		req.Header.Set("Webhook-Timestamp", ts)
		req.Header.Set("Webhook-Signature", "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
	default:
		return fmt.Errorf("connector %s: unknown auth type %q", o.Name, a.Type)
	}
	return nil
}
