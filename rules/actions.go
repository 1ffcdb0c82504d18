package rules

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/internal/yamlconf"
	"gopkg.in/yaml.v3"
)

// actKind is a compiled action's kind.
type actKind uint8

const (
	actSet actKind = iota // set_status .. set_channel, set_fields
	actAddTags
	actRemoveTags
	actUpdateTicket
	actWebhook
	actMessage
	actLog
)

// setActions maps the single-field set actions to the field they write.
var setActions = map[string]string{
	"set_status":   event.FieldStatus,
	"set_priority": event.FieldPriority,
	"set_owner":    event.FieldOwner,
	"set_group":    event.FieldGroup,
	"set_category": event.FieldCategory,
	"set_channel":  event.FieldChannel,
}

// actionNames lists every action key, sorted.
func actionNames() []string {
	names := []string{"set_fields", "add_tags", "remove_tags", "update_ticket", "call_webhook", "send_message", "log"}
	for k := range setActions {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// settableFields are the fields set_fields may write besides custom.<name>.
var settableFields = []string{"category", "channel", "group", "owner", "priority", "status"}

// singlePercentVar matches %NAME% written with single percent signs, a
// misspelling of the %%NAME%% variable shorthand that would otherwise send
// every update to a ticket literally named "%NAME%".
var singlePercentVar = regexp.MustCompile(`^\s*%([A-Za-z_][A-Za-z0-9_]*)%\s*$`)

// MaxReferenceLen is the longest reference update_ticket accepts (Spoki's limit).
const MaxReferenceLen = 256

// setOp writes one field.
type setOp struct {
	field string
	v     tval
	node  *yaml.Node
}

// action is one compiled action.
type action struct {
	kind actKind
	name string
	pos  yamlconf.Pos
	node *yaml.Node

	sets []setOp // actSet, actUpdateTicket
	tags []tval  // actAddTags, actRemoveTags

	ref       tval   // update_ticket
	connector string // update_ticket: another system's connector

	url, method tval // call_webhook
	headers     []header
	body        *tree

	text, to tval // send_message

	file, line tval // log
}

type header struct {
	name string
	v    tval
}

// tree is a structured call_webhook body whose string leaves may be templates.
type tree struct {
	leaf  *tval
	keys  []string
	vals  []*tree
	list  []*tree
	isMap bool
}

func (t *tree) render(d *TemplateData) (any, error) {
	switch {
	case t.leaf != nil:
		return t.leaf.render(d)
	case t.isMap:
		m := make(map[string]any, len(t.keys))
		for i, k := range t.keys {
			v, err := t.vals[i].render(d)
			if err != nil {
				return nil, err
			}
			m[k] = v
		}
		return m, nil
	}
	l := make([]any, 0, len(t.list))
	for _, e := range t.list {
		v, err := e.render(d)
		if err != nil {
			return nil, err
		}
		l = append(l, v)
	}
	return l, nil
}

// actions compiles a rule's `then` list.
func (c *compiler) actions(rc *ruleCtx, n *yaml.Node) []*action {
	n = yamlconf.Resolve(n)
	items := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		items = n.Content
	}
	if len(items) == 0 {
		c.errorf(rc.file, n, "rule %q: then: needs at least one action (%s)", rc.id, strings.Join(actionNames(), ", "))
		return nil
	}
	var out []*action
	for _, it := range items {
		it = yamlconf.Resolve(it)
		pairs := yamlconf.Pairs(it)
		if it.Kind != yaml.MappingNode || len(pairs) != 1 {
			c.errorf(rc.file, it, "expected one action per list item, like - set_status: solved (actions: %s)", strings.Join(actionNames(), ", "))
			continue
		}
		if a := c.action(rc, pairs[0]); a != nil {
			out = append(out, a)
		}
	}
	c.checkActionConflicts(rc, out)
	return out
}

func (c *compiler) action(rc *ruleCtx, kv yamlconf.KeyValue) *action {
	name, v := kv.Key.Value, kv.Value
	a := &action{name: name, pos: yamlconf.At(rc.file, kv.Key), node: kv.Key}
	file := rc.file
	if field, ok := setActions[name]; ok {
		a.kind = actSet
		op, ok := c.setOp(rc, field, v, name)
		if !ok {
			return nil
		}
		a.sets = []setOp{op}
		return a
	}
	switch name {
	case "set_fields":
		a.kind = actSet
		if v.Kind != yaml.MappingNode || len(v.Content) == 0 {
			c.errorf(file, v, "set_fields: expected a mapping of field: value (fields: %s, custom.<name>), got %s", strings.Join(settableFields, ", "), yamlconf.KindName(v))
			return nil
		}
		ok := true
		for _, fkv := range yamlconf.Pairs(v) {
			f := fkv.Key.Value
			if !isSettable(f) {
				c.errorf(file, fkv.Key, "set_fields: field %q cannot be set%s (fields: %s, custom.<name>)", f, yamlconf.DidYouMean(f, settableFields), strings.Join(settableFields, ", "))
				ok = false
				continue
			}
			op, good := c.setOp(rc, f, fkv.Value, "set_fields."+f)
			if !good {
				ok = false
				continue
			}
			op.node = fkv.Key
			a.sets = append(a.sets, op)
		}
		if !ok {
			return nil
		}
	case "add_tags", "remove_tags":
		a.kind = actAddTags
		if name == "remove_tags" {
			a.kind = actRemoveTags
		}
		items := []*yaml.Node{v}
		if v.Kind == yaml.SequenceNode {
			items = v.Content
		}
		if len(items) == 0 {
			c.errorf(file, v, "%s: expected a tag or a list of tags", name)
			return nil
		}
		for _, it := range items {
			it = yamlconf.Resolve(it)
			if it.Kind != yaml.ScalarNode || strings.TrimSpace(it.Value) == "" || it.Tag == "!!null" {
				c.errorf(file, it, "%s: expected a tag, got %s", name, yamlconf.KindName(it))
				return nil
			}
			tv, ok := c.value(rc, it, name)
			if !ok {
				return nil
			}
			if !tv.isTemplate() {
				tv.lit = strings.TrimSpace(event.String(tv.lit))
			}
			a.tags = append(a.tags, tv)
		}
	case "update_ticket":
		a.kind = actUpdateTicket
		if !c.updateTicket(rc, v, a) {
			return nil
		}
	case "call_webhook":
		a.kind = actWebhook
		if !c.webhook(rc, v, a) {
			return nil
		}
	case "send_message":
		a.kind = actMessage
		if v.Kind == yaml.ScalarNode {
			tv, ok := c.textValue(rc, v, "send_message")
			if !ok {
				return nil
			}
			a.text = tv
			return a
		}
		var raw struct {
			Text *yaml.Node `yaml:"text,required"`
			To   *yaml.Node `yaml:"to"`
		}
		if errs := yamlconf.Decode(file, v, &raw); len(errs) > 0 {
			c.errs.Append(errs)
			return nil
		}
		var ok bool
		if a.text, ok = c.textValue(rc, raw.Text, "send_message.text"); !ok {
			return nil
		}
		if raw.To != nil {
			if a.to, ok = c.textValue(rc, raw.To, "send_message.to"); !ok {
				return nil
			}
		}
	case "log":
		a.kind = actLog
		var raw struct {
			File *yaml.Node `yaml:"file,required"`
			Line *yaml.Node `yaml:"line,required"`
		}
		if errs := yamlconf.Decode(file, v, &raw); len(errs) > 0 {
			c.errs.Append(errs)
			return nil
		}
		var ok1, ok2 bool
		a.file, ok1 = c.textValue(rc, raw.File, "log.file")
		a.line, ok2 = c.textValue(rc, raw.Line, "log.line")
		if !ok1 || !ok2 {
			return nil
		}
	default:
		c.errorf(file, kv.Key, "unknown action %q%s (actions: %s)", name, yamlconf.DidYouMean(name, actionNames()), strings.Join(actionNames(), ", "))
		return nil
	}
	return a
}

func isSettable(f string) bool {
	if strings.HasPrefix(f, "custom.") {
		return len(f) > len("custom.") && fieldPath.MatchString(f)
	}
	for _, s := range settableFields {
		if f == s {
			return true
		}
	}
	return false
}

// setOp compiles the value written to field.
func (c *compiler) setOp(rc *ruleCtx, field string, v *yaml.Node, what string) (setOp, bool) {
	v = yamlconf.Resolve(v)
	op := setOp{field: field, node: v}
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		if field == event.FieldStatus || field == event.FieldPriority {
			c.errorf(rc.file, v, "%s: %s cannot be cleared; give a value", what, field)
			return op, false
		}
		op.v = tval{pos: yamlconf.At(rc.file, v)}
		return op, true
	}
	if v.Kind != yaml.ScalarNode {
		if strings.HasPrefix(field, "custom.") {
			lit, err := yamlconf.ToValue(v) // bounded: MaxValueNodes

			if err != nil {
				c.errorf(rc.file, v, "%s: %v", what, err)
				return op, false
			}
			op.v = tval{lit: lit, pos: yamlconf.At(rc.file, v)}
			return op, true
		}
		c.errorf(rc.file, v, "%s: expected a value, got %s", what, yamlconf.KindName(v))
		return op, false
	}
	tv, ok := c.value(rc, v, what)
	if !ok {
		return op, false
	}
	if !tv.isTemplate() && c.enums[field] != nil {
		if !c.enumCheck(rc, v, field, v.Value) {
			return op, false
		}
	}
	op.v = tv
	return op, true
}

