package gateway

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/oklog/ulid/v2"
	"golang.org/x/time/rate"

	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/internal/yamlconf"
	"github.com/hookline/hookline/store"
)

// routes mounts the admin API under /api/v1.
func (s *Server) routes(app *fiber.App) {
	api := app.Group("/api/v1", s.adminAuth, s.logAdminCall)
	api.Get("/events", s.listEvents)
	api.Get("/events/:id", s.getEvent)
	api.Get("/inbox", s.listInbox)
	api.Post("/inbox/replay", s.replayInbox)
	api.Get("/inbox/:id", s.getInbox)
	api.Post("/inbox/:id/replay", s.replayInboxItem)
	api.Get("/entities/:connector/:entity/:reference", s.getEntity)
	api.Get("/rules", s.listRules)
	api.Post("/rules/test", s.testRules)
	api.Post("/rules/:id/run", s.runRule)
	api.Get("/deliveries", s.listDeliveries)
	api.Post("/deliveries/retry", s.retryDeliveries)
	api.Get("/deliveries/:id", s.getDelivery)
	api.Post("/deliveries/:id/retry", s.retryDelivery)
	api.Post("/deliveries/:id/cancel", s.cancelDelivery)
	api.Get("/timers", s.listTimers)
	api.Get("/subscriptions", s.listSubscriptions)
	api.Post("/subscriptions", s.subscribe)
	api.Delete("/subscriptions/:id", s.unsubscribe)
	api.Get("/samples", s.samples)
	api.Post("/config/reload", s.reloadConfig)
}

