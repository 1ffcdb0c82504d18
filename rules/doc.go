// Package rules owns Hookline's rules engine: it compiles admin-written rule
// files into an immutable Set, evaluates events against it, and decides the
// actions (intents) that the pipeline stores and delivery sends. It is pure:
// no I/O and no clock reads (time comes in Input.Now); the counters behind
// limits come in as input (Snapshot.Fired, Input.RuleFirings) and what to
// record goes out as Result.Firings.
//
// # Basics
//
//	set, errs := rules.Compile(files, rules.Options{Location: loc, Connectors: names})
//	res := set.Evaluate(rules.Input{Event: ev, Snapshot: snapAfterEvent, Now: now, RuleFirings: store.Count})
//	// res.Updates -> outbox, res.Firings -> snapshot/store, res.Trace -> stored with the event
//	res, err := set.Run("escalate", rules.Input{Event: manualEvent, Snapshot: snap, Now: now})
//	ops := set.Schedule(in) // time-based rules: clocks advanced in in.Snapshot.Clocks; arm/move/cancel -> store timers
//
// Compile reports every problem of every file as file:line:column: message,
// naming the nearest valid key, operator, action, connector, enum value or
// variable for a misspelling; a set with any error is refused as a whole.
// Set.Warnings lists what is accepted but doubtful (a literal update_ticket
// reference, a field name close to a model field, an `on:` pattern that no
// event type of the rule's connectors matches when their types are known:
// Options.ConnectorTypes); the gateway prints them with its own warnings at
// start-up, on reload and in `hookline validate`.
//
// # Rule files
//
// A rules file holds one root key, rules, a list of rules:
//
//	rules:
//	  - id: solve-abandoned-conversations   # required, unique across files: letters, digits, - _ .
//	    name: Solve abandoned conversations # optional, for people
//	    description: ...                    # optional
//	    enabled: true                       # default true; false keeps the rule but never fires it
//	    on: [ticket.updated]                # required: event types; * is a wildcard (ticket.*, *.created, *)
//	    connector: zendesk                  # optional filter: one name or a list
//	    timezone: Europe/Rome               # optional zone for time_of_day/day_of_week (default: gateway's)
//	    when:                               # optional condition tree (absent: always)
//	      all:
//	        - { field: status_category, is: open }
//	        - { field: session_state, changed_to: inactive }
//	        - { field: inactive_reason, is: user_inactive_or_offline }
//	    then:                               # required: ordered actions
//	      - set_status: solved
//	      - add_tags: [abandoned_conversation]
//	    deliver_to: zendesk                 # optional outbound connector (default: the event's own)
//	    limit: { max: 1, per: 24h, scope: item }  # optional: at most max firings per window
//	    once_per_item: true                 # optional: fire at most once per entity, ever
//	    on_own_changes: false               # default false: skip echoes of our own deliveries
//	    allow_retrigger: false              # opt out of the load-time loop guard (needs limit)
//
// on: manual marks a rule that only runs on demand (Set.Run, SmarterTrack's
// manual events); it cannot be combined with event types. limit scope is
// item (per entity, the default) or rule (all entities together: one
// firing for many items in the window, SmarterTrack's aggregate actions).
// Durations are Go durations plus days and weeks: 90s, 15m, 48h, 2d, 1w.
// for:, idle:, since:, within:, pause_when: and calendar: make a rule
// time-based (see Time-based rules below).
//
// # Conditions
//
// A condition is a mapping with a field and one operator, or a tree:
//
//	{ field: status, is: pending }
//	all: [ ...conditions ]          # every one holds (a plain list means all too)
//	any: [ ...conditions ]          # at least one holds
//	not: { ...one condition }       # it does not hold
//
// Fields: any event field by its flat dotted path (status, priority,
// customer.email, custom.order_id; nested maps are searched too), the
// derived snapshot fields status_since, last_activity_at,
// last_customer_message_at, last_agent_message_at (timestamps),
// agent_replies, customer_messages, unanswered_customer_messages (numbers:
// the customer's messages since the agent side last wrote, so 1 on a
// customer message means a reply to the agent), actor.type|id|name|email,
// event.type|connector|entity|reference and vars.NAME. A field is read
// from Input.Snapshot.Fields first, then the event's Fields; change
// operators read Event.Changes. A webhook older than what the snapshot
// already holds of a field (an out-of-order retry) changes nothing of it
// and reports no change of it (see event.Apply). The common model's
// fields are typed (text, number, timestamp, tag list); comparing one
// with a value of the wrong type, or using an operator that cannot apply
// to it, is a config error.
// Other fields (custom.*, connector-specific ones) are checked by the value
// written in the rule and compared by what they hold at run time.
//
// Operators (text comparisons ignore case):
//
//	is            { field: status, is: pending }             equal (numbers numerically: 2 equals "2")
//	is_not        { field: status, is_not: solved }           not equal; an absent field is not equal
//	in            { field: status, in: [open, pending] }      one of; or { field: owner, in: { field: custom.on_leave } }
//	not_in        { field: status, not_in: [solved, closed] } none of (absent holds)
//	changed       { field: status, changed: true }            the event changes the field (from != to)
//	changed_to    { field: session_state, changed_to: inactive }  changed (from != to), to one of the values (a list allowed)
//	changed_from  { field: status, changed_from: new }        changed (from != to), from one of the values
//	not_changed   { field: status, not_changed: true }        the event does not change the field
//	contains      { field: text, contains: [billing, refund] }    every word or phrase appears as a whole word
//	not_contains  { field: subject, not_contains: [spam] }    none appears (absent holds)
//	contains_any  { field: text, contains_any: [refund, cancel] } at least one appears
//	matches       { field: customer.email, matches: "@example\\.com$" }  RE2 regular expression, ignoring case unless it starts with (?-i) (any tag, for lists)
//	gt, gte       { field: survey_rating, gte: 4 }            greater (or equal)
//	lt, lte       { field: priority, lt: high }               less (or equal)
//	between       { field: idle_minutes, between: [5, 15] }   low <= value <= high, both ends included
//	present       { field: owner, present: true }             set and not empty ("", [] and null are empty)
//	absent        { field: owner, absent: true }              not set, null or empty
//	includes      { field: tags, includes: [vip, gold] }      the list holds any of the values
//	includes_all  { field: tags, includes_all: [vip, gold] }  the list holds all of them
//	excludes      { field: tags, excludes: [no_automation] }  the list holds none of them (absent holds)
//	after         { field: last_customer_message_at, after: last_agent_message_at }  a later instant than the other timestamp field (absent other: never, so it holds)
//	before        { field: last_agent_message_at, before: last_customer_message_at }  an earlier instant (both present)
//	time_of_day   { time_of_day: "09:00-17:30", tz: Europe/Rome }  the event's time of day is in [start, end)
//	day_of_week   { day_of_week: [mon, tue], tz: Europe/Rome }     the event's day is one of: mon..sun, mon-fri, weekdays, weekend
//
// Equality (is, is_not, in, not_in, changed_to, changed_from) compares text
// as text, case-insensitively, then numerically when the value is a number
// or both texts are plain numbers that float64 holds exactly (no leading
// zero, at most 15 significant digits): "2.50" equals 2.5, but "007" does
// not equal "7" and two 17-digit ids are equal only when their digits are.
// A boolean equals true or false, quoted or not, in any case.
//
// Words: contains* match whole words or phrases, case-insensitively
// ("billing" matches "Billing," but not "rebilling"); a term that starts or
// ends with punctuation (#urgent) needs no word boundary on that side. Use
// matches for substrings and patterns.
//
// Order (gt, gte, lt, lte, between) compares, by the type of the value
// written in the rule:
//   - numbers: numbers, and text that holds a number;
//   - ordered enums: on fields with an order (priority: low < normal < high <
//     urgent by default; Options.Enums and per-connector
//     Options.ConnectorEnums change or add orders) the value must be one of
//     the order's values, and ranks are compared; a value outside the order
//     never matches;
//   - durations (15m, 2h, 2d): a timestamp field compares its age, Now - t
//     (status_since gt 48h: in this status for more than 48 hours); a
//     duration field compares its length: a duration text ("90s", "15m",
//     "2d") or a number of seconds;
//   - RFC 3339 timestamps: a timestamp field compares instants.
//
// An absent field or a value of another type never satisfies an order.
//
// Time: time_of_day and day_of_week read the time of the event, not of
// its processing: its occurred_at, else its received_at (an occurred_at
// later than Input.Now counts as Input.Now; a timer.fired event's time is
// its due time), so a change made at 17:59 is made in business hours even
// when a backlog or a replay processes it after 18:00. Ages, limits and
// firings read Input.Now. The time is read in the condition's tz, else the
// rule's timezone, else Options.Location, else UTC. Windows may cross midnight ("22:00-06:00");
// "24:00" may end a window. Wall clock times follow daylight saving time:
// "09:00-18:00" in Europe/Rome is 07:00-16:00 UTC in summer and 08:00-17:00
// UTC in winter, and on the day clocks go back 02:00-03:00 occurs twice.
//
// # Actions
//
// then: is a list with one action per item. Entity-changing actions of one
// rule merge into one update_entity intent per target entity (connector,
// entity, reference); the others each make their own intent.
//
//	set_status: solved                  # also set_priority, set_owner, set_group, set_category, set_channel
//	set_owner: "{{ .Event.Actor.ID }}"  # values may be templates; null clears (not for status/priority)
//	set_fields: { group: tier2, custom.order_id: "%%ORDER_ID%%", custom.score: 5 }
//	add_tags: [abandoned_conversation]  # a tag or a list
//	remove_tags: spam
//	update_ticket:                      # Spoki's Update Ticket: a ticket found by reference
//	  reference: "%%TICKET_REFERENCE%%"  # required, at most 256 characters; a literal gets a warning
//	  status: in_progress                # at least one of status, priority, category, owner;
//	  owner: "{{ .Field \"owner\" }}"    # the omitted ones keep their current value
//	  connector: helpdesk                # optional: a ticket in another system (default: deliver_to or the event's)
//	call_webhook:                       # SmarterTrack's Call Web Page / Notify External Provider
//	  url: "https://ops.example.com/t/{{ .Event.Reference | pathescape }}?p={{ .Fields.priority | queryescape }}"
//	  method: POST                       # GET, POST (default), PUT, PATCH, DELETE
//	  headers: { X-Source: hookline }
//	  body: { ticket: "%%TICKET_REFERENCE%%", priority: "{{ .Fields.priority }}" }  # a mapping is sent as JSON; a string as is
//	send_message: "We are on it, {{ .Event.Actor.Name }}"   # or { text: ..., to: "%%PHONE%%" }
//	log: { file: /var/log/hookline/after-hours.log, line: "{{ .Event.Reference }} {{ .Fields.priority }}" }
//
// set_fields writes status, priority, owner, group, category, channel and
// custom.<name>. Literal values of enum fields (priority) must be values of
// the order. In one rule, a field is written once per target and a tag may
// not be both added and removed (config errors; at run time, two
// update_ticket actions that render the same reference with different
// values are a RuleError). Every intent carries RuleID, EventID, the
// event's Vars and Hops = the event's Causation.Hops + 1.
//
// # Templates
//
// Values may be Go text/template templates; %%NAME%% is shorthand for
// {{ .Var "NAME" }}. The data is TemplateData: .Event (the event), .Fields
// (the entity's fields, snapshot first; flat keys, so write
// {{ index .Fields "custom.x" }} for dotted names), .Snapshot, .Vars, .Now,
// .Rule (the rule id), and the methods .Var "NAME" (fails when the event has
// no such variable) and .Field "path" (any field a condition can read,
// absent renders ""). Functions: json, lower, upper, trim, default, join,
// split, contains, before, after, pathescape (text for one URL path
// segment: "/", "?", "#" are escaped and "." and ".." become %2E and
// %2E%2E) and queryescape (text for one URL query value). A missing map key
// is an error, never an empty string. A null field (one a change cleared:
// an unassigned ticket's owner) is absent: .Fields leaves it out (a
// missing key), .Field renders it "", and printing any value that is null
// or missing (index .Fields "custom.x", .Snapshot.Fields.owner) is an error
// too, never "<no value>"; write {{ .Field "owner" | default "nobody" }}
// for a fallback. eq, ne, lt, le, gt and ge compare numbers as numbers
// whatever their type (a field's 4 equals the literal 4; a numeric text
// compares with a number as that number) and never fail on mixed types: an
// empty value equals only "", and lt, le, gt and ge are false with it.
//
// A call_webhook url is checked at load: a substitution into its scheme or
// host ("https://{{ .Var "HOST" }}/x", or a URL that is all a template) is an
// error, since an event's value could then send the request anywhere (put a
// host set by the environment in ${VAR}); a substitution into the path that
// does not end in pathescape, or into the query that does not end in
// queryescape, is a warning: a reference like "../admin?x=1" would change
// which resource the request is for.
//
// At load, a template must parse; a misspelt member of .Event, .Snapshot or
// TemplateData is an error with the nearest name; and when Options.
// ConnectorVars is given and the rule has a connector filter, every
// %%VAR%% (and .Var "NAME") must be produced by the mapping of each filtered
// connector that ConnectorVars lists. At run
// time, a template error, an unknown variable, an empty or over-long
// update_ticket reference, a templated field value, tag, URL or
// send_message to, or a send_message text that renders empty (blank) makes the rule emit nothing: it is reported in Result.Errors (and its trace
// entry's error), never sent as an update with an empty value.
//
// # Evaluation
//
// Rules run in file order (files in the order given), each at most once per
// event. Actions of one rule do not change what later rules see for the
// same event: state changes come back as new events. For each rule that
// listens to the event (on and connector match), in order: a disabled
// rule, an echo of our own delivery (Causation.Echo or an actor of type
// gateway) unless on_own_changes: true, and an event at the hop limit are
// skipped; then the conditions are evaluated; then, if they hold,
// once_per_item (any entry in Snapshot.Fired), limit (item scope counts
// Snapshot.Fired, rule scope asks Input.RuleFirings) and the per-hour cap
// may still skip it; then its actions are rendered. A rule that fires adds
// a Firing of scope item (to append to Snapshot.Fired; keep at least one
// entry for once_per_item rules and an hour's for the cap) and, for a rule
// scope limit, one of scope rule (for the store).
//
// Set.Run runs one rule's actions for an entity regardless of its
// conditions and on; disabled, the hop limit and the limits still apply.
//
// # Trace
//
// Result.Trace has one entry per rule considered, in order. Only rules
// whose on and connector match the event are considered, so the trace stays
// small and rules filtered out by the index cost nothing. An entry says
// whether the rule matched (fired); if not, either why it was skipped
// ("disabled", "echo of our own delivery (on_own_changes: false)", "hop
// limit 5 reached", "once_per_item: already fired", "limit 1 per 24h
// reached", "firing cap 20/h reached (loop guard)"), or the first condition
// that failed: its text (`status is pending`), field, actual value and
// file:line:column. For a change operator the actual value is the change
// ({from, to}), or "unchanged: <value>" when the event does not change the
// field, and nil only when the field is absent. In an any: group that
// fails, the first branch's failure is reported; for a failed not:, the
// negated condition and its value. A rule whose actions failed carries the
// error.
//
// # Loop guards
//
//   - At load: a rule may not write a value that re-fires its own trigger.
//     The fields a rule watches are those of its changed and changed_to
//     conditions (outside not:) and those announced by an exact event type
//     in on: (*.status_changed: status, *.priority_changed: priority,
//     *.assigned: owner; its target values are those of a top-level is, in
//     or changed_to on the field). A watch without target values forbids
//     any write of the field (set_*, set_fields, update_ticket, add_tags and
//     remove_tags for tags); with targets, it forbids writing one of them,
//     or a template, which might render one. Writes to a connector outside
//     the rule's connector filter (deliver_to, update_ticket's connector)
//     are not counted. The error names the rule, the action and the
//     trigger with their positions. allow_retrigger: true with a limit opts out.
//   - At run time: echoes of our own deliveries are skipped unless
//     on_own_changes: true; events with Causation.Hops >= Options.MaxHops
//     (default 5) fire nothing; one rule fires at most
//     Options.MaxFiringsPerHour (default 20) times per entity per hour.
//
// # Performance
//
// Rules are indexed by exact event type, trailing-* prefix and other globs,
// then by connector; an event touches only the rules that listen to it.
// Condition evaluation allocates nothing (fields are read into a typed
// value without boxing, words matched without lowering copies), and simple
// templates (%%VAR%%, .Rule, .Event.X, .Fields.x, .Var, .Field) render
// without text/template. See the benchmarks in bench_test.go.
//
// # Time-based rules
//
// A rule with for: or idle: is time-based: events never fire it directly;
// they move its clock, and its timer fires it.
//
//	rules:
//	  - id: pending-too-long
//	    on: [ticket.*]                  # the events that start and re-arm the clock (any event can end it)
//	    when: { field: status, is: pending }
//	    for: 48h                        # when held continuously this long: fires once per episode
//	    pause_when: { field: status_category, is: snoozed }  # optional: the clock stops meanwhile
//	    calendar: support               # optional: count business hours only (gateway.yaml calendars:)
//	    then: [ { set_priority: high } ]
//	  - id: unanswered
//	    on: [ticket.*]
//	    when: { field: last_customer_message_at, after: last_agent_message_at }
//	    for: 4h                         # from the first unanswered message: follow-ups keep when true
//	    then: [ { set_priority: high } ]
//	  - id: customer-silent
//	    on: [chat.*]
//	    when: { field: last_agent_message_at, after: last_customer_message_at }
//	    since: last_agent_message_at    # for: measured from a snapshot timestamp
//	    for: 10m
//	    then: [ { set_status: solved } ]
//	  - id: chat-idle
//	    on: [chat.*]
//	    when: { field: status, is: active }
//	    idle: true                      # no event on the entity for ...
//	    within: [5m, 15m]               # ... a duration inside this window (fires at 5m)
//	    then: [ { set_group: rescue } ]
//
// Keys: for: D (when has held for D; with since: F, measured from the
// timestamp field F, and a new value of F that an event brings starts a
// new episode (not one that an echo of our own delivery brings, unless
// on_own_changes: true, nor the timer's own firing: the episode it fired
// stays spent), so
// "unanswered for 4h" is for: without since:, as since:
// last_customer_message_at would restart at each follow-up; F may hold
// an RFC 3339 time or, as a mapped occurred_at, Unix seconds or
// milliseconds as a number or a numeric text); idle: D
// (no event for D; every event that on: lists re-arms it, except echoes of
// our own deliveries unless on_own_changes: true, and events whose time is
// not after the clock's start: a delayed retry or an out-of-order webhook
// is no new activity, and after the rule fired it does not fire it
// again); within: [lo, hi] (the
// measured duration must be inside the window when the timer fires; with
// for: true or idle: true the timer fires at lo, else at the duration,
// which must lie inside the window; a timer that fires past hi, e.g. after
// the gateway was down, does not act); pause_when: a condition during
// which the clock stands still (Spotter's snoozed tickets: the time does
// not count); calendar: the name of an Options.Calendars calendar
// (ParseCalendars: an IANA zone, weekly hours, holidays), and then every
// duration counts business time only, daylight saving time included.
//
// Config errors: for: with idle:, since: with idle: or without for:, since:
// on a field that is not a timestamp, within: bounds in the wrong order or
// a duration outside them, time keys on a rule without for:/idle:, an
// unknown calendar (with the nearest name), durations over 366d, a for:
// or idle: duration more than the calendar is open in ten years (timers
// look no further: the rule could never fire; holidays count), on:
// manual or on: timer.fired, and conditions a timer cannot re-check
// (changed, changed_to, changed_from, not_changed, actor.*, vars.*,
// event.type: a timer.fired event changes nothing and has no actor).
//
// on: lists the events that start a clock and move it (re-arm, restart,
// pause, resume). Any other event of the entity (a timer.fired event of
// another rule excepted) only checks the clocks the entity has: a clock
// whose when: no longer holds (or whose rule is disabled) ends there, its
// timer cancelled, just as an event that on: lists would end it. So with
// on: [ticket.status_changed], a ticket that leaves pending through a
// ticket.updated and comes back through a status change starts a new
// episode, timed from its return, instead of finding the old one (spent,
// or running from the first start).
//
// The clock of one rule on one entity is an event.RuleClock in
// Snapshot.Clocks: Since (start of the episode), PausedAt, PausedTotal
// (business time paused) and Done (fired in this episode). The pipeline
// calls Set.Schedule after Evaluate for every event: it advances the clocks
// of the time-based rules that listen to the event, ends the entity's
// other clocks whose when: no longer holds, and returns TimerOps
// (arm, move, cancel) for the store, at most one timer per entity and rule,
// due when Since + duration + PausedTotal is reached on the calendar. A
// paused clock keeps a parked timer (TimerOp.Parked), due a year after the
// pause: it fires nothing (its firing re-checks pause_when and parks it
// again), but it lets a reload find the clock.
//
// When a timer comes due, the gateway runs a timer.fired event for the
// entity with Event.Rule set, once the webhooks it received before the due
// time have been processed (one still waiting in the inbox, behind a
// backlog or across a crash, may end the episode first). Evaluate then
// considers only that rule: its
// when is checked against the current snapshot, pause_when must not hold,
// and the clock (business time minus paused time) must have reached the
// duration (and be inside within:); then the clock is marked Done in
// in.Snapshot and the rule fires as usual (limits, once_per_item and the
// loop guards apply). A timer that comes too early is re-armed by Schedule;
// one whose rule no longer holds acts on nothing. Conditions that depend
// on the clock itself (time_of_day at the timer's due time, ages at now)
// are checked when the timer fires and not re-armed when they fail: the
// next event starts over. Time of day
// pauses are a calendar's job, not pause_when's.
//
// Timers armed under an earlier config follow edits: Set.TimingSignature
// changes whenever anything that places a clock or sets a due time changes
// (kind, duration, within:, since:, the calendar's name and definition,
// pause_when:, the connector filter); Set.Reclock brings a stored clock in
// line with the rule as now configured (ended when the connector filter
// leaves the entity out, restarted when its since: field moved, resumed or
// paused when pause_when changed), and Set.TimerDue gives the due time the
// rule gives it; the gateway moves or cancels armed timers with them after
// a reload or a restart.
package rules
