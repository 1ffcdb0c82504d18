package gateway

// Loop guards end to end: the echo fingerprints with a platform that echoes
// as Zendesk does, failed and delayed deliveries, entity types, no-op
// suppression against updates still on their way, and derived fields.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookline/hookline/event"
)

// fakeZendesk is a Zendesk stand-in that behaves as Zendesk's event
// subscriptions do: a ticket update through the API makes one webhook per
// kind of change (ticket.status_changed, ticket.priority_changed,
// ticket.tags_changed), each carrying the ticket's CURRENT state in
// `detail` and, for the *_changed events, previous/current in `event`.
type fakeZendesk struct {
	srv     *httptest.Server
	gateway atomic.Value // the gateway's base URL
	mu      sync.Mutex
	tickets map[string]map[string]any
	puts    atomic.Int64
	seq     atomic.Int64
	// extra, when set, is applied to the ticket after each API update
	// (a Zendesk trigger reacting to the update), before the webhooks.
	extra func(ticket map[string]any)
	wg    sync.WaitGroup
}

func newFakeZendesk(t *testing.T) *fakeZendesk {
	z := &fakeZendesk{tickets: map[string]map[string]any{}}
	z.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var in struct {
			Ticket map[string]any `json:"ticket"`
		}
		json.Unmarshal(body, &in)
		id := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/api/v2/tickets/"), ".json")
		z.puts.Add(1)
		z.mu.Lock()
		tk := z.ticket(id)
		before := cloneTicket(tk)
		for k, v := range in.Ticket {
			switch k {
			case "additional_tags":
				tags := tk["tags"].([]string)
				for _, a := range v.([]any) {
					if !hasTag(tags, strings.ToLower(a.(string))) {
						tags = append(tags, strings.ToLower(a.(string)))
					}
				}
				tk["tags"] = tags
			case "remove_tags":
				var keep []string
				for _, t := range tk["tags"].([]string) {
					drop := false
					for _, rm := range v.([]any) {
						if strings.EqualFold(t, rm.(string)) {
							drop = true
						}
					}
					if !drop {
						keep = append(keep, t)
					}
				}
				tk["tags"] = append([]string{}, keep...)
			default:
				tk[k] = v
			}
		}
		if z.extra != nil {
			z.extra(tk)
		}
		after := cloneTicket(tk)
		z.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ticket": {"id": 1, "updated_at": "2026-03-02T09:15:05Z"}}`)
		z.wg.Add(1)
		go func() { defer z.wg.Done(); z.emit(t, id, before, after) }()
	}))
	t.Cleanup(z.srv.Close)
	return z
}

// cloneTicket copies a fake ticket (its tag list too).
func cloneTicket(m map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		if l, ok := v.([]string); ok {
			v = append([]string{}, l...)
		}
		out[k] = v
	}
	return out
}

