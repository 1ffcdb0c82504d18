package gateway

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/hookline/hookline/connectors"
	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/internal/yamlconf"
	"github.com/hookline/hookline/rules"
	"github.com/hookline/hookline/schemas"
)

// File is the decoded configs/gateway.yaml.
type File struct {
	Listen     string   `yaml:"listen"`
	DataDir    string   `yaml:"data_dir"`
	AdminToken string   `yaml:"admin_token"`
	BodyLimit  ByteSize `yaml:"body_limit"`
	Timezone   string   `yaml:"timezone"`
	Intake     struct {
		DedupeWindow time.Duration `yaml:"dedupe_window"`
	} `yaml:"intake"`
	Delivery struct {
		Workers           int           `yaml:"workers"`
		LogDir            string        `yaml:"log_dir"`
		FingerprintWindow time.Duration `yaml:"fingerprint_window"`
	} `yaml:"delivery"`
	LoopGuard struct {
		MaxHops           int `yaml:"max_hops"`
		MaxFiringsPerHour int `yaml:"max_firings_per_hour"`
	} `yaml:"loop_guard"`
	Egress struct {
		Allow []string `yaml:"allow"`
	} `yaml:"egress"`
	Retention  Retention           `yaml:"retention"`
	Enums      map[string][]string `yaml:"enums"`
	Calendars  *yaml.Node          `yaml:"calendars"`
	Connectors []string            `yaml:"connectors"`
	Rules      []string            `yaml:"rules"`
}

// ByteSize is a size in bytes written as 1048576, 512KiB, 1MiB or 1MB.
type ByteSize int64

var byteSizeRe = regexp.MustCompile(`^\s*(\d+)\s*([KMG]i?B|B)?\s*$`)

// UnmarshalConfig implements yamlconf.Unmarshaler.
func (b *ByteSize) UnmarshalConfig(file string, n *yaml.Node) yamlconf.Errors {
	m := byteSizeRe.FindStringSubmatch(n.Value)
	if n.Kind != yaml.ScalarNode || m == nil {
		return yamlconf.Errors{yamlconf.Errorf(file, n, "expected a size like 1048576, 512KiB or 1MiB, got %s", yamlconf.KindName(n))}
	}
	v, _ := strconv.ParseInt(m[1], 10, 64)
	mult := map[string]int64{"": 1, "B": 1, "KB": 1000, "KiB": 1 << 10, "MB": 1000 * 1000, "MiB": 1 << 20, "GB": 1000 * 1000 * 1000, "GiB": 1 << 30}[m[2]]
	*b = ByteSize(v * mult)
	return nil
}

// Retention is the retention: section of gateway.yaml: how long history
// is kept and how often housekeeping prunes it. A zero KeepFor takes its
// default; KeepForever keeps that history forever.
type Retention struct {
	// Inbox keeps processed, unmapped and failed inbox items (pending ones
	// are never deleted).
	Inbox KeepFor `yaml:"inbox"`
	// Events keeps events with their traces and per-entity index entries
	// (entity snapshots are state and are never deleted).
	Events KeepFor `yaml:"events"`
	// Deliveries keeps succeeded, failed (dead) and cancelled deliveries
	// (pending and in-flight ones are never deleted).
	Deliveries KeepFor `yaml:"deliveries"`
	// Interval is how often housekeeping runs.
	Interval time.Duration `yaml:"interval"`
}

// KeepFor is how long one kind of history is kept, written as a duration
// (12h, 30d, 2w; at least MinRetention) or as 0 or forever to keep it
// forever. The zero value means "not set".
type KeepFor time.Duration

// KeepForever keeps history forever (written 0 or forever).
const KeepForever KeepFor = -1

// MinRetention is the shortest retention gateway.yaml accepts: shorter
// ones are almost always a unit mistake (30m is thirty minutes, not
// months) that would delete history moments after it is made.
const MinRetention = time.Hour

// Forever reports whether k keeps history forever.
func (k KeepFor) Forever() bool { return k < 0 }

