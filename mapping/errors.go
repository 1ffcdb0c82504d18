package mapping

import "errors"

// Sentinel errors returned by Map. Every error Map returns wraps one of these;
// test with errors.Is.
var (
	// ErrNotJSON is returned when the payload is not valid JSON.
	ErrNotJSON = errors.New("mapping: payload is not JSON")
	// ErrTemplate is returned when a template fails at run time (an unknown
	// variable, a bad dynamic path, a function error).
	ErrTemplate = errors.New("mapping: template failed")
	// ErrNoReference is returned when an event's reference resolves absent or
	// empty: an event is never emitted without the key of its entity.
	ErrNoReference = errors.New("mapping: event reference is absent")
	// ErrNoType is returned when a dynamic type or entity resolves absent or
	// empty.
	ErrNoType = errors.New("mapping: event type or entity is absent")
	// ErrTooManyEvents is returned when a payload maps to more events than
	// the mapper's cap (Mapper.MaxEvents): the payload fails as a whole,
	// never truncated.
	ErrTooManyEvents = errors.New("mapping: too many events in one payload")
	// ErrTooManyFields is returned when an event maps to more fields than
	// the mapper's cap (Mapper.MaxFields): a sender choosing the keys of a
	// payload mapped whole (custom: "@this") cannot grow an entity without
	// end. The payload fails as a whole, never truncated.
	ErrTooManyFields = errors.New("mapping: too many fields in one event")
)
