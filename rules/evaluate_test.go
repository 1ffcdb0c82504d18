package rules

import (
	"encoding/json"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/hookline/hookline/event"
)

const logThen = "    then: [ { log: { file: a.log, line: x } } ]\n"

func ids(res Result) []string {
	out := make([]string, 0, len(res.Trace))
	for _, te := range res.Trace {
		out = append(out, te.Rule)
	}
	return out
}

func TestIndexSelectsByTypeAndConnector(t *testing.T) {
	src := "rules:\n" +
		"  - id: exact\n    on: ticket.created\n" + logThen +
		"  - id: prefix\n    on: \"ticket.*\"\n" + logThen +
		"  - id: all\n    on: \"*\"\n" + logThen +
		"  - id: any-created\n    on: \"*.created\"\n" + logThen +
		"  - id: other-type\n    on: chat.started\n" + logThen +
		"  - id: zendesk-only\n    on: ticket.created\n    connector: zendesk\n" + logThen +
		"  - id: spoki-or-zendesk\n    on: \"ticket.*\"\n    connector: [spoki, zendesk]\n" + logThen +
		"  - id: spoki-only\n    on: ticket.created\n    connector: spoki\n" + logThen +
		"  - id: twice\n    on: [ticket.created, \"ticket.*\", \"tick*\"]\n" + logThen +
		"  - id: manual-only\n    on: manual\n" + logThen +
		"  - id: short-prefix\n    on: \"t*\"\n" + logThen
	s := mustCompile(t, src, Options{})
	cases := []struct {
		typ, conn string
		want      []string
	}{
		{"ticket.created", "zendesk", []string{"exact", "prefix", "all", "any-created", "zendesk-only", "spoki-or-zendesk", "twice", "short-prefix"}},
		{"ticket.created", "spoki", []string{"exact", "prefix", "all", "any-created", "spoki-or-zendesk", "spoki-only", "twice", "short-prefix"}},
		{"ticket.updated", "other", []string{"prefix", "all", "twice", "short-prefix"}},
		{"chat.started", "zendesk", []string{"all", "other-type"}},
		{"task.created", "zendesk", []string{"all", "any-created", "short-prefix"}},
		{"kb.deleted", "x", []string{"all"}},
	}
	for _, tc := range cases {
		ev := mkEvent(tc.typ, nil)
		ev.Connector = tc.conn
		res := s.Evaluate(Input{Event: ev, Now: time.Now()})
		if got := ids(res); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s from %s: considered %q, want %q", tc.typ, tc.conn, got, tc.want)
		}
		if !reflect.DeepEqual(res.Matched, tc.want) {
			t.Errorf("%s from %s: matched %q", tc.typ, tc.conn, res.Matched)
		}
	}
}

func TestEvaluateNoEventNoRules(t *testing.T) {
	s := mustCompile(t, "rules:\n  - id: a\n    on: x.y\n"+logThen, Options{})
	if res := s.Evaluate(Input{}); res.Trace != nil || res.Matched != nil {
		t.Errorf("nil event: %+v", res)
	}
	if res := s.Evaluate(Input{Event: mkEvent("other.type", nil)}); res.Trace != nil {
		t.Errorf("unrelated event: %+v", res)
	}
	empty, errs := Compile(nil, Options{})
	if errs != nil || len(empty.Rules()) != 0 {
		t.Fatalf("empty set: %v", errs)
	}
	if res := empty.Evaluate(Input{Event: mkEvent("x.y", nil)}); len(res.Trace) != 0 {
		t.Errorf("empty set: %+v", res)
	}
}

func TestActionsDoNotChangeWhatLaterRulesSee(t *testing.T) {
	src := `rules:
  - id: solve
    on: ticket.updated
    when: { field: status, is: open }
    then: [ { set_status: solved } ]
  - id: still-open
    on: ticket.updated
    when: { field: status, is: open }
    then: [ { add_tags: seen_open } ]
`
	res := fire(t, src, Options{}, mkEvent("ticket.updated", map[string]any{"status": "open"}), nil)
	if !reflect.DeepEqual(res.Matched, []string{"solve", "still-open"}) || len(res.Updates) != 2 {
		t.Fatalf("res = %+v", res)
	}
}

