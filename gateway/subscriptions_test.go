package gateway

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/store"
)

func TestRESTHooksLikeZapier(t *testing.T) {
	var mu sync.Mutex
	var got []HookPayload
	zap := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p HookPayload
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &p)
		mu.Lock()
		got = append(got, p)
		mu.Unlock()
		w.WriteHeader(200)
	}))
	defer zap.Close()
	var goneHits sync.WaitGroup
	goneHits.Add(1)
	var once sync.Once
	gone := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(goneHits.Done)
		w.WriteHeader(http.StatusGone)
	}))
	defer gone.Close()

	ts := startServer(t, copyConfigs(t), map[string]string{"HOOKLINE_EGRESS_ALLOW": "127.0.0.0/8"}, nil)
	subscribe := func(target, ev string) string {
		r := do(t, "POST", ts.URL+"/api/v1/subscriptions", []byte(`{"target_url": "`+target+`", "event": "`+ev+`"}`), map[string]string{"Content-Type": "application/json"})
		if r.Status != 201 {
			t.Fatalf("subscribe: %d %s", r.Status, r.Body)
		}
		return r.JSON(t)["id"].(string)
	}
	zapID := subscribe(zap.URL, "ticket.*")
	goneID := subscribe(gone.URL, "*")

	post := func(body string) {
		if r := do(t, "POST", ts.URL+"/hooks/generic", []byte(body), map[string]string{"Content-Type": "application/json"}); r.Status != 202 {
			t.Fatalf("post: %d %s", r.Status, r.Body)
		}
	}
	post(`{"type": "ticket.updated", "id": "Z-1", "status": "pending"}`)
	post(`{"type": "chat.ended", "id": "C-1"}`)

	waitFor(t, "the Zap to receive the ticket event", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 1
	})
	goneHits.Wait()
	mu.Lock()
	if p := got[0]; p.Type != "ticket.updated" || p.Reference != "Z-1" || p.Fields["status"] != "pending" || p.Connector != "generic" {
		t.Fatalf("payload %+v", p)
	}
	mu.Unlock()

	// The 410 removed the second subscription; the first remains.
	waitFor(t, "the gone subscription to be removed", func() bool {
		var list struct{ Subscriptions []struct{ ID string } }
		decodeJSON(t, do(t, "GET", ts.URL+"/api/v1/subscriptions", nil, nil).Body, &list)
		return len(list.Subscriptions) == 1 && list.Subscriptions[0].ID == zapID
	})
	// Every delivery to it ends dead: pending ones are dead-lettered with
	// the reason, one already in flight fails on its own 410.
	var dl struct {
		Deliveries []struct {
			State, Reason, Rule string
		}
	}
	waitFor(t, "every delivery to the gone target to be dead", func() bool {
		decodeJSON(t, do(t, "GET", ts.URL+"/api/v1/deliveries?connector=rest_hooks&rule=rest-hook:"+goneID, nil, nil).Body, &dl)
		dead := 0
		for _, d := range dl.Deliveries {
			if d.State == "failed" || d.State == "cancelled" {
				dead++
			}
		}
		return dead == len(dl.Deliveries) && dead > 0
	})

	// The sample endpoint lists recent events in the subscriber's shape.
	var samples []HookPayload
	decodeJSON(t, do(t, "GET", ts.URL+"/api/v1/samples?type=ticket.updated", nil, nil).Body, &samples)
	if len(samples) != 1 || samples[0].Reference != "Z-1" {
		t.Fatalf("samples %+v", samples)
	}
	// Unsubscribe stops deliveries.
	if r := do(t, "DELETE", ts.URL+"/api/v1/subscriptions/"+zapID, nil, nil); r.Status != 200 {
		t.Fatalf("unsubscribe: %d %s", r.Status, r.Body)
	}
	if r := do(t, "DELETE", ts.URL+"/api/v1/subscriptions/"+zapID, nil, nil); r.Status != 404 {
		t.Fatalf("second unsubscribe: %d", r.Status)
	}
	post(`{"type": "ticket.updated", "id": "Z-2", "status": "open"}`)
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("an unsubscribed target still received %d events", len(got))
	}
}