// textValue compiles a string that may be a template.
func (c *compiler) textValue(rc *ruleCtx, n *yaml.Node, what string) (tval, bool) {
	n = yamlconf.Resolve(n)
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		c.errorf(rc.file, n, "%s: expected text or a template, got %s", what, yamlconf.KindName(n))
		return tval{}, false
	}
	if yamlconf.IsTemplate(n.Value) {
		return c.template(rc, n, n.Value, what)
	}
	return tval{lit: n.Value, pos: yamlconf.At(rc.file, n)}, true
}

// updateTicket compiles Spoki-style update_ticket.
func (c *compiler) updateTicket(rc *ruleCtx, v *yaml.Node, a *action) bool {
	var raw struct {
		Reference *yaml.Node `yaml:"reference,required"`
		Status    *yaml.Node `yaml:"status"`
		Priority  *yaml.Node `yaml:"priority"`
		Category  *yaml.Node `yaml:"category"`
		Owner     *yaml.Node `yaml:"owner"`
		Connector *yaml.Node `yaml:"connector"`
	}
	if errs := yamlconf.Decode(rc.file, v, &raw); len(errs) > 0 {
		c.errs.Append(errs)
		return false
	}
	ok := true
	if raw.Connector != nil {
		if raw.Connector.Kind != yaml.ScalarNode || raw.Connector.Value == "" {
			c.errorf(rc.file, raw.Connector, "update_ticket.connector: expected a connector name, got %s", yamlconf.KindName(raw.Connector))
			ok = false
		} else {
			a.connector = raw.Connector.Value
			c.checkConnector(rc.file, raw.Connector, a.connector, "update_ticket.connector")
		}
	}
	ref := raw.Reference
	if ref.Kind != yaml.ScalarNode || strings.TrimSpace(ref.Value) == "" || ref.Tag == "!!null" {
		c.errorf(rc.file, ref, "update_ticket.reference: required; usually a variable like %%%%TICKET_REFERENCE%%%%, %%%%ORDER_ID%%%% or %%%%EMAIL%%%%")
		ok = false
	} else {
		tv, good := c.textValue(rc, ref, "update_ticket.reference")
		ok = ok && good
		a.ref = tv
		if !tv.isTemplate() {
			if len(ref.Value) > MaxReferenceLen {
				c.errorf(rc.file, ref, "update_ticket.reference: at most %d characters, got %d", MaxReferenceLen, len(ref.Value))
				ok = false
			}
			if m := singlePercentVar.FindStringSubmatch(ref.Value); m != nil {
				c.errorf(rc.file, ref, "update_ticket.reference %q is literal text; did you mean the variable %%%%%s%%%%?", ref.Value, m[1])
				ok = false
			} else {
				c.warns.Add(rc.file, ref, "update_ticket.reference %q is literal: every run updates the same ticket; use a variable like %%%%TICKET_REFERENCE%%%% for reliable matching", ref.Value)
			}
		}
	}
	for _, f := range []struct {
		name string
		n    *yaml.Node
	}{{event.FieldStatus, raw.Status}, {event.FieldPriority, raw.Priority}, {event.FieldCategory, raw.Category}, {event.FieldOwner, raw.Owner}} {
		if f.n == nil {
			continue
		}
		op, good := c.setOp(rc, f.name, f.n, "update_ticket."+f.name)
		if !good {
			ok = false
			continue
		}
		a.sets = append(a.sets, op)
	}
	if len(a.sets) == 0 && ok {
		c.errorf(rc.file, v, "update_ticket: set at least one of status, priority, category, owner (omitted ones keep their current value)")
		ok = false
	}
	return ok
}

