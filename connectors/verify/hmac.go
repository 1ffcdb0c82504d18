package verify

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"strings"
)

// hubSignatureHeader is the header GitHub and Meta sign with.
const hubSignatureHeader = "X-Hub-Signature-256"

// hmacVerifier checks HMAC(secret, body) carried in one header.
type hmacVerifier struct {
	header   string
	prefix   string
	newHash  func() hash.Hash
	size     int    // digest length of newHash
	encoding string // "hex" or "base64"
	keys     [][]byte
}

var _ Verifier = (*hmacVerifier)(nil)

// hashByName maps an algorithm name to its constructor.
func hashByName(name string) (func() hash.Hash, bool) {
	switch name {
	case "sha1":
		return sha1.New, true
	case "sha256":
		return sha256.New, true
	case "sha512":
		return sha512.New, true
	}
	return nil, false
}

// newHMAC builds the generic hmac scheme.
func newHMAC(cfg Config, secrets []string) (Verifier, error) {
	if strings.TrimSpace(cfg.Header) == "" {
		return nil, fmt.Errorf("%w: header is required (the header carrying the signature)", ErrInvalidConfig)
	}
	alg := strings.ToLower(cfg.Algorithm)
	if alg == "" {
		alg = "sha256"
	}
	h, ok := hashByName(alg)
	if !ok {
		return nil, fmt.Errorf("%w: algorithm %q is not one of sha1, sha256, sha512", ErrInvalidConfig, cfg.Algorithm)
	}
	enc := strings.ToLower(cfg.Encoding)
	if enc == "" {
		enc = "hex"
	}
	if enc != "hex" && enc != "base64" {
		return nil, fmt.Errorf("%w: encoding %q is not one of hex, base64", ErrInvalidConfig, cfg.Encoding)
	}
	return &hmacVerifier{
		header:   strings.TrimSpace(cfg.Header),
		prefix:   cfg.Prefix,
		newHash:  h,
		size:     h().Size(),
		encoding: enc,
		keys:     byteKeys(secrets),
	}, nil
}

// newHubSignature builds the github and meta schemes.
func newHubSignature(_ Config, secrets []string) (Verifier, error) {
	return &hmacVerifier{
		header:   hubSignatureHeader,
		prefix:   "sha256=",
		newHash:  sha256.New,
		size:     sha256.Size,
		encoding: "hex",
		keys:     byteKeys(secrets),
	}, nil
}

// byteKeys converts secrets to HMAC keys.
func byteKeys(secrets []string) [][]byte {
	keys := make([][]byte, len(secrets))
	for i, s := range secrets {
		keys[i] = []byte(s)
	}
	return keys
}

// Verify checks the signature header against every key.
func (v *hmacVerifier) Verify(r *Request) error {
	value, err := r.requireHeader(v.header)
	if err != nil {
		return err
	}
	encoded, ok := strings.CutPrefix(value, v.prefix)
	if !ok {
		return refuse(fmt.Sprintf("malformed %s header: expected prefix %q", v.header, v.prefix))
	}
	var sig []byte
	if v.encoding == "hex" {
		sig, err = hex.DecodeString(encoded)
	} else {
		sig, err = decodeBase64(encoded)
	}
	if err != nil || len(sig) != v.size {
		return refuse("malformed " + v.header + " header: not a " + v.encoding + " signature")
	}
	for _, key := range v.keys {
		if hmac.Equal(sig, macOf(v.newHash, key, r.Body)) {
			return nil
		}
	}
	return refuse("signature does not match")
}

// macOf returns HMAC(key, parts...) with hash h.
func macOf(h func() hash.Hash, key []byte, parts ...[]byte) []byte {
	m := hmac.New(h, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// decodeBase64 accepts standard or URL-safe base64, padded or not.
func decodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("not base64")
}
