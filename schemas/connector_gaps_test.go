package schemas_test

import (
	"strings"
	"testing"
)

// TestConnectorSchemaSuccessWhenAndMaxEvents: the schema knows an action's
// success_when and inbound.max_events, accepts the shipped Slack file, and
// refuses the mistakes the loader refuses.
func TestConnectorSchemaSuccessWhenAndMaxEvents(t *testing.T) {
	r := newRegistry(t)
	src := string(read(t, "../configs/connectors/slack.yaml"))
	const block = "      success_when:\n        path: ok\n        equals: true\n        error_path: error\n"
	if !strings.Contains(src, block) {
		t.Fatalf("slack.yaml no longer contains %q", block)
	}
	const events = "  dedupe: path:event_id\n"
	cases := []struct {
		name, from, to, pointer string
	}{
		{"shipped", "", "", ""},
		{"max_events set", events, events + "  max_events: 5000\n", ""},
		{"equals a string", "equals: true", "equals: \"yes\"", ""},
		{"equals a number", "equals: true", "equals: 0", ""},
		{"max_events zero", events, events + "  max_events: 0\n", "/inbound/max_events"},
		{"max_events text", events, events + "  max_events: lots\n", "/inbound/max_events"},
		{"equals a list", "equals: true", "equals: [true]", "/outbound/actions/send_message/success_when/equals"},
		{"missing equals", "        equals: true\n", "", "/outbound/actions/send_message/success_when/equals"},
		{"retry_errors without error_path", "        error_path: error\n", "", "/outbound/actions/send_message/success_when"},
		{"misspelt key", "error_path: error", "error_pat: error", "/outbound/actions/send_message/success_when"},
		{"empty error code", "retry_errors: [ratelimited,", "retry_errors: ['',", "/outbound/actions/send_message/success_when/retry_errors/0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc := src
			if tc.from != "" {
				if !strings.Contains(src, tc.from) {
					t.Fatalf("slack.yaml no longer contains %q", tc.from)
				}
				doc = strings.Replace(src, tc.from, tc.to, 1)
			}
			checkPointer(t, r.ValidateConfig("connector.schema.json", yamlDoc(t, "slack.yaml", []byte(doc))), tc.pointer)
		})
	}
}

// TestConnectorSchemaReply: the schema knows inbound.reply, accepts the
// shipped Twilio file, and refuses the mistakes the loader refuses.
func TestConnectorSchemaReply(t *testing.T) {
	r := newRegistry(t)
	src := string(read(t, "../configs/connectors/twilio.yaml"))
	const status = "    status: 200\n"
	cases := []struct {
		name, from, to, pointer string
	}{
		{"shipped", "", "", ""},
		{"status 204 without body", "    status: 200\n    content_type: text/xml\n    body: '<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>'\n", "    status: 204\n    content_type: text/xml\n", ""},
		{"content type with parameters", "content_type: text/xml", "content_type: 'text/xml; charset=utf-8'", ""},
		{"status not a success", status, "    status: 302\n", "/inbound/reply/status"},
		{"status text", status, "    status: ok\n", "/inbound/reply/status"},
		{"missing status", status, "", "/inbound/reply/status"},
		{"missing content type", "    content_type: text/xml\n", "", "/inbound/reply/content_type"},
		{"content type not a media type", "content_type: text/xml", "content_type: text xml", "/inbound/reply/content_type"},
		{"body with 204", status, "    status: 204\n", "/inbound/reply"},
		{"misspelt key", "content_type: text/xml", "content-type: text/xml", "/inbound/reply/content_type"}, // reported as the missing key
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc := src
			if tc.from != "" {
				if !strings.Contains(src, tc.from) {
					t.Fatalf("twilio.yaml no longer contains %q", tc.from)
				}
				doc = strings.Replace(src, tc.from, tc.to, 1)
			}
			checkPointer(t, r.ValidateConfig("connector.schema.json", yamlDoc(t, "twilio.yaml", []byte(doc))), tc.pointer)
		})
	}
}
