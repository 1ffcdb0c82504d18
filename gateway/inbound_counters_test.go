package gateway

import (
	"strings"
	"testing"
)

// Only what a customer writes counts in the chat's snapshot: a WhatsApp
// reaction and a changed-number notice in the same notification as a text
// leave customer_messages at 1, and the notice's new_wa_id is kept.
func TestWhatsAppReactionAndSystemNoticeAreNotCustomerMessages(t *testing.T) {
	ts := startServer(t, copyConfigs(t), nil, nil)
	body := []byte(`{"object":"whatsapp_business_account","entry":[{"id":"WABA-1","changes":[{"field":"messages","value":{
		"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550001111","phone_number_id":"PN-1"},
		"contacts":[{"profile":{"name":"Ana"},"wa_id":"34600111222"}],
		"messages":[
			{"from":"34600111222","id":"wamid.T1","timestamp":"1767607200","type":"text","text":{"body":"hola"}},
			{"from":"34600111222","id":"wamid.R1","timestamp":"1767607201","type":"reaction","reaction":{"message_id":"wamid.OURS","emoji":"\u2764"}},
			{"from":"34600111222","id":"wamid.S1","timestamp":"1767607202","type":"system","system":{"body":"Ana changed her number","new_wa_id":"34600999888","type":"user_changed_number"}}
		]}}]}]}`)
	r := do(t, "POST", ts.URL+"/hooks/whatsapp", body, map[string]string{
		"Content-Type":        "application/json",
		"X-Hub-Signature-256": metaSignature("test-whatsapp-secret", body),
	})
	if r.Status != 202 {
		t.Fatalf("signed notification: %d %s", r.Status, r.Body)
	}
	waitFinished(t, ts.URL, r.JSON(t)["id"].(string))
	ent := string(do(t, "GET", ts.URL+"/api/v1/entities/whatsapp/chat/34600111222", nil, nil).Body)
	for _, want := range []string{`"customer_messages":1,`, `"unanswered_customer_messages":1,`, `"new_wa_id":"34600999888"`} {
		if !strings.Contains(ent, want) {
			t.Errorf("chat snapshot lacks %s: %s", want, ent)
		}
	}
}