var webhookMethods = []string{"DELETE", "GET", "PATCH", "POST", "PUT"}

// webhook compiles call_webhook.
func (c *compiler) webhook(rc *ruleCtx, v *yaml.Node, a *action) bool {
	var raw struct {
		URL     *yaml.Node `yaml:"url,required"`
		Method  *yaml.Node `yaml:"method"`
		Headers *yaml.Node `yaml:"headers"`
		Body    *yaml.Node `yaml:"body"`
	}
	if v.Kind == yaml.ScalarNode {
		raw.URL = v
	} else if errs := yamlconf.Decode(rc.file, v, &raw); len(errs) > 0 {
		c.errs.Append(errs)
		return false
	}
	ok := true
	var good bool
	if a.url, good = c.textValue(rc, raw.URL, "call_webhook.url"); !good {
		ok = false
	} else if a.url.isTemplate() {
		ok = c.checkWebhookURL(rc, yamlconf.Resolve(raw.URL), a.url.src)
	} else {
		u := event.String(a.url.lit)
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			c.errorf(rc.file, raw.URL, "call_webhook.url: expected an http:// or https:// URL, got %q", u)
			ok = false
		}
	}
	a.method = tval{lit: "POST"}
	if raw.Method != nil {
		m := strings.ToUpper(raw.Method.Value)
		if raw.Method.Kind != yaml.ScalarNode || !slices.Contains(webhookMethods, m) {
			c.errorf(rc.file, raw.Method, "call_webhook.method: unknown method %s%s (valid: %s)", yamlconf.KindName(raw.Method), yamlconf.DidYouMean(m, webhookMethods), strings.Join(webhookMethods, ", "))
			ok = false
		} else {
			a.method = tval{lit: m}
		}
	}
	if raw.Headers != nil {
		if raw.Headers.Kind != yaml.MappingNode {
			c.errorf(rc.file, raw.Headers, "call_webhook.headers: expected a mapping of header: value, got %s", yamlconf.KindName(raw.Headers))
			ok = false
		}
		for _, kv := range yamlconf.Pairs(raw.Headers) {
			tv, good := c.textValue(rc, kv.Value, "call_webhook.headers."+kv.Key.Value)
			if !good {
				ok = false
				continue
			}
			a.headers = append(a.headers, header{name: kv.Key.Value, v: tv})
		}
	}
	if raw.Body != nil {
		t, good := c.bodyTree(rc, raw.Body)
		ok = ok && good
		a.body = t
	}
	return ok
}

