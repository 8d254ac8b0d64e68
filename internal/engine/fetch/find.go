// This file holds how a find reaches the store: the client lists (each page
// one call, admitted through the store's rate limiter and recorded like any
// other), the listed names are selected by the find's name expression, the
// values the listing returned are cached as if read by a Get, and the rest
// are read through Get's path: cached, coalesced, batched and rate-limited.

package fetch

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/time/rate"

	"github.com/keyferry/keyferry/internal/provider"
)

// find lists the store and returns the values f selects, keyed by remote
// name. A value gone between the listing and its read is left out; any
// other failure fails the find.
func (l *Layer) find(ctx context.Context, s *backend, req Request, f provider.Find) (map[string][]byte, error) {
	lister, ok := s.client.(provider.Lister)
	if !ok {
		return nil, fmt.Errorf("%w: the %s provider cannot list values (dataFrom.find)", provider.ErrNotSupported, s.provider)
	}
	match, err := f.Matcher()
	if err != nil {
		return nil, err
	}
	selected, err := l.list(ctx, s, lister, provider.List{Path: f.Path, Tags: f.Tags, Match: match})
	if err != nil {
		return nil, err
	}
	l.cacheListed(s, req, selected)

	var refs []provider.Ref
	for _, x := range selected {
		if x.Value == nil && x.Ref.Key != "" {
			refs = append(refs, x.Ref)
		}
	}
	vals, errs := l.read(ctx, s, req, refs)
	out := make(map[string][]byte, len(selected))
	for _, x := range selected {
		if x.Value != nil {
			out[x.Name] = x.Value.Data
			continue
		}
		if x.Ref.Key == "" {
			continue // neither a value nor a way to read it
		}
		if err := errs[x.Ref]; err != nil {
			if errors.Is(err, provider.ErrNotFound) {
				continue // deleted since it was listed, or has no current value
			}
			return nil, err
		}
		out[x.Name] = vals[x.Ref].Data
	}
	return out, nil
}

// list returns the listed values whose names match, each name once. Each
// page is one call to the store, admitted and recorded.
func (l *Layer) list(ctx context.Context, s *backend, lister provider.Lister, list provider.List) ([]provider.Listed, error) {
	pages := lister.ListSecrets(ctx, list)
	seen := map[string]struct{}{}
	var out []provider.Listed
	for pages.More() {
		page, err := l.listPage(ctx, s, pages)
		if err != nil {
			return nil, err
		}
		for _, x := range page {
			if _, dup := seen[x.Name]; dup || !list.Match(x.Name) {
				continue
			}
			seen[x.Name] = struct{}{}
			out = append(out, x)
		}
	}
	return out, nil
}

// listPage fetches one page of a listing, admitted and recorded.
func (l *Layer) listPage(ctx context.Context, s *backend, pages provider.ListPager) ([]provider.Listed, error) {
	if err := l.admit(ctx, s); err != nil {
		return nil, err
	}
	page, err := pages.NextPage(ctx)
	l.record(s, err)
	return page, err
}

// cacheListed caches the values a listing returned under their refs, as a
// Get that read them would: req.Subscriber subscribes to them, a later Get
// within the window costs nothing, and a value that differs from the one
// cached is announced to its other subscribers. A ref being read right now
// is left to that read.
func (l *Layer) cacheListed(s *backend, req Request, listed []provider.Listed) {
	now := l.opts.Now()
	var changed []string
	s.mu.Lock()
	for _, x := range listed {
		if x.Value == nil || x.Ref.Key == "" {
			continue
		}
		key := refKey(x.Ref)
		if _, busy := s.inflight[key]; busy {
			continue
		}
		e := entryIn(s.entries, x.Ref)
		if req.Subscriber != "" {
			e.subscribers[req.Subscriber] = struct{}{}
		}
		if req.MaxAge > 0 {
			e.window = req.MaxAge
		}
		c := &call{done: make(chan struct{})}
		c.addRequester(req.Subscriber)
		changed = s.complete(key, c, e, *x.Value, nil, false, now, changed)
	}
	s.mu.Unlock()
	if len(changed) > 0 {
		l.opts.OnChange(changed)
	}
}

// probeList makes one listing call for find f, the first page, as a probe
// that the store answers again; its outcome is the caller's to record.
func probeList(ctx context.Context, c provider.Client, f provider.Find) error {
	lister, ok := c.(provider.Lister)
	if !ok {
		return fmt.Errorf("%w: the provider cannot list values (dataFrom.find)", provider.ErrNotSupported)
	}
	match, err := f.Matcher()
	if err != nil {
		return err
	}
	pages := lister.ListSecrets(ctx, provider.List{Path: f.Path, Tags: f.Tags, Match: match})
	if !pages.More() {
		return nil
	}
	_, err = pages.NextPage(ctx)
	return err
}

// FindIn runs find f against client c through the fetch layer's own find
// path (the listing, the selection, the reads of what the listing did not
// return, batched where c can batch) on a backend of its own: nothing is
// shared or cached beyond the call, and calls are not rate-limited. It is
// for provider tests and tools that hold a client rather than a store; c
// stays the caller's to close.
func FindIn(ctx context.Context, c provider.Client, f provider.Find) (map[string][]byte, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	l := New(ctx, Options{})
	s := &backend{
		provider: "direct", created: l.opts.Now(), client: c, cancel: cancel,
		limiter:  rate.NewLimiter(rate.Inf, 0),
		entries:  map[provider.Ref]*entry{},
		finds:    map[string]*entry{},
		inflight: map[string]*call{},
		mu:       &sync.Mutex{},
	}
	return l.find(ctx, s, Request{}, f)
}
