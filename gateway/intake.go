package gateway

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/gofiber/fiber/v2"

	"github.com/hookline/hookline/connectors"
	"github.com/hookline/hookline/connectors/verify"
	"github.com/hookline/hookline/schemas"
	"github.com/hookline/hookline/store"
)

// problem answers an intake or API error as {"error": reason, "status": code}.
func problem(c *fiber.Ctx, status int, format string, args ...any) error {
	return c.Status(status).JSON(fiber.Map{"error": fmt.Sprintf(format, args...), "status": status})
}

// handleHook is POST /hooks/:connector: verify, limit, parse, validate,
// dedupe and store durably, then answer 202 with the inbox id (or the
// connector's inbound.reply).
func (s *Server) handleHook(c *fiber.Ctx) error {
	start := s.now()
	b := s.bundle.Load()
	conn, name, r := hookConnector(b, c)
	if r != nil {
		return s.refusal(c, name, r)
	}
	in := conn.Inbound
	query := requestQuery(c)
	ctype := string(c.Request().Header.ContentType())
	req := &verify.Request{Method: c.Method(), Now: start}
	if req.Method == fiber.MethodGet {
		// accept_get: the query string is the payload, decoded like a form,
		// less the parameters that carry credentials.
		req.Body, ctype = []byte(redactedQuery(query, in.SecretParams)), getQueryContentType
		if r := checkSize(b, in, len(req.Body)); r != nil {
			return s.refusal(c, name, r)
		}
	} else {
		var r *Refusal
		if req.Body, r = requestBody(c, bodyLimit(b, in)); r != nil {
			return s.refusal(c, name, r)
		}
	}
	req.URL, req.Header, req.Query = publicURL(c), requestHeader(c), query
	adm, resp, r := checkIntake(b, in, ctype, req)
	if r != nil {
		return s.refusal(c, name, r)
	}
	if resp != nil {
		return s.answerHandshake(c, name, resp)
	}
	reserved := false // a signed request held in the replay guard until stored
	var replay replayKey
	if req.ReplayKey != "" {
		var id string
		var state replayState
		switch replay, id, state = s.replays.check(name, req.ReplayKey, req.ReplayWindow, start); state {
		case replaySeen:
			return s.duplicate(c, name, in.Reply, id, start)
		case replayInFlight:
			c.Set(fiber.HeaderRetryAfter, "1")
			return s.refuse(c, name, fiber.StatusServiceUnavailable, "the same signed request is being stored right now; retry")
		}
		// Reserved: recorded once stored, else (an error, a panic)
		// released so that the platform's retry can be stored.
		reserved = true
		defer func() {
			if reserved {
				s.replays.forget(replay)
			}
		}()
	}
	item := &store.InboxItem{
		Connector:   name,
		ReceivedAt:  start,
		Method:      req.Method,
		Path:        string(c.Request().URI().Path()),
		Headers:     redact(req.Header, in.SecretHeaders),
		Query:       redact(req.Query, in.SecretParams),
		ContentType: ctype,
		Body:        adm.payload,
	}
	var window time.Duration
	item.DedupeKey, window = b.dedupeKey(in, req.Header, req.Query, adm.payload)
	if adm.kind == "form" || adm.converted {
		item.RawBody = req.Body
	}
	res, err := s.db.Accept(c.UserContext(), item, window)
	if reserved && err == nil {
		s.replays.done(replay, res.ID)
		reserved = false
	}
	if err != nil {
		s.log.Error("inbox write failed", "connector", name, "err", err)
		if r := storeRefusal(err); r != nil {
			return s.refusal(c, name, r)
		}
		return s.refuse(c, name, fiber.StatusServiceUnavailable, "could not store the webhook; retry later")
	}
	if res.Duplicate {
		return s.duplicate(c, name, in.Reply, res.ID, start)
	}
	s.metrics.ack(name, s.now().Sub(start))
	s.pipe.notify()
	if in.Reply != nil {
		s.metrics.hook(name, in.Reply.Status)
		return sendReply(c, in.Reply)
	}
	s.metrics.hook(name, fiber.StatusAccepted)
	return acceptedJSON(c, res.ID)
}

// storeRefusal is the answer to a webhook the store refuses whatever the
// moment (store.ErrInvalid): 400, since a retry would be refused the same
// way; nil for a failure a retry may get past (503).
func storeRefusal(err error) *Refusal {
	if !errors.Is(err, store.ErrInvalid) {
		return nil
	}
	return &Refusal{Status: fiber.StatusBadRequest, Reason: fmt.Sprintf("the webhook cannot be stored, now or on a retry: %s", oneLine(err.Error()))}
}

