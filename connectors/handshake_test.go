package connectors

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/connectors/verify"
)

// parseHTTPFixture reads an .http request fixture: a method and a URL whose
// query may continue over indented lines.
func parseHTTPFixture(t *testing.T, name string) (method string, u *url.URL) {
	t.Helper()
	var b strings.Builder
	for _, line := range strings.Split(string(readFile(t, fixturesDir+"/"+name)), "\n") {
		b.WriteString(strings.TrimSpace(line))
	}
	method, rawURL, ok := strings.Cut(b.String(), " ")
	if !ok {
		t.Fatalf("%s: no method", name)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return method, u
}

func TestMetaHandshake(t *testing.T) {
	method, u := parseHTTPFixture(t, "whatsapp-cloud-verify-handshake.http")
	if method != http.MethodGet || u.Query().Get("hub.verify_token") != "meatyhamhock" {
		t.Fatalf("fixture parsed as %s %s", method, u)
	}
	// The fixture's token is the one configured in WHATSAPP_VERIFY_TOKEN.
	right := loadShipped(t, "whatsapp", map[string]string{"WHATSAPP_VERIFY_TOKEN": "meatyhamhock"}).Inbound
	// With the development default, the fixture's token is wrong.
	wrong := loadShipped(t, "whatsapp", nil).Inbound
	if right.HandshakeScheme() != HandshakeMeta {
		t.Fatalf("whatsapp handshake scheme %q", right.HandshakeScheme())
	}
	q := u.Query()
	with := func(k, v string) url.Values {
		c := url.Values{}
		for kk, vv := range q {
			c[kk] = append([]string(nil), vv...)
		}
		if v == "" {
			c.Del(k)
		} else {
			c.Set(k, v)
		}
		return c
	}
	cases := []struct {
		name    string
		in      *Inbound
		method  string
		query   url.Values
		handled bool
		status  int
		body    string
	}{
		{"fixture, right token", right, "GET", q, true, 200, "1158201444"},
		{"fixture, wrong token", wrong, "GET", q, true, 403, ""},
		{"token differs in case", right, "GET", with("hub.verify_token", "MeatyHamHock"), true, 403, ""},
		{"token is a prefix", right, "GET", with("hub.verify_token", "meatyham"), true, 403, ""},
		{"no token", right, "GET", with("hub.verify_token", ""), true, 403, ""},
		{"mode is not subscribe", right, "GET", with("hub.mode", "unsubscribe"), true, 403, ""},
		{"no challenge", right, "GET", with("hub.challenge", ""), true, 400, ""},
		{"oversized challenge", right, "GET", with("hub.challenge", strings.Repeat("9", 2000)), true, 400, ""},
		{"GET without hub.mode", right, "GET", url.Values{"foo": {"1"}}, false, 0, ""},
		{"POST is a webhook", right, "POST", q, false, 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &verify.Request{Method: tc.method, URL: u.String(), Header: http.Header{}, Query: tc.query, Now: time.Now()}
			resp, handled := tc.in.Handshake(r)
			if handled != tc.handled {
				t.Fatalf("handled = %v, want %v", handled, tc.handled)
			}
			if !handled {
				if resp != nil {
					t.Errorf("response %+v for an unhandled request", resp)
				}
				return
			}
			if resp.Status != tc.status || !strings.HasPrefix(resp.ContentType, "text/plain") {
				t.Errorf("status %d type %q, want %d text/plain", resp.Status, resp.ContentType, tc.status)
			}
			if tc.status == 200 && string(resp.Body) != tc.body {
				t.Errorf("body %q, want the challenge %q", resp.Body, tc.body)
			}
			if tc.status != 200 && (strings.Contains(string(resp.Body), "meatyhamhock") || strings.Contains(string(resp.Body), devVerifyToken)) {
				t.Errorf("refusal echoes the token: %q", resp.Body)
			}
		})
	}
}

func TestSlackHandshake(t *testing.T) {
	in := loadYAML(t, "slack.yaml", `connector: slack
inbound:
  verify: { scheme: slack, secret: s }
  handshake: { scheme: slack }
  schema: slack-event.json
  dedupe: path:event_id
`+minimalEvents, nil).Inbound
	verification := readFile(t, fixturesDir+"/slack-url-verification.json")
	callback := readFile(t, fixturesDir+"/slack-event-callback-message.json")
	cases := []struct {
		name    string
		method  string
		body    []byte
		handled bool
		status  int
		want    string
	}{
		{"url_verification fixture", "POST", verification, true, 200, "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"},
		{"event callback is a webhook", "POST", callback, false, 0, ""},
		{"verification without challenge", "POST", []byte(`{"type":"url_verification"}`), true, 400, ""},
		{"not JSON", "POST", []byte(`type=url_verification`), false, 0, ""},
		{"GET", "GET", verification, false, 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, handled := in.Handshake(&verify.Request{Method: tc.method, Header: http.Header{}, Body: tc.body, Now: time.Now()})
			if handled != tc.handled {
				t.Fatalf("handled = %v, want %v", handled, tc.handled)
			}
			if handled && (resp.Status != tc.status || (tc.status == 200 && string(resp.Body) != tc.want)) {
				t.Errorf("response %d %q", resp.Status, resp.Body)
			}
		})
	}
	// A connector without a handshake never takes a request for one.
	g := loadShipped(t, "generic", nil).Inbound
	if _, handled := g.Handshake(&verify.Request{Method: "POST", Body: verification}); handled {
		t.Error("generic answered a Slack handshake")
	}
	if _, handled := (*Inbound)(nil).Handshake(&verify.Request{Method: "GET"}); handled {
		t.Error("nil inbound handled a request")
	}
}

func FuzzHandshake(f *testing.F) {
	f.Add("GET", "hub.mode=subscribe&hub.verify_token=tok&hub.challenge=123", []byte(nil))
	f.Add("POST", "", []byte(`{"type":"url_verification","challenge":"abc"}`))
	f.Add("GET", "hub.mode=subscribe&hub.verify_token=tok", []byte(nil))
	meta := loadYAML(f, "m.yaml", "connector: m\ninbound:\n  verify: { scheme: none }\n  handshake: { scheme: meta, verify_token: tok }\n"+minimalEvents, nil).Inbound
	slack := loadYAML(f, "s.yaml", "connector: s\ninbound:\n  verify: { scheme: none }\n  handshake: { scheme: slack }\n"+minimalEvents, nil).Inbound
	f.Fuzz(func(t *testing.T, method, rawQuery string, body []byte) {
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return
		}
		r := &verify.Request{Method: method, Query: q, Body: body}
		if resp, handled := meta.Handshake(r); handled && resp.Status == 200 {
			if q.Get("hub.verify_token") != "tok" || q.Get("hub.mode") != "subscribe" || string(resp.Body) != q.Get("hub.challenge") {
				t.Fatalf("meta answered 200 to %q", rawQuery)
			}
		}
		if resp, handled := slack.Handshake(r); handled && resp.Status == 200 && len(resp.Body) == 0 {
			t.Fatalf("slack answered an empty challenge")
		}
	})
}
