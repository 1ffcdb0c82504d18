package connectors

import (
	"fmt"
	"strings"
)

// CheckHeader returns an error when name: value cannot be sent as an HTTP
// header: a name that is not a token (RFC 9110), or a value holding a
// control character other than tab. net/http refuses to send either, and a
// line break would end the header and start another, so a request holding
// one is unsendable however often it is retried.
func CheckHeader(name, value string) error {
	if !validHeaderName(name) {
		return fmt.Errorf("header name %q is not a valid HTTP header name", name)
	}
	if err := checkHeaderValue(value); err != nil {
		return fmt.Errorf("header %s: %w", name, err)
	}
	return nil
}

// checkHeaderValue is CheckHeader's check of a value. The value is not
// quoted in the error: it may be a secret (${ENV} in a header, a token).
func checkHeaderValue(value string) error {
	if i := strings.IndexFunc(value, isHeaderControl); i >= 0 {
		what := "a control character"
		if c := value[i]; c == '\r' || c == '\n' {
			what = "a line break"
		}
		return fmt.Errorf("value holds %s at byte %d of %d: it cannot be sent", what, i, len(value))
	}
	return nil
}

// isHeaderControl reports whether r may not appear in a header value.
func isHeaderControl(r rune) bool { return (r < ' ' && r != '\t') || r == 0x7f }

// validHeaderName reports whether s is an HTTP field name: one or more
// token characters (RFC 9110 §5.1). A table, not a regexp: it runs for
// every header of every request.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenChar[s[i]] {
			return false
		}
	}
	return true
}

// tokenChar marks the bytes of an RFC 9110 token.
var tokenChar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()
