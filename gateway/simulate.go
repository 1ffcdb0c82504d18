package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/textproto"
	"net/url"
	"sort"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/hookline/hookline/connectors"
	"github.com/hookline/hookline/connectors/verify"
	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/internal/yamlconf"
	"github.com/hookline/hookline/mapping"
	"github.com/hookline/hookline/rules"
	"github.com/hookline/hookline/store"
)

// SimRequest is a dry run: a payload for a connector's mapping, or a ready
// event, with an optional prior snapshot and clock. Advance then moves the
// clock (a duration like 48h), firing the timers the run armed in due order.
type SimRequest struct {
	Connector string            `json:"connector"`
	Headers   map[string]string `json:"headers,omitempty"`
	// Query holds the URL query parameters of the webhook (connectors that
	// read the event kind from the URL, like wix_answers' ?event=).
	Query map[string]string `json:"query,omitempty"`
	// Payload is the webhook body: a JSON value, or a string holding a form
	// body when ContentType is form-encoded.
	Payload     json.RawMessage `json:"payload,omitempty"`
	ContentType string          `json:"content_type,omitempty"`
	Event       *event.Event    `json:"event,omitempty"`
	Snapshot    *event.Snapshot `json:"snapshot,omitempty"`
	Now         *time.Time      `json:"now,omitempty"`
	Advance     string          `json:"advance,omitempty"`
	// Intake runs the payload through the gateway's intake checks first
	// (body limit, content type, syntax, signature, schema, handshake), as
	// a POST to URL; a refused payload goes no further (SimResult.Refused).
	// Within a Simulation, the intake's dedupe applies too: a payload
	// whose dedupe key an earlier post of the run had within its window
	// is a duplicate (SimResult.Duplicate) and goes no further.
	Intake bool `json:"intake,omitempty"`
	// URL is the webhook URL the sender signs (schemes such as Twilio's
	// sign it); default http://localhost/hooks/<connector>.
	URL string `json:"url,omitempty"`
}

// SimHandshake is the answer to a verification handshake the intake
// checks recognized (Slack's url_verification): the gateway answers it
// and processes nothing.
type SimHandshake struct {
	Status int    `json:"status"`
	Body   string `json:"body"`
}

// SimDuplicate is a post the gateway's intake answers 200 duplicate and
// does not process: an earlier post of the run had its dedupe key (the
// connector's dedupe header or path, else the body hash) within the key's
// window.
type SimDuplicate struct {
	// Key is the dedupe key: the header's or path's value, or the
	// SHA-256 hex of the body.
	Key string `json:"key"`
	// PostedAt is when the post that holds the key was accepted.
	PostedAt time.Time `json:"posted_at"`
	// Window is how long the key is remembered (Go duration text): the
	// connector's dedupe window (its fallback_window for a body hash), else
	// intake.dedupe_window.
	Window string `json:"window"`
}

// SimTraceEntry is one rule's trace for one of the run's events.
type SimTraceEntry struct {
	Event int `json:"event"`
	rules.TraceEntry
}

// SimResult is what a dry run decided. Nothing of it was stored or sent.
type SimResult struct {
	// Events are the run's events in order: mapped webhooks, given events
	// and the timer.fired events of timers that came due.
	Events     []*event.Event    `json:"events"`
	Matched    []string          `json:"matched"`
	Actions    []event.Update    `json:"actions"`
	Suppressed []string          `json:"suppressed,omitempty"`
	Errors     []rules.RuleError `json:"errors,omitempty"`
	Trace      []SimTraceEntry   `json:"trace"`
	// Warnings are the mapping's warnings about the run's events (an
	// occurred_at it could not read, ...), each naming the mapping entry
	// and the element.
	Warnings []string `json:"warnings,omitempty"`
	Unmapped bool     `json:"unmapped,omitempty"`
	// Snapshots are the entity states after the run, by entity key.
	Snapshots map[string]*event.Snapshot `json:"snapshots,omitempty"`
	// Timers are the timers armed at the end of the run, in due order (a
	// paused clock's parked timer, which only serves reloads, is not one).
	Timers []store.Timer `json:"timers"`
	// Now is the simulated clock at the end of the run.
	Now time.Time `json:"now"`
	// Refused is set when an intake run refused the payload.
	Refused *Refusal `json:"refused,omitempty"`
	// Handshake is set when an intake run answered a handshake.
	Handshake *SimHandshake `json:"handshake,omitempty"`
	// Duplicate is set when an intake run's post repeats the dedupe key
	// of an earlier post of the simulation within its window: the gateway
	// answers it 200 duplicate and processes nothing.
	Duplicate *SimDuplicate `json:"duplicate,omitempty"`
}

