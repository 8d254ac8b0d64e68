package metricsauth

import (
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestCacheEntriesExpire(t *testing.T) {
	clock := newFakeClock()
	c := newTTLCache[string, int](4, clock.now)
	c.set("a", 1, time.Minute)
	if v, ok := c.get("a"); !ok || v != 1 {
		t.Fatalf("get(a) = %d, %v; want 1, true", v, ok)
	}
	clock.advance(time.Minute - time.Nanosecond)
	if _, ok := c.get("a"); !ok {
		t.Fatal("entry expired before its TTL")
	}
	clock.advance(time.Nanosecond)
	if _, ok := c.get("a"); ok {
		t.Fatal("entry still there after its TTL")
	}
	if n := c.len(); n != 0 {
		t.Fatalf("expired entry kept: %d entries", n)
	}
}

func TestCacheIsBounded(t *testing.T) {
	const max = 3
	t.Run("N+1 distinct keys keep N, dropping the one expiring first", func(t *testing.T) {
		clock := newFakeClock()
		c := newTTLCache[int, int](max, clock.now)
		for i := range max + 1 {
			c.set(i, i, time.Minute)
			clock.advance(time.Second)
		}
		if n := c.len(); n != max {
			t.Fatalf("%d entries, want %d", n, max)
		}
		if _, ok := c.get(0); ok {
			t.Error("the entry expiring first was kept")
		}
		for i := 1; i <= max; i++ {
			if _, ok := c.get(i); !ok {
				t.Errorf("entry %d was dropped", i)
			}
		}
	})
	t.Run("expired entries go first", func(t *testing.T) {
		clock := newFakeClock()
		c := newTTLCache[int, int](max, clock.now)
		c.set(0, 0, time.Hour)
		c.set(1, 1, time.Second) // expires
		c.set(2, 2, 2*time.Second)
		clock.advance(time.Second)
		c.set(3, 3, time.Hour)
		if n := c.len(); n != max {
			t.Fatalf("%d entries, want %d", n, max)
		}
		for _, k := range []int{0, 2, 3} {
			if _, ok := c.get(k); !ok {
				t.Errorf("entry %d was dropped", k)
			}
		}
	})
	t.Run("overwriting a key does not evict", func(t *testing.T) {
		clock := newFakeClock()
		c := newTTLCache[int, int](max, clock.now)
		for i := range max {
			c.set(i, i, time.Minute)
		}
		c.set(0, 10, time.Minute)
		if n := c.len(); n != max {
			t.Fatalf("%d entries, want %d", n, max)
		}
		if v, _ := c.get(0); v != 10 {
			t.Errorf("get(0) = %d, want 10", v)
		}
	})
}
