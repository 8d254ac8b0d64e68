// This file holds the value cache and the coalescing of identical requests:
// what a store's cache keeps per value, the one lookup path Get and Find both
// take (cached within the window, else join the call in flight, else start
// one), how a finished call fills the cache and finds whom a change concerns,
// and how subscribers are forgotten and values invalidated.

package fetch

import (
	"context"
	"crypto/sha256"
	"errors"
	"sort"
	"time"

	"github.com/keyferry/keyferry/internal/provider"
)

// entry is one cached value: a ref's value (backend.entries) or the selection
// of a find, its names and values as the value's fields (backend.finds).
type entry struct {
	value       provider.Value
	err         error // only an answer about the value (ErrNotFound) is cached
	fetched     time.Time
	hash        [32]byte
	subscribers map[string]struct{}
	// window is the refresh window of the value's latest requester.
	window time.Duration
}

// entryIn returns the entry cached under k in m, creating it if missing.
func entryIn[K comparable](m map[K]*entry, k K) *entry {
	e := m[k]
	if e == nil {
		e = &entry{subscribers: map[string]struct{}{}}
		m[k] = e
	}
	return e
}

// call is one fetch of a value from the store, which requests for the same
// value wait for instead of calling the store again.
type call struct {
	// done is closed when the call completes; nil for an answer served from
	// the cache.
	done  chan struct{}
	value provider.Value
	err   error
	// requesters asked for this call and get its result directly; a change
	// it reveals is announced only to the value's other subscribers.
	requesters map[string]struct{}
	// stale says the value was invalidated while this call was in flight
	// (a push wrote it, a watcher saw it change): the answer may predate
	// that, so it is not cached as fresh, and every subscriber is told to
	// read again.
	stale bool
}

func (c *call) addRequester(sub string) {
	if sub == "" {
		return
	}
	if c.requesters == nil {
		c.requesters = map[string]struct{}{}
	}
	c.requesters[sub] = struct{}{}
}

// await returns the call's answer once it completes, or ctx's error if ctx
// ends first. An answer from the cache is returned at once.
func (c *call) await(ctx context.Context) (provider.Value, error) {
	if c.done != nil {
		select {
		case <-c.done:
		case <-ctx.Done():
			return provider.Value{}, ctx.Err()
		}
	}
	return c.value, c.err
}

// result is how a lookup was answered, as counted in the fetch-layer
// lookups metric.
type result string

const (
	// hit: cached within the requester's window.
	hit result = "hit"
	// coalesced: joined a call already fetching the value.
	coalesced result = "coalesced"
	// miss: the caller must call the store.
	miss result = "miss"
)

// lookup is the one path from a request to the cache, for Get and Find
// alike (under s.mu). It subscribes req.Subscriber to e, the entry of the
// value whose calls are keyed key, and answers with:
//   - hit: a call already answered from e, when e was fetched within
//     req.MaxAge;
//   - coalesced: the call in flight for key, req.Subscriber among its
//     requesters;
//   - miss: a new call in flight for key, which the caller owns and must
//     finish with complete.
func (s *backend) lookup(key string, e *entry, req Request, now time.Time) (*call, result) {
	if req.Subscriber != "" {
		e.subscribers[req.Subscriber] = struct{}{}
	}
	if req.MaxAge > 0 {
		e.window = req.MaxAge
	}
	if !e.fetched.IsZero() && req.MaxAge > 0 && now.Sub(e.fetched) < req.MaxAge {
		return &call{value: e.value, err: e.err}, hit
	}
	if c, ok := s.inflight[key]; ok {
		c.addRequester(req.Subscriber)
		return c, coalesced
	}
	c := &call{done: make(chan struct{})}
	c.addRequester(req.Subscriber)
	s.inflight[key] = c
	return c, miss
}

