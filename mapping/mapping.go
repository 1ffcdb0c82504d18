package mapping

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/hookline/hookline/event"
)

// Input is one received payload with the request data mappings may read.
type Input struct {
	// Body is the payload as JSON (form posts were converted to a JSON object).
	Body []byte
	// Header holds the request headers under canonical MIME keys (net/textproto).
	Header map[string][]string
	// Query holds the URL query parameters.
	Query map[string][]string
	// ReceivedAt is when the gateway accepted the request; it becomes the
	// events' ReceivedAt, and their OccurredAt when the payload has no time.
	ReceivedAt time.Time
}

// Mapper is a compiled `inbound.events` list. It is immutable and safe for
// concurrent use.
type Mapper struct {
	connector string
	entries   []*entry
	vars      []string
	types     []string
	typesOpen bool // an entry's type is not known at compile time
	tmpls     []*tmpl
	maxEvents int // 0: DefaultMaxEvents
	maxFields int // 0: DefaultMaxFields
	// derived is what fields declare with derived_from: field -> source.
	derived map[string]string
}

// DerivedFrom names the field a field of this connector is derived from:
// one its fields declare with derived_from, or one of the common model's
// (event.DerivedFrom). A change to a derived field rides with a change to
// its source: an echo that carries it is still an echo.
func (m *Mapper) DerivedFrom(field string) (source string, ok bool) {
	if source, ok = m.derived[field]; ok {
		return source, true
	}
	return event.DerivedFrom(field)
}

// DefaultMaxEvents is how many events one payload may map to unless the
// connector sets inbound.max_events.
const DefaultMaxEvents = 1000

// WithMaxEvents returns a copy of m that refuses payloads mapping to more
// than n events (n < 1: DefaultMaxEvents). m itself is unchanged.
func (m *Mapper) WithMaxEvents(n int) *Mapper {
	c := *m
	c.maxEvents = max(n, 0)
	return &c
}

// MaxEvents returns how many events one payload may map to.
func (m *Mapper) MaxEvents() int {
	if m.maxEvents < 1 {
		return DefaultMaxEvents
	}
	return m.maxEvents
}

// DefaultMaxFields is how many fields one event may have unless the
// connector sets inbound.max_fields.
const DefaultMaxFields = 1000

// WithMaxFields returns a copy of m that refuses payloads mapping to an
// event of more than n fields (n < 1: DefaultMaxFields). m itself is
// unchanged.
func (m *Mapper) WithMaxFields(n int) *Mapper {
	c := *m
	c.maxFields = max(n, 0)
	return &c
}

// MaxFields returns how many fields one event may have.
func (m *Mapper) MaxFields() int {
	if m.maxFields < 1 {
		return DefaultMaxFields
	}
	return m.maxFields
}

// entry is one compiled item of `inbound.events`.
type entry struct {
	name   string
	match  *cond // evaluated once per payload, against the root
	where  *cond // evaluated per element
	levels []level
	scope  scope

	typ, entity, reference, occurredAt *spec
	actor                              actorSpecs
	fields                             []namedSpec
	changes                            []changeSpec
	vars                               []namedSpec
	varNames                           []string

	// tmplPaths holds the literal .Path arguments of this entry's templates,
	// compiled once.
	tmplPaths map[string]*pathRef
	stop      bool
}

// level is one step of an entry's `each`.
type level struct {
	path string // relative to the previous level's element; "" is that element
	name string // the `as` name, or ""
}

type namedSpec struct {
	name string
	spec *spec
}

type changeSpec struct {
	name     string
	from, to *spec // to nil: the event's field of the same name
}

type actorSpecs struct {
	typ, id, name, email *spec
}

// Map turns one payload into events (without IDs). Every entry whose match
// holds produces its events, in file order, until an entry with `stop: true`
// matched. Zero events and a nil error mean the payload is unmapped.
//
// Map returns an error only when the payload is not JSON (ErrNotJSON), a
// template fails at run time (ErrTemplate), an event's reference, type or
// entity resolves absent (ErrNoReference, ErrNoType), or the payload maps to
// too many events or an event with too many fields (ErrTooManyEvents,
// ErrTooManyFields); the error names the entry, the element and the field,
// and no events are returned with it.
func (m *Mapper) Map(in Input) ([]*event.Event, error) {
	events, _, err := m.MapWithWarnings(in)
	return events, err
}

// Warning is a problem of one mapped event that did not stop it, such as
// an occurred_at that is not a time (the event takes its receive time).
// Event is the event's index in the events mapped.
type Warning struct {
	Event   int
	Message string
}

