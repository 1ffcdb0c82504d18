package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/hookline/hookline/delivery"
	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/store"
)

// REST hooks, the way Zapier (and Make) expect them: a no-code tool
// subscribes a target URL to an event type, every matching event is POSTed
// there as simple JSON, and a 410 Gone from the target removes the
// subscription. Deliveries go through the outbox like any other, so they are
// durable, retried and visible; their connector is restHooksConnector and
// their rule "rest-hook:<subscription id>".
const (
	restHooksConnector = "rest_hooks"
	restHookRulePrefix = "rest-hook:"
)

// subscriptionMatches reports whether an event type matches a subscription's
// pattern: "*", an exact type, or a prefix glob like "ticket.*".
func subscriptionMatches(pattern, typ string) bool {
	switch {
	case pattern == "*":
		// Timer firings are the gateway's own bookkeeping: only a
		// subscriber that asks for them by name gets them.
		return typ != event.TypeTimerFired
	case strings.HasSuffix(pattern, ".*"):
		return strings.HasPrefix(typ, strings.TrimSuffix(pattern, "*"))
	}
	return pattern == typ
}

// validEventPattern reports whether a subscription's event can match
// anything: *, a type (ticket.updated), or a type prefix ending in .*
// (ticket.*). A star anywhere else, spaces or empty parts match nothing.
func validEventPattern(p string) bool {
	if p == "*" {
		return true
	}
	p = strings.TrimSuffix(p, ".*")
	for _, part := range strings.Split(p, ".") {
		if part == "" || strings.ContainsAny(part, "* \t\r\n") {
			return false
		}
	}
	return true
}

// HookPayload is the JSON a REST-hook subscriber receives for an event, and
// what the sample endpoint lists: the event without its raw payload.
type HookPayload struct {
	ID         string                  `json:"id"`
	Type       string                  `json:"type"`
	Connector  string                  `json:"connector"`
	Entity     string                  `json:"entity"`
	Reference  string                  `json:"reference"`
	OccurredAt string                  `json:"occurred_at"`
	Actor      event.Actor             `json:"actor"`
	Fields     map[string]any          `json:"fields"`
	Changes    map[string]event.Change `json:"changes,omitempty"`
	Vars       map[string]string       `json:"vars,omitempty"`
}

func hookPayload(ev *event.Event) HookPayload {
	return HookPayload{ID: ev.ID, Type: ev.Type, Connector: ev.Connector, Entity: ev.Entity, Reference: ev.Reference,
		OccurredAt: event.String(ev.OccurredAt), Actor: ev.Actor, Fields: ev.Fields, Changes: ev.Changes, Vars: ev.Vars}
}

// restHookUpdates returns one call_webhook update per subscription the event
// matches that still exists (exists: as the caller's transaction sees it,
// the list in memory may predate an unsubscribe). Echoes of our own deliveries are not forwarded: a Zap that updates
// a ticket must not be triggered again by its own update.
func restHookUpdates(subs []store.Subscription, ev *event.Event, exists func(id string) bool) ([]event.Update, error) {
	if ev.Causation.Echo || len(subs) == 0 {
		return nil, nil
	}
	var out []event.Update
	var body []byte
	for _, s := range subs {
		if !subscriptionMatches(s.Event, ev.Type) || !exists(s.ID) {
			continue
		}
		if body == nil {
			var err error
			if body, err = json.Marshal(hookPayload(ev)); err != nil {
				return nil, fmt.Errorf("encode rest hook payload: %w", err)
			}
		}
		out = append(out, event.Update{
			Kind: event.KindCallWebhook, RuleID: restHookRulePrefix + s.ID, EventID: ev.ID,
			Connector: restHooksConnector, Entity: ev.Entity,
			// One queue per subscriber and entity: in order per ticket, parallel across them.
			Reference: s.ID + "/" + ev.Connector + "/" + ev.Reference,
			Hops:      ev.Causation.Hops + 1,
			Webhook: &event.WebhookCall{URL: s.TargetURL, Method: "POST",
				Headers: map[string]string{"Content-Type": "application/json"}, Body: string(body)},
		})
	}
	return out, nil
}

func (s *Server) loadSubscriptions() error {
	subs, err := s.db.Subscriptions()
	if err != nil {
		return fmt.Errorf("load subscriptions: %w", err)
	}
	s.subs.Store(&subs)
	return nil
}

func (s *Server) subscriptions() []store.Subscription {
	if p := s.subs.Load(); p != nil {
		return *p
	}
	return nil
}

