package store

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/hookline/hookline/event"
)

// A hand-written JSON decoder for entity snapshots, the record the
// pipeline reads back for every event of a known entity. encoding/json
// spends most of its time on reflection and on building a map[string]any
// through reflect.Value; on the whole path with updates to existing
// tickets it took a quarter of the pipeline's time inside its
// transaction.
//
// The decoder only takes the fast path for JSON shaped as the store
// writes it (appendSnapshot): the keys it knows, each once, values of the
// types it expects, valid UTF-8. Anything else (an unknown or
// differently-cased key, a duplicate, a value of another type, a number
// out of range, deep nesting, invalid JSON) makes it give up, and
// encoding/json decodes the record instead. So the result is always the
// one json.Unmarshal gives (FuzzDecodeSnapshot compares the two), and a
// record written by an older or newer build still reads.

// decodeSnapshot decodes the JSON of a stored snapshot into s, which must
// be zero.
func decodeSnapshot(data []byte, s *event.Snapshot) error {
	d := jsonDecoder{b: data}
	if d.snapshot(s) && d.atEnd() {
		upgradeSnapshot(data, s)
		return nil
	}
	*s = event.Snapshot{}
	if err := json.Unmarshal(data, s); err != nil {
		return err
	}
	upgradeSnapshot(data, s)
	return nil
}

// upgradeSnapshot fills what a snapshot written by an older build lacks:
// unanswered_customer_messages is at least 1 when the customer wrote after
// the agent side, so that a "first reply" rule (is: 1) does not fire on
// the next customer message after the upgrade.
func upgradeSnapshot(data []byte, s *event.Snapshot) {
	if s.UnansweredCustomerMessages == 0 && s.LastCustomerMessageAt.After(s.LastAgentMessageAt) &&
		!bytes.Contains(data, []byte(`"unanswered_customer_messages"`)) {
		s.UnansweredCustomerMessages = 1
	}
}

// jsonDecoder reads one JSON text from b. Its methods return false when the
// input is not what the fast path takes; the caller then falls back to
// encoding/json.
type jsonDecoder struct {
	b     []byte
	i     int
	depth int
}

// maxFastDepth is the deepest nesting of field values the fast path takes
// (encoding/json allows 10,000).
const maxFastDepth = 256

// ws skips whitespace.
func (d *jsonDecoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// atEnd reports whether only whitespace is left.
func (d *jsonDecoder) atEnd() bool {
	d.ws()
	return d.i == len(d.b)
}

// peek returns the next byte after whitespace (0 at the end).
func (d *jsonDecoder) peek() byte {
	d.ws()
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

// consume skips whitespace and the byte c, reporting whether it was there.
func (d *jsonDecoder) consume(c byte) bool {
	if d.peek() != c {
		return false
	}
	d.i++
	return true
}

// null consumes a null literal if one is next.
func (d *jsonDecoder) null() bool {
	return d.peek() == 'n' && d.literal("null")
}

// object reads an object whose keys are plain (rawString), calling member
// for each key with the decoder positioned at the value; member reads the
// value. The key passed is only valid during the call.
func (d *jsonDecoder) object(member func(key []byte) bool) bool {
	return members(d, d.rawString, member)
}

// objectOfStrings reads an object whose keys are decoded strings (map keys
// may hold anything), calling member with the decoder at the value.
func (d *jsonDecoder) objectOfStrings(member func(key string) bool) bool {
	return members(d, d.str, member)
}

// members reads an object: readKey reads each key, member its value.
func members[K any](d *jsonDecoder, readKey func() (K, bool), member func(K) bool) bool {
	if !d.consume('{') {
		return false
	}
	if d.consume('}') {
		return true
	}
	for {
		key, ok := readKey()
		if !ok || !d.consume(':') || !member(key) {
			return false
		}
		if d.consume(',') {
			continue
		}
		return d.consume('}')
	}
}

// rawString reads a string that has no escapes and only ASCII and returns
// its bytes (a view of the input). Struct keys and times are such strings.
func (d *jsonDecoder) rawString() ([]byte, bool) {
	if !d.consume('"') {
		return nil, false
	}
	start := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			return d.b[start : d.i-1], true
		case c == '\\' || c < 0x20 || c >= utf8.RuneSelf:
			return nil, false
		}
		d.i++
	}
	return nil, false
}

