package metricsauth

import (
	"sync"
	"time"
)

// ttlCache maps keys to values that expire, holding at most max entries:
// when full, adding a key drops the expired entries and, if none had
// expired, the one that would have expired first. A flood of distinct keys
// therefore cannot grow it, and costs at most the entries closest to expiry.
type ttlCache[K comparable, V any] struct {
	mu      sync.Mutex
	max     int
	now     func() time.Time
	entries map[K]ttlEntry[V]
}

type ttlEntry[V any] struct {
	value   V
	expires time.Time
}

func newTTLCache[K comparable, V any](size int, now func() time.Time) *ttlCache[K, V] {
	return &ttlCache[K, V]{max: max(size, 1), now: now, entries: map[K]ttlEntry[V]{}}
}

// get returns the value of an unexpired entry.
func (c *ttlCache[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok {
		var zero V
		return zero, false
	}
	if !c.now().Before(e.expires) {
		delete(c.entries, k)
		var zero V
		return zero, false
	}
	return e.value, true
}

// set stores v under k for ttl.
func (c *ttlCache[K, V]) set(k K, v V, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if _, ok := c.entries[k]; !ok && len(c.entries) >= c.max {
		c.evict(now)
	}
	c.entries[k] = ttlEntry[V]{value: v, expires: now.Add(ttl)}
}

// evict makes room for one entry. The caller holds mu.
func (c *ttlCache[K, V]) evict(now time.Time) {
	var (
		soonest    K
		soonestExp time.Time
		found      bool
	)
	for k, e := range c.entries {
		if !now.Before(e.expires) {
			delete(c.entries, k)
			continue
		}
		if !found || e.expires.Before(soonestExp) {
			soonest, soonestExp, found = k, e.expires, true
		}
	}
	if len(c.entries) >= c.max && found {
		delete(c.entries, soonest)
	}
}

// len returns the number of entries, expired ones included.
func (c *ttlCache[K, V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
