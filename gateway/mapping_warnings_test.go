package gateway

import (
	"path/filepath"
	"strings"
	"testing"
)

// An occurred_at the mapping cannot read is not silent: the event keeps
// the receive time, and the warning is in the event's trace, in the dry
// run's answer and in the config test's outcome.
func TestMappingWarningsAreShown(t *testing.T) {
	const want = `mapping entry "generic", occurred_at: "05/01/2026 10:15" is not a time Hookline reads`
	dir := copyConfigs(t)
	ts := startServer(t, dir, nil, nil)

	// A webhook: the warning is kept with the event.
	body := []byte(`{"type": "ticket.updated", "id": "T-9", "occurred_at": "05/01/2026 10:15"}`)
	r := do(t, "POST", ts.URL+"/hooks/generic", body, map[string]string{"Content-Type": "application/json"})
	if r.Status != 202 {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	inbox := waitFinished(t, ts.URL, r.JSON(t)["id"].(string))
	if inbox["state"] != "processed" {
		t.Fatalf("inbox %v", inbox)
	}
	got := do(t, "GET", ts.URL+"/api/v1/events/"+inbox["event_ids"].([]any)[0].(string), nil, nil).JSON(t)
	warnings, _ := got["trace"].(map[string]any)["warnings"].([]any)
	if len(warnings) != 1 || !strings.HasPrefix(warnings[0].(string), want) {
		t.Errorf("trace warnings %v, want one starting %q", warnings, want)
	}
	// A good time gives none.
	good := []byte(`{"type": "ticket.updated", "id": "T-9", "occurred_at": "2026-01-05 10:15:00+0100"}`)
	r = do(t, "POST", ts.URL+"/hooks/generic", good, map[string]string{"Content-Type": "application/json"})
	inbox = waitFinished(t, ts.URL, r.JSON(t)["id"].(string))
	got = do(t, "GET", ts.URL+"/api/v1/events/"+inbox["event_ids"].([]any)[0].(string), nil, nil).JSON(t)
	if w := got["trace"].(map[string]any)["warnings"]; w != nil {
		t.Errorf("warnings for a readable time: %v", w)
	}
	if at := got["event"].(map[string]any)["occurred_at"]; at != "2026-01-05T09:15:00Z" {
		t.Errorf("occurred_at %v", at)
	}

	// The dry run.
	dry := do(t, "POST", ts.URL+"/api/v1/rules/test", []byte(`{"connector": "generic", "payload": `+string(body)+`}`), map[string]string{"Content-Type": "application/json"})
	if dry.Status != 200 {
		t.Fatalf("dry run: %d %s", dry.Status, dry.Body)
	}
	dw, _ := dry.JSON(t)["warnings"].([]any)
	if len(dw) != 1 || !strings.HasPrefix(dw[0].(string), want) {
		t.Errorf("dry-run warnings %v", dw)
	}

	// A config test passes, with the warning in its outcome.
	outcomes := runTestFile(t, dir, filepath.Join(dir, "connectors", "generic_warn_test.yaml"), `tests:
  - name: odd time
    connector: generic
    payload: { type: ticket.updated, id: T-9, occurred_at: "05/01/2026 10:15" }
    expect: { events: [ { type: ticket.updated } ] }
`, 1)
	if o := outcomes[0]; !o.Passed() || len(o.Warnings) != 1 || !strings.HasPrefix(o.Warnings[0], want) {
		t.Errorf("outcome %+v", o)
	}
}
