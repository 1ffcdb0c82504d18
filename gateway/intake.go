package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/textproto"
	"net/url"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/hookline/hookline/connectors/verify"
	"github.com/hookline/hookline/schemas"
	"github.com/hookline/hookline/store"
)

// problem answers an intake or API error as {"error": reason, "status": code}.
func problem(c *fiber.Ctx, status int, format string, args ...any) error {
	return c.Status(status).JSON(fiber.Map{"error": fmt.Sprintf(format, args...), "status": status})
}

// handleHook is POST /hooks/:connector: verify, limit, parse, validate,
// dedupe and store durably, then answer 202 with the inbox id.
func (s *Server) handleHook(c *fiber.Ctx) error {
	start := s.now()
	b := s.bundle.Load()
	name := c.Params("connector")
	conn := b.Connectors[name]
	if conn == nil || conn.Inbound == nil {
		return s.refuse(c, name, fiber.StatusNotFound, "unknown connector %q", name)
	}
	in := conn.Inbound
	limit := int(b.File.BodyLimit)
	if in.BodyLimit > 0 {
		limit = in.BodyLimit
	}
	raw := c.Body()
	if len(raw) > limit {
		return s.refuse(c, name, fiber.StatusRequestEntityTooLarge, "body of %d bytes exceeds the limit of %d bytes", len(raw), limit)
	}
	ctype := string(c.Request().Header.ContentType())
	kind := verify.ContentKind(ctype)
	if c.Method() == fiber.MethodGet {
		// accept_get: the query string is the payload, decoded like a form,
		// less the parameters that carry credentials.
		raw, ctype, kind = []byte(redactedQuery(requestQuery(c))), "application/x-www-form-urlencoded (query)", "form"
	}
	if kind == "" {
		if ctype == "" {
			ctype = "none"
		}
		return s.refuse(c, name, fiber.StatusUnsupportedMediaType, "unsupported content type %q: send application/json or application/x-www-form-urlencoded", ctype)
	}
	// Fiber reuses its buffers once the handler returns: copy what we keep.
	body := append([]byte(nil), raw...)
	header := requestHeader(c)
	query := requestQuery(c)
	req := &verify.Request{Method: c.Method(), URL: publicURL(c), Header: header, Query: query, Body: body, Now: start}

	payload := body
	if kind == "form" {
		js, form, err := verify.DecodeForm(body)
		if err != nil {
			return s.refuse(c, name, fiber.StatusBadRequest, "malformed form body: %v", err)
		}
		payload, req.Form = js, form
	} else if !json.Valid(body) {
		return s.refuse(c, name, fiber.StatusBadRequest, "malformed JSON body: %s", jsonSyntaxReason(body))
	}
	if err := in.Verifier.Verify(req); err != nil {
		return s.refuse(c, name, fiber.StatusUnauthorized, "%s", oneLine(err.Error()))
	}
	if resp, handled := in.Handshake(req); handled {
		s.metrics.hook(name, resp.Status)
		c.Set(fiber.HeaderContentType, resp.ContentType)
		return c.Status(resp.Status).Send(resp.Body)
	}
	if in.Schema != "" {
		if err := b.Schemas.ValidateJSON(in.Schema, payload); err != nil {
			var ve *schemas.ValidationError
			if errors.As(err, &ve) {
				s.metrics.hook(name, fiber.StatusUnprocessableEntity)
				return c.Status(fiber.StatusUnprocessableEntity).JSON(fiber.Map{
					"error":   fmt.Sprintf("payload does not match schema %s at %s: %s", in.Schema, pointerOrRoot(ve.Pointer), ve.Reason),
					"pointer": ve.Pointer, "reason": ve.Reason, "status": fiber.StatusUnprocessableEntity,
				})
			}
			return s.refuse(c, name, fiber.StatusUnprocessableEntity, "payload does not match schema %s: %v", in.Schema, err)
		}
	}

	item := &store.InboxItem{
		Connector:   name,
		ReceivedAt:  start,
		Method:      c.Method(),
		Path:        string(c.Request().URI().Path()),
		Headers:     redact(header),
		Query:       redact(query),
		ContentType: ctype,
		Body:        payload,
		DedupeKey:   in.Dedupe.RequestKey(header, query, payload),
	}
	if kind == "form" {
		item.RawBody = body
	}
	window := in.Dedupe.Window
	if window <= 0 {
		window = b.File.Intake.DedupeWindow
	}
	res, err := s.db.Accept(c.UserContext(), item, window)
	if err != nil {
		s.log.Error("inbox write failed", "connector", name, "err", err)
		return s.refuse(c, name, fiber.StatusServiceUnavailable, "could not store the webhook; retry later")
	}
	s.metrics.ack(name, s.now().Sub(start))
	if res.Duplicate {
		s.metrics.hook(name, fiber.StatusOK)
		return c.Status(fiber.StatusOK).JSON(fiber.Map{"id": res.ID, "duplicate": true})
	}
	s.pipe.notify()
	s.metrics.hook(name, fiber.StatusAccepted)
	return acceptedJSON(c, res.ID)
}

