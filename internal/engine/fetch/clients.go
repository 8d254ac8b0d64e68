// This file holds the client of each store and its lifecycle: the per-client
// state (client, rate limiter, value cache, pending batch, backoff), built on
// a store's first request and shared as its key (scope.go) allows, rebuilt
// when the store changes or after ClientTTL, watched for changes when the
// client can, and closed when no store uses it or the Layer ends.

package fetch

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/keyferry/keyferry/internal/provider"
)

// backend is what the fetch layer keeps for one store configuration (and
// namespace, where the client depends on it): the client, its rate limiter
// and backoff, and the cache of the values read through it. "Store" means
// the API object (SecretStore, ClusterSecretStore, SecretProviderClass).
type backend struct {
	key      backendKey
	provider string
	created  time.Time
	client   provider.Client
	cancel   context.CancelFunc
	limiter  *rate.Limiter

	// mu guards the rest; a store state that replaces another (a rebuilt
	// client) shares its mu along with its cache, so requests still holding
	// the old state touch the cache under the same lock.
	mu *sync.Mutex
	// the value cache (cache.go): values by ref, finds by findKey, and the
	// calls in flight by refKey or findKey
	entries  map[provider.Ref]*entry
	finds    map[string]*entry
	inflight map[string]*call
	// pending refs wait for the next batch call (batch.go)
	pending        []provider.Ref
	flushScheduled bool
	// backoff state and calls admitted (backoff.go)
	failures     int
	backoffUntil time.Time
	lastErr      error
	calls        int64
	// recovery state (recovery.go)
	recovery
	// what the client was built from, to build it again (recovery.go
	// rebuilds it when a credential failed)
	impl  provider.Provider
	popts provider.Options
}

// Validate builds (or reuses) the store's client and validates it.
func (l *Layer) Validate(ctx context.Context, req Request) error {
	s, err := l.backendFor(ctx, req)
	if err != nil {
		return err
	}
	return s.client.Validate(ctx)
}

// Calls returns how many calls were made through the client the store
// named by kind, namespace and name uses (shared with identical stores when
// its provider is Shareable), for metrics and tests.
func (l *Layer) Calls(kind, namespace, name string) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := map[backendKey]bool{}
	var n int64
	for id, k := range l.identities {
		if id.kind == kind && id.namespace == namespace && id.name == name && !seen[k] {
			seen[k] = true
			if s, ok := l.backends[k]; ok {
				s.mu.Lock()
				n += s.calls
				s.mu.Unlock()
			}
		}
	}
	return n
}

// backendFor returns the client state for req. Stores whose provider is
// Shareable and whose configuration is identical share one state; others
// get one per store object (and namespace scope). A changed configuration
// gets a new client; the old one is closed once no store uses it.
func (l *Layer) backendFor(ctx context.Context, req Request) (*backend, error) {
	name, p, err := l.opts.Registry.ProviderFor(req.Store)
	if err != nil {
		return nil, err
	}
	ns := req.Store.Namespace
	if req.Store.IsCluster() {
		ns = req.Namespace
	}
	key, id := keyFor(p, name, req.Store, ns)
	// The rules every store passes before it gets a client, even one shared
	// with an identical store: nothing of keyferry's own identity for a
	// namespaced store unless granted, no reference out of its namespace,
	// only short-lived tokens.
	popts, err := provider.Admit(p, provider.Options{
		Store: req.Store, Namespace: ns, Kube: l.opts.Kube, Tokens: l.opts.Tokens, Policy: l.opts.Policy,
		Log: l.opts.Log.WithValues("store", key.String()),
	})
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", req.Store.Kind, req.Store.Name, err)
	}

	s, err := l.clientFor(ctx, key, id, name, p, popts)
	if err != nil {
		return nil, err
	}
	l.noteRequest(s, req)
	return s, nil
}

