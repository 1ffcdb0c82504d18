package mapping

import (
	"errors"
	"fmt"
	"net/textproto"
	"sort"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/hookline/hookline/internal/yamlconf"
)

// baseKind says what a path is relative to.
type baseKind uint8

const (
	baseRoot   baseKind = iota // the whole payload
	baseLevel                  // the element of one `each` level
	baseHeader                 // a request header (name, no path)
	baseQuery                  // a query parameter (name, no path)
)

// pathRef is a compiled path: a base and a gjson path relative to it.
type pathRef struct {
	src   string
	base  baseKind
	level int    // for baseLevel: index into the element stack
	path  string // gjson path relative to the base; "" is the base itself
	name  string // header (canonical) or query parameter name
	// shared is true for a path above the current element (the payload or
	// an enclosing level under each): its value is the same for all
	// elements below that level, so Map computes it once per level element.
	shared bool
	// mayBreak is true for a gjson path that can build a result that is not
	// JSON: one with a literal (!) or a modifier (@) other than the whole
	// value (@this). Other results point into the body, which is valid, or
	// are built by gjson from it.
	mayBreak bool
}

// same reports whether r and o name the same value.
func (r *pathRef) same(o *pathRef) bool {
	return r != nil && o != nil && r.base == o.base && r.level == o.level && r.path == o.path && r.name == o.name
}

// scope is what paths of one place in an entry may refer to.
type scope struct {
	// depth is the number of `each` levels in force; 0 means the element is
	// the whole payload (match conditions, entries without each).
	depth int
	// names maps `as` names of levels to their index.
	names map[string]int
}

// Reserved path prefixes; level names may not take them.
const (
	prefixRoot   = "$root"
	prefixParent = "$parent"
	prefixHeader = "$header"
	prefixQuery  = "$query"
)

var reservedLevelNames = []string{"root", "parent", "header", "query"}

// parsePath compiles a path as admins write it:
//
//	text.body                 relative to the element (the payload without each)
//	$root.entry.0.id          relative to the whole payload
//	$parent.value.metadata    relative to the enclosing each level ($parent.$parent. ...)
//	$change.value.metadata    relative to the each level named "change"
//	$header.X-Event-Kind      a request header (first value)
//	$query.token              a query parameter (first value)
func parsePath(src string, sc scope) (*pathRef, error) {
	ref, err := parseRef(src, sc)
	if ref != nil {
		ref.mayBreak = mayBreak(ref.path)
	}
	return ref, err
}

// mayBreak reports whether a gjson path can build a result that is not
// JSON (see pathRef.mayBreak).
func mayBreak(path string) bool {
	return path != "@this" && strings.ContainsAny(path, "!@")
}

