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