func newSimResult() *SimResult {
	return &SimResult{Events: []*event.Event{}, Matched: []string{}, Actions: []event.Update{}, Trace: []SimTraceEntry{},
		Snapshots: map[string]*event.Snapshot{}, Timers: []store.Timer{}}
}

// add appends the outcome of a later part of the same run.
func (r *SimResult) add(o *SimResult) {
	base := len(r.Events)
	r.Events = append(r.Events, o.Events...)
	r.Matched = append(r.Matched, o.Matched...)
	r.Actions = append(r.Actions, o.Actions...)
	r.Suppressed = append(r.Suppressed, o.Suppressed...)
	r.Errors = append(r.Errors, o.Errors...)
	r.Warnings = append(r.Warnings, o.Warnings...)
	for _, te := range o.Trace {
		te.Event += base
		r.Trace = append(r.Trace, te)
	}
	r.Unmapped = r.Unmapped || o.Unmapped
	for k, v := range o.Snapshots {
		r.Snapshots[k] = v
	}
	r.Timers, r.Now = o.Timers, o.Now
	if o.Refused != nil {
		r.Refused = o.Refused
	}
	if o.Handshake != nil {
		r.Handshake = o.Handshake
	}
	if o.Duplicate != nil {
		r.Duplicate = o.Duplicate
	}
}

// errBadSim marks a dry-run request that is wrong (answered 400).
var errBadSim = errors.New("bad dry run")

// Simulate runs a request through mapping, snapshot, rules and timers
// exactly as the pipeline does, without touching the store or the network.
func Simulate(b *Bundle, req SimRequest, now time.Time) (*SimResult, error) {
	if req.Now != nil {
		now = *req.Now
	}
	sim := NewSimulation(b, now)
	res, err := sim.Post(req)
	if err != nil || req.Advance == "" {
		return res, err
	}
	d, err := yamlconf.ParseDuration(req.Advance)
	if err != nil || d < 0 {
		return nil, fmt.Errorf("%w: advance: expected a duration like 48h, got %q", errBadSim, req.Advance)
	}
	later, err := sim.Advance(d)
	if err != nil {
		return nil, err
	}
	res.add(later)
	return res, nil
}

// Simulation is a dry run with state and a clock: entity snapshots (with
// the template variables of each entity's last event that had some), armed
// timers, the rule-scope firings
// that limit: { scope: rule } counts, the fingerprints that mark echoes of
// the run's own updates, the updates queued per entity and the dedupe keys
// of the run's webhooks live in memory. Post
// runs webhooks or events at the current time; Advance moves the clock and
// fires due timers in due order as timer.fired events, each at its due
// time, through the same decisions as the pipeline (decide: rules, then
// the time-based rules' clocks). Nothing is stored or sent.
type Simulation struct {
	b      *Bundle
	now    time.Time
	snaps  map[event.EntityKey]*event.Snapshot
	timers map[simTimer]store.Timer
	// ruleFirings are the times of the run's rule-scope firings, by rule,
	// in order: limit: { scope: rule } counts them as the pipeline counts
	// the store's.
	ruleFirings simFirings
	// fingerprints are the changes the run's update_entity actions would
	// deliver, so that a later event echoing them is marked an echo as the
	// pipeline marks it.
	fingerprints simFingerprints
	// queued are the entity updates of the current batch (a Post, or the
	// timers an Advance fires at one instant), by target entity: as in
	// one pipeline batch, a later update that only repeats them is a no-op.
	queued map[event.EntityKey][]*event.Update
	// dedupeKeys are the dedupe keys of the run's posted webhooks (by
	// connector and key) with when each was accepted, as the store keeps
	// them: a later post with intake checks that repeats one within its
	// window is a duplicate.
	dedupeKeys map[string]time.Time
	seq        int
}

