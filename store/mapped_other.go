//go:build !linux

package store

// residentFileBytes is not measured outside Linux: the mapping is never
// trimmed there.
func residentFileBytes() (int64, bool) { return 0, false }

// dropMapped does nothing outside Linux.
func dropMapped(addr uintptr, size int64) error { return nil }
