package store

// maxListScan bounds how many stored records one page of ListEvents,
// ListDeliveries or ListTimers reads (as maxInboxScan does for ListInbox).
const maxListScan = 20000

// listPage gathers one page of an admin list while the list walks its
// records in order: at most limit records that match, out of at most
// budget records read, and the cursor of the next page. A filter that few
// records match ends the page short, possibly empty, where the budget ran
// out, with a cursor that goes on from there: a page never reads the
// whole history in one read transaction (bbolt cannot remap its file
// while one is open, so a commit that grows the file waits for it).
//
// P is a record's place in the list's order (an id, a timer), which
// cursor turns into the text of a cursor; the list goes on strictly after
// that place. Places are only turned into text during the walk, so a P
// may point into the read transaction's memory.
type listPage[T, P any] struct {
	limit, budget int
	cursor        func(P) string
	items         []T
	// next is the cursor of the next page, "" when the walk ended by itself.
	next     string
	read     int
	lastRead P // the place of the last record read
	lastItem P // the place of the last record taken
}

// newListPage makes a page of at most limit items reading at most budget
// records (at least one).
func newListPage[T, P any](limit, budget int, cursor func(P) string) *listPage[T, P] {
	return &listPage[T, P]{limit: limit, budget: max(budget, 1), cursor: cursor}
}

// reach is called for each record the walk comes to, at place at, before
// the record is read (decoded and matched). It returns false when the
// budget is spent: the walk stops there, and the next page starts at this
// record.
func (p *listPage[T, P]) reach(at P) bool {
	if p.read == p.budget {
		p.next = p.cursor(p.lastRead)
		return false
	}
	p.read++
	p.lastRead = at
	return true
}

// take adds item, the record reach was last called for, which matches. It
// returns false when the page is full already: the walk stops, and the
// next page starts at this record (so a full page is followed by a cursor
// only when another match exists).
func (p *listPage[T, P]) take(item T) bool {
	if len(p.items) == p.limit {
		p.next = p.cursor(p.lastItem)
		return false
	}
	p.items = append(p.items, item)
	p.lastItem = p.lastRead
	return true
}

// idCursor is the cursor of a list ordered by record ids.
func idCursor(id []byte) string { return string(id) }
