package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestReplayRetriesDeadLetters: a target that refuses (400) dead-letters the
// delivery at once; after the target is fixed, `hookline replay` retries it
// through the admin API and it arrives with its original idempotency key.
func TestReplayRetriesDeadLetters(t *testing.T) {
	bin := buildBinary(t)
	var refuse atomic.Bool
	refuse.Store(true)
	var mu sync.Mutex
	var keys []string
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		mu.Unlock()
		if refuse.Load() {
			w.WriteHeader(400)
			fmt.Fprint(w, `{"error": "field status is read-only"}`)
			return
		}
		w.WriteHeader(200)
	}))
	defer target.Close()
	dir := deliveryConfig(t)
	gw := startGateway(t, bin, filepath.Join(dir, "gateway.yaml"), t.TempDir(), "GENERIC_TARGET_URL="+target.URL)

	resp, err := http.Post(gw.URL+"/hooks/generic", "application/json", strings.NewReader(`{"type": "ticket.updated", "id": "RP-1"}`))
	if err != nil || resp.StatusCode != 202 {
		t.Fatalf("post: %v %v", err, resp)
	}
	type delivery struct {
		ID       string `json:"id"`
		State    string `json:"state"`
		Attempts []struct {
			Status   int    `json:"status"`
			Response string `json:"response"`
		} `json:"attempts"`
	}
	var list struct{ Deliveries []delivery }
	deadline := time.Now().Add(15 * time.Second)
	for {
		getJSON(t, gw.URL+"/api/v1/deliveries?state=failed", &list)
		if len(list.Deliveries) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the refused delivery was not dead-lettered")
		}
		time.Sleep(20 * time.Millisecond)
	}
	dead := list.Deliveries[0]
	if len(dead.Attempts) != 1 || dead.Attempts[0].Status != 400 || !strings.Contains(dead.Attempts[0].Response, "read-only") {
		t.Fatalf("dead letter does not keep the answer: %+v", dead)
	}

	refuse.Store(false)
	var out, errOut bytes.Buffer
	if code := run([]string{"replay", "--api", gw.URL, "--state", "failed"}, &out, &errOut); code != 0 {
		t.Fatalf("replay exit %d: %s %s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "retried 1 delivery") {
		t.Fatalf("replay said %q", out.String())
	}
	deadline = time.Now().Add(15 * time.Second)
	for {
		var d delivery
		getJSON(t, gw.URL+"/api/v1/deliveries/"+dead.ID, &d)
		if d.State == "succeeded" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replayed delivery is %s", d.State)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(keys) != 2 || keys[0] != keys[1] || keys[0] != dead.ID {
		t.Fatalf("idempotency keys %v, want the delivery id %s twice", keys, dead.ID)
	}
	// Replaying one id that is not failed says why.
	out.Reset()
	errOut.Reset()
	if code := run([]string{"replay", "--api", gw.URL, dead.ID}, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), "cannot be retried") {
		t.Fatalf("replay of a succeeded delivery: exit %d, %s", code, errOut.String())
	}
}

