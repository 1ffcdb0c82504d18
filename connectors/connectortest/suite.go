package connectortest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/hookline/hookline/connectors"
	"github.com/hookline/hookline/connectors/verify"
	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/internal/yamlconf"
	"github.com/hookline/hookline/mapping"
	"github.com/hookline/hookline/schemas"
)

// Suite describes one connector file and the cases it must pass.
type Suite struct {
	// ConfigPath is the connector file, e.g. "../../configs/connectors/slack.yaml".
	ConfigPath string
	// Env is the environment the file's ${VAR} expand from. Variables it does
	// not set take the file's defaults (the development values).
	Env map[string]string
	// Secret is the inbound secret the connector is loaded with (its
	// development default, or what Env sets); requests are signed with it.
	Secret string
	// Sign signs a request the way the platform does. It is required unless
	// the connector accepts unsigned requests.
	Sign Signer
	// URL is the hook URL as the gateway sees it (default
	// https://hooks.example.com/hooks/<connector>); a case's Query is appended.
	URL string
	// GoldenDir holds the golden files, one directory per connector:
	// <GoldenDir>/<connector>/<case>.json.
	GoldenDir string
	// Update rewrites the golden files instead of comparing with them.
	Update bool
	// RetryHeaders are the headers a platform adds when it redelivers a
	// webhook (X-Slack-Retry-Num, ...); the redelivery of every case carries
	// them and must have the original's dedupe key.
	RetryHeaders map[string]string
	// Unsigned says the connector, as loaded, accepts unsigned requests
	// (scheme none, or allow_unsigned with no secret set); without it such a
	// connector fails the suite.
	Unsigned bool
	// AnyEventType lets events use types and entities outside Hookline's
	// vocabulary (the generic connector takes them from the payload).
	AnyEventType bool
	// Now is the receive time of every case (default 2026-03-02T12:00:00Z).
	Now time.Time

	Cases      []Case
	Handshakes []HandshakeCase

	// BaseURLEnv is the environment variable that overrides outbound.base_url;
	// for each ActionCase it points at a loopback test server.
	BaseURLEnv string
	// DefaultBaseURL, when set, is the base URL the file must have when
	// BaseURLEnv is unset (the platform's documented API root).
	DefaultBaseURL string
	Actions        []ActionCase
}

// Case is one inbound webhook body.
type Case struct {
	// Name names the golden file <GoldenDir>/<connector>/<Name>.json.
	Name string
	// Payload is the path of the exact body bytes.
	Payload string
	// Form marks an application/x-www-form-urlencoded body (default JSON).
	Form bool
	// Headers are extra request headers the platform sends (ids, ...).
	Headers map[string]string
	// Query is the raw query string of the hook URL.
	Query string
	// Unmapped says the body maps to no event (the gateway keeps it and
	// marks it unmapped); the golden file then lists no events.
	Unmapped bool
}

// HandshakeCase is one verification handshake.
type HandshakeCase struct {
	Name string
	// Method is GET (Meta) or POST (Slack: the body is signed and must verify
	// before the handshake is answered).
	Method string
	// Query is the raw query string of the request.
	Query string
	// Payload is the body file of a POST.
	Payload string
	// WantStatus and WantBody are the answer the platform expects.
	WantStatus int
	WantBody   string
}

// ActionCase is one outbound update and the request the platform documents
// for it.
type ActionCase struct {
	Name string
	// Update is rendered with the connector's outbound section; its
	// Connector defaults to the connector's name.
	Update event.Update
	// DeliveryID defaults to "dlv-<Name>".
	DeliveryID string
	// Respond is the status the test server answers (default 200) with
	// RespondBody; the action must count it as success.
	Respond     int
	RespondBody string
	Want        WantRequest
	// WantCapture is what the action's capture paths read from RespondBody.
	WantCapture map[string]string
	// WantRenderError, when set, is a substring of the error Render must
	// return instead of a request (an update the platform cannot take).
	WantRenderError string
	// Target is what Hookline knows of the updated entity (its snapshot),
	// given to Render; nil: nothing known.
	Target *event.Snapshot
	// WantBodyFailure, when set, is the reason the action's success_when
	// must give for RespondBody (a success status whose body says the call
	// failed); unset, a success_when must accept RespondBody.
	WantBodyFailure string
}

