package gateway

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/hookline/hookline/internal/yamlconf"
	"github.com/hookline/hookline/store"
)

// A bug that a payload triggers (a panic while its item is mapped, or
// while its batch processes it) fails that item alone, with the panic as
// its reason; the items beside it are processed and the gateway goes on.
// Without this, the panic stopped the gateway, and the item, still
// pending, stopped it again at every restart.
func TestPanicFailsOnlyItsItem(t *testing.T) {
	hook := func(stage string, it *store.InboxItem) {
		if bytes.Contains(it.Body, []byte("poison-"+stage)) {
			panic("boom while " + stage)
		}
	}
	ts := startServerWith(t, copyConfigs(t), nil, nil, func(s *Server) { s.pipe.itemHook = hook })
	post := func(ref string) string {
		t.Helper()
		r := do(t, "POST", ts.URL+"/hooks/generic", fmt.Appendf(nil, `{"type": "ticket.updated", "id": %q, "status": "open"}`, ref),
			map[string]string{"Content-Type": "application/json"})
		if r.Status != 202 {
			t.Fatalf("post %s: %d %s", ref, r.Status, r.Body)
		}
		return r.JSON(t)["id"].(string)
	}
	// Posted back to back, so that most land in one batch with the poison.
	refs := []string{"ok-1", "poison-map", "ok-2", "poison-process", "ok-3"}
	ids := map[string]string{}
	for _, ref := range refs {
		ids[ref] = post(ref)
	}
	for _, ref := range refs {
		item := waitFinished(t, ts.URL, ids[ref])
		reason, _ := item["reason"].(string)
		switch {
		case strings.HasPrefix(ref, "ok"):
			if item["state"] != "processed" {
				t.Errorf("%s: %v (%s), want processed", ref, item["state"], reason)
			}
		case item["state"] != "failed" || !strings.HasPrefix(reason, "internal error while ") || !strings.HasSuffix(reason, ": boom while "+strings.TrimPrefix(ref, "poison-")):
			t.Errorf("%s: %v (%q), want failed with the panic as its reason", ref, item["state"], reason)
		}
	}
	// The gateway still takes webhooks and processes them.
	id := post("ok-after")
	waitFor(t, "a webhook after the panics processed", func() bool {
		return do(t, "GET", ts.URL+"/api/v1/inbox/"+id, nil, nil).JSON(t)["state"] == "processed"
	})
}

// A panic in a request's handler answers that request 500, without the
// panic's details (the log has them); the gateway goes on serving. The
// recovering middleware comes first in every route's chain.
func TestPanicInHandlerAnswers500(t *testing.T) {
	ts := startServerWith(t, copyConfigs(t), nil, nil, func(s *Server) {
		s.app.Get("/panics", func(*fiber.Ctx) error { panic("boom in a handler") })
	})
	first := map[string]string{} // method -> name of its first route
	for _, r := range ts.app.GetRoutes() {
		if _, seen := first[r.Method]; !seen {
			first[r.Method] = r.Name
		}
	}
	for _, method := range []string{fiber.MethodGet, fiber.MethodHead, fiber.MethodPost, fiber.MethodDelete} {
		if first[method] != recoverRoute {
			t.Errorf("the first %s route is %q, not the panic recovery", method, first[method])
		}
	}
	r := do(t, "GET", ts.URL+"/panics", nil, nil)
	if r.Status != 500 || !strings.Contains(string(r.Body), "internal error") || strings.Contains(string(r.Body), "boom") {
		t.Fatalf("panicking handler: %d %s, want 500 without the panic's value", r.Status, r.Body)
	}
	if r := do(t, "GET", ts.URL+"/healthz", nil, nil); r.Status != 200 {
		t.Fatalf("healthz after the panic: %d %s", r.Status, r.Body)
	}
}

// A panic while the config is reloaded (a bug that an edited file
// triggers) refuses the reload like a config error, naming the panic; the
// last good config stays in force and the gateway goes on.
func TestPanicInConfigReloadKeepsTheConfig(t *testing.T) {
	ts := startServerWith(t, copyConfigs(t), nil, nil, func(s *Server) {
		s.load = func(string, yamlconf.Env) (*Bundle, yamlconf.Errors) { panic("boom in the loader") }
	})
	before := ts.Bundle()
	r := do(t, "POST", ts.URL+"/api/v1/config/reload", nil, nil)
	if r.Status != 422 || !strings.Contains(string(r.Body), "internal error while loading the config: boom in the loader") {
		t.Fatalf("reload with a panicking loader: %d %s", r.Status, r.Body)
	}
	if ts.Bundle() != before {
		t.Fatal("the config in force changed")
	}
	if r := do(t, "POST", ts.URL+"/hooks/generic", []byte(`{"type": "ticket.updated", "id": "after-reload", "status": "open"}`),
		map[string]string{"Content-Type": "application/json"}); r.Status != 202 {
		t.Fatalf("a webhook after the refused reload: %d %s", r.Status, r.Body)
	}
}

// syncBuffer is a bytes.Buffer safe for the gateway's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
