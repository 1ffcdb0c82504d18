package yamlconf

import (
	"cmp"
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// The comparison functions of Hookline's templates (eq, ne, lt, le, gt,
// ge) replace text/template's, which fail the whole run on operands of
// different types: a payload's number (json.Number) against a literal 4,
// or an absent value ("") against true. Here:
//
//   - numbers compare as numbers, whatever their Go type, and a text that
//     is a decimal number ("4", "2.50") compares with a number as that
//     number; two texts compare as texts ("4" is not "4.0");
//   - a number never equals a value that is not one (a word, a boolean, an
//     absent value); two booleans compare as booleans; anything else
//     compares by its text as templates print it (nil, an absent value, is
//     ""), so true equals "true" and an absent value equals "" only;
//   - an absent or empty value, a boolean and a text that is not a number
//     against a number are not ordered: lt, le, gt and ge are false with
//     them, as the rules' gt/gte/lt/lte conditions are with an absent value.
//
// None of them fails on its operands' types.

// errNoOperand is eq's error when it has nothing to compare with.
var errNoOperand = errors.New("missing argument for comparison")

// templateEq is eq: whether a equals any of bs.
func templateEq(a any, bs ...any) (bool, error) {
	if len(bs) == 0 {
		return false, errNoOperand
	}
	for _, b := range bs {
		if templateEqual(a, b) {
			return true, nil
		}
	}
	return false, nil
}

// compareNumber is a number operand: an int64, or a float64 or the
// decimal text of a number beyond int64 (compared exactly, so that two
// 20-digit ids that one float64 holds stay different).
type compareNumber struct {
	i     int64
	isInt bool
	f     float64
	r     *big.Rat // set when the number came as text and is not an int64 (read once)
}

// numberOperand returns v as a number when it is a Go number or a
// json.Number.
func numberOperand(v any) (compareNumber, bool) {
	switch x := v.(type) {
	case int:
		return intNumber(int64(x)), true
	case int8:
		return intNumber(int64(x)), true
	case int16:
		return intNumber(int64(x)), true
	case int32:
		return intNumber(int64(x)), true
	case int64:
		return intNumber(x), true
	case uint:
		return uintNumber(uint64(x)), true
	case uint8:
		return uintNumber(uint64(x)), true
	case uint16:
		return uintNumber(uint64(x)), true
	case uint32:
		return uintNumber(uint64(x)), true
	case uint64:
		return uintNumber(x), true
	case float32:
		return compareNumber{f: float64(x)}, true
	case float64:
		return compareNumber{f: x}, true
	case json.Number:
		return numberText(string(x))
	}
	return compareNumber{}, false
}

func intNumber(i int64) compareNumber { return compareNumber{i: i, isInt: true, f: float64(i)} }

func uintNumber(u uint64) compareNumber {
	if u <= math.MaxInt64 {
		return intNumber(int64(u))
	}
	return compareNumber{f: float64(u)}
}

// numberText reads a decimal number written as text ("4", " -2.5 ",
// "1e3"); words, "NaN", "Inf" and hexadecimal are not numbers here.
func numberText(s string) (compareNumber, bool) {
	s = strings.TrimSpace(s)
	digits := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits = true
		case c == '.', c == '-', c == '+', c == 'e', c == 'E':
		default:
			return compareNumber{}, false
		}
	}
	if !digits {
		return compareNumber{}, false
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return intNumber(i), true
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return compareNumber{}, false
	}
	return compareNumber{r: r}, true
}

// rat returns n exactly; false for NaN and the infinities.
func (n compareNumber) rat() (*big.Rat, bool) {
	switch {
	case n.isInt:
		return new(big.Rat).SetInt64(n.i), true
	case n.r != nil:
		return n.r, true // Cmp does not change it
	case math.IsNaN(n.f) || math.IsInf(n.f, 0):
		return nil, false
	}
	return new(big.Rat).SetFloat64(n.f), true
}

// compareNumbers orders two numbers exactly; ok is false when one is NaN
// or an infinity is compared with a finite number by text.
func compareNumbers(a, b compareNumber) (int, bool) {
	if a.isInt && b.isInt {
		return cmp.Compare(a.i, b.i), true
	}
	ra, okA := a.rat()
	rb, okB := b.rat()
	if !okA || !okB {
		if okA || okB || math.IsNaN(a.f) || math.IsNaN(b.f) {
			return 0, false
		}
		return cmp.Compare(a.f, b.f), true // two infinities
	}
	return ra.Cmp(rb), true
}

// numbersOf returns both operands as numbers when one is a number and the
// other a number or a text that is one; bothNumeric is false when neither
// is a number (the operands are then compared otherwise).
func numbersOf(a, b any) (na, nb compareNumber, bothNumeric, oneNumber bool) {
	na, aNum := numberOperand(a)
	nb, bNum := numberOperand(b)
	switch {
	case aNum && bNum:
		return na, nb, true, true
	case aNum:
		s, isText := b.(string)
		if !isText {
			return na, nb, false, true
		}
		nb, ok := numberText(s)
		return na, nb, ok, true
	case bNum:
		s, isText := a.(string)
		if !isText {
			return na, nb, false, true
		}
		na, ok := numberText(s)
		return na, nb, ok, true
	}
	return na, nb, false, false
}

// templateEqual is the equality of eq and ne (see above).
func templateEqual(a, b any) bool {
	if na, nb, numeric, oneNumber := numbersOf(a, b); numeric {
		c, ok := compareNumbers(na, nb)
		return ok && c == 0
	} else if oneNumber {
		return false
	}
	if ba, ok := a.(bool); ok {
		if bb, ok := b.(bool); ok {
			return ba == bb
		}
	}
	return TextOf(a) == TextOf(b)
}

// templateOrder orders a and b for lt, le, gt and ge; ok is false when
// they are not ordered (see above).
func templateOrder(a, b any) (int, bool) {
	if na, nb, numeric, oneNumber := numbersOf(a, b); numeric {
		return compareNumbers(na, nb)
	} else if oneNumber {
		return 0, false
	}
	sa, aText := a.(string)
	sb, bText := b.(string)
	if !aText || !bText || sa == "" || sb == "" {
		return 0, false
	}
	return strings.Compare(sa, sb), true
}

// templateOrderFunc returns the function of lt, le, gt or ge: whether the
// order of its operands satisfies holds.
func templateOrderFunc(holds func(c int) bool) func(a, b any) bool {
	return func(a, b any) bool {
		c, ok := templateOrder(a, b)
		return ok && holds(c)
	}
}