// simFingerprints keeps a simulation's fingerprints in memory; it is the
// pipeline's fingerprints (the store's) for dry runs.
type simFingerprints map[string]store.Fingerprint

func simFingerprintKey(connector, entity, reference, field, value string) string {
	return connector + "\x00" + entity + "\x00" + reference + "\x00" + field + "\x00" + value
}

// PutFingerprint remembers f, replacing one of the same change.
func (m simFingerprints) PutFingerprint(f store.Fingerprint) error {
	m[simFingerprintKey(f.Connector, f.Entity, f.Reference, f.Field, f.Value)] = f
	return nil
}

// EntityFingerprints returns the fingerprints of one entity that expire
// after now, in key order (field, value), as the store's do.
func (m simFingerprints) EntityFingerprints(connector, entity, reference string, now time.Time) ([]store.Fingerprint, error) {
	var out []store.Fingerprint
	for _, f := range m {
		if f.Connector == connector && f.Entity == entity && f.Reference == reference && f.Expires.After(now) {
			out = append(out, f)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Field != out[j].Field {
			return out[i].Field < out[j].Field
		}
		return out[i].Value < out[j].Value
	})
	return out, nil
}

// DeleteFingerprint forgets f.
func (m simFingerprints) DeleteFingerprint(f *store.Fingerprint) error {
	delete(m, simFingerprintKey(f.Connector, f.Entity, f.Reference, f.Field, f.Value))
	return nil
}

// maxSimTimers bounds the timers one Advance fires.
const maxSimTimers = 100000

type simTimer struct {
	key  event.EntityKey
	rule string
}

// NewSimulation starts a simulation of the bundle's config at now.
func NewSimulation(b *Bundle, now time.Time) *Simulation {
	return &Simulation{b: b, now: now, snaps: map[event.EntityKey]*event.Snapshot{},
		timers: map[simTimer]store.Timer{}, ruleFirings: simFirings{},
		fingerprints: simFingerprints{}, dedupeKeys: map[string]time.Time{}}
}

// simFirings are a run's rule-scope firings, by rule, in order: counted as
// the store counts its own (at or after since).
type simFirings map[string][]time.Time

// Count is how many times rule fired in the run at or after since.
func (f simFirings) Count(rule string, since time.Time) int {
	n := 0
	for _, at := range f[rule] {
		if !at.Before(since) {
			n++
		}
	}
	return n
}

// Record notes a firing of rule at at.
func (f simFirings) Record(rule string, at time.Time) error {
	f[rule] = append(f[rule], at)
	return nil
}

// Now returns the simulated clock.
func (s *Simulation) Now() time.Time { return s.now }

// Timers returns the armed timers in due order (then entity and rule).
func (s *Simulation) Timers() []store.Timer {
	out := make([]store.Timer, 0, len(s.timers))
	for _, t := range s.timers {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.Due.Equal(b.Due) {
			return a.Due.Before(b.Due)
		}
		if a.Key != b.Key {
			return a.Key.String() < b.Key.String()
		}
		return a.Rule < b.Rule
	})
	return out
}

// Post runs a webhook payload or an event at the current time. A request's
// Snapshot is the prior state of its entities not seen before in this
// simulation; its Now and Advance are ignored (see Simulate).
//
// A webhook's dedupe key is remembered on the simulated clock, as the
// gateway's intake stores it; a webhook posted with Intake whose key an
// earlier one of the simulation had within its window is a duplicate
// (SimResult.Duplicate): the gateway answers it 200 and processes
// nothing. Without Intake nothing is deduplicated.
func (s *Simulation) Post(req SimRequest) (*SimResult, error) {
	if req.Event == nil {
		if res, stop, err := s.accept(req); err != nil || stop {
			return res, err
		}
	}
	events, warnings, err := simEvents(s.b, req, s.now)
	if err != nil {
		return nil, err
	}
	s.queued = nil // a new webhook, a new batch
	res := newSimResult()
	for _, w := range warnings {
		res.Warnings = append(res.Warnings, w.Message)
	}
	if len(events) == 0 {
		res.Unmapped = true
	}
	if reason, err := entityFieldsOver(s.b, events, func(k event.EntityKey) (*event.Snapshot, error) {
		if snap, seen := s.snaps[k]; seen {
			return snap, nil
		}
		return req.Snapshot, nil // the prior state given for the run's new entities
	}); err != nil {
		return nil, err
	} else if reason != "" {
		return nil, fmt.Errorf("%w: the pipeline would fail this payload: %s", errBadSim, reason)
	}
	for _, ev := range events {
		key := ev.Key()
		if _, seen := s.snaps[key]; !seen && req.Snapshot != nil {
			prior := req.Snapshot.Clone()
			prior.Key = key
			if prior.Fields == nil {
				prior.Fields = map[string]any{}
			}
			for k, v := range prior.Fields {
				prior.Fields[k] = event.Normalize(v)
			}
			s.snaps[key] = prior
		}
		if err := s.run(ev, res); err != nil {
			return nil, err
		}
	}
	s.finish(res)
	return res, nil
}

