package connectors

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/internal/yamlconf"
)

// Request is a rendered outbound request, stored in the outbox (auth NOT
// applied yet: Authorize does that at send time).
type Request struct {
	Action  string            `json:"action,omitempty"` // "" for call_webhook
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"` // canonical keys
	Body    []byte            `json:"body,omitempty"`
}

// ActionFor returns the action name an update is rendered with:
// update_entity -> "update_<entity>" when the connector defines it, else
// "update"; send_message -> "send_message"; call_webhook and log -> "".
func (o *Outbound) ActionFor(u *event.Update) string {
	switch u.Kind {
	case event.KindUpdateEntity:
		if u.Entity != "" && o != nil {
			if _, ok := o.Actions["update_"+u.Entity]; ok {
				return "update_" + u.Entity
			}
		}
		return "update"
	case event.KindSendMessage:
		return "send_message"
	}
	return ""
}

// Render renders update u (delivery id known) into a request. target is
// what Hookline last knew of the entity the update is for (its snapshot;
// nil when unknown or not loaded): templates read it as .Current,
// .CurrentTags and .MergedTags.
//
// Kind update_entity -> action "update_<entity>" (e.g. update_ticket), else
// "update"; send_message -> "send_message"; call_webhook -> u.Webhook as
// given (no base URL, no auth, no action; o may be nil); log -> ErrNotHTTP.
// Value maps apply to u.Set values. An unknown action is an error naming the
// connector and the missing action (ErrUnknownAction); a template failure or
// a JSON body that is not JSON is an error naming the action (ErrRender).
func (o *Outbound) Render(u *event.Update, deliveryID string, target *event.Snapshot) (*Request, error) {
	if u == nil {
		return nil, fmt.Errorf("%w: nil update", ErrRender)
	}
	switch u.Kind {
	case event.KindLog:
		return nil, ErrNotHTTP
	case event.KindCallWebhook:
		return RenderWebhook(u)
	case event.KindUpdateEntity, event.KindSendMessage:
	default:
		return nil, fmt.Errorf("%w %q (rule %s)", ErrUnknownKind, u.Kind, u.RuleID)
	}
	if o == nil {
		return nil, fmt.Errorf("connector %s: %w (update kind %s)", u.Connector, ErrNoOutbound, u.Kind)
	}
	name := o.ActionFor(u)
	a, ok := o.Actions[name]
	if !ok {
		tried := name
		if u.Kind == event.KindUpdateEntity && u.Entity != "" {
			tried = "update_" + u.Entity + " or update"
		}
		return nil, fmt.Errorf("connector %s: %w %s (defined: %s)", o.Name, ErrUnknownAction, tried, strings.Join(o.ActionNames(), ", "))
	}
	fail := func(what string, err error) error {
		return fmt.Errorf("connector %s: action %s: %w: %s: %v", o.Name, a.Name, ErrRender, what, err)
	}
	if u.Kind == event.KindUpdateEntity {
		if err := a.CheckUpdate(u); err != nil {
			return nil, fail("update", err)
		}
	}
	data := o.templateData(u, deliveryID, target)
	req := &Request{Action: a.Name, Method: a.Method, Headers: make(map[string]string, len(o.Headers)+len(a.headers)+1)}
	path := ""
	if a.path != nil {
		p, err := a.path.Execute(data)
		if err != nil {
			return nil, fail("path", err)
		}
		path = strings.TrimSpace(p)
	}
	full, err := a.joinURL(o.BaseURL, path)
	if err != nil {
		return nil, fail("path", err)
	}
	req.URL = full
	for k, v := range o.Headers {
		req.Headers[k] = v
	}
	for k, t := range a.headers {
		v, err := t.Execute(data)
		if err != nil {
			return nil, fail("header "+k, err)
		}
		if err := CheckHeader(k, v); err != nil {
			return nil, fail("headers", err)
		}
		req.Headers[k] = v
	}
	if a.body != nil {
		b, err := a.body.AppendTo(nil, data)
		if err != nil {
			return nil, fail("body", err)
		}
		req.Body = b
		ct, ok := req.Headers["Content-Type"]
		if !ok {
			ct = "application/json"
			req.Headers["Content-Type"] = ct
		}
		if isJSONType(ct) {
			if !json.Valid(req.Body) {
				return nil, fail("body", fmt.Errorf("the content type is %s but the rendered body is not valid JSON (build JSON values with the json function): %s", ct, excerpt(o.redact(string(b)))))
			}
			if u.Kind == event.KindUpdateEntity && a.Fields == nil && isEmptyJSONUpdate(req.Body) {
				return nil, fail("body", fmt.Errorf("the body %s changes nothing, so the update (%s) would be lost; list the fields the action carries in its fields key", strings.Join(strings.Fields(string(req.Body)), ""), describeUpdate(u)))
			}
		}
	}
	return req, nil
}

