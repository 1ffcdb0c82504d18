package gateway

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
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

// The auth scheme of the Authorization header is case-insensitive (RFC
// 9110 §11.1): "bearer", "BEARER" and "Bearer" all carry the admin token,
// with one or more spaces before it; anything else is refused.
func TestAdminTokenSchemeIsCaseInsensitive(t *testing.T) {
	ts := startServer(t, copyConfigs(t), map[string]string{"HOOKLINE_ADMIN_TOKEN": "s3cret"}, nil)
	for _, tt := range []struct {
		authorization string
		status        int
	}{
		{"Bearer s3cret", 200},
		{"bearer s3cret", 200},
		{"BEARER s3cret", 200},
		{"bEaReR s3cret", 200},
		{"Bearer   s3cret", 200},
		{"", 401},
		{"Bearer", 401},
		{"Bearer ", 401},
		{"bearer wrong", 401},
		{"Basic s3cret", 401},
		{"Bearers3cret", 401},
		{"s3cret", 401},
		{"Bearer s3cret extra", 401},
	} {
		r := do(t, "GET", ts.URL+"/api/v1/events", nil, map[string]string{"Authorization": tt.authorization})
		if r.Status != tt.status {
			t.Errorf("Authorization %q: %d %s, want %d", tt.authorization, r.Status, r.Body, tt.status)
		}
		if tt.status == 401 && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("Authorization %q: 401 without a Bearer challenge: %v", tt.authorization, r.Header)
		}
	}
}

// Bad query parameters of the admin API's list (and bulk) endpoints are
// the client's mistake: 400 with a reason that says what is wanted, never
// a 500.
func TestListEndpointsRefuseBadQueryWith400(t *testing.T) {
	ts := startServer(t, copyConfigs(t), nil, nil)
	for _, tt := range []struct {
		method, path string
		reason       string
	}{
		{"GET", "/api/v1/deliveries?state=bogus", "want one of pending, in_flight, succeeded, failed, cancelled"},
		{"GET", "/api/v1/deliveries?state=Failed", "want one of pending, in_flight, succeeded, failed, cancelled"},
		{"GET", "/api/v1/deliveries?since=yesterday", "since must be an RFC 3339 time or a duration"},
		{"GET", "/api/v1/deliveries?limit=0", "limit must be a positive whole number"},
		{"GET", "/api/v1/deliveries?limit=ten", "limit must be a positive whole number"},
		{"GET", "/api/v1/deliveries?connector=zendesk%00x&reference=1", "NUL"},
		{"GET", "/api/v1/deliveries?connector=zendesk&reference=1%00", "NUL"},
		{"POST", "/api/v1/deliveries/retry?state=bogus", "only failed or cancelled deliveries can be retried"},
		{"POST", "/api/v1/deliveries/retry?state=pending", "only failed or cancelled deliveries can be retried"},
		{"POST", "/api/v1/deliveries/retry?since=soon", "since must be an RFC 3339 time or a duration"},
		{"POST", "/api/v1/deliveries/retry?limit=-3", "limit must be a positive whole number"},
		{"GET", "/api/v1/events?since=bogus", "since must be an RFC 3339 time or a duration"},
		{"GET", "/api/v1/events?limit=1.5", "limit must be a positive whole number"},
		{"GET", "/api/v1/events?connector=generic%00&entity=ticket&reference=1", "NUL"},
		{"GET", "/api/v1/events?connector=generic&entity=ticket&reference=1%00", "NUL"},
		{"GET", "/api/v1/inbox?state=bogus", "want one of pending, processed, unmapped, failed"},
		{"GET", "/api/v1/inbox?limit=none", "limit must be a positive whole number"},
		{"POST", "/api/v1/inbox/replay?state=bogus", "want one of pending, processed, unmapped, failed"},
		{"POST", "/api/v1/inbox/replay?limit=0", "limit must be a positive whole number"},
		{"GET", "/api/v1/timers?due_before=tomorrow", "due_before must be an RFC 3339 time"},
		{"GET", "/api/v1/timers?limit=-1", "limit must be a positive whole number"},
		{"GET", "/api/v1/samples?limit=x", "limit must be a positive whole number"},
	} {
		r := do(t, tt.method, ts.URL+tt.path, nil, nil)
		if r.Status != 400 || !strings.Contains(string(r.Body), tt.reason) {
			t.Errorf("%s %s: %d %s, want 400 with %q", tt.method, tt.path, r.Status, r.Body, tt.reason)
		}
	}
}

