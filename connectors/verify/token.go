package verify

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"strings"
)

// tokenVerifier compares a shared secret from a header and/or query parameter.
type tokenVerifier struct {
	header string
	query  string
	// digests are SHA-256 digests of the secrets, so that comparisons are
	// constant-time regardless of the length of what was sent.
	digests [][sha256.Size]byte
}

var _ Verifier = (*tokenVerifier)(nil)

// newToken builds the token scheme; header or query (or both) is required.
func newToken(cfg Config, secrets []string) (Verifier, error) {
	v := &tokenVerifier{header: strings.TrimSpace(cfg.Header), query: cfg.Query}
	if v.header == "" && v.query == "" {
		return nil, fmt.Errorf("%w: set header or query (where the token is sent)", ErrInvalidConfig)
	}
	for _, s := range secrets {
		v.digests = append(v.digests, sha256.Sum256([]byte(s)))
	}
	return v, nil
}

// Verify takes the token from the header when configured and present, else
// from the query parameter. A present but wrong header is not rescued by the
// query.
func (v *tokenVerifier) Verify(r *Request) error {
	var (
		got   string
		found bool
	)
	if v.header != "" {
		got, found = r.header(v.header)
		if found && strings.EqualFold(v.header, "Authorization") {
			if len(got) > 7 && strings.EqualFold(got[:7], "Bearer ") {
				got = strings.TrimSpace(got[7:])
			}
		}
	}
	if !found && v.query != "" {
		if vs, ok := r.queryValues()[v.query]; ok && len(vs) > 0 {
			got, found = vs[0], true
		}
	}
	if !found || got == "" {
		return refuse("missing " + v.source())
	}
	digest := sha256.Sum256([]byte(got))
	for i := range v.digests {
		if subtle.ConstantTimeCompare(digest[:], v.digests[i][:]) == 1 {
			return nil
		}
	}
	return refuse("token does not match")
}

// source names where the token is expected, for reasons.
func (v *tokenVerifier) source() string {
	switch {
	case v.header != "" && v.query != "":
		return v.header + " header or " + v.query + " query parameter"
	case v.header != "":
		return v.header + " header"
	default:
		return v.query + " query parameter"
	}
}