func TestSubscriptionPatterns(t *testing.T) {
	for _, tc := range []struct {
		pattern, typ string
		want         bool
	}{
		{"*", "ticket.updated", true},
		{"*", "timer.fired", false},
		{"timer.fired", "timer.fired", true},
		{"ticket.*", "ticket.status_changed", true},
		{"ticket.*", "chat.started", false},
		{"ticket.updated", "ticket.updated", true},
		{"ticket.updated", "ticket.updated_x", false},
	} {
		if got := subscriptionMatches(tc.pattern, tc.typ); got != tc.want {
			t.Errorf("subscriptionMatches(%q, %q) = %v", tc.pattern, tc.typ, got)
		}
	}
}

// Subscribing again with the same target and event (a no-code tool that
// retries after a timeout) answers the existing subscription, so events
// are not posted twice; an event pattern that can match nothing is
// refused.
func TestSubscribeIsIdempotentAndChecksThePattern(t *testing.T) {
	ts := startServer(t, copyConfigs(t), nil, nil)
	post := func(body string) response {
		return do(t, "POST", ts.URL+"/api/v1/subscriptions", []byte(body), map[string]string{"Content-Type": "application/json"})
	}
	first := post(`{"target_url": "https://203.0.113.7/1", "event": "ticket.updated"}`)
	again := post(`{"target_url": "https://203.0.113.7/1", "event": "ticket.updated"}`)
	if first.Status != 201 || again.Status != 200 || first.JSON(t)["id"] != again.JSON(t)["id"] {
		t.Fatalf("subscribe twice: %d %s, then %d %s; want 201 then 200 with the same id", first.Status, first.Body, again.Status, again.Body)
	}
	if other := post(`{"target_url": "https://203.0.113.7/1", "event": "ticket.*"}`); other.Status != 201 {
		t.Fatalf("another event for the same target: %d %s", other.Status, other.Body)
	}
	var list struct{ Subscriptions []map[string]any }
	decodeJSON(t, do(t, "GET", ts.URL+"/api/v1/subscriptions", nil, nil).Body, &list)
	if len(list.Subscriptions) != 2 {
		t.Fatalf("subscriptions: %v, want 2", list.Subscriptions)
	}
	for _, bad := range []string{"ticket*", "ticket.", "*.updated", "ticket updated"} {
		if r := post(`{"target_url": "https://203.0.113.7/2", "event": "` + bad + `"}`); r.Status != 400 {
			t.Errorf("event %q: %d %s, want 400", bad, r.Status, r.Body)
		}
	}
}

