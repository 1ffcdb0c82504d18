package connectors

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// A dedupe key named by a header or payload path and longer than
// MaxDedupeKeyLen is replaced by its SHA-256: the store indexes keys of a
// bounded size, and refused a 40 KB one for ever.
func TestLongDedupeKeysAreHashed(t *testing.T) {
	long := strings.Repeat("n", 40000)
	sum := sha256.Sum256([]byte(long))
	hashed := "sha256:" + hex.EncodeToString(sum[:])
	atLimit := strings.Repeat("k", MaxDedupeKeyLen)
	body := []byte(`{"id":"` + long + `","short":"` + atLimit + `"}`)
	tests := []struct {
		name   string
		dedupe Dedupe
		header http.Header
		want   string
	}{
		{"long payload path", Dedupe{Source: DedupePath, Name: "id"}, nil, hashed},
		{"long header", Dedupe{Source: DedupeHeader, Name: "Idempotency-Key"}, http.Header{"Idempotency-Key": {long}}, hashed},
		{"payload path at the limit", Dedupe{Source: DedupePath, Name: "short"}, nil, atLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.dedupe.Key(tt.header, body); got != tt.want {
				t.Fatalf("Key = %.80q (%d bytes), want %.80q", got, len(got), tt.want)
			}
			if got := tt.dedupe.RequestKey(tt.header, url.Values{"event": {"x"}}, body); got != tt.want {
				t.Fatalf("RequestKey = %.80q (%d bytes), want %.80q", got, len(got), tt.want)
			}
		})
	}
}
