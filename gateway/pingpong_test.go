package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookline/hookline/event"
)

// A platform connector for the ping-pong tests: webhooks in (ticket id and
// status, and the status category derived from it, as the shipped
// connectors do), ticket updates out to a test server.
const pingPongConnector = `connector: %[1]s
inbound:
  verify: { scheme: none }
  events:
    - type: ticket.updated
      entity: ticket
      reference: id
      fields: { status: status, status_category: { path: status, map: { closed: solved } } }
      vars: { TICKET_REFERENCE: id }
outbound:
  base_url: "${%[2]s}"
  allow_private: true
  headers: { Content-Type: application/json }
  actions:
    update_ticket:
      method: PUT
      path: '/tickets/{{ .PathEscape .Reference }}'
      body: '{"id": {{ json .Reference }}, "status": {{ json (.Field "status") }}}'
`

// Rules that would bounce a status between the two systems forever: each
// side copies the other's status changes.
const pingPongRules = `rules:
  - id: alpha-to-beta
    on: [ticket.updated]
    connector: alpha
    when: { field: status, changed: true }
    then:
      - update_ticket: { reference: "%%TICKET_REFERENCE%%", status: "{{ .Fields.status }}", connector: beta }
  - id: beta-to-alpha
    on: [ticket.updated]
    connector: beta
    when: { field: status, changed: true }
    then:
      - update_ticket: { reference: "%%TICKET_REFERENCE%%", status: "{{ .Fields.status }}", connector: alpha }
`

// platform is a test server that, like a real platform, turns every update
// it receives into a webhook back to the gateway. transform changes the
// status on the way (a platform that normalizes values); reflectHops makes it
// pass our X-Hookline-* headers back, like a Hookline on the other side.
type platform struct {
	srv         *httptest.Server
	updates     atomic.Int64
	gateway     atomic.Value // string: the gateway's hook URL for this platform
	transform   func(string) string
	reflectHops bool
}

func newPlatform(t *testing.T, transform func(string) string, reflectHops bool) *platform {
	p := &platform{transform: transform, reflectHops: reflectHops}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var upd struct{ ID, Status string }
		body, _ := io.ReadAll(r.Body)
		json.Unmarshal(body, &upd)
		p.updates.Add(1)
		w.WriteHeader(200)
		status := upd.Status
		if p.transform != nil {
			status = p.transform(status)
		}
		echo, _ := json.Marshal(map[string]string{"id": upd.ID, "status": status})
		hdr := http.Header{"Content-Type": {"application/json"}}
		if p.reflectHops {
			hdr.Set(HeaderHops, r.Header.Get(HeaderHops))
			hdr.Set(HeaderDelivery, r.Header.Get(HeaderDelivery))
		}
		url, _ := p.gateway.Load().(string)
		go func() {
			req, _ := http.NewRequest("POST", url, bytes.NewReader(echo))
			req.Header = hdr
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func startPingPong(t *testing.T, alpha, beta *platform) *testServer {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "connectors"), 0o755)
	os.MkdirAll(filepath.Join(dir, "rules"), 0o755)
	writeFile(t, filepath.Join(dir, "gateway.yaml"), "connectors: [connectors/*.yaml]\nrules: [rules/*.yaml]\n")
	writeFile(t, filepath.Join(dir, "connectors", "alpha.yaml"), fmt.Sprintf(pingPongConnector, "alpha", "ALPHA_URL"))
	writeFile(t, filepath.Join(dir, "connectors", "beta.yaml"), fmt.Sprintf(pingPongConnector, "beta", "BETA_URL"))
	writeFile(t, filepath.Join(dir, "rules", "sync.yaml"), pingPongRules)
	ts := startServer(t, dir, map[string]string{"ALPHA_URL": alpha.srv.URL, "BETA_URL": beta.srv.URL}, nil)
	alpha.gateway.Store(ts.URL + "/hooks/alpha")
	beta.gateway.Store(ts.URL + "/hooks/beta")
	return ts
}

