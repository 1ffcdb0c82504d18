package connectors

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/internal/yamlconf"
)

// renderUpdates are realistic updates for the shipped outbound actions,
// including ones that must fail to render (Intercom's one-change rule,
// Freshdesk's tags, a missing variable).
func renderUpdates() []*event.Update {
	vars := map[string]string{"TICKET_REFERENCE": "5158", "PHONE_NUMBER_ID": "1065551234", "THREAD_TS": "1700000000.000100",
		"BUSINESS_ADDRESS": "whatsapp:+15550001111", "CUSTOMER_PHONE": "+39 333 1234567"}
	return []*event.Update{
		{Kind: event.KindUpdateEntity, RuleID: "solve-abandoned", EventID: "01EVT", Connector: "zendesk", Entity: "ticket", Reference: "5158",
			Set: map[string]any{"status": "solved", "priority": "high"}, AddTags: []string{"abandoned_conversation"}, Vars: vars},
		{Kind: event.KindUpdateEntity, RuleID: "escalate", EventID: "01EVU", Entity: "ticket", Reference: "a/../b c",
			Set:        map[string]any{"group": "43000012345", "owner": "360001234567", "subject": `Refund "asap" <b>&</b> ` + "\u2028 é", "custom.360012": "vip", "custom.99": 3.5},
			RemoveTags: []string{"new", "<x>"}},
		{Kind: event.KindUpdateEntity, RuleID: "snooze", Entity: "chat", Reference: "215470",
			Set: map[string]any{"status": "snoozed", "snoozed_until": "1700000000"}, Vars: vars},
		{Kind: event.KindUpdateEntity, RuleID: "assign", Entity: "chat", Reference: "215470", Set: map[string]any{"owner": "unassigned"}},
		{Kind: event.KindUpdateEntity, RuleID: "close", Entity: "chat", Reference: "215470", Set: map[string]any{"status": "closed"}},
		{Kind: event.KindUpdateEntity, RuleID: "team", Entity: "ticket", Reference: "77", Set: map[string]any{"group": 12.0, "flag": true, "none": nil, "list": []any{"a", 1.0}}},
		{Kind: event.KindUpdateEntity, RuleID: "empty", Entity: "ticket", Reference: "78"},
		{Kind: event.KindUpdateEntity, RuleID: "two", Entity: "chat", Reference: "79", Set: map[string]any{"status": "open", "owner": "1"}},
		{Kind: event.KindSendMessage, RuleID: "reply", EventID: "01EVV", Entity: "message", Reference: "+393331234567",
			Message: &event.Message{Text: "Hello <Ann> & \"team\"\nline two \u2029 \xff"}, Vars: vars},
		{Kind: event.KindSendMessage, RuleID: "reply-to", Entity: "chat", Reference: "C024BE91L",
			Message: &event.Message{Text: "ciao", To: "C99/x y"}, Vars: map[string]string{"OTHER": "1"}},
		{Kind: event.KindSendMessage, RuleID: "no-vars", Entity: "chat", Reference: "42"},
	}
}

// renderCase is an update with what is known of its entity.
type renderCase struct {
	*event.Update
	target *event.Snapshot
}

// renderCases are renderUpdates once with nothing known of the entity and
// once more with a snapshot that knows its tags.
func renderCases() []renderCase {
	known := &event.Snapshot{Fields: map[string]any{"tags": []any{"vip", "new", "billing"}, "status": "open"}}
	var out []renderCase
	for _, target := range []*event.Snapshot{nil, known} {
		for _, u := range renderUpdates() {
			out = append(out, renderCase{u, target})
		}
	}
	return out
}

// shippedOutbounds loads every shipped connector file that has an outbound
// section.
func shippedOutbounds(t *testing.T) map[string]*Outbound {
	t.Helper()
	files := shippedFiles(t)
	if len(files) == 0 {
		t.Fatal("no shipped connectors")
	}
	out := map[string]*Outbound{}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		if _, err := os.Stat(f); err != nil {
			t.Fatal(err)
		}
		c := loadShipped(t, name, nil)
		if c.Outbound != nil {
			out[name] = c.Outbound
		}
	}
	return out
}