// hasTag reports whether l holds s.
func hasTag(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func (z *fakeZendesk) ticket(id string) map[string]any {
	tk := z.tickets[id]
	if tk == nil {
		tk = map[string]any{"id": id, "status": "new", "priority": "normal", "tags": []string{}}
		z.tickets[id] = tk
	}
	return tk
}

// emit posts the webhooks Zendesk would post for the change before -> after.
func (z *fakeZendesk) emit(t *testing.T, id string, before, after map[string]any) {
	for _, f := range []string{"status", "priority"} {
		if before[f] != after[f] {
			z.post(t, "zen:event-type:ticket."+f+"_changed", after,
				map[string]any{"previous": strings.ToUpper(fmt.Sprint(before[f])), "current": strings.ToUpper(fmt.Sprint(after[f]))})
		}
	}
	if fmt.Sprint(before["tags"]) != fmt.Sprint(after["tags"]) {
		z.post(t, "zen:event-type:ticket.tags_changed", after, nil)
	}
}

// post sends one signed event-subscription webhook of ticket detail.
func (z *fakeZendesk) post(t *testing.T, typ string, detail map[string]any, ev map[string]any) {
	d := cloneTicket(detail)
	d["status"] = strings.ToUpper(fmt.Sprint(d["status"]))
	d["priority"] = strings.ToUpper(fmt.Sprint(d["priority"]))
	d["actor_id"] = "-1"
	payload := map[string]any{"type": typ, "id": fmt.Sprintf("evt-%d", z.seq.Add(1)), "time": time.Now().UTC().Format(time.RFC3339),
		"subject": "zen:ticket:" + fmt.Sprint(d["id"]), "detail": d}
	if ev != nil {
		payload["event"] = ev
	}
	body, _ := json.Marshal(payload)
	base, _ := z.gateway.Load().(string)
	stamp := time.Now().UTC().Format(time.RFC3339)
	req, _ := http.NewRequest("POST", base+"/hooks/zendesk", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Zendesk-Webhook-Signature", zendeskSignature("test-zendesk-secret", stamp, body))
	req.Header.Set("X-Zendesk-Webhook-Signature-Timestamp", stamp)
	req.Header.Set("X-Zendesk-Webhook-Invocation-Id", fmt.Sprint(payload["id"]))
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
}

// human posts a change made by an agent in Zendesk's UI (applied to the
// fake's ticket, then the webhooks).
func (z *fakeZendesk) human(t *testing.T, id string, change func(tk map[string]any)) {
	z.mu.Lock()
	tk := z.ticket(id)
	before := cloneTicket(tk)
	change(tk)
	after := cloneTicket(tk)
	z.mu.Unlock()
	z.emit(t, id, before, after)
}

// startWithZendesk runs the shipped configs plus rules against z.
func startWithZendesk(t *testing.T, z *fakeZendesk, rules string) *testServer {
	dir := copyConfigs(t)
	writeFile(t, filepath.Join(dir, "rules", "audit.yaml"), rules)
	ts := startServer(t, dir, map[string]string{"ZENDESK_BASE_URL": z.srv.URL, "HOOKLINE_EGRESS_ALLOW": "127.0.0.0/8"}, nil)
	z.gateway.Store(ts.URL)
	return ts
}

// waitZendeskQuiet waits until nothing more is sent to z and its webhooks are in and
// processed.
func waitZendeskQuiet(t *testing.T, ts *testServer, z *fakeZendesk) {
	t.Helper()
	last, n := int64(-1), 0
	for n < 10 {
		time.Sleep(50 * time.Millisecond)
		z.wg.Wait()
		c := z.puts.Load()
		if c == last {
			n++
		} else {
			n, last = 0, c
		}
	}
}

// zticketFirings is how many times rule fired for Zendesk ticket id.
func zticketFirings(t *testing.T, ts *testServer, id, rule string) int {
	t.Helper()
	snap, err := ts.Store().Entity(event.EntityKey{Connector: "zendesk", Entity: "ticket", Reference: id})
	if err != nil {
		t.Fatal(err)
	}
	if snap == nil {
		return 0
	}
	return len(snap.Fired[rule])
}

// logTraces logs every event's causation and trace.
func logTraces(t *testing.T, ts *testServer) {
	for _, tv := range allTraces(t, ts) {
		t.Logf("event %s actor=%s echo=%v hops=%d matched=%v guards=%v suppressed=%v deliveries=%v", tv.Event.Connector, tv.Event.Actor.Type, tv.Event.Causation.Echo, tv.Event.Causation.Hops, tv.Trace.Matched, tv.Trace.Guards, tv.Trace.Suppressed, tv.Trace.Deliveries)
	}
}

// Hookline sets two fields of a Zendesk ticket in one update; Zendesk
// echoes it as two webhooks (status_changed, priority_changed), each with
// the whole ticket. The first carries both changes; the second carries its
// own change explicitly and must still be known as the echo it is.
func TestZendeskTwoFieldEchoIsKnownInBothWebhooks(t *testing.T) {
	z := newFakeZendesk(t)
	ts := startWithZendesk(t, z, `rules:
  - id: triage
    on: [ticket.tags_changed, ticket.updated]
    connector: zendesk
    when: { field: tags, includes: vip }
    once_per_item: true
    then:
      - set_status: open
      - set_priority: high
  - id: page-on-high
    on: [ticket.priority_changed]
    connector: zendesk
    when: { field: priority, changed_to: high }
    then:
      - log: { file: page.log, line: "page {{ .Event.Reference }}" }
  - id: on-open
    on: [ticket.status_changed]
    connector: zendesk
    when: { field: status, changed_to: open }
    then:
      - log: { file: open.log, line: "open {{ .Event.Reference }}" }
`)
	// An agent tags the ticket vip in Zendesk: triage sets open + high.
	z.human(t, "77", func(tk map[string]any) { tk["tags"] = []string{"vip"} })
	waitZendeskQuiet(t, ts, z)
	if n := zticketFirings(t, ts, "77", "triage"); n != 1 {
		logTraces(t, ts)
		t.Fatalf("triage fired %d times, want 1", n)
	}
	page, open := zticketFirings(t, ts, "77", "page-on-high"), zticketFirings(t, ts, "77", "on-open")
	if page != 0 || open != 0 {
		logTraces(t, ts)
		t.Fatalf("the two webhooks echoing Hookline's own update ran page-on-high %d and on-open %d times, want 0 and 0", page, open)
	}
	// The fingerprints outlive the echo, but a person's change of the
	// field ends them: the agent lowers the priority, then raises it.
	z.human(t, "77", func(tk map[string]any) { tk["priority"] = "normal" })
	waitZendeskQuiet(t, ts, z)
	z.human(t, "77", func(tk map[string]any) { tk["priority"] = "high" })
	waitZendeskQuiet(t, ts, z)
	if n := zticketFirings(t, ts, "77", "page-on-high"); n != 1 {
		logTraces(t, ts)
		t.Fatalf("the agent's own raise to high ran page-on-high %d times, want 1", n)
	}
}

// An echo that carries one more change than Hookline made (a Zendesk
// trigger tags the ticket when it is solved) is a person's event, but the
// fingerprint it matched ends when the field moves on: the agent who solves
// the ticket by hand after the customer reopened it is not taken for the
// echo of Hookline's earlier solve.
func TestPartialEchoFingerprintEndsWhenTheFieldMovesOn(t *testing.T) {
	z := newFakeZendesk(t)
	z.extra = func(tk map[string]any) { // a Zendesk trigger: solved -> tag csat
		if tk["status"] == "solved" {
			if tags := tk["tags"].([]string); !hasTag(tags, "csat") {
				tk["tags"] = append(tags, "csat")
			}
		}
	}
	ts := startWithZendesk(t, z, `rules:
  - id: auto-solve
    on: [ticket.updated]
    connector: zendesk
    when: { field: tags, includes: bot_resolved }
    once_per_item: true
    then:
      - set_status: solved
  - id: survey
    on: [ticket.status_changed]
    connector: zendesk
    when: { field: status, changed_to: solved }
    then:
      - log: { file: survey.log, line: "survey {{ .Event.Reference }}" }
`)
	z.human(t, "88", func(tk map[string]any) { tk["status"] = "open"; tk["tags"] = []string{"bot_resolved"} })
	waitZendeskQuiet(t, ts, z)
	before := zticketFirings(t, ts, "88", "survey")
	// The customer reopens, then an agent solves it by hand.
	z.human(t, "88", func(tk map[string]any) { tk["status"] = "open" })
	waitZendeskQuiet(t, ts, z)
	z.human(t, "88", func(tk map[string]any) { tk["status"] = "solved" })
	waitZendeskQuiet(t, ts, z)
	if after := zticketFirings(t, ts, "88", "survey"); after != before+1 {
		logTraces(t, ts)
		t.Fatalf("the agent's own solve ran survey %d times, want 1: it was taken for the echo of Hookline's earlier solve", after-before)
	}
}

// A partly echoed event is a person's event (rules run on it), but it
// records which of its changes were Hookline's and inherits the hops of
// the delivery that made them, so that a loop through a platform trigger
// still reaches the hop limit.
func TestPartialEchoInheritsHops(t *testing.T) {
	dir := deskConfig(t, fmt.Sprintf(pingPongConnector, "desk", "DESK_URL"), `rules:
  - id: auto-solve
    on: [ticket.updated]
    connector: desk
    when: { field: priority, is: low }
    once_per_item: true
    then:
      - set_status: solved
  - id: survey
    on: [ticket.updated]
    connector: desk
    when: { field: status, changed_to: solved }
    then:
      - log: { file: survey.log, line: "survey" }
`)
	ts := startServer(t, dir, map[string]string{"DESK_URL": "http://127.0.0.1:9"}, nil)
	applyToDesk(t, ts, "customer", map[string]any{"status": "open", "priority": "low"}) // auto-solve fires (hop 1)
	ev := &event.Event{Connector: "desk", Type: "ticket.updated", Entity: "ticket", Reference: "T1",
		Actor: event.Actor{Type: "system"}, Fields: map[string]any{"status": "solved", "priority": "urgent"}, Vars: map[string]string{"TICKET_REFERENCE": "T1"}}
	if err := ts.ApplyEvents([]*event.Event{ev}); err != nil {
		t.Fatal(err)
	}
	if ev.Causation.Echo || ev.Actor.Type != "system" {
		t.Fatalf("a partly echoed event was made an echo: %+v actor %s", ev.Causation, ev.Actor.Type)
	}
	if ev.Causation.Hops != 1 || ev.Causation.DeliveryID == "" {
		t.Fatalf("the partly echoed event did not inherit the delivery's hops: %+v", ev.Causation)
	}
	if got := strings.Join(ev.Causation.EchoedFields, ","); got != "status" { // priority was not ours
		t.Fatalf("echoed fields %q, want status", got)
	}
	if n := deskFirings(t, ts, "survey"); n != 1 {
		t.Fatalf("survey fired %d times on the partly echoed event, want 1 (a person's event)", n)
	}
}

// deskConnector: webhooks in (id, status, priority), ticket updates out.
const deskConnector = `connector: desk
inbound:
  verify: { scheme: none }
  events:
    - type: ticket.updated
      entity: ticket
      reference: id
      fields: { status: status, priority: priority }
      vars: { TICKET_REFERENCE: id }
outbound:
  base_url: "${DESK_URL}"
  allow_private: true
  headers: { Content-Type: application/json }
  actions:
    update_ticket:
      method: PUT
      path: '/tickets/{{ .PathEscape .Reference }}'
      body: '{"status": {{ json (.Field "status") }}}'
`

const deskSolveRules = `rules:
  - id: auto-solve
    on: [ticket.updated]
    connector: desk
    when: { field: priority, is: low }
    once_per_item: true
    then:
      - set_status: solved
  - id: survey
    on: [ticket.updated]
    connector: desk
    when: { field: status, changed_to: solved }
    then:
      - log: { file: survey.log, line: "survey {{ .Event.Reference }}" }
`

// postDesk posts a desk webhook and waits until it is processed.
func postDesk(t *testing.T, ts *testServer, body string) {
	t.Helper()
	r := do(t, "POST", ts.URL+"/hooks/desk", []byte(body), map[string]string{"Content-Type": "application/json"})
	if r.Status != 202 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	waitFinished(t, ts.URL, r.JSON(t)["id"].(string))
}

// A delivery that failed (the platform refused it: nothing changed there)
// leaves no fingerprint: the agent who then makes that change by hand is
// not taken for its echo.
func TestFailedDeliveryLeavesNoFingerprint(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(422) // e.g. Zendesk: "Status: closed prevents ticket update"
	}))
	t.Cleanup(api.Close)
	dir := deskConfig(t, deskConnector, deskSolveRules)
	ts := startServer(t, dir, map[string]string{"DESK_URL": api.URL}, nil)
	postDesk(t, ts, `{"id": "T1", "status": "open", "priority": "low"}`) // auto-solve fires
	waitFor(t, "the delivery failed", func() bool {
		ds := listDeliveries(t, ts.URL, "desk")
		return len(ds) == 1 && ds[0].State == "failed"
	})
	postDesk(t, ts, `{"id": "T1", "status": "solved", "priority": "low", "by": "agent"}`) // the agent solves it
	if n := deskFirings(t, ts, "survey"); n != 1 {
		logTraces(t, ts)
		t.Fatalf("the agent's solve ran survey %d times, want 1: Hookline's solve failed, yet its fingerprint made the agent's solve an echo", n)
	}
}

