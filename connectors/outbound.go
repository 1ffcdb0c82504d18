package connectors

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/hookline/hookline/internal/yamlconf"
	"github.com/hookline/hookline/mapping"
)

// Outbound is the compiled `outbound:` section of a connector file: where and
// how Hookline sends updates to the platform.
type Outbound struct {
	Name         string
	BaseURL      string
	Auth         Auth                         // basic | bearer | header | hmac (signing) | standard-webhooks (signing) | none
	Headers      map[string]string            // default headers (canonical keys)
	Timeout      time.Duration                // default 15s
	ValueMaps    map[string]map[string]string // field -> our value -> platform's value
	Actions      map[string]*Action
	Retry        RetryPolicy
	Concurrency  int     // max in-flight requests to this connector (default 16)
	RateLimit    float64 // requests per second, token bucket (0 = unlimited)
	Burst        int     // bucket size (default max(1, RateLimit))
	Breaker      BreakerConfig
	AllowPrivate bool // allow loopback/private/link-local targets (egress guard)
}

// RetryPolicy says when and how often a failed delivery is tried again.
type RetryPolicy struct {
	Schedule      []time.Duration // default 5s,30s,2m,10m,30m,1h,3h,6h,12h,24h; len = max durable retries; each at most MaxRetryDelay when loaded
	Jitter        float64         // default 0.2 (+-20%)
	MaxRetryAfter time.Duration   // cap for Retry-After (default 1h; at most MaxRetryDelay when loaded)
	RetryOn       []int           // default 408,429,500,502,503,504
	// RetryErrors makes a refused answer (a 4xx outside RetryOn) retried
	// when the platform's error code in its JSON body is one of Codes:
	// platforms that throttle with a 400 and a code (the WhatsApp Cloud
	// API's 130429) mean "later", not "never". nil: none.
	RetryErrors *RetryErrors
}

// RetryErrors is the `retry.retry_errors` of a connector.
type RetryErrors struct {
	Path  string   // gjson path of the error code in the response body
	Codes []string // the codes worth retrying, as text
}

// Retry reports whether a refused answer's body carries one of the codes.
func (r *RetryErrors) Retry(body []byte) (code string, ok bool) {
	if r == nil {
		return "", false
	}
	code, ok = errorCode(body, r.Path)
	return code, ok && slices.Contains(r.Codes, code)
}

// BreakerConfig configures the circuit breaker of one outbound connector.
type BreakerConfig struct {
	Failures    int           // consecutive failures that open it (default 5)
	ErrorRatio  float64       // or error ratio over Window (default 0.5) ...
	MinRequests int           // ... with at least this many requests in Window (default 20)
	Window      time.Duration // default 30s
	Cooldown    time.Duration // open -> half-open after (default 30s)
}

// Action is one named outbound request template (update_ticket, send_message, ...).
type Action struct {
	Name    string
	Method  string
	Path    string            // template source, kept for docs; compiled inside
	Success []int             // status codes meaning success (default: any 2xx)
	Capture map[string]string // name -> gjson path in the response body
	// SuccessWhen, when set, must also hold for the JSON response body of a
	// success status (Slack's HTTP 200 {"ok": false}); nil: the status decides.
	SuccessWhen *SuccessWhen
	// Fields lists the update fields an update action can carry: field
	// names, "custom.*" for every custom field, "tags" for add_tags and
	// remove_tags. Nil: not declared, any update is rendered. When declared,
	// an update setting anything else fails the render (see CheckUpdate).
	Fields []string

	path    *yamlconf.Renderer
	headers map[string]*yamlconf.Renderer // canonical header name -> value template
	body    *yamlconf.Renderer            // nil: no body
	url     atomic.Pointer[joinedURL]     // the last URL joined (see joinURL)
}

// IsSuccess reports whether status means success for this action: one of
// Success when it is set, any 2xx otherwise.
func (a *Action) IsSuccess(status int) bool {
	if len(a.Success) > 0 {
		return slices.Contains(a.Success, status)
	}
	return status >= 200 && status < 300
}

// ReadsBody reports whether deciding a response of this action needs its
// body (captures or success_when), so the sender reads all of it.
func (a *Action) ReadsBody() bool { return len(a.Capture) > 0 || a.SuccessWhen != nil }

// MaxRetryDelay bounds each step of a retry schedule and max_retry_after
// (30 days): a longer wait is a mistake in the config rather than a retry,
// and the delivery's due time is computed from it.
const MaxRetryDelay = 30 * 24 * time.Hour

// Defaults of an outbound section.
const (
	DefaultTimeout       = 15 * time.Second
	DefaultConcurrency   = 16
	DefaultJitter        = 0.2
	DefaultMaxRetryAfter = time.Hour
)