// WantRequest is what the platform's API must receive.
type WantRequest struct {
	// Action is the outbound action Render must pick (update_ticket, ...).
	Action string
	Method string
	// Path is the request path (decoded), RawQuery its exact query string.
	Path     string
	RawQuery string
	// Headers must be present with exactly these values (others may be too).
	Headers map[string]string
	// Exactly one of JSON (compared as JSON values), Form (compared as
	// decoded form values) or Body (compared byte for byte) describes the
	// body; all empty means no body.
	JSON string
	Form url.Values
	Body string
}

// Entities are the entity names of Hookline's event vocabulary (DESIGN.md),
// plus system for platform health events that concern no ticket or chat
// (SmarterTrack's POP and SMTP failures).
func Entities() []string {
	return []string{"ticket", "chat", "message", "contact", "call", "task", "survey", "kb", "system"}
}

// NormalizedFields are the fields whose values must be normalized: lower-case
// words joined by underscores, never the platform's display spelling.
func NormalizedFields() []string {
	return []string{"status", "status_category", "priority", "message_status", "session_state", "inactive_reason", "channel"}
}

// DefaultNow returns the receive time of cases when Suite.Now is zero.
func DefaultNow() time.Time { return time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC) }

// reporter is the part of *testing.T the checks use (so that the suite's own
// tests can record what a check reports).
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
}

// golden is what a golden file holds.
type golden struct {
	DedupeKey string         `json:"dedupe_key"`
	Events    []*event.Event `json:"events"`
}

var (
	typeRe       = regexp.MustCompile(`^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$`)
	normalizedRe = regexp.MustCompile(`^[a-z0-9]+(_[a-z0-9]+)*$`)
	fieldRe      = regexp.MustCompile(`^[a-z][a-z0-9_]*(\..+)?$`)
)

// Run runs every check of the suite as subtests of t.
func Run(t *testing.T, s Suite) {
	t.Helper()
	if s.Now.IsZero() {
		s.Now = DefaultNow()
	}
	reg, err := schemas.New()
	if err != nil {
		t.Fatalf("schemas.New: %v", err)
	}
	c := load(t, s.ConfigPath, s.Env, reg)
	if want := strings.TrimSuffix(filepath.Base(s.ConfigPath), filepath.Ext(s.ConfigPath)); c.Name != want {
		t.Errorf("%s defines connector %q; name the file after it", s.ConfigPath, c.Name)
	}
	if s.URL == "" {
		s.URL = "https://hooks.example.com/hooks/" + c.Name
	}
	if len(s.Cases)+len(s.Handshakes) > 0 {
		if c.Inbound == nil {
			t.Fatalf("%s has inbound cases but no inbound section", s.ConfigPath)
		}
		if !c.Inbound.Unsigned && s.Sign == nil {
			t.Fatalf("%s verifies with scheme %s: the suite needs a Sign function", s.ConfigPath, c.Inbound.Scheme)
		}
	}
	keys := map[string]string{} // dedupe key -> case
	for _, tc := range s.Cases {
		t.Run(tc.Name, func(t *testing.T) {
			key := s.runCase(t, c, reg, tc)
			if prev, dup := keys[key]; dup && key != "" {
				t.Errorf("cases %s and %s have the same dedupe key %q: one would be dropped as a duplicate of the other", prev, tc.Name, key)
			}
			keys[key] = tc.Name
		})
	}
	if !s.Update && s.GoldenDir != "" && len(s.Cases) > 0 {
		t.Run("no-stale-golden-files", func(t *testing.T) {
			files, _ := filepath.Glob(filepath.Join(s.GoldenDir, c.Name, "*.json"))
			for _, f := range files {
				name := strings.TrimSuffix(filepath.Base(f), ".json")
				if !slices.ContainsFunc(s.Cases, func(tc Case) bool { return tc.Name == name }) {
					t.Errorf("golden file %s has no case", f)
				}
			}
		})
	}
	for _, hc := range s.Handshakes {
		t.Run("handshake/"+hc.Name, func(t *testing.T) { s.runHandshake(t, c, hc) })
	}
	if s.DefaultBaseURL != "" {
		t.Run("default-base-url", func(t *testing.T) {
			if c.Outbound == nil {
				t.Fatalf("no outbound section")
			}
			if c.Outbound.BaseURL != s.DefaultBaseURL {
				t.Errorf("outbound.base_url = %q with %s unset, want the platform's %q", c.Outbound.BaseURL, s.BaseURLEnv, s.DefaultBaseURL)
			}
		})
	}
	for _, ac := range s.Actions {
		t.Run("action/"+ac.Name, func(t *testing.T) { s.runAction(t, reg, ac) })
	}
}

