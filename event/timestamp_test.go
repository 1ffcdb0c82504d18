package event

import (
	"encoding/json"
	"testing"
)

// A Unix timestamp of zero or below is not a time ("not set" in many
// payloads); the smallest positive ones still are.
func TestParseTimeRefusesUnsetTimestamps(t *testing.T) {
	tests := []struct {
		v  any
		ok bool
	}{
		{json.Number("0"), false},
		{json.Number("0.0"), false},
		{json.Number("-0"), false},
		{json.Number("-1"), false},
		{json.Number("-1.5"), false},
		{json.Number("-1e3"), false},
		{"0", false},
		{" -1717236000 ", false},
		{0.0, false},
		{-1717236000.0, false},
		{json.Number("1"), true},
		{json.Number("0.5"), true},
		{json.Number("1717236000"), true},
		{"1717236000123", true},
		{1717236000.0, true},
	}
	for _, tc := range tests {
		got, ok := ParseTime(tc.v)
		if ok != tc.ok {
			t.Errorf("ParseTime(%T %v) = %v, %v; want ok %v", tc.v, tc.v, got, ok, tc.ok)
		}
	}
}
