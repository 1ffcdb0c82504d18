// Package jsonenc holds the small pieces of JSON encoding that Hookline's
// hand-written encoders share (the store's record encoders, the template
// plan's json function): the bytes are exactly encoding/json's, without
// its reflection and allocations.
package jsonenc