// Cutoff returns the time before which history of this kind is pruned at
// now, and false when it is kept forever.
func (k KeepFor) Cutoff(now time.Time) (time.Time, bool) {
	if k <= 0 {
		return time.Time{}, false
	}
	return now.Add(-time.Duration(k)), true
}

// String writes k as gateway.yaml would: forever, whole days as 30d, else
// a Go duration.
func (k KeepFor) String() string {
	d := time.Duration(k)
	switch {
	case k < 0:
		return "forever"
	case d > 0 && d%(24*time.Hour) == 0:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}

// UnmarshalConfig implements yamlconf.Unmarshaler.
func (k *KeepFor) UnmarshalConfig(file string, n *yaml.Node) yamlconf.Errors {
	const want = "a duration like 12h, 30d or 2w, or 0 or forever"
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return yamlconf.Errors{yamlconf.Errorf(file, n, "expected %s, got %s", want, yamlconf.KindName(n))}
	}
	v := strings.TrimSpace(n.Value)
	if v == "forever" {
		*k = KeepForever
		return nil
	}
	d, err := yamlconf.ParseDuration(v)
	if err != nil {
		return yamlconf.Errors{yamlconf.Errorf(file, n, "expected %s, got %q%s", want, v, yamlconf.DidYouMean(v, []string{"forever"}))}
	}
	switch {
	case d == 0:
		*k = KeepForever
	case d < 0:
		return yamlconf.Errors{yamlconf.Errorf(file, n, "retention %q is negative: expected %s", v, want)}
	case d < MinRetention:
		return yamlconf.Errors{yamlconf.Errorf(file, n, "retention %q is shorter than the minimum of %s and would delete history moments after it is made (m is minutes: write 30d for thirty days)", v, MinRetention)}
	default:
		*k = KeepFor(d)
	}
	return nil
}

// Defaults applied when gateway.yaml leaves a setting out.
const (
	DefaultBodyLimit         = 1 << 20
	DefaultDedupeWindow      = 72 * time.Hour
	DefaultWorkers           = 32
	DefaultFingerprintWindow = 10 * time.Minute
	DefaultMaxHops           = 5
	DefaultMaxFiringsPerHour = 20
	// DefaultInboxRetention keeps accepted webhooks (the largest records:
	// whole payloads) a month, long enough to investigate and replay.
	DefaultInboxRetention = KeepFor(30 * 24 * time.Hour)
	// DefaultEventRetention keeps events and their rule traces a quarter:
	// "why did this ticket change" is asked long after the fact.
	DefaultEventRetention = KeepFor(90 * 24 * time.Hour)
	// DefaultDeliveryRetention keeps finished deliveries, dead letters
	// included, a month: time enough to retry what failed.
	DefaultDeliveryRetention = KeepFor(30 * 24 * time.Hour)
	// DefaultHousekeepingInterval runs housekeeping every minute, so that
	// each run is small (a few short transactions even at thousands of
	// webhooks a minute) and a run with nothing to do is a few key lookups.
	DefaultHousekeepingInterval = time.Minute
)

// Bundle is a compiled, validated configuration: everything the gateway
// needs that comes from files. It is immutable once built.
type Bundle struct {
	Path        string // the gateway.yaml it came from
	Dir         string // its directory; globs and relative paths resolve here
	File        File
	Location    *time.Location
	Connectors  map[string]*connectors.Connector
	Rules       *rules.Set
	RuleFiles   []string
	Schemas     *schemas.Registry
	EgressAllow []netip.Prefix
	// Calendars are the business-hours calendars of gateway.yaml, by name.
	Calendars map[string]*rules.Calendar
	// Warnings are problems that do not stop the gateway (development
	// secrets in use, unsigned connectors, loopback-only admin API).
	Warnings []string
	// TestFiles are the *_test.yaml config tests found beside connector and rule files.
	TestFiles []string
}

// dedupeKey is the dedupe key of a webhook to in and its window: the
// connector's (or its fallback's), else the gateway's intake.dedupe_window.
// The intake and dry runs share it, so that both decide alike.
func (b *Bundle) dedupeKey(in *connectors.Inbound, header map[string][]string, query url.Values, payload []byte) (string, time.Duration) {
	key, window := in.Dedupe.RequestKey(header, query, payload)
	if window <= 0 {
		window = b.File.Intake.DedupeWindow
	}
	return key, window
}