// RenderWebhook renders a call_webhook update into its request: the URL
// (http or https, with a host and no dot segments), the method (POST by
// default), headers that can be sent and the body, as the rule gave them.
// A problem is an ErrRender naming the rule.
func RenderWebhook(u *event.Update) (*Request, error) {
	w := u.Webhook
	if w == nil {
		return nil, fmt.Errorf("%w: call_webhook update of rule %s has no webhook", ErrRender, u.RuleID)
	}
	pu, err := url.Parse(w.URL)
	if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
		return nil, fmt.Errorf("%w: call_webhook of rule %s: %q is not an http(s) URL", ErrRender, u.RuleID, w.URL)
	}
	if err := checkDotSegments(w.URL, pu.EscapedPath()); err != nil {
		return nil, fmt.Errorf("%w: call_webhook of rule %s: %w", ErrRender, u.RuleID, err)
	}
	method := strings.ToUpper(w.Method)
	if method == "" {
		method = http.MethodPost
	}
	req := &Request{Method: method, URL: w.URL, Headers: make(map[string]string, len(w.Headers))}
	for k, v := range w.Headers {
		if err := CheckHeader(k, v); err != nil {
			return nil, fmt.Errorf("%w: call_webhook of rule %s: %w", ErrRender, u.RuleID, err)
		}
		req.Headers[http.CanonicalHeaderKey(k)] = v
	}
	if w.Body != "" {
		req.Body = []byte(w.Body)
	}
	return req, nil
}

// joinedURL remembers how an action's URL was joined: the base URL's
// scheme and host, and the last base and path joined into full.
type joinedURL struct {
	base         string
	baseOK       bool // base parsed as a URL
	scheme, host string
	basePath     string // the base URL's escaped path, without a trailing "/"
	path, full   string
}

// joinURL appends a rendered path to the base URL. A path that is itself an
// absolute URL must stay on the base URL's scheme and host. The joined path
// must stay under the base URL's path and hold no dot segment ("." or "..",
// percent-encoded or not): a server or proxy resolves those, so a reference
// ".." would move the request to another endpoint. The base URL is parsed
// once per action (again only when it changes), and a constant path is
// joined once.
func (a *Action) joinURL(base, path string) (string, error) {
	c := a.url.Load()
	if c != nil && c.base == base && c.path == path {
		return c.full, nil
	}
	store := c == nil || c.base != base
	if store {
		c = &joinedURL{base: base}
		if b, err := url.Parse(base); err == nil {
			c.baseOK, c.scheme, c.host = true, b.Scheme, b.Host
			c.basePath = strings.TrimRight(b.EscapedPath(), "/")
		}
	}
	var full string
	switch {
	case path == "":
		full = base
	case strings.HasPrefix(path, "http://") || strings.HasPrefix(path, "https://"):
		full = path
	case strings.HasPrefix(path, "/") || strings.HasPrefix(path, "?"):
		full = base + path
	default:
		full = base + "/" + path
	}
	u, err := url.Parse(full)
	if err != nil {
		return "", fmt.Errorf("rendered URL %q is invalid: %v", full, err)
	}
	if c.baseOK && (u.Scheme != c.scheme || u.Host != c.host) {
		return "", fmt.Errorf("rendered URL %q leaves the connector's base_url %s", full, base)
	}
	escaped := u.EscapedPath()
	if err := checkDotSegments(full, escaped); err != nil {
		return "", err
	}
	if c.baseOK && escaped != c.basePath && !strings.HasPrefix(escaped, c.basePath+"/") {
		return "", fmt.Errorf("rendered URL %q leaves the connector's base_url path %s", full, base)
	}
	if store {
		c.path, c.full = path, full
		a.url.Store(c)
	}
	return full, nil
}