// settle waits until both platforms stop receiving updates.
func settle(alpha, beta *platform) int64 {
	last, quiet := int64(-1), 0
	for quiet < 10 {
		time.Sleep(50 * time.Millisecond)
		n := alpha.updates.Load() + beta.updates.Load()
		if n == last {
			quiet++
		} else {
			quiet, last = 0, n
		}
	}
	return last
}

type traceView struct {
	Event struct {
		Connector string `json:"connector"`
		Actor     struct {
			Type string `json:"type"`
		} `json:"actor"`
		Causation struct {
			Hops int  `json:"hops"`
			Echo bool `json:"echo"`
		} `json:"causation"`
	} `json:"event"`
	Trace EventTrace `json:"trace"`
}

func allTraces(t *testing.T, ts *testServer) []traceView {
	var list struct {
		Events []struct {
			ID string `json:"id"`
		} `json:"events"`
	}
	decodeJSON(t, do(t, "GET", ts.URL+"/api/v1/events?limit=1000", nil, nil).Body, &list)
	var out []traceView
	for _, e := range list.Events {
		var tv traceView
		decodeJSON(t, do(t, "GET", ts.URL+"/api/v1/events/"+e.ID, nil, nil).Body, &tv)
		out = append(out, tv)
	}
	return out
}

func kick(t *testing.T, ts *testServer) {
	r := do(t, "POST", ts.URL+"/hooks/alpha", []byte(`{"id": "T1", "status": "open"}`), map[string]string{"Content-Type": "application/json"})
	if r.Status != 202 {
		t.Fatalf("kick: %d %s", r.Status, r.Body)
	}
}

// mutate is a platform that rewrites every value it receives (appending a
// revision mark), so an echo never matches what Hookline sent and every
// bounce is a real change that re-fires the other side's rule.
func mutate(s string) string { return s + "'" }

// Platforms that echo exactly what they were sent: the echo is recognised by
// its fingerprint, marked as the gateway's own change, and the rules skip it.
func TestPingPongStoppedByEchoFingerprints(t *testing.T) {
	alpha, beta := newPlatform(t, nil, false), newPlatform(t, nil, false)
	ts := startPingPong(t, alpha, beta)
	kick(t, ts)
	total := settle(alpha, beta)
	if total != 1 || beta.updates.Load() != 1 {
		t.Fatalf("updates alpha=%d beta=%d, want exactly one update to beta", alpha.updates.Load(), beta.updates.Load())
	}
	echoes := 0
	for _, tv := range allTraces(t, ts) {
		if tv.Event.Causation.Echo {
			echoes++
			if tv.Event.Actor.Type != "gateway" || len(tv.Trace.Guards) == 0 || len(tv.Trace.Matched) != 0 {
				t.Fatalf("echo not marked or not skipped: %+v", tv)
			}
		}
	}
	if echoes != 1 {
		t.Fatalf("want 1 echo event visible in the API, got %d", echoes)
	}
	waitFor(t, "the echo counted in the metrics", func() bool {
		return metricValue(t, ts.URL, `hookline_loop_guard_total{guard="echo"}`) == 1
	})
}

// Platforms that change the value on the way (so fingerprints cannot match)
// and pass our hop headers back: the hop limit ends the chain.
func TestPingPongStoppedByHopLimit(t *testing.T) {
	alpha, beta := newPlatform(t, mutate, true), newPlatform(t, mutate, true)
	ts := startPingPong(t, alpha, beta)
	kick(t, ts)
	total := settle(alpha, beta)
	if total == 0 || total > 5 {
		t.Fatalf("%d updates sent; the hop limit (5) must stop the chain", total)
	}
	stopped := false
	for _, tv := range allTraces(t, ts) {
		for _, g := range tv.Trace.Guards {
			if contains(g, "hop limit") {
				stopped = true
			}
		}
	}
	if !stopped {
		t.Fatal("no event shows the hop-limit stop in the API")
	}
	waitFor(t, "the hop-limit stop counted in the metrics", func() bool {
		return metricValue(t, ts.URL, `hookline_loop_guard_total{guard="max_hops"}`) >= 1
	})
}