// parseRef is parsePath less mayBreak.
func parseRef(src string, sc scope) (*pathRef, error) {
	if strings.TrimSpace(src) == "" {
		return nil, errors.New("empty path")
	}
	if strings.HasSuffix(src, ".") && !strings.HasSuffix(src, `\.`) {
		return nil, errors.New("path ends with '.'")
	}
	ref := &pathRef{src: src}
	setElem := func(rest string) {
		if sc.depth == 0 {
			ref.base = baseRoot
		} else {
			ref.base, ref.level = baseLevel, sc.depth-1
		}
		ref.path = rest
	}
	if !strings.HasPrefix(src, "$") {
		setElem(src)
		return ref, checkGJSON(src)
	}
	head, rest, _ := strings.Cut(src, ".")
	switch head {
	case prefixRoot:
		ref.base, ref.path = baseRoot, rest
	case prefixHeader, prefixQuery:
		if rest == "" {
			return nil, fmt.Errorf("%s needs a name, as in %s.Name", head, head)
		}
		if head == prefixHeader {
			if strings.ContainsAny(rest, " \t:") {
				return nil, fmt.Errorf("invalid header name %q", rest)
			}
			ref.base, ref.name = baseHeader, textproto.CanonicalMIMEHeaderKey(rest)
		} else {
			ref.base, ref.name = baseQuery, rest
		}
		return ref, nil
	case prefixParent:
		ups := 1
		for strings.HasPrefix(rest, prefixParent+".") || rest == prefixParent {
			ups++
			_, rest, _ = strings.Cut(rest, ".")
		}
		if sc.depth == 0 {
			return nil, errors.New("$parent needs each (there is no enclosing element here)")
		}
		target := sc.depth - 1 - ups
		switch {
		case target < -1:
			return nil, fmt.Errorf("%d × $parent goes above the payload: each has %d level(s) here", ups, sc.depth)
		case target == -1:
			ref.base = baseRoot
		default:
			ref.base, ref.level = baseLevel, target
		}
		ref.path = rest
	default:
		name := head[1:]
		idx, ok := sc.names[name]
		if !ok {
			valid := []string{prefixRoot, prefixParent, prefixHeader, prefixQuery}
			for n := range sc.names {
				valid = append(valid, "$"+n)
			}
			sort.Strings(valid)
			return nil, fmt.Errorf("unknown path prefix %q%s (valid: %s; a literal $ key is written \\$)",
				head, yamlconf.DidYouMean(head, valid), strings.Join(valid, ", "))
		}
		ref.base, ref.level, ref.path = baseLevel, idx, rest
	}
	ref.shared = sc.depth > 0 && (ref.base == baseRoot || ref.level < sc.depth-1)
	if ref.path == "" {
		return ref, nil
	}
	return ref, checkGJSON(ref.path)
}

// stockModifiers are gjson's built-in @modifiers, for suggestions.
var stockModifiers = []string{"dig", "flatten", "fromstr", "group", "join", "keys", "pretty", "reverse", "this", "tostr", "ugly", "valid", "values"}

// checkGJSON reports syntax errors in a gjson path that gjson itself would
// silently treat as "not found": empty parts, a trailing separator, a lone
// backslash, unbalanced queries or selectors, unknown @modifiers.
func checkGJSON(p string) error {
	if p == "" {
		return errors.New("empty path")
	}
	if strings.HasPrefix(p, "..") {
		return errors.New("JSON-lines paths (starting with ..) are not supported")
	}
	atStart := true
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\':
			if i+1 == len(p) {
				return errors.New("path ends with a lone backslash")
			}
			i++
			atStart = false
		case c == '.' || c == '|':
			if atStart {
				return fmt.Errorf("empty part before %q at position %d", c, i+1)
			}
			atStart = true
		case c == '#' && i+1 < len(p) && p[i+1] == '(':
			end, err := skipBalanced(p, i+1)
			if err != nil {
				return err
			}
			i = end
			if i+1 < len(p) && p[i+1] == '#' {
				i++
			}
			atStart = false
		case c == '@' && atStart:
			j := i + 1
			for j < len(p) && p[j] != ':' && p[j] != '.' && p[j] != '|' {
				j++
			}
			name := p[i+1 : j]
			if !gjson.ModifierExists(name, nil) {
				return fmt.Errorf("unknown modifier @%s%s", name, yamlconf.DidYouMean(name, stockModifiers))
			}
			if j < len(p) && p[j] == ':' {
				end, err := valueEnd(p, j+1)
				if err != nil {
					return err
				}
				j = end
			}
			i = j - 1
			atStart = false
		case c == '!' && atStart && (i == 0 || p[i-1] == '|'):
			end, isLiteral, err := literalEnd(p, i+1)
			if err != nil {
				return err
			}
			if !isLiteral {
				atStart = false // a key that starts with !
				continue
			}
			// A JSON literal: it is the value, so it must be JSON.
			if lit := p[i+1 : end]; !gjson.Valid(lit) {
				return fmt.Errorf("literal %q at position %d is not JSON", lit, i+1)
			}
			i = end - 1
			atStart = false
		case (c == '[' || c == '{') && atStart:
			end, err := skipBalanced(p, i)
			if err != nil {
				return err
			}
			i = end
			atStart = false
		default:
			atStart = false
		}
	}
	if atStart {
		return fmt.Errorf("path ends with %q", p[len(p)-1])
	}
	return nil
}