// A bulk retry that stops at its limit says that more remain and where to
// go on: more and next_cursor, which the next call takes as cursor. The
// deliveries it retried and that failed again at once are newer than the
// cursor, so going on does not retry them a second time: following the
// cursor retries every dead letter exactly once.
func TestBulkRetrySaysMoreRemainAndContinues(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest) // dead at once, again
	}))
	defer target.Close()
	const n = 7
	var all []string
	ts := startServerWith(t, copyConfigs(t), map[string]string{"HOOKLINE_EGRESS_ALLOW": "127.0.0.0/8"}, nil, func(s *Server) {
		err := s.db.Update(func(tx *store.Tx) error {
			for i := range n {
				d := &store.Delivery{Connector: restHooksConnector, Entity: "ticket", Reference: fmt.Sprintf("R-%d", i),
					Update:  event.Update{Kind: event.KindCallWebhook},
					Request: store.Request{Method: "POST", URL: target.URL}}
				if err := tx.AddDelivery(d); err != nil {
					return err
				}
				all = append(all, d.ID)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		claimed, err := s.db.ClaimDue(time.Now(), 100)
		if err != nil || len(claimed) != n {
			t.Fatalf("claim: %d %v", len(claimed), err)
		}
		for _, d := range claimed {
			if err := s.db.FinishDelivery(d.ID, &store.Attempt{At: time.Now(), Status: 400}, store.DeliveryFailed, time.Time{}, "refused", nil); err != nil {
				t.Fatal(err)
			}
		}
	})
	type answer struct {
		Retried    int      `json:"retried"`
		IDs        []string `json:"ids"`
		More       *bool    `json:"more"`
		NextCursor *string  `json:"next_cursor"`
	}
	failedAgain := func(ids []string) {
		t.Helper()
		waitFor(t, "the retried deliveries to fail again", func() bool {
			for _, id := range ids {
				d, err := ts.db.Delivery(id)
				if err != nil || d.State != store.DeliveryFailed || len(d.Attempts) != 2 {
					return false
				}
			}
			return true
		})
	}
	var retried []string
	cursor := ""
	for _, want := range []struct {
		retried int
		more    bool
	}{{3, true}, {3, true}, {1, false}} {
		path := "/api/v1/deliveries/retry?limit=3"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r := do(t, "POST", ts.URL+path, nil, nil)
		var a answer
		decodeJSON(t, r.Body, &a)
		if r.Status != 200 || a.Retried != want.retried || len(a.IDs) != want.retried || a.More == nil || *a.More != want.more ||
			a.NextCursor == nil || (*a.NextCursor != "") != want.more {
			t.Fatalf("POST %s: %d %s; want %d retried, more %v and a next_cursor when more", path, r.Status, r.Body, want.retried, want.more)
		}
		failedAgain(a.IDs)
		retried = append(retried, a.IDs...)
		cursor = *a.NextCursor
	}
	slices.Sort(retried)
	if !slices.Equal(retried, all) {
		t.Fatalf("retried %v, want each of %v once", retried, all)
	}
	// Nothing matches: an empty list, no more.
	r := do(t, "POST", ts.URL+"/api/v1/deliveries/retry?connector=nobody", nil, nil)
	if r.Status != 200 || !strings.Contains(string(r.Body), `"ids":[]`) || !strings.Contains(string(r.Body), `"more":false`) {
		t.Fatalf("bulk retry of nothing: %d %s", r.Status, r.Body)
	}
}

// Without the admin token, a web page open in a browser on the gateway's
// machine must not use the admin API: a cross-site simple POST (no CORS
// preflight) and a DNS-rebound Host are refused; tools are served.
func TestTokenlessAdminAPIRefusesWebPages(t *testing.T) {
	ts := startServer(t, copyConfigs(t), nil, nil)
	sub := []byte(`{"target_url":"http://203.0.113.7/collect","event":"*"}`)
	for _, h := range []map[string]string{
		{"Content-Type": "text/plain;charset=UTF-8"},
		{"Content-Type": "application/json", "Origin": "http://evil.example"},
		{"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"},
	} {
		if r := do(t, "POST", ts.URL+"/api/v1/subscriptions", sub, h); r.Status != 403 {
			t.Errorf("subscribe with %v: %d %s, want 403", h, r.Status, r.Body)
		}
	}
	req, _ := http.NewRequest("GET", ts.URL+"/api/v1/events", nil)
	req.Host = "rebind.evil.example:8080"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("GET /api/v1/events with Host %q (DNS rebinding): %d, want 403", req.Host, resp.StatusCode)
	}
	if r := do(t, "POST", ts.URL+"/api/v1/subscriptions", sub, map[string]string{"Content-Type": "application/json"}); r.Status != 201 {
		t.Errorf("subscribe from a tool: %d %s, want 201", r.Status, r.Body)
	}
	req, _ = http.NewRequest("GET", ts.URL+"/api/v1/events", nil)
	req.Host = "localhost:8080"
	if resp, err = http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("GET /api/v1/events with Host localhost: %v %v, want 200", resp.StatusCode, err)
	}
	resp.Body.Close()
}

