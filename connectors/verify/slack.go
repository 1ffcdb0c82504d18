package verify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"
)

// Slack header names.
const (
	slackSignatureHeader = "X-Slack-Signature"
	slackTimestampHeader = "X-Slack-Request-Timestamp"
)

// slackVerifier checks v0=<hex HMAC-SHA256(secret, "v0:"+ts+":"+body)>.
type slackVerifier struct {
	keys      [][]byte
	tolerance time.Duration
}

var _ Verifier = (*slackVerifier)(nil)

// newSlack builds the slack scheme.
func newSlack(cfg Config, secrets []string) (Verifier, error) {
	return &slackVerifier{keys: byteKeys(secrets), tolerance: tolerance(cfg.Tolerance)}, nil
}

// Verify checks the unix-seconds timestamp window, then the signature.
func (v *slackVerifier) Verify(r *Request) error {
	sigValue, err := r.requireHeader(slackSignatureHeader)
	if err != nil {
		return err
	}
	ts, err := r.requireHeader(slackTimestampHeader)
	if err != nil {
		return err
	}
	if err := checkUnixWindow(slackTimestampHeader, ts, r.now(), v.tolerance); err != nil {
		return err
	}
	encoded, ok := strings.CutPrefix(sigValue, "v0=")
	if !ok {
		return refuse("malformed " + slackSignatureHeader + " header: expected prefix \"v0=\"")
	}
	sig, err := hex.DecodeString(encoded)
	if err != nil || len(sig) != sha256.Size {
		return refuse("malformed " + slackSignatureHeader + " header: not a hex signature")
	}
	for _, key := range v.keys {
		if hmac.Equal(sig, macOf(sha256.New, key, []byte("v0:"+ts+":"), r.Body)) {
			r.signedReplay(v.tolerance, ts, string(sig))
			return nil
		}
	}
	return refuse("signature does not match")
}