// complete finishes call c, in flight for key, with the store's answer for
// e (under s.mu): c's waiters get v or err, the cache keeps a value, and an
// error too when cacheErr says it is an answer about the value rather than a
// failure of the store. It returns changed with the subscribers to tell that
// the value changed appended: those of e that are not c's requesters, who
// get the new value directly.
func (s *backend) complete(key string, c *call, e *entry, v provider.Value, err error, cacheErr bool, now time.Time, changed []string) []string {
	delete(s.inflight, key)
	c.value, c.err = v, err
	switch {
	case err == nil:
		h := digest(v)
		if !e.fetched.IsZero() && (e.err != nil || h != e.hash) {
			changed = appendSubs(changed, e.subscribers, c.requesters)
		}
		e.value, e.err, e.fetched, e.hash = v, nil, now, h
	case cacheErr:
		if !e.fetched.IsZero() && e.err == nil {
			changed = appendSubs(changed, e.subscribers, c.requesters)
		}
		e.value, e.err, e.fetched = provider.Value{}, err, now
	}
	if c.stale {
		// Invalidated while in flight: the next request reads again, and
		// everyone who may have got the older answer is told to.
		e.fetched = time.Time{}
		changed = appendSubs(changed, e.subscribers, nil)
	}
	close(c.done)
	return changed
}

// invalidate marks the values of keys stale (all values when keys is nil)
// and every find, since any of them may select a changed value, so the next
// request fetches them, and marks their calls in flight stale, so an answer
// read before the change is not cached as fresh (under s.mu). It returns
// their subscribers.
func (s *backend) invalidate(keys []string) []string {
	var subs []string
	for r, e := range s.entries {
		if keys != nil && !containsKey(keys, r.Key) {
			continue
		}
		e.fetched = time.Time{}
		subs = appendSubs(subs, e.subscribers, nil)
		if c, ok := s.inflight[refKey(r)]; ok {
			c.stale = true
		}
	}
	for key, e := range s.finds {
		e.fetched = time.Time{}
		subs = appendSubs(subs, e.subscribers, nil)
		if c, ok := s.inflight[key]; ok {
			c.stale = true
		}
	}
	return subs
}

// Unsubscribe forgets a subscriber (its object was deleted), and the values
// no one else uses.
func (l *Layer) Unsubscribe(subscriber string) {
	l.mu.Lock()
	backends := make([]*backend, 0, len(l.backends))
	for _, s := range l.backends {
		backends = append(backends, s)
	}
	l.mu.Unlock()
	for _, s := range backends {
		s.mu.Lock()
		unsubscribe(s.entries, subscriber)
		unsubscribe(s.finds, subscriber)
		delete(s.waiters, subscriber) // a store no one waits for is not probed (recovery.go)
		s.mu.Unlock()
	}
}

func unsubscribe[K comparable](m map[K]*entry, subscriber string) {
	for k, e := range m {
		delete(e.subscribers, subscriber)
		if len(e.subscribers) == 0 {
			delete(m, k)
		}
	}
}

// appendSubs appends the subscribers not in except.
func appendSubs(out []string, subs map[string]struct{}, except map[string]struct{}) []string {
	for s := range subs {
		if _, skip := except[s]; !skip {
			out = append(out, s)
		}
	}
	return out
}

func containsKey(keys []string, k string) bool {
	for _, x := range keys {
		if x == k {
			return true
		}
	}
	return false
}

// digest identifies a value's content, to tell whether a refresh changed it.
func digest(v provider.Value) [32]byte {
	return sha256.Sum256(append(append([]byte{}, v.Data...), fieldsDigest(v.Fields)...))
}

func fieldsDigest(f map[string][]byte) []byte {
	if len(f) == 0 {
		return nil
	}
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		h.Write([]byte(k))
		h.Write([]byte{0})
		h.Write(f[k])
		h.Write([]byte{0})
	}
	return h.Sum(nil)
}

// isCacheable says whether an error is an answer about the value (cached like
// a value) rather than a failure of the store.
func isCacheable(err error) bool {
	return errors.Is(err, provider.ErrNotFound)
}