func TestNotFromABrowserPage(t *testing.T) {
	for _, c := range []struct {
		method, host string
		headers      map[string]string
		want         bool
	}{
		{"GET", "127.0.0.1:8080", nil, true},
		{"GET", "localhost", nil, true},
		{"GET", "api.localhost:8080", nil, true},
		{"GET", "[::1]:8080", nil, true},
		{"GET", "127.8.9.10", nil, true},
		{"GET", "example.com", nil, false},
		{"GET", "10.0.0.1:8080", nil, false},
		{"GET", "localhost.evil.example", nil, false},
		{"GET", "127.0.0.1", map[string]string{"Origin": "null"}, false},
		{"GET", "127.0.0.1", map[string]string{"Sec-Fetch-Site": "same-site"}, false},
		{"GET", "127.0.0.1", map[string]string{"Sec-Fetch-Site": "none"}, true},
		{"POST", "127.0.0.1", map[string]string{"Content-Type": "application/json"}, true},
		{"POST", "127.0.0.1", nil, true}, // no body (retry, reload)
		{"POST", "127.0.0.1", map[string]string{"Content-Type": "Multipart/Form-Data; boundary=x"}, false},
		{"DELETE", "127.0.0.1", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, false},
		{"GET", "127.0.0.1", map[string]string{"Content-Type": "text/plain"}, true},
	} {
		get := func(k string, _ ...string) string { return c.headers[k] }
		if ok, why := notFromABrowserPage(c.method, c.host, get); ok != c.want {
			t.Errorf("%s Host %q %v: allowed %v (%s), want %v", c.method, c.host, c.headers, ok, why, c.want)
		}
	}
}

