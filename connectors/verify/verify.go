package verify

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/hookline/hookline/internal/yamlconf"
)

// Request is what a verifier sees of an inbound webhook. Header lookups are
// case-insensitive.
type Request struct {
	Method string
	URL    string      // the public URL the platform called (scheme://host/path?query), for Twilio
	Header http.Header // canonicalized keys
	Query  url.Values
	Body   []byte     // exact raw bytes; for a GET webhook (accept_get), its query string
	Form   url.Values // parsed form params when the body is form-encoded, else nil
	Now    time.Time

	// ReplayKey and ReplayWindow are set by Verify, when it accepts the
	// request, for schemes that sign a timestamp: ReplayKey names this exact
	// signed request by what was signed and the signature that matched (as
	// bytes: another spelling of the same signature in the header, upper-case
	// hex or extra entries, is the same request), and ReplayWindow is how
	// long after Now the same request would still pass the timestamp check
	// (the tolerance in both directions). Intake answers a second request
	// with the same key within the window as a duplicate of the first,
	// whatever its unsigned headers say (Zendesk's invocation id, the dedupe
	// key, is not signed).
	ReplayKey    string
	ReplayWindow time.Duration
}

// signedReplay records the replay key of an accepted request of a
// timestamp scheme (see Request.ReplayKey).
func (r *Request) signedReplay(tolerance time.Duration, parts ...string) {
	r.ReplayKey = strings.Join(parts, "\x00")
	r.ReplayWindow = 2 * tolerance
}

// Verifier checks one inbound request. It returns nil when authentic, or an
// *Error whose Reason is a one-line, safe text (never containing the expected
// signature or a secret).
type Verifier interface {
	Verify(r *Request) error
}

// Config is the decoded `inbound.verify` block of a connector file.
type Config struct {
	Scheme    string        `yaml:"scheme"`     // hmac | github | meta | standard-webhooks | token | none | zendesk | slack | twilio
	Secret    string        `yaml:"secret"`     // single secret
	Secrets   []string      `yaml:"secrets"`    // several active secrets (rotation); any may match
	Header    string        `yaml:"header"`     // hmac: signature header; token: header name
	Query     string        `yaml:"query"`      // token: query parameter name (header or query or both)
	Algorithm string        `yaml:"algorithm"`  // hmac: sha1|sha256|sha512 (default sha256)
	Encoding  string        `yaml:"encoding"`   // hmac: hex|base64 (default hex)
	Prefix    string        `yaml:"prefix"`     // hmac: e.g. "sha256="
	Tolerance time.Duration `yaml:"tolerance"`  // timestamp schemes (default 5m)
	PublicURL string        `yaml:"public_url"` // twilio: the URL configured at Twilio (proxies rewrite it)
}

// DefaultTolerance is how far a signed timestamp may be from the receive time,
// in either direction, when Config.Tolerance is zero.
const DefaultTolerance = 5 * time.Minute

// Scheme names.
const (
	SchemeHMAC             = "hmac"
	SchemeGitHub           = "github"
	SchemeMeta             = "meta"
	SchemeStandardWebhooks = "standard-webhooks"
	SchemeToken            = "token"
	SchemeNone             = "none"
	SchemeZendesk          = "zendesk"
	SchemeSlack            = "slack"
	SchemeTwilio           = "twilio"
)

// Config fields a scheme may use besides scheme itself; any other non-empty
// field is refused so that a setting is never silently ignored.
const (
	fSecret = 1 << iota
	fHeader
	fQuery
	fAlgorithm
	fEncoding
	fPrefix
	fTolerance
	fPublicURL
)

// schemeSpec is one row of the immutable scheme table.
type schemeSpec struct {
	name   string
	fields int
	build  func(cfg Config, secrets []string) (Verifier, error)
}

// schemeTable lists every scheme in the order Schemes reports them.
func schemeTable() []schemeSpec {
	return []schemeSpec{
		{SchemeHMAC, fSecret | fHeader | fAlgorithm | fEncoding | fPrefix, newHMAC},
		{SchemeGitHub, fSecret, newHubSignature},
		{SchemeMeta, fSecret, newHubSignature},
		{SchemeStandardWebhooks, fSecret | fTolerance, newStandardWebhooks},
		{SchemeToken, fSecret | fHeader | fQuery, newToken},
		{SchemeNone, 0, func(Config, []string) (Verifier, error) { return noneVerifier{}, nil }},
		{SchemeZendesk, fSecret | fTolerance, newZendesk},
		{SchemeSlack, fSecret | fTolerance, newSlack},
		{SchemeTwilio, fSecret | fPublicURL, newTwilio},
	}
}

// Schemes returns the valid scheme names.
func Schemes() []string {
	table := schemeTable()
	names := make([]string, len(table))
	for i, s := range table {
		names[i] = s.name
	}
	return names
}

// URLFromRequest reports whether cfg's scheme signs the request's URL and
// no public_url is set: the URL checked is then built from the request's
// Host and X-Forwarded-* headers, which the sender chooses.
func (c Config) URLFromRequest() bool {
	spec, ok := lookupScheme(c.Scheme)
	return ok && spec.fields&fPublicURL != 0 && c.PublicURL == ""
}

// lookupScheme finds a scheme's row of the table.
func lookupScheme(name string) (schemeSpec, bool) {
	table := schemeTable()
	i := slices.IndexFunc(table, func(s schemeSpec) bool { return s.name == name })
	if i < 0 {
		return schemeSpec{}, false
	}
	return table[i], true
}

