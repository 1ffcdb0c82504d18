package gateway

import (
	"time"

	"github.com/hookline/hookline/store"
)

// idGen hands out the ids of events and deliveries: the store's ULIDs,
// sortable by creation time, unique even inside one millisecond, and
// after every id the store already holds (a clock set back between two
// runs does not put new deliveries of a ticket before its old ones).
type idGen struct{ db *store.DB }

// New returns a new id for time t.
func (g *idGen) New(t time.Time) string { return g.db.NewIDAt(t) }