// checkDotSegments refuses a URL whose escaped path holds a dot segment:
// a server resolves it (percent-encoded too, by RFC 3986 normalisation),
// and the request lands on another endpoint than the one written.
func checkDotSegments(full, escapedPath string) error {
	for seg := range strings.SplitSeq(escapedPath, "/") {
		if isDotSegment(seg) {
			return fmt.Errorf("rendered URL %q has the dot segment %q in its path, which would move the request to another endpoint (is a reference or variable \".\" or \"..\"?)", full, seg)
		}
	}
	return nil
}

// isDotSegment reports whether an escaped path segment is "." or "..",
// percent-encoded or not.
func isDotSegment(seg string) bool {
	if s, err := url.PathUnescape(seg); err == nil {
		seg = s
	}
	return seg == "." || seg == ".."
}

func isJSONType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}

// isEmptyJSONUpdate reports whether a JSON body (valid JSON: the render
// checked it) is an object holding nothing but empty objects ({} or
// {"ticket": {}}): an update that changes nothing. It scans the bytes:
// such a body starts with { and every value (what follows a colon outside
// a string) is an object.
func isEmptyJSONUpdate(body []byte) bool {
	next := func(i int) byte {
		for ; i < len(body); i++ {
			switch c := body[i]; c {
			case ' ', '\t', '\n', '\r':
			default:
				return c
			}
		}
		return 0
	}
	if next(0) != '{' {
		return false
	}
	inString := false
	for i := 0; i < len(body); i++ {
		switch c := body[i]; {
		case inString && c == '\\':
			i++ // the escaped byte
		case c == '"':
			inString = !inString
		case !inString && c == ':' && next(i+1) != '{':
			return false
		}
	}
	return true
}

// describeUpdate names what update u changes, for errors: its set fields
// and tag changes.
func describeUpdate(u *event.Update) string {
	parts := make([]string, 0, len(u.Set)+2)
	for k := range u.Set {
		parts = append(parts, "set "+k)
	}
	sort.Strings(parts)
	if len(u.AddTags) > 0 {
		parts = append(parts, "add tags")
	}
	if len(u.RemoveTags) > 0 {
		parts = append(parts, "remove tags")
	}
	if len(parts) == 0 {
		return "no change"
	}
	return strings.Join(parts, ", ")
}

// Carries reports whether the action can carry a change of field: field is
// in Fields ("custom.*" covers every custom.<name>; "tags" stands for
// add_tags and remove_tags), or the action declares no Fields.
func (a *Action) Carries(field string) bool {
	if a.Fields == nil {
		return true
	}
	if slices.Contains(a.Fields, field) {
		return true
	}
	return strings.HasPrefix(field, "custom.") && slices.Contains(a.Fields, "custom.*")
}

// CheckUpdate reports an update that the action cannot carry as a whole,
// so that it fails loudly instead of being sent without the change: a set
// field not in Fields, tag changes without "tags" in Fields, or (Fields
// declared) an update that changes nothing. An action without Fields
// accepts any update.
func (a *Action) CheckUpdate(u *event.Update) error {
	if a.Fields == nil {
		return nil
	}
	var cannot []string
	for k := range u.Set {
		if !a.Carries(k) {
			cannot = append(cannot, k)
		}
	}
	sort.Strings(cannot)
	var problems []string
	if len(cannot) > 0 {
		problems = append(problems, "cannot set "+strings.Join(cannot, ", "))
	}
	if (len(u.AddTags) > 0 || len(u.RemoveTags) > 0) && !a.Carries(event.FieldTags) {
		problems = append(problems, "cannot add or remove tags")
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s (the action carries: %s); the update is not sent", strings.Join(problems, "; "), strings.Join(a.Fields, ", "))
	}
	if len(u.Set) == 0 && len(u.AddTags) == 0 && len(u.RemoveTags) == 0 {
		return fmt.Errorf("the update changes nothing (the action carries: %s)", strings.Join(a.Fields, ", "))
	}
	return nil
}

// minRedactLen is the shortest configured credential redact replaces
// wherever it appears: shorter ones (Freshdesk's password "X") are not
// secrets and would garble the text.
const minRedactLen = 6

// redacted replaces a secret in text quoted by errors.
const redacted = "[redacted]"

