package yamlconf

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/hookline/hookline/internal/jsonenc"
)

type valueKind uint8

const (
	vInvalid valueKind = iota // no value (text/template's invalid reflect.Value)
	vStr                      // a value of type string, held in s
	vRV                       // any other value, held in rv
)

// value is what a plan computes with: strings are kept unboxed, everything
// else as a reflect.Value. Empty interfaces are always unwrapped, as
// text/template does at the end of every command.
type value struct {
	k  valueKind
	s  string
	rv reflect.Value
}

func strValue(s string) value { return value{k: vStr, s: s} }

// rvValue normalizes rv: an empty interface is unwrapped (nil -> invalid)
// and a plain string is held unboxed.
func rvValue(rv reflect.Value) value {
	if !rv.IsValid() {
		return value{}
	}
	if rv.Kind() == reflect.Interface && rv.NumMethod() == 0 {
		if rv.IsNil() {
			return value{}
		}
		rv = rv.Elem()
	}
	if rv.Type() == stringType {
		return value{k: vStr, s: rv.String()}
	}
	return value{k: vRV, rv: rv}
}

func anyValue(x any) value {
	switch x := x.(type) {
	case nil:
		return value{}
	case string:
		return value{k: vStr, s: x}
	}
	return rvValue(reflect.ValueOf(x))
}

// reflectValue returns v as a reflect.Value (invalid for no value).
func (v value) reflectValue() reflect.Value {
	switch v.k {
	case vStr:
		return reflect.ValueOf(v.s)
	case vRV:
		return v.rv
	}
	return reflect.Value{}
}

// asString is v as an argument of type string (text/template's validateType).
func (v value) asString() (string, bool) {
	switch v.k {
	case vStr:
		return v.s, true
	case vRV:
		if v.rv.Kind() == reflect.Interface && !v.rv.IsNil() && v.rv.Elem().Type() == stringType {
			return v.rv.Elem().String(), true
		}
	}
	return "", false
}

// asAny is v as an argument of type any.
func (v value) asAny() (any, bool) {
	switch v.k {
	case vStr:
		return v.s, true
	case vRV:
		if !v.rv.CanInterface() {
			return nil, false
		}
		return v.rv.Interface(), true
	}
	return nil, true
}

// asType is v as an argument of type t, or false when text/template would
// convert it otherwise or fail.
func (v value) asType(t reflect.Type) (reflect.Value, bool) {
	switch v.k {
	case vInvalid:
		if t.Kind() == reflect.Interface && t.NumMethod() == 0 {
			return reflect.Zero(t), true
		}
		return reflect.Value{}, false
	case vStr:
		if stringType.AssignableTo(t) {
			return reflect.ValueOf(v.s), true
		}
		return reflect.Value{}, false
	}
	if t == reflectValueType || !v.rv.Type().AssignableTo(t) {
		return reflect.Value{}, false
	}
	return v.rv, true
}

// truth is text/template's isTrue.
func (v value) truth() (truth, ok bool) {
	switch v.k {
	case vInvalid:
		return false, true
	case vStr:
		return v.s != "", true
	}
	val := v.rv
	if val.Kind() == reflect.Interface {
		if val.IsNil() {
			return false, true
		}
		val = val.Elem()
	}
	switch val.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return val.Len() > 0, true
	case reflect.Bool:
		return val.Bool(), true
	case reflect.Complex64, reflect.Complex128:
		return val.Complex() != 0, true
	case reflect.Chan, reflect.Func, reflect.Pointer, reflect.UnsafePointer, reflect.Interface:
		return !val.IsNil(), true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return val.Int() != 0, true
	case reflect.Float32, reflect.Float64:
		return val.Float() != 0, true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return val.Uint() != 0, true
	case reflect.Struct:
		return true, true
	}
	return false, false
}

// execState is the scratch of one run.
type execState struct {
	vars   []value
	buf    []byte
	bounds []boundMethod
}

func (p *plan) run(data any) (st *execState, ok bool) {
	if _, isRV := data.(reflect.Value); isRV {
		return nil, false
	}
	st = p.states.Get().(*execState)
	st.buf = st.buf[:0]
	defer func() {
		if recover() != nil {
			ok = false
		}
		if !ok {
			p.release(st)
			st = nil
		}
	}()
	dot := rvValue(reflect.ValueOf(data))
	st.vars[0] = dot
	ok = st.walk(dot, p.root)
	return st, ok
}