// valueEnd returns where a value that starts at p[j] ends (exclusive): a
// bracketed or quoted one at its closer, anything else at the next . or |.
// Modifier arguments and literals are read this way.
func valueEnd(p string, j int) (int, error) {
	if j < len(p) && (p[j] == '{' || p[j] == '[' || p[j] == '"') {
		end, err := skipBalanced(p, j)
		return end + 1, err
	}
	for j < len(p) && p[j] != '.' && p[j] != '|' {
		j++
	}
	return j, nil
}

// literalEnd reads what follows a ! at p[j] the way gjson does: a literal
// when it starts with { [ " + - or a digit (a number runs to the end of
// the path, as gjson reads it) or is true, false, null, nan or inf in any
// case; otherwise ! starts a key. end is where the literal ends.
func literalEnd(p string, j int) (end int, isLiteral bool, err error) {
	if j < len(p) {
		switch c := p[j]; {
		case c == '{' || c == '[' || c == '"':
			end, err := valueEnd(p, j)
			return end, true, err
		case c == '+' || c == '-' || ('0' <= c && c <= '9'):
			return len(p), true, nil
		}
	}
	end, _ = valueEnd(p, j)
	switch strings.ToLower(p[j:end]) {
	case "true", "false", "null", "nan", "inf":
		return end, true, nil
	}
	return end, false, nil
}

// skipBalanced returns the index of the bracket or quote that closes the one
// at p[start], honouring nested brackets, quoted strings and escapes.
func skipBalanced(p string, start int) (int, error) {
	var stack []byte
	closer := map[byte]byte{'(': ')', '[': ']', '{': '}'}
	inString := false
	for i := start; i < len(p); i++ {
		c := p[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
				if len(stack) == 0 {
					return i, nil
				}
			}
			continue
		}
		switch c {
		case '\\':
			i++
		case '"':
			inString = true
		case '(', '[', '{':
			stack = append(stack, closer[c])
		case ')', ']', '}':
			if len(stack) == 0 || stack[len(stack)-1] != c {
				return 0, fmt.Errorf("unexpected %q at position %d", c, i+1)
			}
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return i, nil
			}
		}
	}
	if inString {
		return 0, fmt.Errorf("unclosed string starting at position %d", start+1)
	}
	return 0, fmt.Errorf("unclosed %q at position %d", p[start], start+1)
}

// splitEach splits a single-string each path at its "#" parts into levels:
// "entry.#.changes.#.value.messages" -> [entry changes value.messages]. A
// leading "#" makes the payload itself the first array ("" level); a trailing
// "#" is the same as none.
func splitEach(p string) []string {
	var parts []string
	start, depth := 0, 0
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '\\':
			i++
		case c == '(' || c == '[' || c == '{':
			depth++
		case c == ')' || c == ']' || c == '}':
			depth--
		case c == '"' && depth > 0:
			if end, err := skipBalanced(p, i); err == nil {
				i = end
			}
		case c == '.' && depth == 0:
			parts = append(parts, p[start:i])
			start = i + 1
		}
	}
	parts = append(parts, p[start:])
	var levels []string
	var cur []string
	for _, part := range parts {
		if part == "#" {
			levels = append(levels, strings.Join(cur, "."))
			cur = cur[:0]
			continue
		}
		cur = append(cur, part)
	}
	if len(cur) > 0 || len(levels) == 0 {
		levels = append(levels, strings.Join(cur, "."))
	}
	return levels
}

// CheckPath reports syntax errors in a gjson path that gjson would silently
// treat as "not found" (empty parts, unbalanced queries, unknown @modifiers),
// for other config sections that read JSON by path with plain gjson (a
// payload's dedupe path, a response's field or error code). The mapping
// prefixes such as $root mean nothing there: gjson would look for a key
// named "$root" and never find it, so a $ prefix is refused too.
func CheckPath(p string) error {
	if strings.HasPrefix(p, "$") {
		return errors.New("a plain path from the top of the document; $ prefixes are not allowed here (a literal $ key is written \\$)")
	}
	return checkGJSON(p)
}
