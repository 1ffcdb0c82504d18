package gateway

import (
	"net/url"
	"testing"
)

// GET /api/v1/entities/{c}/{e}/{ref} takes the reference escaped as one
// path segment, as every URL library writes it: a space, a slash, ':' and
// '+' and non-ASCII text reach the entity.
func TestEntityReferenceIsUnescaped(t *testing.T) {
	gw, _ := runServer(t, timerConfig(t, "rules: []\n"), t.TempDir(), nil, nil)
	for _, ref := range []string{"ORD 1", "whatsapp:+15551234567", "a/b", "Müller", "100%"} {
		postGeneric(t, gw.URL, `{"type": "ticket.updated", "id": "`+ref+`", "status": "open"}`)
		waitFor(t, "the event of "+ref, func() bool {
			r := do(t, "GET", gw.URL+"/api/v1/events?reference="+url.QueryEscape(ref), nil, nil)
			return r.Status == 200 && contains(string(r.Body), `"reference":`)
		})
		path := gw.URL + "/api/v1/entities/generic/ticket/" + url.PathEscape(ref)
		if r := do(t, "GET", path, nil, nil); r.Status != 200 || !contains(string(r.Body), `"status":"open"`) {
			t.Errorf("reference %q: GET %s: %d %s, want 200 with the snapshot", ref, path, r.Status, r.Body)
		}
	}
}

// The lists refuse what can match nothing: a cursor they did not give
// (it would page from a made-up place) and a name holding a NUL byte.
func TestListsRefuseForeignCursorsAndNULNames(t *testing.T) {
	gw, _ := runServer(t, timerConfig(t, "rules: []\n"), t.TempDir(), nil, nil)
	postGeneric(t, gw.URL, `{"type": "ticket.updated", "id": "T-1", "status": "open"}`)
	waitFor(t, "the event", func() bool {
		return contains(string(do(t, "GET", gw.URL+"/api/v1/events", nil, nil).Body), `"T-1"`)
	})
	for _, path := range []string{
		"/api/v1/events?cursor=not-a-cursor",
		"/api/v1/events?cursor=zzzz",
		"/api/v1/deliveries?cursor=zzzz",
		"/api/v1/inbox?after=zzzz",
		"/api/v1/timers?cursor=zzzz",
		"/api/v1/events?connector=gene%00ric",
		"/api/v1/deliveries?connector=gene%00ric",
		"/api/v1/inbox?connector=gene%00ric",
	} {
		if r := do(t, "GET", gw.URL+path, nil, nil); r.Status != 400 {
			t.Errorf("GET %s: %d %.200s, want 400", path, r.Status, r.Body)
		}
	}
}

// since takes the durations gateway.yaml takes: 7d, 2w.
func TestSinceInDaysAndWeeks(t *testing.T) {
	gw, _ := runServer(t, timerConfig(t, "rules: []\n"), t.TempDir(), nil, nil)
	for _, p := range []string{"/api/v1/events?since=7d", "/api/v1/deliveries?state=failed&since=2w", "/api/v1/inbox?since=1d"} {
		if r := do(t, "GET", gw.URL+p, nil, nil); r.Status != 200 {
			t.Errorf("GET %s: %d %s", p, r.Status, r.Body)
		}
	}
	if r := do(t, "GET", gw.URL+"/api/v1/events?since=-1h", nil, nil); r.Status != 400 {
		t.Errorf("a negative since: %d %s, want 400", r.Status, r.Body)
	}
}
