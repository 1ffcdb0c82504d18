package rules

import (
	"time"

	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/internal/yamlconf"
	"gopkg.in/yaml.v3"
)

// File is one parsed rules file: a root mapping with a `rules:` list.
// Name is used in error positions (file:line:column). A nil Node is an empty
// file and holds no rules.
type File struct {
	Name string
	Node *yaml.Node
}

// Options tune compilation and the gateway-wide loop guards. The zero value
// is usable: UTC, the default priority order, no connector checks, 20
// firings per rule per entity per hour, 5 hops.
type Options struct {
	// Location is the default zone for time_of_day and day_of_week
	// (nil = UTC). A rule's `timezone:` and a condition's `tz:` override it.
	Location *time.Location
	// Enums holds ordered enums by field name, lowest first; gt/gte/lt/lte/
	// between on such a field compare ranks. Fields not given keep the
	// defaults of DefaultEnums (priority: low < normal < high < urgent).
	Enums map[string][]string
	// ConnectorEnums overrides Enums per connector (connector -> field -> order).
	ConnectorEnums map[string]map[string][]string
	// Connectors lists the known connector names; `connector`, `deliver_to`
	// and update_ticket's `connector` must name one. nil disables the check.
	Connectors []string
	// ConnectorVars lists, per connector, the template variables its mapping
	// produces; a %%VAR%% of a rule filtered on connectors that do not all
	// produce it is a config error. nil disables the check.
	ConnectorVars map[string][]string
	// ConnectorTypes lists, per connector, every event type its mapping can
	// produce, for connectors whose set is known at compile time (leave out
	// the others). An `on:` pattern of a rule filtered on such connectors
	// that none of their types (nor timer.fired) matches is a warning with
	// the nearest type: the rule could never run. nil disables the check.
	ConnectorTypes map[string][]string
	// MaxFiringsPerHour caps how often one rule fires for one entity in any
	// hour (loop guard). 0 means the default 20; a negative value disables it.
	MaxFiringsPerHour int
	// MaxHops stops rules for events whose Causation.Hops >= MaxHops (loop
	// guard). 0 means the default 5; a negative value disables it.
	MaxHops int
	// Calendars are the business-hours calendars a time-based rule may name
	// in `calendar:` (gateway.yaml calendars:, see ParseCalendars).
	Calendars map[string]*Calendar
}

// Defaults of Options.
const (
	DefaultMaxFiringsPerHour = 20
	DefaultMaxHops           = 5
)

// DefaultEnums returns the ordered enums used when Options.Enums does not
// name a field: priority low < normal < high < urgent. A fresh map is
// returned on every call.
func DefaultEnums() map[string][]string {
	return map[string][]string{event.FieldPriority: {"low", "normal", "high", "urgent"}}
}

// Limit is a rule's maximum firing frequency.
type Limit struct {
	// Max is the number of firings allowed per window.
	Max int `json:"max"`
	// Per is the window length.
	Per time.Duration `json:"per"`
	// Scope is "item" (per entity, counted from Snapshot.Fired) or "rule"
	// (all entities together, counted by Input.RuleFirings).
	Scope string `json:"scope"`
}

// Limit scopes.
const (
	ScopeItem = "item"
	ScopeRule = "rule"
)

// Rule is one compiled rule. Its exported fields are read-only information
// (for listings and the admin API); changing them has no effect on evaluation.
type Rule struct {
	ID          string       `json:"id"`
	Name        string       `json:"name,omitempty"`
	Description string       `json:"description,omitempty"`
	Pos         yamlconf.Pos `json:"pos"`
	Enabled     bool         `json:"enabled"`
	// On lists the event type patterns (`manual` for on-demand only rules).
	On []string `json:"on"`
	// Connectors is the connector filter (empty: any connector).
	Connectors []string `json:"connectors,omitempty"`
	// DeliverTo is the outbound connector (empty: the event's own).
	DeliverTo      string `json:"deliver_to,omitempty"`
	Timezone       string `json:"timezone,omitempty"`
	Limit          *Limit `json:"limit,omitempty"`
	OncePerItem    bool   `json:"once_per_item,omitempty"`
	OnOwnChanges   bool   `json:"on_own_changes,omitempty"`
	AllowRetrigger bool   `json:"allow_retrigger,omitempty"`
	// Manual is true when the rule only runs on demand (`on: manual`).
	Manual bool `json:"manual,omitempty"`
	// Timer describes the clock of a time-based rule (for: or idle:); nil
	// for rules that fire on events.
	Timer *TimerSpec `json:"timer,omitempty"`

	index   int
	when    *cond // nil: always true
	timing  *timing
	actions []*action
	limitS  string // "limit 1 per 24h reached"
}

// Set is an immutable, compiled rule set. It is safe for concurrent use.
type Set struct {
	rules    []*Rule
	byID     map[string]*Rule
	idx      index // rules that fire on events
	tidx     index // time-based rules, by the events that move their clocks
	maxFire  int
	maxHops  int
	hopSkip  string
	capSkip  string
	warnings yamlconf.Errors
}

// Rules returns the rules in file order (files in the order given to Compile).
func (s *Set) Rules() []*Rule { return s.rules }

// Rule returns the rule with the given id, or nil.
func (s *Set) Rule(id string) *Rule { return s.byID[id] }

// Warnings returns problems that do not refuse the set, such as an
// update_ticket with a literal (non-variable) reference.
func (s *Set) Warnings() yamlconf.Errors { return s.warnings }
