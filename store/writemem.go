package store

// writeMem is the scratch memory of write transactions: the JSON encoder
// and an arena the values and keys handed to bbolt are carved from. bbolt
// keeps a reference to every key and value given to Put until the
// transaction ends, so each needs memory of its own; carving them from
// 64 KiB chunks costs one allocation per chunk instead of one per Put.
// A chunk stays alive while bbolt (or a later carve) references it and is
// garbage once its transactions are over. Values kept beyond the
// transaction (the delivery cache's) are not carved: they would pin a
// whole chunk.
//
// Only write transactions use it, and bbolt runs one at a time (its writer
// lock orders them), so it needs no lock of its own.
type writeMem struct {
	enc   encoder
	arena []byte
	// zbuf holds a value while pack compresses it.
	zbuf []byte
}

// arenaChunk is the size of an arena chunk; larger values get their own
// allocation.
const arenaChunk = 64 << 10

// carve returns an empty slice with room for exactly n bytes, from the
// arena (a large n gets memory of its own). Its capacity ends there, so an
// append past n cannot run into its neighbour.
func (m *writeMem) carve(n int) []byte {
	if n > arenaChunk/8 {
		return make([]byte, 0, n)
	}
	if cap(m.arena)-len(m.arena) < n {
		m.arena = make([]byte, 0, arenaChunk)
	}
	start := len(m.arena)
	m.arena = m.arena[:start+n]
	return m.arena[start : start : start+n]
}

// copy returns a copy of b carved from the arena.
func (m *writeMem) copy(b []byte) []byte {
	return append(m.carve(len(b)), b...)
}

// key returns parts joined with the separator, carved from the arena.
func (m *writeMem) key(parts ...string) []byte {
	return m.markedKey(0, parts...)
}

// markedKey is key with the byte mark (when not 0) in front of the last
// part: entity key \x00 mark id for the records kept behind a snapshot.
func (m *writeMem) markedKey(mark byte, parts ...string) []byte {
	n := len(parts) - 1
	for _, p := range parts {
		n += len(p)
	}
	if mark != 0 {
		n++
	}
	return appendMarkedKey(m.carve(n), mark, parts)
}

// appendMarkedKey appends parts joined with the separator, with mark (when
// not 0) in front of the last part.
func appendMarkedKey(b []byte, mark byte, parts []string) []byte {
	for i, p := range parts {
		if i > 0 {
			b = append(b, sep)
		}
		if mark != 0 && i == len(parts)-1 {
			b = append(b, mark)
		}
		b = append(b, p...)
	}
	return b
}