// str reads a string with its escapes decoded. Invalid UTF-8 and lone
// surrogates, which encoding/json replaces with U+FFFD, are not taken.
func (d *jsonDecoder) str() (string, bool) {
	if !d.consume('"') {
		return "", false
	}
	start := d.i
	// The common case: nothing to decode.
	for d.i < len(d.b) {
		c := d.b[d.i]
		if c == '"' {
			d.i++
			return string(d.b[start : d.i-1]), true
		}
		if c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			break
		}
		d.i++
	}
	out := make([]byte, d.i-start, d.i-start+16)
	copy(out, d.b[start:d.i])
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			return string(out), true
		case c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(d.b[d.i:])
			if r == utf8.RuneError && n == 1 {
				return "", false
			}
			out = append(out, d.b[d.i:d.i+n]...)
			d.i += n
		case c != '\\':
			out = append(out, c)
			d.i++
		default:
			if d.i+1 >= len(d.b) {
				return "", false
			}
			e := d.b[d.i+1]
			d.i += 2
			switch e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := d.hex4()
				if !ok {
					return "", false
				}
				if utf16.IsSurrogate(r) {
					if d.i+1 >= len(d.b) || d.b[d.i] != '\\' || d.b[d.i+1] != 'u' {
						return "", false
					}
					d.i += 2
					r2, ok := d.hex4()
					if !ok {
						return "", false
					}
					if r = utf16.DecodeRune(r, r2); r == utf8.RuneError {
						return "", false
					}
				}
				out = utf8.AppendRune(out, r)
			default:
				return "", false
			}
		}
	}
	return "", false
}

