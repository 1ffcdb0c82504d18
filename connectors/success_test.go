package connectors

import (
	"slices"
	"testing"
)

// TestSuccessWhenCheck judges response bodies with Slack's shipped
// condition and with a numeric and a string one.
func TestSuccessWhenCheck(t *testing.T) {
	slack := loadShipped(t, "slack", nil).Outbound.Actions["send_message"].SuccessWhen
	if slack == nil {
		t.Fatal("slack.yaml send_message has no success_when")
	}
	if !slices.Equal(slack.RetryErrors, []string{"ratelimited", "internal_error", "service_unavailable"}) {
		t.Errorf("slack retry_errors %q", slack.RetryErrors)
	}
	code := &SuccessWhen{Path: "result.code", Equals: 0.0, ErrorPath: "result.message"}
	state := &SuccessWhen{Path: "status", Equals: "sent"}
	tests := []struct {
		name  string
		check *SuccessWhen
		body  string
		want  BodyVerdict
	}{
		{"slack ok", slack, `{"ok":true,"channel":"C1","ts":"1.2"}`, BodyVerdict{OK: true}},
		{"slack channel_not_found", slack, `{"ok":false,"error":"channel_not_found"}`,
			BodyVerdict{Reason: "response ok is false: error channel_not_found"}},
		{"slack ratelimited", slack, `{"ok":false,"error":"ratelimited"}`,
			BodyVerdict{Retry: true, Reason: "response ok is false: error ratelimited"}},
		{"slack internal_error", slack, `{"ok":false,"error":"internal_error","warning":"x"}`,
			BodyVerdict{Retry: true, Reason: "response ok is false: error internal_error"}},
		{"slack false without error", slack, `{"ok":false}`, BodyVerdict{Reason: "response ok is false"}},
		{"slack null error", slack, `{"ok":false,"error":null}`, BodyVerdict{Reason: "response ok is false"}},
		{"string true is not true", slack, `{"ok":"true"}`, BodyVerdict{Reason: `response ok is "true"`}},
		{"ok absent", slack, `{"error":"ratelimited"}`,
			BodyVerdict{Retry: true, Reason: "response ok is absent (success_when needs true): error ratelimited"}},
		{"empty body", slack, ``, BodyVerdict{Reason: "response is not JSON (success_when needs ok = true)"}},
		{"html", slack, `<html>502</html>`, BodyVerdict{Reason: "response is not JSON (success_when needs ok = true)"}},
		{"number equal", code, `{"result":{"code":0}}`, BodyVerdict{OK: true}},
		{"number other", code, `{"result":{"code":17,"message":"quota exceeded"}}`,
			BodyVerdict{Reason: "response result.code is 17: result.message quota exceeded"}},
		{"number as string", code, `{"result":{"code":"0"}}`, BodyVerdict{Reason: `response result.code is "0"`}},
		{"string equal", state, `{"status":"sent"}`, BodyVerdict{OK: true}},
		{"string other", state, `{"status":"queued"}`, BodyVerdict{Reason: `response status is "queued"`}},
		{"string absent", state, `{}`, BodyVerdict{Reason: `response status is absent (success_when needs "sent")`}},
		{"object value", state, `{"status":{"a":  1,
"b":2}}`, BodyVerdict{Reason: `response status is {"a": 1, "b":2}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.check.Check([]byte(tt.body)); got != tt.want {
				t.Errorf("Check(%s) = %+v, want %+v", tt.body, got, tt.want)
			}
		})
	}
}

// TestSuccessWhenLoad: the block compiles into the action, and every
// mistake is an error at its file:line:column.
func TestSuccessWhenLoad(t *testing.T) {
	const head = "connector: a\noutbound:\n  base_url: https://x.example\n  actions:\n    send_message:\n      success_when:\n"
	ok := loadYAML(t, "t.yaml", head+"        path: data.ok\n        equals: 1\n        error_path: data.err\n        retry_errors: [busy]\n", nil)
	got := ok.Outbound.Actions["send_message"].SuccessWhen
	want := &SuccessWhen{Path: "data.ok", Equals: 1.0, ErrorPath: "data.err", RetryErrors: []string{"busy"}}
	if got == nil || got.Path != want.Path || got.Equals != want.Equals || got.ErrorPath != want.ErrorPath || !slices.Equal(got.RetryErrors, want.RetryErrors) {
		t.Errorf("loaded %+v, want %+v", got, want)
	}
	if !ok.Outbound.Actions["send_message"].ReadsBody() {
		t.Error("an action with success_when must read the whole response body")
	}
	if plain := loadShipped(t, "freshdesk", nil).Outbound.Actions["update_ticket"]; plain.SuccessWhen != nil {
		t.Errorf("freshdesk update_ticket has success_when %+v", plain.SuccessWhen)
	}
	cases := []struct {
		name, block, want string
	}{
		{"not a mapping", "        - ok\n",
			`t.yaml:7:9: success_when: expected a mapping like { path: ok, equals: true }, got a list`},
		{"missing path and equals", "        error_path: error\n",
			"t.yaml:7:9: success_when: missing required key \"path\" (the gjson path of the response field that says success, e.g. ok)\n" +
				`t.yaml:7:9: success_when: missing required key "equals" (the value meaning success, e.g. true)`},
		{"misspelt key", "        path: ok\n        equals: true\n        retry_error: [x]\n",
			`t.yaml:9:9: unknown key "retry_error"; did you mean "retry_errors"? (valid: equals, error_path, path, retry_errors)`},
		{"bad path", "        path: 'ok..x'\n        equals: true\n",
			`t.yaml:7:15: success_when.path: empty part before '.' at position 4`},
		{"unknown modifier", "        path: ok\n        equals: true\n        error_path: '@revers'\n",
			`t.yaml:9:21: success_when.error_path: unknown modifier @revers; did you mean "reverse"?`},
		{"list value", "        path: ok\n        equals: [true]\n",
			`t.yaml:8:17: success_when.equals: expected true, false, a number or a string, got a list`},
		{"null value", "        path: ok\n        equals: null\n",
			`t.yaml:8:17: success_when.equals: expected true, false, a number or a string, got null`},
		{"retry without error_path", "        path: ok\n        equals: true\n        retry_errors: [ratelimited]\n",
			`t.yaml:9:23: success_when.retry_errors needs error_path (the path of the platform's error code, e.g. error)`},
		{"empty error code", "        path: ok\n        equals: true\n        error_path: error\n        retry_errors: [ratelimited, '']\n",
			`t.yaml:10:37: success_when.retry_errors: empty error code`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, errs := tryLoad(t, "t.yaml", head+tc.block, nil)
			if c != nil {
				t.Error("Load returned a connector along with errors")
			}
			if got := errorLines(errs); got != tc.want {
				t.Errorf("errors:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}
