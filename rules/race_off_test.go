//go:build !race

package rules

// raceEnabled reports whether the race detector is on: sync.Pool (used by
// regexp) drops items at random under it, so allocation counts differ.
const raceEnabled = false