// adminAuth requires the bearer token when one is configured; without one,
// only direct requests from loopback are served (see directFromLoopback).
func (s *Server) adminAuth(c *fiber.Ctx) error {
	token := s.bundle.Load().File.AdminToken
	if token == "" {
		if ok, why := directFromLoopback(c.Context().RemoteIP(), c.Get); !ok {
			return s.adminRefused(c, fiber.StatusForbidden, "the admin API answers only requests from loopback, not forwarded by a proxy, because HOOKLINE_ADMIN_TOKEN is not set: "+why)
		}
		if ok, why := notFromABrowserPage(c.Method(), string(c.Request().Host()), c.Get); !ok {
			return s.adminRefused(c, fiber.StatusForbidden, "the admin API without HOOKLINE_ADMIN_TOKEN answers only tools on this machine (curl, hookline), not web pages: "+why)
		}
		return c.Next()
	}
	got, ok := bearerToken(c.Get(fiber.HeaderAuthorization))
	if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="hookline"`)
		return s.adminRefused(c, fiber.StatusUnauthorized, "missing or wrong bearer token")
	}
	return c.Next()
}

// adminRefused answers an admin API request adminAuth refused, and logs it
// at warn: the first per status each minute (someone guessing the token
// sends many), with how many were held back since.
func (s *Server) adminRefused(c *fiber.Ctx, status int, reason string) error {
	s.logLimited(slog.LevelWarn, "admin API request refused", "admin "+strconv.Itoa(status), func() []any {
		return []any{"method", c.Method(), "path", c.Path(), "status", status, "reason", reason, "remote", c.IP()}
	})
	return problem(c, status, "%s", reason)
}

// The c.Locals keys under which an admin call leaves, for logAdminCall,
// how many items a bulk call changed and the id of what a call made that
// its path does not name (a new subscription).
const (
	adminResultKey = "hookline.admin.result"
	adminIDKey     = "hookline.admin.id"
)

// logAdminCall logs every admin call that may change state (any method
// but GET and HEAD, and not the dry run POST /rules/test) at info once it
// is answered: method, path (with the ids it names), query (the filters of
// a bulk call), status, the count of items a bulk call changed, and the
// remote address. Who replayed, retried or cancelled what, and when, can
// be read from the log.
func (s *Server) logAdminCall(c *fiber.Ctx) error {
	method := c.Method()
	if method == fiber.MethodGet || method == fiber.MethodHead || c.Path() == "/api/v1/rules/test" {
		return c.Next()
	}
	err := c.Next()
	status := c.Response().StatusCode()
	var fe *fiber.Error
	if errors.As(err, &fe) {
		status = fe.Code
	} else if err != nil {
		status = fiber.StatusInternalServerError
	}
	args := []any{"method", method, "path", c.Path()}
	if q := c.Request().URI().QueryString(); len(q) > 0 {
		args = append(args, "query", string(q))
	}
	args = append(args, "status", status)
	if n, ok := c.Locals(adminResultKey).(int); ok {
		args = append(args, "result", n)
	}
	if id, ok := c.Locals(adminIDKey).(string); ok {
		args = append(args, "id", id)
	}
	s.log.Info("admin call", append(args, "remote", c.IP())...)
	return err
}

// bearerToken returns the token of an Authorization header value of the
// Bearer scheme. The scheme is case-insensitive and one or more spaces
// separate it from the token (RFC 9110 §11.1 and §11.4, RFC 6750 §2.1).
func bearerToken(authorization string) (string, bool) {
	scheme, token, ok := strings.Cut(authorization, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimLeft(token, " ")
	return token, token != ""
}

// directFromLoopback reports whether a request without the admin token may
// use the admin API: its peer is a loopback address and it carries none of
// the headers reverse proxies add (a proxy on the same host makes every
// request from the internet look local). A proxy or tunnel that adds none
// of them still looks local: behind one, the token is the protection. why
// says what failed.
func directFromLoopback(ip net.IP, header func(string, ...string) string) (ok bool, why string) {
	if ip == nil || !ip.IsLoopback() {
		return false, "this request is not from loopback"
	}
	// The headers a reverse proxy adds: a request that carries one came
	// from elsewhere, whatever its peer address.
	for _, h := range [...]string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Real-Ip", "Via"} {
		if header(h) != "" {
			return false, "this request came through a proxy (" + h + ")"
		}
	}
	return true, ""
}

// notFromABrowserPage reports whether a loopback request without the admin
// token may be served: a web page open in a browser on the same machine
// reaches loopback too. A page of another site sends an Origin header (or
// Sec-Fetch-Site: cross-site), may POST a "simple" body (text/plain, a
// form) without a CORS preflight, and, re-pointing its own name at
// 127.0.0.1 (DNS rebinding), sends its own name as Host. Tools send none of
// that: the Host must name loopback, no Origin or a cross-site fetch may be
// present, and a body must not be of a type a page can send unasked.
func notFromABrowserPage(method, host string, header func(string, ...string) string) (ok bool, why string) {
	if !loopbackHost(host) {
		return false, fmt.Sprintf("Host %q is not a loopback address or localhost", host)
	}
	if o := header(fiber.HeaderOrigin); o != "" {
		return false, fmt.Sprintf("the request comes from a web page (Origin %q)", o)
	}
	switch site := header("Sec-Fetch-Site"); site {
	case "", "none", "same-origin":
	default:
		return false, fmt.Sprintf("the request comes from a web page (Sec-Fetch-Site %q)", site)
	}
	if method != fiber.MethodGet && method != fiber.MethodHead {
		ctype, _, _ := strings.Cut(strings.ToLower(header(fiber.HeaderContentType)), ";")
		switch strings.TrimSpace(ctype) {
		case "text/plain", "application/x-www-form-urlencoded", "multipart/form-data":
			return false, fmt.Sprintf("a %s body is what a web page can send unasked; send application/json", ctype)
		}
	}
	return true, ""
}

// loopbackHost reports whether a Host header value (with or without a
// port) names this machine: localhost (or a name under .localhost) or a
// loopback address.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && ip.Unmap().IsLoopback()
}

// parseSince accepts an RFC 3339 time or a duration back from now ("1h").
func (s *Server) parseSince(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	d, err := yamlconf.ParseDuration(v)
	if err != nil || d < 0 {
		return time.Time{}, errors.New("since must be an RFC 3339 time or a duration back from now like 1h, 7d or 2w")
	}
	return s.now().Add(-d), nil
}

// storeProblem answers a failed store read: 400 when the store refused an
// argument of the request (store.ErrInvalid: a NUL byte in a name, a bad
// cursor), 500 otherwise.
func storeProblem(c *fiber.Ctx, err error) error {
	if errors.Is(err, store.ErrInvalid) {
		return problem(c, fiber.StatusBadRequest, "%v", err)
	}
	return problem(c, fiber.StatusInternalServerError, "%v", err)
}

// queryLimit reads the limit query parameter: def when absent, at most
// max, a 400's reason when it is not a positive whole number.
func queryLimit(c *fiber.Ctx, def, max int) (int, error) {
	v := c.Query("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, errors.New("limit must be a positive whole number")
	}
	return min(n, max), nil
}

func (s *Server) listEvents(c *fiber.Ctx) error {
	since, err := s.parseSince(c.Query("since"))
	if err != nil {
		return problem(c, fiber.StatusBadRequest, "%v", err)
	}
	limit, err := queryLimit(c, 50, 1000)
	if err != nil {
		return problem(c, fiber.StatusBadRequest, "%v", err)
	}
	cursor, err := idCursor(c, "cursor")
	if err != nil {
		return problem(c, fiber.StatusBadRequest, "%v", err)
	}
	evs, next, err := s.db.ListEvents(store.EventFilter{Connector: c.Query("connector"), Type: c.Query("type"),
		Entity: c.Query("entity"), Reference: c.Query("reference"), Since: since, Cursor: cursor, Limit: limit})
	if err != nil {
		return storeProblem(c, err)
	}
	out := make([]*event.Event, len(evs))
	for i := range evs {
		out[i] = evs[i].Event
	}
	return c.JSON(fiber.Map{"events": out, "next_cursor": next})
}

func (s *Server) getEvent(c *fiber.Ctx) error {
	ev, err := s.db.Event(c.Params("id"))
	if errors.Is(err, store.ErrNotFound) {
		return problem(c, fiber.StatusNotFound, "no event %s", c.Params("id"))
	} else if err != nil {
		return problem(c, fiber.StatusInternalServerError, "%v", err)
	}
	return c.JSON(fiber.Map{"event": ev.Event, "trace": json.RawMessage(orNull(ev.Trace))})
}

func orNull(b []byte) []byte {
	if len(b) == 0 {
		return []byte("null")
	}
	return b
}

func (s *Server) getInbox(c *fiber.Ctx) error {
	it, err := s.db.Inbox(c.Params("id"))
	if errors.Is(err, store.ErrNotFound) {
		return problem(c, fiber.StatusNotFound, "no inbox item %s", c.Params("id"))
	} else if err != nil {
		return problem(c, fiber.StatusInternalServerError, "%v", err)
	}
	return c.JSON(inboxView(it))
}

// decodeJSONBody decodes an admin API request's JSON body (compressed or
// not, at most the largest connector's body limit) into v. When it cannot,
// it answers the request (413, 415, or 400 naming what, the request) and
// returns false with the answer's error for the handler to return.
func (s *Server) decodeJSONBody(c *fiber.Ctx, what string, v any) (bool, error) {
	_, ok, err := s.readJSONBody(c, what, v)
	return ok, err
}

// decodeStrictJSONBody is decodeJSONBody for a request whose keys must all
// be known: an unknown key answers 400 naming it and the key meant.
func (s *Server) decodeStrictJSONBody(c *fiber.Ctx, what string, v any) (bool, error) {
	body, ok, err := s.readJSONBody(c, what, v)
	if !ok {
		return false, err
	}
	var raw any
	_ = json.Unmarshal(body, &raw) // it decoded into v just above
	if unknown := unknownJSONKeys("", raw, reflect.TypeOf(v)); len(unknown) > 0 {
		return false, problem(c, fiber.StatusBadRequest, "%s: %s", what, strings.Join(unknown, "; "))
	}
	return true, nil
}

// readJSONBody is decodeJSONBody that also returns the body it decoded.
func (s *Server) readJSONBody(c *fiber.Ctx, what string, v any) ([]byte, bool, error) {
	body, r := requestBody(c, maxBodyLimit(s.bundle.Load()))
	if r != nil {
		return nil, false, problem(c, r.Status, "%s", r.Reason)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return nil, false, problem(c, fiber.StatusBadRequest, "malformed %s: %v", what, err)
	}
	return body, true, nil
}

// listInbox lists inbox items, oldest first, without their payloads:
// filters connector and state, paging by after (the next_cursor of the
// page before) and limit.
func (s *Server) listInbox(c *fiber.Ctx) error {
	f, err := inboxFilter(c)
	if err != nil {
		return problem(c, fiber.StatusBadRequest, "%v", err)
	}
	items, next, err := s.db.ListInbox(f)
	if err != nil {
		return storeProblem(c, err)
	}
	out := make([]fiber.Map, len(items))
	for i, it := range items {
		out[i] = fiber.Map{"id": it.ID, "connector": it.Connector, "received_at": it.ReceivedAt, "state": it.State,
			"reason": it.Reason, "event_ids": it.EventIDs, "dedupe_key": it.DedupeKey}
		if !it.ProcessedAt.IsZero() {
			out[i]["processed_at"] = it.ProcessedAt
		}
	}
	return c.JSON(fiber.Map{"items": out, "next_cursor": next})
}

// inboxFilter reads the inbox filters of a request's query.
func inboxFilter(c *fiber.Ctx) (store.InboxFilter, error) {
	after, err := idCursor(c, "after")
	if err != nil {
		return store.InboxFilter{}, err
	}
	f := store.InboxFilter{Connector: c.Query("connector"), State: c.Query("state"), After: after}
	switch f.State {
	case "", store.InboxPending, store.InboxProcessed, store.InboxUnmapped, store.InboxFailed:
	default:
		return f, fmt.Errorf("state %q: want one of pending, processed, unmapped, failed", f.State)
	}
	f.Limit, err = queryLimit(c, 100, 1000)
	return f, err
}

// idCursor reads the cursor parameter name of a list whose cursor is the
// id it stopped at: a ULID, as the gateway makes every id; anything else
// is not one a list gave.
func idCursor(c *fiber.Ctx, name string) (string, error) {
	v := c.Query(name)
	if v == "" {
		return "", nil
	}
	if _, err := ulid.ParseStrict(v); err != nil {
		return "", fmt.Errorf("%s %q is not one a list gave (the id of a list's last item)", name, v)
	}
	return v, nil
}

// replayInboxItem puts a failed or unmapped webhook back on the pending
// list: it is processed again with the config in force.
func (s *Server) replayInboxItem(c *fiber.Ctx) error {
	id := c.Params("id")
	s.pipe.expectReplays(true, id)
	err := s.db.Update(func(tx *store.Tx) error { return tx.ReplayInbox(id) })
	if err != nil {
		s.pipe.expectReplays(false, id)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return problem(c, fiber.StatusNotFound, "no inbox item %s", id)
	case errors.Is(err, store.ErrState):
		return problem(c, fiber.StatusConflict, "%v", err)
	case err != nil:
		return problem(c, fiber.StatusInternalServerError, "%v", err)
	}
	s.pipe.replayed()
	return c.Status(fiber.StatusAccepted).JSON(fiber.Map{"id": id, "state": store.InboxPending})
}

// replayInbox replays one page of failed (or, with state=unmapped,
// unmapped) webhooks matching the filters of listInbox; next_cursor
// continues with the next page. An item whose state changed meanwhile is
// skipped.
func (s *Server) replayInbox(c *fiber.Ctx) error {
	f, err := inboxFilter(c)
	if err != nil {
		return problem(c, fiber.StatusBadRequest, "%v", err)
	}
	if f.State == "" {
		f.State = store.InboxFailed
	}
	if f.State != store.InboxFailed && f.State != store.InboxUnmapped {
		return problem(c, fiber.StatusBadRequest, "state %q: only failed and unmapped webhooks are replayed", f.State)
	}
	items, next, err := s.db.ListInbox(f)
	if err != nil {
		return storeProblem(c, err)
	}
	replayed := make([]string, 0, len(items))
	err = s.db.Update(func(tx *store.Tx) error {
		for _, it := range items {
			switch err := tx.ReplayInbox(it.ID); {
			case errors.Is(err, store.ErrState) || errors.Is(err, store.ErrNotFound):
			case err != nil:
				return err
			default:
				replayed = append(replayed, it.ID)
				s.pipe.expectReplays(true, it.ID) // before the commit
			}
		}
		return nil
	})
	if err != nil {
		s.pipe.expectReplays(false, replayed...)
		return problem(c, fiber.StatusInternalServerError, "replay: %v", err)
	}
	if len(replayed) > 0 {
		s.pipe.replayed()
	}
	c.Locals(adminResultKey, len(replayed))
	return c.JSON(fiber.Map{"replayed": len(replayed), "ids": replayed, "more": next != "", "next_cursor": next})
}

// inboxView shows the body as JSON rather than base64.
func inboxView(it *store.InboxItem) fiber.Map {
	m := fiber.Map{"id": it.ID, "connector": it.Connector, "received_at": it.ReceivedAt, "method": it.Method,
		"path": it.Path, "headers": it.Headers, "query": it.Query, "content_type": it.ContentType,
		"dedupe_key": it.DedupeKey, "state": it.State, "reason": it.Reason, "event_ids": it.EventIDs}
	if !it.ProcessedAt.IsZero() {
		m["processed_at"] = it.ProcessedAt
	}
	if json.Valid(it.Body) {
		m["body"] = json.RawMessage(it.Body)
	} else {
		m["body"] = string(it.Body)
	}
	if len(it.RawBody) > 0 {
		m["raw_body"] = string(it.RawBody)
	}
	return m
}

func (s *Server) getEntity(c *fiber.Ctx) error {
	// The path is matched undecoded, so a reference holding a slash or a
	// space arrives escaped (ORD%201, a%2Fb) in one segment.
	var k event.EntityKey
	for _, p := range []struct {
		name string
		dst  *string
	}{{"connector", &k.Connector}, {"entity", &k.Entity}, {"reference", &k.Reference}} {
		v, err := url.PathUnescape(c.Params(p.name))
		if err != nil {
			return problem(c, fiber.StatusBadRequest, "%s %q: %v", p.name, c.Params(p.name), err)
		}
		*p.dst = v
	}
	snap, err := s.db.Entity(k)
	if errors.Is(err, store.ErrNotFound) {
		return problem(c, fiber.StatusNotFound, "no entity %s", k)
	} else if err != nil {
		return problem(c, fiber.StatusInternalServerError, "%v", err)
	}
	var timers []store.Timer
	if err := s.db.View(func(tx *store.Tx) error {
		var err error
		timers, err = tx.TimersOf(k)
		return err
	}); err != nil {
		return problem(c, fiber.StatusInternalServerError, "%v", err)
	}
	return c.JSON(fiber.Map{"entity": snap, "timers": timerViews(timers, func(event.EntityKey) *event.Snapshot { return snap })})
}

// timerView is a timer as the admin API shows it: parked when its rule's
// clock on the entity is paused (pause_when holds), so that it fires
// nothing when it comes due but only waits there for the clock to resume.
type timerView struct {
	store.Timer
	Parked bool `json:"parked,omitempty"`
}

// timerViews marks the parked timers of ts, reading each entity's clocks
// from snapshotOf (called once per timer).
func timerViews(ts []store.Timer, snapshotOf func(event.EntityKey) *event.Snapshot) []timerView {
	out := make([]timerView, len(ts))
	for i, t := range ts {
		out[i].Timer = t
		if snap := snapshotOf(t.Key); snap != nil {
			if c := snap.Clocks[t.Rule]; c != nil && !c.PausedAt.IsZero() {
				out[i].Parked = true
			}
		}
	}
	return out
}

func (s *Server) listRules(c *fiber.Ctx) error {
	set := s.bundle.Load().Rules
	out := []fiber.Map{}
	for _, r := range set.Rules() {
		out = append(out, fiber.Map{"id": r.ID, "name": r.Name, "description": r.Description, "pos": r.Pos.String()})
	}
	return c.JSON(fiber.Map{"rules": out})
}

func (s *Server) deliveryFilter(c *fiber.Ctx) (store.DeliveryFilter, error) {
	since, err := s.parseSince(c.Query("since"))
	if err != nil {
		return store.DeliveryFilter{}, err
	}
	limit, err := queryLimit(c, 50, 1000)
	if err != nil {
		return store.DeliveryFilter{}, err
	}
	cursor, err := idCursor(c, "cursor")
	if err != nil {
		return store.DeliveryFilter{}, err
	}
	state := c.Query("state")
	switch state {
	case "", store.DeliveryPending, store.DeliveryInFlight, store.DeliverySucceeded, store.DeliveryFailed, store.DeliveryCancelled:
	default:
		return store.DeliveryFilter{}, fmt.Errorf("state %q: want one of %s, %s, %s, %s, %s", state,
			store.DeliveryPending, store.DeliveryInFlight, store.DeliverySucceeded, store.DeliveryFailed, store.DeliveryCancelled)
	}
	return store.DeliveryFilter{State: state, Connector: c.Query("connector"), Reference: c.Query("reference"),
		Rule: c.Query("rule"), Since: since, Cursor: cursor, Limit: limit}, nil
}

func (s *Server) listDeliveries(c *fiber.Ctx) error {
	f, err := s.deliveryFilter(c)
	if err != nil {
		return problem(c, fiber.StatusBadRequest, "%v", err)
	}
	ds, next, err := s.db.ListDeliveries(f)
	if err != nil {
		return storeProblem(c, err)
	}
	return c.JSON(fiber.Map{"deliveries": orEmpty(ds), "next_cursor": next})
}

func (s *Server) getDelivery(c *fiber.Ctx) error {
	d, err := s.db.Delivery(c.Params("id"))
	if errors.Is(err, store.ErrNotFound) {
		return problem(c, fiber.StatusNotFound, "no delivery %s", c.Params("id"))
	} else if err != nil {
		return problem(c, fiber.StatusInternalServerError, "%v", err)
	}
	return c.JSON(d)
}

func (s *Server) retryDelivery(c *fiber.Ctx) error {
	id := c.Params("id")
	err := s.retryOne(id)
	var re *renderError
	switch {
	case errors.Is(err, store.ErrNotFound):
		return problem(c, fiber.StatusNotFound, "no delivery %s", id)
	case errors.Is(err, store.ErrState):
		return problem(c, fiber.StatusConflict, "delivery %s cannot be retried: %v", id, err)
	case errors.As(err, &re):
		return problem(c, fiber.StatusUnprocessableEntity, "delivery %s cannot be retried: %v", id, err)
	case err != nil:
		return problem(c, fiber.StatusInternalServerError, "%v", err)
	}
	s.disp.Notify()
	return c.JSON(fiber.Map{"id": id, "state": store.DeliveryPending})
}

// renderError is a delivery's request that still cannot be built.
type renderError struct{ err error }

func (e *renderError) Error() string { return e.err.Error() }
func (e *renderError) Unwrap() error { return e.err }

// retryOne retries delivery id. One stored without a request (it could not
// be built when it was made: a missing action, a field the action does not
// carry) is built again with the config in force, against the entity as
// known now; if it still cannot be, the retry fails with a *renderError and
// the delivery stays as it was.
func (s *Server) retryOne(id string) error {
	b := s.bundle.Load()
	return s.db.RetryDeliveryWith(id, s.now(), func(tx *store.Tx, d *store.Delivery) error {
		if d.Request.URL == "" {
			var target *event.Snapshot
			if d.Update.Kind == event.KindUpdateEntity {
				var err error
				if target, err = tx.Entity(d.Update.StateKey()); err != nil {
					return err
				}
			}
			req, action, err := renderRequest(b, &d.Update, d.ID, target)
			if err != nil {
				return &renderError{err}
			}
			d.Request, d.Action = *req, action
		}
		// Its changes go out now: their echo must be known as ours, as
		// for a delivery queued by a rule (the fingerprints it had ended
		// when it failed or was cancelled).
		return putFingerprints(tx, b, s.now(), d)
	})
}

// bulkRetryRate paces bulk retries so that replaying a dead-letter backlog
// does not hammer the platform that just recovered.
const bulkRetryRate = 200

// retryDeliveries retries failed (or, with state=cancelled, cancelled)
// deliveries matching the filters of listDeliveries: the newest of them,
// at most limit (default 10,000, at most 100,000), paced at
// bulkRetryRate, keeping ids and therefore idempotency keys. When more
// match beyond the limit, it answers more: true and the next_cursor to
// pass as cursor to go on. Deliveries it retried are newer than that
// cursor, so one that fails again at once is not retried twice.
//
// It lists them all first and retries them oldest first: the dispatcher
// runs meanwhile, and a delivery retried before an older dead letter of
// its (connector, reference) would be sent before it (the older one, put
// back later, finds the queue already past it). Retried in creation
// order, each one joins its queue behind the older ones of the call.
func (s *Server) retryDeliveries(c *fiber.Ctx) error {
	switch state := c.Query("state"); state {
	case "", store.DeliveryFailed, store.DeliveryCancelled:
	default:
		return problem(c, fiber.StatusBadRequest, "state %q: only failed or cancelled deliveries can be retried", state)
	}
	f, err := s.deliveryFilter(c)
	if err != nil {
		return problem(c, fiber.StatusBadRequest, "%v", err)
	}
	if f.State == "" {
		f.State = store.DeliveryFailed
	}
	max, err := queryLimit(c, 10000, 100000)
	if err != nil {
		return problem(c, fiber.StatusBadRequest, "%v", err)
	}
	ids, more, err := s.bulkRetryIDs(f, max)
	if err != nil {
		return storeProblem(c, err)
	}
	cursor := ""
	if more {
		cursor = ids[len(ids)-1] // the oldest listed
	}
	lim := rate.NewLimiter(bulkRetryRate, bulkRetryRate/10)
	retried := []string{}
	defer s.disp.Notify() // however the loop ends: the dispatcher picks the retried ones up
	for i := len(ids) - 1; i >= 0; i-- {
		if err := lim.Wait(c.UserContext()); err != nil {
			return problem(c, fiber.StatusServiceUnavailable, "bulk retry stopped after %d deliveries: %v", len(retried), err)
		}
		if err := s.retryOne(ids[i]); err == nil {
			retried = append(retried, ids[i])
			if len(retried)%bulkRetryNotify == 0 {
				s.disp.Notify()
			}
		}
	}
	c.Locals(adminResultKey, len(retried))
	return c.JSON(fiber.Map{"retried": len(retried), "ids": retried, "more": more, "next_cursor": cursor})
}

// bulkRetryNotify is how many deliveries a bulk retry puts back between
// two wake-ups of the dispatcher.
const bulkRetryNotify = 500

// bulkRetryIDs lists the ids of the deliveries matching f, newest first,
// at most max of them, and reports whether more match.
func (s *Server) bulkRetryIDs(f store.DeliveryFilter, max int) (ids []string, more bool, err error) {
	f.Limit = 1000
	for {
		ds, next, err := s.db.ListDeliveries(f)
		if err != nil {
			return nil, false, err
		}
		for _, d := range ds {
			if len(ids) == max {
				return ids, true, nil
			}
			ids = append(ids, d.ID)
		}
		if next == "" {
			return ids, false, nil
		}
		f.Cursor = next
	}
}

func (s *Server) cancelDelivery(c *fiber.Ctx) error {
	id := c.Params("id")
	reason := "cancelled by an admin"
	if r := c.Query("reason"); r != "" {
		reason = r
	}
	err := s.db.CancelDelivery(id, reason)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return problem(c, fiber.StatusNotFound, "no delivery %s", id)
	case errors.Is(err, store.ErrState):
		return problem(c, fiber.StatusConflict, "delivery %s cannot be cancelled: %v", id, err)
	case err != nil:
		return problem(c, fiber.StatusInternalServerError, "%v", err)
	}
	return c.JSON(fiber.Map{"id": id, "state": store.DeliveryCancelled})
}

// listTimers lists armed timers in due order, paged like events: limit
// (default 50, at most 1000) and cursor (the next_cursor of the page
// before); filters rule, entity (a type, or connector/entity/reference)
// and due_before.
func (s *Server) listTimers(c *fiber.Ctx) error {
	var before time.Time
	if v := c.Query("due_before"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return problem(c, fiber.StatusBadRequest, "due_before must be an RFC 3339 time")
		}
		before = t
	}
	limit, err := queryLimit(c, 50, 1000)
	if err != nil {
		return problem(c, fiber.StatusBadRequest, "%v", err)
	}
	ts, next, err := s.db.ListTimers(store.TimerFilter{Rule: c.Query("rule"), Entity: c.Query("entity"), DueBefore: before,
		Cursor: c.Query("cursor"), Limit: limit})
	if err != nil {
		return storeProblem(c, err)
	}
	var views []timerView
	// One read transaction for the page's snapshots, not one per entity.
	if err := s.db.View(func(tx *store.Tx) error {
		snaps := map[event.EntityKey]*event.Snapshot{}
		views = timerViews(ts, func(k event.EntityKey) *event.Snapshot {
			if snap, seen := snaps[k]; seen {
				return snap
			}
			snap, err := tx.Entity(k)
			if err != nil {
				snap = nil // not found, or unreadable: shown as not parked
			}
			snaps[k] = snap
			return snap
		})
		return nil
	}); err != nil {
		return storeProblem(c, err)
	}
	return c.JSON(fiber.Map{"timers": views, "next_cursor": next})
}

func (s *Server) reloadConfig(c *fiber.Ctx) error {
	warnings, err := s.reload()
	if err != nil {
		return problem(c, fiber.StatusUnprocessableEntity, "%v", err)
	}
	b := s.bundle.Load()
	return c.JSON(fiber.Map{"status": "reloaded", "connectors": b.ConnectorNames(), "rules": len(b.Rules.Rules()),
		"warnings": orEmpty(warnings)})
}

// orEmpty makes a nil list an empty one, so that a list endpoint answers
// [] (not null) when nothing matches.
func orEmpty[T any](list []T) []T {
	if list == nil {
		return []T{}
	}
	return list
}
