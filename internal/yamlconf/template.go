package yamlconf

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
)

// VarShorthand matches the %%NAME%% shorthand of templates (the name is
// its first group).
var VarShorthand = regexp.MustCompile(`%%([A-Za-z_][A-Za-z0-9_]*)%%`)

// VarSource is implemented by the data given to templates compiled here: the
// %%NAME%% shorthand becomes {{ .Var "NAME" }}, which must fail (not render
// empty) when the variable is unknown.
type VarSource interface {
	Var(name string) (string, error)
}

// TemplateVars lists the %%NAME%% variables src refers to, in order of first use.
func TemplateVars(src string) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range VarShorthand.FindAllStringSubmatch(src, -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			out = append(out, m[1])
		}
	}
	return out
}

// IsTemplate reports whether s holds template syntax or a %%NAME%% variable.
func IsTemplate(s string) bool {
	return strings.Contains(s, "{{") || VarShorthand.MatchString(s)
}

// CompileTemplate parses src as a Go text/template after rewriting %%NAME%%
// into {{ .Var "NAME" }}. Missing map keys are errors. eq, ne, lt, le, gt
// and ge compare numbers as numbers whatever their type and never fail on
// their operands' types (see compare.go). Functions: json
// (safe JSON encoding of any value), lower, upper, trim, default, join,
// split, contains, before and after (text around the first separator),
// pathescape (EscapePathSegment) and queryescape (url.QueryEscape).
// A number an action prints comes out as FormatNumber writes it (1000000,
// not fmt's 1e+06).
func CompileTemplate(name, src string) (*template.Template, error) {
	return compileTemplate(name, src, printNumbersFunc)
}

// CompileStrictTemplate is CompileTemplate for templates whose output is
// sent somewhere (rule actions): an action that would print no value (a
// null, a key index does not find) fails with ErrNoValue instead of
// printing text/template's "<no value>".
func CompileStrictTemplate(name, src string) (*template.Template, error) {
	return compileTemplate(name, src, printStrictFunc)
}

// ErrNoValue is the failure of a strict template (see
// CompileStrictTemplate) that would print no value; Execute's error
// carries its text.
var ErrNoValue = errors.New("no value to print (the value is absent or null)")

func compileTemplate(name, src, printFunc string) (*template.Template, error) {
	rewritten := VarShorthand.ReplaceAllString(src, `{{ .Var "$1" }}`)
	funcs := TemplateFuncs()
	t, err := template.New(name).Option("missingkey=error").Funcs(funcs).Parse(rewritten)
	if err != nil {
		err = cleanTemplateError(err, name)
		if m := undefinedFunction.FindStringSubmatch(err.Error()); m != nil {
			names := append([]string(nil), builtinFuncNames...)
			for n := range funcs {
				if n != printNumbersFunc && n != printStrictFunc {
					names = append(names, n)
				}
			}
			sort.Strings(names)
			err = fmt.Errorf("%w%s", err, DidYouMean(m[1], names))
		}
		return nil, fmt.Errorf("template: %w", err)
	}
	for _, sub := range t.Templates() {
		if sub.Tree != nil {
			printNumbers(sub.Tree, sub.Tree.Root, printFunc)
		}
	}
	return t, nil
}

// undefinedFunction matches text/template's error for an unknown function.
var undefinedFunction = regexp.MustCompile(`function "([^"]+)" not defined`)

// builtinFuncNames are text/template's own functions that TemplateFuncs
// does not replace.
var builtinFuncNames = []string{"and", "call", "html", "index", "js", "len", "not", "or", "println", "slice", "urlquery"}

// printNumbersFunc is the function CompileTemplate appends to every action
// that prints its value: text/template prints numbers with fmt, which
// writes a large whole number as 1e+06. printStrictFunc is the one
// CompileStrictTemplate appends: it also refuses to print nil.
const (
	printNumbersFunc = "_hookline_print_numbers"
	printStrictFunc  = "_hookline_print_strict"
)

// printStrict is PrintedValue that fails on nil.
func printStrict(v any) (any, error) {
	if v == nil {
		return nil, ErrNoValue
	}
	return PrintedValue(v), nil
}

