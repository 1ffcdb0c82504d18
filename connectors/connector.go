package connectors

import (
	"errors"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/hookline/hookline/connectors/verify"
	"github.com/hookline/hookline/internal/yamlconf"
	"github.com/hookline/hookline/mapping"
	"github.com/hookline/hookline/schemas"
)

// Connector is one compiled connector file.
type Connector struct {
	Name        string
	Description string
	File        string
	Inbound     *Inbound  // nil when the file has no inbound section
	Outbound    *Outbound // nil when none
}

// LoadOptions are the shared resources Load checks a connector file against.
type LoadOptions struct {
	// Schemas resolves `inbound.schema` names. Nil: Load compiles the
	// embedded schemas itself (slower when loading many files).
	Schemas *schemas.Registry
}

var connectorNameRe = regexp.MustCompile(`^[a-z0-9_-]+$`)

type fileYAML struct {
	Connector   *yaml.Node `yaml:"connector"`
	Description string     `yaml:"description"`
	Inbound     *yaml.Node `yaml:"inbound"`
	Outbound    *yaml.Node `yaml:"outbound"`
}

type inboundYAML struct {
	Verify    *yaml.Node `yaml:"verify"`
	Schema    *yaml.Node `yaml:"schema"`
	Dedupe    *yaml.Node `yaml:"dedupe"`
	BodyLimit *yaml.Node `yaml:"body_limit"`
	Handshake *yaml.Node `yaml:"handshake"`
	Reply     *yaml.Node `yaml:"reply"`
	AcceptGet bool       `yaml:"accept_get"`
	MaxEvents *int       `yaml:"max_events"`
	MaxFields *int       `yaml:"max_fields"`
	// MaxEntityFields caps the fields of one entity's snapshot.
	MaxEntityFields *int       `yaml:"max_entity_fields"`
	Events          *yaml.Node `yaml:"events"`
}

// Load compiles a connector file already parsed by yamlconf.Parse (env
// expanded). Every problem is a positioned error with nearest-name
// suggestions; the connector is nil when there is any. The connector name is
// the file's `connector:` key (must match ^[a-z0-9_-]+$).
func Load(file string, root *yaml.Node, opts LoadOptions) (*Connector, yamlconf.Errors) {
	var errs yamlconf.Errors
	root = yamlconf.Resolve(root)
	if root == nil {
		errs = append(errs, &yamlconf.Error{Pos: yamlconf.Pos{File: file}, Msg: "empty connector file (expected connector:, inbound: and/or outbound:)"})
		return nil, errs
	}
	var y fileYAML
	errs.Append(yamlconf.Decode(file, root, &y))
	if root.Kind != yaml.MappingNode {
		return nil, errs
	}
	c := &Connector{File: file, Description: y.Description}
	switch {
	case y.Connector == nil:
		errs.Add(file, root, "missing required key %q (the connector's name, used in /hooks/{name})", "connector")
	case y.Connector.Kind != yaml.ScalarNode || !connectorNameRe.MatchString(y.Connector.Value):
		errs.Add(file, y.Connector, "connector name %s must match ^[a-z0-9_-]+$ (lower-case letters, digits, _ and -)", yamlconf.KindName(y.Connector))
	default:
		c.Name = y.Connector.Value
	}
	if y.Inbound == nil && y.Outbound == nil {
		errs.Add(file, root, "a connector needs an inbound section, an outbound section, or both")
	}
	if y.Inbound != nil {
		in, ierrs := loadInbound(file, c.Name, y.Inbound, opts)
		errs.Append(ierrs)
		c.Inbound = in
	}
	if y.Outbound != nil {
		out, oerrs := loadOutbound(file, c.Name, y.Outbound)
		errs.Append(oerrs)
		c.Outbound = out
	}
	if len(errs) > 0 {
		errs.Sort()
		return nil, errs
	}
	return c, nil
}