// secretKeyRe matches a JSON key that names a credential, with its colon.
var secretKeyRe = regexp.MustCompile(`(?i)"[^"\n]*(secret|token|passw|authorization|api_?key|apikey|signature|credential|private_?key)[^"\n]*"\s*:\s*`)

// redact removes credentials from rendered text before an error quotes it:
// the connector's auth credentials wherever they appear (raw or JSON
// escaped), and the value of every key named like a credential (secret,
// token, password, authorization, api_key, ...), which catches ${ENV}
// secrets pasted into a body template.
func (o *Outbound) redact(s string) string {
	for _, secret := range []string{o.Auth.Password, o.Auth.Token, o.Auth.Value, o.Auth.Secret} {
		if len(secret) < minRedactLen {
			continue
		}
		s = strings.ReplaceAll(s, secret, redacted)
		if q, err := json.Marshal(secret); err == nil {
			s = strings.ReplaceAll(s, string(q[1:len(q)-1]), redacted)
		}
	}
	return redactSecretKeys(s)
}

// redactSecretKeys replaces the value after every credential-named JSON key
// of s: a well-formed JSON string up to its closing quote, anything else
// (a broken string, a bare value) up to the end of its line.
func redactSecretKeys(s string) string {
	var b strings.Builder
	for {
		loc := secretKeyRe.FindStringIndex(s)
		if loc == nil {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:loc[1]])
		rest := s[loc[1]:]
		end := valueEnd(rest)
		b.WriteString(`"` + redacted + `"`)
		s = rest[end:]
	}
}

// valueEnd returns where the value at the start of s ends: after a JSON
// string followed by a separator (",", "}", "]", a line break or the end);
// a bare value (a number, broken template output) at the first separator;
// a string followed by anything else (a quote inside the secret broke it)
// at the end of the line.
func valueEnd(s string) int {
	lineEnd := strings.IndexByte(s, '\n')
	if lineEnd < 0 {
		lineEnd = len(s)
	}
	if !strings.HasPrefix(s, `"`) {
		if i := strings.IndexAny(s[:lineEnd], ",}]"); i >= 0 {
			return i
		}
		return lineEnd
	}
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			after := strings.TrimLeft(s[i+1:], " \t\r")
			if after == "" || strings.ContainsRune(",}]\n", rune(after[0])) {
				return i + 1
			}
			return lineEnd
		case '\n':
			return lineEnd
		}
	}
	return lineEnd
}

func excerpt(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 120 {
		return fmt.Sprintf("%q...", s[:120])
	}
	return fmt.Sprintf("%q", s)
}

// --- template data ---------------------------------------------------------

// TemplateData is what outbound action templates see as dot.
type TemplateData struct {
	Connector  string
	Reference  string
	Entity     string
	Set        map[string]any // u.Set with the connector's value maps applied
	AddTags    []string       // never nil
	RemoveTags []string       // never nil
	Message    *event.Message // send_message only; never nil (empty otherwise)
	Update     *event.Update
	Vars       map[string]string // never nil
	DeliveryID string
	// Current holds the entity's fields as Hookline last knew them (its
	// snapshot, before this update); never nil, empty when unknown.
	Current map[string]any

	knowsTags bool // Current has a tags field
}

func (o *Outbound) templateData(u *event.Update, deliveryID string, target *event.Snapshot) *TemplateData {
	d := &TemplateData{
		Connector:  o.Name,
		Reference:  u.Reference,
		Entity:     u.Entity,
		AddTags:    nonNil(u.AddTags),
		RemoveTags: nonNil(u.RemoveTags),
		Message:    u.Message,
		Update:     u,
		Vars:       u.Vars,
		DeliveryID: deliveryID,
	}
	if d.Message == nil {
		d.Message = &event.Message{}
	}
	if d.Vars == nil {
		d.Vars = map[string]string{}
	}
	if target != nil && target.Fields != nil {
		d.Current = target.Fields
		_, d.knowsTags = target.Fields[event.FieldTags]
	} else {
		d.Current = map[string]any{}
	}
	if !o.mapsSet(u.Set) {
		d.Set = u.Set // read only by templates: no copy when no value changes
		if d.Set == nil {
			d.Set = map[string]any{}
		}
		return d
	}
	d.Set = make(map[string]any, len(u.Set))
	for k, v := range u.Set {
		d.Set[k] = o.MapValue(k, v)
	}
	return d
}