// TestReplayInboxCommand: webhooks that failed for want of a reference are
// replayed by `hookline replay --inbox` once the mapping knows where the
// reference is, in pages bounded by --limit, and then processed.
func TestReplayInboxCommand(t *testing.T) {
	bin := buildBinary(t)
	dir := deliveryConfig(t)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) }))
	defer target.Close()
	gw := startGateway(t, bin, filepath.Join(dir, "gateway.yaml"), t.TempDir(), "GENERIC_TARGET_URL="+target.URL)
	var ids []string
	for i := range 3 {
		resp, err := http.Post(gw.URL+"/hooks/generic", "application/json", strings.NewReader(fmt.Sprintf(`{"type": "ticket.updated", "ticket_number": "IR-%d"}`, i)))
		if err != nil || resp.StatusCode != 202 {
			t.Fatalf("post: %v %v", err, resp)
		}
		var accepted struct{ ID string }
		json.NewDecoder(resp.Body).Decode(&accepted)
		resp.Body.Close()
		ids = append(ids, accepted.ID)
	}
	state := func(id string) string {
		var item struct{ State string }
		getJSON(t, gw.URL+"/api/v1/inbox/"+id, &item)
		return item.State
	}
	waitAll := func(want string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for _, id := range ids {
			for state(id) != want {
				if time.Now().After(deadline) {
					t.Fatalf("inbox item %s is %s, want %s", id, state(id), want)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	waitAll("failed")

	file := filepath.Join(dir, "connectors", "generic.yaml")
	yml, _ := os.ReadFile(file)
	fixed := strings.Replace(string(yml), "path: [reference, id, data.id,", "path: [reference, id, data.id, ticket_number,", 1)
	if err := os.WriteFile(file, []byte(fixed), 0o644); err != nil || fixed == string(yml) {
		t.Fatalf("fix the mapping: %v", err)
	}
	if resp, err := http.Post(gw.URL+"/api/v1/config/reload", "", nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("reload: %v %v", err, resp)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"replay", "--inbox", "--api", gw.URL, "--rule", "x"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "--inbox takes") {
		t.Fatalf("--inbox with --rule: exit %d, %s", code, errOut.String())
	}
	for _, tt := range []struct {
		args []string
		said string
	}{
		{[]string{"--connector", "generic", "--limit", "2"}, "replayed 2 webhooks"},
		{[]string{"--connector", "generic"}, "replayed 1 webhook"},
	} {
		out.Reset()
		errOut.Reset()
		if code := run(append([]string{"replay", "--inbox", "--api", gw.URL}, tt.args...), &out, &errOut); code != 0 || !strings.Contains(out.String(), tt.said) {
			t.Fatalf("replay --inbox %v: exit %d, %q %q; want %q", tt.args, code, out.String(), errOut.String(), tt.said)
		}
	}
	waitAll("processed")
	out.Reset()
	errOut.Reset()
	if code := run([]string{"replay", "--inbox", "--api", gw.URL, ids[0]}, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), "only failed and unmapped") {
		t.Fatalf("replay of a processed webhook: exit %d, %s", code, errOut.String())
	}
}

// replayInbox follows the gateway's cursor page by page, asks for no more
// than --limit leaves, and stops on an error with what it had replayed.
func TestReplayInboxPages(t *testing.T) {
	type call struct{ after, limit string }
	gateway := func(pages []map[string]any, failAt int) (func(string) (map[string]any, error), *[]call) {
		var calls []call
		return func(path string) (map[string]any, error) {
			u, err := url.Parse(path)
			if err != nil || u.Path != "/api/v1/inbox/replay" || u.Query().Get("state") != "unmapped" || u.Query().Get("connector") != "c" {
				t.Fatalf("request %q", path)
			}
			calls = append(calls, call{u.Query().Get("after"), u.Query().Get("limit")})
			if len(calls)-1 == failAt {
				return nil, fmt.Errorf("503 busy")
			}
			return pages[len(calls)-1], nil
		}, &calls
	}
	pages := []map[string]any{
		{"replayed": 2.0, "next_cursor": "B"},
		{"replayed": 0.0, "next_cursor": "D"}, // a page the scan budget cut short
		{"replayed": 1.0, "next_cursor": ""},
	}
	post, calls := gateway(pages, -1)
	if n, err := replayInbox(post, "unmapped", "c", 0); n != 3 || err != nil {
		t.Fatalf("all pages: %d, %v", n, err)
	}
	if want := []call{{"", "1000"}, {"B", "1000"}, {"D", "1000"}}; fmt.Sprint(*calls) != fmt.Sprint(want) {
		t.Fatalf("requests %v, want %v", *calls, want)
	}
	post, calls = gateway(pages, -1)
	if n, err := replayInbox(post, "unmapped", "c", 2); n != 2 || err != nil || len(*calls) != 1 || (*calls)[0].limit != "2" {
		t.Fatalf("limit 2: %d, %v, requests %v", n, err, *calls)
	}
	post, _ = gateway(pages, 2)
	if n, err := replayInbox(post, "unmapped", "c", 0); n != 2 || err == nil {
		t.Fatalf("an error on the third page: %d, %v; want 2 and the error", n, err)
	}
}

// retryDeliveries goes on while the gateway answers more, passing its
// next_cursor as cursor with the same filters, asks for no more than
// --limit leaves, says when --limit stopped it with more matching, and
// stops on an error with what it had retried.
func TestRetryDeliveriesPages(t *testing.T) {
	type call struct{ cursor, limit string }
	gateway := func(pages []map[string]any, failAt int) (func(string) (map[string]any, error), *[]call) {
		var calls []call
		return func(path string) (map[string]any, error) {
			u, err := url.Parse(path)
			if err != nil || u.Path != "/api/v1/deliveries/retry" || u.Query().Get("state") != "failed" || u.Query().Get("connector") != "zendesk" {
				t.Fatalf("request %q", path)
			}
			calls = append(calls, call{u.Query().Get("cursor"), u.Query().Get("limit")})
			if len(calls)-1 == failAt {
				return nil, fmt.Errorf("503 busy")
			}
			return pages[len(calls)-1], nil
		}, &calls
	}
	filters := url.Values{"state": {"failed"}, "connector": {"zendesk"}}
	pages := []map[string]any{
		{"retried": 10000.0, "more": true, "next_cursor": "B"},
		{"retried": 9998.0, "more": true, "next_cursor": "D"}, // two changed state meanwhile
		{"retried": 5.0, "more": false, "next_cursor": ""},
	}
	post, calls := gateway(pages, -1)
	if n, more, err := retryDeliveries(post, filters, 0); n != 20003 || more || err != nil {
		t.Fatalf("all pages: %d, %v, %v", n, more, err)
	}
	if want := []call{{"", ""}, {"B", ""}, {"D", ""}}; fmt.Sprint(*calls) != fmt.Sprint(want) {
		t.Fatalf("requests %v, want %v", *calls, want)
	}
	post, calls = gateway([]map[string]any{
		{"retried": 10000.0, "more": true, "next_cursor": "B"},
		{"retried": 5000.0, "more": true, "next_cursor": "C"},
	}, -1)
	if n, more, err := retryDeliveries(post, filters, 15000); n != 15000 || !more || err != nil {
		t.Fatalf("limit 15000: %d, %v, %v", n, more, err)
	}
	if want := []call{{"", "15000"}, {"B", "5000"}}; fmt.Sprint(*calls) != fmt.Sprint(want) {
		t.Fatalf("limit 15000: requests %v, want %v", *calls, want)
	}
	post, calls = gateway([]map[string]any{{"retried": 3.0, "more": true, "next_cursor": "C"}}, -1)
	if n, more, err := retryDeliveries(post, filters, 3); n != 3 || !more || err != nil || len(*calls) != 1 {
		t.Fatalf("limit 3 with more: %d, %v, %v, requests %v", n, more, err, *calls)
	}
	// A gateway from before more and next_cursor: one request, as before.
	post, calls = gateway([]map[string]any{{"retried": 10000.0}}, -1)
	if n, more, err := retryDeliveries(post, filters, 0); n != 10000 || more || err != nil || len(*calls) != 1 {
		t.Fatalf("older gateway: %d, %v, %v, requests %v", n, more, err, *calls)
	}
	post, _ = gateway(pages, 1)
	if n, _, err := retryDeliveries(post, filters, 0); n != 10000 || err == nil {
		t.Fatalf("an error on the second page: %d, %v; want 10000 and the error", n, err)
	}
}