// DefaultRetryPolicy returns the retry policy used when a connector sets none.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{
		Schedule: []time.Duration{
			5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute, 30 * time.Minute,
			time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
		},
		Jitter:        DefaultJitter,
		MaxRetryAfter: DefaultMaxRetryAfter,
		RetryOn:       []int{408, 429, 500, 502, 503, 504},
	}
}

// DefaultBreakerConfig returns the circuit breaker settings used when a
// connector sets none.
func DefaultBreakerConfig() BreakerConfig {
	return BreakerConfig{Failures: 5, ErrorRatio: 0.5, MinRequests: 20, Window: 30 * time.Second, Cooldown: 30 * time.Second}
}

// ActionNames returns the names of the outbound actions, sorted.
func (o *Outbound) ActionNames() []string {
	names := make([]string, 0, len(o.Actions))
	for n := range o.Actions {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// --- loading ---------------------------------------------------------------

type outboundYAML struct {
	BaseURL      *yaml.Node                   `yaml:"base_url"`
	Auth         *yaml.Node                   `yaml:"auth"`
	Headers      map[string]string            `yaml:"headers"`
	Timeout      *time.Duration               `yaml:"timeout"`
	ValueMaps    map[string]map[string]string `yaml:"value_maps"`
	Retry        *yaml.Node                   `yaml:"retry"`
	Concurrency  *int                         `yaml:"concurrency"`
	RateLimit    *float64                     `yaml:"rate_limit"`
	Burst        *int                         `yaml:"burst"`
	Breaker      *yaml.Node                   `yaml:"breaker"`
	AllowPrivate bool                         `yaml:"allow_private"`
	Actions      *yaml.Node                   `yaml:"actions"`
}

type retryYAML struct {
	Schedule      []time.Duration `yaml:"schedule"`
	Jitter        *float64        `yaml:"jitter"`
	MaxRetryAfter *time.Duration  `yaml:"max_retry_after"`
	RetryOn       []int           `yaml:"retry_on"`
	RetryErrors   *struct {
		Path  string   `yaml:"path,required"`
		Codes []string `yaml:"codes,required"`
	} `yaml:"retry_errors"`
}

type breakerYAML struct {
	Failures    *int           `yaml:"failures"`
	ErrorRatio  *float64       `yaml:"error_ratio"`
	MinRequests *int           `yaml:"min_requests"`
	Window      *time.Duration `yaml:"window"`
	Cooldown    *time.Duration `yaml:"cooldown"`
}

type actionYAML struct {
	Method      *yaml.Node        `yaml:"method"`
	Path        *yaml.Node        `yaml:"path"`
	Headers     *yaml.Node        `yaml:"headers"`
	Body        *yaml.Node        `yaml:"body"`
	Success     []int             `yaml:"success"`
	SuccessWhen *yaml.Node        `yaml:"success_when"`
	Capture     map[string]string `yaml:"capture"`
	Fields      *yaml.Node        `yaml:"fields"`
}

var (
	actionNameRe = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	// actionFieldRe is an entry of an action's fields: a field name
	// (dotted for custom.<name>), or custom.* for every custom field.
	actionFieldRe = regexp.MustCompile(`^(custom\.\*|[a-z_][a-z0-9_]*(\.[A-Za-z0-9_-]+)*)$`)
)

// methods an action may use.
var actionMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// loadOutbound compiles the outbound section node n of connector name.
func loadOutbound(file, name string, n *yaml.Node) (*Outbound, yamlconf.Errors) {
	var errs yamlconf.Errors
	var y outboundYAML
	errs.Append(yamlconf.Decode(file, n, &y))
	o := &Outbound{
		Name:         name,
		Timeout:      DefaultTimeout,
		Concurrency:  DefaultConcurrency,
		Retry:        DefaultRetryPolicy(),
		Breaker:      DefaultBreakerConfig(),
		AllowPrivate: y.AllowPrivate,
		Headers:      map[string]string{},
		ValueMaps:    map[string]map[string]string{},
		Actions:      map[string]*Action{},
	}
	if y.BaseURL == nil {
		errs.Add(file, n, "missing required key %q (the platform's API root, e.g. https://example.zendesk.com)", "base_url")
	} else if u, err := checkBaseURL(y.BaseURL.Value); err != nil {
		errs.Add(file, y.BaseURL, "base_url: %v", err)
	} else {
		o.BaseURL = u
	}
	if y.Auth != nil {
		a, aerrs := loadAuth(file, y.Auth)
		errs.Append(aerrs)
		o.Auth = a
	} else {
		o.Auth = Auth{Type: AuthNone}
	}
	headerKeys := yamlconf.Lookup(n, "headers")
	errs.Append(sameHeaderTwice(file, headerKeys))
	for _, kv := range yamlconf.Pairs(headerKeys) {
		if !validHeaderName(kv.Key.Value) {
			errs.Add(file, kv.Key, "invalid header name %q", kv.Key.Value)
		}
		if err := checkHeaderValue(kv.Value.Value); err != nil {
			errs.Add(file, kv.Value, "header %s: %v", kv.Key.Value, err)
		}
	}
	for k, v := range y.Headers {
		o.Headers[http.CanonicalHeaderKey(k)] = v
	}
	if y.Timeout != nil {
		if *y.Timeout <= 0 {
			errs.Add(file, yamlconf.Lookup(n, "timeout"), "timeout must be positive")
		} else {
			o.Timeout = *y.Timeout
		}
	}
	for field, m := range y.ValueMaps {
		o.ValueMaps[field] = m
	}
	if y.Concurrency != nil {
		if *y.Concurrency < 1 {
			errs.Add(file, yamlconf.Lookup(n, "concurrency"), "concurrency must be at least 1")
		} else {
			o.Concurrency = *y.Concurrency
		}
	}
	if y.RateLimit != nil {
		if *y.RateLimit < 0 {
			errs.Add(file, yamlconf.Lookup(n, "rate_limit"), "rate_limit must not be negative (0 = unlimited)")
		} else {
			o.RateLimit = *y.RateLimit
		}
	}
	o.Burst = max(1, int(o.RateLimit+0.999999))
	if y.Burst != nil {
		if *y.Burst < 1 {
			errs.Add(file, yamlconf.Lookup(n, "burst"), "burst must be at least 1")
		} else {
			o.Burst = *y.Burst
		}
	}
	if y.Retry != nil {
		errs.Append(loadRetry(file, y.Retry, &o.Retry))
	}
	if y.Breaker != nil {
		errs.Append(loadBreaker(file, y.Breaker, &o.Breaker))
	}
	if y.Actions == nil {
		errs.Add(file, n, "missing required key %q (named requests such as update_ticket or send_message)", "actions")
	} else if y.Actions.Kind != yaml.MappingNode {
		errs.Add(file, y.Actions, "actions: expected a mapping of action name to action, got %s", yamlconf.KindName(y.Actions))
	} else {
		for _, kv := range yamlconf.Pairs(y.Actions) {
			a, aerrs := loadAction(file, name, kv.Key, kv.Value)
			errs.Append(aerrs)
			if a != nil {
				o.Actions[a.Name] = a
			}
		}
		if len(yamlconf.Pairs(y.Actions)) == 0 {
			errs.Add(file, y.Actions, "actions is empty: define at least one action")
		}
	}
	return o, errs
}

// sameHeaderTwice reports header names of a headers mapping that differ
// from an earlier one in case only: they name the same header, and the
// later one would replace the earlier silently. (Exact repeats are
// yamlconf.Parse's duplicate keys.)
func sameHeaderTwice(file string, n *yaml.Node) yamlconf.Errors {
	var errs yamlconf.Errors
	first := map[string]*yaml.Node{}
	for _, kv := range yamlconf.Pairs(n) {
		canon := http.CanonicalHeaderKey(kv.Key.Value)
		if prev, dup := first[canon]; dup {
			errs.Add(file, kv.Key, "header %q is the same as %q at line %d, column %d (header names ignore case)", kv.Key.Value, prev.Value, prev.Line, prev.Column)
			continue
		}
		first[canon] = kv.Key
	}
	return errs
}

func checkBaseURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("not a URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%q needs an http:// or https:// scheme", s)
	}
	if u.Host == "" || strings.ContainsAny(u.Host, "${}") {
		return "", fmt.Errorf("%q has no valid host", s)
	}
	if u.User != nil {
		return "", fmt.Errorf("%q holds credentials: use auth instead", u.Redacted())
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q: put query parameters in the action path, not in base_url", s)
	}
	return strings.TrimRight(s, "/"), nil
}