func loadInbound(file, name string, n *yaml.Node, opts LoadOptions) (*Inbound, yamlconf.Errors) {
	var errs yamlconf.Errors
	var y inboundYAML
	errs.Append(yamlconf.Decode(file, n, &y))
	if n.Kind != yaml.MappingNode {
		return nil, errs
	}
	in := &Inbound{Dedupe: Dedupe{Source: DedupeBody}, AcceptGet: y.AcceptGet}
	if y.Verify == nil {
		errs.Add(file, n, "missing required key %q: every inbound connector says how requests are authenticated (scheme: none accepts anything)", "verify")
	} else {
		errs.Append(loadVerify(file, y.Verify, in))
	}
	if y.Schema != nil {
		errs.Append(loadSchemaName(file, y.Schema, opts, in))
	}
	if y.Dedupe != nil {
		d, derrs := loadDedupe(file, y.Dedupe)
		errs.Append(derrs)
		in.Dedupe = d
	}
	if y.BodyLimit != nil {
		if y.BodyLimit.Kind != yaml.ScalarNode {
			errs.Add(file, y.BodyLimit, "body_limit: expected a size like 1MiB, got %s", yamlconf.KindName(y.BodyLimit))
		} else if sz, err := ParseSize(y.BodyLimit.Value); err != nil {
			errs.Add(file, y.BodyLimit, "body_limit: %v", err)
		} else if sz > int64(^uint(0)>>1) {
			errs.Add(file, y.BodyLimit, "body_limit: too large")
		} else {
			in.BodyLimit = int(sz)
		}
	}
	if y.Handshake != nil {
		h, herrs := loadHandshake(file, y.Handshake)
		errs.Append(herrs)
		in.handshake = h
	}
	if y.Reply != nil {
		r, rerrs := loadReply(file, y.Reply)
		errs.Append(rerrs)
		in.Reply = r
	}
	if y.Events == nil {
		errs.Add(file, n, "missing required key %q (the mappings from payloads to events)", "events")
	} else {
		m, merrs := mapping.Compile(file, name, y.Events)
		errs.Append(merrs)
		if m != nil && y.MaxEvents != nil {
			m = m.WithMaxEvents(*y.MaxEvents)
		}
		if m != nil && y.MaxFields != nil {
			m = m.WithMaxFields(*y.MaxFields)
		}
		in.Mapper = m
	}
	if y.MaxEvents != nil && *y.MaxEvents < 1 {
		errs.Add(file, yamlconf.Lookup(n, "max_events"), "max_events must be at least 1 (the most events one payload may map to; default %d)", mapping.DefaultMaxEvents)
	}
	if y.MaxFields != nil && *y.MaxFields < 1 {
		errs.Add(file, yamlconf.Lookup(n, "max_fields"), "max_fields must be at least 1 (the most fields one event may have; default %d)", mapping.DefaultMaxFields)
	}
	in.MaxEntityFields = DefaultMaxEntityFields
	if y.MaxEntityFields != nil {
		in.MaxEntityFields = *y.MaxEntityFields
		if *y.MaxEntityFields < 1 {
			errs.Add(file, yamlconf.Lookup(n, "max_entity_fields"), "max_entity_fields must be at least 1 (the most fields one entity's snapshot may hold; default %d)", DefaultMaxEntityFields)
		}
	}
	return in, errs
}

// verifyKeys are the keys of an inbound.verify block: verify.Config's plus allow_unsigned.
func verifyKeys() []string {
	return append(yamlconf.FieldNames(reflect.TypeFor[verify.Config]()), "allow_unsigned")
}