func TestGuardsSkip(t *testing.T) {
	src := "rules:\n" +
		"  - id: plain\n    on: ticket.updated\n" + logThen +
		"  - id: own\n    on: ticket.updated\n    on_own_changes: true\n" + logThen +
		"  - id: off\n    on: ticket.updated\n    enabled: false\n" + logThen
	s := mustCompile(t, src, Options{})
	skipped := func(res Result) map[string]string {
		m := map[string]string{}
		for _, te := range res.Trace {
			m[te.Rule] = te.Skipped
		}
		return m
	}
	now := time.Now()

	ev := mkEvent("ticket.updated", nil)
	res := s.Evaluate(Input{Event: ev, Now: now})
	if got := skipped(res); !reflect.DeepEqual(got, map[string]string{"plain": "", "own": "", "off": "disabled"}) {
		t.Errorf("normal: %v", got)
	}

	ev.Causation.Echo = true
	res = s.Evaluate(Input{Event: ev, Now: now})
	if got := skipped(res); got["plain"] != SkipEcho || got["own"] != "" || !reflect.DeepEqual(res.Matched, []string{"own"}) {
		t.Errorf("echo: %v matched %v", got, res.Matched)
	}
	ev.Causation.Echo = false
	ev.Actor.Type = event.ActorGateway
	if got := skipped(s.Evaluate(Input{Event: ev, Now: now})); got["plain"] != SkipEcho {
		t.Errorf("gateway actor: %v", got)
	}
	ev.Actor.Type = ""

	ev.Causation.Hops = 5
	res = s.Evaluate(Input{Event: ev, Now: now})
	if got := skipped(res); got["plain"] != "hop limit 5 reached" || got["own"] != "hop limit 5 reached" || len(res.Matched) != 0 {
		t.Errorf("hops: %v", got)
	}
	ev.Causation.Hops = 4
	if res := s.Evaluate(Input{Event: ev, Now: now}); len(res.Matched) != 2 || res.Updates[0].Hops != 5 {
		t.Errorf("hops 4: %+v", res)
	}
	s3 := mustCompile(t, src, Options{MaxHops: 3})
	ev.Causation.Hops = 3
	if got := skipped(s3.Evaluate(Input{Event: ev, Now: now})); got["plain"] != "hop limit 3 reached" {
		t.Errorf("max hops 3: %v", got)
	}
	off := mustCompile(t, src, Options{MaxHops: -1})
	ev.Causation.Hops = 100
	if res := off.Evaluate(Input{Event: ev, Now: now}); len(res.Matched) != 2 {
		t.Errorf("hop limit disabled: %+v", res.Trace)
	}
}

func TestLimits(t *testing.T) {
	now := at(t, "2025-06-02T10:00:00Z")
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	src := "rules:\n" +
		"  - id: once\n    on: ticket.updated\n    once_per_item: true\n" + logThen +
		"  - id: item\n    on: ticket.updated\n    limit: { max: 2, per: 1h }\n" + logThen +
		"  - id: agg\n    on: ticket.updated\n    limit: { max: 1, per: 24h, scope: rule }\n" + logThen +
		"  - id: free\n    on: ticket.updated\n" + logThen
	s := mustCompile(t, src, Options{MaxFiringsPerHour: 3})
	var asked []string
	var askedSince time.Time
	ruleFirings := func(n int) func(string, time.Time) int {
		return func(id string, since time.Time) int {
			asked = append(asked, id)
			askedSince = since
			return n
		}
	}
	cases := []struct {
		name     string
		fired    map[string][]time.Time
		ruleN    int
		skipped  map[string]string
		firings  []Firing
		askedFor []string
	}{
		{"nothing fired yet", nil, 0, map[string]string{},
			[]Firing{{"once", "item", now}, {"item", "item", now}, {"agg", "item", now}, {"agg", "rule", now}, {"free", "item", now}}, []string{"agg"}},
		{"fired before", map[string][]time.Time{"once": {ago(100 * time.Hour)}, "item": {ago(2 * time.Hour), ago(30 * time.Minute), ago(10 * time.Minute)},
			"free": {ago(50 * time.Minute), ago(20 * time.Minute), ago(time.Minute)}}, 1,
			map[string]string{"once": SkipOnce, "item": "limit 2 per 1h reached", "agg": "limit 1 per 24h reached", "free": "firing cap 3/h reached (loop guard)"}, nil, []string{"agg"}},
		{"old firings do not count", map[string][]time.Time{"item": {ago(2 * time.Hour), ago(61 * time.Minute), ago(10 * time.Minute)},
			"free": {ago(3 * time.Hour), ago(2 * time.Hour), ago(time.Minute)}}, 0,
			map[string]string{}, nil, []string{"agg"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			asked = nil
			res := s.Evaluate(Input{Event: mkEvent("ticket.updated", nil), Snapshot: &event.Snapshot{Fired: tc.fired}, Now: now, RuleFirings: ruleFirings(tc.ruleN)})
			for _, te := range res.Trace {
				if te.Skipped != tc.skipped[te.Rule] {
					t.Errorf("%s: skipped %q, want %q", te.Rule, te.Skipped, tc.skipped[te.Rule])
				}
				if te.Matched != (tc.skipped[te.Rule] == "") {
					t.Errorf("%s: matched %v", te.Rule, te.Matched)
				}
			}
			if tc.firings != nil && !reflect.DeepEqual(res.Firings, tc.firings) {
				t.Errorf("firings = %+v", res.Firings)
			}
			if !reflect.DeepEqual(asked, tc.askedFor) || !askedSince.Equal(ago(24*time.Hour)) {
				t.Errorf("RuleFirings asked for %v since %v", asked, askedSince)
			}
		})
	}
	t.Run("conditions first: a non-matching rule asks the store nothing", func(t *testing.T) {
		s := mustCompile(t, "rules:\n  - id: agg\n    on: ticket.updated\n    when: { field: status, is: open }\n    limit: { max: 1, per: 1h, scope: rule }\n"+logThen, Options{})
		asked = nil
		s.Evaluate(Input{Event: mkEvent("ticket.updated", nil), Now: now, RuleFirings: ruleFirings(0)})
		if asked != nil {
			t.Errorf("asked %v", asked)
		}
	})
	t.Run("cap disabled", func(t *testing.T) {
		s := mustCompile(t, "rules:\n  - id: free\n    on: ticket.updated\n"+logThen, Options{MaxFiringsPerHour: -1})
		many := make([]time.Time, 100)
		for i := range many {
			many[i] = ago(time.Duration(i) * time.Second)
		}
		res := s.Evaluate(Input{Event: mkEvent("ticket.updated", nil), Snapshot: &event.Snapshot{Fired: map[string][]time.Time{"free": many}}, Now: now})
		if !matched(res, "free") {
			t.Errorf("trace %+v", res.Trace)
		}
	})
	t.Run("default cap is 20", func(t *testing.T) {
		s := mustCompile(t, "rules:\n  - id: free\n    on: ticket.updated\n"+logThen, Options{})
		fired := make([]time.Time, 20)
		for i := range fired {
			fired[i] = ago(time.Duration(i+1) * time.Minute)
		}
		res := s.Evaluate(Input{Event: mkEvent("ticket.updated", nil), Snapshot: &event.Snapshot{Fired: map[string][]time.Time{"free": fired}}, Now: now})
		if te := traceOf(res, "free"); te.Skipped != "firing cap 20/h reached (loop guard)" {
			t.Errorf("trace %+v", te)
		}
		res = s.Evaluate(Input{Event: mkEvent("ticket.updated", nil), Snapshot: &event.Snapshot{Fired: map[string][]time.Time{"free": fired[:19]}}, Now: now})
		if !matched(res, "free") {
			t.Errorf("19 firings: %+v", res.Trace)
		}
	})
}