// printNumbers appends a call of printFunc to the pipeline of every
// printing action (one without a variable declaration) under l.
func printNumbers(tree *parse.Tree, l *parse.ListNode, printFunc string) {
	if l == nil {
		return
	}
	for _, n := range l.Nodes {
		switch n := n.(type) {
		case *parse.ActionNode:
			if len(n.Pipe.Decl) == 0 {
				n.Pipe.Cmds = append(n.Pipe.Cmds, &parse.CommandNode{
					NodeType: parse.NodeCommand, Pos: n.Pos,
					Args: []parse.Node{parse.NewIdentifier(printFunc).SetTree(tree).SetPos(n.Pos)},
				})
			}
		case *parse.IfNode:
			printNumbers(tree, n.List, printFunc)
			printNumbers(tree, n.ElseList, printFunc)
		case *parse.WithNode:
			printNumbers(tree, n.List, printFunc)
			printNumbers(tree, n.ElseList, printFunc)
		case *parse.RangeNode:
			printNumbers(tree, n.List, printFunc)
			printNumbers(tree, n.ElseList, printFunc)
		}
	}
}

// isPrintNumbers reports whether cmd is the call printNumbers appends, and
// whether it is the strict one.
func isPrintNumbers(cmd *parse.CommandNode) (is, strict bool) {
	if len(cmd.Args) != 1 {
		return false, false
	}
	id, ok := cmd.Args[0].(*parse.IdentifierNode)
	if !ok {
		return false, false
	}
	return id.Ident == printNumbersFunc || id.Ident == printStrictFunc, id.Ident == printStrictFunc
}

// PrintedValue returns v as a template action prints it: a float64 or
// float32 as FormatNumber writes it, a json.Number as FormatNumberLiteral
// does, anything else unchanged (text/template then prints it as it always
// does). Paths that render templates without text/template use it to
// print the same.
func PrintedValue(v any) any {
	switch x := v.(type) {
	case float64:
		return FormatNumber(x, 64)
	case float32:
		return FormatNumber(float64(x), 32)
	case json.Number:
		return FormatNumberLiteral(string(x))
	}
	return v
}