// derivedFrom tells, for connector's fields, which are derived from
// another one (its fields' derived_from, and event.DerivedFrom:
// status_category from status): a change to a derived field rides with its
// source when echoes are matched.
func (b *Bundle) derivedFrom(connector string) func(field string) (string, bool) {
	if c := b.Connectors[connector]; c != nil && c.Inbound != nil && c.Inbound.Mapper != nil {
		return c.Inbound.Mapper.DerivedFrom
	}
	return event.DerivedFrom
}

// ConnectorNames returns the configured connector names, sorted.
func (b *Bundle) ConnectorNames() []string {
	names := make([]string, 0, len(b.Connectors))
	for n := range b.Connectors {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ResolveConfigPath turns a path given on the command line into the
// gateway.yaml to load: a directory means its gateway.yaml.
func ResolveConfigPath(path string) string {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return filepath.Join(path, "gateway.yaml")
	}
	return path
}

var secretName = regexp.MustCompile(`(?i)SECRET|TOKEN|PASSWORD|API_KEY`)

// Load reads gateway.yaml at path and every connector and rule file it
// includes, and compiles them into a Bundle. All problems of all files are
// returned together, each as file:line:column: message.
func Load(path string, env yamlconf.Env) (*Bundle, yamlconf.Errors) {
	path = ResolveConfigPath(path)
	b := &Bundle{Path: path, Dir: filepath.Dir(path), Connectors: map[string]*connectors.Connector{}}
	var errs yamlconf.Errors
	defaulted := map[string]string{} // secret var -> file
	parse := func(file string) *yaml.Node {
		data, err := os.ReadFile(file)
		if err != nil {
			errs = append(errs, &yamlconf.Error{Pos: yamlconf.Pos{File: file}, Msg: fmt.Sprintf("read: %v", err)})
			return nil
		}
		n, perrs := yamlconf.ParseObserved(file, data, env, func(name, value string) {
			if value != "" && secretName.MatchString(name) {
				defaulted[name] = file
			}
		})
		errs.Append(perrs)
		return n
	}

	root := parse(path)
	if root == nil {
		if len(errs) == 0 {
			errs.Add(path, nil, "the gateway file is empty")
		}
		return nil, errs
	}
	errs.Append(yamlconf.Decode(path, root, &b.File))
	b.applyDefaults()
	b.checkListen(root, &errs)
	b.checkRetention(root, &errs)
	if loc, err := time.LoadLocation(b.File.Timezone); err != nil {
		errs.Add(path, yamlconf.Lookup(root, "timezone"), "unknown time zone %q (use an IANA name like Europe/Rome)", b.File.Timezone)
	} else {
		b.Location = loc
	}
	b.EgressAllow = parsePrefixes(path, yamlconf.Lookup(root, "egress"), b.File.Egress.Allow, env, &errs)
	cals, cerrs := rules.ParseCalendars(path, b.File.Calendars)
	errs.Append(cerrs)
	b.Calendars = cals

	reg, err := schemas.New()
	if err != nil {
		errs.Add(path, nil, "embedded schemas: %v", err)
		return nil, errs
	}
	b.Schemas = reg

	connFiles, connTests := b.glob(root, "connectors", b.File.Connectors, &errs)
	b.TestFiles = append(b.TestFiles, connTests...)
	connVars, connTypes := map[string][]string{}, map[string][]string{}
	var brokenConnectors []string
	for _, f := range connFiles {
		n := parse(f)
		if n == nil {
			continue
		}
		c, cerrs := connectors.Load(f, n, connectors.LoadOptions{Schemas: reg})
		errs.Append(cerrs)
		if c == nil {
			// Rules naming a connector whose file is broken should not
			// bury its real error under "unknown connector" ones.
			if name := yamlconf.Lookup(n, "connector"); name != nil && name.Value != "" {
				brokenConnectors = append(brokenConnectors, name.Value)
			}
			continue
		}
		if prev, dup := b.Connectors[c.Name]; dup {
			errs.Add(f, yamlconf.Lookup(n, "connector"), "connector %q is already defined in %s", c.Name, prev.File)
			continue
		}
		b.Connectors[c.Name] = c
		if c.Inbound != nil {
			if c.Inbound.Mapper != nil {
				connVars[c.Name] = c.Inbound.Mapper.Vars()
				if c.Inbound.Mapper.TypesClosed() {
					connTypes[c.Name] = c.Inbound.Mapper.Types()
				}
			}
			if c.Inbound.Unsigned {
				b.Warnings = append(b.Warnings, fmt.Sprintf("connector %s accepts unsigned webhooks (%s): set its secret to require signatures", c.Name, f))
			}
			if c.Inbound.URLFromRequest {
				b.Warnings = append(b.Warnings, fmt.Sprintf("connector %s checks signatures against the URL each request names (its Host and X-Forwarded-* headers, which a sender chooses) (%s): set its public_url to the URL configured at the platform", c.Name, f))
			}
		}
	}

	ruleFiles, ruleTests := b.glob(root, "rules", b.File.Rules, &errs)
	b.TestFiles = append(b.TestFiles, ruleTests...)
	b.RuleFiles = ruleFiles
	var rf []rules.File
	for _, f := range ruleFiles {
		if n := parse(f); n != nil {
			rf = append(rf, rules.File{Name: f, Node: n})
		}
	}
	ropts := b.ruleOptions(connVars)
	ropts.ConnectorTypes = connTypes
	ropts.Connectors = append(ropts.Connectors, brokenConnectors...)
	set, rerrs := rules.Compile(rf, ropts)
	errs.Append(rerrs)
	b.Rules = set
	if set != nil {
		for _, w := range set.Warnings() {
			b.Warnings = append(b.Warnings, w.Error())
		}
		b.Warnings = append(b.Warnings, b.uncarriedUpdates(set)...)
	}

	sort.Strings(b.Warnings)
	if len(defaulted) > 0 {
		names := make([]string, 0, len(defaulted))
		for name := range defaulted {
			names = append(names, name)
		}
		sort.Strings(names)
		b.Warnings = append([]string{fmt.Sprintf("development defaults in use for %d secrets (set them before production): %s",
			len(names), strings.Join(names, ", "))}, b.Warnings...)
	}
	if len(errs) > 0 {
		errs.Sort()
		return nil, errs
	}
	return b, nil
}

func (b *Bundle) applyDefaults() {
	f := &b.File
	if f.Listen == "" {
		f.Listen = ":8080"
	}
	if f.DataDir == "" {
		f.DataDir = "./data"
	}
	if f.BodyLimit <= 0 {
		f.BodyLimit = DefaultBodyLimit
	}
	if f.Timezone == "" {
		f.Timezone = "UTC"
	}
	if f.Intake.DedupeWindow <= 0 {
		f.Intake.DedupeWindow = DefaultDedupeWindow
	}
	if f.Delivery.Workers <= 0 {
		f.Delivery.Workers = DefaultWorkers
	}
	if f.Delivery.FingerprintWindow <= 0 {
		f.Delivery.FingerprintWindow = DefaultFingerprintWindow
	}
	if f.LoopGuard.MaxHops <= 0 {
		f.LoopGuard.MaxHops = DefaultMaxHops
	}
	if f.LoopGuard.MaxFiringsPerHour == 0 {
		f.LoopGuard.MaxFiringsPerHour = DefaultMaxFiringsPerHour
	}
	r := &f.Retention
	for _, k := range []struct {
		v   *KeepFor
		def KeepFor
	}{{&r.Inbox, DefaultInboxRetention}, {&r.Events, DefaultEventRetention}, {&r.Deliveries, DefaultDeliveryRetention}} {
		if *k.v == 0 {
			*k.v = k.def
		}
	}
	if r.Interval == 0 {
		r.Interval = DefaultHousekeepingInterval
	}
}

// checkListen reports a listen address that serve could not listen on,
// such as "8080" for ":8080".
func (b *Bundle) checkListen(root *yaml.Node, errs *yamlconf.Errors) {
	var reason string
	if _, port, err := net.SplitHostPort(b.File.Listen); err != nil {
		reason = err.Error()
		if ae, ok := err.(*net.AddrError); ok {
			reason = ae.Err
		}
	} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		reason = fmt.Sprintf("port %q is not a number from 0 to 65535", port)
	}
	if reason != "" {
		errs.Add(b.Path, yamlconf.Lookup(root, "listen"), "listen %q: %s; expected host:port, like \":8080\" or \"127.0.0.1:8080\"", b.File.Listen, reason)
	}
}

