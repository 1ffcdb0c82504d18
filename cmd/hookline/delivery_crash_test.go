package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// sink stands in for a platform: it records every delivery by reference
// and idempotency key, answering slowly so that many are in flight.
type sink struct {
	mu    sync.Mutex
	byRef map[string][]string // reference -> idempotency keys received, in order
	delay time.Duration
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Reference string `json:"reference"`
	}
	b, _ := io.ReadAll(r.Body)
	json.Unmarshal(b, &body)
	time.Sleep(s.delay)
	s.mu.Lock()
	s.byRef[body.Reference] = append(s.byRef[body.Reference], r.Header.Get("Idempotency-Key"))
	s.mu.Unlock()
	w.WriteHeader(200)
}

func (s *sink) received() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byRef)
}

// benchConfig writes a config dir: the shipped generic connector, one rule
// that updates every ticket event, deliveries to the given target.
func deliveryConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"connectors", "rules"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	gen, err := os.ReadFile("../../configs/connectors/generic.yaml")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "connectors", "generic.yaml"), gen, 0o644)
	os.WriteFile(filepath.Join(dir, "gateway.yaml"), []byte("connectors: [connectors/*.yaml]\nrules: [rules/*.yaml]\ndelivery: { workers: 16 }\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "rules", "done.yaml"), []byte(`rules:
  - id: mark-done
    on: [ticket.updated]
    connector: generic
    then: [ { set_status: done } ]
`), 0o644)
	return dir
}

// TestCrashDuringDeliveryLosesNoUpdate: deliveries in flight when the gateway
// gets SIGKILL are delivered after the restart, with the same idempotency
// keys; none is lost, and duplicates (at-least-once) are counted.
func TestCrashDuringDeliveryLosesNoUpdate(t *testing.T) {
	bin := buildBinary(t)
	dir, data := deliveryConfig(t), t.TempDir()
	sk := &sink{byRef: map[string][]string{}, delay: 100 * time.Millisecond}
	srv := httptest.NewServer(sk)
	defer srv.Close()
	env := "GENERIC_TARGET_URL=" + srv.URL

	gw := startGateway(t, bin, filepath.Join(dir, "gateway.yaml"), data, env)
	const total = 400
	acked := map[string]bool{}
	var ackMu sync.Mutex
	posted := make(chan struct{})
	go func() {
		defer close(posted)
		client := &http.Client{Timeout: 5 * time.Second}
		for i := range total {
			ref := fmt.Sprintf("DL-%04d", i)
			body := fmt.Sprintf(`{"type": "ticket.updated", "id": %q, "status": "open"}`, ref)
			resp, err := client.Post(gw.URL+"/hooks/generic", "application/json", strings.NewReader(body))
			if err != nil {
				return // the gateway was killed
			}
			resp.Body.Close()
			if resp.StatusCode == 202 {
				ackMu.Lock()
				acked[ref] = true
				ackMu.Unlock()
			}
		}
	}()
	// Kill once some updates went out, with others in flight and queued.
	deadline := time.Now().Add(30 * time.Second)
	for sk.received() < 40 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d deliveries before the kill:\n%s", sk.received(), gw.Logs())
		}
		time.Sleep(2 * time.Millisecond)
	}
	gw.cmd.Process.Kill()
	gw.cmd.Wait()
	<-posted
	before := sk.received()
	ackMu.Lock()
	want := len(acked)
	ackMu.Unlock()
	if before >= want {
		t.Fatalf("every acknowledged update was delivered before the kill (%d of %d); the test needs some in flight", before, want)
	}

	startGateway(t, bin, filepath.Join(dir, "gateway.yaml"), data, env)
	deadline = time.Now().Add(60 * time.Second)
	for {
		sk.mu.Lock()
		missing := 0
		for ref := range acked {
			if len(sk.byRef[ref]) == 0 {
				missing++
			}
		}
		sk.mu.Unlock()
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after restart %d acknowledged webhooks never got their update delivered", missing)
		}
		time.Sleep(20 * time.Millisecond)
	}
	sk.mu.Lock()
	defer sk.mu.Unlock()
	dups := 0
	for ref, keys := range sk.byRef {
		for _, k := range keys[1:] {
			if k != keys[0] {
				t.Errorf("%s: a redelivery changed its idempotency key (%q then %q)", ref, keys[0], k)
			}
		}
		dups += len(keys) - 1
	}
	t.Logf("%d webhooks acknowledged; %d updates received before SIGKILL, all %d after restart; %d duplicates (redelivered in-flight sends, same keys)", want, before, len(sk.byRef), dups)
}