// subscribe is POST /api/v1/subscriptions {"target_url", "event"} -> 201.
func (s *Server) subscribe(c *fiber.Ctx) error {
	var req struct {
		TargetURL string `json:"target_url"`
		Event     string `json:"event"`
	}
	if ok, err := s.decodeJSONBody(c, "subscription", &req); !ok {
		return err
	}
	u, err := url.Parse(req.TargetURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return problem(c, fiber.StatusBadRequest, "target_url must be an absolute http(s) URL")
	}
	if ok, err := s.checkHookTarget(c, u); !ok {
		return err
	}
	if req.Event == "" {
		req.Event = "*"
	}
	if !validEventPattern(req.Event) {
		return problem(c, fiber.StatusBadRequest, "event %q: want an event type (ticket.updated), a prefix ending in .* (ticket.*) or *", req.Event)
	}
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	// A no-code tool that retries a subscribe after a timeout gets the
	// subscription it made, not a second one (each event would go twice).
	for _, old := range s.subscriptions() {
		if old.TargetURL == req.TargetURL && old.Event == req.Event {
			c.Locals(adminIDKey, old.ID)
			return c.Status(fiber.StatusOK).JSON(old)
		}
	}
	sub := store.Subscription{ID: s.ids.New(s.now()), TargetURL: req.TargetURL, Event: req.Event, CreatedAt: s.now()}
	if err := s.db.Update(func(tx *store.Tx) error { return tx.PutSubscription(sub) }); err != nil {
		return problem(c, fiber.StatusInternalServerError, "store subscription: %v", err)
	}
	if err := s.loadSubscriptions(); err != nil {
		return problem(c, fiber.StatusInternalServerError, "%v", err)
	}
	c.Locals(adminIDKey, sub.ID)
	return c.Status(fiber.StatusCreated).JSON(sub)
}

// hookTargetResolveTimeout bounds the name lookup of a subscription's
// target.
const hookTargetResolveTimeout = 5 * time.Second

// checkHookTarget refuses (400, and false with the answer's error) a
// target whose deliveries the egress guard would refuse, by the policy
// they are sent with (Dispatcher.CheckEgress): each of them would be
// dead-lettered. A name that does not resolve now is accepted: delivery
// checks the address it connects to in any case.
func (s *Server) checkHookTarget(c *fiber.Ctx, target *url.URL) (bool, error) {
	ctx, cancel := context.WithTimeout(c.UserContext(), hookTargetResolveTimeout)
	defer cancel()
	err := s.disp.CheckEgress(ctx, restHooksConnector, target.Hostname())
	switch {
	case errors.Is(err, delivery.ErrEgressRefused):
		return false, problem(c, fiber.StatusBadRequest, "target_url %s is refused by the gateway's egress policy: %v", target.Redacted(), err)
	case err != nil:
		s.log.Warn("REST hook target does not resolve now; subscribed all the same", "target", target.Redacted(), "err", err)
	}
	return true, nil
}

// unsubscribe is DELETE /api/v1/subscriptions/{id}.
func (s *Server) unsubscribe(c *fiber.Ctx) error {
	id := c.Params("id")
	if err := s.removeSubscription(id, "unsubscribed: subscription "+id+" deleted"); errors.Is(err, store.ErrNotFound) {
		return problem(c, fiber.StatusNotFound, "no subscription %s", id)
	} else if err != nil {
		return problem(c, fiber.StatusInternalServerError, "%v", err)
	}
	return c.JSON(fiber.Map{"id": id, "deleted": true})
}

// removeSubscription deletes subscription id and cancels its deliveries
// still waiting (a retry after a failure among them) with the reason: a
// target whose subscription is gone gets nothing more.
func (s *Server) removeSubscription(id, reason string) error {
	s.subsMu.Lock()
	err := s.db.Update(func(tx *store.Tx) error { return tx.DeleteSubscription(id) })
	if err == nil {
		err = s.loadSubscriptions()
	}
	s.subsMu.Unlock()
	if err != nil {
		return err
	}
	s.cancelSubscriptionDeliveries(id, reason)
	return nil
}

// restHookSubscriptionID returns the subscription a REST-hook delivery
// goes out for (false: d is not one).
func restHookSubscriptionID(d *store.Delivery) (string, bool) {
	id, ok := strings.CutPrefix(d.RuleID, restHookRulePrefix)
	return id, ok && d.Connector == restHooksConnector
}

// withdrawn tells the dispatcher not to send a REST-hook delivery whose
// subscription was removed (unsubscribed or gone) after it was queued:
// one in flight or claimed while the unsubscribe cancelled the rest.
func (s *Server) withdrawn(d *store.Delivery) string {
	id, ok := restHookSubscriptionID(d)
	if !ok {
		return ""
	}
	for _, sub := range s.subscriptions() {
		if sub.ID == id {
			return ""
		}
	}
	return "unsubscribed: subscription " + id + " was removed"
}

