// This file holds how the refs a Get misses reach the store: for a client
// that can batch, they are collected across every request for BatchDelay and
// the batch call is topped up with values due soon; then they are fetched in
// one batch call (one per BatchSize refs when the client says its size, so
// each backend call is admitted) or one call per ref, and their calls
// completed.

package fetch

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/keyferry/keyferry/internal/provider"
)

// enqueueBatch adds refs (whose calls the caller created) to the store's
// pending batch, flushed BatchDelay after the first ref arrived.
func (l *Layer) enqueueBatch(s *backend, refs []provider.Ref) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending = append(s.pending, refs...)
	if !s.flushScheduled {
		s.flushScheduled = true
		time.AfterFunc(l.opts.BatchDelay, func() { l.flush(s) })
	}
}

// flush fetches the store's pending batch. It runs on the layer's context:
// the objects waiting for it may give up, the fetch still completes and
// fills the cache.
func (l *Layer) flush(s *backend) {
	s.mu.Lock()
	refs := s.pending
	s.pending, s.flushScheduled = nil, false
	refs = append(refs, s.topUp(l.opts.Now(), l.topUpTo(s, len(refs))-len(refs))...)
	s.mu.Unlock()
	if len(refs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(l.ctx, l.opts.CallTimeout)
	defer cancel()
	l.fetch(ctx, s, refs)
}

// batchSize is the most refs the client's batch call takes, 0 when it does
// not say (provider.BatchSizer).
func batchSize(s *backend) int {
	if bs, ok := s.client.(provider.BatchSizer); ok {
		return max(bs.BatchSize(), 0)
	}
	return 0
}

// topUpTo is how many refs a flush of n refs is topped up to: BatchSize, or
// for a client that says its batch size, the end of the last batch call.
func (l *Layer) topUpTo(s *backend, n int) int {
	if size := batchSize(s); size > 0 {
		return (n + size - 1) / size * size
	}
	return l.opts.BatchSize
}

// topUp returns up to n more refs worth refreshing in a batch call that is
// going out anyway: values other objects use that are past half their
// window. Fetched now, they are fresh when those objects refresh, so one
// batch call per BatchSize keys serves a whole refresh window instead of one
// call per object. It creates their calls (under s.mu).
func (s *backend) topUp(now time.Time, n int) []provider.Ref {
	var out []provider.Ref
	for r, e := range s.entries {
		if len(out) >= n {
			break
		}
		if e.fetched.IsZero() || e.err != nil || e.window <= 0 || now.Sub(e.fetched) < e.window/2 {
			continue
		}
		if _, busy := s.inflight[refKey(r)]; busy {
			continue
		}
		s.inflight[refKey(r)] = &call{done: make(chan struct{})}
		out = append(out, r)
	}
	return out
}

// fetch fetches refs (whose calls this goroutine owns), in one batch call
// when the client can batch and there is more than one, and completes their
// calls.
func (l *Layer) fetch(ctx context.Context, s *backend, refs []provider.Ref) {
	results := make(map[provider.Ref]provider.Value, len(refs))
	errs := make(map[provider.Ref]error, len(refs))
	if bg, ok := s.client.(provider.BatchGetter); ok && len(refs) > 1 {
		size := batchSize(s)
		if size == 0 {
			size = len(refs)
		}
		for chunk := range slices.Chunk(refs, size) {
			l.getBatch(ctx, s, bg, chunk, results, errs)
		}
	} else {
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, r := range refs {
			wg.Add(1)
			go func(r provider.Ref) {
				defer wg.Done()
				v, err := l.getOne(ctx, s, r)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs[r] = err
				} else {
					results[r] = v
				}
			}(r)
		}
		wg.Wait()
	}

	now := l.opts.Now()
	var changed []string
	s.mu.Lock()
	for _, r := range refs {
		key := refKey(r)
		// The entry is looked up again: its subscribers may all have gone
		// meanwhile, and a top-up has none of its own.
		err := errs[r]
		changed = s.complete(key, s.inflight[key], entryIn(s.entries, r), results[r], err, isCacheable(err), now, changed)
	}
	s.mu.Unlock()
	if len(changed) > 0 {
		l.opts.OnChange(changed)
	}
}

// getBatch reads refs with one batch call, admitted and recorded, into
// results and errs.
func (l *Layer) getBatch(ctx context.Context, s *backend, bg provider.BatchGetter, refs []provider.Ref, results map[provider.Ref]provider.Value, errs map[provider.Ref]error) {
	if err := l.admit(ctx, s); err != nil {
		for _, r := range refs {
			errs[r] = err
		}
		return
	}
	vals, berrs := bg.GetSecrets(ctx, refs)
	var failure error
	for _, r := range refs {
		if v, ok := vals[r]; ok {
			results[r] = v
		} else if e, ok := berrs[r]; ok {
			errs[r] = e
			if !isCacheable(e) && failure == nil {
				failure = e
			}
		} else {
			errs[r] = fmt.Errorf("%w: %s", provider.ErrNotFound, r)
		}
	}
	l.record(s, failure)
}
