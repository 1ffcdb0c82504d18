package store

import (
	"fmt"
	"slices"

	"github.com/klauspost/compress/s2"
)

// The largest records the pipeline writes for every webhook, events and
// entity snapshots, are stored compressed with S2 (a Snappy successor, the
// module fasthttp already brings in). Their JSON repeats itself: an event
// of a new ticket lists every field twice (fields, and changes from null)
// next to its raw payload, and a snapshot's field names recur from entity
// to entity. Packed, an event takes about a third of the bytes and a
// snapshot half, so bbolt writes and syncs fewer pages per webhook, more
// snapshots share a leaf page, and the file grows more slowly.
//
// A packed value is packedMark followed by one S2 block. No JSON text
// starts with that byte, so any other value is read as the JSON itself:
// records written before packing (store schema 1), and values too small,
// or too random, to gain.
const (
	packedMark = 0x01
	// packMin is the smallest value worth packing.
	packMin = 192
	// packMax is the largest value packed; larger ones are stored as they
	// are, so a packed value that claims more is damaged and is refused
	// before anything is allocated for it.
	packMax = 256 << 20
)

// pack returns v, packed when that saves at least an eighth of it, carved
// from the arena. A value that itself starts with packedMark (never JSON)
// is always packed, so that it cannot be misread as packed.
func (m *writeMem) pack(v []byte) []byte {
	must := len(v) > 0 && v[0] == packedMark
	if !must && (len(v) < packMin || len(v) > packMax) {
		return m.copy(v)
	}
	n := s2.MaxEncodedLen(len(v))
	if n < 0 {
		return m.copy(v) // beyond S2's block size; never a record we write
	}
	m.zbuf = slices.Grow(m.zbuf[:0], 1+n)[:1+n]
	m.zbuf[0] = packedMark
	enc := s2.Encode(m.zbuf[1:], v)
	if !must && 1+len(enc) > len(v)-len(v)/8 {
		return m.copy(v)
	}
	return m.copy(m.zbuf[:1+len(enc)])
}

// unpack returns the JSON of a stored value: v itself, or v decompressed
// (into new memory, valid after the transaction) when it is packed.
func unpack(v []byte) ([]byte, error) {
	if len(v) == 0 || v[0] != packedMark {
		return v, nil
	}
	n, err := s2.DecodedLen(v[1:])
	if err != nil {
		return nil, fmt.Errorf("decompress stored value: %w", err)
	}
	if n > packMax {
		return nil, fmt.Errorf("decompress stored value: it claims %d bytes, more than is ever packed", n)
	}
	out, err := s2.Decode(nil, v[1:])
	if err != nil {
		return nil, fmt.Errorf("decompress stored value: %w", err)
	}
	return out, nil
}
