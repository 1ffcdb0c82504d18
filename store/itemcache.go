package store

import (
	"slices"
	"strings"
	"sync"
)

// maxCachedItems bounds the accepted items kept decoded for PendingInbox.
const maxCachedItems = 16384

// itemCache hands accepted items to PendingInbox in decoded form, so the
// pipeline does not decode JSON that Accept encoded a moment earlier. An
// entry is a deep copy made by Accept; PendingInbox takes it out (the
// caller then owns it) and FinishInbox drops it. When the cache is full,
// or after a restart, items are decoded from bbolt as before.
type itemCache struct {
	mu sync.Mutex
	m  map[string]*InboxItem
}

// put keeps item under id unless the cache is full.
func (c *itemCache) put(id string, item *InboxItem) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]*InboxItem)
	}
	if len(c.m) < maxCachedItems {
		c.m[id] = item
	}
}

// take removes and returns the item under id, or nil.
func (c *itemCache) take(id string) *InboxItem {
	c.mu.Lock()
	defer c.mu.Unlock()
	item := c.m[id]
	if item != nil {
		delete(c.m, id)
	}
	return item
}

// drop forgets id.
func (c *itemCache) drop(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, id)
}

// cloneItem returns a deep copy of item, as a decode of its JSON would
// give it (no monotonic clock reading). Strings are copied too: a caller
// may hand in strings that alias buffers it reuses (Fiber's do).
func cloneItem(item *InboxItem) *InboxItem {
	c := *item
	c.ID = strings.Clone(item.ID)
	c.Connector = strings.Clone(item.Connector)
	c.Method = strings.Clone(item.Method)
	c.Path = strings.Clone(item.Path)
	c.ContentType = strings.Clone(item.ContentType)
	c.DedupeKey = strings.Clone(item.DedupeKey)
	c.State = strings.Clone(item.State)
	c.Reason = strings.Clone(item.Reason)
	c.ReceivedAt = c.ReceivedAt.Round(0)
	c.ProcessedAt = c.ProcessedAt.Round(0)
	c.Headers = cloneValues(item.Headers)
	c.Query = cloneValues(item.Query)
	c.Body = slices.Clone(item.Body)
	c.RawBody = slices.Clone(item.RawBody)
	if item.EventIDs != nil {
		c.EventIDs = make([]string, len(item.EventIDs))
		for i, id := range item.EventIDs {
			c.EventIDs[i] = strings.Clone(id)
		}
	}
	return &c
}

func cloneValues(m map[string][]string) map[string][]string {
	if m == nil {
		return nil
	}
	c := make(map[string][]string, len(m))
	for k, v := range m {
		vs := make([]string, len(v))
		for i, s := range v {
			vs[i] = strings.Clone(s)
		}
		c[strings.Clone(k)] = vs
	}
	return c
}
