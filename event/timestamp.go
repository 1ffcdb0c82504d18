package event

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
)

// Unix timestamps are told apart by magnitude: below 1e11 they are seconds
// (until the year 5138), below 1e14 milliseconds, below 1e17 microseconds,
// and nanoseconds above.
const (
	unixMillisFrom = 1e11
	unixMicrosFrom = 1e14
	unixNanosFrom  = 1e17
)

// ParseTime reads a timestamp: a time.Time, an RFC 3339 string or one of
// its common variants (see parseTimeText), or Unix
// seconds, milliseconds, microseconds or nanoseconds as a number (float64,
// json.Number) or a numeric string, told apart by magnitude (seconds may
// carry a decimal fraction, as Slack's "1596183880.004200"). Mapped
// occurred_at values and the rules' since: fields are read with it. The
// result is in UTC; ok is false for anything else (a zero time.Time too),
// and for a Unix timestamp of zero or below: many payloads send 0 for "not
// set", and no event of a live system happened in or before 1970.
func ParseTime(v any) (time.Time, bool) {
	var s string
	switch x := v.(type) {
	case time.Time:
		return x.UTC(), !x.IsZero()
	case string:
		s = strings.TrimSpace(x)
		if !looksNumeric(s) {
			return parseTimeText(s)
		}
	case json.Number:
		s = string(x)
	case float64:
		return unixFloat(x)
	default:
		return time.Time{}, false
	}
	return parseUnix(s)
}

// timeLayouts are the forms of a date and time with a zone that
// parseTimeText reads after RFC 3339, once a space or a lower-case t
// between date and time became T, a lower-case z became Z and a trailing
// " UTC" became Z: an offset without a colon (+0000, as Ruby, Java and
// strftime's %z write it) or of hours only (+02, PostgreSQL), also after a
// space, and a time without seconds (Zendesk's {{ticket.*_with_timestamp}}
// placeholders: 2013-12-12T05:35Z). A fraction of a second is read after
// the seconds in each.
var timeLayouts = []string{
	"2006-01-02T15:04:05Z0700",
	"2006-01-02T15:04:05Z07",
	"2006-01-02T15:04:05 Z0700",
	"2006-01-02T15:04:05 Z07",
	"2006-01-02T15:04:05 Z07:00",
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04Z0700",
}

// parseTimeText reads a date and time with a time zone: RFC 3339 (with or
// without a fraction of a second), or one of timeLayouts. A time without a
// zone, or with a zone name other than UTC, is not read: taking it for UTC
// would shift it by hours without a word.
func parseTimeText(s string) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), true
	}
	if len(s) < len("2006-01-02T15:04Z") {
		return time.Time{}, false
	}
	if c := s[10]; c == ' ' || c == 't' {
		s = s[:10] + "T" + s[11:]
	}
	if strings.HasSuffix(s, "z") {
		s = s[:len(s)-1] + "Z"
	} else if strings.HasSuffix(s, " UTC") {
		s = strings.TrimSuffix(s, " UTC") + "Z"
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), true
	}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// parseUnix parses a decimal Unix timestamp exactly (no float rounding of
// the fraction).
func parseUnix(s string) (time.Time, bool) {
	intPart, frac, hasFrac := strings.Cut(s, ".")
	n, err := strconv.ParseInt(intPart, 10, 64)
	if err != nil || (hasFrac && !allDigits(frac)) || intPart == "" || intPart == "-" {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil {
			return time.Time{}, false
		}
		return unixFloat(f)
	}
	abs := n
	if abs < 0 {
		abs = -abs
	}
	// fracNanos scales the fraction digits to the unit's nanoseconds.
	fracNanos := func(unitDigits int) int64 {
		if !hasFrac || unitDigits == 0 {
			return 0
		}
		d := frac
		if len(d) > unitDigits {
			d = d[:unitDigits]
		}
		d += strings.Repeat("0", unitDigits-len(d))
		f, _ := strconv.ParseInt(d, 10, 64)
		if strings.HasPrefix(intPart, "-") {
			return -f
		}
		return f
	}
	if n < 0 || strings.HasPrefix(intPart, "-") || (n == 0 && strings.Trim(frac, "0") == "") {
		return time.Time{}, false // not set, or before 1970 (see ParseTime)
	}
	var t time.Time
	switch {
	case abs < unixMillisFrom:
		t = time.Unix(n, fracNanos(9))
	case abs < unixMicrosFrom:
		t = time.UnixMilli(n).Add(time.Duration(fracNanos(6)))
	case abs < unixNanosFrom:
		t = time.UnixMicro(n).Add(time.Duration(fracNanos(3)))
	default:
		t = time.Unix(0, n)
	}
	return t.UTC(), true
}

func unixFloat(f float64) (time.Time, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 || f >= 9.2e18 {
		return time.Time{}, false
	}
	var perSecond float64
	switch abs := math.Abs(f); {
	case abs < unixMillisFrom:
		perSecond = 1
	case abs < unixMicrosFrom:
		perSecond = 1e3
	case abs < unixNanosFrom:
		perSecond = 1e6
	default:
		perSecond = 1e9
	}
	secs := f / perSecond
	whole := math.Trunc(secs)
	return time.Unix(int64(whole), int64(math.Round((secs-whole)*1e6))*1e3).UTC(), true
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// looksNumeric reports whether s is made of digits, a sign, a decimal point
// and exponent letters only (a Unix timestamp, not an RFC 3339 time).
func looksNumeric(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9', c == '.', c == '-', c == '+', c == 'e', c == 'E':
		default:
			return false
		}
	}
	return s != ""
}
