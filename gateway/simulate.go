package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/textproto"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/hookline/hookline/connectors/verify"
	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/mapping"
	"github.com/hookline/hookline/rules"
	"github.com/hookline/hookline/store"
)

// SimRequest is a dry run: a payload for a connector's mapping, or a ready
// event, with an optional prior snapshot and clock.
type SimRequest struct {
	Connector string            `json:"connector"`
	Headers   map[string]string `json:"headers,omitempty"`
	// Payload is the webhook body: a JSON value, or a string holding a form
	// body when ContentType is form-encoded.
	Payload     json.RawMessage `json:"payload,omitempty"`
	ContentType string          `json:"content_type,omitempty"`
	Event       *event.Event    `json:"event,omitempty"`
	Snapshot    *event.Snapshot `json:"snapshot,omitempty"`
	Now         *time.Time      `json:"now,omitempty"`
}

// SimTraceEntry is one rule's trace for one of the run's events.
type SimTraceEntry struct {
	Event int `json:"event"`
	rules.TraceEntry
}

// SimResult is what a dry run decided. Nothing of it was stored or sent.
type SimResult struct {
	Events     []*event.Event    `json:"events"`
	Matched    []string          `json:"matched"`
	Actions    []event.Update    `json:"actions"`
	Suppressed []string          `json:"suppressed,omitempty"`
	Errors     []rules.RuleError `json:"errors,omitempty"`
	Trace      []SimTraceEntry   `json:"trace"`
	Unmapped   bool              `json:"unmapped,omitempty"`
	// Snapshots are the entity states after the run, by entity key.
	Snapshots map[string]*event.Snapshot `json:"snapshots,omitempty"`
}

// errBadSim marks a dry-run request that is wrong (answered 400).
var errBadSim = errors.New("bad dry run")

// Simulate runs a request through mapping, snapshot and rules exactly as the
// pipeline does, without touching the store or the network.
func Simulate(b *Bundle, req SimRequest, now time.Time) (*SimResult, error) {
	if req.Now != nil {
		now = *req.Now
	}
	events, err := simEvents(b, req, now)
	if err != nil {
		return nil, err
	}
	res := &SimResult{Events: events, Matched: []string{}, Actions: []event.Update{}, Trace: []SimTraceEntry{},
		Snapshots: map[string]*event.Snapshot{}}
	if len(events) == 0 {
		res.Unmapped = true
		return res, nil
	}
	snaps := map[event.EntityKey]*event.Snapshot{}
	for i, ev := range events {
		if ev.ID == "" {
			ev.ID = fmt.Sprintf("dry-run-%d", i+1)
		}
		key := ev.Key()
		prior, seen := snaps[key]
		if !seen && req.Snapshot != nil {
			prior = req.Snapshot.Clone()
			prior.Key = key
			if prior.Fields == nil {
				prior.Fields = map[string]any{}
			}
			for k, v := range prior.Fields {
				prior.Fields[k] = event.Normalize(v)
			}
		}
		d, err := decide(b.Rules, ev, prior, now, nil, "")
		if err != nil {
			return nil, err
		}
		snaps[key] = d.Next
		res.Snapshots[key.String()] = d.Next
		res.Matched = append(res.Matched, d.Result.Matched...)
		res.Errors = append(res.Errors, d.Result.Errors...)
		for _, te := range d.Result.Trace {
			res.Trace = append(res.Trace, SimTraceEntry{Event: i, TraceEntry: te})
		}
		for _, u := range d.Result.Updates {
			if u.Kind == event.KindUpdateEntity {
				target := snaps[event.EntityKey{Connector: u.Connector, Entity: u.Entity, Reference: u.Reference}]
				if dropNoOps(&u, target) {
					res.Suppressed = append(res.Suppressed, fmt.Sprintf("rule %s: update of %s/%s/%s is a no-op", u.RuleID, u.Connector, u.Entity, u.Reference))
					continue
				}
			}
			res.Actions = append(res.Actions, u)
		}
	}
	return res, nil
}

func simEvents(b *Bundle, req SimRequest, now time.Time) ([]*event.Event, error) {
	if req.Event != nil {
		ev := req.Event
		if ev.Connector == "" {
			ev.Connector = req.Connector
		}
		if ev.Type == "" || ev.Entity == "" || ev.Reference == "" {
			return nil, fmt.Errorf("%w: event needs type, entity and reference", errBadSim)
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
		return []*event.Event{ev}, nil
	}
	c := b.Connectors[req.Connector]
	if c == nil || c.Inbound == nil || c.Inbound.Mapper == nil {
		return nil, fmt.Errorf("%w: unknown connector %q (known: %v)", errBadSim, req.Connector, b.ConnectorNames())
	}
	if len(req.Payload) == 0 {
		return nil, fmt.Errorf("%w: give either a payload (with connector) or an event", errBadSim)
	}
	body := []byte(req.Payload)
	if verify.ContentKind(req.ContentType) == "form" {
		var form string
		if err := json.Unmarshal(req.Payload, &form); err != nil {
			return nil, fmt.Errorf("%w: a form payload must be a JSON string holding the form body", errBadSim)
		}
		js, _, err := verify.DecodeForm([]byte(form))
		if err != nil {
			return nil, fmt.Errorf("%w: form payload: %v", errBadSim, err)
		}
		body = js
	}
	header := map[string][]string{}
	for k, v := range req.Headers {
		header[textproto.CanonicalMIMEHeaderKey(k)] = []string{v}
	}
	events, err := c.Inbound.Mapper.Map(mapping.Input{Body: body, Header: header, ReceivedAt: now})
	if err != nil {
		return nil, fmt.Errorf("%w: mapping: %v", errBadSim, err)
	}
	hops, cause := causationFromHeaders(header)
	for _, ev := range events {
		ev.Causation.Hops, ev.Causation.DeliveryID = hops, cause
	}
	return events, nil
}

// testRules is POST /api/v1/rules/test: a dry run with no side effects.
func (s *Server) testRules(c *fiber.Ctx) error {
	var req SimRequest
	if err := json.Unmarshal(c.Body(), &req); err != nil {
		return problem(c, fiber.StatusBadRequest, "malformed dry-run request: %v", err)
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
	if err := json.Unmarshal(c.Body(), &req); err != nil {
		return problem(c, fiber.StatusBadRequest, "malformed run request: %v", err)
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
	for k, v := range req.Vars {
		ev.Vars[k] = v
	}
	var trace *EventTrace
	var deliveries int
	err := s.db.Update(func(tx *store.Tx) error {
		bs := &batchState{tx: tx, bundle: b, now: now, snapshots: map[event.EntityKey]*event.Snapshot{}, dirty: map[event.EntityKey]bool{}}
		prior, err := bs.snapshot(ev.Key())
		if err != nil {
			return err
		}
		if prior == nil {
			return fmt.Errorf("%w: no entity %s is known; rules run on entities Hookline has seen", store.ErrNotFound, ev.Key())
		}
		if trace, err = s.pipe.handleEvent(bs, ev, id); err != nil {
			return err
		}
		for k := range bs.dirty {
			if err := tx.PutEntity(bs.snapshots[k]); err != nil {
				return err
			}
		}
		deliveries = bs.deliveries
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return problem(c, fiber.StatusNotFound, "%v", err)
	} else if err != nil {
		return problem(c, fiber.StatusInternalServerError, "run rule %s: %v", id, err)
	}
	if deliveries > 0 {
		s.disp.Notify()
	}
	return c.JSON(fiber.Map{"event": ev, "trace": trace})
}