// Load parses and compiles a connector file with env as its environment,
// failing tb on any error.
func Load(tb testing.TB, path string, env map[string]string) *connectors.Connector {
	tb.Helper()
	reg, err := schemas.New()
	if err != nil {
		tb.Fatalf("schemas.New: %v", err)
	}
	return load(tb, path, env, reg)
}

func load(tb reporter, path string, env map[string]string, reg *schemas.Registry) *connectors.Connector {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("read connector file: %v", err)
	}
	if env == nil {
		env = map[string]string{}
	}
	root, errs := yamlconf.Parse(path, data, yamlconf.MapEnv(env))
	if len(errs) > 0 {
		tb.Fatalf("parse %s:\n%v", path, errs)
	}
	c, errs := connectors.Load(path, root, connectors.LoadOptions{Schemas: reg})
	if len(errs) > 0 {
		tb.Fatalf("load %s:\n%v", path, errs)
	}
	return c
}

// request builds the webhook request of body as the gateway would see it,
// signed with secret at time at (unless sign is nil).
func (s *Suite) request(tb reporter, body []byte, form bool, headers map[string]string, rawQuery string, secret string, at time.Time) *verify.Request {
	tb.Helper()
	h := cleanHeader(headers, form)
	query, err := url.ParseQuery(rawQuery)
	if err != nil {
		tb.Fatalf("query %q: %v", rawQuery, err)
	}
	u := s.URL
	if rawQuery != "" {
		u += "?" + rawQuery
	}
	r := &verify.Request{Method: http.MethodPost, URL: u, Header: h, Query: query, Body: body, Now: s.Now}
	if s.Sign != nil {
		s.Sign(r, secret, at)
	}
	setForm(tb, r, form)
	return r
}

func setForm(tb reporter, r *verify.Request, form bool) {
	tb.Helper()
	r.Form = nil
	if !form {
		return
	}
	_, values, err := verify.DecodeForm(r.Body)
	if err != nil {
		tb.Fatalf("form body: %v", err)
	}
	r.Form = values
}

// bodySigned reports whether the scheme's signature covers the body.
func bodySigned(scheme string) bool {
	switch scheme {
	case verify.SchemeToken, verify.SchemeNone, "":
		return false
	}
	return true
}

// timestamped reports whether the scheme signs a timestamp with a tolerance window.
func timestamped(scheme string) bool {
	switch scheme {
	case verify.SchemeSlack, verify.SchemeZendesk, verify.SchemeStandardWebhooks:
		return true
	}
	return false
}

