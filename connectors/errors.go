package connectors

import "errors"

// ErrNotHTTP is returned by Render for updates that are not HTTP requests
// (kind log): the delivery layer handles them itself.
var ErrNotHTTP = errors.New("update is not an HTTP request")

// ErrUnknownAction is wrapped by Render when the outbound connector has no
// action for the update.
var ErrUnknownAction = errors.New("unknown outbound action")

// ErrNoOutbound is wrapped by Render when an update needs an outbound
// connector that has no outbound section.
var ErrNoOutbound = errors.New("connector has no outbound section")

// ErrRender is wrapped by Render when an action's template fails or renders
// something unusable (an invalid URL, a JSON body that is not JSON).
var ErrRender = errors.New("render outbound request")

// ErrUnknownKind is wrapped by Render for an update kind it does not know.
var ErrUnknownKind = errors.New("unknown update kind")
