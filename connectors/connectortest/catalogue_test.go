package connectortest_test

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"flag"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/connectors/connectortest"
	"github.com/hookline/hookline/connectors/verify"
	"github.com/hookline/hookline/event"
)

var update = flag.Bool("update", false, "rewrite the golden files in ../testdata/conformance")

const (
	shipped   = "../../configs/connectors"
	fixtures  = "../../testdata/fixtures"
	payloads  = "../testdata/payloads"
	goldenDir = "../testdata/conformance"
)

func cfg(name string) string { return filepath.Join(shipped, name+".yaml") }
func fx(name string) string  { return filepath.Join(fixtures, name) }
func pl(name string) string  { return filepath.Join(payloads, name) }

// twilioPublicURL is the URL typed at Twilio; the gateway, behind a proxy,
// sees twilioSeenURL instead.
const (
	twilioPublicURL = "https://hooks.example.com/hooks/twilio"
	twilioSeenURL   = "http://127.0.0.1:8080/hooks/twilio"
)

// catalogue lists every shipped connector with its cases.
func catalogue() []connectortest.Suite {
	zd := func(id string) map[string]string {
		return map[string]string{"X-Zendesk-Webhook-Invocation-Id": id, "X-Zendesk-Webhook-Id": "01HWEBHOOK"}
	}
	return []connectortest.Suite{
		{
			ConfigPath:   cfg("generic"),
			Env:          map[string]string{"GENERIC_TOKEN": "dev-test-generic-token"},
			Secret:       "dev-test-generic-token",
			Sign:         connectortest.SignTokenHeader("X-Hookline-Token"),
			AnyEventType: true,
			Cases: []connectortest.Case{
				{Name: "standard-webhooks-contact-created", Payload: fx("standard-webhooks-spec-example-contact-created.json")},
				{Name: "zapier-sample-recipe", Payload: fx("zapier-rest-hook-sample-recipe.json"), Headers: map[string]string{"Idempotency-Key": "zap-123"}},
				{Name: "ticket", Payload: pl("generic-ticket.json")},
				{Name: "form", Payload: pl("generic-form.form"), Form: true, Query: "source=make"},
			},
			BaseURLEnv:     "GENERIC_TARGET_URL",
			DefaultBaseURL: "http://127.0.0.1:9999/hookline",
			Actions: []connectortest.ActionCase{{
				Name: "update",
				Update: event.Update{Kind: event.KindUpdateEntity, RuleID: "escalate", EventID: "01EVT", Entity: "ticket", Reference: "T-9",
					Set: map[string]any{"priority": "high"}, AddTags: []string{"vip"}, Vars: map[string]string{"REFERENCE": "T-9"}},
				Want: connectortest.WantRequest{
					Action: "update", Method: "POST", Path: "/",
					Headers: map[string]string{"Content-Type": "application/json", "X-Hookline-Rule": "escalate"},
					JSON: `{"kind":"update_entity","delivery_id":"dlv-update","rule":"escalate","event_id":"01EVT","connector":"generic",
						"entity":"ticket","reference":"T-9","set":{"priority":"high"},"add_tags":["vip"],"remove_tags":[],"vars":{"REFERENCE":"T-9"}}`,
				},
			}},
		},
		{
			ConfigPath: cfg("zendesk"),
			Secret:     "dev-insecure-zendesk-secret",
			Sign:       connectortest.SignZendesk,
			Cases: []connectortest.Case{
				{Name: "user-active-changed", Payload: fx("zendesk-event-user-active-changed.json"), Headers: zd("8400001")},
				{Name: "ticket-status-changed", Payload: pl("zendesk-ticket-status-changed.json"), Headers: zd("8400002")},
				{Name: "ticket-priority-changed", Payload: pl("zendesk-ticket-priority-changed.json"), Headers: zd("8400003")},
				{Name: "ticket-created", Payload: pl("zendesk-ticket-created.json"), Headers: zd("8400004")},
				{Name: "ticket-agent-assignment-changed", Payload: pl("zendesk-ticket-agent-assignment-changed.json"), Headers: zd("8400005")},
				{Name: "ticket-group-assignment-changed", Payload: pl("zendesk-ticket-group-assignment-changed.json"), Headers: zd("8400006")},
				{Name: "ticket-tags-changed", Payload: pl("zendesk-ticket-tags-changed.json"), Headers: zd("8400007")},
				{Name: "ticket-comment-added", Payload: pl("zendesk-ticket-comment-added.json"), Headers: zd("8400008")},
				{Name: "trigger-abandoned-conversation", Payload: pl("zendesk-trigger-abandoned-conversation.json"), Headers: zd("8400009")},
				{Name: "trigger-minimal", Payload: pl("zendesk-trigger-minimal.json"), Headers: zd("8400010")},
			},
			BaseURLEnv:     "ZENDESK_BASE_URL",
			DefaultBaseURL: "https://example.zendesk.com",
			Actions: []connectortest.ActionCase{{
				Name: "update-ticket",
				Update: event.Update{Kind: event.KindUpdateEntity, RuleID: "z1", Entity: "ticket", Reference: "35436",
					Set: map[string]any{"status": "solved", "priority": "normal", "group": "360001"}, AddTags: []string{"abandoned_conversation"}},
				RespondBody: `{"ticket":{"id":35436,"updated_at":"2026-03-02T12:00:05Z"}}`,
				Want: connectortest.WantRequest{
					Action: "update_ticket", Method: "PUT", Path: "/api/v2/tickets/35436.json",
					Headers: map[string]string{
						"Authorization": connectortest.BasicAuth("agent@example.com/token", "dev-insecure-zendesk-api-token"),
						"Content-Type":  "application/json", "Accept": "application/json",
					},
					JSON: `{"ticket":{"status":"solved","priority":"normal","group_id":360001,"additional_tags":["abandoned_conversation"]}}`,
				},
				WantCapture: map[string]string{"updated_at": "2026-03-02T12:00:05Z"},
			}},
		},
		{
			ConfigPath: cfg("whatsapp"),
			// The published handshake fixture uses the verify token "meatyhamhock".
			Env:    map[string]string{"WHATSAPP_VERIFY_TOKEN": "meatyhamhock"},
			Secret: "dev-insecure-whatsapp-secret",
			Sign:   connectortest.SignHubSHA256,
			Cases: []connectortest.Case{
				{Name: "text-message", Payload: fx("whatsapp-cloud-text-message.json")},
				{Name: "interactive-button-reply", Payload: fx("whatsapp-cloud-interactive-button-reply.json")},
				{Name: "status-sent", Payload: fx("whatsapp-cloud-status-sent.json")},
				{Name: "image-message", Payload: pl("whatsapp-cloud-image-message.json")},
			},
			Handshakes: []connectortest.HandshakeCase{
				{Name: "published-example", Method: "GET", Query: "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=meatyhamhock", WantStatus: 200, WantBody: "1158201444"},
				{Name: "wrong-token", Method: "GET", Query: "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=dev-insecure-verify-token", WantStatus: 403},
			},
			BaseURLEnv:     "WHATSAPP_GRAPH_URL",
			DefaultBaseURL: "https://graph.facebook.com/v21.0",
			Actions: []connectortest.ActionCase{{
				Name: "send-text",
				Update: event.Update{Kind: event.KindSendMessage, RuleID: "ack", Entity: "chat", Reference: "16505551234",
					Message: &event.Message{Text: "We got your message."}, Vars: map[string]string{"PHONE_NUMBER_ID": "106540352242922"}},
				RespondBody: `{"messaging_product":"whatsapp","contacts":[{"input":"16505551234","wa_id":"16505551234"}],"messages":[{"id":"wamid.OUT1"}]}`,
				Want: connectortest.WantRequest{
					Action: "send_message", Method: "POST", Path: "/106540352242922/messages",
					Headers: map[string]string{"Authorization": "Bearer dev-insecure-whatsapp-access-token", "Content-Type": "application/json"},
					JSON: `{"messaging_product":"whatsapp","recipient_type":"individual","to":"16505551234","type":"text",
						"text":{"preview_url":false,"body":"We got your message."}}`,
				},
				WantCapture: map[string]string{"message_id": "wamid.OUT1"},
			}},
		},
		{
			ConfigPath: cfg("twilio"),
			Env: map[string]string{
				"TWILIO_PUBLIC_URL":          twilioPublicURL,
				"TWILIO_STATUS_CALLBACK_URL": twilioPublicURL,
			},
			Secret: "dev-insecure-twilio-auth-token",
			Sign:   connectortest.SignTwilio(twilioPublicURL),
			URL:    twilioSeenURL,
			Cases: []connectortest.Case{
				{Name: "whatsapp-text", Payload: pl("twilio-whatsapp-text.form"), Form: true},
				{Name: "whatsapp-button", Payload: pl("twilio-whatsapp-button.form"), Form: true},
				{Name: "whatsapp-image", Payload: pl("twilio-whatsapp-image.form"), Form: true},
				{Name: "sms-text", Payload: pl("twilio-sms-text.form"), Form: true},
				{Name: "status-whatsapp-read", Payload: pl("twilio-status-whatsapp-read.form"), Form: true},
				{Name: "status-sms-undelivered", Payload: pl("twilio-status-sms-undelivered.form"), Form: true},
				// Twilio's published signature vector body is a voice call's
				// parameters: it verifies, and maps to no messaging event.
				{Name: "published-voice-params", Payload: fx("twilio-signature-vector-sdk-params.form"), Form: true, Query: "foo=1&bar=2", Unmapped: true},
			},
			BaseURLEnv:     "TWILIO_API_URL",
			DefaultBaseURL: "https://api.twilio.com",
			Actions: []connectortest.ActionCase{
				{
					Name: "send-whatsapp-reply",
					Update: event.Update{Kind: event.KindSendMessage, RuleID: "ack", Entity: "chat", Reference: "whatsapp:+34600111222",
						Message: &event.Message{Text: "¡Gracias! Lo revisamos & respondemos."},
						Vars:    map[string]string{"BUSINESS_ADDRESS": "whatsapp:+14155550100"}},
					Respond:     201,
					RespondBody: `{"sid":"SM6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d","status":"queued"}`,
					Want: connectortest.WantRequest{
						Action: "send_message", Method: "POST", Path: "/2010-04-01/Accounts/ACdevinsecure00000000000000000000/Messages.json",
						Headers: map[string]string{
							"Authorization": connectortest.BasicAuth("ACdevinsecure00000000000000000000", "dev-insecure-twilio-auth-token"),
							"Content-Type":  "application/x-www-form-urlencoded",
						},
						Form: url.Values{
							"To": {"whatsapp:+34600111222"}, "From": {"whatsapp:+14155550100"},
							"Body": {"¡Gracias! Lo revisamos & respondemos."}, "StatusCallback": {twilioPublicURL},
						},
					},
					WantCapture: map[string]string{"message_sid": "SM6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d", "status": "queued"},
				},
				{
					Name: "send-sms-to-given-number",
					Update: event.Update{Kind: event.KindSendMessage, RuleID: "notify", Entity: "ticket", Reference: "T-1",
						Message: &event.Message{Text: "Ticket T-1 is urgent", To: "+12125550123"},
						Vars:    map[string]string{"BUSINESS_ADDRESS": "+14155550100"}},
					Respond:     201,
					RespondBody: `{"sid":"SM7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e","status":"accepted"}`,
					Want: connectortest.WantRequest{
						Action: "send_message", Method: "POST", Path: "/2010-04-01/Accounts/ACdevinsecure00000000000000000000/Messages.json",
						Form: url.Values{"To": {"+12125550123"}, "From": {"+14155550100"}, "Body": {"Ticket T-1 is urgent"}, "StatusCallback": {twilioPublicURL}},
					},
				},
			},
		},
		{
			ConfigPath:   cfg("slack"),
			Secret:       "dev-insecure-slack-signing-secret",
			Sign:         connectortest.SignSlack,
			RetryHeaders: map[string]string{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
			Cases: []connectortest.Case{
				{Name: "message", Payload: fx("slack-event-callback-message.json")},
				{Name: "thread-reply", Payload: pl("slack-thread-reply.json")},
				{Name: "bot-message", Payload: pl("slack-bot-message.json")},
				{Name: "reaction-added", Payload: pl("slack-reaction-added.json"), Unmapped: true},
			},
			Handshakes: []connectortest.HandshakeCase{
				{Name: "url-verification", Method: "POST", Payload: fx("slack-url-verification.json"), WantStatus: 200, WantBody: "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"},
			},
			BaseURLEnv:     "SLACK_API_URL",
			DefaultBaseURL: "https://slack.com/api",
			Actions: []connectortest.ActionCase{
				{
					Name: "reply-in-thread",
					Update: event.Update{Kind: event.KindSendMessage, RuleID: "ack", Entity: "chat", Reference: "C111",
						Message: &event.Message{Text: "On it!"}, Vars: map[string]string{"THREAD_TS": "1596183880.004200", "CHANNEL_ID": "C111"}},
					RespondBody: `{"ok":true,"channel":"C111","ts":"1596184300.000200"}`,
					Want: connectortest.WantRequest{
						Action: "send_message", Method: "POST", Path: "/chat.postMessage",
						Headers: map[string]string{"Authorization": "Bearer dev-insecure-slack-bot-token", "Content-Type": "application/json; charset=utf-8"},
						JSON:    `{"channel":"C111","thread_ts":"1596183880.004200","text":"On it!"}`,
					},
					WantCapture: map[string]string{"ok": "true", "ts": "1596184300.000200", "error": ""},
				},
				{
					Name:        "post-to-channel",
					Update:      event.Update{Kind: event.KindSendMessage, RuleID: "alert", Entity: "ticket", Reference: "T-2", Message: &event.Message{Text: "T-2 is urgent", To: "C999"}},
					RespondBody: `{"ok":false,"error":"channel_not_found"}`,
					// HTTP 200, but a failure: dead at once with this reason.
					WantBodyFailure: "response ok is false: error channel_not_found",
					Want: connectortest.WantRequest{
						Action: "send_message", Method: "POST", Path: "/chat.postMessage",
						JSON: `{"channel":"C999","text":"T-2 is urgent"}`,
					},
					WantCapture: map[string]string{"ok": "false", "error": "channel_not_found"},
				},
			},
		},
		{
			ConfigPath: cfg("freshdesk"),
			Secret:     "dev-insecure-freshdesk-webhook-token",
			Sign:       connectortest.SignTokenHeader("X-Hookline-Token"),
			Cases: []connectortest.Case{
				{Name: "ticket-created", Payload: pl("freshdesk-ticket-created.json")},
				{Name: "ticket-updated-waiting", Payload: pl("freshdesk-ticket-updated-waiting.json")},
			},
			BaseURLEnv:     "FRESHDESK_API_URL",
			DefaultBaseURL: "https://example.freshdesk.com",
			Actions: []connectortest.ActionCase{
				{
					Name: "update-ticket",
					Update: event.Update{Kind: event.KindUpdateEntity, RuleID: "escalate", Entity: "ticket", Reference: "1042",
						Set: map[string]any{"status": "pending", "priority": "urgent", "owner": "43000067890", "custom.cf_order_id": "1234"}},
					RespondBody: `{"id":1042,"status":3,"priority":4,"updated_at":"2026-03-02T12:00:05Z"}`,
					Want: connectortest.WantRequest{
						Action: "update_ticket", Method: "PUT", Path: "/api/v2/tickets/1042",
						Headers: map[string]string{"Authorization": connectortest.BasicAuth("dev-insecure-freshdesk-api-key", "X"), "Content-Type": "application/json"},
						JSON:    `{"status":3,"priority":4,"responder_id":43000067890,"custom_fields":{"cf_order_id":"1234"}}`,
					},
					WantCapture: map[string]string{"updated_at": "2026-03-02T12:00:05Z"},
				},
				{
					// Freshdesk replaces the whole list: the ticket's known tags
					// plus the added, minus the removed, in order.
					Name: "merge-tags",
					Update: event.Update{Kind: event.KindUpdateEntity, RuleID: "tag", Entity: "ticket", Reference: "1042",
						Set: map[string]any{"status": "resolved"}, AddTags: []string{"unhappy", "vip"}, RemoveTags: []string{"new"}},
					Target:      &event.Snapshot{Fields: map[string]any{"tags": []string{"refund", "new", "vip"}, "status": "open"}},
					RespondBody: `{"id":1042,"tags":["refund","vip","unhappy"],"updated_at":"2026-03-02T12:00:06Z"}`,
					Want: connectortest.WantRequest{
						Action: "update_ticket", Method: "PUT", Path: "/api/v2/tickets/1042",
						JSON: `{"status":4,"tags":["refund","vip","unhappy"]}`,
					},
					WantCapture: map[string]string{"updated_at": "2026-03-02T12:00:06Z"},
				},
				{
					// Tags never seen: refused rather than wiping the ticket's tags.
					Name:            "tags-unknown-refused",
					Update:          event.Update{Kind: event.KindUpdateEntity, RuleID: "tag", Entity: "ticket", Reference: "1042", AddTags: []string{"unhappy"}},
					Target:          &event.Snapshot{Fields: map[string]any{"status": "open"}},
					WantRenderError: "the current tags of ticket 1042 are unknown",
				},
				{
					Name:        "reply",
					Update:      event.Update{Kind: event.KindSendMessage, RuleID: "ack", Entity: "ticket", Reference: "1042", Message: &event.Message{Text: "We are on it."}},
					Respond:     201,
					RespondBody: `{"id":5001,"ticket_id":1042}`,
					Want: connectortest.WantRequest{
						Action: "send_message", Method: "POST", Path: "/api/v2/tickets/1042/reply",
						JSON: `{"body":"We are on it."}`,
					},
					WantCapture: map[string]string{"reply_id": "5001"},
				},
			},
		},
		{
			ConfigPath: cfg("intercom"),
			// Replies and state changes are written as this admin, Hookline's
			// own teammate: a reply of another admin (991267715, Mark Strong,
			// in the payloads) is an agent reply, not Hookline's echo.
			Env:    map[string]string{"INTERCOM_ADMIN_ID": "991267799"},
			Secret: "dev-insecure-intercom-secret",
			// Intercom's "Signed Notifications": X-Hub-Signature: sha1=<hex
			// HMAC-SHA1(secret, raw body)>, computed here independently of the
			// hmac verifier.
			Sign: func(r *verify.Request, secret string, _ time.Time) {
				m := hmac.New(sha1.New, []byte(secret))
				m.Write(r.Body)
				r.Header.Set("X-Hub-Signature", "sha1="+hex.EncodeToString(m.Sum(nil)))
			},
			Cases: []connectortest.Case{
				// Intercom's published examples: the subscription ping, the
				// signed user.created request, the notification model's
				// company.created.
				{Name: "published-ping", Payload: pl("intercom-ping.json"), Unmapped: true},
				{Name: "published-signed-user-created", Payload: pl("intercom-signed-user-created.json")},
				{Name: "published-company-created", Payload: pl("intercom-company-created.json"), Unmapped: true},
				// Assembled from the envelope and the API 2.11 conversation and contact models.
				{Name: "conversation-user-created", Payload: pl("intercom-conversation-user-created.json")},
				{Name: "conversation-admin-assigned", Payload: pl("intercom-conversation-admin-assigned.json")},
				{Name: "conversation-user-replied", Payload: pl("intercom-conversation-user-replied.json")},
				{Name: "conversation-admin-replied", Payload: pl("intercom-conversation-admin-replied.json")},
				{Name: "conversation-admin-noted", Payload: pl("intercom-conversation-admin-noted.json")},
				{Name: "conversation-admin-snoozed", Payload: pl("intercom-conversation-admin-snoozed.json")},
				{Name: "conversation-part-tag-created", Payload: pl("intercom-conversation-part-tag-created.json")},
				{Name: "conversation-admin-closed", Payload: pl("intercom-conversation-admin-closed.json")},
				{Name: "conversation-deleted", Payload: pl("intercom-conversation-deleted.json")},
				{Name: "conversation-admin-single-created", Payload: pl("intercom-conversation-admin-single-created.json")},
				{Name: "contact-user-created", Payload: pl("intercom-contact-user-created.json")},
			},
			BaseURLEnv:     "INTERCOM_API_URL",
			DefaultBaseURL: "https://api.intercom.io",
			Actions: func() []connectortest.ActionCase {
				headers := map[string]string{
					"Authorization":    "Bearer dev-insecure-intercom-access-token",
					"Intercom-Version": "2.11",
					"Content-Type":     "application/json",
					"Accept":           "application/json",
				}
				conversation := `{"type":"conversation","id":"215470893711","state":"%s","admin_assignee_id":991267715,"team_assignee_id":5017691,
					"conversation_parts":{"type":"conversation_part.list","conversation_parts":[{"type":"conversation_part","id":"5310","part_type":"%s"}],"total_count":1}}`
				update := func(set map[string]any) event.Update {
					return event.Update{Kind: event.KindUpdateEntity, RuleID: "r1", Entity: "chat", Reference: "215470893711", Set: set}
				}
				parts := func(json string) connectortest.WantRequest {
					return connectortest.WantRequest{Action: "update_chat", Method: "POST", Path: "/conversations/215470893711/parts", Headers: headers, JSON: json}
				}
				return []connectortest.ActionCase{
					{
						Name: "reply",
						Update: event.Update{Kind: event.KindSendMessage, RuleID: "ack", Entity: "chat", Reference: "215470893711",
							Message: &event.Message{Text: "Thanks, Ana — the parcel arrives tomorrow & we'll confirm."}},
						RespondBody: fmt.Sprintf(conversation, "open", "comment"),
						Want: connectortest.WantRequest{
							Action: "send_message", Method: "POST", Path: "/conversations/215470893711/reply", Headers: headers,
							JSON: `{"message_type":"comment","type":"admin","admin_id":"991267799","body":"Thanks, Ana — the parcel arrives tomorrow & we'll confirm."}`,
						},
						WantCapture: map[string]string{"part_id": "5310", "state": "open"},
					},
					{
						Name:   "reply-to-given-conversation",
						Update: event.Update{Kind: event.KindSendMessage, RuleID: "notify", Entity: "ticket", Reference: "T-1", Message: &event.Message{Text: "<p>Escalated.</p>", To: "215470893802"}},
						Want: connectortest.WantRequest{
							Action: "send_message", Method: "POST", Path: "/conversations/215470893802/reply",
							JSON: `{"message_type":"comment","type":"admin","admin_id":"991267799","body":"<p>Escalated.</p>"}`,
						},
					},
					{
						Name: "close", Update: update(map[string]any{"status": "closed"}),
						RespondBody: fmt.Sprintf(conversation, "closed", "close"),
						Want:        parts(`{"message_type":"close","type":"admin","admin_id":"991267799"}`),
						WantCapture: map[string]string{"state": "closed", "admin_assignee_id": "991267715", "team_assignee_id": "5017691"},
					},
					{Name: "solved-closes", Update: update(map[string]any{"status": "solved"}), Want: parts(`{"message_type":"close","type":"admin","admin_id":"991267799"}`)},
					{Name: "open", Update: update(map[string]any{"status": "open"}), Want: parts(`{"message_type":"open","admin_id":"991267799"}`)},
					{
						Name:   "snooze",
						Update: update(map[string]any{"status": "snoozed", "snoozed_until": "1772538000"}),
						Want:   parts(`{"message_type":"snoozed","admin_id":"991267799","snoozed_until":1772538000}`),
					},
					{
						Name:   "assign-admin",
						Update: update(map[string]any{"owner": "991267720"}),
						Want:   parts(`{"message_type":"assignment","type":"admin","admin_id":"991267799","assignee_id":"991267720"}`),
					},
					{
						Name:   "assign-team",
						Update: update(map[string]any{"group": "5017691"}),
						Want:   parts(`{"message_type":"assignment","type":"team","admin_id":"991267799","assignee_id":"5017691"}`),
					},
					{
						Name:   "unassign",
						Update: update(map[string]any{"owner": "unassigned"}),
						Want:   parts(`{"message_type":"assignment","type":"admin","admin_id":"991267799","assignee_id":"0"}`),
					},
					{Name: "two-changes-refused", Update: update(map[string]any{"status": "closed", "owner": "991267720"}), WantRenderError: "one of status, owner, group per request"},
					{Name: "tags-refused", Update: event.Update{Kind: event.KindUpdateEntity, RuleID: "t", Entity: "chat", Reference: "215470893711", AddTags: []string{"vip"}}, WantRenderError: "cannot add or remove tags"},
					{Name: "priority-refused", Update: update(map[string]any{"priority": "high"}), WantRenderError: "cannot set priority"},
					{Name: "unknown-status-refused", Update: update(map[string]any{"status": "pending"}), WantRenderError: "status pending is not one"},
					{Name: "snooze-without-time-refused", Update: update(map[string]any{"status": "snoozed"}), WantRenderError: "snoozing needs snoozed_until"},
					{Name: "nothing-refused", Update: update(map[string]any{"snoozed_until": "1772538000"}), WantRenderError: "nothing to change"},
				}
			}(),
		},
		{
			ConfigPath: cfg("smartertrack"),
			Secret:     "dev-insecure-smartertrack-token",
			Sign:       connectortest.SignTokenQuery("token"),
			Cases: []connectortest.Case{
				{Name: "ticket-priority-changed", Payload: pl("smartertrack-ticket-priority-changed.form"), Form: true},
				{Name: "ticket-status-changed", Payload: pl("smartertrack-ticket-status-changed.form"), Form: true},
				{Name: "ticket-transferred", Payload: pl("smartertrack-ticket-transferred.form"), Form: true},
				{Name: "ticket-idle-waiting", Payload: pl("smartertrack-ticket-idle-waiting.form"), Form: true},
				{Name: "ticket-messages-received", Payload: pl("smartertrack-ticket-messages-received.form"), Form: true},
				{Name: "manual-ticket", Payload: pl("smartertrack-manual-ticket.form"), Form: true},
				{Name: "chat-idle", Payload: pl("smartertrack-chat-idle.form"), Form: true},
				{Name: "chat-incoming-message", Payload: pl("smartertrack-chat-incoming-message.form"), Form: true},
				{Name: "call-created", Payload: pl("smartertrack-call-created.form"), Form: true},
				{Name: "task-modified", Payload: pl("smartertrack-task-modified.form"), Form: true},
				{Name: "kb-article-stale", Payload: pl("smartertrack-kb-article-stale.form"), Form: true},
				{Name: "survey-answered", Payload: pl("smartertrack-survey-answered.form"), Form: true},
				{Name: "whoson-chat-invited", Payload: pl("smartertrack-whoson-chat-invited.form"), Form: true},
				{Name: "pop-login-failed", Payload: pl("smartertrack-pop-login-failed.form"), Form: true},
				{Name: "ticket-count-unmapped", Payload: pl("smartertrack-ticket-count.form"), Form: true, Unmapped: true},
				// Parameters in the URL and an empty form body.
				{Name: "query-parameters", Payload: pl("smartertrack-query-only.form"), Form: true,
					Query: "event=chat_ended&id=88123&occurred_at=2026-01-05T13%3A20%3A00Z&agent=jdoe&group=Support"},
			},
		},
		{
			ConfigPath: cfg("spoki"),
			Secret:     "dev-insecure-spoki-webhook-token",
			Sign:       connectortest.SignTokenQuery("token"),
			Cases: []connectortest.Case{
				{Name: "message-received", Payload: pl("spoki-message-received.json"), Query: "event=message_received"},
				{Name: "message-sent", Payload: pl("spoki-message-sent.json"), Query: "event=message_sent"},
				{Name: "chat-unread", Payload: pl("spoki-chat-unread.json"), Query: "event=chat_unread"},
				{Name: "note-added", Payload: pl("spoki-note-added.json"), Query: "event=note_added"},
				{Name: "contact-created", Payload: pl("spoki-contact-created.json"), Query: "event=contact_created"},
				{Name: "tag-added", Payload: pl("spoki-tag-added.json"), Query: "event=tag_added"},
				{Name: "ticket-status-changed", Payload: pl("spoki-ticket-status-changed.json")},
			},
			BaseURLEnv:     "SPOKI_AUTOMATION_URL",
			DefaultBaseURL: "https://app.spoki.it/wh/ap/dev-insecure-automation",
			Actions: []connectortest.ActionCase{{
				Name: "update-ticket-by-reference",
				Update: event.Update{Kind: event.KindUpdateEntity, RuleID: "s1", Entity: "ticket", Reference: "ORD-1234",
					Set: map[string]any{"status": "in_progress", "owner": "senior_support"}, Vars: map[string]string{"CUSTOMER_PHONE": "+393331234567"}},
				Want: connectortest.WantRequest{
					Action: "update_ticket", Method: "POST", Path: "/",
					Headers: map[string]string{"X-Spoki-Api-Key": "dev-insecure-spoki-api-key", "Content-Type": "application/json"},
					JSON: `{"secret":"dev-insecure-spoki-automation-secret","phone":"+393331234567","custom_fields":{"TICKET_REFERENCE":"ORD-1234",
						"TICKET_STATUS":"in_progress","TICKET_PRIORITY":"","TICKET_CATEGORY":"","TICKET_OWNER":"senior_support"}}`,
				},
			}},
		},
		{
			ConfigPath: cfg("wix_answers"),
			Secret:     "dev-insecure-wix-answers-token",
			Sign:       connectortest.SignTokenQuery("token"),
			Cases: []connectortest.Case{
				{Name: "ticket-created", Payload: pl("wix-answers-ticket-created.json"), Query: "event=ticket_created"},
				{Name: "ticket-status-changed", Payload: pl("wix-answers-ticket-status-changed.json"), Query: "event=ticket_status_changed"},
				{Name: "reply-created", Payload: pl("wix-answers-reply-created.json"), Query: "event=reply_created"},
				{Name: "agent-reply-created", Payload: pl("wix-answers-agent-reply-created.json"), Query: "event=agent_reply_created"},
				{Name: "chat-ended", Payload: pl("wix-answers-chat-ended.json"), Query: "event=chat_ended"},
				{Name: "call-ended", Payload: pl("wix-answers-call-ended.json"), Query: "event=call_ended"},
				{Name: "csat-submitted", Payload: pl("wix-answers-csat-submitted.json"), Query: "event=csat_survey_submitted"},
				// A webhook URL without ?event= maps to nothing: the body is kept, marked unmapped.
				{Name: "no-event-kind", Payload: pl("wix-answers-without-event-kind.json"), Unmapped: true},
			},
		},
	}
}

func TestCatalogue(t *testing.T) {
	for _, s := range catalogue() {
		s.GoldenDir = goldenDir
		s.Update = *update
		name := strings.TrimSuffix(filepath.Base(s.ConfigPath), ".yaml")
		t.Run(name, func(t *testing.T) { connectortest.Run(t, s) })
	}
}

// Every connector file shipped in configs/connectors is in the catalogue.
func TestCatalogueIsComplete(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(shipped, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("connector files: %v %v", files, err)
	}
	var listed []string
	for _, s := range catalogue() {
		listed = append(listed, filepath.Clean(s.ConfigPath))
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.yaml") {
			continue
		}
		if !slices.Contains(listed, filepath.Clean(f)) {
			t.Errorf("%s is shipped but has no conformance suite in catalogue_test.go", f)
		}
	}
}