// New builds the verifier for cfg, rejecting bad settings up front.
func New(cfg Config) (Verifier, error) {
	spec, ok := lookupScheme(cfg.Scheme)
	if !ok {
		if cfg.Scheme == "" {
			return nil, fmt.Errorf("%w: scheme is empty; valid schemes: %s", ErrUnknownScheme, strings.Join(Schemes(), ", "))
		}
		return nil, fmt.Errorf("%w %q%s", ErrUnknownScheme, cfg.Scheme, yamlconf.DidYouMean(cfg.Scheme, Schemes()))
	}
	if err := checkFields(cfg, spec); err != nil {
		return nil, err
	}
	if cfg.Tolerance < 0 {
		return nil, fmt.Errorf("verify scheme %q: %w: tolerance %s is negative", cfg.Scheme, ErrInvalidConfig, cfg.Tolerance)
	}
	var secrets []string
	if spec.fields&fSecret != 0 {
		var err error
		if secrets, err = collectSecrets(cfg); err != nil {
			return nil, err
		}
	}
	v, err := spec.build(cfg, secrets)
	if err != nil {
		return nil, fmt.Errorf("verify scheme %q: %w", cfg.Scheme, err)
	}
	return v, nil
}

// checkFields refuses settings the scheme does not use.
func checkFields(cfg Config, spec schemeSpec) error {
	set := []struct {
		name string
		bit  int
		on   bool
	}{
		{"secret", fSecret, cfg.Secret != ""},
		{"secrets", fSecret, len(cfg.Secrets) > 0},
		{"header", fHeader, cfg.Header != ""},
		{"query", fQuery, cfg.Query != ""},
		{"algorithm", fAlgorithm, cfg.Algorithm != ""},
		{"encoding", fEncoding, cfg.Encoding != ""},
		{"prefix", fPrefix, cfg.Prefix != ""},
		{"tolerance", fTolerance, cfg.Tolerance != 0},
		{"public_url", fPublicURL, cfg.PublicURL != ""},
	}
	for _, f := range set {
		if f.on && spec.fields&f.bit == 0 {
			return fmt.Errorf("verify scheme %q: %w: field %q does not apply to this scheme", spec.name, ErrInvalidConfig, f.name)
		}
	}
	return nil
}

// collectSecrets merges secret and secrets, refusing empty entries and an
// empty result.
func collectSecrets(cfg Config) ([]string, error) {
	var out []string
	if cfg.Secret != "" {
		out = append(out, cfg.Secret)
	}
	for i, s := range cfg.Secrets {
		if s == "" {
			return nil, fmt.Errorf("verify scheme %q: %w: secrets[%d] is empty (unset environment variable?)", cfg.Scheme, ErrMissingSecret, i)
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("verify scheme %q: %w: set secret or secrets", cfg.Scheme, ErrMissingSecret)
	}
	return out, nil
}

// tolerance returns d, or DefaultTolerance when d is zero.
func tolerance(d time.Duration) time.Duration {
	if d == 0 {
		return DefaultTolerance
	}
	return d
}

// now returns the request's clock, or the wall clock when it is unset.
func (r *Request) now() time.Time {
	if r.Now.IsZero() {
		return time.Now()
	}
	return r.Now
}

// header returns the first value of header name, trimmed, matching the name
// case-insensitively even when the map's keys are not canonical.
func (r *Request) header(name string) (string, bool) {
	if vs, ok := r.Header[http.CanonicalHeaderKey(name)]; ok && len(vs) > 0 {
		return strings.TrimSpace(vs[0]), true
	}
	for k, vs := range r.Header {
		if strings.EqualFold(k, name) && len(vs) > 0 {
			return strings.TrimSpace(vs[0]), true
		}
	}
	return "", false
}

// requireHeader returns header name's non-empty value or a refusal naming it.
func (r *Request) requireHeader(name string) (string, error) {
	v, ok := r.header(name)
	if !ok || v == "" {
		return "", refuse("missing " + name + " header")
	}
	return v, nil
}

// checkWindow refuses t when it is more than tol before or after now.
func checkWindow(t, now time.Time, tol time.Duration) error {
	if t.Before(now.Add(-tol)) || t.After(now.Add(tol)) {
		return refuse(fmt.Sprintf("timestamp outside tolerance (%s)", tol))
	}
	return nil
}

// checkUnixWindow parses unix seconds from header name and checks the window
// without overflowing on absurd values.
func checkUnixWindow(name, value string, now time.Time, tol time.Duration) error {
	ts, ok := parseUnix(value)
	if !ok {
		return refuse("malformed " + name + " header")
	}
	if ts < now.Add(-tol).Unix() || ts > now.Add(tol).Unix() {
		return refuse(fmt.Sprintf("timestamp outside tolerance (%s)", tol))
	}
	return nil
}

// parseUnix parses a non-negative decimal integer of at most 18 digits.
func parseUnix(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// queryValues returns r.Query, or the query parsed from r.URL when Query is
// nil.
func (r *Request) queryValues() url.Values {
	if r.Query != nil {
		return r.Query
	}
	if u, err := url.Parse(r.URL); err == nil {
		if q, err := url.ParseQuery(u.RawQuery); err == nil {
			return q
		}
	}
	return url.Values{}
}

// noneVerifier accepts every request.
type noneVerifier struct{}

var _ Verifier = noneVerifier{}

// Verify always returns nil.
func (noneVerifier) Verify(*Request) error { return nil }
