package delivery

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/hookline/hookline/connectors"
	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/store"
)

// webhookDelivery is a call_webhook delivery as the pipeline makes it: the
// rule's connector (the event's, or deliver_to) and the event's reference.
func webhookDelivery(connector, reference, url string) *store.Delivery {
	return &store.Delivery{
		Connector: connector, Entity: "ticket", Reference: reference, RuleID: "notify-ops", EventID: "ev-1",
		Update:  event.Update{Kind: event.KindCallWebhook, Connector: connector, Entity: "ticket", Reference: reference, Hops: 1},
		Request: store.Request{Method: "POST", URL: url, Body: []byte(`{"ticket":"` + reference + `"}`)},
		Hops:    1,
	}
}

// A rule's call_webhook to a third-party URL that is down does not count
// against the breaker of the rule's connector: updates of other tickets to
// a healthy Zendesk still go out.
func TestCallWebhookFailuresLeaveTheConnectorsBreakerClosed(t *testing.T) {
	_, ops := serve(t, func(n int, r *http.Request, w http.ResponseWriter) int { return status(w, 503, "down") })
	_, zd := serve(t, func(n int, r *http.Request, w http.ResponseWriter) int { return status(w, 200, `{}`) })
	clk := newRunningClock()
	db := openDB(t, clk.Now)
	out := outbound("zendesk", zd.URL)
	out.Breaker = connectors.DefaultBreakerConfig() // 5 consecutive failures, 30 s cool-down
	start(t, db, map[string]*connectors.Outbound{"zendesk": out}, Config{Now: clk.Now})
	var hooks []*store.Delivery
	for i := range 6 {
		hooks = append(hooks, webhookDelivery("zendesk", fmt.Sprintf("W%d", i), ops.URL+"/page"))
	}
	enqueue(t, db, hooks...)
	// Each failed its first attempt: the webhooks' breaker has seen them.
	for _, h := range hooks {
		waitFor(t, db, h.ID, "a failed first attempt", func(d *store.Delivery) bool { return len(d.Attempts) >= 1 })
	}
	upd := httpDelivery("zendesk", "T1", zd.URL+"/api/v2/tickets/T1.json", `{"ticket":{"priority":"high"}}`)
	enqueue(t, db, upd)
	if got := waitFinal(t, db, upd.ID); got.State != store.DeliverySucceeded || len(got.Attempts) != 1 {
		t.Fatalf("Zendesk update of another ticket, Zendesk healthy: %s\nwant succeeded at once: the ops webhook's failures are not Zendesk's", describe(got))
	}
}

// call_webhooks to the same destination and reference keep their order.
func TestCallWebhooksToOneDestinationKeepTheirOrder(t *testing.T) {
	rc, ops := serve(t, func(n int, r *http.Request, w http.ResponseWriter) int {
		if n < 3 { // the first attempt, with its in-process retries
			return status(w, 503, "once")
		}
		return status(w, 200, `{}`)
	})
	clk := newRunningClock()
	db := openDB(t, clk.Now)
	start(t, db, nil, Config{Now: clk.Now})
	first := webhookDelivery("zendesk", "T1", ops.URL+"/a")
	second := webhookDelivery("zendesk", "T1", ops.URL+"/b")
	enqueue(t, db, first, second)
	// The first waits for its retry (5 s by default): the second waits behind it.
	waitFor(t, db, first.ID, "a failed first attempt", func(d *store.Delivery) bool { return len(d.Attempts) == 1 })
	time.Sleep(200 * time.Millisecond)
	if d, _ := db.Delivery(second.ID); d.State != store.DeliveryPending || len(d.Attempts) != 0 {
		t.Fatalf("the second webhook of T1 to the same destination: %s\nwant waiting behind the first", describe(d))
	}
	for _, r := range rc.requests() {
		if r.path != "/a" {
			t.Fatalf("a request to %s before the first webhook succeeded", r.path)
		}
	}
}

// Every REST-hook subscriber's destination has a breaker of its own: one
// that is down does not hold back the deliveries of a healthy one.
func TestRESTHookSubscribersHaveBreakersOfTheirOwn(t *testing.T) {
	_, dead := serve(t, func(n int, r *http.Request, w http.ResponseWriter) int { return status(w, 503, "down") })
	_, healthy := serve(t, func(n int, r *http.Request, w http.ResponseWriter) int { return status(w, 200, `{}`) })
	clk := newRunningClock()
	db := openDB(t, clk.Now)
	start(t, db, nil, Config{Now: clk.Now}) // rest_hooks is not a configured connector: defaults
	var hooks []*store.Delivery
	for i := range 6 {
		hooks = append(hooks, webhookDelivery("rest_hooks", fmt.Sprintf("subA/zendesk/%d", i), dead.URL))
	}
	enqueue(t, db, hooks...)
	for _, h := range hooks {
		waitFor(t, db, h.ID, "the dead subscriber's first attempt", func(d *store.Delivery) bool { return len(d.Attempts) >= 1 })
	}
	ok := webhookDelivery("rest_hooks", "subB/zendesk/1", healthy.URL)
	enqueue(t, db, ok)
	if got := waitFinal(t, db, ok.ID); got.State != store.DeliverySucceeded || len(got.Attempts) != 1 {
		t.Fatalf("healthy subscriber B's delivery: %s\nwant succeeded at once: subscriber A's dead endpoint must not hold it back", describe(got))
	}
}

// A call_webhook waiting for its retry does not hold the updates of its
// ticket to the rule's connector: they are in queues of their own.
func TestCallWebhookDoesNotHoldTheTicketsUpdates(t *testing.T) {
	_, ops := serve(t, func(n int, r *http.Request, w http.ResponseWriter) int { return status(w, 503, "down") })
	_, zd := serve(t, func(n int, r *http.Request, w http.ResponseWriter) int { return status(w, 200, `{}`) })
	clk := newRunningClock()
	db := openDB(t, clk.Now)
	out := outbound("zendesk", zd.URL)
	out.Retry.Schedule = []time.Duration{time.Hour} // zendesk's: one durable retry, an hour later
	start(t, db, map[string]*connectors.Outbound{"zendesk": out}, Config{Now: clk.Now})
	hook := webhookDelivery("zendesk", "T1", ops.URL+"/page")
	upd := httpDelivery("zendesk", "T1", zd.URL+"/api/v2/tickets/T1.json", `{"ticket":{"status":"solved"}}`)
	enqueue(t, db, hook, upd)
	if got := waitFinal(t, db, upd.ID); got.State != store.DeliverySucceeded {
		t.Fatalf("Zendesk update of T1: %s", describe(got))
	}
	// The webhook retries on the default schedule (5 s first), not on
	// zendesk's: it is still waiting.
	h := waitFor(t, db, hook.ID, "the webhook's first attempt", func(d *store.Delivery) bool { return len(d.Attempts) > 0 })
	if h.State != store.DeliveryPending || len(h.Attempts) != 1 {
		t.Fatalf("the ops webhook of T1: %s\nwant pending after one attempt, on the default retry schedule", describe(h))
	}
}
