// Package bug turns a recovered panic (a bug in Hookline that some input
// triggers) into an error that carries the panic's stack. The item, event
// or request that triggered it then fails alone, with a reason that says
// what was being done, and whoever handles the error logs the stack once.
package bug

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
)

// Panic is a recovered panic as an error.
type Panic struct {
	// What was being done, as "mapping inbox item X".
	What string
	// Value is what was passed to panic.
	Value any
	// Stack is the panicking goroutine's stack at the recovery.
	Stack []byte
}

// Error says "internal error while <What>: <Value>".
func (p *Panic) Error() string { return fmt.Sprintf("internal error while %s: %v", p.What, p.Value) }

// Recovered makes the Panic for value r, recovered while doing what. Call
// it in the deferred function that recovered, so that the stack is the
// panic's.
func Recovered(what string, r any) *Panic {
	return &Panic{What: what, Value: r, Stack: debug.Stack()}
}

// Log logs the panic as an error with its stack, and args, once, and
// returns it.
func (p *Panic) Log(log *slog.Logger, args ...any) *Panic {
	msg, attrs := p.Record(args...)
	log.Error(msg, attrs...)
	return p
}

// Record is the log line Log writes, for a caller that writes it later
// (once a transaction has committed): its message, and args with the
// stack.
func (p *Panic) Record(args ...any) (msg string, attrs []any) {
	return p.Error() + "; please report it with this stack", append(args, "stack", string(p.Stack))
}

// As returns the Panic in err's chain, if there is one.
func As(err error) (*Panic, bool) {
	var p *Panic
	ok := errors.As(err, &p)
	return p, ok
}
