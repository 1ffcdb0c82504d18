package gateway

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
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