func loadVerify(file string, n *yaml.Node, in *Inbound) yamlconf.Errors {
	var errs yamlconf.Errors
	if n.Kind != yaml.MappingNode {
		errs.Add(file, n, "verify: expected a mapping like { scheme: hmac, secret: ... }, got %s", yamlconf.KindName(n))
		return errs
	}
	keys := verifyKeys()
	filtered := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column}
	allowUnsigned := false
	for _, kv := range yamlconf.Pairs(n) {
		k := kv.Key.Value
		switch {
		case k == "allow_unsigned":
			b, err := strconv.ParseBool(kv.Value.Value)
			if err != nil || kv.Value.Kind != yaml.ScalarNode {
				errs.Add(file, kv.Value, "allow_unsigned: expected true or false, got %s", yamlconf.KindName(kv.Value))
			}
			allowUnsigned = b
		case !contains(keys, k):
			errs.Add(file, kv.Key, "unknown key %q%s (valid: %s)", k, yamlconf.DidYouMean(k, keys), strings.Join(keys, ", "))
		default:
			filtered.Content = append(filtered.Content, kv.Key, kv.Value)
		}
	}
	var cfg verify.Config
	errs.Append(yamlconf.Decode(file, filtered, &cfg))
	if len(errs) > 0 {
		return errs
	}
	schemeNode := yamlconf.Lookup(n, "scheme")
	if schemeNode == nil {
		errs.Add(file, n, "verify: missing required key \"scheme\" (valid: %s)", strings.Join(verify.Schemes(), ", "))
		return errs
	}
	in.Scheme = cfg.Scheme
	secretNode, secretsNode := yamlconf.Lookup(n, "secret"), yamlconf.Lookup(n, "secrets")
	if cfg.Scheme == verify.SchemeNone {
		in.Unsigned = true
	} else if contains(verify.Schemes(), cfg.Scheme) {
		allEmpty := cfg.Secret == ""
		for _, s := range cfg.Secrets {
			if s != "" {
				allEmpty = false
			}
		}
		switch {
		case allEmpty && allowUnsigned:
			// Accept unsigned posts, but only while no secret is configured:
			// the gateway warns about it at start-up.
			in.Unsigned = true
			v, err := verify.New(verify.Config{Scheme: verify.SchemeNone})
			if err != nil {
				errs.Add(file, n, "verify: %v", err)
			}
			in.Verifier = v
			return errs
		case allEmpty:
			at := n
			if secretNode != nil {
				at = secretNode
			} else if secretsNode != nil {
				at = secretsNode
			}
			errs.Add(file, at, "verify scheme %s: the secret is empty (set its environment variable), or add allow_unsigned: true to accept unsigned requests while no secret is set", cfg.Scheme)
			return errs
		case allowUnsigned:
			// Some secrets set: empty rotation slots are simply unused.
			kept := cfg.Secrets[:0:0]
			for _, s := range cfg.Secrets {
				if s != "" {
					kept = append(kept, s)
				}
			}
			cfg.Secrets = kept
		default:
			for i, s := range cfg.Secrets {
				if s == "" && secretsNode != nil && secretsNode.Kind == yaml.SequenceNode && i < len(secretsNode.Content) {
					errs.Add(file, secretsNode.Content[i], "verify scheme %s: secrets[%d] is empty (is its environment variable set?)", cfg.Scheme, i)
				}
			}
			if len(errs) > 0 {
				return errs
			}
		}
	}
	v, err := verify.New(cfg)
	if err != nil {
		at := n
		switch {
		case errors.Is(err, verify.ErrUnknownScheme):
			at = schemeNode
		case errors.Is(err, verify.ErrMissingSecret) && secretNode != nil:
			at = secretNode
		case errors.Is(err, verify.ErrMissingSecret) && secretsNode != nil:
			at = secretsNode
		default:
			if m := fieldInErr.FindStringSubmatch(err.Error()); m != nil {
				for _, kv := range yamlconf.Pairs(n) {
					if kv.Key.Value == m[1] {
						at = kv.Key
					}
				}
			}
		}
		errs.Add(file, at, "verify: %v", err)
		return errs
	}
	in.Verifier = v
	in.URLFromRequest = cfg.URLFromRequest()
	if cfg.Scheme == verify.SchemeToken {
		// The token travels in clear: whatever its header or parameter is
		// called, the inbox must not keep it.
		if h := strings.TrimSpace(cfg.Header); h != "" {
			in.SecretHeaders = append(in.SecretHeaders, http.CanonicalHeaderKey(h))
		}
		if cfg.Query != "" {
			in.SecretParams = append(in.SecretParams, cfg.Query)
		}
	}
	return errs
}

var fieldInErr = regexp.MustCompile(`field "([a-z_]+)"`)

func loadSchemaName(file string, n *yaml.Node, opts LoadOptions, in *Inbound) yamlconf.Errors {
	var errs yamlconf.Errors
	if n.Kind != yaml.ScalarNode || n.Value == "" {
		errs.Add(file, n, "schema: expected a payload schema name such as zendesk-ticket-event.json, got %s", yamlconf.KindName(n))
		return errs
	}
	reg := opts.Schemas
	if reg == nil {
		var err error
		if reg, err = schemas.New(); err != nil {
			errs.Add(file, n, "schema: %v", err)
			return errs
		}
	}
	if !reg.Has(n.Value) {
		errs.Add(file, n, "unknown schema %q%s (available: %s)", n.Value, yamlconf.DidYouMean(n.Value, reg.Names()), strings.Join(reg.Names(), ", "))
		return errs
	}
	in.Schema = n.Value
	if !strings.HasSuffix(in.Schema, ".json") {
		in.Schema += ".json"
	}
	return errs
}

type dedupeYAML struct {
	Header *string        `yaml:"header"`
	Path   *string        `yaml:"path"`
	Body   *bool          `yaml:"body"`
	Window *time.Duration `yaml:"window"`
	// FallbackWindow: header and path sources, how long a body-hash key
	// (the header or path value missing) is remembered.
	FallbackWindow *time.Duration `yaml:"fallback_window"`
}

