// Package mapping owns connector mappings: it compiles the `inbound.events`
// list of a connector file into a Mapper, a pure function from one payload to
// zero or more events of the common model (package event).
//
// The package does no I/O and reads no clock: the receive time comes in with
// the Input. A Mapper is immutable and safe for concurrent use.
//
// # Basics
//
// Compile checks the whole list at once and reports every problem as
// file:line:column: message, with the nearest valid name for a misspelt key,
// operator, path prefix, template method or variable. Map takes one payload
// (JSON; form posts arrive already converted to a JSON object) with its
// headers, query and receive time, and returns the events, without IDs.
//
// Every entry whose `match` holds produces its events, in file order, so one
// payload may feed several entries (a specific one and a catch-all, say).
// `stop: true` on an entry ends matching after it when its match held, even
// if its `each` found no element. Zero events and a nil error mean the
// payload is unmapped: the gateway keeps it and marks it so.
//
// # A full example
//
// The WhatsApp Cloud API posts entry[].changes[].value.messages[]; each
// message becomes one event that also needs data of its enclosing change:
//
//	inbound:
//	  events:
//	    - name: whatsapp-message           # used in errors; default "events[N]"
//	      match:                           # a list: all must hold
//	        - { path: object, equals: whatsapp_business_account }
//	        - { header: X-Hub-Signature-256, exists: true }
//	        - any:
//	            - { path: entry.0.changes.0.field, in: [messages] }
//	            - not: { query: debug, equals: "1" }
//	      each:                            # one event per message
//	        - entry
//	        - { path: changes, as: change }   # a named level: $change.
//	        - value.messages
//	      where: { path: type, not_in: [reaction, unsupported] }   # per element
//	      type: message.received           # a plain string is a constant here
//	      entity: message
//	      reference: id                    # a plain string is a path elsewhere
//	      occurred_at: timestamp
//	      actor:
//	        type: customer
//	        id: from
//	        name: { lookup: { in: $change.value.contacts, key: wa_id, equals: from, get: profile.name } }
//	      fields:
//	        channel: { value: whatsapp }
//	        text:
//	          template: '{{ with .Path "text.body" }}{{ . }}{{ else }}{{ .Path "interactive.button_reply.title" }}{{ end }}'
//	        message_type: { path: type, map: { text: text, interactive: button }, map_default: other }
//	        customer.phone: from
//	        customer.name: $parent.value.contacts.0.profile.name
//	        business.phone_number_id: $change.value.metadata.phone_number_id
//	        tags: { path: labels, default: [whatsapp] }
//	      vars:
//	        PHONE_NUMBER_ID: $change.value.metadata.phone_number_id
//	        REPLY_TO: "%%PHONE_NUMBER_ID%%:{{ .Path \"from\" }}"
//
//	    - name: zendesk-ticket-status
//	      match: { path: type, equals: "zen:event-type:ticket.status_changed" }
//	      type: ticket.status_changed
//	      entity: ticket
//	      reference: detail.id
//	      occurred_at: time
//	      fields:
//	        status: { path: event.current, map: { OPEN: open, PENDING: pending, SOLVED: solved } }
//	      changes:
//	        status: { from: event.previous }      # to: the status field; the field's map applies
//	      vars: { TICKET_REFERENCE: detail.id }
//	      stop: true
//
// # Entry keys
//
//   - name: the entry's name in errors; unique; default "events[N]".
//   - match: a condition (below) tested once per payload against the whole
//     payload; without it the entry always applies.
//   - each: fan out one event per element (below); without it the payload is
//     the one element.
//   - where: a condition tested per element (paths relative to the element).
//   - type, entity (required): a plain string is a constant; a value spec
//     mapping (or a template) makes them dynamic, e.g.
//     { path: event_type, default: generic.received }. Constants must not be
//     empty or contain spaces.
//   - reference (required): the platform's key of the entity, a value spec.
//     For a constant write { value: ... }.
//   - occurred_at: a value spec read as an RFC 3339 time (with or without
//     a fraction of a second) or a common variant of it: a space or a
//     lower-case t between date and time, an offset without a colon
//     (+0000) or of hours only (+02), also after a space, " UTC" for Z, no
//     seconds (2013-12-12T05:35Z, Zendesk's *_with_timestamp placeholders);
//     or Unix seconds, milliseconds, microseconds or nanoseconds (a number
//     or a numeric string; told apart by magnitude: below 1e11 seconds,
//     below 1e14 milliseconds, below 1e17 microseconds, else nanoseconds;
//     seconds may have a decimal fraction, kept exactly). A time without a
//     zone is not read (it would be taken for UTC by guess), nor a Unix
//     timestamp of zero or below (what payloads send for "not set"; a path
//     list, or a source with a fallback, moves past it as past an empty
//     value, so path: [updated_at, created_at] takes created_at when
//     updated_at is 0). Absent: the
//     receive time. Present but unreadable: the receive time, and a
//     Warning (MapWithWarnings) that the gateway keeps in the event's trace
//     and dry runs show. Times are UTC.
//   - actor: { type, id, name, email }; type is a constant when a plain string
//     (customer, agent, system or gateway), the others value specs. Every
//     actor type known at compile time (constants, map values, map_default,
//     default, through fallbacks) must be one of these, and gateway (which
//     marks Hookline's own changes: rules skip them) only a constant
//     actor.type. At run time an actor type the payload gave that is not
//     customer, agent or system (gateway included) is dropped with a
//     Warning: the event has no actor type.
//   - fields: flat dotted field name -> value spec, computed in file order.
//   - changes: field name -> { from, to }, each a value spec. A missing `to`
//     is the event's field of the same name; a side without its own `map`
//     uses the map (and map_default) of that field. A change is left out
//     when both sides are absent or both are equal.
//   - vars: NAME -> value spec, rendered as text, computed first and in file
//     order; they become the event's Vars (for %%NAME%% in later templates,
//     rules and outbound connectors). A var that resolves absent or empty is
//     left out.
//   - stop: true ends matching after this entry when its match held.
//
// # Paths
//
// Paths use gjson syntax (github.com/tidwall/gjson): `detail.id`,
// `entry.0.id`, `items.#.name` (an array of each item's name),
// `items.#(id==123).value` (a query), `tags.@reverse` (a modifier), and `\`
// to escape `.`, `*`, `?` and a leading `$` in a key. A path is relative to
// the current element (the payload when there is no each). Prefixes reach
// further:
//
//	$root.<path>          the whole payload
//	$parent.<path>        the element of the enclosing each level
//	$parent.$parent.<p>   two levels up (above the first level: the payload)
//	$<as>.<path>          the element of the each level named with `as`
//	$header.<Name>        the first value of a request header (any case)
//	$query.<name>         the first value of a query parameter
//
// A prefix alone ($root, $parent, $change) is that element itself. Match
// conditions are tested against the payload, so $parent and level names are
// not available there. Paths are checked when compiling: empty parts, a
// trailing separator, unbalanced queries or selectors, unknown modifiers and
// prefixes are errors.
//
// # Absent values
//
// A path that does not resolve is absent, never an error; JSON null counts as
// absent too, with one exception below. An absent field is left out of
// Fields, an absent var out of Vars, an absent actor part stays "".
// `default` replaces an absent value.
//
// The exception (a behaviour change: before, a null never reached the
// entity): a field whose spec is a plain single path (no path list,
// fallback, default, map or split) and that finds an explicit JSON null is
// present with the value nil, and so is a null member of an object a field
// flattens (custom: "@this" with {"owner": null} gives custom.owner nil).
// That is how a platform reports an unassigned ticket ("owner": null,
// Zendesk's detail.assignee_id: null): event.Apply then clears the
// entity's field as it does for an explicit change to null (the change
// old -> nil is recorded, the field kept as nil; a null for a field the
// entity never had records nothing and stores nothing). Everywhere else
// null stays absent: a path list moves on, fallback and default apply,
// .Path renders "", .Field renders a null field "" (.Fields leaves it
// out), match's exists is false, and a change whose to is a null field has
// an absent to.
//
// # Fan-out with each
//
// `each` is either one path whose `#` parts separate nested arrays,
//
//	each: entry.#.changes.#.value.messages
//
// which is the same as the list form `[entry, changes, value.messages]`, or a
// list of levels, each a path (relative to the previous level's element) or
// { path: ..., as: name }. A level's value is iterated when it is an array
// (nested arrays are flattened, up to 16 deep; nulls are skipped), taken as
// one element when it is anything else, and yields nothing when absent. In
// the string form a leading `#` iterates the payload itself (a payload that
// is an array), and in the list form `@this` stands for the previous element. With the three
// levels above, a message's $parent is its `changes[]` element (so
// $parent.value.metadata.phone_number_id) and $parent.$parent its `entry[]`
// element.
//
// # Value specs
//
// A value spec is where one value comes from:
//
//	text.body                              a path (a plain string)
//	'Order {{ .Path "order.id" }}'         a template (a plain string holding {{ or %%NAME%%)
//	{ path: event.current }                a path
//	{ path: [type, event, $query.event] }  a path list: the first path with a non-empty value
//	{ value: whatsapp }                    a constant (any YAML value, never a template)
//	{ template: "..." }                    a template
//	{ lookup: { in: $change.value.contacts, key: wa_id, equals: from, get: profile.name } }
//	                                       the element of a list whose key equals a value
//
// with, in the mapping form, these options, applied in this order: source,
// split, map (and map_default), fallback, default.
//
//   - path: [a, b, ...] takes the first path whose value is present and not
//     empty: absent paths, null, "", false, [] and {} are skipped (as a
//     template's {{ with .Path "a" }}...{{ else with .Path "b" }} skips
//     them); numbers, 0 included, are present. Any path form works in a
//     list, $header.Name and $query.name included. A list of one path is
//     that path with "" counting as absent. Unlike a template, which renders
//     text, the list gives the value itself (a number stays a number, an
//     object is flattened). The map applies to the value found; a value the
//     map drops does not move on to the next path.
//   - lookup: { in, key, equals, get } finds, in the list at path in (any
//     prefix but $header and $query; an object counts as a list of one),
//     the first element whose value at key (a path inside the element) has
//     the same text as the value at path equals (any prefix; the number 2
//     matches "2"), and gives that element's value at get (a path inside
//     it; without get, the element itself). It is absent when the value
//     sought is absent, empty or not a scalar, or no element matches. A
//     WhatsApp notification batches contacts[] and messages[]; each
//     message's sender is the contact whose wa_id is its from, which
//     contacts.0 is only for the first.
//   - fallback: another value spec (any form, with its own map, default and
//     fallback), evaluated only when the source gave nothing: absent, null,
//     empty ("", false, [], {} count as absent for a source with a
//     fallback), or dropped by the map. Use it to keep a template for the
//     rare case only: { path: entity, fallback: { template: ... } }. A plain
//     string there follows the key it sits under (a constant in type, entity
//     and actor.type). It needs path or template before it; with value it is
//     refused (a constant is never absent: use default).
//   - split: "," turns a text value into a list: split at the separator,
//     each part trimmed, empty parts dropped ("refund, vip" -> [refund,
//     vip]; nothing left is the empty list, so that removing the last tag
//     empties the entity's list, unless a fallback or default stands in;
//     in a path list, a path present with "" counts so when no later path
//     has a value). A list or any other value passes
//     through, so one spec takes a platform that sends tags as text and one
//     that sends a list.
//   - map: { FROM: to, ... } translates a scalar by its text (JSON 2 matches
//     the key 2, and so do 2.0 and 2e0, as references write them; true the
//     key true), and a list element by element (an
//     object passes through). A value
//     the map does not name passes through unchanged, unless map_default is
//     set, which replaces every unnamed value. Mapping to null drops the
//     value (it becomes absent). Map values must be scalars.
//   - map_default: the value for present values the map does not name.
//   - default: the value when the source is absent (also after a map dropped
//     it) and so is the fallback; it is not mapped.
//
// A bare number or boolean where a path is expected is an error (write
// { value: 1 } for a constant, or quote it for a path).
//
// Field values are normalized with event.Normalize: numbers are float64,
// string arrays []string, other arrays []any; a JSON object is flattened into
// dotted fields (`customer: requester` gives customer.name, customer.email;
// objects nested deeper than 8 levels stay map values).
// Text values (reference, vars, actor) keep the exact digits of JSON numbers,
// so a 64-bit id survives.
//
// # Templates
//
// Templates are Go text/template, compiled with internal/yamlconf: %%NAME%%
// is shorthand for {{ .Var "NAME" }}, and the functions of every Hookline
// template are available (yamlconf.TemplateFuncs): json, lower, upper,
// trim, default, join, split, contains, before, after, pathescape,
// queryescape, and the comparisons eq, ne, lt, le, gt, ge. The data offers:
//
//	.Path "p"     the value at p relative to the element (prefixes work); "" when absent
//	.Root "p"     the value at p in the whole payload; "" when absent
//	.Header "N"   the first value of a header; .Query "n" of a query parameter
//	.Var "NAME"   a var of this entry ("" when it resolved absent; an
//	              undefined name is an error)
//	.Field "f"    a field computed before this one; "" when absent or null
//	.Fields       the fields computed so far (.Fields.f fails when f is absent;
//	              prefer .Field "f")
//
// Numbers from .Path keep their digits (json.Number). Every template
// (here, in rules and in outbound actions) prints a whole number as plain
// digits, as references are written: 1000000 for a field of 1e6, never
// 1e+06; other numbers in their shortest form (0.25). A template that renders
// "" is absent. The comparisons eq, ne, lt, le, gt and ge take values as
// they come: a number from .Path equals the literal 4, a numeric text
// compares with a number as that number, and an absent value ("") is no
// error: it equals only "", and lt, le, gt and ge are false with it.
// Literal arguments are checked when compiling: .Path paths,
// .Var names (a var may only use vars defined before it), .Field names (a
// field defined above in fields, or a dotted name inside one; vars run
// before fields and see none; changes, type, reference, actor and the
// others see them all), and the names used on the data.
//
// # Conditions
//
// A condition is a leaf with one source (path, header or query) and one
// operator, or a tree: { all: [...] }, { any: [...] }, { not: condition }; a
// list means all. Operators:
//
//	equals: v        the value equals v (numbers and numeric strings compare
//	                 as numbers, lists as sets)
//	not_equals: v    not equals (true when absent)
//	in: [a, b]       equals one of the list; not_in: [...] the opposite (true when absent)
//	exists: bool     the value is present (not absent, not null)
//	matches: re      an RE2 regular expression matches the text (any element of a list)
//	contains: v      a substring of a string, or an element of a list
//
// Any operator but not_equals, not_in and exists: false is false for an absent value.
//
// # Errors at run time
//
// Map fails, returning no events, when the payload is not JSON (ErrNotJSON),
// a template fails (ErrTemplate), or an event's reference, type or entity
// resolves absent or empty (ErrNoReference, ErrNoType). The error names the
// entry, the element and the field:
//
//	mapping entry "whatsapp-status" at entry[0].changes[0].value.statuses[0],
//	reference: path "id" is absent or empty: mapping: event reference is absent
//
// An event is never emitted without a reference. Failing the whole payload,
// rather than skipping that element, is deliberate: the pipeline handles a
// payload in one transaction, and a failed inbox item with this reason is
// visible in the admin API and can be replayed once the mapping is fixed,
// whereas a skipped element would be lost without a trace.
//
// An event keeps as Raw the JSON it was mapped from: an event of an entry
// without each the whole body (one copy shared by every such event of the
// payload), an event of an each entry the element that produced it (its
// innermost level's element), so that a payload fanned out to many events
// is not kept once per event. The gateway keeps the whole body in the
// event's inbox item.
package mapping
