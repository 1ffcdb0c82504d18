package connectortest

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/connectors/verify"
	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/schemas"
)

// recorder is a reporter that records what a check reports; Fatalf stops
// the check like testing.T.Fatalf does.
type recorder struct{ msgs []string }

type stopped struct{}

func (r *recorder) Helper()             {}
func (r *recorder) Logf(string, ...any) {}
func (r *recorder) Errorf(format string, a ...any) {
	r.msgs = append(r.msgs, fmt.Sprintf(format, a...))
}
func (r *recorder) Fatalf(format string, a ...any) {
	r.Errorf(format, a...)
	panic(stopped{})
}

// problems runs check and returns what it reported.
func problems(check func(r reporter)) (msgs []string) {
	r := &recorder{}
	defer func() {
		if p := recover(); p != nil {
			if _, ok := p.(stopped); !ok {
				panic(p)
			}
		}
		msgs = r.msgs
	}()
	check(r)
	return r.msgs
}

const (
	shippedDir = "../../configs/connectors"
	payloadDir = "../testdata/payloads"
	fixtureDir = "../../testdata/fixtures"
	goldenDir  = "../testdata/conformance"
)

// mutated writes the shipped connector file name with old replaced by new
// into a temporary directory and returns its path.
func mutated(t *testing.T, name, old, new string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(shippedDir, name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		t.Fatalf("%s.yaml does not contain %q", name, old)
	}
	p := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(p, []byte(strings.Replace(string(data), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func registry(t *testing.T) *schemas.Registry {
	t.Helper()
	reg, err := schemas.New()
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func slackSuite(path string) Suite {
	return Suite{
		ConfigPath: path, Secret: "dev-insecure-slack-signing-secret", Sign: SignSlack,
		URL: "https://hooks.example.com/hooks/slack", GoldenDir: goldenDir, Now: DefaultNow(),
		RetryHeaders: map[string]string{"X-Slack-Retry-Num": "1"},
	}
}

var slackMessage = Case{Name: "message", Payload: filepath.Join(fixtureDir, "slack-event-callback-message.json")}

// The suite fails connectors that break its rules, each with a message that
// says what broke; the shipped file passes the same checks.
func TestSuiteCatchesBrokenConnectors(t *testing.T) {
	reg := registry(t)
	freshdesk := Case{Name: "ticket-updated-waiting", Payload: filepath.Join(payloadDir, "freshdesk-ticket-updated-waiting.json")}
	freshdeskSuite := func(path string) Suite {
		return Suite{ConfigPath: path, Secret: "dev-insecure-freshdesk-webhook-token", Sign: SignTokenHeader("X-Hookline-Token"),
			URL: "https://hooks.example.com/hooks/freshdesk", GoldenDir: goldenDir, Now: DefaultNow()}
	}
	cases := []struct {
		name  string
		suite func(t *testing.T) Suite
		tc    Case
		want  string // "" : the check passes
	}{
		{"shipped slack passes", func(t *testing.T) Suite { return slackSuite(filepath.Join(shippedDir, "slack.yaml")) }, slackMessage, ""},
		{"retry gets a new dedupe key", func(t *testing.T) Suite {
			return slackSuite(mutated(t, "slack", "dedupe: path:event_id", "dedupe: header:X-Slack-Request-Timestamp"))
		}, slackMessage, "the redelivery's key"},
		{"stale timestamps accepted", func(t *testing.T) Suite {
			return slackSuite(mutated(t, "slack", "    scheme: slack\n", "    scheme: slack\n    tolerance: 1h\n"))
		}, slackMessage, "stale timestamp"},
		{"secret ignored by the signer", func(t *testing.T) Suite {
			s := slackSuite(filepath.Join(shippedDir, "slack.yaml"))
			s.Sign = func(r *verify.Request, _ string, at time.Time) { SignSlack(r, "dev-insecure-slack-signing-secret", at) }
			return s
		}, slackMessage, "wrong secret: want verify.ErrUnauthorized"},
		{"type outside the vocabulary", func(t *testing.T) Suite {
			return slackSuite(mutated(t, "slack", "type: chat.message_received", "type: widget.message_received"))
		}, slackMessage, `"widget" is not one of`},
		{"golden file differs", func(t *testing.T) Suite {
			return slackSuite(mutated(t, "slack", "text: event.text", "text: event.user"))
		}, slackMessage, "events differ from"},
		{"shipped freshdesk passes", func(t *testing.T) Suite { return freshdeskSuite(filepath.Join(shippedDir, "freshdesk.yaml")) }, freshdesk, ""},
		{"status not normalized", func(t *testing.T) Suite {
			return freshdeskSuite(mutated(t, "freshdesk", `map: { "waiting on customer": waiting_on_customer, "waiting on third party": waiting_on_third_party }`, `map: {}`))
		}, freshdesk, "field status = \"waiting on customer\""},
		{"unsigned connector", func(t *testing.T) Suite {
			s := freshdeskSuite(mutated(t, "freshdesk", `secret: "${FRESHDESK_WEBHOOK_TOKEN:-dev-insecure-freshdesk-webhook-token}"`, "secret: \"\"\n    allow_unsigned: true"))
			return s
		}, freshdesk, "accepts unsigned requests: true, want false"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.suite(t)
			got := problems(func(r reporter) {
				c := load(r, s.ConfigPath, s.Env, reg)
				s.runCase(r, c, reg, tc.tc)
			})
			joined := strings.Join(got, "\n")
			switch {
			case tc.want == "" && len(got) > 0:
				t.Errorf("the check failed:\n%s", joined)
			case tc.want != "" && !strings.Contains(joined, tc.want):
				t.Errorf("want a failure containing %q, got:\n%s", tc.want, joined)
			}
		})
	}
}

// Handshake and action checks fail on a wrong answer or request.
func TestSuiteCatchesWrongHandshakesAndRequests(t *testing.T) {
	reg := registry(t)
	wa := Suite{ConfigPath: filepath.Join(shippedDir, "whatsapp.yaml"), Secret: "dev-insecure-whatsapp-secret", Sign: SignHubSHA256,
		URL: "https://hooks.example.com/hooks/whatsapp", Now: DefaultNow(), BaseURLEnv: "WHATSAPP_GRAPH_URL"}
	c := load(t, wa.ConfigPath, nil, reg)
	hs := HandshakeCase{Name: "h", Method: http.MethodGet, Query: "hub.mode=subscribe&hub.challenge=42&hub.verify_token=dev-insecure-verify-token", WantStatus: 200, WantBody: "42"}
	if got := problems(func(r reporter) { wa.runHandshake(r, c, hs) }); len(got) > 0 {
		t.Errorf("the right handshake failed: %v", got)
	}
	hs.WantBody = "43"
	if got := strings.Join(problems(func(r reporter) { wa.runHandshake(r, c, hs) }), "\n"); !strings.Contains(got, `body "42", want "43"`) {
		t.Errorf("a wrong challenge passed: %q", got)
	}
	ac := ActionCase{
		Name:   "send",
		Update: event.Update{Kind: event.KindSendMessage, Entity: "chat", Reference: "1555", Message: &event.Message{Text: "hi"}, Vars: map[string]string{"PHONE_NUMBER_ID": "99"}},
		Want: WantRequest{Method: "POST", Path: "/99/messages", Headers: map[string]string{"Authorization": "Bearer dev-insecure-whatsapp-access-token"},
			JSON: `{"messaging_product":"whatsapp","recipient_type":"individual","to":"1555","type":"text","text":{"preview_url":false,"body":"hi"}}`},
	}
	if got := problems(func(r reporter) { wa.runAction(r, reg, ac) }); len(got) > 0 {
		t.Errorf("the right request failed: %v", got)
	}
	ac.Want.Path = "/98/messages"
	ac.Want.Headers["Authorization"] = "Bearer other"
	got := strings.Join(problems(func(r reporter) { wa.runAction(r, reg, ac) }), "\n")
	for _, want := range []string{`path "/99/messages", want "/98/messages"`, "header Authorization"} {
		if !strings.Contains(got, want) {
			t.Errorf("want a failure containing %q, got:\n%s", want, got)
		}
	}
}

func TestTamper(t *testing.T) {
	cases := []struct {
		in   string
		form bool
		want string
	}{
		{`{"a":1}`, false, `{"injected":true,"a":1}`},
		{"{}", false, `{"injected":true}`},
		{"  {\n}\n", false, `{"injected":true}`},
		{"[1]", false, "[1] "},
		{"a=1", true, "a=1&Injected=1"},
		{"", true, "&Injected=1"},
	}
	for _, tc := range cases {
		if got := string(tamper([]byte(tc.in), tc.form)); got != tc.want {
			t.Errorf("tamper(%q, %v) = %q, want %q", tc.in, tc.form, got, tc.want)
		}
	}
}
