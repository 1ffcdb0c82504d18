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
	if !headerNameRe.MatchString(name) {
		return fmt.Errorf("header name %q is not a valid HTTP header name", name)
	}
	if i := strings.IndexFunc(value, isHeaderControl); i >= 0 {
		what := "a control character"
		if c := value[i]; c == '\r' || c == '\n' {
			what = "a line break"
		}
		return fmt.Errorf("header %s: value holds %s (%q): it cannot be sent", name, what, excerptAround(value, i))
	}
	return nil
}

// isHeaderControl reports whether r may not appear in a header value.
func isHeaderControl(r rune) bool { return (r < ' ' && r != '\t') || r == 0x7f }

// excerptAround returns up to 20 bytes of s either side of i.
func excerptAround(s string, i int) string {
	from, to := max(i-20, 0), min(i+20, len(s))
	return s[from:to]
}