// duplicate answers 200 {"id": id, "duplicate": true}, or the connector's
// reply when it has one (a platform that wants its own answer wants it on
// its retries too): a webhook stored before under id (its dedupe key, or
// the same signed request).
func (s *Server) duplicate(c *fiber.Ctx, connector string, reply *connectors.Reply, id string, start time.Time) error {
	s.metrics.ack(connector, s.now().Sub(start))
	if reply != nil {
		s.metrics.hook(connector, reply.Status)
		return sendReply(c, reply)
	}
	s.metrics.hook(connector, fiber.StatusOK)
	return c.Status(fiber.StatusOK).JSON(fiber.Map{"id": id, "duplicate": true})
}

// sendReply answers a connector's configured reply (inbound.reply).
func sendReply(c *fiber.Ctx, reply *connectors.Reply) error {
	c.Status(reply.Status)
	c.Set(fiber.HeaderContentType, reply.ContentType)
	return c.Send(reply.Body)
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
	conn, name, r := hookConnector(s.bundle.Load(), c)
	if r != nil {
		return s.refusal(c, name, r)
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
	return s.answerHandshake(c, name, resp)
}

// unknownConnector is the connector label of the metrics for requests to
// a connector that does not exist: one value, however many names are tried.
const unknownConnector = "(unknown)"

// hookConnector finds the inbound connector a /hooks/:connector request
// names, or refuses the request (404). name is what the request is counted
// and stored under: the connector's configured name, or unknownConnector.
// Never the path parameter itself: Fiber hands it out in a buffer that the
// next request on the connection overwrites, and the metrics keep their
// label strings. (The store copies what it keeps of an inbox item.)
func hookConnector(b *Bundle, c *fiber.Ctx) (conn *connectors.Connector, name string, r *Refusal) {
	param := c.Params("connector")
	conn = b.Connectors[param]
	if conn == nil {
		return nil, unknownConnector, &Refusal{Status: fiber.StatusNotFound, Reason: fmt.Sprintf("unknown connector %q", param)}
	}
	if conn.Inbound == nil {
		return nil, conn.Name, &Refusal{Status: fiber.StatusNotFound, Reason: fmt.Sprintf("connector %q takes no webhooks (it has no inbound section)", conn.Name)}
	}
	return conn, conn.Name, nil
}

// answerHandshake sends a connector's answer to a verification handshake.
func (s *Server) answerHandshake(c *fiber.Ctx, connector string, resp *connectors.HandshakeResponse) error {
	s.metrics.hook(connector, resp.Status)
	c.Set(fiber.HeaderContentType, resp.ContentType)
	return c.Status(resp.Status).Send(resp.Body)
}

func (s *Server) refuse(c *fiber.Ctx, connector string, status int, format string, args ...any) error {
	reason := fmt.Sprintf(format, args...)
	s.hookRefused(c, connector, status, reason)
	return problem(c, status, "%s", reason)
}

// refusal answers a request the intake checks refused.
func (s *Server) refusal(c *fiber.Ctx, connector string, r *Refusal) error {
	if r.Pointer == "" && r.SchemaReason == "" {
		return s.refuse(c, connector, r.Status, "%s", r.Reason)
	}
	s.hookRefused(c, connector, r.Status, r.Reason, "pointer", r.Pointer, "schema_reason", r.SchemaReason)
	return c.Status(r.Status).JSON(fiber.Map{
		"error": r.Reason, "pointer": r.Pointer, "reason": r.SchemaReason, "status": r.Status,
	})
}

// hookRefused counts a webhook of connector refused with status and logs
// it at warn with the reason (and args): the first per connector and
// status each minute, with how many were held back since (logLimited). A
// platform posting with a rotated secret shows in the log, not only as a
// 401 counter.
func (s *Server) hookRefused(c *fiber.Ctx, connector string, status int, reason string, args ...any) {
	s.metrics.hook(connector, status)
	s.logLimited(slog.LevelWarn, "webhook refused", connector+" "+strconv.Itoa(status), func() []any {
		return append([]any{"connector", connector, "status", status, "reason", reason, "remote", c.IP()}, args...)
	})
}

// logLimited logs msg with the args lines gives unless a line of the same
// key was logged less than a minute ago (lines is not called then: a flood
// of refusals pays for no log line it does not write); a line logged after
// some were held back says how many (suppressed).
func (s *Server) logLimited(level slog.Level, msg, key string, lines func() []any) {
	ok, suppressed := s.limiter.allow(key, s.now())
	if !ok {
		return
	}
	args := lines()
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	s.log.Log(context.Background(), level, msg, args...)
}

// getQueryContentType is the content type an accept_get webhook's inbox
// item shows: its payload is the query string, decoded like a form.
const getQueryContentType = "application/x-www-form-urlencoded (query)"

// Refusal is why the intake refused a webhook: the HTTP status and the
// one-line reason the sender gets; for a schema violation also the JSON
// pointer of the failing field and the validator's reason.
type Refusal struct {
	Status       int    `json:"status"`
	Reason       string `json:"reason"`
	Pointer      string `json:"pointer,omitempty"`
	SchemaReason string `json:"schema_reason,omitempty"`
}

// admission is a webhook that passed the syntax and signature checks: its
// payload as JSON, its kind (json or form), and whether the payload's text
// differs from the body as received (a charset converted, a byte order mark
// dropped).
type admission struct {
	payload   []byte
	kind      string
	converted bool
}

// checkSize refuses a body over the connector's limit (or the gateway's).
func checkSize(b *Bundle, in *connectors.Inbound, n int) *Refusal {
	if limit := bodyLimit(b, in); n > limit {
		return tooLarge(fmt.Sprintf("body of %d bytes", n), limit)
	}
	return nil
}

// bodyLimit is the largest body connector in takes.
func bodyLimit(b *Bundle, in *connectors.Inbound) int {
	if in.BodyLimit > 0 {
		return in.BodyLimit
	}
	return int(b.File.BodyLimit)
}

func tooLarge(what string, limit int) *Refusal {
	return &Refusal{Status: fiber.StatusRequestEntityTooLarge, Reason: fmt.Sprintf("%s exceeds the limit of %d bytes", what, limit)}
}

// requestBody returns a copy of the request's body (Fiber reuses its
// buffers once the handler returns), decompressed when the sender used a
// Content-Encoding (gzip, deflate, br), or the refusal: 413 beyond limit
// bytes, compressed or not, 415 for another encoding and 400 for a
// corrupt stream. Decompression stops at limit+1 bytes: Fiber's own c.Body()
// inflates the whole body first, so a few hundred compressed kilobytes
// cost gigabytes before any check, and before the signature's.
func requestBody(c *fiber.Ctx, limit int) ([]byte, *Refusal) {
	raw := c.Request().Body()
	enc := strings.ToLower(strings.TrimSpace(c.Get(fiber.HeaderContentEncoding)))
	if enc == "" || enc == "identity" {
		if len(raw) > limit {
			return nil, tooLarge(fmt.Sprintf("body of %d bytes", len(raw)), limit)
		}
		return append([]byte(nil), raw...), nil
	}
	var (
		zr  io.Reader
		err error
	)
	switch enc {
	case "gzip", "x-gzip":
		zr, err = gzip.NewReader(bytes.NewReader(raw))
	case "deflate":
		zr, err = zlib.NewReader(bytes.NewReader(raw))
	case "br":
		zr = brotli.NewReader(bytes.NewReader(raw))
	default:
		return nil, &Refusal{Status: fiber.StatusUnsupportedMediaType,
			Reason: fmt.Sprintf("unsupported content encoding %q (gzip, deflate, br or none)", enc)}
	}
	var out []byte
	if err == nil {
		out, err = io.ReadAll(io.LimitReader(zr, int64(limit)+1))
	}
	switch {
	case err != nil:
		return nil, &Refusal{Status: fiber.StatusBadRequest, Reason: fmt.Sprintf("body is not valid %s: %v", enc, err)}
	case len(out) > limit:
		return nil, tooLarge(fmt.Sprintf("body (%s, decompressed) of more than %d bytes", enc, limit), limit)
	}
	return out, nil
}

// admit runs the checks every webhook passes before anything else looks
// at it: a content type and charset we read, a well-formed JSON or form
// body, and the connector's signature scheme; it sets req.Form for a form
// body. The signature is checked on the body as received; the payload is
// the body as UTF-8 text (converted from a declared ISO-8859-1 or
// windows-1252, a UTF-8 byte order mark dropped). The gateway and the dry
// runs (config tests with intake: true) share it.
func admit(in *connectors.Inbound, ctype string, req *verify.Request) (admission, *Refusal) {
	kind := verify.ContentKind(ctype)
	switch {
	case req.Method == fiber.MethodGet:
		kind = "form" // accept_get: the body is the query string
	case ctype == "" && len(req.Body) == 0:
		// Nothing to be unsupported: an empty form, the parameters (if
		// any) in the URL.
		kind = "form"
	}
	if kind == "" {
		if ctype == "" {
			ctype = "none"
		}
		return admission{}, &Refusal{Status: fiber.StatusUnsupportedMediaType, Reason: fmt.Sprintf("unsupported content type %q: send application/json or application/x-www-form-urlencoded", ctype)}
	}
	cs := charsetUTF8
	if req.Method != fiber.MethodGet { // a GET's body is the query, which has no charset
		var r *Refusal
		if cs, r = declaredCharset(ctype); r != nil {
			return admission{}, r
		}
	}
	text := bodyText(req.Body, cs, kind)
	payload := text
	if kind == "form" {
		js, form, err := verify.DecodeForm(text)
		if err != nil {
			return admission{}, &Refusal{Status: fiber.StatusBadRequest, Reason: fmt.Sprintf("malformed form body: %v", err)}
		}
		payload, req.Form = js, form
		if cs != charsetUTF8 {
			// Signatures over the parameters (Twilio's) cover them as sent.
			if req.Form, err = url.ParseQuery(string(req.Body)); err != nil {
				return admission{}, &Refusal{Status: fiber.StatusBadRequest, Reason: fmt.Sprintf("malformed form body: %v", err)}
			}
		}
	} else if r := invalidUTF8(text); r != nil {
		return admission{}, r
	} else if !json.Valid(text) {
		return admission{}, &Refusal{Status: fiber.StatusBadRequest, Reason: "malformed JSON body: " + jsonSyntaxReason(text)}
	}
	if err := in.Verifier.Verify(req); err != nil {
		return admission{}, &Refusal{Status: fiber.StatusUnauthorized, Reason: oneLine(err.Error())}
	}
	// Only a signed body (or one for a connector without signatures) is
	// read further than json.Valid.
	if kind == "json" {
		if key, pointer, dup := duplicateKey(text); dup {
			return admission{}, &Refusal{Status: fiber.StatusBadRequest, Reason: fmt.Sprintf(
				"malformed JSON body: duplicate key %q in the object at %s; an object with a key twice has no single meaning: send each key once", key, pointerOrRoot(pointer))}
		}
	}
	converted := cs != charsetUTF8 || len(text) != len(req.Body)
	return admission{payload: payload, kind: kind, converted: converted}, nil
}

// checkIntake runs the checks that follow the size check, in the order
// the gateway answers them: admit, then the connector's handshake (a
// non-nil response answers the request instead of accepting it), then
// the schema. The gateway and the dry runs share it.
func checkIntake(b *Bundle, in *connectors.Inbound, ctype string, req *verify.Request) (admission, *connectors.HandshakeResponse, *Refusal) {
	adm, r := admit(in, ctype, req)
	if r != nil {
		return admission{}, nil, r
	}
	hreq := req
	if adm.kind == "json" && adm.converted {
		// A handshake reads the JSON text, without its byte order mark.
		converted := *req
		converted.Body = adm.payload
		hreq = &converted
	}
	if resp, handled := in.Handshake(hreq); handled {
		return admission{}, resp, nil
	}
	if r := checkSchema(b, in, adm.payload); r != nil {
		return admission{}, nil, r
	}
	return adm, nil, nil
}

// checkSchema validates a payload against the connector's JSON Schema,
// when it names one.
func checkSchema(b *Bundle, in *connectors.Inbound, payload []byte) *Refusal {
	if in.Schema == "" {
		return nil
	}
	err := b.Schemas.ValidateJSON(in.Schema, payload)
	if err == nil {
		return nil
	}
	var ve *schemas.ValidationError
	if errors.As(err, &ve) {
		return &Refusal{Status: fiber.StatusUnprocessableEntity,
			Reason:  fmt.Sprintf("payload does not match schema %s at %s: %s", in.Schema, pointerOrRoot(ve.Pointer), ve.Reason),
			Pointer: ve.Pointer, SchemaReason: ve.Reason}
	}
	return &Refusal{Status: fiber.StatusUnprocessableEntity, Reason: fmt.Sprintf("payload does not match schema %s: %v", in.Schema, err)}
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

// isSecret reports whether a header or query parameter carries a
// credential: a name of that kind, or one of the connector's own (also).
func isSecret(name string, also []string) bool {
	if isSecretName(name) {
		return true
	}
	for _, a := range also {
		if strings.EqualFold(name, a) {
			return true
		}
	}
	return false
}

// redact hides credential-bearing headers or query parameters in what the
// inbox keeps (signatures are kept: they are not secrets, and they help to
// debug a refused webhook); also names the connector's own.
func redact(h map[string][]string, also []string) map[string][]string {
	if len(h) == 0 {
		return nil
	}
	out := make(map[string][]string, len(h))
	for k, v := range h {
		if isSecret(k, also) {
			out[k] = []string{"[redacted]"}
			continue
		}
		out[k] = v
	}
	return out
}

// redactedQuery encodes q without its credential-bearing parameters.
func redactedQuery(q url.Values, also []string) string {
	kept := url.Values{}
	for k, v := range q {
		if !isSecret(k, also) {
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
