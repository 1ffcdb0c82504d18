package delivery

import (
	"errors"
	"fmt"
	"net/netip"
)

// Sentinel errors. Test with errors.Is.
var (
	// ErrConfig is returned by New for an unusable configuration.
	ErrConfig = errors.New("delivery: invalid config")
	// ErrEgressRefused is wrapped by every egress guard refusal (see EgressError).
	ErrEgressRefused = errors.New("egress refused")
	// ErrLogPath is returned for a log file path that is not a relative path
	// inside the log directory.
	ErrLogPath = errors.New("log file path outside the log directory")
	// ErrNoLogDir is returned for a log delivery when no log directory is configured.
	ErrNoLogDir = errors.New("no log directory configured")
	// ErrRunning is returned by a second call of Dispatcher.Run.
	ErrRunning = errors.New("delivery: dispatcher already running")
	// ErrUnknownConnector is the reason of a delivery whose outbound connector
	// is not configured.
	ErrUnknownConnector = errors.New("unknown outbound connector")
)

// EgressError is the egress guard's refusal to connect to an address.
type EgressError struct {
	// Addr is the address that was refused.
	Addr netip.Addr
	// Kind says what kind of address it is ("loopback address", ...).
	Kind string
	// Metadata is true for cloud metadata addresses, which allow_private does
	// not open.
	Metadata bool
}

// Error names the address, why it was refused and how to allow it.
func (e *EgressError) Error() string {
	if e.Metadata {
		return fmt.Sprintf("egress to %s refused: %s; allow it with egress.allow", e.Addr, e.Kind)
	}
	return fmt.Sprintf("egress to %s refused: %s; allow it with egress.allow or allow_private", e.Addr, e.Kind)
}

// Is makes errors.Is(err, ErrEgressRefused) true.
func (e *EgressError) Is(target error) bool { return target == ErrEgressRefused }

// permanentError marks a failure that no retry can fix (a request that
// cannot be built, auth that cannot be applied): the delivery fails at once.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }
