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
		// The value is not quoted: it may be a secret (${ENV} in a header).
		return fmt.Errorf("header %s: value holds %s at byte %d of %d: it cannot be sent", name, what, i, len(value))
	}
	return nil
}

// isHeaderControl reports whether r may not appear in a header value.
func isHeaderControl(r rune) bool { return (r < ' ' && r != '\t') || r == 0x7f }