func TestRun(t *testing.T) {
	src := `rules:
  - id: escalate
    on: manual
    when: { field: status, is: never }
    once_per_item: true
    then:
      - set_group: tier2
      - set_priority: urgent
      - call_webhook: { url: "https://crm.example.com/escalate?ref={{ .Event.Reference }}" }
  - id: off
    enabled: false
    on: manual
    then: [ { set_priority: low } ]
`
	s := mustCompile(t, src, Options{})
	now := time.Now()
	ev := mkEvent("ticket.manual", nil)
	if res := s.Evaluate(Input{Event: &event.Event{Type: "manual"}, Now: now}); len(res.Trace) != 0 {
		t.Errorf("manual rules were evaluated for an event: %+v", res.Trace)
	}
	res, err := s.Run("escalate", Input{Event: ev, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res.Matched, []string{"escalate"}) || len(res.Updates) != 2 ||
		!reflect.DeepEqual(res.Updates[0].Set, map[string]any{"group": "tier2", "priority": "urgent"}) ||
		res.Updates[1].Webhook.URL != "https://crm.example.com/escalate?ref=42" || len(res.Firings) != 1 {
		t.Fatalf("run = %+v", res)
	}
	res, _ = s.Run("escalate", Input{Event: ev, Snapshot: &event.Snapshot{Fired: map[string][]time.Time{"escalate": {now.Add(-time.Hour)}}}, Now: now})
	if len(res.Matched) != 0 || res.Trace[0].Skipped != SkipOnce {
		t.Errorf("limited run = %+v", res)
	}
	res, _ = s.Run("off", Input{Event: ev, Now: now})
	if len(res.Matched) != 0 || res.Trace[0].Skipped != SkipDisabled {
		t.Errorf("disabled run = %+v", res)
	}
	if _, err := s.Run("nope", Input{Event: ev, Now: now}); !errors.Is(err, ErrUnknownRule) {
		t.Errorf("unknown rule: %v", err)
	}
	if _, err := s.Run("escalate", Input{Now: now}); err == nil {
		t.Error("run without an event succeeded")
	}
}

func TestTraceJSON(t *testing.T) {
	s := mustCompile(t, oneRule("{ field: status, is: open }"), Options{})
	res := s.Evaluate(Input{Event: mkEvent("ticket.updated", map[string]any{"status": "new"}), Now: time.Now()})
	b, err := json.Marshal(res.Trace)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"rule":"r","matched":false,"failed":{"condition":"status is open","field":"status","actual":"new","pos":"rules.yaml:4:11"}}]`
	if string(b) != want {
		t.Errorf("trace JSON = %s\nwant         %s", b, want)
	}
}

func TestConcurrentEvaluate(t *testing.T) {
	s := mustCompile(t, oneRule("{ field: status, is: open }"), Options{})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status := "open"
			if i%2 == 1 {
				status = "new"
			}
			for range 200 {
				res := s.Evaluate(Input{Event: mkEvent("ticket.updated", map[string]any{"status": status}), Now: time.Now()})
				if matched(res, "r") != (status == "open") {
					t.Errorf("wrong result for %s", status)
					return
				}
			}
		}()
	}
	wg.Wait()
}