// A subscription whose target the egress guard refuses would dead-letter
// every delivery to it: it is refused at once, 400 with the reason, by the
// very policy delivery applies (egress.allow / HOOKLINE_EGRESS_ALLOW, the
// rest_hooks connector's allow_private, metadata addresses only by an
// explicit allow entry), for IP literals and for names, resolved. A target
// the policy allows is subscribed and receives the events, here on a real
// loopback server.
func TestSubscribeRefusesTargetsTheEgressGuardRefuses(t *testing.T) {
	var mu sync.Mutex
	received := 0
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		received++
		mu.Unlock()
		w.WriteHeader(200)
	}))
	defer hook.Close()
	port := hook.Listener.Addr().(*net.TCPAddr).Port
	loopback := fmt.Sprintf("http://127.0.0.1:%d/hook", port)
	localhost := fmt.Sprintf("http://localhost:%d/hook", port)
	ipv6Loopback := fmt.Sprintf("http://[::1]:%d/hook", port)
	const (
		metadata = "http://169.254.169.254/latest/meta-data/"
		private  = "https://10.20.30.40/hook"
		home     = "http://192.168.1.20:8080/hook"
		linkLoc  = "http://[fe80::1%25eth0]/hook"
		public   = "https://203.0.113.9/hook" // not a range the guard refuses
	)
	allowPrivateConnector := func(dir string) {
		writeFile(t, filepath.Join(dir, "connectors", "rest_hooks.yaml"), `connector: rest_hooks
description: REST hook deliveries may reach private addresses.
outbound:
  base_url: "https://hooks.example.com"
  allow_private: true
  actions:
    post: { method: POST, path: "/" }
`)
	}
	type want struct {
		target string
		status int
		reason string
	}
	for _, tt := range []struct {
		name  string
		env   map[string]string
		setup func(dir string)
		wants []want
	}{
		{"default policy", nil, nil, []want{
			{loopback, 400, "loopback address"},
			{localhost, 400, "loopback address"},
			{ipv6Loopback, 400, "loopback address"},
			{private, 400, "private address"},
			{home, 400, "private address"},
			{linkLoc, 400, "link-local address"},
			{metadata, 400, "cloud metadata address"},
			{public, 201, ""},
			// A name that does not resolve now may later: delivery checks then.
			{"https://hooks.invalid/x", 201, ""},
		}},
		{"egress allow for loopback", map[string]string{"HOOKLINE_EGRESS_ALLOW": "127.0.0.0/8"}, nil, []want{
			{loopback, 201, ""},
			{ipv6Loopback, 400, "loopback address"},
			{private, 400, "private address"},
			{metadata, 400, "cloud metadata address"},
		}},
		{"allow_private of the rest_hooks connector", nil, allowPrivateConnector, []want{
			{loopback, 201, ""},
			{private, 201, ""},
			{metadata, 400, "cloud metadata address"},
		}},
		{"egress allow for the metadata address", map[string]string{"HOOKLINE_EGRESS_ALLOW": "169.254.169.254/32"}, nil, []want{
			{metadata, 201, ""},
			{loopback, 400, "loopback address"},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := copyConfigs(t)
			if tt.setup != nil {
				tt.setup(dir)
			}
			ts := startServer(t, dir, tt.env, nil)
			subscribed := 0
			for _, w := range tt.wants {
				r := do(t, "POST", ts.URL+"/api/v1/subscriptions", []byte(`{"target_url": "`+w.target+`", "event": "ticket.*"}`),
					map[string]string{"Content-Type": "application/json"})
				if r.Status != w.status || !strings.Contains(string(r.Body), w.reason) {
					t.Errorf("subscribe %s: %d %s, want %d with %q", w.target, r.Status, r.Body, w.status, w.reason)
				}
				if w.status == 201 {
					subscribed++
				} else if !strings.Contains(string(r.Body), "target_url") {
					t.Errorf("subscribe %s: the reason does not name target_url: %s", w.target, r.Body)
				}
			}
			var list struct{ Subscriptions []map[string]any }
			decodeJSON(t, do(t, "GET", ts.URL+"/api/v1/subscriptions", nil, nil).Body, &list)
			if len(list.Subscriptions) != subscribed {
				t.Fatalf("%d subscriptions stored, want %d: %v", len(list.Subscriptions), subscribed, list.Subscriptions)
			}
			if !slices.ContainsFunc(tt.wants, func(w want) bool { return w.target == loopback && w.status == 201 }) {
				return
			}
			// The loopback subscription allowed gets its events.
			mu.Lock()
			before := received
			mu.Unlock()
			if r := do(t, "POST", ts.URL+"/hooks/generic", []byte(`{"type": "ticket.updated", "id": "EG-1"}`), map[string]string{"Content-Type": "application/json"}); r.Status != 202 {
				t.Fatalf("post: %d %s", r.Status, r.Body)
			}
			waitFor(t, "the loopback subscriber to get the event", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return received > before
			})
		})
	}
}

// Unsubscribing (a Zap turned off) cancels the deliveries still waiting for
// the subscription: a target that was failing gets nothing once it recovers.
func TestUnsubscribeCancelsWaitingDeliveries(t *testing.T) {
	h := newFailingHookTarget(t)
	ts, id, up, hits, delivered := h.ts, h.id, &h.up, &h.hits, &h.delivered
	deliveries := func() []map[string]any {
		t.Helper()
		var out struct {
			Deliveries []map[string]any `json:"deliveries"`
		}
		decodeJSON(t, do(t, "GET", ts.URL+"/api/v1/deliveries?rule=rest-hook:"+id, nil, nil).Body, &out)
		return out.Deliveries
	}
	waitFor(t, "a failed first attempt, waiting for its retry", func() bool {
		ds := deliveries()
		return hits.Load() > 0 && len(ds) == 1 && ds[0]["state"] == "pending"
	})
	if r := do(t, "DELETE", ts.URL+"/api/v1/subscriptions/"+id, nil, nil); r.Status != 200 {
		t.Fatalf("unsubscribe: %d %s", r.Status, r.Body)
	}
	up.Store(true)
	ds := deliveries()
	if len(ds) != 1 || ds[0]["state"] != "cancelled" || !strings.Contains(fmt.Sprint(ds[0]["reason"]), "unsubscribed") {
		t.Fatalf("the waiting delivery after unsubscribe: %v, want cancelled, unsubscribed", ds)
	}
	if n := delivered.Load(); n != 0 {
		t.Fatalf("the target received %d event(s) after the unsubscribe", n)
	}
}