// accept is what the gateway's intake does with a webhook before it is
// processed: with req.Intake, its checks, then its dedupe; without, only
// the webhook's dedupe key is remembered. stop is true (with the result
// saying why) when the gateway would process nothing: the request is
// refused, a handshake, or a duplicate.
func (s *Simulation) accept(req SimRequest) (res *SimResult, stop bool, err error) {
	c := s.b.Connectors[req.Connector]
	if c == nil || c.Inbound == nil {
		if req.Intake {
			return nil, false, fmt.Errorf("%w: unknown connector %q (known: %v)", errBadSim, req.Connector, s.b.ConnectorNames())
		}
		return nil, false, nil // simEvents says so
	}
	header, query := simHeaders(req)
	var payload []byte
	if req.Intake {
		if res, payload, err = s.intake(c.Inbound, req, header, query); err != nil || res != nil {
			return res, res != nil, err
		}
	} else if payload, err = simPayload(req); err != nil {
		return nil, false, nil // simEvents says so
	}
	if dup := s.dedupe(c.Inbound, req.Connector, header, query, payload, req.Intake); dup != nil {
		res = newSimResult()
		res.Duplicate = dup
		s.finish(res)
		return res, true, nil
	}
	return nil, false, nil
}

// dedupe is the intake's dedupe of a webhook accepted with payload: its
// dedupe key is a duplicate when an earlier webhook of the run had it
// within the key's window, as the store decides (the window of the
// request's key, counted from the earlier acceptance; a duplicate does not
// renew the key). Otherwise the key is remembered from now. Only check
// reports a duplicate: without the intake checks, a repeat is processed
// (and, like a duplicate, does not renew the key).
func (s *Simulation) dedupe(in *connectors.Inbound, connector string, header map[string][]string, query url.Values, payload []byte, check bool) *SimDuplicate {
	key, window := s.b.dedupeKey(in, header, query, payload)
	if key == "" || window <= 0 {
		return nil
	}
	k := connector + "\x00" + key
	if at, seen := s.dedupeKeys[k]; seen && s.now.Sub(at) < window {
		if !check {
			return nil
		}
		return &SimDuplicate{Key: key, PostedAt: at, Window: window.String()}
	}
	s.dedupeKeys[k] = s.now
	return nil
}

// intake runs a request through the gateway's intake checks, adding the
// Content-Type to header when it has none (as a POST carries it). It
// returns the result when the gateway would process nothing (the request
// is refused, or it is a handshake), else the payload as the intake
// admits it (a form body as JSON), which the dedupe key is taken from.
func (s *Simulation) intake(in *connectors.Inbound, req SimRequest, header map[string][]string, query url.Values) (res *SimResult, payload []byte, err error) {
	ctype := req.ContentType
	if ctype == "" {
		ctype = "application/json"
	}
	body, err := simBody(req)
	if err != nil {
		return nil, nil, err
	}
	if _, given := header["Content-Type"]; !given {
		header["Content-Type"] = []string{ctype}
	}
	vreq := &verify.Request{Method: "POST", URL: req.URL, Header: header, Query: query, Body: body, Now: s.now}
	if vreq.URL == "" {
		vreq.URL = "http://localhost/hooks/" + req.Connector
		if len(query) > 0 {
			vreq.URL += "?" + query.Encode()
		}
	}
	res = newSimResult()
	r := checkSize(s.b, in, len(body))
	if r == nil {
		var adm admission
		var resp *connectors.HandshakeResponse
		if adm, resp, r = checkIntake(s.b, in, ctype, vreq); resp != nil {
			res.Handshake = &SimHandshake{Status: resp.Status, Body: string(resp.Body)}
			s.finish(res)
			return res, nil, nil
		}
		payload = adm.payload
	}
	if r != nil {
		res.Refused = r
		s.finish(res)
		return res, nil, nil
	}
	return nil, payload, nil
}