// The fingerprint window runs from when the update is sent, not from when
// it was queued: the echo of an update held back by retries for longer than
// the window is still known as Hookline's.
func TestFingerprintWindowRunsFromSend(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			w.WriteHeader(503)
			return
		}
		w.WriteHeader(200)
	}))
	t.Cleanup(api.Close)
	clock := newFakeClock(time.Now().UTC())
	dir := deskConfig(t, deskConnector, deskSolveRules)
	ts := startServer(t, dir, map[string]string{"DESK_URL": api.URL}, clock.now)
	postDesk(t, ts, `{"id": "T1", "status": "open", "priority": "low"}`) // auto-solve fires; desk is down
	waitFor(t, "the first attempt", func() bool {
		ds := listDeliveries(t, ts.URL, "desk")
		return len(ds) == 1 && len(ds[0].Attempts) > 0
	})
	clock.add(15 * time.Minute) // the platform is back after 15 minutes
	down.Store(false)
	waitFor(t, "the delivery succeeded", func() bool {
		ds := listDeliveries(t, ts.URL, "desk")
		return len(ds) == 1 && ds[0].State == "succeeded"
	})
	postDesk(t, ts, `{"id": "T1", "status": "solved", "priority": "low"}`) // the platform's echo, at once
	if n := deskFirings(t, ts, "survey"); n != 0 {
		logTraces(t, ts)
		t.Fatalf("the echo of Hookline's own solve, posted right after it was sent, ran survey %d time(s): its fingerprint expired 10 minutes after it was queued", n)
	}
}

