package gateway

import (
	"strings"
	"testing"
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
