package gateway

import (
	"crypto/sha256"
	"sync"
	"time"
)

// replayGuard remembers the signed requests of timestamp schemes
// (verify.Request.ReplayKey) for as long as a copy of them would still pass
// the timestamp check, so that a captured request sent again with other
// unsigned headers (a new Zendesk invocation id: the dedupe key) is
// answered as the duplicate it is, not accepted a second time.
//
// It lives in memory: a copy replayed within the tolerance after a restart
// is not recognised by it (the dedupe key still is, when it is signed). At
// most maxReplayEntries are kept; past that the oldest go first, which
// only shortens how long the oldest are remembered.
type replayGuard struct {
	mu      sync.Mutex
	entries map[replayKey]*replayEntry
	order   []replayKey // insertion order, for expiry and the cap
	head    int         // order[:head] are gone
}

type replayKey [16]byte

type replayEntry struct {
	id      string // the inbox id; "" while the first copy is being stored
	expires time.Time
	// released is set by forget: the entry is free for the next copy,
	// which takes it over in place (it keeps its one slot in order).
	released bool
}

// maxReplayEntries bounds the guard's memory (~100 bytes per entry).
const maxReplayEntries = 1 << 18

// replayState is what the guard knows of a signed request.
type replayState uint8

const (
	replayNew      replayState = iota // first seen: reserved, call done or forget
	replayInFlight                    // a copy is being stored right now
	replaySeen                        // stored before, under the id returned
)

func newReplayGuard() *replayGuard {
	return &replayGuard{entries: map[replayKey]*replayEntry{}}
}

func keyOf(connector, signed string) replayKey {
	sum := sha256.Sum256([]byte(connector + "\x00" + signed))
	var k replayKey
	copy(k[:], sum[:])
	return k
}

// check looks the signed request up. A new one is reserved until done
// (stored, with its inbox id) or forget (not stored) is called with the
// key check returns.
func (g *replayGuard) check(connector, signed string, window time.Duration, now time.Time) (replayKey, string, replayState) {
	k := keyOf(connector, signed)
	id, st := g.lookup(k, window, now)
	return k, id, st
}

func (g *replayGuard) lookup(k replayKey, window time.Duration, now time.Time) (string, replayState) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.expire(now)
	e, ok := g.entries[k]
	switch {
	case ok && e.released:
		// Taken over in place: a platform retrying a request that failed
		// to store must not grow the order by one slot per attempt.
		*e = replayEntry{expires: now.Add(window)}
		return "", replayNew
	case ok && now.Before(e.expires):
		if e.id == "" {
			return "", replayInFlight
		}
		return e.id, replaySeen
	case ok:
		delete(g.entries, k) // expired behind an older unexpired one
	}
	g.entries[k] = &replayEntry{expires: now.Add(window)}
	g.order = append(g.order, k)
	return "", replayNew
}

// done records the inbox id a reserved request was stored (or found a
// duplicate) under.
func (g *replayGuard) done(k replayKey, id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if e, ok := g.entries[k]; ok {
		e.id = id
	}
}

// forget drops a reservation whose request was not stored: a copy sent
// again (the platform's retry) must be able to try again.
func (g *replayGuard) forget(k replayKey) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if e, ok := g.entries[k]; ok && e.id == "" {
		e.released = true
	}
}

// expire drops entries from the front of the insertion order while they
// have expired (or are gone), and the oldest while the guard is full, so
// that one more fits. Windows differ between connectors, so an unexpired
// entry can stand before expired ones: those wait for it, which costs
// memory, never a missed replay.
func (g *replayGuard) expire(now time.Time) {
	for g.head < len(g.order) {
		k := g.order[g.head]
		e, ok := g.entries[k]
		if ok && now.Before(e.expires) && len(g.entries) < maxReplayEntries {
			break
		}
		if ok {
			delete(g.entries, k)
		}
		g.head++
	}
	if g.head > 1024 && g.head*2 > len(g.order) {
		g.order = append(g.order[:0], g.order[g.head:]...)
		g.head = 0
	}
}
