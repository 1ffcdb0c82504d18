package gateway

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/hookline/hookline/event"
)

// Two rules that each add a tag to the same Freshdesk ticket on the same
// event: Freshdesk's PUT replaces the whole tag list, so the second
// request must carry the first one's tag too, whatever order they arrive
// in.
func TestTagRulesOnOneEventBuildOnEachOther(t *testing.T) {
	api := newRecorder(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id": 1042, "updated_at": "2026-03-02T09:15:05Z"}`)
	})
	dir := copyConfigs(t)
	writeFile(t, filepath.Join(dir, "rules", "fd.yaml"), `rules:
  - id: tag-billing
    on: [ticket.created]
    connector: freshdesk
    when: { field: group, is: Billing }
    then:
      - add_tags: [billing_team]
  - id: tag-high
    on: [ticket.created]
    connector: freshdesk
    when: { field: priority, is: high }
    then:
      - add_tags: [high_prio]
      - remove_tags: [vip]
`)
	ts := startServer(t, dir, map[string]string{"FRESHDESK_API_URL": api.srv.URL, "HOOKLINE_EGRESS_ALLOW": "127.0.0.0/8"}, nil)
	payload, err := os.ReadFile("../connectors/testdata/payloads/freshdesk-ticket-created.json")
	if err != nil {
		t.Fatal(err)
	}
	r := do(t, "POST", ts.URL+"/hooks/freshdesk", payload, map[string]string{
		"Content-Type": "application/json", "X-Hookline-Token": "dev-insecure-freshdesk-webhook-token",
	})
	if r.Status != 202 {
		t.Fatalf("webhook: %d %s", r.Status, r.Body)
	}
	waitFor(t, "two PUTs at the Freshdesk stand-in", func() bool { return len(api.requests()) == 2 })
	time.Sleep(100 * time.Millisecond)
	reqs := api.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	tagsOf := func(i int) []string {
		var tags []string
		for _, x := range reqs[i].Body["tags"].([]any) {
			tags = append(tags, fmt.Sprint(x))
		}
		slices.Sort(tags)
		return tags
	}
	// Deliveries to one ticket go out in the order they were made.
	if got, want := tagsOf(0), []string{"billing_team", "refund", "vip"}; !slices.Equal(got, want) {
		t.Errorf("first PUT tags %q, want %q", got, want)
	}
	if got, want := tagsOf(1), []string{"billing_team", "high_prio", "refund"}; !slices.Equal(got, want) {
		t.Errorf("second PUT tags %q, want %q (the first rule's tag kept, vip removed)", got, want)
	}
}

func TestWithQueued(t *testing.T) {
	snap := &event.Snapshot{Fields: map[string]any{"status": "open", "tags": []any{"a", "b"}}}
	view := withQueued(snap, []*event.Update{
		{Set: map[string]any{"status": "pending"}, AddTags: []string{"c"}},
		{RemoveTags: []string{"a"}, AddTags: []string{"d", "c"}},
	})
	if got := fmt.Sprint(view.Fields["status"], " ", event.Strings(view.Fields["tags"])); got != "pending [b c d]" {
		t.Errorf("view: %s", got)
	}
	if got := fmt.Sprint(snap.Fields["status"], " ", event.Strings(snap.Fields["tags"])); got != "open [a b]" {
		t.Errorf("the snapshot changed: %s", got)
	}
	if withQueued(snap, nil) != snap {
		t.Error("no queued updates: want the snapshot itself")
	}
	// Unknown tags stay unknown: a whole-list replacement is never built
	// from a guess.
	view = withQueued(nil, []*event.Update{{AddTags: []string{"x"}, Set: map[string]any{"owner": "ana"}}})
	if _, known := view.Fields["tags"]; known || view.Fields["owner"] != "ana" {
		t.Errorf("view of an unknown entity: %v", view.Fields)
	}
}
