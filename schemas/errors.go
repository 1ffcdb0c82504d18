package schemas

import (
	"errors"
	"fmt"
)

// ErrUnknownSchema is wrapped when a schema name is not embedded.
var ErrUnknownSchema = errors.New("unknown schema")

// ErrInvalidJSON is wrapped by ValidateJSON when the body is not JSON.
var ErrInvalidJSON = errors.New("invalid JSON")

// ValidationError is a document that does not satisfy its schema. Pointer is
// the JSON pointer (RFC 6901) of the most specific failing field ("" for the
// document itself) and Reason a one-line explanation.
type ValidationError struct {
	Schema  string `json:"schema"`
	Pointer string `json:"pointer"`
	Reason  string `json:"reason"`
}

// Error renders "schema <name>: <pointer>: <reason>".
func (e *ValidationError) Error() string {
	p := e.Pointer
	if p == "" {
		p = "/"
	}
	return fmt.Sprintf("schema %s: %s: %s", e.Schema, p, e.Reason)
}
