package gateway

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// A misspelt key in a case's snapshot or event, or in a dry-run request,
// is an error naming the key meant: decoded as JSON it used to be dropped,
// and the run went on as if it had not been written.
func TestConfigTestUnknownEventAndSnapshotKeys(t *testing.T) {
	dir := copyConfigs(t)
	file := filepath.Join(dir, "rules", "strict_test.yaml")
	tests := `tests:
  - name: misspelt snapshot key
    connector: spoki
    payload: { event: ticket_status_changed, ticket: { reference: ORD-1, status: Waiting } }
    snapshot: { feilds: { status: Waiting }, key: { refrence: ORD-1 } }
    expect: { matched: [] }
  - name: misspelt event key
    event: { connector: spoki, type: ticket.updated, entity: ticket, reference: ORD-9, feilds: { status: Waiting }, actor: { tpye: agent }, occured_at: "2020-01-01T00:00:00Z" }
    expect: { matched: [] }
  - name: every real key is accepted
    event: { connector: spoki, type: ticket.updated, entity: ticket, reference: ORD-9, fields: { status: Open }, changes: { status: { from: New, to: Open } }, vars: { TICKET_REFERENCE: ORD-9 }, causation: { hops: 0, echo: false }, occurred_at: "2026-01-05T10:00:00Z" }
    snapshot: { fields: { status: New }, fields_at: { status: "2026-01-04T10:00:00Z" }, clocks: { r: { since: "2026-01-04T10:00:00Z", done: false } }, fired: { r: [ "2026-01-04T10:00:00Z" ] }, vars: { A: b } }
    expect: { matched: [] }
`
	outcomes := runTestFile(t, dir, file, tests, 3)
	for i, want := range [][]string{
		{file + `:5:17: unknown key "feilds"; did you mean "fields"?`, file + `:5:53: unknown key "refrence"; did you mean "reference"?`},
		{file + `:8:88: unknown key "feilds"; did you mean "fields"?`, `unknown key "tpye"; did you mean "type"?`, `unknown key "occured_at"; did you mean "occurred_at"?`},
		nil,
	} {
		all := strings.Join(outcomes[i].Failures, "\n")
		if want == nil && !outcomes[i].Passed() {
			t.Errorf("%s: %s", outcomes[i].Case, all)
		}
		for _, w := range want {
			if !strings.Contains(all, w) {
				t.Errorf("%s: failures do not say %q:\n%s", outcomes[i].Case, w, all)
			}
		}
	}
}

func TestDryRunRefusesUnknownKeys(t *testing.T) {
	gw, stop := runServer(t, copyConfigs(t), t.TempDir(), nil, nil)
	defer stop()
	for _, c := range []struct {
		name, body string
		status     int
		says       []string
	}{
		{"misspelt advance and snapshot field", `{"connector": "spoki", "now": "2026-01-05T10:00:00Z", "advence": "48h",
		  "snapshot": {"feilds": {"status": "Waiting"}},
		  "payload": {"event": "ticket_status_changed", "ticket": {"reference": "ORD-1", "status": "Waiting", "phone": "+39333"}}}`,
			400, []string{`unknown key "advence"; did you mean "advance"?`, `snapshot: unknown key "feilds"; did you mean "fields"?`}},
		{"misspelt event actor key", `{"event": {"connector": "spoki", "type": "ticket.updated", "entity": "ticket", "reference": "R", "actor": {"nmae": "x"}}}`,
			400, []string{`event.actor: unknown key "nmae"; did you mean "name"?`}},
		{"payload keys are the platform's", `{"connector": "spoki", "payload": {"event": "ticket_status_changed", "anything": 1, "ticket": {"reference": "ORD-1", "status": "Waiting"}}, "snapshot": {"fields": {"whatever": 1}}}`,
			200, nil},
	} {
		r := do(t, "POST", gw.URL+"/api/v1/rules/test", []byte(c.body), map[string]string{"Content-Type": "application/json"})
		if r.Status != c.status {
			t.Errorf("%s: status %d, want %d: %s", c.name, r.Status, c.status, r.Body)
		}
		var answer struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(r.Body, &answer)
		for _, w := range c.says {
			if !strings.Contains(answer.Error, w) {
				t.Errorf("%s: answer does not say %q: %s", c.name, w, r.Body)
			}
		}
	}
}