// Platforms that change the value and carry no hop headers: only the
// per-rule, per-entity firing cap is left, and it stops the chain.
func TestPingPongStoppedByFiringCap(t *testing.T) {
	alpha, beta := newPlatform(t, mutate, false), newPlatform(t, mutate, false)
	ts := startPingPong(t, alpha, beta)
	kick(t, ts)
	total := settle(alpha, beta)
	// Each rule may fire 20 times per entity per hour.
	if total == 0 || total > 40 {
		t.Fatalf("%d updates sent; the firing cap (20 per rule and entity per hour) must stop the chain", total)
	}
	capped := false
	for _, tv := range allTraces(t, ts) {
		for _, r := range tv.Trace.Rules {
			if contains(r.Skipped, "loop guard") || contains(r.Skipped, "firing cap") {
				capped = true
			}
		}
	}
	if !capped {
		t.Fatal("no event shows the firing-cap stop in the API")
	}
	waitFor(t, "the firing-cap stop counted in the metrics", func() bool {
		return metricValue(t, ts.URL, `hookline_loop_guard_total{guard="firing_cap"}`) >= 1
	})
	t.Logf("chain stopped after %d updates", total)
}

// A platform that echoes the value in its own case (OPEN for open) is
// still recognized: fingerprints compare values case-folded.
func TestPingPongEchoInAnotherCase(t *testing.T) {
	alpha, beta := newPlatform(t, nil, false), newPlatform(t, strings.ToUpper, false)
	ts := startPingPong(t, alpha, beta)
	kick(t, ts)
	if total := settle(alpha, beta); total != 1 || beta.updates.Load() != 1 {
		t.Fatalf("updates alpha=%d beta=%d, want exactly one update to beta", alpha.updates.Load(), beta.updates.Load())
	}
	echoes := 0
	for _, tv := range allTraces(t, ts) {
		if tv.Event.Causation.Echo {
			echoes++
		}
	}
	if echoes != 1 {
		t.Fatalf("want the upper-cased echo recognized, got %d echoes", echoes)
	}
}

// An echo consumes its fingerprint: when a person later sets the value the
// rule had set (a customer reopens, an agent solves by hand), within the
// fingerprint's lifetime, that change is theirs and rules run on it.
func TestEchoConsumesItsFingerprint(t *testing.T) {
	dir := deskConfig(t, fmt.Sprintf(pingPongConnector, "desk", "DESK_URL"), `rules:
  - id: auto-solve
    on: [ticket.updated]
    connector: desk
    when: { field: priority, is: low }
    once_per_item: true
    then:
      - update_ticket: { reference: "%%TICKET_REFERENCE%%", status: solved }
  - id: survey
    on: [ticket.updated]
    connector: desk
    when: { field: status, changed_to: solved }
    then:
      - update_ticket: { reference: "%%TICKET_REFERENCE%%", priority: normal }
`)
	ts := startServer(t, dir, map[string]string{"DESK_URL": "http://127.0.0.1:9"}, nil)
	step := func(actor string, fields map[string]any) { t.Helper(); applyToDesk(t, ts, actor, fields) }
	surveys := func() int { t.Helper(); return deskFirings(t, ts, "survey") }
	step("customer", map[string]any{"status": "open", "priority": "low"}) // auto-solve fires
	step("system", map[string]any{"status": "solved"})                    // its echo
	if n := surveys(); n != 0 {
		t.Fatalf("the echo of the rule's own solve ran the survey rule (%d firings)", n)
	}
	step("customer", map[string]any{"status": "open"}) // reopened
	step("agent", map[string]any{"status": "solved"})  // solved by hand
	if n := surveys(); n != 1 {
		t.Fatalf("the agent's solve ran the survey rule %d times, want once", n)
	}
}