// Advance moves the clock forward by d, firing every timer that comes due
// on the way, at its due time, in due order (timers they arm fire too).
func (s *Simulation) Advance(d time.Duration) (*SimResult, error) {
	res := newSimResult()
	end := s.now.Add(d)
	var batchDue time.Time
	for fired := 0; ; fired++ {
		if fired > maxSimTimers {
			return nil, fmt.Errorf("%w: advance fired more than %d timers", errBadSim, maxSimTimers)
		}
		next, ok := s.nextDue()
		if !ok || next.Due.After(end) {
			break
		}
		// The scheduler fires the timers due at one instant in one batch,
		// later ones in later batches: an update that repeats one queued
		// by an earlier batch is not a no-op.
		if fired == 0 || !next.Due.Equal(batchDue) {
			s.queued, batchDue = nil, next.Due
		}
		if next.Due.After(s.now) {
			s.now = next.Due
		}
		snap := s.snaps[next.Key]
		if snap == nil {
			delete(s.timers, simTimer{next.Key, next.Rule})
			continue
		}
		// As the scheduler does (store's LastEventVars): the vars of the
		// entity's last event that had some, which its snapshot keeps.
		var vars map[string]string
		if len(snap.Vars) > 0 {
			vars = snap.Vars
		}
		ev := &event.Event{Connector: next.Key.Connector, Type: event.TypeTimerFired, Entity: next.Key.Entity, Reference: next.Key.Reference,
			OccurredAt: next.Due, ReceivedAt: s.now, Actor: event.Actor{Type: event.ActorSystem, Name: "scheduler"},
			Fields: map[string]any{}, Vars: vars, Rule: next.Rule}
		if err := s.run(ev, res); err != nil {
			return nil, err
		}
	}
	s.now = end
	s.finish(res)
	return res, nil
}

func (s *Simulation) nextDue() (store.Timer, bool) {
	var best store.Timer
	found := false
	for _, t := range s.timers {
		if !found || t.Due.Before(best.Due) || t.Due.Equal(best.Due) && (t.Key.String() < best.Key.String() || t.Key == best.Key && t.Rule < best.Rule) {
			best, found = t, true
		}
	}
	return best, found
}

func (s *Simulation) finish(res *SimResult) {
	res.Timers = s.Timers()
	res.Now = s.now
}

// run decides one event at the current time and keeps what it changed.
func (s *Simulation) run(ev *event.Event, res *SimResult) error {
	s.seq++
	if ev.ID == "" {
		ev.ID = fmt.Sprintf("dry-run-%d", s.seq)
	}
	key := ev.Key()
	// As the pipeline does: apply once to learn the changes, and mark the
	// echo of the run's own updates before the rules run.
	prior := s.snaps[key]
	applied, _, _, err := markEchoes(s.fingerprints, ev, prior, s.now, s.b.derivedFrom(ev.Connector))
	if err != nil {
		return err
	}
	d, err := decide(s.b.Rules, ev, prior, applied, s.now, s.ruleFirings, "")
	if err != nil {
		return err
	}
	idx := len(res.Events)
	res.Events = append(res.Events, ev)
	s.snaps[key] = d.Next
	res.Snapshots[key.String()] = d.Next
	if ev.Type == event.TypeTimerFired {
		delete(s.timers, simTimer{key, ev.Rule})
	}
	for _, op := range d.Timers {
		switch {
		case op.Op == rules.TimerCancel, op.Parked:
			// A paused clock's parked timer only lets a reload find the
			// clock; a simulation has no reloads and shows none.
			delete(s.timers, simTimer{key, op.Rule})
		case op.Op == rules.TimerArm, op.Op == rules.TimerMove:
			s.timers[simTimer{key, op.Rule}] = store.Timer{Key: key, Rule: op.Rule, Due: op.Due, ArmedAt: s.now}
		}
	}
	res.Matched = append(res.Matched, d.Result.Matched...)
	res.Errors = append(res.Errors, d.Result.Errors...)
	for _, te := range d.Result.Trace {
		res.Trace = append(res.Trace, SimTraceEntry{Event: idx, TraceEntry: te})
	}
	for i := range d.Result.Updates {
		u := &d.Result.Updates[i]
		if u.Kind == event.KindUpdateEntity {
			if !s.queue(u) {
				res.Suppressed = append(res.Suppressed, fmt.Sprintf("rule %s: update of %s/%s/%s is a no-op", u.RuleID, u.Connector, u.Entity, u.Reference))
				continue
			}
		}
		res.Actions = append(res.Actions, *u)
	}
	return nil
}