// checkRetention reports a housekeeping interval that is not positive and
// warns about an inbox kept shorter than the dedupe window.
func (b *Bundle) checkRetention(root *yaml.Node, errs *yamlconf.Errors) {
	r := b.File.Retention
	if r.Interval < 0 {
		errs.Add(b.Path, yamlconf.Lookup(yamlconf.Lookup(root, "retention"), "interval"),
			"retention.interval %s is negative: expected how often housekeeping runs, like 1m", r.Interval)
	}
	if !r.Inbox.Forever() && time.Duration(r.Inbox) < b.File.Intake.DedupeWindow {
		b.Warnings = append(b.Warnings, fmt.Sprintf("retention.inbox (%s) is shorter than intake.dedupe_window (%s): a late repeat of a pruned webhook is still answered as a duplicate, with the id of an item that is gone",
			r.Inbox, b.File.Intake.DedupeWindow))
	}
}

func (b *Bundle) ruleOptions(connVars map[string][]string) rules.Options {
	return rules.Options{
		Location:          b.Location,
		Enums:             b.File.Enums,
		Connectors:        b.ConnectorNames(),
		ConnectorVars:     connVars,
		MaxFiringsPerHour: b.File.LoopGuard.MaxFiringsPerHour,
		MaxHops:           b.File.LoopGuard.MaxHops,
		Calendars:         b.Calendars,
	}
}