// runCase checks one webhook body and returns its dedupe key.
func (s *Suite) runCase(t reporter, c *connectors.Connector, reg *schemas.Registry, tc Case) string {
	t.Helper()
	in := c.Inbound
	raw, err := os.ReadFile(tc.Payload)
	if err != nil {
		t.Fatalf("payload: %v", err)
	}
	payload := raw
	if tc.Form {
		if payload, _, err = verify.DecodeForm(raw); err != nil {
			t.Fatalf("DecodeForm: %v", err)
		}
	} else if !json.Valid(raw) {
		t.Fatalf("payload %s is not JSON", tc.Payload)
	}
	req := s.request(t, raw, tc.Form, tc.Headers, tc.Query, s.Secret, s.Now)

	// Authentication.
	if err := in.Verifier.Verify(req); err != nil {
		t.Fatalf("a request signed with the connector's secret is refused: %v", err)
	}
	if in.Unsigned != s.Unsigned {
		t.Errorf("connector %s accepts unsigned requests: %v, want %v (scheme %s)", c.Name, in.Unsigned, s.Unsigned, in.Scheme)
	}
	if in.Unsigned {
		t.Logf("connector %s accepts unsigned requests (scheme %s): no refusal checks", c.Name, in.Scheme)
	} else {
		refuse := func(what string, r *verify.Request) {
			t.Helper()
			if err := in.Verifier.Verify(r); !errors.Is(err, verify.ErrUnauthorized) {
				t.Errorf("%s: want verify.ErrUnauthorized, got %v", what, err)
			}
		}
		refuse("wrong secret", s.request(t, raw, tc.Form, tc.Headers, tc.Query, "wrong-"+s.Secret, s.Now))
		unsigned := s.request(t, raw, tc.Form, tc.Headers, tc.Query, s.Secret, s.Now)
		unsigned.Header, unsigned.Query, unsigned.URL = cleanHeader(tc.Headers, tc.Form), mustQuery(t, tc.Query), s.URL+queryPart(tc.Query)
		refuse("no signature", unsigned)
		if bodySigned(in.Scheme) {
			tampered := *req
			tampered.Body = tamper(raw, tc.Form)
			setForm(t, &tampered, tc.Form)
			refuse("tampered body", &tampered)
		}
		if timestamped(in.Scheme) {
			refuse("stale timestamp (10 minutes old)", s.request(t, raw, tc.Form, tc.Headers, tc.Query, s.Secret, s.Now.Add(-10*time.Minute)))
			refuse("future timestamp (10 minutes ahead)", s.request(t, raw, tc.Form, tc.Headers, tc.Query, s.Secret, s.Now.Add(10*time.Minute)))
		}
	}
	if resp, handled := in.Handshake(req); handled {
		t.Fatalf("a webhook POST was taken for a handshake: %d %s", resp.Status, resp.Body)
	}
	if in.Schema != "" {
		if err := reg.ValidateJSON(in.Schema, payload); err != nil {
			t.Fatalf("schema %s: %v", in.Schema, err)
		}
	}

	// Mapping.
	events, err := in.Mapper.Map(mapping.Input{Body: payload, Header: req.Header, Query: req.Query, ReceivedAt: s.Now})
	if err != nil {
		t.Fatalf("Map: %v", err)
	}
	if tc.Unmapped != (len(events) == 0) {
		t.Fatalf("unmapped: want %v, got %d events", tc.Unmapped, len(events))
	}
	for _, e := range events {
		if !json.Valid(e.Raw) || !bytes.Contains(payload, e.Raw) {
			t.Errorf("event Raw is neither the payload nor a part of it (the element of an each entry)")
		}
		e.Raw = nil
		s.checkEvent(t, c.Name, e)
	}

	// Dedupe: a redelivery is recognized.
	key := in.Dedupe.Key(req.Header, payload)
	retryHeaders := map[string]string{}
	for k, v := range tc.Headers {
		retryHeaders[k] = v
	}
	for k, v := range s.RetryHeaders {
		retryHeaders[k] = v
	}
	later := s.Now.Add(time.Minute)
	retry := s.request(t, raw, tc.Form, retryHeaders, tc.Query, s.Secret, later)
	retry.Now = later
	if err := in.Verifier.Verify(retry); err != nil {
		t.Errorf("the redelivery a minute later is refused: %v", err)
	}
	if got := in.Dedupe.Key(retry.Header, payload); got != key {
		t.Errorf("dedupe (%s): the redelivery's key %q differs from the original's %q, so a retry would be processed twice", in.Dedupe, got, key)
	}

	s.compareGolden(t, c.Name, tc.Name, golden{DedupeKey: key, Events: events})
	return key
}

