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

// timerTarget records the updates the generic connector delivers.
type timerTarget struct {
	mu   sync.Mutex
	refs map[string]int
	srv  *httptest.Server
}

func newTimerTarget(t *testing.T) *timerTarget {
	tt := &timerTarget{refs: map[string]int{}}
	tt.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Reference string         `json:"reference"`
			Rule      string         `json:"rule"`
			Set       map[string]any `json:"set"`
		}
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &body)
		if body.Rule == "pending-2s" && body.Set["priority"] == "high" {
			tt.mu.Lock()
			tt.refs[body.Reference]++
			tt.mu.Unlock()
		}
		w.WriteHeader(200)
	}))
	t.Cleanup(tt.srv.Close)
	return tt
}

func (tt *timerTarget) count(ref string) int {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	return tt.refs[ref]
}

// timerConfigDir writes a config with the shipped generic connector and a
// rule that escalates a ticket pending for 2 seconds.
func timerConfigDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"connectors", "rules"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	generic, err := os.ReadFile("../../configs/connectors/generic.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"connectors/generic.yaml": string(generic),
		"rules/timers.yaml": `rules:
  - id: pending-2s
    on: [ticket.*]
    connector: generic
    when: { field: status, is: pending }
    for: 2s
    then: [ { set_priority: high } ]
`,
		"gateway.yaml": "connectors: [\"connectors/*.yaml\"]\nrules: [\"rules/*.yaml\"]\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func post(t *testing.T, url, body string) {
	t.Helper()
	resp, err := http.Post(url+"/hooks/generic", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("post: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 202 {
		t.Fatalf("post: %d", resp.StatusCode)
	}
}

// timerFiredEvents counts timer.fired events per reference over every page.
func timerFiredEvents(t *testing.T, url string) map[string]int {
	t.Helper()
	return eventsPerReference(t, url, "type=timer.fired")
}

// eventsPerReference counts the events the admin API lists for filter (a
// query string) per reference, over every page.
func eventsPerReference(t *testing.T, url, filter string) map[string]int {
	t.Helper()
	seen := map[string]int{}
	cursor := ""
	for {
		var page struct {
			Events []struct {
				Reference string `json:"reference"`
			} `json:"events"`
			Next string `json:"next_cursor"`
		}
		getJSON(t, url+"/api/v1/events?"+filter+"&limit=1000&cursor="+cursor, &page)
		for _, e := range page.Events {
			seen[e.Reference]++
		}
		if page.Next == "" {
			return seen
		}
		cursor = page.Next
	}
}

func readyStats(t *testing.T, url string) map[string]any {
	t.Helper()
	var ready struct {
		Stats map[string]any `json:"stats"`
	}
	getJSON(t, url+"/readyz", &ready)
	return ready.Stats
}

func waitUntil(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTimersThroughTheBinary: a ticket set to pending by a webhook is
// escalated 2 seconds later (the update reaches a test server), a ticket
// answered in time gets nothing; then timers armed before a SIGKILL fire
// exactly once after the restart.
func TestTimersThroughTheBinary(t *testing.T) {
	bin := buildBinary(t)
	cfg := timerConfigDir(t)
	target := newTimerTarget(t)
	env := "GENERIC_TARGET_URL=" + target.srv.URL

	t.Run("pending ticket escalated, answered ticket left alone", func(t *testing.T) {
		gw := startGateway(t, bin, cfg, t.TempDir(), env)
		post(t, gw.URL, `{"type": "ticket.updated", "id": "E2E-1", "status": "pending"}`)
		post(t, gw.URL, `{"type": "ticket.updated", "id": "E2E-2", "status": "pending"}`)
		post(t, gw.URL, `{"type": "ticket.updated", "id": "E2E-2", "status": "open"}`)
		waitUntil(t, "the escalation of E2E-1", 30*time.Second, func() bool { return target.count("E2E-1") == 1 })
		waitUntil(t, "no timer left", 30*time.Second, func() bool { return readyStats(t, gw.URL)["timers"] == float64(0) })
		fired := timerFiredEvents(t, gw.URL)
		if fired["E2E-1"] != 1 || fired["E2E-2"] != 0 || target.count("E2E-2") != 0 {
			t.Fatalf("timer.fired events %v; E2E-2 updated %d times:\n%s", fired, target.count("E2E-2"), gw.Logs())
		}
	})

	t.Run("timers armed before a SIGKILL fire once after the restart", func(t *testing.T) {
		data := t.TempDir()
		gw := startGateway(t, bin, cfg, data, env)
		const n = 200
		for i := range n {
			post(t, gw.URL, fmt.Sprintf(`{"type": "ticket.updated", "id": "K-%03d", "status": "pending"}`, i))
		}
		waitUntil(t, "the inbox to drain", 30*time.Second, func() bool { return readyStats(t, gw.URL)["inbox_pending"] == float64(0) })
		gw.cmd.Process.Kill()
		gw.cmd.Wait()
		time.Sleep(2 * time.Second) // every timer is overdue now

		gw2 := startGateway(t, bin, cfg, data, env)
		waitUntil(t, "the overdue timers to fire", 60*time.Second, func() bool { return readyStats(t, gw2.URL)["timers"] == float64(0) })
		fired := timerFiredEvents(t, gw2.URL)
		for i := range n {
			ref := fmt.Sprintf("K-%03d", i)
			if fired[ref] != 1 {
				t.Errorf("%s: %d timer.fired events, want 1", ref, fired[ref])
			}
		}
		// Deliveries are at least once: every ticket's update arrives.
		waitUntil(t, "every update to arrive", 60*time.Second, func() bool {
			for i := range n {
				if target.count(fmt.Sprintf("K-%03d", i)) == 0 {
					return false
				}
			}
			return true
		})
	})
}