// A delivery whose request could not be built (here the connector had no
// update_ticket action) is built again when retried after the config is
// fixed, and sent; retried while the config is still broken it stays
// failed and the answer says why.
func TestRetryRebuildsADeliveryThatCouldNotBeRendered(t *testing.T) {
	var got atomic.Int32
	desk := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got.Add(1) }))
	defer desk.Close()
	connector := fmt.Sprintf(pingPongConnector, "desk", "DESK_URL")
	broken := strings.Replace(connector, "    update_ticket:", "    update_tickets:", 1)
	dir := deskConfig(t, broken, `rules:
  - id: solve
    on: [ticket.updated]
    connector: desk
    when: { field: status, is: open }
    then:
      - update_ticket: { reference: "%%TICKET_REFERENCE%%", status: solved }
`)
	ts := startServer(t, dir, map[string]string{"DESK_URL": desk.URL}, nil)
	applyToDesk(t, ts, "", map[string]any{"status": "open"})
	ds, _, err := ts.Store().ListDeliveries(store.DeliveryFilter{Rule: "solve"})
	if err != nil || len(ds) != 1 || ds[0].State != store.DeliveryFailed || !strings.Contains(ds[0].Reason, "update_ticket") {
		t.Fatalf("deliveries %+v %v, want one failed for the missing action", ds, err)
	}
	id := ds[0].ID
	if r := do(t, "POST", ts.URL+"/api/v1/deliveries/"+id+"/retry", nil, nil); r.Status != 422 || !strings.Contains(string(r.Body), "update_ticket") {
		t.Fatalf("retry with the config still broken: %d %s, want 422 with the reason", r.Status, r.Body)
	}
	writeFile(t, filepath.Join(dir, "connectors", "desk.yaml"), connector)
	if err := ts.Reload(); err != nil {
		t.Fatal(err)
	}
	if r := do(t, "POST", ts.URL+"/api/v1/deliveries/"+id+"/retry", nil, nil); r.Status != 200 {
		t.Fatalf("retry after the fix: %d %s", r.Status, r.Body)
	}
	waitFor(t, "the rebuilt delivery at the platform", func() bool {
		d, err := ts.Store().Delivery(id)
		return err == nil && d.State == store.DeliverySucceeded && got.Load() == 1
	})
	if d, _ := ts.Store().Delivery(id); d.Request.Method != "PUT" || !strings.HasSuffix(d.Request.URL, "/tickets/T1") {
		t.Fatalf("rebuilt request %s %s", d.Request.Method, d.Request.URL)
	}
	// The platform echoes the change: it is known as the gateway's own.
	echo := &event.Event{Connector: "desk", Type: "ticket.updated", Entity: "ticket", Reference: "T1",
		Actor: event.Actor{Type: "system"}, Fields: map[string]any{"status": "solved"}, Vars: map[string]string{"TICKET_REFERENCE": "T1"}}
	if err := ts.ApplyEvents([]*event.Event{echo}); err != nil {
		t.Fatal(err)
	}
	if !echo.Causation.Echo || echo.Causation.DeliveryID != id {
		t.Fatalf("the echo of the rebuilt delivery: causation %+v, want an echo of %s", echo.Causation, id)
	}
}

// A bulk retry keeps creation order per (connector, reference) while the
// dispatcher runs: two dead letters of one ticket, with other tickets'
// dead letters between them, reach the target oldest first, so the ticket
// ends in the state of the newer one.
func TestBulkRetryKeepsCreationOrderPerReference(t *testing.T) {
	var mu sync.Mutex
	var got []string
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, string(b))
		mu.Unlock()
	}))
	defer target.Close()
	var older, newer string
	ts := startServerWith(t, copyConfigs(t), map[string]string{"HOOKLINE_EGRESS_ALLOW": "127.0.0.0/8"}, nil, func(s *Server) {
		err := s.db.Update(func(tx *store.Tx) error {
			add := func(ref, body string) (string, error) {
				d := &store.Delivery{Connector: restHooksConnector, Entity: "ticket", Reference: ref,
					Update:  event.Update{Kind: event.KindCallWebhook},
					Request: store.Request{Method: "POST", URL: target.URL, Body: []byte(body)},
					State:   store.DeliveryFailed, Reason: "gave up after 11 attempts: HTTP 503"}
				err := tx.AddDelivery(d)
				return d.ID, err
			}
			var err error
			if older, err = add("T-1", `{"status":"open"}`); err != nil {
				return err
			}
			// Other tickets' dead letters of the same outage: retrying them
			// takes longer than the dispatcher sleeps between polls.
			for i := range 300 {
				if _, err := add(fmt.Sprintf("X-%d", i), `{"other":true}`); err != nil {
					return err
				}
			}
			newer, err = add("T-1", `{"status":"solved"}`)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	r := do(t, "POST", ts.URL+"/api/v1/deliveries/retry", nil, nil)
	if r.Status != 200 {
		t.Fatalf("bulk retry: %d %s", r.Status, r.Body)
	}
	waitFor(t, "both T-1 deliveries sent", func() bool {
		a, _ := ts.db.Delivery(older)
		b, _ := ts.db.Delivery(newer)
		return a.State == store.DeliverySucceeded && b.State == store.DeliverySucceeded
	})
	mu.Lock()
	defer mu.Unlock()
	var order []string
	for _, b := range got {
		if b != `{"other":true}` {
			order = append(order, b)
		}
	}
	if want := []string{`{"status":"open"}`, `{"status":"solved"}`}; !slices.Equal(order, want) {
		t.Fatalf("T-1's deliveries reached the target in order %v; want creation order %v", order, want)
	}
}