func (p *plan) release(st *execState) {
	clear(st.vars)
	clear(st.bounds)
	st.bounds = st.bounds[:0]
	if cap(st.buf) > 64<<10 {
		st.buf = nil
	}
	p.states.Put(st)
}

// executeString renders data, or reports false when text/template must.
func (p *plan) executeString(data any) (string, bool) {
	st, ok := p.run(data)
	if !ok {
		return "", false
	}
	s := string(st.buf)
	p.release(st)
	return s, true
}

// appendTo appends the rendering of data to dst, or reports false.
func (p *plan) appendTo(dst []byte, data any) ([]byte, bool) {
	st, ok := p.run(data)
	if !ok {
		return dst, false
	}
	dst = append(dst, st.buf...)
	p.release(st)
	return dst, true
}

func (st *execState) walk(dot value, nodes []pnode) bool {
	for i := range nodes {
		n := &nodes[i]
		switch n.kind {
		case pText:
			st.buf = append(st.buf, n.text...)
		case pAction:
			if n.jsonTail {
				if !st.printJSON(dot, n.pipe.cmds) {
					return false
				}
				continue
			}
			v, ok := st.evalPipe(dot, n.pipe)
			if !ok {
				return false
			}
			if n.print && !st.print(v, n.numbers, n.strict) {
				return false
			}
		case pIf, pWith:
			v, ok := st.evalPipe(dot, n.pipe)
			if !ok {
				return false
			}
			t, ok := v.truth()
			if !ok {
				return false
			}
			switch {
			case t && n.kind == pWith:
				ok = st.walk(v, n.list)
			case t:
				ok = st.walk(dot, n.list)
			default:
				ok = st.walk(dot, n.elseList)
			}
			if !ok {
				return false
			}
		case pRange:
			if !st.walkRange(dot, n) {
				return false
			}
		}
	}
	return true
}

func (st *execState) walkRange(dot value, n *pnode) bool {
	v, ok := st.evalPipe(dot, n.pipe)
	if !ok {
		return false
	}
	if v.k == vStr {
		return false // text/template: range can't iterate over a string
	}
	if v.k == vInvalid {
		return st.walk(dot, n.elseList)
	}
	rv := v.rv
	for rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface {
		if rv.IsNil() {
			return false
		}
		rv = rv.Elem()
	}
	iter := func(key, elem value) bool {
		if n.keySlot >= 0 {
			st.vars[n.keySlot] = key
		}
		if n.elemSlot >= 0 {
			st.vars[n.elemSlot] = elem
		}
		return st.walk(elem, n.list)
	}
	switch rv.Kind() {
	case reflect.Array, reflect.Slice:
		if rv.Len() == 0 {
			return st.walk(dot, n.elseList)
		}
		for i := range rv.Len() {
			if !iter(rvValue(reflect.ValueOf(i)), rvValue(rv.Index(i))) {
				return false
			}
		}
		return true
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return false
		}
		if rv.Len() == 0 {
			return st.walk(dot, n.elseList)
		}
		if rv.Type() == mapStringAnyType && rv.CanInterface() {
			m := rv.Interface().(map[string]any)
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				if !iter(strValue(k), anyValue(m[k])) {
					return false
				}
			}
			return true
		}
		keys := rv.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return cmp.Compare(a.String(), b.String()) })
		for _, k := range keys {
			if !iter(rvValue(k), rvValue(rv.MapIndex(k))) {
				return false
			}
		}
		return true
	}
	return false
}

func (st *execState) evalPipe(dot value, p *ppipe) (value, bool) {
	v, ok := st.evalCmds(dot, p.cmds)
	if !ok {
		return value{}, false
	}
	for _, slot := range p.decl {
		st.vars[slot] = v
	}
	return v, true
}

func (st *execState) evalCmds(dot value, cmds []*pcmd) (value, bool) {
	var v value
	for i, c := range cmds {
		var ok bool
		if v, ok = st.evalCmd(dot, c, v, i > 0); !ok {
			return value{}, false
		}
	}
	return v, true
}