func loadDedupe(file string, n *yaml.Node) (Dedupe, yamlconf.Errors) {
	var errs yamlconf.Errors
	sources := []string{DedupeHeader, DedupePath, DedupeBody}
	switch n.Kind {
	case yaml.ScalarNode:
		d, err := parseDedupe(n.Value)
		if err != "" {
			errs.Add(file, n, "dedupe: %s", err)
		}
		return d, errs
	case yaml.MappingNode:
		var y dedupeYAML
		errs.Append(yamlconf.Decode(file, n, &y))
		if len(errs) > 0 {
			return Dedupe{}, errs
		}
		var d Dedupe
		count := 0
		if y.Header != nil {
			count++
			d = Dedupe{Source: DedupeHeader, Name: *y.Header}
		}
		if y.Path != nil {
			count++
			d = Dedupe{Source: DedupePath, Name: *y.Path}
		}
		if y.Body != nil {
			count++
			if !*y.Body {
				errs.Add(file, yamlconf.Lookup(n, "body"), "dedupe: body: false is not a source; use header or path")
			}
			d = Dedupe{Source: DedupeBody}
		}
		if count != 1 {
			errs.Add(file, n, "dedupe: give exactly one of %s", strings.Join(sources, ", "))
			return Dedupe{}, errs
		}
		if d.Source != DedupeBody {
			d2, msg := parseDedupe(d.Source + ":" + d.Name)
			if msg != "" {
				errs.Add(file, yamlconf.Lookup(n, d.Source), "dedupe: %s", msg)
			}
			d = d2
		}
		if y.Window != nil {
			if *y.Window <= 0 {
				errs.Add(file, yamlconf.Lookup(n, "window"), "dedupe: window must be positive")
			}
			d.Window = *y.Window
		}
		if y.FallbackWindow != nil {
			switch {
			case d.Source == DedupeBody:
				errs.Add(file, yamlconf.Lookup(n, "fallback_window"), "dedupe: fallback_window applies to header and path sources, whose key falls back to the body hash; for body use window")
			case *y.FallbackWindow <= 0:
				errs.Add(file, yamlconf.Lookup(n, "fallback_window"), "dedupe: fallback_window must be positive")
			}
			d.FallbackWindow = *y.FallbackWindow
		}
		return d, errs
	}
	errs.Add(file, n, "dedupe: expected header:<Name>, path:<payload.path>, body, or a mapping, got %s", yamlconf.KindName(n))
	return Dedupe{}, errs
}

// parseDedupe parses the short form; the second result is an error message.
func parseDedupe(s string) (Dedupe, string) {
	s = strings.TrimSpace(s)
	if s == DedupeBody {
		return Dedupe{Source: DedupeBody}, ""
	}
	src, name, ok := strings.Cut(s, ":")
	src, name = strings.TrimSpace(src), strings.TrimSpace(name)
	valid := []string{DedupeHeader, DedupePath, DedupeBody}
	if !ok || (src != DedupeHeader && src != DedupePath) {
		return Dedupe{}, "expected header:<Name>, path:<payload.path> or body, got " + strconv.Quote(s) + yamlconf.DidYouMean(src, valid)
	}
	if name == "" {
		return Dedupe{}, src + ": needs a name after the colon"
	}
	if src == DedupeHeader {
		if !validHeaderName(name) {
			return Dedupe{}, "invalid header name " + strconv.Quote(name)
		}
		return Dedupe{Source: DedupeHeader, Name: http.CanonicalHeaderKey(name)}, ""
	}
	// A broken path would turn the dedupe key silently into the body hash.
	if err := mapping.CheckPath(name); err != nil {
		return Dedupe{}, "invalid payload path " + strconv.Quote(name) + ": " + err.Error()
	}
	return Dedupe{Source: DedupePath, Name: name}, ""
}

type handshakeYAML struct {
	Scheme      *yaml.Node `yaml:"scheme"`
	VerifyToken *yaml.Node `yaml:"verify_token"`
}

func loadHandshake(file string, n *yaml.Node) (handshake, yamlconf.Errors) {
	var errs yamlconf.Errors
	var y handshakeYAML
	errs.Append(yamlconf.Decode(file, n, &y))
	if len(errs) > 0 || n.Kind != yaml.MappingNode {
		return handshake{}, errs
	}
	if y.Scheme == nil {
		errs.Add(file, n, "handshake: missing required key \"scheme\" (valid: %s)", strings.Join(HandshakeSchemes(), ", "))
		return handshake{}, errs
	}
	h := handshake{scheme: y.Scheme.Value}
	switch h.scheme {
	case HandshakeMeta:
		if y.VerifyToken == nil {
			errs.Add(file, n, "handshake scheme meta: missing required key \"verify_token\" (the token you type in Meta's webhook settings)")
		} else if y.VerifyToken.Value == "" {
			errs.Add(file, y.VerifyToken, "handshake scheme meta: verify_token is empty (is its environment variable set?)")
		} else {
			h.verifyToken = y.VerifyToken.Value
		}
	case HandshakeSlack:
		if y.VerifyToken != nil {
			errs.Add(file, yamlconf.Lookup(n, "verify_token"), "handshake scheme slack does not use verify_token (Slack's challenge is answered after the signature verified)")
		}
	default:
		errs.Add(file, y.Scheme, "unknown handshake scheme %q%s (valid: %s)", h.scheme, yamlconf.DidYouMean(h.scheme, HandshakeSchemes()), strings.Join(HandshakeSchemes(), ", "))
	}
	return h, errs
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