func loadRetry(file string, n *yaml.Node, p *RetryPolicy) yamlconf.Errors {
	var errs yamlconf.Errors
	var y retryYAML
	errs.Append(yamlconf.Decode(file, n, &y))
	if yamlconf.Lookup(n, "schedule") != nil {
		// An explicit empty list means no durable retries.
		p.Schedule = append([]time.Duration{}, y.Schedule...)
		for i, d := range y.Schedule {
			switch {
			case d <= 0:
				errs.Add(file, yamlconf.Lookup(n, "schedule").Content[i], "retry delay must be positive")
			case d > MaxRetryDelay:
				errs.Add(file, yamlconf.Lookup(n, "schedule").Content[i], "retry delay %v is longer than 720h (30 days)", d)
			}
		}
	}
	if y.Jitter != nil {
		if *y.Jitter < 0 || *y.Jitter > 1 {
			errs.Add(file, yamlconf.Lookup(n, "jitter"), "jitter must be between 0 and 1 (0.2 = +-20%%)")
		} else {
			p.Jitter = *y.Jitter
		}
	}
	if y.MaxRetryAfter != nil {
		switch {
		case *y.MaxRetryAfter <= 0:
			errs.Add(file, yamlconf.Lookup(n, "max_retry_after"), "max_retry_after must be positive")
		case *y.MaxRetryAfter > MaxRetryDelay:
			errs.Add(file, yamlconf.Lookup(n, "max_retry_after"), "max_retry_after %v is longer than 720h (30 days)", *y.MaxRetryAfter)
		default:
			p.MaxRetryAfter = *y.MaxRetryAfter
		}
	}
	if rn := yamlconf.Lookup(n, "retry_on"); rn != nil {
		p.RetryOn = append([]int{}, y.RetryOn...)
		for i, c := range y.RetryOn {
			if c < 100 || c > 599 {
				item := rn
				if rn.Kind == yaml.SequenceNode && i < len(rn.Content) {
					item = rn.Content[i]
				}
				errs.Add(file, item, "retry_on: %d is not an HTTP status code", c)
			}
		}
	}
	if y.RetryErrors != nil {
		rn := yamlconf.Lookup(n, "retry_errors")
		switch {
		case mapping.CheckPath(y.RetryErrors.Path) != nil:
			errs.Add(file, yamlconf.Lookup(rn, "path"), "retry_errors.path: %v", mapping.CheckPath(y.RetryErrors.Path))
		case len(y.RetryErrors.Codes) == 0 || slices.Contains(y.RetryErrors.Codes, ""):
			errs.Add(file, yamlconf.Lookup(rn, "codes"), "retry_errors.codes: expected the platform's error codes worth retrying, e.g. [130429]")
		default:
			p.RetryErrors = &RetryErrors{Path: y.RetryErrors.Path, Codes: y.RetryErrors.Codes}
		}
	}
	return errs
}