// cancelSubscriptionDeliveries cancels the pending deliveries of
// subscription id with the reason. One in flight finishes its attempt
// (withdrawn stops it before the next). They are found through the
// reference index (their references start with "<id>/"), never by walking
// every pending delivery.
func (s *Server) cancelSubscriptionDeliveries(id, reason string) {
	n, err := s.db.CancelPendingByReferencePrefix(restHooksConnector, id+"/", reason)
	if err != nil {
		s.log.Error("cancel deliveries of a removed subscription", "subscription", id, "cancelled", n, "err", err)
	}
}

func (s *Server) listSubscriptions(c *fiber.Ctx) error {
	subs := s.subscriptions()
	if subs == nil {
		subs = []store.Subscription{}
	}
	return c.JSON(fiber.Map{"subscriptions": orEmpty(subs)})
}

// samples is GET /api/v1/samples?type=ticket.updated&limit=3: recent events
// of a type in the shape subscribers receive, as a plain JSON array (what
// Zapier's and Make's field pickers ask for).
func (s *Server) samples(c *fiber.Ctx) error {
	limit, err := queryLimit(c, 3, 100)
	if err != nil {
		return problem(c, fiber.StatusBadRequest, "%v", err)
	}
	// What a subscriber of the type or pattern would have received (no
	// echoes; timer firings only when named): the newest such events among
	// the last samplePatternScan of the type (of any type for a pattern).
	typ := c.Query("type")
	pattern := typ
	if pattern == "" {
		pattern = "*"
	}
	if !validEventPattern(pattern) {
		return problem(c, fiber.StatusBadRequest, "type %q: want an event type (ticket.updated), a prefix ending in .* (ticket.*) or *", typ)
	}
	f := store.EventFilter{Connector: c.Query("connector"), Limit: 500}
	if !strings.Contains(pattern, "*") {
		f.Type = pattern
	}
	out := make([]HookPayload, 0, limit)
	for scanned, pages := 0, 0; len(out) < limit && scanned < samplePatternScan && pages < samplePages; pages++ {
		evs, next, err := s.db.ListEvents(f)
		if err != nil {
			return storeProblem(c, err)
		}
		for _, e := range evs {
			if len(out) < limit && !e.Event.Causation.Echo && subscriptionMatches(pattern, e.Event.Type) {
				out = append(out, hookPayload(e.Event))
			}
		}
		scanned += len(evs)
		if next == "" {
			break
		}
		f.Cursor = next
	}
	return c.JSON(out)
}

// samplePatternScan bounds how many recent events a sample request looks
// through, and samplePages how many list pages it reads to find them: a
// page reads at most 20,000 records (store.ListEvents) and comes back
// empty when none of them has the type, so a type with no recent events
// costs a bounded read, not the whole history.
const (
	samplePatternScan = 5000
	samplePages       = 5
)

// goneQueue hands the subscriptions whose target answered 410 to a
// goroutine of their own. The dispatcher calls OnGone on its one
// store-writing loop, between transactions: removing a subscription and
// cancelling its deliveries there would stall every delivery meanwhile.
// A subscription is queued once however many 410s name it.
type goneQueue struct {
	mu     sync.Mutex
	ids    []string
	queued map[string]bool
	wake   chan struct{}
}

func newGoneQueue() *goneQueue {
	return &goneQueue{queued: map[string]bool{}, wake: make(chan struct{}, 1)}
}

// add queues subscription id, unless it waits already. It never blocks
// on the store.
func (q *goneQueue) add(id string) {
	q.mu.Lock()
	if !q.queued[id] {
		q.queued[id] = true
		q.ids = append(q.ids, id)
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take returns the queued ids and empties the queue.
func (q *goneQueue) take() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	ids := q.ids
	q.ids = nil
	clear(q.queued)
	return ids
}

// run hands each queued id to handle until ctx ends, then the ones still
// queued.
func (q *goneQueue) run(ctx context.Context, handle func(id string)) {
	for {
		for _, id := range q.take() {
			handle(id)
		}
		select {
		case <-ctx.Done():
			for _, id := range q.take() {
				handle(id)
			}
			return
		case <-q.wake:
		}
	}
}

// restHookGone handles a 410 from subscriber id (goneQueue runs it): the
// subscription is removed and its other pending deliveries are
// dead-lettered with the reason.
func (s *Server) restHookGone(id string) {
	reason := "target gone (410): subscription " + id + " removed"
	switch err := s.removeSubscription(id, reason); {
	case errors.Is(err, store.ErrNotFound):
		// Removed already (unsubscribed, or an earlier 410): its waiting
		// deliveries may still be there.
		s.cancelSubscriptionDeliveries(id, reason)
		return
	case err != nil:
		s.log.Error("remove gone subscription", "subscription", id, "err", err)
		return
	}
	s.log.Warn("REST hook subscriber answered 410 Gone: subscription removed", "subscription", id)
}
