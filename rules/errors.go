package rules

import "errors"

// ErrUnknownRule is wrapped by Set.Run when no rule has the given id.
var ErrUnknownRule = errors.New("unknown rule")

// ErrUnknownVar is wrapped by runtime template errors when a template asks
// for a variable the event does not carry.
var ErrUnknownVar = errors.New("unknown variable")

// ErrEmptyReference is wrapped by the runtime error of an update_ticket whose
// reference renders empty: such an update is never emitted.
var ErrEmptyReference = errors.New("empty reference")