// checkEvent asserts that e uses Hookline's vocabulary.
func (s *Suite) checkEvent(t reporter, connector string, e *event.Event) {
	t.Helper()
	if e.Connector != connector {
		t.Errorf("event connector %q, want %q", e.Connector, connector)
	}
	if e.Reference == "" {
		t.Errorf("event %s without a reference", e.Type)
	}
	if !typeRe.MatchString(e.Type) {
		t.Errorf("event type %q is not entity.verb in lower case", e.Type)
	}
	if !s.AnyEventType {
		prefix, _, _ := strings.Cut(e.Type, ".")
		if !slices.Contains(Entities(), prefix) {
			t.Errorf("event type %q: %q is not one of %v", e.Type, prefix, Entities())
		}
		if !slices.Contains(Entities(), e.Entity) {
			t.Errorf("event entity %q is not one of %v", e.Entity, Entities())
		}
	}
	switch e.Actor.Type {
	case "", event.ActorCustomer, event.ActorAgent, event.ActorSystem:
	default:
		t.Errorf("actor type %q: a connector may only produce customer, agent or system", e.Actor.Type)
	}
	if e.OccurredAt.IsZero() || !e.ReceivedAt.Equal(s.Now) {
		t.Errorf("event times: occurred %v, received %v (want %v)", e.OccurredAt, e.ReceivedAt, s.Now)
	}
	for name, v := range e.Fields {
		if !fieldRe.MatchString(name) {
			t.Errorf("field name %q is not lower case", name)
		}
		if slices.Contains(NormalizedFields(), name) {
			str, ok := v.(string)
			if !ok || !normalizedRe.MatchString(str) {
				t.Errorf("field %s = %#v: want a normalized value (lower-case words joined by _)", name, v)
			}
		}
	}
	for name, ch := range e.Changes {
		if slices.Contains(NormalizedFields(), name) {
			for _, v := range []any{ch.From, ch.To} {
				if str, ok := v.(string); ok && !normalizedRe.MatchString(str) {
					t.Errorf("change of %s holds %q: want a normalized value", name, str)
				}
			}
		}
	}
}