// printJSON prints a pipeline that ends in json, encoding straight into the
// output.
func (st *execState) printJSON(dot value, cmds []*pcmd) bool {
	last := len(cmds) - 1
	var v value
	if last > 0 {
		var ok bool
		if v, ok = st.evalCmds(dot, cmds[:last]); !ok {
			return false
		}
	}
	if c := cmds[last]; len(c.args) == 1 {
		var ok bool
		if v, ok = st.evalCmd(dot, c.args[0], value{}, false); !ok {
			return false
		}
	}
	out, ok := appendJSON(st.buf, v)
	if ok {
		st.buf = out
	}
	return ok
}

func (st *execState) evalCmd(dot value, c *pcmd, final value, hasFinal bool) (value, bool) {
	switch c.kind {
	case cDot:
		return dot, true
	case cConst:
		return c.lit, true
	case cField:
		return st.evalChain(dot, dot, c.fields, c.args, final, hasFinal)
	case cVar:
		v := st.vars[c.slot]
		if len(c.fields) == 0 {
			return v, true
		}
		return st.evalChain(dot, v, c.fields, c.args, final, hasFinal)
	case cPipe:
		return st.evalPipe(dot, c.sub)
	case cFunc:
		return st.evalFunc(dot, c, final, hasFinal)
	}
	return value{}, false
}

func (st *execState) evalChain(dot, recv value, fields []*fieldSite, args []*pcmd, final value, hasFinal bool) (value, bool) {
	last := len(fields) - 1
	for _, f := range fields[:last] {
		var ok bool
		if recv, ok = st.evalField(dot, f, recv, nil, value{}, false); !ok {
			return value{}, false
		}
	}
	return st.evalField(dot, fields[last], recv, args, final, hasFinal)
}

// evalField is text/template's evalField for the cases it resolves without
// an error; anything else reports false.
func (st *execState) evalField(dot value, f *fieldSite, recv value, args []*pcmd, final value, hasFinal bool) (value, bool) {
	if recv.k != vRV {
		return value{}, false
	}
	rv := recv.rv
	for rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface {
		if rv.IsNil() {
			return value{}, false
		}
		rv = rv.Elem()
	}
	addr := rv.CanAddr()
	r := f.resolve(rv.Type(), addr)
	hasArgs := len(args) > 0 || hasFinal
	switch r.kind {
	case resMethod:
		if addr {
			rv = rv.Addr()
		}
		return st.call(dot, rv, r, args, final, hasFinal)
	case resField:
		if hasArgs {
			return value{}, false
		}
		return rvValue(rv.Field(r.index)), true
	case resMapStringAny:
		if hasArgs || !rv.CanInterface() {
			return value{}, false
		}
		x, ok := rv.Interface().(map[string]any)[f.name]
		if !ok {
			return value{}, false
		}
		return anyValue(x), true
	case resMapStringString:
		if hasArgs || !rv.CanInterface() {
			return value{}, false
		}
		x, ok := rv.Interface().(map[string]string)[f.name]
		if !ok {
			return value{}, false
		}
		return strValue(x), true
	case resMap:
		if hasArgs {
			return value{}, false
		}
		x := rv.MapIndex(f.nameVal)
		if !x.IsValid() {
			return value{}, false
		}
		return rvValue(x), true
	}
	return value{}, false
}

// boundMethod is a method value bound to one receiver during one run.
type boundMethod struct {
	typ   reflect.Type
	ptr   uintptr
	index int
	fn    any
}

