// Package fetch is keyferry's shared fetch layer. Every read of a provider
// goes through it, so that:
//   - a value many objects reference is fetched once per refresh window per
//     store: concurrent identical requests coalesce and results are cached in
//     memory for the requester's window only;
//   - refs a client can batch are collected for a few milliseconds across
//     every object syncing at that moment and fetched in one call;
//   - calls to one store are rate-limited, and a failing store is backed off
//     exponentially (or as its Retry-After says) however many objects use it,
//     probed at most a ProbeInterval apart while objects wait for it, and
//     every waiting object is told (OnChange) the moment it answers again;
//   - when a refreshed value differs from the one cached, every other object
//     that uses it is told at once (OnChange), so a rotation reaches all
//     dependents within one window instead of each waiting for its own.
//
// A store (the API object) is read through a backend: a client with its
// cache, rate limiter and backoff (clients.go). Backends are built once per
// store, shared by identical stores when the provider allows it
// (provider.Shareable), and kept apart per namespace whenever the client
// depends on the requester's namespace (a credential reference resolved
// there, or what the provider declares through provider.NamespaceScoped; see
// keyFor), so one tenant is never answered by a client or a cache built for
// another. They are rebuilt when the store changes or after ClientTTL.
//
// The package is split by job: this file holds the Layer, its Options and
// the public entry points (Get, Find); find.go how a find lists and reads
// what it selects; clients.go the client of each store and its lifecycle;
// scope.go the keys that decide which requests share a client; cache.go the value cache and the coalescing of identical requests,
// the one lookup path both Get and Find take; batch.go how refs reach the
// store (batched across requests, topped up with values due soon);
// backoff.go rate limiting and backoff of every call to a store; and
// recovery.go how a failing store is probed and its waiting objects told.
package fetch

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyferry/keyferry/internal/metrics"
	"github.com/keyferry/keyferry/internal/provider"
)

// Options configure a Layer.
type Options struct {
	Registry *provider.Registry
	// Kube reads credential Secrets; uncached.
	Kube   client.Reader
	Tokens provider.TokenRequester
	// Policy is what the operator allows stores beyond the defaults (which
	// identities namespaced stores may use, plain http).
	Policy provider.Policy
	Log    logr.Logger
	// QPS and Burst limit calls to one store (default 100 and 200).
	QPS   float64
	Burst int
	// BaseBackoff and MaxBackoff bound the wait after a store fails
	// (default 1s and 5m).
	BaseBackoff, MaxBackoff time.Duration
	// ClientTTL is how long a client is reused before it is rebuilt, so
	// rotated credentials are picked up (default 15m).
	ClientTTL time.Duration
	// OnChange is called with the subscribers of values that changed.
	OnChange func(subscribers []string)
	// Now is the clock (tests).
	Now func() time.Time
	// Metrics receives call and cache counts; nil counts nothing.
	Metrics *metrics.Metrics
	// BatchDelay is how long misses for a batching client are collected
	// before one batch call fetches them all (default 10ms).
	BatchDelay time.Duration
	// CallTimeout bounds a batch call, which runs on behalf of many
	// objects (default 1m).
	CallTimeout time.Duration
	// BatchSize is how many refs a batch call is topped up to with values
	// due soon (default 20, AWS's BatchGetSecretValue page).
	BatchSize int
	// ProbeInterval caps the wait between calls to a failing store that
	// objects wait on (default 30s, DefaultProbeInterval): the backoff never
	// exceeds it, nor the shortest refresh window of the waiting requests,
	// unless the store's Retry-After asks for longer. See recovery.go.
	ProbeInterval time.Duration
}

// Request describes who asks, through which store, how fresh.
type Request struct {
	Store provider.Store
	// Namespace of the requesting object (where a ClusterSecretStore's
	// namespace-less credential references resolve).
	Namespace string
	// Subscriber identifies the requester, to be told of changes.
	Subscriber string
	// MaxAge accepts cached values fetched this recently; 0 always fetches.
	MaxAge time.Duration
}

// Layer is the fetch layer. It is safe for concurrent use.
type Layer struct {
	opts       Options
	ctx        context.Context
	mu         sync.Mutex
	backends   map[backendKey]*backend
	identities map[identity]backendKey
}