// The samples endpoint takes the patterns subscriptions take, so that the
// field picker of a ticket.* trigger shows fields.
func TestSamplesTakeSubscriptionPatterns(t *testing.T) {
	ts := startServer(t, copyConfigs(t), nil, nil)
	for _, body := range []string{`{"type": "ticket.updated", "id": "S-1", "status": "open"}`, `{"type": "chat.started", "id": "C-1"}`} {
		if r := do(t, "POST", ts.URL+"/hooks/generic", []byte(body), map[string]string{"Content-Type": "application/json"}); r.Status != 202 {
			t.Fatalf("post: %d %s", r.Status, r.Body)
		}
	}
	samples := func(typ string) []HookPayload {
		t.Helper()
		var got []HookPayload
		r := do(t, "GET", ts.URL+"/api/v1/samples?type="+url.QueryEscape(typ), nil, nil)
		if r.Status != 200 {
			t.Fatalf("samples?type=%s: %d %s", typ, r.Status, r.Body)
		}
		decodeJSON(t, r.Body, &got)
		return got
	}
	waitFor(t, "both events", func() bool { return len(samples("*")) == 2 })
	for typ, want := range map[string]string{"ticket.*": "ticket.updated", "chat.*": "chat.started", "ticket.updated": "ticket.updated"} {
		if got := samples(typ); len(got) != 1 || got[0].Type != want {
			t.Errorf("samples?type=%s: %+v, want one %s", typ, got, want)
		}
	}
	if got := samples("task.*"); len(got) != 0 {
		t.Errorf("samples?type=task.*: %+v, want none", got)
	}
	if r := do(t, "GET", ts.URL+"/api/v1/samples?type=ti*et", nil, nil); r.Status != 400 {
		t.Errorf("a pattern subscriptions refuse: %d %s, want 400", r.Status, r.Body)
	}
}

// A REST-hook delivery that escaped the unsubscribe's cancelling (it was
// in flight, and its attempt failed) is withdrawn at its retry: the
// target that recovers gets nothing.
func TestRetryOfAnUnsubscribedHookIsWithdrawn(t *testing.T) {
	h := newFailingHookTarget(t)
	ts, id, up, delivered := h.ts, h.id, &h.up, &h.delivered
	var del *store.Delivery
	waitFor(t, "a failed first attempt", func() bool {
		ds, _, err := ts.Store().ListDeliveries(store.DeliveryFilter{Rule: restHookRulePrefix + id})
		if err != nil || len(ds) != 1 || ds[0].State != store.DeliveryPending || len(ds[0].Attempts) == 0 {
			return false
		}
		del = ds[0]
		return true
	})
	// The subscription goes without the cancelling an unsubscribe does,
	// as for a delivery that was in flight at that moment.
	if err := ts.Store().Update(func(tx *store.Tx) error { return tx.DeleteSubscription(id) }); err != nil {
		t.Fatal(err)
	}
	if err := ts.loadSubscriptions(); err != nil {
		t.Fatal(err)
	}
	up.Store(true)
	waitFor(t, "the retry withdrawn", func() bool {
		d, err := ts.Store().Delivery(del.ID)
		return err == nil && d.State == store.DeliveryCancelled && strings.Contains(d.Reason, "unsubscribed")
	})
	if n := delivered.Load(); n != 0 {
		t.Fatalf("the target received %d event(s) after the subscription was removed", n)
	}
}

// failingHookTarget is a REST-hook subscriber answering 503 until up is
// set, subscribed (id) to ticket.* on a gateway (ts) that has already been
// posted one ticket.updated event for it.
type failingHookTarget struct {
	ts              *testServer
	id              string
	up              atomic.Bool
	hits, delivered atomic.Int32
}

func newFailingHookTarget(t *testing.T) *failingHookTarget {
	t.Helper()
	h := &failingHookTarget{}
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.hits.Add(1)
		if !h.up.Load() {
			w.WriteHeader(503)
			return
		}
		h.delivered.Add(1)
	}))
	t.Cleanup(target.Close)
	h.ts = startServer(t, copyConfigs(t), map[string]string{"HOOKLINE_EGRESS_ALLOW": "127.0.0.0/8"}, nil)
	r := do(t, "POST", h.ts.URL+"/api/v1/subscriptions", []byte(`{"target_url": "`+target.URL+`", "event": "ticket.*"}`), map[string]string{"Content-Type": "application/json"})
	if r.Status != 201 {
		t.Fatalf("subscribe: %d %s", r.Status, r.Body)
	}
	h.id = r.JSON(t)["id"].(string)
	if r := do(t, "POST", h.ts.URL+"/hooks/generic", []byte(`{"type": "ticket.updated", "id": "U-1", "status": "open"}`), map[string]string{"Content-Type": "application/json"}); r.Status != 202 {
		t.Fatalf("post: %d %s", r.Status, r.Body)
	}
	return h
}