// call calls the method of r on recv with the evaluated args and final.
// Methods of common signatures on pointer receivers are called without
// reflection, through a method value made once per receiver and run.
func (st *execState) call(dot value, recv reflect.Value, r *fieldRes, args []*pcmd, final value, hasFinal bool) (value, bool) {
	mt := r.method
	n := len(args)
	if hasFinal {
		n++
	}
	if mt.IsVariadic() || mt.NumIn() != n {
		return value{}, false
	}
	switch mt.NumOut() {
	case 1:
	case 2:
		if mt.Out(1) != errorType {
			return value{}, false
		}
	default:
		return value{}, false
	}
	var argBuf [4]value
	argv := argBuf[:0]
	for _, a := range args {
		v, ok := st.evalCmd(dot, a, value{}, false)
		if !ok {
			return value{}, false
		}
		argv = append(argv, v)
	}
	if hasFinal {
		argv = append(argv, final)
	}
	if r.fast {
		return st.callFast(st.bound(recv, r), argv)
	}
	in := make([]reflect.Value, n+1)
	in[0] = recv
	for i := range n {
		rv, ok := argv[i].asType(mt.In(i))
		if !ok {
			return value{}, false
		}
		in[i+1] = rv
	}
	out := r.fn.Call(in)
	if len(out) == 2 && !out[1].IsNil() {
		return value{}, false
	}
	if out[0].Type() == reflectValueType {
		return value{}, false
	}
	return rvValue(out[0]), true
}

// bound returns the method value of r on the pointer recv.
func (st *execState) bound(recv reflect.Value, r *fieldRes) any {
	p := recv.Pointer()
	for i := range st.bounds {
		b := &st.bounds[i]
		if b.ptr == p && b.typ == r.typ && b.index == r.index {
			return b.fn
		}
	}
	fn := recv.Method(r.index).Interface()
	st.bounds = append(st.bounds, boundMethod{typ: r.typ, ptr: p, index: r.index, fn: fn})
	return fn
}

// callFast calls fn, one of fastSignatures.
func (st *execState) callFast(fn any, argv []value) (value, bool) {
	switch fn := fn.(type) {
	case func() string:
		return strValue(fn()), true
	case func() any:
		return anyValue(fn()), true
	case func() map[string]any:
		return rvValue(reflect.ValueOf(fn())), true
	case func() (string, error):
		s, err := fn()
		return strValue(s), err == nil
	case func(string) string:
		s, ok := argv[0].asString()
		if !ok {
			return value{}, false
		}
		return strValue(fn(s)), true
	case func(string) bool:
		s, ok := argv[0].asString()
		if !ok {
			return value{}, false
		}
		return rvValue(reflect.ValueOf(fn(s))), true
	case func(string) any:
		s, ok := argv[0].asString()
		if !ok {
			return value{}, false
		}
		return anyValue(fn(s)), true
	case func(string) (string, error):
		s, ok := argv[0].asString()
		if !ok {
			return value{}, false
		}
		r, err := fn(s)
		return strValue(r), err == nil
	case func(string) (any, error):
		s, ok := argv[0].asString()
		if !ok {
			return value{}, false
		}
		r, err := fn(s)
		return anyValue(r), err == nil
	case func(any) string:
		x, ok := argv[0].asAny()
		if !ok {
			return value{}, false
		}
		return strValue(fn(x)), true
	case func(any) (string, error):
		x, ok := argv[0].asAny()
		if !ok {
			return value{}, false
		}
		r, err := fn(x)
		return strValue(r), err == nil
	case func(any) any:
		x, ok := argv[0].asAny()
		if !ok {
			return value{}, false
		}
		return anyValue(fn(x)), true
	}
	return value{}, false
}

