package delivery

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
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

// webhookHostsOf returns the destination hosts the dispatcher holds a
// call_webhook target for under connector.
func webhookHostsOf(d *Dispatcher, connector string) map[string]*target {
	d.mu.RLock()
	defer d.mu.RUnlock()
	hosts := make(map[string]*target)
	for k, tg := range d.webhooks {
		if k.connector == connector {
			hosts[k.host] = tg
		}
	}
	return hosts
}

// hostOf is the webhook target key of a test server's URL.
func hostOf(srv *httptest.Server) string { return webhookHost(srv.URL) }

// Destination hosts come and go (a REST-hook subscription per Zap): the
// target of one that has had no delivery for an hour is dropped, with its
// idle connections, so the dispatcher does not hold every host it ever
// sent to. A host whose breaker is open keeps its target (the breaker's
// state is what protects it), and so does one with a delivery in flight.
func TestIdleWebhookTargetsAreDropped(t *testing.T) {
	clk := newFakeClock() // frozen: only Advance moves it
	db := openDB(t, clk.Now)
	r := start(t, db, nil, Config{Now: clk.Now})

	// Many subscribers, each its own host, each sent one delivery; their
	// connections stay open (keep-alive) until the client closes them.
	var conns atomic.Int64
	var idle []*httptest.Server
	var dels []*store.Delivery
	for i := range 12 {
		srv := httptest.NewUnstartedServer(&recorder{reply: func(n int, r *http.Request, w http.ResponseWriter) int { return status(w, 200, `{}`) }})
		srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				conns.Add(1)
			case http.StateClosed, http.StateHijacked:
				conns.Add(-1)
			}
		}
		srv.Start()
		t.Cleanup(srv.Close)
		idle = append(idle, srv)
		dels = append(dels, webhookDelivery("rest_hooks", fmt.Sprintf("sub%d/zendesk/1", i), srv.URL+"/hook"))
	}
	// A subscriber whose endpoint is broken: 501 fails a delivery at once
	// (no retry) and counts against its breaker, which opens after 5.
	_, broken := serve(t, func(n int, r *http.Request, w http.ResponseWriter) int { return status(w, 501, "nope") })
	for i := range 5 {
		dels = append(dels, webhookDelivery("rest_hooks", fmt.Sprintf("broken/zendesk/%d", i), broken.URL+"/hook"))
	}
	enqueue(t, db, dels...)
	for _, del := range dels {
		waitFinal(t, db, del.ID)
	}
	if got := len(webhookHostsOf(r.d, "rest_hooks")); got != len(idle)+1 {
		t.Fatalf("%d webhook targets after sending to %d hosts", got, len(idle)+1)
	}
	if tg := webhookHostsOf(r.d, "rest_hooks")[hostOf(broken)]; tg == nil || !tg.breakerOpen() {
		t.Fatal("the broken subscriber's breaker is not open after 5 failures")
	}
	if conns.Load() == 0 {
		t.Fatal("no keep-alive connection left open to the subscribers: nothing to see closed")
	}

	// A subscriber whose delivery is in flight while the clock moves on.
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	_, slow := serve(t, func(n int, r *http.Request, w http.ResponseWriter) int {
		arrived <- struct{}{}
		<-release
		return status(w, 200, `{}`)
	})
	defer close(release)
	inflight := webhookDelivery("rest_hooks", "slow/zendesk/1", slow.URL+"/hook")
	enqueue(t, db, inflight)
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow subscriber's delivery was not sent")
	}

	// Two hours later a new subscriber's first delivery goes out.
	clk.Advance(2 * time.Hour)
	_, fresh := serve(t, func(n int, r *http.Request, w http.ResponseWriter) int { return status(w, 200, `{}`) })
	first := webhookDelivery("rest_hooks", "fresh/zendesk/1", fresh.URL+"/hook")
	enqueue(t, db, first)
	if got := waitFinal(t, db, first.ID); got.State != store.DeliverySucceeded {
		t.Fatalf("the new subscriber's delivery: %s", describe(got))
	}

	hosts := webhookHostsOf(r.d, "rest_hooks")
	for _, srv := range idle {
		if hosts[hostOf(srv)] != nil {
			t.Errorf("host %s, idle for 2 hours with a closed breaker, still has a target", hostOf(srv))
		}
	}
	for what, srv := range map[string]*httptest.Server{"broken (breaker open)": broken, "slow (delivery in flight)": slow, "new": fresh} {
		if hosts[hostOf(srv)] == nil {
			t.Errorf("the %s subscriber's target was dropped", what)
		}
	}
	if tg := hosts[hostOf(broken)]; tg != nil && !tg.breakerOpen() {
		t.Error("the broken subscriber's breaker state was lost")
	}
	// The dropped targets' idle connections are closed.
	deadline := time.Now().Add(10 * time.Second)
	for conns.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("%d connections to dropped hosts still open", n)
	}
}