// A 410 from a subscriber is handled off the dispatcher's loop: OnGone,
// which the loop calls between its store transactions, returns at once
// even while the store's writer is busy, and the subscription's waiting
// deliveries (found through the reference index, cancelled in batches)
// are cancelled afterwards; other deliveries are left alone.
func TestGoneSubscriberIsHandledOffTheDispatcherLoop(t *testing.T) {
	gone := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusGone) }))
	defer gone.Close()
	const waiting = 600
	var others []string
	ts := startServerWith(t, copyConfigs(t), map[string]string{"HOOKLINE_EGRESS_ALLOW": "127.0.0.0/8"}, nil, func(s *Server) {
		later := time.Now().Add(time.Hour) // waiting for a retry
		err := s.db.Update(func(tx *store.Tx) error {
			if err := tx.PutSubscription(store.Subscription{ID: "sub1", TargetURL: gone.URL, Event: "*", CreatedAt: time.Now()}); err != nil {
				return err
			}
			add := func(connector, ref, rule string) (string, error) {
				d := &store.Delivery{Connector: connector, Entity: "ticket", Reference: ref, RuleID: rule, NextAt: later,
					Update:  event.Update{Kind: event.KindCallWebhook},
					Request: store.Request{Method: "POST", URL: gone.URL, Body: []byte(`{}`)}}
				err := tx.AddDelivery(d)
				return d.ID, err
			}
			for i := range waiting {
				if _, err := add(restHooksConnector, fmt.Sprintf("sub1/zendesk/%d", i), restHookRulePrefix+"sub1"); err != nil {
					return err
				}
			}
			for _, o := range [][3]string{{restHooksConnector, "sub10/zendesk/1", restHookRulePrefix + "sub10"}, {"zendesk", "sub1/zendesk/1", "escalate"}} {
				id, err := add(o[0], o[1], o[2])
				if err != nil {
					return err
				}
				others = append(others, id)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.loadSubscriptions(); err != nil {
			t.Fatal(err)
		}
	})
	// Someone else holds the store's writer (the pipeline's batch, say).
	holding, release := make(chan struct{}), make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- ts.db.Update(func(tx *store.Tx) error {
			close(holding)
			select {
			case <-release:
			case <-time.After(2 * time.Second):
			}
			return nil
		})
	}()
	<-holding
	d := &store.Delivery{ID: "01JGONE000000000000000000", Connector: restHooksConnector, Reference: "sub1/zendesk/x",
		RuleID: restHookRulePrefix + "sub1", State: store.DeliveryFailed, Reason: "target gone (410): subscription disabled",
		Request: store.Request{Method: "POST", URL: gone.URL}}
	t0 := time.Now()
	for range 20 { // every 410 of the subscription's deliveries in flight
		ts.onGone(d)
	}
	took := time.Since(t0)
	close(release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if took > 500*time.Millisecond {
		t.Fatalf("OnGone took %v while the store's writer was busy: it must not wait for the store on the dispatcher's loop", took.Round(time.Millisecond))
	}
	waitFor(t, "the subscription to be removed and its waiting deliveries cancelled", func() bool {
		if slices.ContainsFunc(ts.subscriptions(), func(s store.Subscription) bool { return s.ID == "sub1" }) {
			return false
		}
		st, err := ts.db.Stats()
		return err == nil && st.Deliveries[store.DeliveryCancelled] == waiting
	})
	ds, _, err := ts.db.ListDeliveries(store.DeliveryFilter{State: store.DeliveryCancelled, Limit: 1})
	if err != nil || len(ds) != 1 || !strings.Contains(ds[0].Reason, "target gone (410): subscription sub1 removed") {
		t.Fatalf("a cancelled delivery: %v %v", ds, err)
	}
	for _, id := range others {
		if d, err := ts.db.Delivery(id); err != nil || d.State != store.DeliveryPending {
			t.Fatalf("delivery %s, not the subscription's: %+v %v, want pending", id, d, err)
		}
	}
}