// New returns a Layer whose watchers and clients live until ctx ends.
func New(ctx context.Context, opts Options) *Layer {
	if opts.QPS == 0 {
		opts.QPS = 100
	}
	if opts.Burst == 0 {
		opts.Burst = 200
	}
	if opts.BaseBackoff == 0 {
		opts.BaseBackoff = time.Second
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = 5 * time.Minute
	}
	if opts.ClientTTL == 0 {
		opts.ClientTTL = 15 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.OnChange == nil {
		opts.OnChange = func([]string) {}
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.New(nil)
	}
	if opts.BatchDelay == 0 {
		opts.BatchDelay = 10 * time.Millisecond
	}
	if opts.CallTimeout == 0 {
		opts.CallTimeout = time.Minute
	}
	if opts.BatchSize == 0 {
		opts.BatchSize = 20
	}
	l := &Layer{opts: opts, ctx: ctx, backends: map[backendKey]*backend{}, identities: map[identity]backendKey{}}
	go func() {
		<-ctx.Done()
		l.closeAll()
	}()
	return l
}

// Get returns the values of refs from the request's store. Values come from
// the cache when fetched within req.MaxAge; refs already being fetched by
// another request are waited for; the rest are fetched, in one batch call
// when the client supports it.
func (l *Layer) Get(ctx context.Context, req Request, refs []provider.Ref) (map[provider.Ref]provider.Value, map[provider.Ref]error) {
	s, err := l.backendFor(ctx, req)
	if err != nil {
		errs := map[provider.Ref]error{}
		for _, r := range refs {
			errs[r] = err
		}
		return map[provider.Ref]provider.Value{}, errs
	}
	return l.read(ctx, s, req, refs)
}

// read is the one path from refs to their values (cache.go): hits are
// answered from the cache, calls in flight are joined, and the misses are
// fetched (batch.go), batched across requests when the client can batch.
func (l *Layer) read(ctx context.Context, s *backend, req Request, refs []provider.Ref) (map[provider.Ref]provider.Value, map[provider.Ref]error) {
	vals := map[provider.Ref]provider.Value{}
	errs := map[provider.Ref]error{}
	refs = uniq(refs)
	calls := make([]*call, len(refs))
	var mine []provider.Ref
	now := l.opts.Now()
	s.mu.Lock()
	for i, r := range refs {
		c, res := s.lookup(refKey(r), entryIn(s.entries, r), req, now)
		l.opts.Metrics.CacheLookups.WithLabelValues(string(res)).Inc()
		if res == miss {
			mine = append(mine, r)
		}
		calls[i] = c
	}
	s.mu.Unlock()

	if len(mine) > 0 {
		if _, ok := s.client.(provider.BatchGetter); ok {
			// Collect misses from every object syncing now, so one batch
			// call serves them all.
			l.enqueueBatch(s, mine)
		} else {
			l.fetch(ctx, s, mine)
		}
	}
	for i, r := range refs {
		if v, err := calls[i].await(ctx); err != nil {
			errs[r] = err
		} else {
			vals[r] = v
		}
	}
	return vals, errs
}

// Find returns the values a find selects, keyed by remote name. The
// selection is cached like a value (its names and values as the value's
// fields) and identical finds coalesce; only a failed find is never
// cached. A miss lists the store and reads the selected values through
// Get's path (find.go), so every call it makes is cached, batched and
// rate-limited like a Get's.
func (l *Layer) Find(ctx context.Context, req Request, f provider.Find) (map[string][]byte, error) {
	s, err := l.backendFor(ctx, req)
	if err != nil {
		return nil, err
	}
	key := findKey(f)
	now := l.opts.Now()
	s.mu.Lock()
	e := entryIn(s.finds, key)
	c, res := s.lookup(key, e, req, now)
	s.mu.Unlock()
	if res != miss {
		v, err := c.await(ctx)
		return v.Fields, err
	}

	found, err := l.find(ctx, s, req, f)
	s.mu.Lock()
	changed := s.complete(key, c, e, provider.Value{Fields: found}, err, false, now, nil)
	s.mu.Unlock()
	if len(changed) > 0 {
		l.opts.OnChange(changed)
	}
	return found, err
}

func refKey(r provider.Ref) string {
	if r.Metadata {
		// The metadata of a key is another remote value than its value.
		return "m\x00" + r.Key + "\x00" + r.Version
	}
	return "v\x00" + r.Key + "\x00" + r.Version
}

func findKey(f provider.Find) string {
	kb, _ := json.Marshal(f)
	return "f\x00" + string(kb)
}

func uniq(refs []provider.Ref) []provider.Ref {
	seen := make(map[provider.Ref]struct{}, len(refs))
	out := refs[:0:0]
	for _, r := range refs {
		if _, ok := seen[r]; !ok {
			seen[r] = struct{}{}
			out = append(out, r)
		}
	}
	return out
}
