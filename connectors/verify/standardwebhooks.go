package verify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"time"
)

// standardWebhooks checks the Standard Webhooks v1 scheme.
type standardWebhooks struct {
	keys      [][]byte
	tolerance time.Duration
}

var _ Verifier = (*standardWebhooks)(nil)

// standardWebhooksHeaders returns the id, timestamp and signature header
// names: webhook-*, or the svix-* aliases when only svix-signature is present.
func standardWebhooksHeaders(r *Request) (id, ts, sig string) {
	if _, ok := r.header("webhook-signature"); !ok {
		if _, ok := r.header("svix-signature"); ok {
			return "svix-id", "svix-timestamp", "svix-signature"
		}
	}
	return "webhook-id", "webhook-timestamp", "webhook-signature"
}

// newStandardWebhooks decodes each "whsec_<base64>" (or raw base64) secret.
func newStandardWebhooks(cfg Config, secrets []string) (Verifier, error) {
	keys := make([][]byte, len(secrets))
	for i, s := range secrets {
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
		if err != nil || len(key) == 0 {
			return nil, fmt.Errorf("%w: secret #%d is not \"whsec_\" followed by base64", ErrInvalidConfig, i+1)
		}
		keys[i] = key
	}
	return &standardWebhooks{keys: keys, tolerance: tolerance(cfg.Tolerance)}, nil
}

// Verify checks the timestamp window, then any v1 signature against any key.
func (v *standardWebhooks) Verify(r *Request) error {
	idName, tsName, sigName := standardWebhooksHeaders(r)
	id, err := r.requireHeader(idName)
	if err != nil {
		return err
	}
	ts, err := r.requireHeader(tsName)
	if err != nil {
		return err
	}
	sigs, err := r.requireHeader(sigName)
	if err != nil {
		return err
	}
	if err := checkUnixWindow(tsName, ts, r.now(), v.tolerance); err != nil {
		return err
	}
	candidates := parseV1Signatures(sigs)
	if len(candidates) == 0 {
		return refuse("malformed " + sigName + " header: no v1 signature")
	}
	for _, key := range v.keys {
		want := macOf(sha256.New, key, []byte(id), []byte("."), []byte(ts), []byte("."), r.Body)
		for _, sig := range candidates {
			if hmac.Equal(sig, want) {
				r.signedReplay(v.tolerance, id, ts, string(want))
				return nil
			}
		}
	}
	return refuse("signature does not match")
}

// parseV1Signatures returns the decoded signatures of every "v1,<base64>"
// entry of a space-separated signature header; other versions and
// undecodable entries are skipped.
func parseV1Signatures(header string) [][]byte {
	var out [][]byte
	for _, entry := range strings.Fields(header) {
		version, b64, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(sig) != sha256.Size {
			continue
		}
		out = append(out, sig)
	}
	return out
}