// bodyTree compiles a body: a string template is sent as it renders; a
// mapping or list is sent as JSON with its string leaves rendered.
func (c *compiler) bodyTree(rc *ruleCtx, n *yaml.Node) (*tree, bool) {
	n = yamlconf.Resolve(n)
	if !c.spend(rc, n) {
		return nil, false
	}
	switch n.Kind {
	case yaml.ScalarNode:
		tv, ok := c.value(rc, n, "call_webhook.body")
		return &tree{leaf: &tv}, ok
	case yaml.MappingNode:
		t := &tree{isMap: true}
		ok := true
		for _, kv := range yamlconf.Pairs(n) {
			sub, good := c.bodyTree(rc, kv.Value)
			ok = ok && good
			t.keys = append(t.keys, kv.Key.Value)
			t.vals = append(t.vals, sub)
		}
		return t, ok
	case yaml.SequenceNode:
		t := &tree{}
		ok := true
		for _, e := range n.Content {
			sub, good := c.bodyTree(rc, e)
			ok = ok && good
			t.list = append(t.list, sub)
		}
		return t, ok
	}
	c.errorf(rc.file, n, "call_webhook.body: unsupported value")
	return nil, false
}

// checkActionConflicts refuses, within one rule, two literal writes of
// different values to the same field of the event's entity, and a tag both
// added and removed.
func (c *compiler) checkActionConflicts(rc *ruleCtx, acts []*action) {
	type write struct {
		v   tval
		act *action
	}
	sets := map[string]write{}
	added := map[string]*action{}
	removed := map[string]*action{}
	for _, a := range acts {
		switch a.kind {
		case actSet:
			for _, op := range a.sets {
				if prev, ok := sets[op.field]; ok {
					if prev.v.isTemplate() || op.v.isTemplate() || !event.Equal(prev.v.lit, op.v.lit) {
						c.errorf(rc.file, op.node, "rule %q: %s writes %s again (first written by %s at %s); one rule writes a field once", rc.id, a.name, op.field, prev.act.name, prev.act.pos)
					}
					continue
				}
				sets[op.field] = write{op.v, a}
			}
		case actAddTags, actRemoveTags:
			mine, other := added, removed
			if a.kind == actRemoveTags {
				mine, other = removed, added
			}
			for _, t := range a.tags {
				if t.isTemplate() {
					continue
				}
				tag := strings.ToLower(event.String(t.lit))
				if o, ok := other[tag]; ok {
					c.errorf(rc.file, a.node, "rule %q: tag %q is both added and removed (%s at %s); the two would fight", rc.id, tag, o.name, o.pos)
				}
				mine[tag] = a
			}
		}
	}
}