// mapsSet reports whether a value map changes any value of set.
func (o *Outbound) mapsSet(set map[string]any) bool {
	if len(o.ValueMaps) == 0 {
		return false
	}
	for k, v := range set {
		m, ok := o.ValueMaps[k]
		if !ok {
			continue
		}
		mv, ok := m[event.String(v)]
		if !ok {
			continue
		}
		if s, isString := v.(string); !isString || s != mv {
			return true
		}
	}
	return false
}

// MapValue applies the connector's value map of field to v: a value listed in
// the map is replaced by the platform's value; other values pass unchanged.
func (o *Outbound) MapValue(field string, v any) any {
	m, ok := o.ValueMaps[field]
	if !ok {
		return v
	}
	if mv, ok := m[event.String(v)]; ok {
		return mv
	}
	return v
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Var returns the template variable name of the update (the event's vars);
// an unknown name is an error, so a request is never sent with a hole in it.
func (d *TemplateData) Var(name string) (string, error) {
	v, ok := d.Vars[name]
	if !ok {
		known := make([]string, 0, len(d.Vars))
		for k := range d.Vars {
			known = append(known, k)
		}
		sort.Strings(known)
		return "", fmt.Errorf("unknown variable %q%s (the event has: %s)", name, yamlconf.DidYouMean(name, known), strings.Join(known, ", "))
	}
	return v, nil
}

// Field returns the value-mapped new value of a field set by the update, or
// "" when the update does not set it.
func (d *TemplateData) Field(name string) any {
	if v, ok := d.Set[name]; ok {
		return v
	}
	return ""
}

// Has reports whether the update sets field name.
func (d *TemplateData) Has(name string) bool {
	_, ok := d.Set[name]
	return ok
}

// Number renders v as a JSON number literal, for APIs that want numeric ids:
// "group_id": {{ .Number (.Field "group") }}. nil (a field cleared with
// null, as in set_owner: null to unassign) renders null. A value that is
// not a number (or a string holding one) is an error, never raw text in the
// body.
func (d *TemplateData) Number(v any) (string, error) {
	if v == nil {
		return "null", nil
	}
	f, ok := event.Float(v)
	if !ok {
		return "", fmt.Errorf("%q is not a number (add a value map for the field?)", event.String(v))
	}
	b, err := json.Marshal(f)
	if err != nil {
		return "", fmt.Errorf("number %v: %w", f, err)
	}
	return string(b), nil
}

// Custom returns the custom.* fields set by the update, keyed by the name
// after "custom." and value-mapped.
func (d *TemplateData) Custom() map[string]any {
	out := map[string]any{}
	for k, v := range d.Set {
		if name, ok := strings.CutPrefix(k, "custom."); ok {
			out[name] = v
		}
	}
	return out
}

// PathEscape renders v as text escaped for one URL path segment, so that a
// reference can never change the request's path ("a/../b" stays one
// segment; "." and ".." become %2E and %2E%2E, which Render then refuses as
// dot segments).
func (d *TemplateData) PathEscape(v any) string {
	return yamlconf.EscapePathSegment(event.String(v))
}

// QueryEscape renders v as text escaped for a URL query value.
func (d *TemplateData) QueryEscape(v any) string { return url.QueryEscape(event.String(v)) }

// CurrentTags returns the entity's tags as Hookline last knew them. It is an
// error when no webhook has told Hookline the entity's tags yet, so that a
// request replacing the whole tag list is never built from a guess.
func (d *TemplateData) CurrentTags() ([]string, error) {
	if !d.knowsTags {
		return nil, fmt.Errorf("the current tags of %s %s are unknown (no webhook has carried its tags yet): refusing to replace its tag list", d.Entity, d.Reference)
	}
	return nonNil(slices.Clone(event.Strings(d.Current[event.FieldTags]))), nil
}

// MergedTags returns the entity's tag list after this update: the current
// tags in their order, then AddTags, without RemoveTags and without
// duplicates. It is for platforms whose API can only replace the whole list
// (Freshdesk) and fails like CurrentTags when the current tags are unknown.
func (d *TemplateData) MergedTags() ([]string, error) {
	cur, err := d.CurrentTags()
	if err != nil {
		return nil, err
	}
	return event.MergeTags(cur, d.AddTags, d.RemoveTags), nil
}