// FormatNumberLiteral writes a JSON number literal as references and
// templates print it: as it is, unless it has a fraction or an exponent
// and is a whole number that float64 holds exactly (1e6, 1000000.0: what
// some senders' JSON encoders write), which is written as plain digits.
func FormatNumberLiteral(lit string) string {
	if !strings.ContainsAny(lit, ".eE") {
		return lit
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) >= 1<<53 {
		return lit
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// FormatNumber writes a number of the given bit size (64 or 32) as
// Hookline's templates print it: a whole number as plain digits (1000000,
// as references write it, never 1e+06), any other in its shortest form,
// in decimal unless it is below 1e-6 (0.25, 1234.5678, 1e-07).
func FormatNumber(f float64, bitSize int) string {
	if f != math.Trunc(f) && f != 0 && math.Abs(f) < 1e-6 {
		return strconv.FormatFloat(f, 'e', -1, bitSize)
	}
	return strconv.FormatFloat(f, 'f', -1, bitSize)
}

// TextOf is a template value as text: a string as it is, nil as "", a
// number as templates print it (PrintedValue: whole numbers in plain
// digits), anything else as fmt prints it.
func TextOf(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64, float32, json.Number:
		return PrintedValue(x).(string)
	}
	return fmt.Sprint(v)
}

// TemplateFuncs returns the function map every Hookline template gets.
func TemplateFuncs() template.FuncMap {
	return template.FuncMap{
		printNumbersFunc: PrintedValue,
		printStrictFunc:  printStrict,
		// Comparisons that take a payload's values as they come (see
		// compare.go): text/template's fail on mixed types.
		"eq": templateEq,
		"ne": func(a, b any) bool { return !templateEqual(a, b) },
		"lt": templateOrderFunc(func(c int) bool { return c < 0 }),
		"le": templateOrderFunc(func(c int) bool { return c <= 0 }),
		"gt": templateOrderFunc(func(c int) bool { return c > 0 }),
		"ge": templateOrderFunc(func(c int) bool { return c >= 0 }),
		"json": func(v any) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
		// A payload's numbers and booleans come as json.Number and bool:
		// these take any value, as its text (nil: "").
		"lower": func(v any) string { return strings.ToLower(TextOf(v)) },
		"upper": func(v any) string { return strings.ToUpper(TextOf(v)) },
		"trim":  func(v any) string { return strings.TrimSpace(TextOf(v)) },
		// For values put into URLs: the value stays one path segment or
		// one query value, whatever it holds.
		"pathescape":  func(v any) string { return EscapePathSegment(TextOf(v)) },
		"queryescape": func(v any) string { return url.QueryEscape(TextOf(v)) },
		"default": func(def, v any) any {
			if v == nil || v == "" {
				return def
			}
			return v
		},
		"split": func(sep string, v any) []string {
			s := strings.TrimSpace(fmt.Sprint(v))
			if s == "" {
				return nil
			}
			if sep == " " {
				return strings.Fields(s)
			}
			return strings.Split(s, sep)
		},
		"contains": func(sub string, v any) bool { return strings.Contains(fmt.Sprint(v), sub) },
		"before": func(sep string, v any) string {
			before, _, _ := strings.Cut(fmt.Sprint(v), sep)
			return before
		},
		"after": func(sep string, v any) string {
			_, after, _ := strings.Cut(fmt.Sprint(v), sep)
			return after
		},
		"join": func(sep string, v any) string {
			switch x := v.(type) {
			case []string:
				return strings.Join(x, sep)
			case []any:
				parts := make([]string, len(x))
				for i, e := range x {
					parts[i] = TextOf(e)
				}
				return strings.Join(parts, sep)
			}
			return TextOf(v)
		},
		"print":  templatePrint,
		"printf": templatePrintf,
	}
}

// printedNumber is a number given to print or printf: %v and %s print it
// as a template action does (PrintedValue: 1000000, never 1e+06 or a
// payload's 1e6), every other verb (%d, %.2f, %#v) as fmt does.
type printedNumber struct{ v any }

// Format implements fmt.Formatter.
func (p printedNumber) Format(f fmt.State, verb rune) {
	if verb == 's' || (verb == 'v' && !f.Flag('#')) {
		fmt.Fprintf(f, fmt.FormatString(f, verb), PrintedValue(p.v))
		return
	}
	fmt.Fprintf(f, fmt.FormatString(f, verb), p.v)
}

// printArg wraps a number for print and printf (see printedNumber).
func printArg(v any) any {
	switch v.(type) {
	case float64, float32, json.Number:
		return printedNumber{v}
	}
	return v
}

// templatePrint is print: fmt.Sprint, with numbers as actions print them.
func templatePrint(args ...any) string {
	var b strings.Builder
	prevString := false
	for i, a := range args {
		// fmt.Sprint's spacing: between operands when neither is a string.
		isString := a != nil && reflect.TypeOf(a).Kind() == reflect.String
		if i > 0 && !isString && !prevString {
			b.WriteByte(' ')
		}
		fmt.Fprint(&b, printArg(a))
		prevString = isString
	}
	return b.String()
}

// templatePrintf is printf: fmt.Sprintf, with numbers as actions print
// them under %v and %s.
func templatePrintf(format string, args ...any) string {
	wrapped := make([]any, len(args))
	for i, a := range args {
		wrapped[i] = printArg(a)
	}
	return fmt.Sprintf(format, wrapped...)
}

// EscapePathSegment escapes s for one URL path segment: url.PathEscape,
// and "." and ".." (which URL resolvers and servers take as "this" and "the
// parent" directory) become %2E and %2E%2E, so that no value can change
// which path a request goes to ("../admin" renders "..%2Fadmin").
func EscapePathSegment(s string) string {
	switch s {
	case ".":
		return "%2E"
	case "..":
		return "%2E%2E"
	}
	return url.PathEscape(s)
}

// Execute renders t with data into a string.
func Execute(t *template.Template, data any) (string, error) {
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", cleanTemplateError(err, t.Name())
	}
	return b.String(), nil
}

// cleanTemplateError strips the template's internal name prefix so messages
// read well after a file:line:column.
func cleanTemplateError(err error, name string) error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "template: ")
	msg = strings.TrimPrefix(msg, name+":")
	msg = strings.Replace(msg, " at <"+printStrictFunc+">: error calling "+printStrictFunc, "", 1)
	return fmt.Errorf("%s", strings.TrimSpace(msg))
}