func (s *Suite) compareGolden(t reporter, connector, name string, g golden) {
	t.Helper()
	if s.GoldenDir == "" {
		t.Fatalf("Suite.GoldenDir is not set")
	}
	if g.Events == nil {
		g.Events = []*event.Event{}
	}
	got, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		t.Fatalf("%v", err)
	}
	got = append(got, '\n')
	path := filepath.Join(s.GoldenDir, connector, name+".json")
	if s.Update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatalf("%v", err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatalf("%v", err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (rerun with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("events differ from %s (rerun with -update after checking):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func (s *Suite) runHandshake(t reporter, c *connectors.Connector, hc HandshakeCase) {
	t.Helper()
	in := c.Inbound
	var req *verify.Request
	switch hc.Method {
	case http.MethodGet:
		req = &verify.Request{Method: http.MethodGet, URL: s.URL + queryPart(hc.Query), Header: http.Header{}, Query: mustQuery(t, hc.Query), Now: s.Now}
	case http.MethodPost:
		body, err := os.ReadFile(hc.Payload)
		if err != nil {
			t.Fatalf("payload: %v", err)
		}
		req = s.request(t, body, false, nil, hc.Query, s.Secret, s.Now)
		// The gateway answers a POST handshake only after it verified.
		if err := in.Verifier.Verify(req); err != nil {
			t.Fatalf("the signed handshake is refused: %v", err)
		}
		if !in.Unsigned {
			forged := s.request(t, body, false, nil, hc.Query, "wrong-"+s.Secret, s.Now)
			if err := in.Verifier.Verify(forged); !errors.Is(err, verify.ErrUnauthorized) {
				t.Errorf("a handshake signed with a wrong secret: want verify.ErrUnauthorized, got %v", err)
			}
		}
	default:
		t.Fatalf("handshake method %q: want GET or POST", hc.Method)
	}
	resp, handled := in.Handshake(req)
	if !handled {
		t.Fatalf("the request was not taken for a handshake (connector handshake scheme %q)", in.HandshakeScheme())
	}
	if resp.Status != hc.WantStatus {
		t.Errorf("status %d, want %d", resp.Status, hc.WantStatus)
	}
	if hc.WantBody != "" && string(resp.Body) != hc.WantBody {
		t.Errorf("body %q, want %q", resp.Body, hc.WantBody)
	}
	if !strings.HasPrefix(resp.ContentType, "text/plain") {
		t.Errorf("content type %q, want text/plain (platforms read the challenge as text)", resp.ContentType)
	}
}

// received is one request the test server got.
type received struct {
	method, path, rawQuery string
	header                 http.Header
	body                   []byte
}

func (s *Suite) runAction(t reporter, reg *schemas.Registry, ac ActionCase) {
	t.Helper()
	if s.BaseURLEnv == "" {
		t.Fatalf("Suite.BaseURLEnv is not set: actions need the base URL pointed at a test server")
	}
	status := ac.Respond
	if status == 0 {
		status = http.StatusOK
	}
	got := make(chan received, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- received{method: r.Method, path: r.URL.Path, rawQuery: r.URL.RawQuery, header: r.Header.Clone(), body: b}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, ac.RespondBody)
	}))
	defer srv.Close()
	env := map[string]string{}
	for k, v := range s.Env {
		env[k] = v
	}
	env[s.BaseURLEnv] = srv.URL
	c := load(t, s.ConfigPath, env, reg)
	if c.Outbound == nil {
		t.Fatalf("no outbound section")
	}
	if c.Outbound.BaseURL != srv.URL {
		t.Fatalf("%s does not set outbound.base_url (got %q)", s.BaseURLEnv, c.Outbound.BaseURL)
	}
	u := ac.Update
	if u.Connector == "" {
		u.Connector = c.Name
	}
	id := ac.DeliveryID
	if id == "" {
		id = "dlv-" + ac.Name
	}
	rendered, err := c.Outbound.Render(&u, id, ac.Target)
	if ac.WantRenderError != "" {
		if err == nil || !strings.Contains(err.Error(), ac.WantRenderError) {
			t.Fatalf("Render: want an error containing %q, got %v", ac.WantRenderError, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	if ac.Want.Action != "" && rendered.Action != ac.Want.Action {
		t.Errorf("rendered with action %q, want %q", rendered.Action, ac.Want.Action)
	}
	hreq, err := http.NewRequest(rendered.Method, rendered.URL, bytes.NewReader(rendered.Body))
	if err != nil {
		t.Fatalf("rendered request: %v", err)
	}
	for k, v := range rendered.Headers {
		hreq.Header.Set(k, v)
	}
	if err := c.Outbound.Authorize(hreq, rendered.Body, rendered.Action, id, s.Now); err != nil {
		t.Fatalf("Authorize: %v", err)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(hreq)
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	respBody, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var r received
	select {
	case r = <-got:
	default:
		t.Fatalf("the test server received nothing")
	}
	a := c.Outbound.Actions[rendered.Action]
	if a != nil && !a.IsSuccess(resp.StatusCode) {
		t.Errorf("action %s counts the platform's %d answer as a failure", a.Name, resp.StatusCode)
	}
	switch {
	case a != nil && a.SuccessWhen != nil:
		v := a.SuccessWhen.Check(respBody)
		if ac.WantBodyFailure == "" && !v.OK {
			t.Errorf("action %s judges the platform's answer a failure: %s", a.Name, v.Reason)
		}
		if ac.WantBodyFailure != "" && (v.OK || v.Reason != ac.WantBodyFailure) {
			t.Errorf("action %s: body verdict %+v, want the failure %q", a.Name, v, ac.WantBodyFailure)
		}
	case ac.WantBodyFailure != "":
		t.Errorf("WantBodyFailure is set but the action has no success_when")
	}
	w := ac.Want
	if r.method != w.Method {
		t.Errorf("method %s, want %s", r.method, w.Method)
	}
	if r.path != w.Path {
		t.Errorf("path %q, want %q", r.path, w.Path)
	}
	if r.rawQuery != w.RawQuery {
		t.Errorf("query %q, want %q", r.rawQuery, w.RawQuery)
	}
	names := make([]string, 0, len(w.Headers))
	for k := range w.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if g := r.header.Get(k); g != w.Headers[k] {
			t.Errorf("header %s = %q, want %q", k, g, w.Headers[k])
		}
	}
	switch {
	case w.JSON != "":
		var gv, wv any
		if err := json.Unmarshal(r.body, &gv); err != nil {
			t.Fatalf("body is not JSON: %v\n%s", err, r.body)
		}
		if err := json.Unmarshal([]byte(w.JSON), &wv); err != nil {
			t.Fatalf("WantRequest.JSON is not JSON: %v", err)
		}
		if !jsonEqual(gv, wv) {
			t.Errorf("body:\n%s\nwant:\n%s", r.body, w.JSON)
		}
	case w.Form != nil:
		gv, err := url.ParseQuery(string(r.body))
		if err != nil {
			t.Fatalf("body is not a form: %v\n%s", err, r.body)
		}
		if gv.Encode() != w.Form.Encode() {
			t.Errorf("form body:\n%s\nwant:\n%s", gv.Encode(), w.Form.Encode())
		}
	default:
		if string(r.body) != w.Body {
			t.Errorf("body %q, want %q", r.body, w.Body)
		}
	}
	if a != nil {
		for name, want := range ac.WantCapture {
			p, ok := a.Capture[name]
			if !ok {
				t.Errorf("action %s has no capture %q", a.Name, name)
				continue
			}
			if g := gjson.GetBytes(respBody, p).String(); g != want {
				t.Errorf("capture %s (%s) = %q, want %q", name, p, g, want)
			}
		}
	}
}

func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// tamper changes one byte-level detail of a body the way an attacker would:
// a JSON body gets an extra field, a form body an extra parameter.
func tamper(raw []byte, form bool) []byte {
	if form {
		return append(bytes.Clone(raw), []byte("&Injected=1")...)
	}
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) > 1 && trimmed[0] == '{' && trimmed[len(trimmed)-1] == '}' {
		inner := bytes.TrimSpace(trimmed[1 : len(trimmed)-1])
		if len(inner) == 0 {
			return []byte(`{"injected":true}`)
		}
		return append([]byte(`{"injected":true,`), trimmed[1:]...)
	}
	return append(bytes.Clone(raw), ' ')
}

// cleanHeader is the request's headers with no signature: content type and
// the case's own headers only.
func cleanHeader(headers map[string]string, form bool) http.Header {
	h := http.Header{}
	if form {
		h.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		h.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		h.Set(k, v)
	}
	return h
}

func mustQuery(tb reporter, raw string) url.Values {
	tb.Helper()
	q, err := url.ParseQuery(raw)
	if err != nil {
		tb.Fatalf("query %q: %v", raw, err)
	}
	return q
}

func queryPart(raw string) string {
	if raw == "" {
		return ""
	}
	return "?" + raw
}