// An echo in the platform's own spelling is still recognized: the owner the
// rule set comes back as the id the connector's value map sent, and a
// number comes back in another format (5 as "5.0").
func TestEchoInThePlatformsSpelling(t *testing.T) {
	dir := deskConfig(t, fmt.Sprintf(pingPongConnector, "desk", "DESK_URL")+
		"  value_maps:\n    owner: { alice: \"123\" }\n", `rules:
  - id: route
    on: [ticket.updated]
    connector: desk
    when: { field: priority, is: low }
    once_per_item: true
    then:
      - set_fields: { owner: alice, custom.score: 5 }
  - id: on-owner
    on: [ticket.updated]
    connector: desk
    when: { field: owner, changed: true }
    then:
      - log: { file: owner.log, line: "owner {{ .Fields.owner }}" }
  - id: on-score
    on: [ticket.updated]
    connector: desk
    when: { field: custom.score, changed: true }
    then:
      - log: { file: score.log, line: "score" }
`)
	ts := startServer(t, dir, map[string]string{"DESK_URL": "http://127.0.0.1:9"}, nil)
	step := func(actor string, fields map[string]any) { t.Helper(); applyToDesk(t, ts, actor, fields) }
	fired := func(rule string) int { t.Helper(); return deskFirings(t, ts, rule) }
	step("customer", map[string]any{"status": "open", "priority": "low"}) // route fires
	if n := fired("route"); n != 1 {
		t.Fatalf("route fired %d times, want 1", n)
	}
	step("system", map[string]any{"owner": "123", "custom.score": "5.0"}) // the platform's echo
	if o, s := fired("on-owner"), fired("on-score"); o != 0 || s != 0 {
		t.Fatalf("the echo in the platform's spelling ran rules (on-owner %d, on-score %d firings)", o, s)
	}
	// The echo consumed both spellings: the same owner set again by hand
	// is a person's change.
	step("agent", map[string]any{"owner": "bob"})
	step("agent", map[string]any{"owner": "alice"})
	if n := fired("on-owner"); n != 2 {
		t.Fatalf("on-owner fired %d times for two changes by hand, want 2", n)
	}
}

func TestFingerprintValue(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Open ", "open"},
		{"5", "5"},
		{"5.0", "5"},
		{"5.50", "5.5"},
		{"5e0", "5"},
		{"-1.25E1", "-12.5"},
		{"0", "0"},
		{"0.5", "0.5"},
		{"007", "007"},     // an identifier, not a number
		{"00", "00"},       // idem
		{"5.", "5."},       // not a plain decimal
		{".5", ".5"},       // idem
		{"1e", "1e"},       // idem
		{"0x10", "0x10"},   // idem
		{"1_000", "1_000"}, // idem
		{"inf", "inf"},
		{"NaN", "nan"},
		{"1e400", "1e400"}, // out of range stays as written
		{"12345678901234567890", "12345678901234567890"}, // a long id, not rounded
		{"12345678901234567891", "12345678901234567891"},
	} {
		if got := fingerprintValue(tc.in); got != tc.want {
			t.Errorf("fingerprintValue(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// deskConfig writes a config of one connector "desk" (connector, a
// connector file) and one rules file (rules) and returns its directory.
func deskConfig(t *testing.T, connector, rules string) string {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "connectors"), 0o755)
	os.MkdirAll(filepath.Join(dir, "rules"), 0o755)
	writeFile(t, filepath.Join(dir, "gateway.yaml"), "connectors: [connectors/*.yaml]\nrules: [rules/*.yaml]\n")
	writeFile(t, filepath.Join(dir, "connectors", "desk.yaml"), connector)
	writeFile(t, filepath.Join(dir, "rules", "rules.yaml"), rules)
	return dir
}

// applyToDesk applies a ticket.updated event of desk ticket T1 by actor
// with fields (and its TICKET_REFERENCE) through the pipeline.
func applyToDesk(t *testing.T, ts *testServer, actor string, fields map[string]any) {
	t.Helper()
	ev := &event.Event{Connector: "desk", Type: "ticket.updated", Entity: "ticket", Reference: "T1",
		Actor: event.Actor{Type: actor}, Fields: fields, Vars: map[string]string{"TICKET_REFERENCE": "T1"}}
	if err := ts.ApplyEvents([]*event.Event{ev}); err != nil {
		t.Fatal(err)
	}
}

// deskFirings is how many times rule fired for desk ticket T1.
func deskFirings(t *testing.T, ts *testServer, rule string) int {
	t.Helper()
	snap, err := ts.Store().Entity(event.EntityKey{Connector: "desk", Entity: "ticket", Reference: "T1"})
	if err != nil {
		t.Fatal(err)
	}
	return len(snap.Fired[rule])
}
