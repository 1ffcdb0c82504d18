package gateway

import (
	"crypto/rand"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// idGen hands out monotonic ULIDs: sortable by creation time, unique within
// one gateway even inside one millisecond.
type idGen struct {
	mu      sync.Mutex
	entropy *ulid.MonotonicEntropy
}

func newIDGen() *idGen {
	return &idGen{entropy: ulid.Monotonic(rand.Reader, 0)}
}

func (g *idGen) New(t time.Time) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return ulid.MustNew(ulid.Timestamp(t), g.entropy).String()
}
