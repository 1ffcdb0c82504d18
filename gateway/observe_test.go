package gateway

import (
	"bufio"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/hookline/hookline/store"
)

// startWithLog runs a real gateway on loopback over cfgDir, logging (text,
// debug level) into the returned buffer; setup (nil: none) is called on
// the server before it runs.
func startWithLog(t *testing.T, cfgDir string, env map[string]string, setup func(*Server)) (*testServer, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	srv, err := New(Options{ConfigPath: cfgDir, Listen: "127.0.0.1:0", DataDir: t.TempDir(), Env: testEnv(env),
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatalf("start gateway: %v", err)
	}
	if setup != nil {
		setup(srv)
	}
	runUntilCleanup(t, srv)
	return &testServer{Server: srv, URL: "http://" + srv.Addr()}, logs
}

// logSinceStart is what was logged after the start-up line.
func logSinceStart(logs *syncBuffer) string {
	_, since, _ := strings.Cut(logs.String(), "hookline listening")
	_, since, _ = strings.Cut(since, "\n")
	return since
}

// logLines are the lines of log that contain every one of parts.
func logLines(log string, parts ...string) []string {
	var out []string
next:
	for _, line := range strings.Split(log, "\n") {
		for _, p := range parts {
			if !strings.Contains(line, p) {
				continue next
			}
		}
		out = append(out, line)
	}
	return out
}

// rawRequest writes req on a fresh connection and returns the status line.
func rawRequest(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatalf("write: %v", err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	return strings.TrimSpace(line)
}

// Fiber's own refusals of a webhook (a body beyond the read ceiling: 413;
// a request head over 64 KiB: 431) are counted in hookline_webhooks_total
// and logged, as the handler's refusals are.
func TestFiberRefusalsOfWebhooksAreCountedAndLogged(t *testing.T) {
	ts, logs := startWithLog(t, copyConfigs(t), nil, nil)
	addr := strings.TrimPrefix(ts.URL, "http://")
	line := rawRequest(t, addr, "POST /hooks/generic HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 20000000\r\n\r\n{")
	if !strings.Contains(line, "413") {
		t.Fatalf("oversized post answered %q, want 413", line)
	}
	line = rawRequest(t, addr, "POST /hooks/generic HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nX-Pad: "+
		strings.Repeat("a", 70<<10)+"\r\nContent-Length: 2\r\n\r\n{}")
	if !strings.Contains(line, "431") {
		t.Fatalf("oversized head answered %q, want 431", line)
	}
	if v := metricValue(t, ts.URL, `hookline_webhooks_total{connector="generic",status="413"}`); v != 1 {
		t.Errorf(`hookline_webhooks_total{connector="generic",status="413"} = %v, want 1`, v)
	}
	body := string(do(t, "GET", ts.URL+"/metrics", nil, nil).Body)
	if !regexp.MustCompile(`(?m)^hookline_webhooks_total\{connector="[^"]+",status="431"\} 1$`).MatchString(body) {
		t.Errorf("no 431 series counted once in hookline_webhooks_total:\n%s", regexp.MustCompile(`(?m)^hookline_webhooks_total.*$`).FindAllString(body, -1))
	}
	if got := logLines(logs.String(), "webhook refused", "status=413", "connector=generic"); len(got) != 1 {
		t.Errorf("the 413 logged %d times, want once:\n%s", len(got), logs.String())
	}
	if got := logLines(logs.String(), "webhook refused", "status=431"); len(got) != 1 {
		t.Errorf("the 431 logged %d times, want once:\n%s", len(got), logs.String())
	}
	// An admin API request refused so is not a webhook.
	line = rawRequest(t, addr, "POST /api/v1/config/reload HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 20000000\r\n\r\n{")
	if !strings.Contains(line, "413") {
		t.Fatalf("oversized admin post answered %q, want 413", line)
	}
	if v := metricValue(t, ts.URL, `hookline_webhooks_total{connector="(unknown)",status="413"}`); v != 0 {
		t.Errorf("an admin API 413 counted as a webhook: %v", v)
	}
}

// A panic while a webhook is taken answers 500 and counts it under its
// connector (the stack is logged where the panic is recovered).
func TestPanicWhileTakingAWebhookIsCounted(t *testing.T) {
	ts := startServerWith(t, copyConfigs(t), nil, nil, func(s *Server) {
		s.app.Post("/hooks/:connector/panics", func(*fiber.Ctx) error { panic("boom in a webhook") })
	})
	if r := do(t, "POST", ts.URL+"/hooks/generic/panics", []byte(`{}`), map[string]string{"Content-Type": "application/json"}); r.Status != 500 {
		t.Fatalf("panicking webhook: %d %s", r.Status, r.Body)
	}
	if v := metricValue(t, ts.URL, `hookline_webhooks_total{connector="generic",status="500"}`); v != 1 {
		t.Errorf(`hookline_webhooks_total{connector="generic",status="500"} = %v, want 1`, v)
	}
}

// A webhook refused for a bad signature (a secret rotated on one side) is
// logged with the connector, the status and the reason; a flood of them
// logs the first per minute.
func TestWebhookRefusalsAreLoggedRateLimited(t *testing.T) {
	ts, logs := startWithLog(t, copyConfigs(t), nil, nil)
	body := []byte(`{"object":"whatsapp_business_account","entry":[]}`)
	for range 3 {
		r := do(t, "POST", ts.URL+"/hooks/whatsapp", body, map[string]string{
			"Content-Type": "application/json", "X-Hub-Signature-256": metaSignature("the-old-secret", body)})
		if r.Status != 401 {
			t.Fatalf("post with a wrong signature: %d %s, want 401", r.Status, r.Body)
		}
	}
	got := logLines(logs.String(), "level=WARN", "webhook refused", "connector=whatsapp", "status=401", "reason=")
	if len(got) != 1 {
		t.Errorf("three 401 refusals logged %d lines, want 1 (the first of the minute):\n%s", len(got), logs.String())
	}
}

// logLimiter lets one line per key and interval through and counts the
// others, which the next line let through reports.
func TestLogLimiter(t *testing.T) {
	l := newLogLimiter(time.Minute)
	t0 := time.Unix(1_700_000_000, 0)
	steps := []struct {
		key        string
		at         time.Duration
		ok         bool
		suppressed int
	}{
		{"a", 0, true, 0},
		{"a", time.Second, false, 0},
		{"b", time.Second, true, 0},
		{"a", 30 * time.Second, false, 0},
		{"a", 61 * time.Second, true, 2},
		{"a", 62 * time.Second, false, 0},
		{"b", 2 * time.Minute, true, 0},
	}
	for i, s := range steps {
		ok, n := l.allow(s.key, t0.Add(s.at))
		if ok != s.ok || n != s.suppressed {
			t.Errorf("step %d (%s at %v): allow = %v, %d; want %v, %d", i, s.key, s.at, ok, n, s.ok, s.suppressed)
		}
	}
}

// An inbox item that fails for a mapping error is logged, after its
// transaction, with the connector, the inbox id and the reason.
func TestInboxItemFailedForMappingIsLogged(t *testing.T) {
	ts, logs := startWithLog(t, copyConfigs(t), nil, nil)
	r := do(t, "POST", ts.URL+"/hooks/generic", []byte(`{"type": "ticket.updated", "status": "open"}`), map[string]string{"Content-Type": "application/json"})
	if r.Status != 202 {
		t.Fatalf("post: %d %s", r.Status, r.Body)
	}
	id := r.JSON(t)["id"].(string)
	item := waitFinished(t, ts.URL, id)
	if item["state"] != "failed" {
		t.Fatalf("item %s: %v, want failed", id, item["state"])
	}
	waitFor(t, "the log line", func() bool { return strings.Contains(logs.String(), id) })
	if got := logLines(logs.String(), "level=WARN", "inbox item failed", "connector=generic", "inbox="+id, "reason="); len(got) != 1 {
		t.Errorf("inbox item %s failed (%v): %d warnings naming it, want 1; log:\n%s", id, item["reason"], len(got), logs.String())
	}
}

// A delivery that cannot be built (a header value with a line break) is
// stored failed: it counts under hookline_deliveries_total{outcome="failed"}
// and is logged with its rule and event.
func TestUnbuildableDeliveryIsCountedAndLogged(t *testing.T) {
	ops := newRecorder(t, nil)
	cfg := configWithRules(t, `rules:
  - id: notify-ops
    on: ticket.updated
    connector: generic
    then:
      - call_webhook:
          url: "`+ops.srv.URL+`/hook"
          headers: { X-Subject: "{{ .Field \"subject\" }}" }
          body: { ticket: "{{ .Event.Reference }}" }
`)
	ts, logs := startWithLog(t, cfg, nil, nil)
	postGeneric(t, ts.URL, `{"type": "ticket.updated", "id": "T-1", "subject": "hi\r\nX-Injected: 1"}`)
	waitFor(t, "the failed delivery", func() bool {
		return metricValue(t, ts.URL, `hookline_outbox_deliveries{state="failed"}`) == 1
	})
	var list struct {
		Deliveries []struct{ ID, State, Reason, EventID string }
	}
	decodeJSON(t, do(t, "GET", ts.URL+"/api/v1/deliveries?connector=generic", nil, nil).Body, &list)
	if len(list.Deliveries) != 1 {
		t.Fatalf("deliveries: %+v", list.Deliveries)
	}
	d := list.Deliveries[0]
	waitFor(t, "the count", func() bool {
		return metricValue(t, ts.URL, `hookline_deliveries_total{connector="generic",outcome="failed"}`) == 1
	})
	if got := logLines(logs.String(), "level=WARN", "delivery: failed", "delivery="+d.ID, "rule=notify-ops", "event=", "connector=generic", "reason="); len(got) != 1 {
		t.Errorf("delivery %s failed (%q): %d log lines with its rule and event, want 1; log:\n%s", d.ID, d.Reason, len(got), logs.String())
	}
}

// A batch retried item by item logs the warnings of its good items once
// (only a transaction that commits logs), and the stack of the item that
// panics once.
func TestRetriedBatchLogsOnce(t *testing.T) {
	gate := make(chan struct{})
	hook := func(stage string, it *store.InboxItem) {
		if stage != "process" {
			return
		}
		if strings.Contains(string(it.Body), "gate") {
			<-gate
		}
		if strings.Contains(string(it.Body), "poison") {
			panic("boom")
		}
	}
	ts, logs := startWithLog(t, copyConfigs(t), nil, func(s *Server) { s.pipe.itemHook = hook })
	postGeneric(t, ts.URL, `{"type": "ticket.updated", "id": "gate", "status": "open"}`)
	time.Sleep(200 * time.Millisecond) // the gate's batch is held in its transaction
	// Both wait behind it, so they make the next batch together.
	r := do(t, "POST", ts.URL+"/hooks/generic", []byte(`{"type": "ticket.updated", "id": "W-1", "status": "open", "occurred_at": "not a time"}`),
		map[string]string{"Content-Type": "application/json"})
	warnID := r.JSON(t)["id"].(string)
	postGeneric(t, ts.URL, `{"type": "ticket.updated", "id": "poison", "status": "open"}`)
	close(gate)
	if item := waitFinished(t, ts.URL, warnID); item["state"] != "processed" {
		t.Fatalf("W-1: %v", item["state"])
	}
	waitFor(t, "the batch retried one by one", func() bool { return strings.Contains(logs.String(), "inbox item failed") })
	if !strings.Contains(logs.String(), "retrying items one by one") {
		t.Fatalf("W-1 and poison were not retried one by one:\n%s", logs.String())
	}
	if got := logLines(logs.String(), "msg=mapping", "inbox="+warnID); len(got) != 1 {
		t.Errorf("the mapping warning of inbox %s was logged %d times, want once:\n%s", warnID, len(got), logs.String())
	}
	if got := logLines(logs.String(), "please report it with this stack"); len(got) != 1 {
		t.Errorf("the panic's stack was logged %d times, want once:\n%s", len(got), logs.String())
	}
}

// A webhook replayed a day after its receipt, processed at once, is not
// observed in hookline_processing_seconds as a day.
func TestReplayedWebhookStaysOutOfProcessingLatency(t *testing.T) {
	clock := time.Now().Add(-24 * time.Hour)
	var mu = make(chan struct{}, 1)
	mu <- struct{}{}
	now := func() time.Time { <-mu; defer func() { mu <- struct{}{} }(); return clock }
	ts := startServer(t, copyConfigs(t), nil, now)
	r := do(t, "POST", ts.URL+"/hooks/generic", []byte(`{"type": "ticket.updated", "status": "open"}`), map[string]string{"Content-Type": "application/json"})
	id := r.JSON(t)["id"].(string)
	waitFinished(t, ts.URL, id)
	waitFor(t, "the first processing observed", func() bool {
		return metricValue(t, ts.URL, `hookline_processing_seconds_count{connector="generic"}`) == 1
	})
	<-mu
	clock = clock.Add(24 * time.Hour) // a day later, the operator replays it
	mu <- struct{}{}
	if r := do(t, "POST", ts.URL+"/api/v1/inbox/"+id+"/replay", nil, nil); r.Status != 202 {
		t.Fatalf("replay: %d %s", r.Status, r.Body)
	}
	waitFor(t, "the replay processed", func() bool {
		return metricValue(t, ts.URL, `hookline_inbox_processed_total{outcome="failed"}`) == 2
	})
	if v := metricValue(t, ts.URL, `hookline_processing_seconds_count{connector="generic"}`); v != 1 {
		t.Errorf("hookline_processing_seconds observed %v webhooks, want 1: the replay a day after its receipt was observed", v)
	}
	if v := metricValue(t, ts.URL, `hookline_processing_seconds_bucket{connector="generic",le="60"}`); v != 1 {
		t.Errorf("le=60 bucket %v, want 1", v)
	}
}

// The start-up line names the data directory (absolute) and how the
// admin API is protected.
func TestStartupLineNamesDataDirAndAdminAPI(t *testing.T) {
	for _, tc := range []struct {
		name  string
		env   map[string]string
		admin string
	}{
		{"loopback only", nil, "admin_api=loopback-only"},
		{"token", map[string]string{"HOOKLINE_ADMIN_TOKEN": "s3cret"}, "admin_api=token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dataDir := filepath.Join(t.TempDir(), "where-the-data-lives")
			logs := &syncBuffer{}
			srv, err := New(Options{ConfigPath: copyConfigs(t), Listen: "127.0.0.1:0", DataDir: dataDir, Env: testEnv(tc.env),
				Logger: slog.New(slog.NewTextHandler(logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			runUntilCleanup(t, srv)
			got := logLines(logs.String(), "hookline listening")
			if len(got) != 1 {
				t.Fatalf("start-up lines: %q", got)
			}
			if !strings.Contains(got[0], "data_dir="+dataDir) || !strings.Contains(got[0], tc.admin) {
				t.Errorf("start-up line %q; want data_dir=%s and %s", got[0], dataDir, tc.admin)
			}
		})
	}
}

// Every state-changing admin call is logged at info; requests with a
// wrong token at warn, the first per minute.
func TestAdminAPICallsAreLogged(t *testing.T) {
	ts, logs := startWithLog(t, copyConfigs(t), map[string]string{"HOOKLINE_ADMIN_TOKEN": "s3cret"}, nil)
	auth := map[string]string{"Authorization": "Bearer s3cret"}
	r := do(t, "POST", ts.URL+"/hooks/generic", []byte(`{"type": "ticket.updated", "status": "open"}`), map[string]string{"Content-Type": "application/json"})
	id := r.JSON(t)["id"].(string)
	waitFor(t, "the item failed", func() bool {
		return do(t, "GET", ts.URL+"/api/v1/inbox/"+id, nil, auth).JSON(t)["state"] == "failed"
	})
	for i := range 3 {
		if r := do(t, "GET", ts.URL+"/api/v1/events", nil, map[string]string{"Authorization": fmt.Sprintf("Bearer guess-%d", i)}); r.Status != 401 {
			t.Fatalf("wrong token: %d", r.Status)
		}
	}
	if r := do(t, "POST", ts.URL+"/api/v1/inbox/"+id+"/replay", nil, auth); r.Status != 202 {
		t.Fatalf("replay: %d %s", r.Status, r.Body)
	}
	waitFor(t, "the replayed item failed again", func() bool {
		return metricValue(t, ts.URL, `hookline_inbox_processed_total{outcome="failed"}`) == 2
	})
	if r := do(t, "POST", ts.URL+"/api/v1/inbox/replay", nil, auth); r.Status != 200 {
		t.Fatalf("bulk replay: %d %s", r.Status, r.Body)
	}
	since := logSinceStart(logs)
	if got := logLines(since, "level=WARN", "admin API request refused", "status=401", "remote=127.0.0.1"); len(got) != 1 {
		t.Errorf("three requests with a wrong token: %d warnings, want 1 (the first of the minute):\n%s", len(got), since)
	}
	if got := logLines(since, "level=INFO", "admin call", "method=POST", "path=/api/v1/inbox/"+id+"/replay", "status=202", "remote=127.0.0.1"); len(got) != 1 {
		t.Errorf("the replay of inbox %s: %d info lines, want 1:\n%s", id, len(got), since)
	}
	if got := logLines(since, "level=INFO", "admin call", "path=/api/v1/inbox/replay", "status=200", "result=1"); len(got) != 1 {
		t.Errorf("the bulk replay: %d info lines with its result count, want 1:\n%s", len(got), since)
	}
	if got := logLines(since, "admin call", "method=GET"); len(got) != 0 {
		t.Errorf("reads logged as admin calls: %q", got)
	}
}

// The no-op guard's stop is logged at debug with the rule, entity and
// event.
func TestNoOpGuardIsLoggedAtDebug(t *testing.T) {
	target := newRecorder(t, nil)
	rules := `rules:
  - id: prioritise
    on: [ticket.updated]
    connector: generic
    when: { field: status, is: open }
    then: [ { set_priority: high } ]
`
	logs := &syncBuffer{}
	srv, err := New(Options{ConfigPath: timerConfig(t, rules), Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Env:    testEnv(map[string]string{"GENERIC_TARGET_URL": target.srv.URL}),
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, srv)
	url := "http://" + srv.Addr()
	postGeneric(t, url, `{"type": "ticket.updated", "id": "N-1", "status": "open", "priority": "high"}`)
	waitFor(t, "the no-op guard", func() bool { return metricValue(t, url, `hookline_loop_guard_total{guard="no_op"}`) == 1 })
	waitFor(t, "the log line", func() bool { return strings.Contains(logs.String(), "guard=no_op") })
	if got := logLines(logs.String(), "level=DEBUG", "loop guard", "guard=no_op", "rule=prioritise", "entity=generic/ticket/N-1", "event="); len(got) != 1 {
		t.Errorf("the no-op guard: %d debug lines with rule, entity and event, want 1:\n%s", len(got), logs.String())
	}
}

// A REST-hook subscriber's target URL is a credential (a Zapier hook URL's
// path, a ?token=): neither the 410 warning nor the retry of an
// unreachable target logs it, and the attempts the API shows do not carry
// it in their error.
func TestHookTargetSecretsStayOutOfLogs(t *testing.T) {
	gone := newRecorder(t, func(w http.ResponseWriter, r *http.Request, body []byte) { w.WriteHeader(http.StatusGone) })
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close() // nothing listens there any more
	ts, logs := startWithLog(t, copyConfigs(t), map[string]string{"HOOKLINE_EGRESS_ALLOW": "127.0.0.0/8"}, nil)
	subscribe := func(target string) string {
		r := do(t, "POST", ts.URL+"/api/v1/subscriptions", []byte(`{"target_url": "`+target+`", "event": "*"}`), map[string]string{"Content-Type": "application/json"})
		if r.Status != 201 {
			t.Fatalf("subscribe: %d %s", r.Status, r.Body)
		}
		return r.JSON(t)["id"].(string)
	}
	goneID := subscribe(gone.srv.URL + "/hooks/catch/123/GONESECRET/")
	subscribe(downURL + "/hook?token=DOWNSECRET")
	postGeneric(t, ts.URL, `{"type": "ticket.updated", "id": "S-1", "status": "open"}`)
	waitFor(t, "the 410 and the first retry logged", func() bool {
		l := logs.String()
		return strings.Contains(l, "gone (410)") && strings.Contains(l, "will retry")
	})
	goneHost := strings.TrimPrefix(gone.srv.URL, "http://")
	if got := logLines(logs.String(), "admin call", "method=POST", "path=/api/v1/subscriptions", "status=201", "id="+goneID); len(got) != 1 {
		t.Errorf("the subscription %s: %d admin call lines naming it, want 1:\n%s", goneID, len(got), logs.String())
	}
	if got := logLines(logs.String(), "gone (410)", "subscription="+goneID, "host="+goneHost); len(got) != 1 {
		t.Errorf("the 410 line does not name subscription %s and host %s:\n%s", goneID, goneHost, logs.String())
	}
	for _, secret := range []string{"GONESECRET", "DOWNSECRET", "token="} {
		for _, line := range logLines(logs.String(), secret) {
			if !strings.Contains(line, "admin call") { // the subscribe call's path has no target
				t.Errorf("the log shows a subscriber's secret %s: %s", secret, line)
			}
		}
	}
	var list struct {
		Deliveries []struct {
			Reason   string
			Attempts []struct{ Error string }
		}
	}
	decodeJSON(t, do(t, "GET", ts.URL+"/api/v1/deliveries?connector=rest_hooks", nil, nil).Body, &list)
	errs := 0
	for _, d := range list.Deliveries {
		for _, a := range d.Attempts {
			if a.Error == "" {
				continue
			}
			errs++
			if strings.Contains(a.Error, "DOWNSECRET") || strings.Contains(d.Reason, "DOWNSECRET") {
				t.Errorf("a stored attempt shows the subscriber's secret: %q (reason %q)", a.Error, d.Reason)
			}
		}
	}
	if errs == 0 {
		t.Errorf("no attempt errors in %+v", list.Deliveries)
	}
}

// A panic while an item is mapped logs its stack once, when the item is
// marked failed, although a batch that fails for another reason (here a
// panic of another item while it is processed) maps it again.
func TestMappingPanicLogsOnce(t *testing.T) {
	gate := make(chan struct{})
	hook := func(stage string, it *store.InboxItem) {
		body := string(it.Body)
		switch {
		case stage == "process" && strings.Contains(body, "gate"):
			<-gate
		case stage == "map" && strings.Contains(body, "poison-map"):
			panic("boom while mapping")
		case stage == "process" && strings.Contains(body, "poison-process"):
			panic("boom while processing")
		}
	}
	ts, logs := startWithLog(t, copyConfigs(t), nil, func(s *Server) { s.pipe.itemHook = hook })
	postGeneric(t, ts.URL, `{"type": "ticket.updated", "id": "gate", "status": "open"}`)
	time.Sleep(200 * time.Millisecond) // the gate's batch is held in its transaction
	r := do(t, "POST", ts.URL+"/hooks/generic", []byte(`{"type": "ticket.updated", "id": "poison-map", "status": "open"}`),
		map[string]string{"Content-Type": "application/json"})
	mapID := r.JSON(t)["id"].(string)
	postGeneric(t, ts.URL, `{"type": "ticket.updated", "id": "poison-process", "status": "open"}`)
	close(gate)
	if item := waitFinished(t, ts.URL, mapID); item["state"] != "failed" {
		t.Fatalf("poison-map: %v", item["state"])
	}
	waitFor(t, "both poisons failed", func() bool { return len(logLines(logs.String(), "msg=\"inbox item failed\"")) >= 2 })
	if !strings.Contains(logs.String(), "retrying items one by one") {
		t.Fatalf("the poisons were not retried one by one:\n%s", logs.String())
	}
	if got := logLines(logs.String(), "boom while mapping", "please report it with this stack"); len(got) != 1 {
		t.Errorf("the mapping panic's stack was logged %d times, want once:\n%s", len(got), logs.String())
	}
	if got := logLines(logs.String(), "boom while mapping", "stack=", "inbox="+mapID); len(got) != 1 {
		t.Errorf("the mapping panic's log line does not name inbox %s:\n%s", mapID, logs.String())
	}
}
