package store

import "errors"

// Sentinel errors. Every error the package returns wraps one of these or an
// underlying I/O error; test with errors.Is.
var (
	// ErrNotFound is returned when a record does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrClosed is returned by every operation after Close.
	ErrClosed = errors.New("store: closed")
	// ErrState is returned when an operation is not allowed in the record's
	// current state (retrying a pending delivery, finishing one that is not in
	// flight, cancelling one that is not pending).
	ErrState = errors.New("store: operation not allowed in current state")
	// ErrReadOnly is returned by write methods of a Tx obtained from View.
	ErrReadOnly = errors.New("store: read-only transaction")
	// ErrLocked is returned by Open when another process holds the file.
	ErrLocked = errors.New("store is locked by another process")
	// ErrInvalid is returned for arguments the store cannot accept: an empty
	// event id, a NUL byte inside a key part, an unknown state name, an id
	// that already exists.
	ErrInvalid = errors.New("store: invalid argument")
)