// clientFor returns the store state of key, building its client when there
// is none yet or it is older than ClientTTL.
func (l *Layer) clientFor(ctx context.Context, key backendKey, id identity, name string, p provider.Provider, popts provider.Options) (*backend, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.opts.Now()
	if prev, ok := l.identities[id]; ok && prev != key {
		l.identities[id] = key
		l.release(ctx, prev)
	}
	l.identities[id] = key
	old, ok := l.backends[key]
	if ok && now.Sub(old.created) < l.opts.ClientTTL {
		return old, nil
	}
	c, err := p.NewClient(ctx, popts)
	if err != nil {
		return nil, fmt.Errorf("building %s client for %s: %w", name, key, err)
	}
	if ok {
		old.close(ctx) // replaced below, keeping its cache, subscribers and backoff
	}
	return l.install(key, name, p, popts, c, now, old, false), nil
}

// rebuild builds the client of s again from what it was built from, so
// credentials are read anew, and installs it in place of s, keeping its
// cache, subscribers and backoff; trial says the caller holds s's trial call
// (backoff.go admit) and makes it on the new client.
func (l *Layer) rebuild(ctx context.Context, s *backend, trial bool) (*backend, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.backends[s.key] != s {
		return nil, fmt.Errorf("store %s was replaced or released meanwhile", s.key)
	}
	c, err := s.impl.NewClient(ctx, s.popts)
	if err != nil {
		return nil, fmt.Errorf("building %s client for %s: %w", s.provider, s.key, err)
	}
	s.close(ctx)
	return l.install(s.key, s.provider, s.impl, s.popts, c, l.opts.Now(), s, trial), nil
}

// install makes a store state for client c under key (under l.mu), taking
// over old's cache, subscribers, backoff and recovery state when old is not
// nil, and starts watching the store when the client can.
func (l *Layer) install(key backendKey, name string, p provider.Provider, popts provider.Options, c provider.Client, now time.Time, old *backend, trial bool) *backend {
	wctx, cancel := context.WithCancel(l.ctx)
	s := &backend{
		key: key, provider: name, created: now, client: c, cancel: cancel,
		limiter:  rate.NewLimiter(rate.Limit(l.opts.QPS), l.opts.Burst),
		entries:  map[provider.Ref]*entry{},
		finds:    map[string]*entry{},
		inflight: map[string]*call{},
		mu:       &sync.Mutex{},
		impl:     p, popts: popts,
	}
	if old != nil {
		s.mu = old.mu
		old.mu.Lock()
		s.entries, s.finds, s.calls = old.entries, old.finds, old.calls
		s.failures, s.backoffUntil, s.lastErr = old.failures, old.backoffUntil, old.lastErr
		s.recovery = old.recovery.takeOver(trial)
		old.mu.Unlock()
	}
	l.backends[key] = s
	if w, ok := c.(provider.Watcher); ok {
		go l.watch(wctx, s, w)
	}
	return s
}

// release closes a store state no identity uses any more (under l.mu).
func (l *Layer) release(ctx context.Context, key backendKey) {
	for _, k := range l.identities {
		if k == key {
			return
		}
	}
	if s, ok := l.backends[key]; ok {
		s.close(ctx)
		delete(l.backends, key)
	}
}

// watch invalidates the cached values the store's watcher reports changed,
// and tells their subscribers, until ctx ends or the watch fails.
func (l *Layer) watch(ctx context.Context, s *backend, w provider.Watcher) {
	err := w.Watch(ctx, func(keys []string) {
		s.mu.Lock()
		subs := s.invalidate(keys)
		s.mu.Unlock()
		if len(subs) > 0 {
			l.opts.OnChange(subs)
		}
	})
	if err != nil && ctx.Err() == nil {
		l.opts.Log.Error(err, "watching store for changes stopped; falling back to refresh intervals", "store", s.key.String())
	}
}

func (s *backend) close(ctx context.Context) {
	s.cancel()
	_ = s.client.Close(ctx)
}

func (l *Layer) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, s := range l.backends {
		s.close(context.Background())
		delete(l.backends, k)
	}
}