func loadBreaker(file string, n *yaml.Node, b *BreakerConfig) yamlconf.Errors {
	var errs yamlconf.Errors
	var y breakerYAML
	errs.Append(yamlconf.Decode(file, n, &y))
	positiveInt := func(key string, v *int, dst *int) {
		if v == nil {
			return
		}
		if *v < 1 {
			errs.Add(file, yamlconf.Lookup(n, key), "%s must be at least 1", key)
			return
		}
		*dst = *v
	}
	positiveDur := func(key string, v *time.Duration, dst *time.Duration) {
		if v == nil {
			return
		}
		if *v <= 0 {
			errs.Add(file, yamlconf.Lookup(n, key), "%s must be positive", key)
			return
		}
		*dst = *v
	}
	positiveInt("failures", y.Failures, &b.Failures)
	positiveInt("min_requests", y.MinRequests, &b.MinRequests)
	positiveDur("window", y.Window, &b.Window)
	positiveDur("cooldown", y.Cooldown, &b.Cooldown)
	if y.ErrorRatio != nil {
		if *y.ErrorRatio <= 0 || *y.ErrorRatio > 1 {
			errs.Add(file, yamlconf.Lookup(n, "error_ratio"), "error_ratio must be above 0 and at most 1")
		} else {
			b.ErrorRatio = *y.ErrorRatio
		}
	}
	return errs
}