// glob expands the include patterns of key (relative to the gateway file's
// directory), returning config files and *_test.yaml files separately.
func (b *Bundle) glob(root *yaml.Node, key string, patterns []string, errs *yamlconf.Errors) (files, tests []string) {
	seen := map[string]bool{}
	for i, p := range patterns {
		node := yamlconf.Lookup(root, key)
		if node != nil && node.Kind == yaml.SequenceNode && i < len(node.Content) {
			node = node.Content[i]
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(b.Dir, p)
		}
		matches, err := filepath.Glob(p)
		if err != nil {
			errs.Add(b.Path, node, "bad pattern %q: %v", patterns[i], err)
			continue
		}
		matches = visibleMatches(p, matches)
		if len(matches) == 0 {
			errs.Add(b.Path, node, "pattern %q matches no file", patterns[i])
		}
		sort.Strings(matches)
		for _, m := range matches {
			if seen[m] {
				continue
			}
			seen[m] = true
			if strings.HasSuffix(m, "_test.yaml") || strings.HasSuffix(m, "_test.yml") {
				tests = append(tests, m)
				continue
			}
			files = append(files, m)
		}
		// Tests kept beside the files also count when the glob names *.yaml only.
		dir := filepath.Dir(p)
		extra, _ := filepath.Glob(filepath.Join(dir, "*_test.yaml"))
		extraYml, _ := filepath.Glob(filepath.Join(dir, "*_test.yml"))
		for _, m := range visibleMatches(p, append(extra, extraYml...)) {
			if !seen[m] {
				seen[m] = true
				tests = append(tests, m)
			}
		}
	}
	return files, tests
}

