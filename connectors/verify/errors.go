package verify

import "errors"

// ErrUnauthorized is matched (errors.Is) by every error Verify returns.
var ErrUnauthorized = errors.New("unauthorized")

// ErrUnknownScheme is wrapped by New when Config.Scheme names no scheme.
var ErrUnknownScheme = errors.New("unknown verify scheme")

// ErrMissingSecret is wrapped by New when a scheme that needs a secret has none.
var ErrMissingSecret = errors.New("missing verify secret")

// ErrInvalidConfig is wrapped by New for any other bad setting.
var ErrInvalidConfig = errors.New("invalid verify config")

// Error is a refused inbound request. Reason is one line, safe to log and to
// show the caller: it never holds a secret or a signature.
type Error struct {
	Reason string
}

// Error returns the reason.
func (e *Error) Error() string { return e.Reason }

// Unwrap makes errors.Is(err, ErrUnauthorized) true.
func (e *Error) Unwrap() error { return ErrUnauthorized }

// refuse builds the *Error for reason.
func refuse(reason string) error { return &Error{Reason: reason} }