// MapWithWarnings is Map that also returns the warnings of the events it
// mapped (none with an error), for the gateway to keep with each event and
// for dry runs to show.
func (m *Mapper) MapWithWarnings(in Input) ([]*event.Event, []Warning, error) {
	if !gjson.ValidBytes(in.Body) {
		return nil, nil, fmt.Errorf("%w (%d bytes)", ErrNotJSON, len(in.Body))
	}
	st := &state{in: &in, root: gjson.Parse(string(in.Body))}
	var out []*event.Event
	// Past the cap, elements are only counted (matched, not built), so the
	// error can say how many events the payload holds.
	limit, count := m.MaxEvents(), 0
	maxFields := m.MaxFields()
	for _, e := range m.entries {
		st.e = e
		if e.match != nil && !e.match.eval(st) {
			continue
		}
		if n := len(e.levels); cap(st.elems) < n {
			st.elems, st.idx, st.stamps = make([]gjson.Result, n), make([][]int, n), make([]uint64, n)
		} else {
			st.elems, st.idx, st.stamps = st.elems[:n], st.idx[:n], st.stamps[:n]
		}
		err := e.walk(st, 0, st.root, func() error {
			if e.where != nil && !e.where.eval(st) {
				return nil
			}
			if count++; count > limit {
				return nil
			}
			st.event = len(out)
			ev, err := e.build(m.connector, st)
			if err != nil {
				return err
			}
			if n := len(ev.Fields); n > maxFields {
				return fmt.Errorf("%w: mapping entry %q%s maps an event of %d fields, more than the cap of %d (inbound.max_fields of connector %s); nothing was mapped",
					ErrTooManyFields, e.name, e.position(st), n, maxFields, m.connector)
			}
			if n := len(e.levels); n > 0 {
				// A fanned-out event keeps the element that produced it (a
				// copy: the string is the body's), not the whole payload:
				// the events of one payload would otherwise store it once
				// each.
				ev.Raw = json.RawMessage(st.elems[n-1].Raw)
			}
			out = append(out, ev)
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
		if e.stop {
			break
		}
	}
	if count > limit {
		return nil, nil, fmt.Errorf("%w: the payload maps to %d events, more than the cap of %d (inbound.max_events of connector %s); nothing was mapped", ErrTooManyEvents, count, limit, m.connector)
	}
	// One copy of the body, shared by the events mapped from the whole
	// payload (entries without each): the caller's buffer may be reused
	// (Fiber) or transaction-bound (bbolt).
	var body json.RawMessage
	for _, ev := range out {
		if ev.Raw == nil {
			if body == nil {
				body = bytes.Clone(in.Body)
			}
			ev.Raw = body
		}
	}
	return out, st.warnings, nil
}

// Vars returns the %%NAME%% variable names the mappings can produce, sorted.
func (m *Mapper) Vars() []string { return append([]string(nil), m.vars...) }

// Types returns the event types the mappings can produce that are known at
// compile time, sorted: constant types, and every outcome of a dynamic type
// whose map has a map_default (a closed set). An entry whose type is open (a
// path without map_default, a template) adds nothing.
func (m *Mapper) Types() []string { return append([]string(nil), m.types...) }

// TypesClosed reports whether Types lists every event type the mappings
// can produce: no entry takes its type from the payload without a closed
// map (a path without map_default, a template).
func (m *Mapper) TypesClosed() bool { return !m.typesOpen }

// walk calls fn once per element of the entry's each levels (once with no
// levels), with st.elems holding the element of every level.
func (e *entry) walk(st *state, k int, base gjson.Result, fn func() error) error {
	if k == len(e.levels) {
		return fn()
	}
	v := base
	if p := e.levels[k].path; p != "" {
		if base.Type != gjson.JSON {
			return nil
		}
		v = base.Get(p)
	}
	// st.idx[k] holds the element's index in its array and, for arrays
	// nested in it, in each inner one: nulls skipped and arrays flattened
	// still leave messages name the element by its place in the payload.
	st.idx[k] = st.idx[k][:0]
	var err error
	var visit func(x gjson.Result, nest int) bool
	visit = func(x gjson.Result, nest int) bool {
		switch {
		case x.Type == gjson.Null:
			return true
		case x.IsArray():
			if nest < maxArrayNesting {
				i := 0
				x.ForEach(func(_, el gjson.Result) bool {
					st.idx[k] = append(st.idx[k][:nest], i)
					i++
					return visit(el, nest+1)
				})
			}
			return err == nil
		}
		st.idx[k] = st.idx[k][:nest]
		st.elems[k] = x
		st.gen++
		st.stamps[k] = st.gen
		err = e.walk(st, k+1, x, fn)
		return err == nil
	}
	visit(v, 0)
	return err
}

// maxArrayNesting bounds how deep each flattens arrays nested in arrays:
// deeper ones yield no elements. Real payloads nest two or three deep; the
// bound keeps a hostile payload of a million brackets from costing
// quadratic time.
const maxArrayNesting = 16

// build makes the event for the current element.
func (e *entry) build(connector string, st *state) (*event.Event, error) {
	st.vars, st.fields = nil, make(map[string]any, len(e.fields))
	if len(e.vars) > 0 {
		st.vars = make(map[string]string, len(e.vars))
		for _, v := range e.vars {
			val, ok, err := v.spec.eval(st)
			if err != nil {
				return nil, e.fail(st, v.spec.where, err)
			}
			if s := toString(val); ok && s != "" {
				st.vars[v.name] = s
			}
		}
	}
	for _, f := range e.fields {
		if f.spec.direct() {
			if !putResult(st.fields, f.name, st.result(f.spec.ref), f.spec.ref.mayBreak, f.spec.keepsNull()) && f.spec.hasDef {
				putField(st.fields, f.name, f.spec.def)
			}
			continue
		}
		val, ok, err := f.spec.eval(st)
		if err != nil {
			return nil, e.fail(st, f.spec.where, err)
		}
		if ok {
			putField(st.fields, f.name, val)
		} else if f.spec.keepsNull() && isNull(st.result(f.spec.ref)) {
			// A plain path above the element (not the fast path).
			st.fields[f.name] = nil
		}
	}
	ev := &event.Event{Connector: connector, ReceivedAt: st.in.ReceivedAt, Fields: st.fields}
	for _, c := range e.changes {
		from, fromOK, err := c.from.eval(st)
		if err != nil {
			return nil, e.fail(st, c.from.where, err)
		}
		var to any
		toOK := false
		if c.to != nil {
			if to, toOK, err = c.to.eval(st); err != nil {
				return nil, e.fail(st, c.to.where, err)
			}
		} else {
			// The event's field; a null one (cleared) is an absent to.
			to, toOK = st.fields[c.name]
			toOK = toOK && to != nil
		}
		if fromOK {
			from = event.Normalize(from)
		}
		if toOK {
			to = event.Normalize(to)
		}
		if (!fromOK && !toOK) || (fromOK && toOK && event.Equal(from, to)) {
			continue
		}
		if ev.Changes == nil {
			ev.Changes = make(map[string]event.Change, len(e.changes))
		}
		ev.Changes[c.name] = event.Change{From: from, To: to}
	}
	var err error
	if ev.Type, err = e.required(st, e.typ, ErrNoType); err != nil {
		return nil, err
	}
	if ev.Entity, err = e.required(st, e.entity, ErrNoType); err != nil {
		return nil, err
	}
	if ev.Reference, err = e.required(st, e.reference, ErrNoReference); err != nil {
		return nil, err
	}
	ev.OccurredAt = st.in.ReceivedAt
	if e.occurredAt != nil {
		v, ok, err := e.occurredAt.eval(st)
		if err != nil {
			return nil, e.fail(st, e.occurredAt.where, err)
		}
		if t, good := parseTime(v); ok && good {
			ev.OccurredAt = t
		} else if ok {
			// Not silent: the gateway keeps the warning in the event's
			// trace and dry runs show it.
			st.warn(fmt.Sprintf("mapping entry %q%s, %s: %s is not a time Hookline reads (RFC 3339, or Unix seconds or milliseconds); the event took the time it was received",
				e.name, e.position(st), e.occurredAt.where, quoteValue(v)))
		}
	}
	if s := e.actor.typ; s != nil {
		v, ok, err := s.eval(st)
		if err != nil {
			return nil, e.fail(st, s.where, err)
		}
		if ok {
			ev.Actor.Type = e.actorType(st, v)
		}
	}
	for _, a := range []struct {
		s   *spec
		dst *string
	}{{e.actor.id, &ev.Actor.ID}, {e.actor.name, &ev.Actor.Name}, {e.actor.email, &ev.Actor.Email}} {
		if a.s == nil {
			continue
		}
		v, ok, err := a.s.eval(st)
		if err != nil {
			return nil, e.fail(st, a.s.where, err)
		}
		if ok {
			*a.dst = toString(v)
		}
	}
	if len(st.vars) > 0 {
		ev.Vars = st.vars
	}
	return ev, nil
}

// actorType checks an actor type the entry's actor.type resolved to: one
// the event model does not know, or gateway (Hookline's own changes, which
// rules skip) from anything but a constant actor.type, is dropped with a
// warning, and the event has no actor type.
func (e *entry) actorType(st *state, v any) string {
	t := strings.TrimSpace(toString(v))
	switch {
	case t == event.ActorGateway && e.actor.typ.kind != specConst:
		st.warn(fmt.Sprintf("mapping entry %q%s, %s: the payload gave actor type %q, which only Hookline's own changes may have; the event has no actor type",
			e.name, e.position(st), e.actor.typ.where, t))
		return ""
	case t != "" && !slices.Contains(actorTypes, t):
		st.warn(fmt.Sprintf("mapping entry %q%s, %s: %s is not an actor type (customer, agent, system); the event has no actor type",
			e.name, e.position(st), e.actor.typ.where, quoteValue(v)))
		return ""
	}
	return t
}

// warn records a warning of the event being built.
func (st *state) warn(msg string) {
	st.warnings = append(st.warnings, Warning{Event: st.event, Message: msg})
}

// maxQuoted bounds how much of a value a warning quotes.
const maxQuoted = 80

// quoteValue renders a resolved value for a message: text quoted, anything
// else as event text, both cut at maxQuoted bytes.
func quoteValue(v any) string {
	s, isText := v.(string)
	if !isText {
		s = toString(v)
	}
	if len(s) > maxQuoted {
		s = strings.ToValidUTF8(s[:maxQuoted], "") + "..."
	}
	if isText {
		return strconv.Quote(s)
	}
	return s
}

// required evaluates a spec whose value an event cannot do without.
func (e *entry) required(st *state, s *spec, sentinel error) (string, error) {
	v, ok, err := s.eval(st)
	if err != nil {
		return "", e.fail(st, s.where, err)
	}
	out := ""
	if ok {
		out = strings.TrimSpace(toString(v))
	}
	if out == "" {
		return "", e.fail(st, s.where, fmt.Errorf("%s: %w", s.absentReason(), sentinel))
	}
	return out, nil
}

// fail wraps err with the entry, the element and the field it concerns.
func (e *entry) fail(st *state, where string, err error) error {
	return fmt.Errorf("mapping entry %q%s, %s: %w", e.name, e.position(st), where, err)
}

// position renders the current element as "entry[0].changes[1].value.messages[0]".
func (e *entry) position(st *state) string {
	if len(e.levels) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(" at ")
	for k, l := range e.levels {
		if k > 0 && l.path != "" {
			b.WriteByte('.')
		}
		b.WriteString(l.path)
		if len(st.idx[k]) == 0 {
			b.WriteString("[0]") // an object where a list may be: a list of one
		}
		for _, i := range st.idx[k] {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(i))
			b.WriteByte(']')
		}
	}
	return b.String()
}

// absentReason says, for messages, that a spec's source gave nothing:
// `path "detail.id" is absent or empty`, `paths "reference", "id" are all
// absent or empty`, with " (and its fallback)" when it has one.
func (s *spec) absentReason() string {
	var d string
	switch s.kind {
	case specPath:
		d = fmt.Sprintf("path %q is absent or empty", s.ref.src)
	case specPaths:
		var b strings.Builder
		b.WriteString("paths ")
		for i, r := range s.refs {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(strconv.Quote(r.src))
		}
		b.WriteString(" are all absent or empty")
		d = b.String()
	case specTemplate:
		d = "template result is absent or empty"
	case specLookup:
		d = fmt.Sprintf("lookup in %q found no element whose %q equals %q", s.lookup.in.src, s.lookup.key, s.lookup.equals.src)
		if s.lookup.get != "" {
			d += fmt.Sprintf(", or its %q is absent or empty", s.lookup.get)
		}
	default:
		d = "value is absent or empty"
	}
	if s.fallback != nil {
		d += " (and so is its fallback)"
	}
	return d
}

// state is the evaluation context of one payload; it is also the data
// templates see (its exported methods).
type state struct {
	in     *Input
	root   gjson.Result
	e      *entry
	elems  []gjson.Result
	idx    [][]int
	vars   map[string]string
	fields map[string]any

	// stamps[k] changes whenever the element of level k does (gen counts);
	// cache holds values of shared paths with the stamp they were read at.
	stamps []uint64
	gen    uint64
	cache  map[*pathRef]cached
	// rootRefs holds the paths .Root was called with during this Map.
	rootRefs map[string]*pathRef
	// event is the index of the event being built; warnings are those of
	// the events built so far.
	event    int
	warnings []Warning
}

// cached is a shared path's value read under one level element.
type cached struct {
	stamp uint64
	v     any
	ok    bool
}

// resolve returns the value a compiled path points at.
func (st *state) resolve(r *pathRef) (any, bool) {
	switch r.base {
	case baseHeader:
		return st.header(r.name)
	case baseQuery:
		if vs := st.in.Query[r.name]; len(vs) > 0 {
			return vs[0], true
		}
		return nil, false
	}
	if !r.shared {
		return st.lookup(r)
	}
	var stamp uint64 // the payload's stamp: it never changes within Map
	if r.base == baseLevel {
		stamp = st.stamps[r.level]
	}
	if c, hit := st.cache[r]; hit && c.stamp == stamp {
		return c.v, c.ok
	}
	v, ok := st.lookup(r)
	if st.cache == nil {
		st.cache = make(map[*pathRef]cached)
	}
	st.cache[r] = cached{stamp: stamp, v: v, ok: ok}
	return v, ok
}

// lookup reads a path of the payload or of a level element.
func (st *state) lookup(r *pathRef) (any, bool) {
	b := st.root
	if r.base == baseLevel {
		b = st.elems[r.level]
	}
	if r.path == "" {
		return resultValue(b)
	}
	if b.Type != gjson.JSON {
		return nil, false
	}
	return resultValue(b.Get(r.path))
}

func (st *state) header(name string) (any, bool) {
	if vs, ok := st.in.Header[name]; ok && len(vs) > 0 {
		return vs[0], true
	}
	for k, vs := range st.in.Header {
		if strings.EqualFold(k, name) && len(vs) > 0 {
			return vs[0], true
		}
	}
	return nil, false
}

// Path returns the value at path p relative to the element (the $ prefixes
// work as in YAML paths); an absent value is "". Numbers keep their digits
// (json.Number).
func (st *state) Path(p string) (any, error) {
	ref, ok := st.e.tmplPaths[p]
	if !ok {
		var err error
		if ref, err = parsePath(p, st.e.scope); err != nil {
			return nil, fmt.Errorf("path %q: %v", p, err)
		}
		ref.shared = false // a fresh pointer per call: not worth caching
	}
	if v, ok := st.resolve(ref); ok {
		return v, nil
	}
	return "", nil
}

// Root returns the value at path p of the whole payload; absent is "".
func (st *state) Root(p string) (any, error) {
	ref, seen := st.rootRefs[p]
	if !seen {
		if p != "" {
			if err := checkGJSON(p); err != nil {
				return nil, fmt.Errorf("root path %q: %v", p, err)
			}
		}
		ref = &pathRef{src: p, base: baseRoot, path: p, shared: true}
		if st.rootRefs == nil {
			st.rootRefs = make(map[string]*pathRef)
		}
		st.rootRefs[p] = ref
	}
	if v, ok := st.resolve(ref); ok {
		return v, nil
	}
	return "", nil
}

// Header returns the first value of a request header, or "".
func (st *state) Header(name string) string {
	v, _ := st.header(textproto.CanonicalMIMEHeaderKey(name))
	s, _ := v.(string)
	return s
}

// Query returns the first value of a query parameter, or "".
func (st *state) Query(name string) string {
	if vs := st.in.Query[name]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// Var returns a variable of this entry ("" when it resolved absent); a name
// the entry does not define is an error.
func (st *state) Var(name string) (string, error) {
	for _, n := range st.e.varNames {
		if n == name {
			return st.vars[name], nil
		}
	}
	return "", fmt.Errorf("unknown variable %q (this entry defines: %s)", name, strings.Join(st.e.varNames, ", "))
}

// Field returns a field computed so far (fields are computed in file order),
// or "" when it is absent or null.
func (st *state) Field(name string) any {
	if v, ok := st.fields[name]; ok && v != nil {
		return v
	}
	return ""
}

// Fields returns the fields computed so far, null ones left out (as the
// rules' .Fields leaves out a cleared field).
func (st *state) Fields() map[string]any {
	for _, v := range st.fields {
		if v == nil {
			out := make(map[string]any, len(st.fields))
			for k, v := range st.fields {
				if v != nil {
					out[k] = v
				}
			}
			return out
		}
	}
	return st.fields
}