// target identifies the entity an update_entity intent is for.
type target struct {
	connector, entity, reference string
}

// updates collects one rule's intents: update_entity intents are merged
// per target in the position of their first action.
type updates struct {
	r     *Rule
	ev    *event.Event
	out   []event.Update
	slots []target // slots[i] is the target of out[idx[i]]
	idx   []int
}

func (b *updates) base(kind string, t target) event.Update {
	return event.Update{Kind: kind, RuleID: b.r.ID, EventID: b.ev.ID, Connector: t.connector, Entity: t.entity,
		Reference: t.reference, Hops: b.ev.Causation.Hops + 1, Vars: b.ev.Vars}
}

// slot returns the update_entity intent for t, creating it on first use.
func (b *updates) slot(t target) *event.Update {
	for i, s := range b.slots {
		if s == t {
			return &b.out[b.idx[i]]
		}
	}
	b.slots = append(b.slots, t)
	b.idx = append(b.idx, len(b.out))
	b.out = append(b.out, b.base(event.KindUpdateEntity, t))
	return &b.out[len(b.out)-1]
}

// fire runs a rule's actions and returns the merged intents.
func (s *Set) fire(r *Rule, ev *event.Event, d *TemplateData) ([]event.Update, error) {
	d.Rule = r.ID
	conn := ev.Connector
	if r.DeliverTo != "" {
		conn = r.DeliverTo
	}
	own := target{connector: conn, entity: ev.Entity, reference: ev.Reference}
	b := &updates{r: r, ev: ev, out: make([]event.Update, 0, len(r.actions))}
	// redirected is the slot of an update of the event platform's entity t
	// that goes out through deliver_to: it reads that entity's snapshot.
	redirected := func(t target) *event.Update {
		u := b.slot(t)
		if conn != ev.Connector && ev.Connector != "" && u.StateOf == nil {
			u.StateOf = &event.EntityKey{Connector: ev.Connector, Entity: t.entity, Reference: t.reference}
		}
		return u
	}
	for _, a := range r.actions {
		switch a.kind {
		case actSet:
			if err := applySets(redirected(own), a, d); err != nil {
				return nil, err
			}
		case actAddTags, actRemoveTags:
			u := redirected(own)
			for _, tv := range a.tags {
				tag, err := tv.renderString(d)
				if err != nil {
					return nil, fmt.Errorf("%s at %s: %w", a.name, tv.pos, err)
				}
				tag = strings.TrimSpace(tag)
				if tag == "" {
					return nil, fmt.Errorf("%s at %s: the tag renders empty", a.name, tv.pos)
				}
				if a.kind == actAddTags {
					u.AddTags = appendUnique(u.AddTags, tag)
				} else {
					u.RemoveTags = appendUnique(u.RemoveTags, tag)
				}
			}
		case actUpdateTicket:
			ref, err := a.ref.renderString(d)
			if err != nil {
				return nil, fmt.Errorf("update_ticket.reference at %s: %w", a.ref.pos, err)
			}
			ref = strings.TrimSpace(ref)
			if ref == "" {
				return nil, fmt.Errorf("update_ticket.reference at %s: %w: the template rendered nothing, no update is sent", a.ref.pos, ErrEmptyReference)
			}
			if len(ref) > MaxReferenceLen {
				return nil, fmt.Errorf("update_ticket.reference at %s: %d characters, at most %d allowed", a.ref.pos, len(ref), MaxReferenceLen)
			}
			u := redirected // the event platform's ticket, through deliver_to
			tc := conn
			if a.connector != "" {
				tc, u = a.connector, b.slot // that connector's own ticket
			}
			if err := applySets(u(target{connector: tc, entity: "ticket", reference: ref}), a, d); err != nil {
				return nil, err
			}
		case actWebhook:
			u := b.base(event.KindCallWebhook, own)
			call := &event.WebhookCall{Method: event.String(a.method.lit)}
			var err error
			if call.URL, err = a.url.renderString(d); err != nil {
				return nil, fmt.Errorf("call_webhook.url at %s: %w", a.url.pos, err)
			}
			if call.URL == "" {
				return nil, fmt.Errorf("call_webhook.url at %s: the URL renders empty", a.url.pos)
			}
			for _, h := range a.headers {
				v, err := h.v.renderString(d)
				if err != nil {
					return nil, fmt.Errorf("call_webhook.headers.%s at %s: %w", h.name, h.v.pos, err)
				}
				if call.Headers == nil {
					call.Headers = map[string]string{}
				}
				call.Headers[h.name] = v
			}
			if a.body != nil {
				if call.Body, err = renderBody(a.body, d); err != nil {
					return nil, fmt.Errorf("call_webhook.body at %s: %w", a.pos, err)
				}
			}
			u.Webhook = call
			b.out = append(b.out, u)
		case actMessage:
			u := b.base(event.KindSendMessage, own)
			msg := &event.Message{}
			var err error
			if msg.Text, err = a.text.renderString(d); err != nil {
				return nil, fmt.Errorf("send_message.text at %s: %w", a.text.pos, err)
			}
			if strings.TrimSpace(msg.Text) == "" {
				return nil, fmt.Errorf("send_message.text at %s: the text renders empty, no message is sent", a.text.pos)
			}
			if a.to.lit != nil || a.to.isTemplate() {
				if msg.To, err = a.to.renderString(d); err != nil {
					return nil, fmt.Errorf("send_message.to at %s: %w", a.to.pos, err)
				}
				// A message without a recipient goes to the conversation's
				// customer: an internal note must never reach them by accident.
				if msg.To = strings.TrimSpace(msg.To); msg.To == "" {
					return nil, fmt.Errorf("send_message.to at %s: the recipient renders empty, no message is sent (the connector would send it to the customer)", a.to.pos)
				}
			}
			u.Message = msg
			b.out = append(b.out, u)
		case actLog:
			u := b.base(event.KindLog, own)
			line := &event.LogLine{}
			var err error
			if line.File, err = a.file.renderString(d); err != nil {
				return nil, fmt.Errorf("log.file at %s: %w", a.file.pos, err)
			}
			if line.Line, err = a.line.renderString(d); err != nil {
				return nil, fmt.Errorf("log.line at %s: %w", a.line.pos, err)
			}
			u.Log = line
			b.out = append(b.out, u)
		}
	}
	for i := range b.out {
		u := &b.out[i]
		for _, t := range u.AddTags {
			for _, x := range u.RemoveTags {
				if strings.EqualFold(t, x) {
					return nil, fmt.Errorf("tag %q is both added and removed for %s/%s/%s", t, u.Connector, u.Entity, u.Reference)
				}
			}
		}
	}
	return b.out, nil
}

