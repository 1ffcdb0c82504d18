package store

import (
	"bytes"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/hookline/hookline/event"
)

// maxCachedDeliveries bounds the decoded deliveries kept for the
// dispatcher's claim and finish transactions.
const maxCachedDeliveries = 65536

// deliveryCache keeps the decoded form of active (pending or in-flight)
// deliveries next to the exact bytes stored for them, so that ClaimDue and
// FinishDeliveries do not decode JSON the store encoded a moment earlier.
// An entry is used only when the bytes in bbolt still equal its bytes:
// whatever wrote the record since (in any order, committed or rolled
// back) simply makes the entry miss, and the record is decoded as before.
// An entry is taken out when used, so it is never shared.
type deliveryCache struct {
	mu sync.Mutex
	m  map[string]cachedDelivery
}

type cachedDelivery struct {
	data []byte
	d    *Delivery
}

// put keeps d (which the cache then owns) as the decoded form of data,
// unless the cache is full.
func (c *deliveryCache) put(id string, data []byte, d *Delivery) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]cachedDelivery)
	}
	if len(c.m) < maxCachedDeliveries {
		c.m[id] = cachedDelivery{data: data, d: d}
	}
}

// take removes the entry of id and returns its delivery when its bytes
// equal stored; nil otherwise.
func (c *deliveryCache) take(id string, stored []byte) *Delivery {
	c.mu.Lock()
	e, ok := c.m[id]
	if ok {
		delete(c.m, id)
	}
	c.mu.Unlock()
	if !ok || !bytes.Equal(e.data, stored) {
		return nil
	}
	return e.d
}

// peek returns the delivery of id when its bytes equal stored, leaving
// it in the cache; nil otherwise. The caller may only read it: the entry
// still belongs to the cache.
func (c *deliveryCache) peek(id string, stored []byte) *Delivery {
	c.mu.Lock()
	e, ok := c.m[id]
	c.mu.Unlock()
	if !ok || stored == nil || !bytes.Equal(e.data, stored) {
		return nil
	}
	return e.d
}

// drop forgets id.
func (c *deliveryCache) drop(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, id)
}

// cacheable reports whether a decode of d's JSON would give back d: its
// update's values are JSON's own types (a rule may set an int or a time,
// which a decode turns into a float64 or a string).
func cacheable(d *Delivery) bool {
	for _, v := range d.Update.Set {
		if !jsonNative(v) {
			return false
		}
	}
	return true
}

func jsonNative(v any) bool {
	switch x := v.(type) {
	case nil, string, float64, bool:
		return true
	case []any:
		for _, e := range x {
			if !jsonNative(e) {
				return false
			}
		}
		return true
	case map[string]any:
		for _, e := range x {
			if !jsonNative(e) {
				return false
			}
		}
		return true
	}
	return false
}

// cloneDelivery returns a deep copy of d (times without their monotonic
// clock reading, as a decode gives them).
func cloneDelivery(d *Delivery) *Delivery {
	c := *d
	c.Update = cloneUpdate(d.Update)
	c.Request.Headers = maps.Clone(d.Request.Headers)
	c.Request.Body = slices.Clone(d.Request.Body)
	c.Attempts = slices.Clone(d.Attempts)
	c.Captured = maps.Clone(d.Captured)
	c.NextAt, c.CreatedAt, c.UpdatedAt = d.NextAt.Round(0), d.CreatedAt.Round(0), d.UpdatedAt.Round(0)
	for i := range c.Attempts {
		c.Attempts[i].At = c.Attempts[i].At.Round(0)
	}
	return &c
}

// stripMonotonic drops the monotonic clock readings of d's times in place,
// so that d equals what a decode of its JSON gives (as cloneDelivery
// does for a copy).
func stripMonotonic(d *Delivery) {
	d.NextAt, d.CreatedAt, d.UpdatedAt = d.NextAt.Round(0), d.CreatedAt.Round(0), d.UpdatedAt.Round(0)
	for i := range d.Attempts {
		d.Attempts[i].At = d.Attempts[i].At.Round(0)
	}
}

func cloneUpdate(u event.Update) event.Update {
	if u.Set != nil {
		set := make(map[string]any, len(u.Set))
		for k, v := range u.Set {
			set[k] = cloneAny(v)
		}
		u.Set = set
	}
	u.AddTags = slices.Clone(u.AddTags)
	u.RemoveTags = slices.Clone(u.RemoveTags)
	u.Vars = maps.Clone(u.Vars)
	if u.Webhook != nil {
		w := *u.Webhook
		w.Headers = maps.Clone(w.Headers)
		u.Webhook = &w
	}
	if u.Message != nil {
		m := *u.Message
		u.Message = &m
	}
	if u.Log != nil {
		l := *u.Log
		u.Log = &l
	}
	return u
}

// cloneAny deep-copies a JSON-native value.
func cloneAny(v any) any {
	switch x := v.(type) {
	case []any:
		if x == nil {
			return x
		}
		c := make([]any, len(x))
		for i, e := range x {
			c[i] = cloneAny(e)
		}
		return c
	case map[string]any:
		if x == nil {
			return x
		}
		c := make(map[string]any, len(x))
		for k, e := range x {
			c[k] = cloneAny(e)
		}
		return c
	case time.Time:
		return x.Round(0)
	}
	return v
}
