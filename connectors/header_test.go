package connectors

import (
	"errors"
	"strings"
	"testing"

	"github.com/hookline/hookline/event"
)

func TestCheckHeader(t *testing.T) {
	cases := []struct {
		name, value, wantErr string // wantErr "" when the header can be sent
	}{
		{"X-Subject", "hello, world", ""},
		{"X-Subject", "tab\tand ünïcode", ""},
		{"X-Subject", "", ""},
		{"X-Subject", "hi\r\nX-Injected: 1", `header X-Subject: value holds a line break at byte 2 of 17: it cannot be sent`},
		{"X-Subject", "lf\nonly", "value holds a line break"},
		{"X-Subject", "nul\x00", "value holds a control character"},
		{"X-Subject", "del\x7f", "value holds a control character"},
		{"X Subject", "ok", `header name "X Subject" is not a valid HTTP header name`},
		{"X-Subject:", "ok", "is not a valid HTTP header name"},
		{"", "ok", "is not a valid HTTP header name"},
	}
	for _, tc := range cases {
		err := CheckHeader(tc.name, tc.value)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("CheckHeader(%q, %q) = %v, want nil", tc.name, tc.value, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("CheckHeader(%q, %q) = %v, want an error containing %q", tc.name, tc.value, err, tc.wantErr)
		case err != nil && tc.value != "" && tc.value != "ok" && strings.Contains(err.Error(), tc.value):
			t.Errorf("CheckHeader(%q, %q) = %v: the error quotes the value (it may be a secret)", tc.name, tc.value, err)
		}
	}
}

// A call_webhook whose rendered header cannot be sent is a render error
// that names the rule and the header.
func TestRenderWebhookRefusesUnsendableHeaders(t *testing.T) {
	for _, v := range []string{"a\r\nX-B: 2", "a\x00b"} {
		u := &event.Update{Kind: event.KindCallWebhook, RuleID: "notify-ops",
			Webhook: &event.WebhookCall{URL: "https://ops.example.com/hook", Headers: map[string]string{"X-Subject": v}}}
		_, err := (*Outbound)(nil).Render(u, "d1", nil)
		if !errors.Is(err, ErrRender) || !strings.Contains(err.Error(), "call_webhook of rule notify-ops: header X-Subject: value holds") {
			t.Errorf("header %q: err = %v", v, err)
		}
	}
}
