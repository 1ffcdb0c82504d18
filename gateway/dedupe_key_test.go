package gateway

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookline/hookline/store"
)

// A dedupe key longer than the store indexes (an Intercom notification id
// of 40 KB) was answered 503 "retry later" for ever; it is hashed, the
// webhook stored, and a retry of it recognized.
func TestOversizedDedupeKeyIsStored(t *testing.T) {
	ts := startServer(t, copyConfigs(t), nil, nil)
	body := []byte(`{"type":"notification_event","topic":"ping","id":"` + strings.Repeat("n", 40000) + `","data":{"item":{"type":"ping","message":"hi"}}}`)
	m := hmac.New(sha1.New, []byte("dev-insecure-intercom-secret"))
	m.Write(body)
	h := map[string]string{"Content-Type": "application/json", "X-Hub-Signature": "sha1=" + hex.EncodeToString(m.Sum(nil))}
	r := do(t, "POST", ts.URL+"/hooks/intercom", body, h)
	if r.Status != 202 {
		t.Fatalf("webhook with a 40 KB dedupe key: %d %s; want 202", r.Status, r.Body)
	}
	id := r.JSON(t)["id"]
	if r := do(t, "POST", ts.URL+"/hooks/intercom", body, h); r.Status != 200 || r.JSON(t)["id"] != id {
		t.Fatalf("retry: %d %s; want 200 duplicate of %v", r.Status, r.Body, id)
	}
}

// What the store refuses whatever the moment is answered 400, not 503
// "retry later"; other store failures stay 503.
func TestStoreRefusal(t *testing.T) {
	invalid := fmt.Errorf("accept: connector and dedupe key longer than 32496 bytes: %w", store.ErrInvalid)
	if r := storeRefusal(invalid); r == nil || r.Status != 400 || !strings.Contains(r.Reason, "longer than 32496 bytes") {
		t.Fatalf("storeRefusal(ErrInvalid) = %+v, want 400 with the store's reason", r)
	}
	for _, err := range []error{store.ErrClosed, context.DeadlineExceeded, errors.New("disk full")} {
		if r := storeRefusal(err); r != nil {
			t.Fatalf("storeRefusal(%v) = %+v, want nil (503, retry)", err, r)
		}
	}
}

// generic: a post without an Idempotency-Key is deduplicated by its body
// only for a short while (a sender's retry), so that the same update posted
// again a day later (a ticket back to pending) is processed; a key the
// sender gave in the header holds for the whole dedupe window.
func TestGenericBodyHashFallbackIsShortLived(t *testing.T) {
	clock := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	var offset atomic.Int64
	ts := startServer(t, copyConfigs(t), nil, func() time.Time { return clock.Add(time.Duration(offset.Load())) })
	body := []byte(`{"type":"ticket.updated","id":"T-1","status":"pending"}`)
	keyed := []byte(`{"type":"ticket.updated","id":"T-2","status":"open"}`)
	ct := map[string]string{"Content-Type": "application/json"}
	withKey := map[string]string{"Content-Type": "application/json", "Idempotency-Key": "zap-run-42"}
	post := func(what string, body []byte, h map[string]string, want int) {
		t.Helper()
		if r := do(t, "POST", ts.URL+"/hooks/generic", body, h); r.Status != want {
			t.Fatalf("%s: %d %s; want %d", what, r.Status, r.Body, want)
		}
	}
	post("first", body, ct, 202)
	post("first with a key", keyed, withKey, 202)
	offset.Store(int64(time.Minute))
	post("a retry a minute later", body, ct, 200)
	offset.Store(int64(26 * time.Hour))
	post("the same update a day later", body, ct, 202)
	post("the same key a day later", keyed, withKey, 200)
}