// applySets writes an action's fields into u, refusing a second, different
// value for a field already written by this rule for the same target.
func applySets(u *event.Update, a *action, d *TemplateData) error {
	for _, op := range a.sets {
		v, err := op.v.render(d)
		if err != nil {
			return fmt.Errorf("%s (%s) at %s: %w", a.name, op.field, op.v.pos, err)
		}
		if op.v.isTemplate() {
			s := strings.TrimSpace(v.(string))
			if s == "" {
				return fmt.Errorf("%s (%s) at %s: the template renders empty; a rule does not write empty values by accident (write null to clear a field)", a.name, op.field, op.v.pos)
			}
			v = s
		}
		if u.Set == nil {
			u.Set = map[string]any{}
		}
		if prev, ok := u.Set[op.field]; ok && !event.Equal(prev, v) {
			return fmt.Errorf("%s at %s: %s is written twice with different values (%q and %q) for the same ticket", a.name, a.pos, op.field, event.String(prev), event.String(v))
		}
		u.Set[op.field] = v
	}
	return nil
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return list
		}
	}
	return append(list, s)
}

// renderBody renders a call_webhook body: a scalar as its text, a structure as JSON.
func renderBody(t *tree, d *TemplateData) (string, error) {
	v, err := t.render(d)
	if err != nil {
		return "", err
	}
	if t.leaf != nil {
		return event.String(v), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode JSON body: %w", err)
	}
	return string(b), nil
}