// hex4 reads the four hex digits of a \u escape.
func (d *jsonDecoder) hex4() (rune, bool) {
	if len(d.b)-d.i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range d.b[d.i : d.i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	d.i += 4
	return r, true
}

// number reads a number's bytes, checked against JSON's grammar, and
// whether it is an integer (no fraction, no exponent).
func (d *jsonDecoder) number() (num []byte, integer bool, ok bool) {
	d.ws()
	start := d.i
	if d.i < len(d.b) && d.b[d.i] == '-' {
		d.i++
	}
	switch {
	case d.i < len(d.b) && d.b[d.i] == '0':
		d.i++
	case d.i < len(d.b) && '1' <= d.b[d.i] && d.b[d.i] <= '9':
		d.digits()
	default:
		return nil, false, false
	}
	integer = true
	if d.i < len(d.b) && d.b[d.i] == '.' {
		d.i++
		if d.digits() == 0 {
			return nil, false, false
		}
		integer = false
	}
	if d.i < len(d.b) && (d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		d.i++
		if d.i < len(d.b) && (d.b[d.i] == '+' || d.b[d.i] == '-') {
			d.i++
		}
		if d.digits() == 0 {
			return nil, false, false
		}
		integer = false
	}
	return d.b[start:d.i], integer, true
}

// digits skips decimal digits and returns how many.
func (d *jsonDecoder) digits() int {
	n := 0
	for d.i < len(d.b) && '0' <= d.b[d.i] && d.b[d.i] <= '9' {
		d.i++
		n++
	}
	return n
}

// smallInt returns the value of an integer num (JSON grammar, checked)
// of at most 15 digits, which an int64 and a float64 both hold exactly;
// ok is false for longer ones.
func smallInt(num []byte) (n int64, neg, ok bool) {
	digits := num
	if neg = num[0] == '-'; neg {
		digits = num[1:]
	}
	if len(digits) > 15 {
		return 0, false, false
	}
	for _, c := range digits {
		n = n*10 + int64(c-'0')
	}
	return n, neg, true
}

// float reads a number as encoding/json does into an interface: float64.
func (d *jsonDecoder) float() (float64, bool) {
	num, integer, ok := d.number()
	if !ok {
		return 0, false
	}
	if integer {
		if n, neg, small := smallInt(num); small {
			if neg {
				return -float64(n), true // keeps -0's sign, as ParseFloat does
			}
			return float64(n), true
		}
	}
	f, err := strconv.ParseFloat(string(num), 64)
	return f, err == nil
}

// integer reads an integer that fits in bitSize bits, as encoding/json
// does into an int of that size.
func (d *jsonDecoder) integer(bitSize int) (int64, bool) {
	num, integer, ok := d.number()
	if !ok || !integer {
		return 0, false
	}
	if n, neg, small := smallInt(num); small && bitSize == 64 {
		if neg {
			return -n, true
		}
		return n, true
	}
	n, err := strconv.ParseInt(string(num), 10, bitSize)
	return n, err == nil
}

// unsigned reads a non-negative integer that fits in a uint64.
func (d *jsonDecoder) unsigned() (uint64, bool) {
	num, integer, ok := d.number()
	if !ok || !integer || num[0] == '-' {
		return 0, false
	}
	if n, _, small := smallInt(num); small {
		return uint64(n), true
	}
	n, err := strconv.ParseUint(string(num), 10, 64)
	return n, err == nil
}

// time reads a time as time.Time.UnmarshalJSON does; null leaves t as it is.
func (d *jsonDecoder) time(t *time.Time) bool {
	if d.null() {
		return true
	}
	start := d.i
	if _, ok := d.rawString(); !ok {
		return false
	}
	return t.UnmarshalJSON(d.b[start:d.i]) == nil
}

// value reads any JSON value as encoding/json does into an interface:
// map[string]any, []any (never nil), string, float64, bool or nil.
func (d *jsonDecoder) value() (any, bool) {
	switch c := d.peek(); c {
	case '{':
		return d.anyMap()
	case '[':
		if d.depth++; d.depth > maxFastDepth {
			return nil, false
		}
		d.i++
		list := make([]any, 0)
		if d.consume(']') {
			d.depth--
			return list, true
		}
		for {
			v, ok := d.value()
			if !ok {
				return nil, false
			}
			list = append(list, v)
			if d.consume(',') {
				continue
			}
			if !d.consume(']') {
				return nil, false
			}
			d.depth--
			return list, true
		}
	case '"':
		return d.str()
	case 't':
		return true, d.literal("true")
	case 'f':
		return false, d.literal("false")
	case 'n':
		return nil, d.null()
	default:
		return d.float()
	}
}

// literal consumes the literal lit (true, false or null).
func (d *jsonDecoder) literal(lit string) bool {
	if len(d.b)-d.i >= len(lit) && string(d.b[d.i:d.i+len(lit)]) == lit {
		d.i += len(lit)
		return true
	}
	return false
}

// anyMap reads an object into a map[string]any; a key given twice keeps
// its last value, as with encoding/json.
func (d *jsonDecoder) anyMap() (map[string]any, bool) {
	if d.depth++; d.depth > maxFastDepth {
		return nil, false
	}
	m := make(map[string]any)
	ok := d.objectOfStrings(func(key string) bool {
		v, ok := d.value()
		m[key] = v
		return ok
	})
	d.depth--
	return m, ok
}

// seenMembers records which members of an object were read, one bit each,
// to refuse a key given twice (encoding/json would merge it into the
// struct field already decoded).
type seenMembers int

// first reports whether bit is read for the first time, and marks it.
func (s *seenMembers) first(bit int) bool {
	if int(*s)&bit != 0 {
		return false
	}
	*s |= seenMembers(bit)
	return true
}

// Snapshot members.
const (
	snapKey = 1 << iota
	snapFields
	snapVersion
	snapCreatedAt
	snapUpdatedAt
	snapStatusSince
	snapLastActivityAt
	snapLastCustomerMessageAt
	snapLastAgentMessageAt
	snapAgentReplies
	snapCustomerMessages
	snapUnansweredCustomerMessages
	snapFired
	snapClocks
	snapVars
	snapFieldsAt
)

// snapshot reads a snapshot object into s.
func (d *jsonDecoder) snapshot(s *event.Snapshot) bool {
	var seen seenMembers
	once := seen.first
	return d.object(func(key []byte) bool {
		switch string(key) {
		case "key":
			return once(snapKey) && d.entityKey(&s.Key)
		case "fields":
			if !once(snapFields) {
				return false
			}
			if d.null() {
				return true
			}
			m, ok := d.anyMap()
			s.Fields = m
			return ok
		case "fields_at":
			return once(snapFieldsAt) && d.timeMap(&s.FieldsAt)
		case "version":
			if !once(snapVersion) {
				return false
			}
			v, ok := d.unsigned()
			s.Version = v
			return ok
		case "created_at":
			return once(snapCreatedAt) && d.time(&s.CreatedAt)
		case "updated_at":
			return once(snapUpdatedAt) && d.time(&s.UpdatedAt)
		case "status_since":
			return once(snapStatusSince) && d.time(&s.StatusSince)
		case "last_activity_at":
			return once(snapLastActivityAt) && d.time(&s.LastActivityAt)
		case "last_customer_message_at":
			return once(snapLastCustomerMessageAt) && d.time(&s.LastCustomerMessageAt)
		case "last_agent_message_at":
			return once(snapLastAgentMessageAt) && d.time(&s.LastAgentMessageAt)
		case "agent_replies":
			return once(snapAgentReplies) && d.intField(&s.AgentReplies)
		case "customer_messages":
			return once(snapCustomerMessages) && d.intField(&s.CustomerMessages)
		case "unanswered_customer_messages":
			return once(snapUnansweredCustomerMessages) && d.intField(&s.UnansweredCustomerMessages)
		case "fired":
			return once(snapFired) && d.fired(s)
		case "clocks":
			return once(snapClocks) && d.clocks(s)
		case "vars":
			return once(snapVars) && d.stringMap(&s.Vars)
		}
		return false
	})
}

// stringMap reads an object of strings (or null) into *m.
func (d *jsonDecoder) stringMap(m *map[string]string) bool {
	if d.null() {
		return true
	}
	out := map[string]string{}
	ok := d.objectOfStrings(func(key string) bool {
		if _, dup := out[key]; dup {
			return false
		}
		v, ok := d.str()
		out[key] = v
		return ok
	})
	*m = out
	return ok
}

// timeMap reads an object of times (or null) into *m; a key twice or a
// null time leaves it to encoding/json.
func (d *jsonDecoder) timeMap(m *map[string]time.Time) bool {
	if d.null() {
		return true
	}
	out := map[string]time.Time{}
	ok := d.objectOfStrings(func(key string) bool {
		if _, dup := out[key]; dup {
			return false
		}
		var t time.Time
		if d.peek() != '"' || !d.time(&t) {
			return false
		}
		out[key] = t
		return true
	})
	*m = out
	return ok
}

// intField reads an int (64 bits wide on the platforms we build for; the
// bit size follows the platform's int).
func (d *jsonDecoder) intField(p *int) bool {
	n, ok := d.integer(strconv.IntSize)
	*p = int(n)
	return ok
}

// entityKey reads an entity key object; every member once.
func (d *jsonDecoder) entityKey(k *event.EntityKey) bool {
	var seen seenMembers
	return d.object(func(key []byte) bool {
		var ok bool
		switch string(key) {
		case "connector":
			ok = seen.first(1) && d.strInto(&k.Connector)
		case "entity":
			ok = seen.first(2) && d.strInto(&k.Entity)
		case "reference":
			ok = seen.first(4) && d.strInto(&k.Reference)
		}
		return ok
	})
}

// strInto reads a string into *dst.
func (d *jsonDecoder) strInto(dst *string) bool {
	v, ok := d.str()
	*dst = v
	return ok
}

// fired reads the rule firing times (null: none).
func (d *jsonDecoder) fired(s *event.Snapshot) bool {
	if d.null() {
		return true
	}
	m := make(map[string][]time.Time)
	ok := d.objectOfStrings(func(rule string) bool {
		if _, dup := m[rule]; dup {
			return false
		}
		if d.null() {
			m[rule] = nil
			return true
		}
		if !d.consume('[') {
			return false
		}
		times := make([]time.Time, 0, 4)
		if d.consume(']') {
			m[rule] = times
			return true
		}
		for {
			var t time.Time
			if d.peek() != '"' || !d.time(&t) {
				return false
			}
			times = append(times, t)
			if d.consume(',') {
				continue
			}
			m[rule] = times
			return d.consume(']')
		}
	})
	s.Fired = m
	return ok
}

// clocks reads the rule clocks (null: none; a null clock is a nil entry).
func (d *jsonDecoder) clocks(s *event.Snapshot) bool {
	if d.null() {
		return true
	}
	m := make(map[string]*event.RuleClock)
	ok := d.objectOfStrings(func(rule string) bool {
		if _, dup := m[rule]; dup {
			return false
		}
		if d.null() {
			m[rule] = nil
			return true
		}
		c := new(event.RuleClock)
		m[rule] = c
		return d.clock(c)
	})
	s.Clocks = m
	return ok
}

// clock reads one rule clock; every member once.
func (d *jsonDecoder) clock(c *event.RuleClock) bool {
	var seen seenMembers
	return d.object(func(key []byte) bool {
		switch string(key) {
		case "since":
			return seen.first(1) && d.time(&c.Since)
		case "paused_at":
			return seen.first(2) && d.time(&c.PausedAt)
		case "paused_total":
			if !seen.first(4) {
				return false
			}
			n, ok := d.integer(64)
			c.PausedTotal = time.Duration(n)
			return ok
		case "done":
			if !seen.first(8) {
				return false
			}
			switch d.peek() {
			case 't':
				c.Done = true
				return d.literal("true")
			case 'f':
				c.Done = false
				return d.literal("false")
			}
		}
		return false
	})
}