// Fingerprints are keyed by entity type too: on a connector whose tickets
// and orders share ids, a change Hookline delivered to ticket 17 does not
// make the same change on order 17, made by a person, an echo.
func TestFingerprintKeyedByEntityType(t *testing.T) {
	const rules = `rules:
  - id: close-low
    on: [ticket.updated]
    connector: desk
    when: { field: priority, is: low }
    once_per_item: true
    then:
      - set_status: closed
  - id: order-closed
    on: [order.updated]
    connector: desk
    when: { field: status, changed_to: closed }
    then:
      - log: { file: orders.log, line: "order {{ .Event.Reference }} closed" }
`
	events := func() []*event.Event {
		mk := func(entity, typ string, fields map[string]any) *event.Event {
			return &event.Event{Connector: "desk", Type: typ, Entity: entity, Reference: "17",
				Actor: event.Actor{Type: "customer"}, Fields: fields, Vars: map[string]string{"TICKET_REFERENCE": "17"}}
		}
		return []*event.Event{
			mk("ticket", "ticket.updated", map[string]any{"status": "open", "priority": "low"}), // close-low fires for ticket 17
			mk("order", "order.updated", map[string]any{"status": "open"}),
			mk("order", "order.updated", map[string]any{"status": "closed"}), // the customer closes order 17
		}
	}
	dir := deskConfig(t, fmt.Sprintf(pingPongConnector, "desk", "DESK_URL"), rules)
	t.Run("pipeline", func(t *testing.T) {
		ts := startServer(t, dir, map[string]string{"DESK_URL": "http://127.0.0.1:9"}, nil)
		for _, ev := range events() {
			if err := ts.ApplyEvents([]*event.Event{ev}); err != nil {
				t.Fatal(err)
			}
		}
		snap, err := ts.Store().Entity(event.EntityKey{Connector: "desk", Entity: "order", Reference: "17"})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(snap.Fired["order-closed"]); n != 1 {
			logTraces(t, ts)
			t.Fatalf("order 17 closed by the customer ran order-closed %d times, want 1: it was taken for the echo of Hookline closing ticket 17", n)
		}
	})
	t.Run("dry_run", func(t *testing.T) {
		b, errs := Load(dir, testEnv(map[string]string{"DESK_URL": "http://127.0.0.1:9"}))
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		sim := NewSimulation(b, time.Now())
		var matched []string
		for _, ev := range events() {
			res, err := sim.Post(SimRequest{Connector: "desk", Event: ev})
			if err != nil {
				t.Fatal(err)
			}
			matched = append(matched, res.Matched...)
		}
		n := 0
		for _, id := range matched {
			if id == "order-closed" {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("dry run: order-closed matched %d times, want 1 (matched %v)", n, matched)
		}
	})
}

// No-op suppression does not trust a field that an update still on its way
// (or delivered and not yet echoed) sets to another value: alpha's ticket
// goes pending then back to open; the second sync (beta -> open) is sent
// though beta's snapshot still says open, while the first (beta -> pending)
// is in flight ("in_flight") or delivered with no echo yet ("delivered").
func TestNoOpDoesNotTrustAFieldAnUpdateIsChanging(t *testing.T) {
	t.Run("in_flight", func(t *testing.T) { noOpLosesLatest(t, true) })
	t.Run("delivered", func(t *testing.T) { noOpLosesLatest(t, false) })
}

// noOpLosesLatest runs the sync of alpha pending then open to beta, the
// first sync slow to answer when slow is set.
func noOpLosesLatest(t *testing.T, slow bool) {
	release := make(chan struct{})
	var mu sync.Mutex
	var got []string
	first := true
	beta := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var upd struct{ Status string }
		body, _ := io.ReadAll(r.Body)
		json.Unmarshal(body, &upd)
		mu.Lock()
		got = append(got, upd.Status)
		wait := first && slow
		first = false
		mu.Unlock()
		if wait { // the platform is slow to answer this one
			<-release
		}
		w.WriteHeader(200)
	}))
	t.Cleanup(beta.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	dir := t.TempDir()
	for _, d := range []string{"connectors", "rules"} {
		mustMkdir(t, filepath.Join(dir, d))
	}
	writeFile(t, filepath.Join(dir, "gateway.yaml"), "connectors: [connectors/*.yaml]\nrules: [rules/*.yaml]\n")
	writeFile(t, filepath.Join(dir, "connectors", "alpha.yaml"), fmt.Sprintf(pingPongConnector, "alpha", "ALPHA_URL"))
	writeFile(t, filepath.Join(dir, "connectors", "beta.yaml"), fmt.Sprintf(pingPongConnector, "beta", "BETA_URL"))
	writeFile(t, filepath.Join(dir, "rules", "sync.yaml"), `rules:
  - id: alpha-to-beta
    on: [ticket.updated]
    connector: alpha
    when: { field: status, changed: true }
    then:
      - update_ticket: { reference: "%%TICKET_REFERENCE%%", status: "{{ .Fields.status }}", connector: beta }
`)
	ts := startServer(t, dir, map[string]string{"ALPHA_URL": "http://127.0.0.1:9", "BETA_URL": beta.URL}, nil)
	n := 0
	post := func(conn, status string) {
		t.Helper()
		n++
		r := do(t, "POST", ts.URL+"/hooks/"+conn, []byte(fmt.Sprintf(`{"id": "T1", "status": %q, "n": %d}`, status, n)), map[string]string{"Content-Type": "application/json"})
		if r.Status != 202 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		waitFinished(t, ts.URL, r.JSON(t)["id"].(string))
	}
	post("beta", "open")     // both tickets open, known to Hookline
	post("alpha", "open")    // (no change to sync: beta already open)
	post("alpha", "pending") // sync 1: beta -> pending (slow)
	waitFor(t, "sync 1 sent", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 1 })
	if !slow {
		time.Sleep(300 * time.Millisecond) // delivered and answered 200
	}
	post("alpha", "open") // sync 2: beta -> open
	close(release)
	time.Sleep(500 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	t.Logf("beta got %v", got)
	logTraces(t, ts)
	if len(got) == 0 || got[len(got)-1] != "open" {
		logTraces(t, ts)
		t.Fatalf("beta received %v; alpha's ticket is open again, so beta's last update must be open (the second sync was dropped as a no-op against beta's stale snapshot)", got)
	}
}