// EntityUpdate is what one action of a rule changes on an entity, as far
// as it is known at load, for checks that need the connectors (which rules
// does not know): can the target connector's actions carry it?
type EntityUpdate struct {
	Pos    yamlconf.Pos // the action
	Action string       // its key: set_status, set_fields, update_ticket, add_tags, ...
	// Connector is the target connector the action names
	// (update_ticket's connector); "" for the rule's deliver_to, else the
	// triggering event's connector.
	Connector string
	// Entity is the entity type updated ("ticket" for update_ticket); ""
	// for the triggering event's.
	Entity string
	Fields []string // the fields it sets
	Tags   bool     // it adds or removes tags
}

// EntityUpdates lists the entity updates of the rule's actions, in order.
func (r *Rule) EntityUpdates() []EntityUpdate {
	var out []EntityUpdate
	for _, a := range r.actions {
		eu := EntityUpdate{Pos: a.pos, Action: a.name}
		switch a.kind {
		case actSet, actUpdateTicket:
			for _, op := range a.sets {
				eu.Fields = append(eu.Fields, op.field)
			}
			if a.kind == actUpdateTicket {
				eu.Connector, eu.Entity = a.connector, "ticket"
			}
		case actAddTags, actRemoveTags:
			eu.Tags = true
		default:
			continue
		}
		out = append(out, eu)
	}
	return out
}
