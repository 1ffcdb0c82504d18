package rules

import (
	"path"
	"slices"
	"sort"
)

// bucket holds rule indexes (file order) for one event type pattern:
// rules without a connector filter, and rules per filtered connector.
type bucket struct {
	any    []int32
	byConn map[string][]int32
}

func (b *bucket) add(r *Rule) {
	if len(r.Connectors) == 0 {
		b.any = append(b.any, int32(r.index))
		return
	}
	for _, c := range r.Connectors {
		b.byConn[c] = append(b.byConn[c], int32(r.index))
	}
}

// globBucket is a pattern that is neither exact nor a trailing-* prefix.
type globBucket struct {
	pattern string
	b       *bucket
}

// index finds the rules whose `on` and `connector` match an event without
// touching the others: exact types by map, trailing-* globs by prefix
// (one map lookup per distinct prefix length), other globs by path.Match.
type index struct {
	exact      map[string]*bucket
	prefix     map[string]*bucket
	prefixLens []int
	globs      []globBucket
}

func buildIndex(rules []*Rule) index {
	ix := index{exact: map[string]*bucket{}, prefix: map[string]*bucket{}}
	get := func(m map[string]*bucket, k string) *bucket {
		b := m[k]
		if b == nil {
			b = &bucket{byConn: map[string][]int32{}}
			m[k] = b
		}
		return b
	}
	globs := map[string]*bucket{}
	lens := map[int]bool{}
	for _, r := range rules {
		if r.Manual {
			continue
		}
		for _, p := range dedupe(append([]string(nil), r.On...)) {
			switch kind, prefix := splitPattern(p); kind {
			case patExact:
				get(ix.exact, p).add(r)
			case patPrefix:
				get(ix.prefix, prefix).add(r)
				lens[len(prefix)] = true
			default:
				get(globs, p).add(r)
			}
		}
	}
	for l := range lens {
		ix.prefixLens = append(ix.prefixLens, l)
	}
	sort.Ints(ix.prefixLens)
	for p, b := range globs {
		ix.globs = append(ix.globs, globBucket{pattern: p, b: b})
	}
	sort.Slice(ix.globs, func(i, j int) bool { return ix.globs[i].pattern < ix.globs[j].pattern })
	return ix
}

// candidates appends to buf the indexes of the rules that listen to
// eventType from connector, in file order, without duplicates.
func (ix *index) candidates(eventType, connector string, buf []int32) []int32 {
	sources := 0
	add := func(b *bucket) {
		if b == nil {
			return
		}
		if len(b.any) > 0 {
			buf = append(buf, b.any...)
			sources++
		}
		if l := b.byConn[connector]; len(l) > 0 {
			buf = append(buf, l...)
			sources++
		}
	}
	add(ix.exact[eventType])
	for _, l := range ix.prefixLens {
		if l > len(eventType) {
			break
		}
		add(ix.prefix[eventType[:l]])
	}
	for _, g := range ix.globs {
		if ok, _ := path.Match(g.pattern, eventType); ok {
			add(g.b)
		}
	}
	if sources > 1 {
		slices.Sort(buf)
		buf = slices.Compact(buf)
	}
	return buf
}