// mustMkdir makes directory p and its parents.
func mustMkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

// The shipped Freshdesk connector reads the assignee as two fields, owner
// (the agent's name) and owner_email, declared derived from owner. When
// Hookline assigns a ticket, Freshdesk's webhook echoes both: owner matches
// the fingerprint and owner_email rides with it, so the echo is known.
func TestFreshdeskAssignmentEchoIsKnown(t *testing.T) {
	api := newRecorder(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id": 77, "updated_at": "2026-03-02T09:15:05Z"}`)
	})
	dir := copyConfigs(t)
	fd := filepath.Join(dir, "connectors", "freshdesk.yaml")
	data, err := os.ReadFile(fd)
	if err != nil {
		t.Fatal(err)
	}
	// As the file's comment says: map the agent names the rules use to ids.
	s := strings.Replace(string(data), "  value_maps:\n", "  value_maps:\n    owner: { \"Maria Rossi\": \"43000067890\" }\n", 1)
	writeFile(t, fd, s)
	writeFile(t, filepath.Join(dir, "rules", "audit.yaml"), `rules:
  - id: route-urgent
    on: [ticket.updated]
    connector: freshdesk
    when: { field: priority, is: urgent }
    once_per_item: true
    then:
      - set_owner: Maria Rossi
  - id: on-assigned
    on: [ticket.updated]
    connector: freshdesk
    when: { field: owner, changed: true }
    then:
      - log: { file: assigned.log, line: "assigned {{ .Event.Reference }}" }
`)
	ts := startServer(t, dir, map[string]string{"FRESHDESK_API_URL": api.srv.URL, "HOOKLINE_EGRESS_ALLOW": "127.0.0.0/8"}, nil)
	post := func(body string) {
		t.Helper()
		r := do(t, "POST", ts.URL+"/hooks/freshdesk", []byte(body), map[string]string{"Content-Type": "application/json", "X-Hookline-Token": "dev-insecure-freshdesk-webhook-token"})
		if r.Status != 202 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		waitFinished(t, ts.URL, r.JSON(t)["id"].(string))
	}
	post(`{"event": "ticket.updated", "ticket": {"id": "77", "status": "Open", "priority": "Urgent", "agent": "Luca Bianchi", "agent_email": "luca@example.com"}}`)
	waitFor(t, "the assignment sent", func() bool { return len(api.requests()) == 1 })
	// Freshdesk's automation posts the ticket as it now is: Hookline's own change.
	post(`{"event": "ticket.updated", "ticket": {"id": "77", "status": "Open", "priority": "Urgent", "agent": "Maria Rossi", "agent_email": "maria@example.com"}}`)
	snap, err := ts.Store().Entity(event.EntityKey{Connector: "freshdesk", Entity: "ticket", Reference: "77"})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(snap.Fired["on-assigned"]); n != 1 { // once: the first webhook (no owner -> Luca)
		logTraces(t, ts)
		t.Fatalf("the echo of Hookline's own assignment ran on-assigned (%d firings, want 1): owner matched its fingerprint but owner_email, which Hookline never sends, made the echo a person's change", n)
	}
}
