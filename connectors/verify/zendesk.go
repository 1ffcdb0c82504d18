package verify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"time"
)

// Zendesk header names.
const (
	zendeskSignatureHeader = "X-Zendesk-Webhook-Signature"
	zendeskTimestampHeader = "X-Zendesk-Webhook-Signature-Timestamp"
)

// zendeskVerifier checks base64(HMAC-SHA256(secret, timestamp + body)).
type zendeskVerifier struct {
	keys      [][]byte
	tolerance time.Duration
}

var _ Verifier = (*zendeskVerifier)(nil)

// newZendesk builds the zendesk scheme.
func newZendesk(cfg Config, secrets []string) (Verifier, error) {
	return &zendeskVerifier{keys: byteKeys(secrets), tolerance: tolerance(cfg.Tolerance)}, nil
}

// Verify checks the RFC 3339 timestamp window, then the signature.
func (v *zendeskVerifier) Verify(r *Request) error {
	sigValue, err := r.requireHeader(zendeskSignatureHeader)
	if err != nil {
		return err
	}
	ts, err := r.requireHeader(zendeskTimestampHeader)
	if err != nil {
		return err
	}
	at, err := time.Parse(time.RFC3339, ts)
	if err != nil {
		return refuse("malformed " + zendeskTimestampHeader + " header: not an RFC 3339 time")
	}
	if err := checkWindow(at, r.now(), v.tolerance); err != nil {
		return err
	}
	sig, err := base64.StdEncoding.DecodeString(sigValue)
	if err != nil || len(sig) != sha256.Size {
		return refuse("malformed " + zendeskSignatureHeader + " header: not a base64 signature")
	}
	for _, key := range v.keys {
		if hmac.Equal(sig, macOf(sha256.New, key, []byte(ts), r.Body)) {
			r.signedReplay(v.tolerance, ts, string(sig))
			return nil
		}
	}
	return refuse("signature does not match")
}