// queue is the pipeline's enqueue for an entity update: it drops what the
// target, with the updates already queued, has (false: nothing is left),
// else queues u and fingerprints its changes.
func (s *Simulation) queue(u *event.Update) bool {
	key := u.StateKey()
	// In memory, reading fingerprints cannot fail.
	target, _ := forgetUnsettled(s.fingerprints, withQueued(s.snaps[key], s.queued[key]), u, s.now)
	if dropNoOps(u, target) {
		return false
	}
	if s.queued == nil {
		s.queued = map[event.EntityKey][]*event.Update{}
	}
	s.queued[key] = append(s.queued[key], u)
	s.seq++
	d := &store.Delivery{ID: fmt.Sprintf("dry-run-delivery-%d", s.seq), Connector: u.Connector, Entity: u.Entity,
		Reference: u.Reference, RuleID: u.RuleID, Update: *u, Hops: u.Hops}
	// In memory, putting a fingerprint cannot fail.
	_ = putFingerprints(s.fingerprints, s.b, s.now, d)
	return true
}

// simBody returns a dry run's body as it is posted: the payload's JSON, or
// for a form content type the form text the payload (a JSON string) holds.
func simBody(req SimRequest) ([]byte, error) {
	if verify.ContentKind(req.ContentType) != "form" {
		return []byte(req.Payload), nil
	}
	var form string
	if err := json.Unmarshal(req.Payload, &form); err != nil {
		return nil, fmt.Errorf("%w: a form payload must be a JSON string holding the form body", errBadSim)
	}
	return []byte(form), nil
}

// simPayload returns a dry run's payload as the intake admits it: the
// JSON, or a form body decoded into JSON.
func simPayload(req SimRequest) ([]byte, error) {
	body, err := simBody(req)
	if err != nil {
		return nil, err
	}
	if verify.ContentKind(req.ContentType) == "form" {
		js, _, err := verify.DecodeForm(body)
		if err != nil {
			return nil, fmt.Errorf("%w: form payload: %v", errBadSim, err)
		}
		body = js
	}
	return body, nil
}

// simHeaders returns a dry run's headers (canonical names) and query.
func simHeaders(req SimRequest) (map[string][]string, url.Values) {
	header := make(map[string][]string, len(req.Headers)+1)
	for k, v := range req.Headers {
		header[textproto.CanonicalMIMEHeaderKey(k)] = []string{v}
	}
	query := make(url.Values, len(req.Query))
	for k, v := range req.Query {
		query.Set(k, v)
	}
	return header, query
}

