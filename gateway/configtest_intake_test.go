package gateway

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/store"
)

// Config tests can run a payload through the intake checks (intake: true,
// or expect.refused) and assert a refusal by status and reason; a refusal
// nobody expected, an expected one that does not happen and a wrong status
// fail the case with a message that says which.
// intakePayload is a WhatsApp Cloud API message webhook.
const intakePayload = `{"object":"whatsapp_business_account","entry":[{"id":"WABA-1","changes":[{"field":"messages","value":{` +
	`"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550001111","phone_number_id":"PN-1"},` +
	`"contacts":[{"profile":{"name":"Ana"},"wa_id":"34600111222"}],` +
	`"messages":[{"from":"34600111222","id":"wamid.T1","timestamp":"1767607200","type":"text","text":{"body":"hola"}}]}}]}]}`

func TestConfigTestIntake(t *testing.T) {
	dir := copyConfigs(t)
	const payload = intakePayload
	var v any
	if err := json.Unmarshal([]byte(payload), &v); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(v) // the bytes a config test posts: keys sorted
	mac := hmac.New(sha256.New, []byte("test-whatsapp-secret"))
	mac.Write(body)
	signature := "sha256=" + hex.EncodeToString(mac.Sum(nil))

	tests := `tests:
  - name: unsigned is refused
    connector: whatsapp
    payload: ` + payload + `
    expect: { refused: { status: 401, reason: X-Hub-Signature-256 } }
  - name: signed passes and maps
    connector: whatsapp
    intake: true
    headers: { X-Hub-Signature-256: "` + signature + `" }
    payload: ` + payload + `
    expect: { events: [ { type: message.received } ] }
  - name: a wrong signature is refused before the schema is checked
    connector: whatsapp
    headers: { X-Hub-Signature-256: "sha256=` + strings.Repeat("0", 64) + `" }
    payload: { object: page }
    expect: { refused: { status: 401 } }
  - name: an unsupported content type
    connector: generic
    content_type: text/plain
    payload: "hello"
    expect: { refused: { status: 415, reason: text/plain } }
  - name: expected a refusal that does not come
    connector: generic
    payload: { type: ticket.updated, id: G-1, status: open }
    expect: { refused: { status: 401 } }
  - name: an unexpected refusal
    connector: whatsapp
    intake: true
    payload: ` + payload + `
    expect: { events: [ { type: message.received } ] }
  - name: the wrong status
    connector: whatsapp
    payload: ` + payload + `
    expect: { refused: { status: 422 } }
  - name: without intake the signature is not checked
    connector: whatsapp
    payload: ` + payload + `
    expect: { events: [ { type: message.received } ] }
`
	file := filepath.Join(dir, "rules", "intake_test.yaml")
	outcomes := runTestFile(t, dir, file, tests, 8)
	for _, i := range []int{0, 1, 2, 3, 7} {
		if !outcomes[i].Passed() {
			t.Errorf("case %q failed: %v", outcomes[i].Case, outcomes[i].Failures)
		}
	}
	for i, want := range map[int]string{
		4: "refused: want status 401, but the intake checks let the payload through",
		5: "the intake checks refused the payload: 401",
		6: "refused: want status 422, got 401",
	} {
		if f := outcomes[i].Failures; len(f) == 0 || !strings.Contains(f[0], want) {
			t.Errorf("case %q failures %q, want %q", outcomes[i].Case, f, want)
		}
	}
}

// The schema check: a correctly signed payload that breaks the connector's
// schema is refused 422 with the JSON pointer, in dry runs as at the door.
func TestSimulateIntakeSchema(t *testing.T) {
	b, errs := Load(copyConfigs(t), testEnv(nil))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	body := []byte(strings.Replace(intakePayload, "whatsapp_business_account", "page", 1))
	mac := hmac.New(sha256.New, []byte("test-whatsapp-secret"))
	mac.Write(body)
	res, err := Simulate(b, SimRequest{Connector: "whatsapp", Payload: body, Intake: true,
		Headers: map[string]string{"X-Hub-Signature-256": "sha256=" + hex.EncodeToString(mac.Sum(nil))}}, time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if res.Refused == nil || res.Refused.Status != 422 || res.Refused.Pointer != "/object" || len(res.Events) != 0 {
		t.Fatalf("result %+v, refused %+v; want 422 at /object and no events", res, res.Refused)
	}
}

// The dry-run API takes "intake": true and answers the refusal as the
// door would give it, without storing anything.
func TestDryRunIntake(t *testing.T) {
	gw, stop := runServer(t, copyConfigs(t), t.TempDir(), nil, nil)
	defer stop()
	body := `{"connector": "whatsapp", "intake": true, "payload": ` + intakePayload + `}`
	r := do(t, "POST", gw.URL+"/api/v1/rules/test", []byte(body), map[string]string{"Content-Type": "application/json"})
	var res SimResult
	decodeJSON(t, r.Body, &res)
	if r.Status != 200 || res.Refused == nil || res.Refused.Status != 401 || len(res.Events) != 0 {
		t.Fatalf("dry run %d: %s", r.Status, r.Body)
	}
	evs, _, err := gw.db.ListEvents(store.EventFilter{})
	if st, serr := gw.db.Stats(); err != nil || serr != nil || len(evs) != 0 || st.InboxPending != 0 {
		t.Fatalf("a dry run stored something: %d events, %+v, %v %v", len(evs), st, err, serr)
	}
}

// A step inherits its case's intake: true: a step posting with a
// wrong token is refused, not processed; intake: false turns the checks
// off for the step.
func TestConfigTestStepsInheritIntake(t *testing.T) {
	dir := copyConfigs(t)
	env := testEnv(map[string]string{"GENERIC_TOKEN": "s3cret"})
	b, errs := Load(dir, env)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	file := filepath.Join(dir, "rules", "x_intake_test.yaml")
	writeFile(t, file, `tests:
  - name: a step with a wrong token is refused
    connector: generic
    intake: true
    headers: { X-Hookline-Token: s3cret }
    payload: { type: ticket.updated, reference: T1, status: pending }
    expect: { matched: [] }
    steps:
      - headers: { X-Hookline-Token: wrong }
        payload: { type: ticket.updated, reference: T1, status: open }
        expect: { events: [ { type: ticket.updated } ] }
  - name: a step that turns intake off
    connector: generic
    intake: true
    headers: { X-Hookline-Token: s3cret }
    payload: { type: ticket.updated, reference: T1, status: pending }
    expect: { matched: [] }
    steps:
      - headers: { X-Hookline-Token: wrong }
        intake: false
        payload: { type: ticket.updated, reference: T1, status: open }
        expect: { events: [ { type: ticket.updated } ] }
`)
	outcomes, errs := RunConfigTests(b, []string{file}, env)
	if len(errs) > 0 || len(outcomes) != 2 {
		t.Fatalf("outcomes %v errors %v", outcomes, errs)
	}
	if all := strings.Join(outcomes[0].Failures, "\n"); !strings.Contains(all, "step 1 at ") || !strings.Contains(all, "the intake checks refused the payload: 401") {
		t.Errorf("a step with a wrong token under the case's intake: true: failures %q, want a refusal", outcomes[0].Failures)
	}
	if !outcomes[1].Passed() {
		t.Errorf("intake: false: %q", outcomes[1].Failures)
	}
}