// acceptedJSON answers 202 {"id": id}. Inbox ids are ULIDs, which need no
// JSON escaping, so the answer every webhook gets is written without the
// reflective encoder; anything else goes through it.
func acceptedJSON(c *fiber.Ctx, id string) error {
	for i := 0; i < len(id); i++ {
		if ch := id[i]; !('0' <= ch && ch <= '9' || 'A' <= ch && ch <= 'Z' || 'a' <= ch && ch <= 'z') {
			return c.Status(fiber.StatusAccepted).JSON(fiber.Map{"id": id})
		}
	}
	c.Status(fiber.StatusAccepted)
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	body := make([]byte, 0, len(id)+10)
	body = append(append(append(body, `{"id":"`...), id...), `"}`...)
	return c.Send(body)
}

// handleHandshake is GET (and HEAD) /hooks/:connector: platform verification
// handshakes (Meta's hub.challenge), URL probes, and query-only webhooks for
// connectors with accept_get.
func (s *Server) handleHandshake(c *fiber.Ctx) error {
	name := c.Params("connector")
	conn := s.bundle.Load().Connectors[name]
	if conn == nil || conn.Inbound == nil {
		return s.refuse(c, name, fiber.StatusNotFound, "unknown connector %q", name)
	}
	if c.Method() == fiber.MethodHead {
		// Platforms (Intercom among them) probe a webhook URL with HEAD
		// before they register it: the connector exists, so say yes.
		return c.SendStatus(fiber.StatusOK)
	}
	req := &verify.Request{Method: c.Method(), URL: publicURL(c), Header: requestHeader(c), Query: requestQuery(c), Now: s.now()}
	resp, handled := conn.Inbound.Handshake(req)
	if !handled {
		if conn.Inbound.AcceptGet {
			return s.handleHook(c)
		}
		return s.refuse(c, name, fiber.StatusMethodNotAllowed, "connector %q takes webhooks by POST; GET serves only a verification handshake, and this request is not one", name)
	}
	s.metrics.hook(name, resp.Status)
	c.Set(fiber.HeaderContentType, resp.ContentType)
	return c.Status(resp.Status).Send(resp.Body)
}

func (s *Server) refuse(c *fiber.Ctx, connector string, status int, format string, args ...any) error {
	s.metrics.hook(connector, status)
	return problem(c, status, format, args...)
}

func requestHeader(c *fiber.Ctx) map[string][]string {
	h := make(map[string][]string, 16)
	c.Request().Header.VisitAll(func(k, v []byte) {
		key := textproto.CanonicalMIMEHeaderKey(string(k))
		h[key] = append(h[key], string(v))
	})
	return h
}

func requestQuery(c *fiber.Ctx) url.Values {
	q := url.Values{}
	c.Request().URI().QueryArgs().VisitAll(func(k, v []byte) {
		q.Add(string(k), string(v))
	})
	return q
}

func publicURL(c *fiber.Ctx) string {
	return c.BaseURL() + c.OriginalURL()
}

// secretWords are the parts of header and query names that carry
// credentials (matched case-insensitively anywhere in the name); their values
// never reach the inbox in clear text.
var secretWords = [...]string{"token", "secret", "password", "passwd", "apikey", "api-key", "api_key", "authorization", "cookie"}

// isSecretName reports whether a header or query parameter name carries a
// credential. It runs for every header of every webhook: a byte loop, no
// regexp and no lowercased copy.
func isSecretName(name string) bool {
	for _, w := range secretWords {
		if containsFoldASCII(name, w) {
			return true
		}
	}
	return false
}

// containsFoldASCII reports whether lower (lowercase ASCII) occurs in s,
// ignoring ASCII case.
func containsFoldASCII(s, lower string) bool {
	for i := 0; i+len(lower) <= len(s); i++ {
		j := 0
		for ; j < len(lower); j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != lower[j] {
				break
			}
		}
		if j == len(lower) {
			return true
		}
	}
	return false
}

// redact hides credential-bearing headers or query parameters in what the
// inbox keeps (signatures are kept: they are not secrets, and they help to
// debug a refused webhook).
func redact(h map[string][]string) map[string][]string {
	if len(h) == 0 {
		return nil
	}
	out := make(map[string][]string, len(h))
	for k, v := range h {
		if isSecretName(k) {
			out[k] = []string{"[redacted]"}
			continue
		}
		out[k] = v
	}
	return out
}

// redactedQuery encodes q without its credential-bearing parameters.
func redactedQuery(q url.Values) string {
	kept := url.Values{}
	for k, v := range q {
		if !isSecretName(k) {
			kept[k] = v
		}
	}
	return kept.Encode()
}

func jsonSyntaxReason(body []byte) string {
	var v any
	err := json.Unmarshal(body, &v)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s at byte %d", se.Error(), se.Offset)
	}
	if err != nil {
		return err.Error()
	}
	return "invalid JSON"
}

func pointerOrRoot(p string) string {
	if p == "" {
		return "/ (the document root)"
	}
	return p
}

func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