func simEvents(b *Bundle, req SimRequest, now time.Time) ([]*event.Event, []mapping.Warning, error) {
	if req.Event != nil {
		ev := req.Event
		if ev.Connector == "" {
			ev.Connector = req.Connector
		}
		if ev.Type == "" || ev.Entity == "" || ev.Reference == "" {
			return nil, nil, fmt.Errorf("%w: event needs type, entity and reference", errBadSim)
		}
		for k, v := range ev.Fields {
			ev.Fields[k] = event.Normalize(v)
		}
		if ev.OccurredAt.IsZero() {
			ev.OccurredAt = now
		}
		if ev.ReceivedAt.IsZero() {
			ev.ReceivedAt = now
		}
		return []*event.Event{ev}, nil, nil
	}
	c := b.Connectors[req.Connector]
	if c == nil || c.Inbound == nil || c.Inbound.Mapper == nil {
		return nil, nil, fmt.Errorf("%w: unknown connector %q (known: %v)", errBadSim, req.Connector, b.ConnectorNames())
	}
	if len(req.Payload) == 0 {
		return nil, nil, fmt.Errorf("%w: give either a payload (with connector) or an event", errBadSim)
	}
	body, err := simPayload(req)
	if err != nil {
		return nil, nil, err
	}
	header, query := simHeaders(req)
	events, warnings, err := c.Inbound.Mapper.MapWithWarnings(mapping.Input{Body: body, Header: header, Query: query, ReceivedAt: now})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: mapping: %v", errBadSim, err)
	}
	hops, cause := causationFromHeaders(header)
	for _, ev := range events {
		ev.Causation.Hops, ev.Causation.DeliveryID = hops, cause
	}
	return events, warnings, nil
}

// testRules is POST /api/v1/rules/test: a dry run with no side effects.
func (s *Server) testRules(c *fiber.Ctx) error {
	var req SimRequest
	// Strict: a misspelt key ("advence", "snapshot.feilds") would be
	// dropped and the run answered as if it had not been written.
	if ok, err := s.decodeStrictJSONBody(c, "dry-run request", &req); !ok {
		return err
	}
	res, err := Simulate(s.bundle.Load(), req, s.now())
	if errors.Is(err, errBadSim) {
		return problem(c, fiber.StatusBadRequest, "%v", err)
	} else if err != nil {
		return problem(c, fiber.StatusInternalServerError, "%v", err)
	}
	return c.JSON(res)
}

// RunRequest names the entity a rule runs on by hand.
type RunRequest struct {
	Connector string            `json:"connector"`
	Entity    string            `json:"entity"`
	Reference string            `json:"reference"`
	Vars      map[string]string `json:"vars,omitempty"`
}

// runRule is POST /api/v1/rules/{id}/run: SmarterTrack-style manual events.
// The run is recorded as an event of type rule.run on the entity, with its
// trace, and its updates go to the outbox like any other.
func (s *Server) runRule(c *fiber.Ctx) error {
	id := c.Params("id")
	var req RunRequest
	if ok, err := s.decodeJSONBody(c, "run request", &req); !ok {
		return err
	}
	b := s.bundle.Load()
	if b.Rules.Rule(id) == nil {
		return problem(c, fiber.StatusNotFound, "no rule %q", id)
	}
	if req.Connector == "" || req.Entity == "" || req.Reference == "" {
		return problem(c, fiber.StatusBadRequest, "connector, entity and reference are required")
	}
	now := s.now()
	ev := &event.Event{ID: s.ids.New(now), Connector: req.Connector, Type: "rule.run", Entity: req.Entity, Reference: req.Reference,
		OccurredAt: now, ReceivedAt: now, Actor: event.Actor{Type: event.ActorSystem, Name: "admin API"},
		Fields: map[string]any{}, Vars: map[string]string{"REFERENCE": req.Reference}, Rule: id}
	var trace *EventTrace
	err := s.pipe.inBatch(b, now, func(bs *batchState) error {
		prior, err := bs.snapshot(ev.Key())
		if err != nil {
			return err
		}
		if prior == nil {
			return fmt.Errorf("%w: no entity %s is known; rules run on entities Hookline has seen", store.ErrNotFound, ev.Key())
		}
		// The template variables of the entity's last event, as a timer
		// firing gets them (%%TICKET_REFERENCE%% and the like), then the
		// request's own on top.
		last, err := bs.tx.LastEventVars(prior)
		if err != nil {
			return err
		}
		for k, v := range last {
			ev.Vars[k] = v
		}
		for k, v := range req.Vars {
			ev.Vars[k] = v
		}
		trace, err = s.pipe.handleEvent(bs, ev, id)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return problem(c, fiber.StatusNotFound, "%v", err)
	} else if err != nil {
		return problem(c, fiber.StatusInternalServerError, "run rule %s: %v", id, err)
	}
	return c.JSON(fiber.Map{"event": ev, "trace": trace})
}