func (st *execState) evalFunc(dot value, c *pcmd, final value, hasFinal bool) (value, bool) {
	if c.fn == fAnd || c.fn == fOr {
		var v value
		for _, a := range c.args {
			var ok bool
			if v, ok = st.evalCmd(dot, a, value{}, false); !ok {
				return value{}, false
			}
			if t, _ := v.truth(); t == (c.fn == fOr) {
				return v, true
			}
		}
		if hasFinal {
			v = final
		}
		return v, true
	}
	var argBuf [4]value
	argv := argBuf[:0]
	for _, a := range c.args {
		v, ok := st.evalCmd(dot, a, value{}, false)
		if !ok {
			return value{}, false
		}
		argv = append(argv, v)
	}
	if hasFinal {
		argv = append(argv, final)
	}
	switch c.fn {
	case fJSON:
		start := len(st.buf)
		// Encode at the end of the output buffer, then move it into a
		// value: the caller decides where the text goes.
		out, ok := appendJSON(st.buf, argv[0])
		if !ok {
			st.buf = st.buf[:start]
			return value{}, false
		}
		s := string(out[start:])
		st.buf = out[:start]
		return strValue(s), true
	case fLower, fUpper, fTrim, fPathEscape, fQueryEscape:
		s, ok := argv[0].asString()
		if !ok {
			x, ok := argv[0].asAny()
			if !ok {
				return value{}, false
			}
			s = TextOf(x) // as TemplateFuncs: any value, as its text
		}
		switch c.fn {
		case fLower:
			s = strings.ToLower(s)
		case fUpper:
			s = strings.ToUpper(s)
		case fPathEscape:
			s = EscapePathSegment(s)
		case fQueryEscape:
			s = url.QueryEscape(s)
		default:
			s = strings.TrimSpace(s)
		}
		return strValue(s), true
	case fContains, fBefore, fAfter:
		// TemplateFuncs take (sep string, v any) and print v with fmt.Sprint;
		// here both must be strings (anything else falls back).
		sep, ok := argv[0].asString()
		if !ok {
			return value{}, false
		}
		s, ok := argv[1].asString()
		if !ok {
			return value{}, false
		}
		switch c.fn {
		case fContains:
			return rvValue(reflect.ValueOf(strings.Contains(s, sep))), true
		case fBefore:
			before, _, _ := strings.Cut(s, sep)
			return strValue(before), true
		default:
			_, after, _ := strings.Cut(s, sep)
			return strValue(after), true
		}
	case fNot:
		t, _ := argv[0].truth()
		return rvValue(reflect.ValueOf(!t)), true
	case fEq, fNe, fLt, fLe, fGt, fGe:
		// TemplateFuncs' comparisons, on the same values.
		xs := make([]any, len(argv))
		for i, a := range argv {
			x, ok := a.asAny()
			if !ok {
				return value{}, false
			}
			xs[i] = x
		}
		var r bool
		switch c.fn {
		case fEq:
			eq, err := templateEq(xs[0], xs[1:]...)
			if err != nil {
				return value{}, false
			}
			r = eq
		case fNe:
			r = !templateEqual(xs[0], xs[1])
		default:
			order, ok := templateOrder(xs[0], xs[1])
			switch c.fn {
			case fLt:
				r = ok && order < 0
			case fLe:
				r = ok && order <= 0
			case fGt:
				r = ok && order > 0
			default:
				r = ok && order >= 0
			}
		}
		return rvValue(reflect.ValueOf(r)), true
	case fLen:
		return length(argv[0])
	case fIndex:
		return index(argv[0], argv[1])
	case fPrint, fPrintf:
		xs := make([]any, 0, len(argv))
		for _, a := range argv {
			x, ok := a.asAny()
			if !ok {
				return value{}, false
			}
			xs = append(xs, x)
		}
		if c.fn == fPrint {
			return strValue(templatePrint(xs...)), true
		}
		format, ok := argv[0].asString()
		if !ok {
			return value{}, false
		}
		return strValue(templatePrintf(format, xs[1:]...)), true
	}
	return value{}, false
}

func length(v value) (value, bool) {
	switch v.k {
	case vStr:
		return rvValue(reflect.ValueOf(len(v.s))), true
	case vInvalid:
		return value{}, false
	}
	rv := v.rv
	for rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface {
		if rv.IsNil() {
			return value{}, false
		}
		rv = rv.Elem()
	}
	switch rv.Kind() {
	case reflect.Array, reflect.Chan, reflect.Map, reflect.Slice, reflect.String:
		return rvValue(reflect.ValueOf(rv.Len())), true
	}
	return value{}, false
}

// index is text/template's index with one index into a string-keyed map
// or a slice.
func index(item, key value) (value, bool) {
	if item.k != vRV {
		return value{}, false
	}
	rv := item.rv
	if rv.Kind() == reflect.Interface {
		if rv.IsNil() {
			return value{}, false
		}
		rv = rv.Elem()
	}
	switch rv.Kind() {
	case reflect.Map:
		if rv.Type().Key() != stringType {
			return value{}, false
		}
		k, ok := key.asString()
		if !ok {
			return value{}, false
		}
		switch rv.Type() {
		case mapStringStringType:
			return strValue(rv.Interface().(map[string]string)[k]), true
		case mapStringAnyType:
			return anyValue(rv.Interface().(map[string]any)[k]), true
		}
		x := rv.MapIndex(reflect.ValueOf(k))
		if !x.IsValid() {
			x = reflect.Zero(rv.Type().Elem())
		}
		return rvValue(x), true
	case reflect.Slice, reflect.Array:
		if key.k != vRV || key.rv.Kind() != reflect.Int {
			return value{}, false
		}
		i := key.rv.Int()
		if i < 0 || i >= int64(rv.Len()) {
			return value{}, false
		}
		return rvValue(rv.Index(int(i))), true
	}
	return value{}, false
}