func loadAction(file, connector string, key, n *yaml.Node) (*Action, yamlconf.Errors) {
	var errs yamlconf.Errors
	name := key.Value
	if !actionNameRe.MatchString(name) {
		errs.Add(file, key, "action name %q must be lower-case letters, digits and _ (like update_ticket)", name)
	}
	var y actionYAML
	errs.Append(yamlconf.Decode(file, n, &y))
	if n.Kind != yaml.MappingNode {
		return nil, errs
	}
	a := &Action{Name: name, Method: http.MethodPost, Success: y.Success, Capture: y.Capture, headers: map[string]*yamlconf.Renderer{}}
	tname := connector + "." + name
	if y.Method != nil {
		m := strings.ToUpper(strings.TrimSpace(y.Method.Value))
		if !slices.Contains(actionMethods, m) {
			errs.Add(file, y.Method, "unknown method %q%s (valid: %s)", y.Method.Value, yamlconf.DidYouMean(m, actionMethods), strings.Join(actionMethods, ", "))
		}
		a.Method = m
	}
	if y.Path != nil {
		if y.Path.Kind != yaml.ScalarNode {
			errs.Add(file, y.Path, "path: expected a string template, got %s", yamlconf.KindName(y.Path))
		} else {
			a.Path = y.Path.Value
			t, err := yamlconf.CompileRenderer(tname+".path", y.Path.Value)
			if err != nil {
				errs.Add(file, y.Path, "path: %v", err)
			}
			a.path = t
		}
	}
	if y.Headers != nil {
		if y.Headers.Kind != yaml.MappingNode {
			errs.Add(file, y.Headers, "headers: expected a mapping of header name to value template, got %s", yamlconf.KindName(y.Headers))
		}
		errs.Append(sameHeaderTwice(file, y.Headers))
		for _, kv := range yamlconf.Pairs(y.Headers) {
			if !validHeaderName(kv.Key.Value) {
				errs.Add(file, kv.Key, "invalid header name %q", kv.Key.Value)
				continue
			}
			if kv.Value.Kind != yaml.ScalarNode {
				errs.Add(file, kv.Value, "header %s: expected a string template, got %s", kv.Key.Value, yamlconf.KindName(kv.Value))
				continue
			}
			t, err := yamlconf.CompileRenderer(tname+".headers."+kv.Key.Value, kv.Value.Value)
			if err != nil {
				errs.Add(file, kv.Value, "header %s: %v", kv.Key.Value, err)
				continue
			}
			a.headers[http.CanonicalHeaderKey(kv.Key.Value)] = t
		}
	}
	if y.Body != nil {
		if y.Body.Kind != yaml.ScalarNode {
			errs.Add(file, y.Body, "body: expected a string template (write it as a | block), got %s", yamlconf.KindName(y.Body))
		} else {
			t, err := yamlconf.CompileRenderer(tname+".body", y.Body.Value)
			if err != nil {
				errs.Add(file, y.Body, "body: %v", err)
			}
			a.body = t
		}
	}
	if sn := yamlconf.Lookup(n, "success"); sn != nil {
		for i, c := range y.Success {
			if c < 100 || c > 599 {
				item := sn
				if sn.Kind == yaml.SequenceNode && i < len(sn.Content) {
					item = sn.Content[i]
				}
				errs.Add(file, item, "success: %d is not an HTTP status code", c)
			}
		}
	}
	if y.SuccessWhen != nil {
		sw, serrs := loadSuccessWhen(file, y.SuccessWhen)
		errs.Append(serrs)
		a.SuccessWhen = sw
	}
	if y.Fields != nil {
		fields, ferrs := loadActionFields(file, name, y.Fields)
		errs.Append(ferrs)
		a.Fields = fields
	}
	if cn := yamlconf.Lookup(n, "capture"); cn != nil {
		for _, kv := range yamlconf.Pairs(cn) {
			if strings.TrimSpace(kv.Value.Value) == "" {
				errs.Add(file, kv.Value, "capture %s: empty path", kv.Key.Value)
			}
		}
	}
	return a, errs
}

// IsUpdateAction reports whether Render uses action name for update_entity
// updates (update, update_<entity>).
func IsUpdateAction(name string) bool {
	return name == "update" || strings.HasPrefix(name, "update_")
}

// loadActionFields compiles the fields list n of action name.
func loadActionFields(file, name string, n *yaml.Node) ([]string, yamlconf.Errors) {
	var errs yamlconf.Errors
	if !IsUpdateAction(name) {
		errs.Add(file, n, "fields: only update actions (update, update_<entity>) carry an update's fields; %s does not", name)
		return nil, errs
	}
	if n.Kind != yaml.SequenceNode {
		errs.Add(file, n, "fields: expected a list of field names (e.g. [status, priority, tags, custom.*]), got %s", yamlconf.KindName(n))
		return nil, errs
	}
	fields := make([]string, 0, len(n.Content))
	for _, item := range n.Content {
		item = yamlconf.Resolve(item)
		if item.Kind != yaml.ScalarNode || !actionFieldRe.MatchString(item.Value) {
			errs.Add(file, item, "fields: %s is not a field name (like status, custom.region, custom.* for every custom field, tags for add_tags/remove_tags)", yamlconf.KindName(item))
			continue
		}
		if slices.Contains(fields, item.Value) {
			errs.Add(file, item, "fields: %s is listed twice", item.Value)
			continue
		}
		fields = append(fields, item.Value)
	}
	return fields, errs
}
