package verify

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// twilioSignatureHeader is the header Twilio signs with.
const twilioSignatureHeader = "X-Twilio-Signature"

// twilioVerifier checks Twilio's URL-and-parameters HMAC-SHA1 signature.
type twilioVerifier struct {
	keys      [][]byte
	publicURL string // scheme://host[:port]/path, no query; "" means Request.URL
}

var _ Verifier = (*twilioVerifier)(nil)

// newTwilio builds the twilio scheme; public_url must be an absolute http(s)
// URL without query or fragment (the request's query is appended to it).
func newTwilio(cfg Config, secrets []string) (Verifier, error) {
	if cfg.PublicURL != "" {
		u, err := url.Parse(cfg.PublicURL)
		if err != nil {
			return nil, fmt.Errorf("%w: public_url: %w", ErrInvalidConfig, err)
		}
		if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("%w: public_url %q must be an absolute http or https URL", ErrInvalidConfig, cfg.PublicURL)
		}
		if strings.ContainsAny(cfg.PublicURL, "?#") {
			return nil, fmt.Errorf("%w: public_url %q must not carry a query or fragment; the request's query is appended as received", ErrInvalidConfig, cfg.PublicURL)
		}
	}
	return &twilioVerifier{keys: byteKeys(secrets), publicURL: cfg.PublicURL}, nil
}

// Verify checks the body (form parameters or bodySHA256) and then the
// signature over each port variant of the URL. A GET is signed over its URL
// only, as Twilio documents.
func (v *twilioVerifier) Verify(r *Request) error {
	sigValue, err := r.requireHeader(twilioSignatureHeader)
	if err != nil {
		return err
	}
	sig, err := base64.StdEncoding.DecodeString(sigValue)
	if err != nil || len(sig) != sha1.Size {
		return refuse("malformed " + twilioSignatureHeader + " header: not a base64 signature")
	}
	full, rawQuery := v.signedURL(r)
	if !strings.Contains(full, "://") {
		return refuse("request URL is not absolute; set public_url")
	}
	query, err := url.ParseQuery(rawQuery)
	if err != nil {
		return refuse("malformed query string")
	}
	var params url.Values
	ctype, _ := r.header("Content-Type")
	switch {
	case r.Method == http.MethodGet:
		// Twilio signs a GET's URL alone: its parameters are in the query,
		// which the URL covers; Form and Body, when set, are that query.
	case query.Has("bodySHA256"):
		sum := sha256.Sum256(r.Body)
		got := strings.ToLower(query.Get("bodySHA256"))
		if subtle.ConstantTimeCompare([]byte(hex.EncodeToString(sum[:])), []byte(got)) != 1 {
			return refuse("body does not match its bodySHA256 hash")
		}
	case r.Form != nil:
		params = r.Form
	case ContentKind(ctype) == "form":
		if params, err = url.ParseQuery(string(r.Body)); err != nil {
			return refuse("malformed form body")
		}
	case len(r.Body) > 0:
		return refuse("body is neither form-encoded nor covered by bodySHA256")
	}
	for _, key := range v.keys {
		for _, candidate := range portVariants(full) {
			if hmac.Equal(sig, twilioSignature(key, candidate, params)) {
				return nil
			}
		}
	}
	return refuse("signature does not match")
}

// signedURL returns the URL Twilio signed and its raw query: public_url plus
// the request's query when public_url is set, else Request.URL.
func (v *twilioVerifier) signedURL(r *Request) (full, rawQuery string) {
	_, rawQuery, _ = strings.Cut(r.URL, "?")
	rawQuery, _, _ = strings.Cut(rawQuery, "#")
	if v.publicURL == "" {
		return r.URL, rawQuery
	}
	if rawQuery == "" && len(r.Query) > 0 {
		rawQuery = r.Query.Encode()
	}
	if rawQuery == "" {
		return v.publicURL, ""
	}
	return v.publicURL + "?" + rawQuery, rawQuery
}

// twilioSignature is HMAC-SHA1(key, u + k1 + v1 + k2 + v2 ...) with keys in
// byte order and a repeated key's values sorted.
func twilioSignature(key []byte, u string, params url.Values) []byte {
	m := hmac.New(sha1.New, key)
	m.Write([]byte(u))
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		values := slices.Clone(params[k])
		slices.Sort(values)
		for _, val := range values {
			m.Write([]byte(k))
			m.Write([]byte(val))
		}
	}
	return m.Sum(nil)
}

// portVariants returns u plus, like Twilio's SDKs (whose signing back end is
// inconsistent about ports), u with the scheme's default port added when it
// has no port, or u with its port removed when it has one.
func portVariants(u string) []string {
	schemeEnd := strings.Index(u, "://")
	if schemeEnd < 0 {
		return []string{u}
	}
	var def string
	switch strings.ToLower(u[:schemeEnd]) {
	case "https":
		def = "443"
	case "http":
		def = "80"
	default:
		return []string{u}
	}
	start := schemeEnd + 3
	end := len(u)
	if i := strings.IndexAny(u[start:], "/?#"); i >= 0 {
		end = start + i
	}
	authority := u[start:end]
	hostport := authority[strings.LastIndexByte(authority, '@')+1:]
	colon := strings.LastIndexByte(hostport, ':')
	if colon < 0 || strings.Contains(hostport[colon:], "]") {
		return []string{u, u[:end] + ":" + def + u[end:]}
	}
	cut := end - len(hostport) + colon
	return []string{u, u[:cut] + u[end:]}
}