// TestShippedTemplatesPlanMatchesTextTemplate renders every outbound template
// of the shipped connectors with realistic updates through the renderer's
// plan and through text/template: byte-identical output and the same errors.
// It also pins which templates run on the plan, so a silent fallback to
// text/template everywhere fails.
func TestShippedTemplatesPlanMatchesTextTemplate(t *testing.T) {
	wantPlanned := []string{
		"freshdesk.send_message.body", "freshdesk.send_message.path", "freshdesk.update_ticket.body", "freshdesk.update_ticket.path",
		"generic.send_message.body", "generic.send_message.headers.X-Hookline-Rule", "generic.update.body", "generic.update.headers.X-Hookline-Rule",
		"intercom.send_message.body", "intercom.send_message.path", "intercom.update_chat.body", "intercom.update_chat.path",
		"slack.send_message.body", "slack.send_message.path",
		"spoki.update_ticket.body",
		"twilio.send_message.body", "twilio.send_message.headers.Content-Type", "twilio.send_message.path",
		"whatsapp.send_message.body", "whatsapp.send_message.path",
		"zendesk.update_ticket.body", "zendesk.update_ticket.path",
	}
	var planned, all []string
	for name, o := range shippedOutbounds(t) {
		for _, a := range o.Actions {
			parts := map[string]*yamlconf.Renderer{"path": a.path, "body": a.body}
			for h, r := range a.headers {
				parts["headers."+h] = r
			}
			for part, r := range parts {
				if r == nil {
					continue
				}
				id := name + "." + a.Name + "." + part
				all = append(all, id)
				if r.Planned() {
					planned = append(planned, id)
				} else {
					t.Logf("%s: no plan: %s", id, yamlconf.PlanReport(r.Template()))
				}
				ran, failed := 0, 0
				for i, u := range renderCases() {
					data := o.templateData(u.Update, "01DLV", u.target)
					want, werr := yamlconf.Execute(r.Template(), data)
					got, gerr := r.Execute(data)
					if got != want || errText(gerr) != errText(werr) {
						t.Errorf("%s, update %d:\n got %q, %v\nwant %q, %v", id, i, got, gerr, want, werr)
					}
					if werr != nil {
						failed++
					}
					b, ok := r.AppendPlanned(nil, data)
					if !ok {
						continue
					}
					ran++
					if werr != nil || string(b) != want {
						t.Errorf("%s, update %d: plan rendered %q; text/template %q, %v", id, i, b, want, werr)
					}
				}
				if r.Planned() && ran == 0 {
					t.Errorf("%s: planned, but the plan rendered none of the updates (text/template failed %d times)", id, failed)
				}
			}
		}
	}
	slices.Sort(planned)
	if !slices.Equal(planned, wantPlanned) {
		t.Errorf("planned templates:\n got %q\nwant %q\n(all: %q)", planned, wantPlanned, all)
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestRenderRequestsUnchanged: whole requests (URL, headers, body, errors)
// of every shipped action, rendered by Render, equal those rendered with
// text/template alone; the URL cache is exercised by rendering twice.
func TestRenderRequestsUnchanged(t *testing.T) {
	for name, o := range shippedOutbounds(t) {
		for i, rc := range renderCases() {
			u := rc.Update
			a := o.Actions[o.ActionFor(u)]
			if a == nil {
				continue
			}
			name := name + "." + a.Name
			for round := range 2 {
				req, err := o.Render(u, "01DLV", rc.target)
				data := o.templateData(u, "01DLV", rc.target)
				var wantURL, wantBody string
				var werr error
				if u.Kind == event.KindUpdateEntity {
					// Refused before any template runs.
					if werr = a.CheckUpdate(u); werr != nil {
						if err == nil || !strings.Contains(err.Error(), werr.Error()) {
							t.Errorf("%s update %d: Render error %v, want %v", name, i, err, werr)
						}
						continue
					}
				}
				if a.path != nil {
					p, e := yamlconf.Execute(a.path.Template(), data)
					werr = e
					wantURL = o.BaseURL + strings.TrimSpace(p)
				} else {
					wantURL = o.BaseURL
				}
				if a.body != nil && werr == nil {
					wantBody, werr = yamlconf.Execute(a.body.Template(), data)
					if werr == nil && u.Kind == event.KindUpdateEntity && isEmptyJSONUpdate([]byte(wantBody)) {
						werr = fmt.Errorf("the body %s changes nothing", strings.Join(strings.Fields(wantBody), ""))
					}
				}
				if (err != nil) != (werr != nil) {
					t.Fatalf("%s update %d round %d: Render error %v, text/template error %v", name, i, round, err, werr)
				}
				if err != nil {
					if !strings.Contains(err.Error(), werr.Error()) {
						t.Errorf("%s update %d: Render error %v lacks %v", name, i, err, werr)
					}
					continue
				}
				if strings.HasPrefix(strings.TrimPrefix(wantURL, o.BaseURL), "/") && req.URL != wantURL {
					t.Errorf("%s update %d: URL %q, want %q", name, i, req.URL, wantURL)
				}
				if string(req.Body) != wantBody {
					t.Errorf("%s update %d: body %q, want %q", name, i, req.Body, wantBody)
				}
			}
		}
	}
}

// TestRenderURLCacheFollowsBaseURL: a changed base_url (tests point
// connectors at httptest servers) is honoured, and a path leaving the base
// URL's host is refused every time.
func TestRenderURLCacheFollowsBaseURL(t *testing.T) {
	o := loadShipped(t, "slack", nil).Outbound
	u := &event.Update{Kind: event.KindSendMessage, Reference: "C1", Message: &event.Message{Text: "x"}}
	for _, base := range []string{o.BaseURL, "http://127.0.0.1:1234/api", o.BaseURL} {
		o.BaseURL = base
		for range 2 {
			req, err := o.Render(u, "d", nil)
			if err != nil {
				t.Fatal(err)
			}
			if req.URL != base+"/chat.postMessage" {
				t.Errorf("URL %q, want %q", req.URL, base+"/chat.postMessage")
			}
		}
	}
	a := &Action{Name: "x"}
	for range 2 {
		if _, err := a.joinURL("https://a.example", "https://b.example/x"); err == nil || !strings.Contains(err.Error(), "leaves the connector's base_url") {
			t.Errorf("joinURL to another host: %v", err)
		}
		if got, err := a.joinURL("https://a.example", "https://a.example/x"); err != nil || got != "https://a.example/x" {
			t.Errorf("joinURL absolute on the same host: %q, %v", got, err)
		}
		if got, err := a.joinURL("https://a.example", "x/y"); err != nil || got != "https://a.example/x/y" {
			t.Errorf("joinURL relative: %q, %v", got, err)
		}
		if _, err := a.joinURL("https://a.example", "/%zz"); err == nil {
			t.Error("joinURL of an invalid URL: no error")
		}
	}
}

// TestJoinURLRefusesDotSegmentsAndLeavingTheBasePath: a joined URL whose
// path holds "." or ".." (percent-encoded or not) or leaves base_url's path
// is refused; a ".." inside one escaped segment is not a dot segment.
func TestJoinURLRefusesDotSegmentsAndLeavingTheBasePath(t *testing.T) {
	const base = "https://graph.example/v21.0"
	cases := []struct {
		path, want string // want "": joined as base+path
	}{
		{"/1065/messages", ""},
		{"/a%2F..%2Fb/messages", ""},
		{"/...", ""},
		{"/..json", ""},
		{"/../messages", "dot segment"},
		{"/./messages", "dot segment"},
		{"/1065/..", "dot segment"},
		{"/%2E%2E/messages", "dot segment"},
		{"/%2e/messages", "dot segment"},
		{"/1065/.%2E", "dot segment"},
		{"https://graph.example/v22.0/1065/messages", "leaves the connector's base_url path"},
		{"https://graph.example/v21.0x/messages", "leaves the connector's base_url path"},
		{"https://graph.example/v21.0/1065/messages", ""},
	}
	for _, tc := range cases {
		a := &Action{Name: "send_message"}
		got, err := a.joinURL(base, tc.path)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("joinURL(%q): %v", tc.path, err)
		case tc.want == "" && got != base+tc.path && got != tc.path:
			t.Errorf("joinURL(%q) = %q", tc.path, got)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("joinURL(%q) = %q, %v; want an error containing %q", tc.path, got, err, tc.want)
		}
	}
}

// TestPathEscapeDotSegments: url.PathEscape leaves "." and ".." as they
// are; PathEscape encodes them so that they are never dot segments.
func TestPathEscapeDotSegments(t *testing.T) {
	d := &TemplateData{}
	for in, want := range map[string]string{".": "%2E", "..": "%2E%2E", "...": "...", "a/../b": "a%2F..%2Fb", "5158": "5158", "": ""} {
		if got := d.PathEscape(in); got != want {
			t.Errorf("PathEscape(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestNumber: numbers and numeric strings render as JSON numbers, nil (a
// field cleared with null) as null, anything else is an error.
func TestNumber(t *testing.T) {
	d := &TemplateData{}
	for _, tc := range []struct {
		in   any
		want string
	}{{float64(8447388090494), "8447388090494"}, {"360000111", "360000111"}, {nil, "null"}, {"", ""}, {"senior_support", ""}} {
		got, err := d.Number(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("Number(%#v) = %q, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Number(%#v) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// TestTemplateDataSetSharedOnlyWhenUnmapped: the update's Set is shared with
// templates only when no value map changes a value.
func TestTemplateDataSetSharedOnlyWhenUnmapped(t *testing.T) {
	fd := loadShipped(t, "freshdesk", nil).Outbound
	zd := loadShipped(t, "zendesk", nil).Outbound
	set := map[string]any{"status": "solved", "list": []any{1.0}}
	u := &event.Update{Kind: event.KindUpdateEntity, Set: set}
	if d := zd.templateData(u, "d", nil); d.Set["status"] != "solved" {
		t.Errorf("zendesk status %v", d.Set["status"])
	}
	d := fd.templateData(u, "d", nil)
	if d.Set["status"] != "4" || set["status"] != "solved" {
		t.Errorf("freshdesk status %v (update's %v)", d.Set["status"], set["status"])
	}
	if d := fd.templateData(&event.Update{Kind: event.KindUpdateEntity}, "d", nil); d.Set == nil {
		t.Error("nil Set for templates")
	}
}

func BenchmarkRenderGenericUpdate(b *testing.B) {
	c := loadShipped(b, "generic", nil)
	u := &event.Update{
		Kind: event.KindUpdateEntity, RuleID: "solve-abandoned", EventID: "01EVT", Connector: "zendesk", Entity: "ticket", Reference: "5158",
		Set: map[string]any{"status": "solved", "priority": "high"}, AddTags: []string{"abandoned_conversation"},
		Vars: map[string]string{"TICKET_REFERENCE": "5158"},
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Outbound.Render(u, "01DLV", nil); err != nil {
			b.Fatal(err)
		}
	}
}

// TestMergedTags: the tag list after an update, from what the snapshot knows.
func TestMergedTags(t *testing.T) {
	snap := func(fields map[string]any) *event.Snapshot { return &event.Snapshot{Fields: fields} }
	tests := []struct {
		name        string
		target      *event.Snapshot
		add, remove []string
		want        []string
		wantCurrent []string
		wantErr     string
	}{
		{"add and remove keep order", snap(map[string]any{"tags": []string{"refund", "new", "vip"}}),
			[]string{"unhappy", "vip", "unhappy"}, []string{"new"}, []string{"refund", "vip", "unhappy"}, []string{"refund", "new", "vip"}, ""},
		{"tags decoded from JSON", snap(map[string]any{"tags": []any{"a", "b"}}), []string{"c"}, nil, []string{"a", "b", "c"}, []string{"a", "b"}, ""},
		{"duplicates in the snapshot collapse", snap(map[string]any{"tags": []string{"a", "a", "", "b"}}), nil, []string{"b"}, []string{"a"}, []string{"a", "a", "", "b"}, ""},
		{"remove wins over add", snap(map[string]any{"tags": []string{"a"}}), []string{"x"}, []string{"x", "a"}, []string{}, []string{"a"}, ""},
		{"known empty list", snap(map[string]any{"tags": []string{}}), []string{"first"}, nil, []string{"first"}, []string{}, ""},
		{"known but null", snap(map[string]any{"tags": nil}), []string{"first"}, nil, []string{"first"}, []string{}, ""},
		{"no tags field", snap(map[string]any{"status": "open"}), []string{"x"}, nil, nil, nil,
			"the current tags of ticket 7 are unknown (no webhook has carried its tags yet): refusing to replace its tag list"},
		{"no snapshot", nil, nil, []string{"x"}, nil, nil, "the current tags of ticket 7 are unknown"},
	}
	o := &Outbound{Name: "t"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := o.templateData(&event.Update{Kind: event.KindUpdateEntity, Entity: "ticket", Reference: "7", AddTags: tt.add, RemoveTags: tt.remove}, "d", tt.target)
			got, err := d.MergedTags()
			cur, cerr := d.CurrentTags()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || cerr == nil {
					t.Fatalf("MergedTags = %q, %v; CurrentTags error %v; want an error containing %q", got, err, cerr, tt.wantErr)
				}
				return
			}
			if err != nil || cerr != nil {
				t.Fatalf("MergedTags error %v, CurrentTags error %v", err, cerr)
			}
			if !slices.Equal(got, tt.want) || got == nil {
				t.Errorf("MergedTags = %q, want %q", got, tt.want)
			}
			if !slices.Equal(cur, tt.wantCurrent) {
				t.Errorf("CurrentTags = %q, want %q", cur, tt.wantCurrent)
			}
		})
	}
}

// TestRenderFreshdeskTags renders Freshdesk's ticket update with tag
// changes: the merged list when the ticket's tags are known, an error (and
// no request) when they are not.
func TestRenderFreshdeskTags(t *testing.T) {
	o := loadShipped(t, "freshdesk", nil).Outbound
	u := &event.Update{Kind: event.KindUpdateEntity, Connector: "freshdesk", Entity: "ticket", Reference: "1042",
		Set: map[string]any{"priority": "high"}, AddTags: []string{"unhappy"}, RemoveTags: []string{"new"}}
	tests := []struct {
		name     string
		target   *event.Snapshot
		wantBody string
		wantErr  string
	}{
		{"known tags", &event.Snapshot{Fields: map[string]any{"tags": []string{"refund", "new", "vip"}}}, `{"priority": 3,"tags": ["refund","vip","unhappy"]}`, ""},
		{"known, none left", &event.Snapshot{Fields: map[string]any{"tags": []string{"new"}}}, `{"priority": 3,"tags": ["unhappy"]}`, ""},
		{"unknown tags", &event.Snapshot{Fields: map[string]any{"status": "open"}}, "", "error calling MergedTags: the current tags of ticket 1042 are unknown"},
		{"no snapshot", nil, "", "the current tags of ticket 1042 are unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := o.Render(u, "d", tt.target)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || req != nil {
					t.Fatalf("Render = %v, %v; want an error containing %q", req, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(strings.Fields(string(req.Body)), ""); got != strings.Join(strings.Fields(tt.wantBody), "") {
				t.Errorf("body %s, want %s", req.Body, tt.wantBody)
			}
			// The new data fields run on the template's execution plan.
			if b, ok := o.Actions["update_ticket"].body.AppendPlanned(nil, o.templateData(u, "d", tt.target)); !ok || string(b) != string(req.Body) {
				t.Errorf("plan rendered %q, %v; want %q", b, ok, req.Body)
			}
		})
	}
	// Without tag changes the tags are left alone, known or not.
	plain := &event.Update{Kind: event.KindUpdateEntity, Connector: "freshdesk", Entity: "ticket", Reference: "1042", Set: map[string]any{"priority": "high"}}
	req, err := o.Render(plain, "d", nil)
	if err != nil || strings.Contains(string(req.Body), "tags") {
		t.Errorf("update without tag changes: %v, %v", req, err)
	}
}

// TestRenderRefusesEmptyUpdateBody: an update action without fields whose
// body renders nothing for the update ({} or {"ticket": {}}) fails instead
// of sending a request that changes nothing and succeeds.
func TestRenderRefusesEmptyUpdateBody(t *testing.T) {
	c := loadYAML(t, "t.yaml", `connector: t
outbound:
  base_url: https://t.example
  actions:
    update_ticket:
      method: PUT
      path: '/tickets/{{ .PathEscape .Reference }}'
      body: '{"ticket": { {{- if .Has "status" }}"status": {{ json (.Field "status") }}{{ end -}} }}'
    update_user:
      method: PUT
      body: '{ {{- if .Has "status" }}"status": {{ json (.Field "status") }}{{ end -}} }'
    update_chat:
      method: PUT
      body: '{"chat": {"meta": {}, "status": {{ json (.Field "status") }}}}'
`, nil)
	o := c.Outbound
	cases := []struct {
		entity string
		set    map[string]any
		want   string // "": renders
	}{
		{"ticket", map[string]any{"status": "open"}, ""},
		{"ticket", map[string]any{"channel": "email"}, `the body {"ticket":{}} changes nothing, so the update (set channel) would be lost`},
		{"user", map[string]any{"category": "x"}, `the body {} changes nothing, so the update (set category) would be lost`},
		{"chat", map[string]any{"channel": "email"}, ""}, // "status": "" is a change
	}
	for _, tc := range cases {
		req, err := o.Render(&event.Update{Kind: event.KindUpdateEntity, Connector: "t", Entity: tc.entity, Reference: "1", Set: tc.set}, "d", nil)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s %v: %v", tc.entity, tc.set, err)
			}
			continue
		}
		if !errors.Is(err, ErrRender) || !strings.Contains(err.Error(), tc.want) || req != nil {
			t.Errorf("%s %v: Render = %v, %v; want an error containing %q", tc.entity, tc.set, req, err, tc.want)
		}
	}
}

// TestRenderErrorRedactsSecrets: a render error quotes the rendered body;
// credentials in it are redacted: a ${ENV} secret pasted into a body (the
// value of a key named like a credential, even when the secret's quote
// broke the JSON) and the connector's auth credentials wherever they are.
func TestRenderErrorRedactsSecrets(t *testing.T) {
	const secret = `S3cr"et\tok,x`
	c := loadShipped(t, "spoki", map[string]string{"SPOKI_AUTOMATION_SECRET": secret})
	u := &event.Update{Kind: event.KindUpdateEntity, Entity: "ticket", Reference: "5158", Set: map[string]any{"status": "open"},
		Vars: map[string]string{"CUSTOMER_PHONE": "+39333"}}
	_, err := c.Outbound.Render(u, "01DLV", nil)
	if !errors.Is(err, ErrRender) || !strings.Contains(err.Error(), "not valid JSON") {
		t.Fatalf("a secret with a quote: %v", err)
	}
	for _, part := range []string{"S3cr", `tok`, ",x"} {
		if strings.Contains(err.Error(), part) {
			t.Errorf("the error shows the secret (%q): %v", part, err)
		}
	}
	if !strings.Contains(err.Error(), `[redacted]`) || !strings.Contains(err.Error(), `+39333`) {
		t.Errorf("the excerpt should keep the body around the secret: %v", err)
	}

	// The auth credentials, in any key, raw or JSON-escaped; short values
	// (Freshdesk's password "X") are not secrets and stay.
	o := loadYAML(t, "t.yaml", `connector: t
outbound:
  base_url: https://t.example
  auth: { type: bearer, token: 'tok/"live"-98765' }
  actions:
    update:
      body: |
        {"note": {{ json "tok/\"live\"-98765" }}, "raw": "tok/"live"-98765", "X": 1, "api_key": 12345, "keep": "visible"}
`, nil).Outbound
	_, err = o.Render(&event.Update{Kind: event.KindUpdateEntity, Entity: "ticket", Reference: "1", Set: map[string]any{"status": "open"}}, "d", nil)
	if err == nil {
		t.Fatal("invalid JSON rendered")
	}
	for _, part := range []string{"live", "98765", "12345"} {
		if strings.Contains(err.Error(), part) {
			t.Errorf("the error shows a secret (%q): %v", part, err)
		}
	}
	if !strings.Contains(err.Error(), "visible") {
		t.Errorf("redaction removed more than the secrets: %v", err)
	}
}

// TestRedactSecretKeys: the value after a credential-named key ends at the
// end of a well-formed JSON string, else at the end of its line.
func TestRedactSecretKeys(t *testing.T) {
	for in, want := range map[string]string{
		`{"secret": "abc", "a": 1}`:             `{"secret": "[redacted]", "a": 1}`,
		`{"Api_Key":"a\"b"}`:                    `{"Api_Key":"[redacted]"}`,
		"{\"secret\": \"ab\"c\", \"a\": 1\n}":   "{\"secret\": \"[redacted]\"\n}",
		`{"auth_token": 42, "b": "x"}`:          `{"auth_token": "[redacted]", "b": "x"}`,
		`{"password": "p", "token": "t"}`:       `{"password": "[redacted]", "token": "[redacted]"}`,
		`{"subject": "my token: abc"}`:          `{"subject": "my token: abc"}`,
		"{\"authorization\": \"Bearer x\nyz\"}": "{\"authorization\": \"[redacted]\"\nyz\"}",
	} {
		if got := redactSecretKeys(in); got != want {
			t.Errorf("redactSecretKeys(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIsEmptyJSONUpdate(t *testing.T) {
	for body, want := range map[string]bool{
		`{}`:                                  true,
		` { "ticket" : { } } `:                true,
		`{"a":{"b":{}},"c":{}}`:               true,
		`{"ticket":{"status":"open"}}`:        false,
		`{"ticket":{"tags":[]}}`:              false,
		`{"ticket":{"owner":null}}`:           false,
		`{"n":0}`:                             false,
		`{"t:{":{}}`:                          true, // a colon inside a key
		`{"k\":\"":{}}`:                       true, // escaped quotes inside a key
		`{"k\\":"v"}`:                         false,
		`[]`:                                  false,
		`"{}"`:                                false,
		`{"ticket":{"comment":{"body":"x"}}}`: false,
	} {
		if !json.Valid([]byte(body)) {
			t.Fatalf("test body %s is not JSON", body)
		}
		if got := isEmptyJSONUpdate([]byte(body)); got != want {
			t.Errorf("isEmptyJSONUpdate(%s) = %v, want %v", body, got, want)
		}
	}
}

// An update action that carries its change in the path (fields declared)
// is sent with an empty JSON body; without fields, an empty body is still
// refused as an update that changes nothing.
func TestFieldsInThePathWithAnEmptyBody(t *testing.T) {
	const src = `connector: p
outbound:
  base_url: https://api.example.com
  actions:
    update_ticket:
      method: POST
      path: '/tickets/{{ .PathEscape .Reference }}/status/{{ .PathEscape (.Field "status") }}'
      body: '{}'
%s`
	u := &event.Update{Kind: event.KindUpdateEntity, Connector: "p", Entity: "ticket", Reference: "7", Set: map[string]any{"status": "open"}}
	c := loadYAML(t, "p.yaml", fmt.Sprintf(src, "      fields: [status]"), nil)
	req, err := c.Outbound.Render(u, "d1", nil)
	if err != nil || req.URL != "https://api.example.com/tickets/7/status/open" || string(req.Body) != "{}" {
		t.Fatalf("with fields: %+v, %v", req, err)
	}
	c = loadYAML(t, "p.yaml", fmt.Sprintf(src, ""), nil)
	if _, err := c.Outbound.Render(u, "d1", nil); !errors.Is(err, ErrRender) || !strings.Contains(err.Error(), "changes nothing") {
		t.Fatalf("without fields: %v, want the empty-update refusal", err)
	}
}

// A call_webhook URL with a dot segment, plain or percent-encoded, is
// refused: a server resolves it to another path.
func TestRenderWebhookRefusesDotSegments(t *testing.T) {
	for _, u := range []string{"https://ops.example.com/t/%2E%2E/admin", "https://ops.example.com/t/../admin", "https://ops.example.com/t/./x"} {
		up := &event.Update{Kind: event.KindCallWebhook, RuleID: "r", Webhook: &event.WebhookCall{URL: u}}
		if _, err := (*Outbound)(nil).Render(up, "d1", nil); !errors.Is(err, ErrRender) || !strings.Contains(err.Error(), "dot segment") {
			t.Errorf("%s: %v, want a dot-segment refusal", u, err)
		}
	}
	ok := &event.Update{Kind: event.KindCallWebhook, RuleID: "r", Webhook: &event.WebhookCall{URL: "https://ops.example.com/t/a%2F..%2Fb"}}
	if _, err := (*Outbound)(nil).Render(ok, "d1", nil); err != nil {
		t.Errorf("one segment holding an escaped slash: %v", err)
	}
}
