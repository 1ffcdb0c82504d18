package connectors

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
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
			if got, _ := tt.dedupe.RequestKey(tt.header, url.Values{"event": {"x"}}, body); got != tt.want {
				t.Fatalf("RequestKey = %.80q (%d bytes), want %.80q", got, len(got), tt.want)
			}
		})
	}
}

// RequestKey tells how long its key is remembered: a header or path key
// for the connector's window, a body-hash fallback for FallbackWindow.
func TestRequestKeyWindow(t *testing.T) {
	d := Dedupe{Source: DedupeHeader, Name: "Idempotency-Key", Window: 72 * time.Hour, FallbackWindow: 10 * time.Minute}
	body := []byte(`{"id":"T-1"}`)
	sum := sha256.Sum256(body)
	tests := []struct {
		name       string
		dedupe     Dedupe
		header     http.Header
		wantKey    string
		wantWindow time.Duration
	}{
		{"header given", d, http.Header{"Idempotency-Key": {"run-42"}}, "run-42", 72 * time.Hour},
		{"header missing: body hash", d, nil, hex.EncodeToString(sum[:]), 10 * time.Minute},
		{"no fallback window", Dedupe{Source: DedupeHeader, Name: "Idempotency-Key"}, nil, hex.EncodeToString(sum[:]), 0},
		{"body source", Dedupe{Source: DedupeBody, Window: 5 * time.Minute}, nil, hex.EncodeToString(sum[:]), 5 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, window := tt.dedupe.RequestKey(tt.header, nil, body)
			if key != tt.wantKey || window != tt.wantWindow {
				t.Fatalf("RequestKey = %q, %v; want %q, %v", key, window, tt.wantKey, tt.wantWindow)
			}
		})
	}
}
