package verify

import (
	"crypto/sha256"
	"crypto/sha512"
	"net/http"
	"testing"
	"time"
)

// benchVerify measures Verify on the WhatsApp text-message fixture (about
// 1 KB), signed the way the configured scheme expects.
func benchVerify(b *testing.B, cfg Config, sign func(r *Request)) {
	body := readFixture(b, "whatsapp-cloud-text-message.json")
	v := mustNew(b, cfg)
	r := &Request{Method: http.MethodPost, Header: http.Header{}, Body: body, Now: time.Unix(1700000000, 0)}
	sign(r)
	if err := v.Verify(r); err != nil {
		b.Fatalf("benchmark request refused: %v", err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Verify(r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyGitHub(b *testing.B) {
	benchVerify(b, Config{Scheme: SchemeGitHub, Secret: "bench-secret"}, func(r *Request) {
		signGitHub("bench-secret", r, time.Time{})
	})
}

func BenchmarkVerifyGitHubRotation3(b *testing.B) {
	// Worst case with rotation: the matching secret is the last of three.
	benchVerify(b, Config{Scheme: SchemeGitHub, Secrets: []string{"old-1", "old-2", "bench-secret"}}, func(r *Request) {
		signGitHub("bench-secret", r, time.Time{})
	})
}

func BenchmarkVerifyHMACSHA256Hex(b *testing.B) {
	benchVerify(b, Config{Scheme: SchemeHMAC, Secret: "bench-secret", Header: "X-Signature"}, func(r *Request) {
		r.Header.Set("X-Signature", macHex(sha256.New, "bench-secret", string(r.Body)))
	})
}

func BenchmarkVerifyHMACSHA512Base64(b *testing.B) {
	benchVerify(b, Config{Scheme: SchemeHMAC, Secret: "bench-secret", Header: "X-Signature", Algorithm: "sha512", Encoding: "base64"}, func(r *Request) {
		r.Header.Set("X-Signature", macB64(sha512.New, "bench-secret", string(r.Body)))
	})
}

func BenchmarkVerifyGitHubMismatch(b *testing.B) {
	body := readFixture(b, "whatsapp-cloud-text-message.json")
	v := mustNew(b, Config{Scheme: SchemeGitHub, Secret: "bench-secret"})
	r := &Request{Header: http.Header{}, Body: body}
	signGitHub("other-secret", r, time.Time{})
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if v.Verify(r) == nil {
			b.Fatal("mismatch accepted")
		}
	}
}