// visibleMatches drops the matches of pattern whose name starts with a
// dot, unless the pattern's own name does: editors keep such files beside
// the ones they edit (Emacs's .#name.yaml lock, a dangling symlink; the
// ._name.yaml of macOS on foreign file systems; vim's .name.yaml.swp), and
// they are not config.
func visibleMatches(pattern string, matches []string) []string {
	if strings.HasPrefix(filepath.Base(pattern), ".") {
		return matches
	}
	out := matches[:0:0]
	for _, m := range matches {
		if !strings.HasPrefix(filepath.Base(m), ".") {
			out = append(out, m)
		}
	}
	return out
}

func parsePrefixes(file string, node *yaml.Node, allow []string, env yamlconf.Env, errs *yamlconf.Errors) []netip.Prefix {
	var out []netip.Prefix
	add := func(s string, n *yaml.Node) {
		s = strings.TrimSpace(s)
		if s == "" {
			return
		}
		if !strings.Contains(s, "/") {
			if a, err := netip.ParseAddr(s); err == nil {
				out = append(out, netip.PrefixFrom(a, a.BitLen()))
				return
			}
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			errs.Add(file, n, "egress.allow: %q is not a CIDR like 10.0.0.0/8", s)
			return
		}
		out = append(out, p.Masked())
	}
	allowNode := yamlconf.Lookup(node, "allow")
	for i, s := range allow {
		n := allowNode
		if n != nil && n.Kind == yaml.SequenceNode && i < len(n.Content) {
			n = n.Content[i]
		}
		add(s, n)
	}
	if env != nil {
		if v, ok := env("HOOKLINE_EGRESS_ALLOW"); ok {
			for _, s := range strings.Split(v, ",") {
				add(s, nil)
			}
		}
	}
	return out
}

// uncarriedUpdates warns about each rule action whose change no update
// action of its target connector can carry (an action's fields list leaves
// it out): every delivery it makes would fail at render. The target is the
// connector the action names, else the rule's deliver_to, else each of
// the connectors the rule listens to (none: not checked). The entity is
// update_ticket's ticket, else the triggering event's, which is not known
// here: then any update action of the connector may be the one.
func (b *Bundle) uncarriedUpdates(set *rules.Set) []string {
	var out []string
	for _, r := range set.Rules() {
		for _, eu := range r.EntityUpdates() {
			targets := r.Connectors
			switch {
			case eu.Connector != "":
				targets = []string{eu.Connector}
			case r.DeliverTo != "":
				targets = []string{r.DeliverTo}
			}
			for _, name := range targets {
				c := b.Connectors[name]
				if c == nil || c.Outbound == nil {
					continue
				}
				actions := updateActions(c.Outbound, eu.Entity)
				if len(actions) == 0 {
					continue
				}
				carried := func(field string) bool {
					return slices.ContainsFunc(actions, func(a *connectors.Action) bool { return a.Carries(field) })
				}
				var cannot []string
				for _, f := range eu.Fields {
					if !carried(f) {
						cannot = append(cannot, f)
					}
				}
				if eu.Tags && !carried(event.FieldTags) {
					cannot = append(cannot, "tags")
				}
				if len(cannot) == 0 {
					continue
				}
				names := make([]string, len(actions))
				for i, a := range actions {
					names[i] = fmt.Sprintf("%s (carries %s)", a.Name, strings.Join(a.Fields, ", "))
				}
				out = append(out, fmt.Sprintf("%s: rule %q: %s changes %s, which connector %s cannot send: %s; its deliveries would fail",
					eu.Pos, r.ID, eu.Action, strings.Join(cannot, ", "), name, strings.Join(names, "; ")))
			}
		}
	}
	return out
}

// updateActions returns the actions of o that may carry an entity update:
// the one rendering picks for a known entity (Outbound.ActionFor), else
// every update action (connectors.IsUpdateAction).
func updateActions(o *connectors.Outbound, entity string) []*connectors.Action {
	if entity != "" {
		if a := o.Actions[o.ActionFor(&event.Update{Kind: event.KindUpdateEntity, Entity: entity})]; a != nil {
			return []*connectors.Action{a}
		}
		return nil
	}
	var out []*connectors.Action
	for name, a := range o.Actions {
		if connectors.IsUpdateAction(name) {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(x, y *connectors.Action) int { return strings.Compare(x.Name, y.Name) })
	return out
}