// print appends v as text/template prints it; with numbers, a float64 or
// float32 as FormatNumber writes it (what CompileTemplate's call does).
// With strict, no value is not printed: the run falls back to
// text/template, whose strict print call fails.
func (st *execState) print(v value, numbers, strict bool) bool {
	switch v.k {
	case vStr:
		st.buf = append(st.buf, v.s...)
		return true
	case vInvalid:
		if strict {
			return false
		}
		st.buf = append(st.buf, "<no value>"...)
		return true
	}
	rv := v.rv
	if numbers {
		// As the value goes through PrintedValue's any and back.
		if !rv.CanInterface() {
			return false
		}
		switch x := rv.Interface().(type) {
		case float64, float32, json.Number:
			st.buf = append(st.buf, PrintedValue(x).(string)...)
			return true
		case nil:
			if strict {
				return false
			}
			st.buf = append(st.buf, "<no value>"...)
			return true
		default:
			rv = reflect.ValueOf(x)
		}
	}
	if rv.Type().PkgPath() == "" && rv.Type().Name() != "" { // predeclared: no methods
		switch rv.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			st.buf = strconv.AppendInt(st.buf, rv.Int(), 10)
			return true
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			st.buf = strconv.AppendUint(st.buf, rv.Uint(), 10)
			return true
		case reflect.Bool:
			st.buf = strconv.AppendBool(st.buf, rv.Bool())
			return true
		}
	}
	x, ok := printableValue(rv)
	if !ok {
		return false
	}
	st.buf = fmt.Append(st.buf, x)
	return true
}

// printableValue is text/template's.
func printableValue(v reflect.Value) (any, bool) {
	if v.Kind() == reflect.Pointer {
		for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
			if v.IsNil() {
				break
			}
			v = v.Elem()
		}
	}
	if !v.IsValid() {
		return "<no value>", true
	}
	if !v.Type().Implements(errorType) && !v.Type().Implements(stringerType) {
		if v.CanAddr() && (reflect.PointerTo(v.Type()).Implements(errorType) || reflect.PointerTo(v.Type()).Implements(stringerType)) {
			v = v.Addr()
		} else {
			switch v.Kind() {
			case reflect.Chan, reflect.Func:
				return nil, false
			}
		}
	}
	if !v.CanInterface() {
		return nil, false
	}
	return v.Interface(), true
}

// appendJSON appends what TemplateFuncs' json returns for v.
func appendJSON(dst []byte, v value) ([]byte, bool) {
	switch v.k {
	case vStr:
		return jsonenc.AppendString(dst, v.s), true
	case vInvalid:
		return append(dst, "null"...), true
	}
	rv := v.rv
	switch rv.Type() {
	case stringSliceType:
		if rv.IsNil() {
			return append(dst, "null"...), true
		}
		dst = append(dst, '[')
		for i := range rv.Len() {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = jsonenc.AppendString(dst, rv.Index(i).String())
		}
		return append(dst, ']'), true
	case mapStringStringType:
		if rv.IsNil() {
			return append(dst, "null"...), true
		}
		if !rv.CanInterface() {
			return dst, false
		}
		m := rv.Interface().(map[string]string)
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = jsonenc.AppendString(dst, k)
			dst = append(dst, ':')
			dst = jsonenc.AppendString(dst, m[k])
		}
		return append(dst, '}'), true
	}
	x, ok := v.asAny()
	if !ok {
		return dst, false
	}
	b, err := json.Marshal(x)
	if err != nil {
		return dst, false
	}
	return append(dst, b...), true
}
