// Package fetch is keyferry's shared fetch layer. Every read of a provider
// goes through it, so that:
//   - a value many objects reference is fetched once per refresh window per
//     store: concurrent identical requests coalesce and results are cached in
//     memory for the requester's window only;
//   - refs a client can batch are collected for a few milliseconds across
//     every object syncing at that moment and fetched in one call;
//   - calls to one store are rate-limited, and a failing store is backed off
//     exponentially (or as its Retry-After says) however many objects use it;
//   - when a refreshed value differs from the one cached, every other object
//     that uses it is told at once (OnChange), so a rotation reaches all
//     dependents within one window instead of each waiting for its own.
//
// Clients are built once per store, shared by identical stores when the
// provider allows it (provider.Shareable), and kept apart per namespace
// whenever the client depends on the requester's namespace (a credential
// reference resolved there, or what the provider declares through
// provider.NamespaceScoped; see keyFor), so one tenant is never answered by a
// client or a cache built for another. They are rebuilt when the store
// changes or after ClientTTL.
package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"
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
	stores     map[storeKey]*store
	identities map[identity]storeKey
}

// storeKey identifies a client and its cache: the provider configuration,
// plus the store's identity unless the configuration is shareable.
type storeKey struct {
	config                string
	kind, namespace, name string
	// scope is the namespace the client is built for, set when the client
	// depends on it (see keyFor); it keeps tenants' clients and caches
	// apart even when the configuration is shared.
	scope string
}

func (k storeKey) String() string {
	var s string
	switch {
	case k.kind == "":
		s = "shared:" + k.config
	case k.namespace == "":
		s = k.kind + "/" + k.name
	default:
		s = k.kind + "/" + k.namespace + "/" + k.name
	}
	if k.scope != "" && k.scope != k.namespace {
		s += " (for namespace " + k.scope + ")"
	}
	return s
}

type store struct {
	key      storeKey
	provider string
	created  time.Time
	client   provider.Client
	cancel   context.CancelFunc
	limiter  *rate.Limiter

	mu       sync.Mutex
	entries  map[provider.Ref]*entry
	finds    map[string]*entry
	inflight map[string]*call
	// pending refs wait for the next batch call
	pending        []provider.Ref
	flushScheduled bool
	// backoff state
	failures     int
	backoffUntil time.Time
	lastErr      error
	calls        int64
}

type entry struct {
	value       provider.Value
	found       map[string][]byte
	err         error // only ErrNotFound is cached
	fetched     time.Time
	hash        [32]byte
	subscribers map[string]struct{}
	// window is the refresh window of the value's latest requester.
	window time.Duration
}

type call struct {
	done  chan struct{}
	value provider.Value
	found map[string][]byte
	err   error
	// requesters asked for this call and get its result directly; a change
	// it reveals is announced only to the value's other subscribers.
	requesters map[string]struct{}
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
	l := &Layer{opts: opts, ctx: ctx, stores: map[storeKey]*store{}, identities: map[identity]storeKey{}}
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
	vals := map[provider.Ref]provider.Value{}
	errs := map[provider.Ref]error{}
	s, err := l.storeFor(ctx, req)
	if err != nil {
		for _, r := range refs {
			errs[r] = err
		}
		return vals, errs
	}
	now := l.opts.Now()
	var mine []provider.Ref
	var waits []provider.Ref
	waitCalls := map[provider.Ref]*call{}
	s.mu.Lock()
	for _, r := range uniq(refs) {
		e := s.entries[r]
		if e == nil {
			e = &entry{subscribers: map[string]struct{}{}}
			s.entries[r] = e
		}
		if req.Subscriber != "" {
			e.subscribers[req.Subscriber] = struct{}{}
		}
		if req.MaxAge > 0 {
			e.window = req.MaxAge
		}
		if !e.fetched.IsZero() && req.MaxAge > 0 && now.Sub(e.fetched) < req.MaxAge {
			if e.err != nil {
				errs[r] = e.err
			} else {
				vals[r] = e.value
			}
			l.opts.Metrics.CacheLookups.WithLabelValues("hit").Inc()
			continue
		}
		if c, ok := s.inflight[refKey(r)]; ok {
			c.addRequester(req.Subscriber)
			waits = append(waits, r)
			waitCalls[r] = c
			l.opts.Metrics.CacheLookups.WithLabelValues("coalesced").Inc()
			continue
		}
		l.opts.Metrics.CacheLookups.WithLabelValues("miss").Inc()
		c := &call{done: make(chan struct{})}
		c.addRequester(req.Subscriber)
		s.inflight[refKey(r)] = c
		waitCalls[r] = c
		mine = append(mine, r)
		waits = append(waits, r)
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
	for _, r := range waits {
		c := waitCalls[r]
		select {
		case <-c.done:
		case <-ctx.Done():
			errs[r] = ctx.Err()
			continue
		}
		if c.err != nil {
			errs[r] = c.err
		} else {
			vals[r] = c.value
		}
	}
	return vals, errs
}

func refKey(r provider.Ref) string { return "v\x00" + r.Key + "\x00" + r.Version }

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

// enqueueBatch adds refs (whose calls the caller created) to the store's
// pending batch, flushed BatchDelay after the first ref arrived.
func (l *Layer) enqueueBatch(s *store, refs []provider.Ref) {
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
func (l *Layer) flush(s *store) {
	s.mu.Lock()
	refs := s.pending
	s.pending, s.flushScheduled = nil, false
	refs = append(refs, s.topUp(l.opts.Now(), l.opts.BatchSize-len(refs))...)
	s.mu.Unlock()
	if len(refs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(l.ctx, l.opts.CallTimeout)
	defer cancel()
	l.fetch(ctx, s, refs)
}

// topUp returns up to n more refs worth refreshing in a batch call that is
// going out anyway: values other objects use that are past half their
// window. Fetched now, they are fresh when those objects refresh, so one
// batch call per BatchSize keys serves a whole refresh window instead of one
// call per object. It creates their calls (under s.mu).
func (s *store) topUp(now time.Time, n int) []provider.Ref {
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

// fetch fetches refs (whose calls this goroutine owns) and completes them.
func (l *Layer) fetch(ctx context.Context, s *store, refs []provider.Ref) {
	results := make(map[provider.Ref]provider.Value, len(refs))
	errs := make(map[provider.Ref]error, len(refs))
	if bg, ok := s.client.(provider.BatchGetter); ok && len(refs) > 1 {
		if err := l.admit(ctx, s); err != nil {
			for _, r := range refs {
				errs[r] = err
			}
		} else {
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
	var changedSubs []string
	s.mu.Lock()
	for _, r := range refs {
		key := refKey(r)
		c := s.inflight[key]
		delete(s.inflight, key)
		e := s.entries[r]
		if e == nil { // unsubscribed meanwhile
			e = &entry{subscribers: map[string]struct{}{}}
			s.entries[r] = e
		}
		if v, ok := results[r]; ok {
			c.value = v
			h := sha256.Sum256(append(append([]byte{}, v.Data...), fieldsDigest(v.Fields)...))
			if !e.fetched.IsZero() && (e.err != nil || h != e.hash) {
				changedSubs = appendSubs(changedSubs, e.subscribers, c.requesters)
			}
			e.value, e.err, e.fetched, e.hash = v, nil, now, h
		} else {
			err := errs[r]
			c.err = err
			if isCacheable(err) {
				if !e.fetched.IsZero() && e.err == nil {
					changedSubs = appendSubs(changedSubs, e.subscribers, c.requesters)
				}
				e.value, e.err, e.fetched = provider.Value{}, err, now
			}
		}
		close(c.done)
	}
	s.mu.Unlock()
	if len(changedSubs) > 0 {
		l.opts.OnChange(changedSubs)
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

// isStoreFailure says whether an error should back the store off.
func isStoreFailure(err error) bool {
	if err == nil || errors.Is(err, provider.ErrNotFound) || errors.Is(err, context.Canceled) {
		return false
	}
	var te *provider.ThrottledError
	return errors.As(err, &te) || errors.Is(err, provider.ErrUnreachable) ||
		!(errors.Is(err, provider.ErrForbidden) || errors.Is(err, provider.ErrInvalidConfig) ||
			errors.Is(err, provider.ErrBadResponse) || errors.Is(err, provider.ErrNotSupported))
}

func (l *Layer) getOne(ctx context.Context, s *store, r provider.Ref) (provider.Value, error) {
	if err := l.admit(ctx, s); err != nil {
		return provider.Value{}, err
	}
	v, err := s.client.GetSecret(ctx, r)
	l.record(s, err)
	return v, err
}

// BackoffError is returned without calling the store while it backs off.
type BackoffError struct {
	Store string
	Until time.Time
	Err   error
}

// Error names the store and the failure, not the retry time, so a status
// built from it does not change (and is not rewritten) on every retry.
func (e *BackoffError) Error() string {
	return fmt.Sprintf("store %s failed recently and is backed off: %v", e.Store, e.Err)
}

func (e *BackoffError) Unwrap() error { return e.Err }

// admit waits for the store's rate limiter, or fails fast while it backs off.
func (l *Layer) admit(ctx context.Context, s *store) error {
	s.mu.Lock()
	until, last := s.backoffUntil, s.lastErr
	s.mu.Unlock()
	if l.opts.Now().Before(until) {
		return &BackoffError{Store: s.key.String(), Until: until, Err: last}
	}
	if err := s.limiter.Wait(ctx); err != nil {
		return fmt.Errorf("waiting for store %s rate limit: %w", s.key, err)
	}
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	return nil
}

// record updates the store's backoff state after a call.
func (l *Layer) record(s *store, err error) {
	outcome := "ok"
	if err != nil && !isCacheable(err) {
		outcome = "error"
	}
	l.opts.Metrics.ProviderCalls.WithLabelValues(s.provider, outcome).Inc()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !isStoreFailure(err) {
		s.failures, s.backoffUntil, s.lastErr = 0, time.Time{}, nil
		return
	}
	s.failures++
	d := l.opts.BaseBackoff << min(s.failures-1, 20)
	if d > l.opts.MaxBackoff || d <= 0 {
		d = l.opts.MaxBackoff
	}
	var te *provider.ThrottledError
	if errors.As(err, &te) && te.RetryAfter > d {
		d = te.RetryAfter
	}
	s.backoffUntil = l.opts.Now().Add(d)
	s.lastErr = err
}

// Find returns the values a find selects, cached like values.
func (l *Layer) Find(ctx context.Context, req Request, f provider.Find) (map[string][]byte, error) {
	s, err := l.storeFor(ctx, req)
	if err != nil {
		return nil, err
	}
	kb, _ := json.Marshal(f)
	key := "f\x00" + string(kb)
	now := l.opts.Now()
	s.mu.Lock()
	e := s.finds[key]
	if e == nil {
		e = &entry{subscribers: map[string]struct{}{}}
		s.finds[key] = e
	}
	if req.Subscriber != "" {
		e.subscribers[req.Subscriber] = struct{}{}
	}
	if !e.fetched.IsZero() && req.MaxAge > 0 && now.Sub(e.fetched) < req.MaxAge {
		found := e.found
		s.mu.Unlock()
		return found, nil
	}
	if c, ok := s.inflight[key]; ok {
		s.mu.Unlock()
		select {
		case <-c.done:
			return c.found, c.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	c := &call{done: make(chan struct{})}
	s.inflight[key] = c
	s.mu.Unlock()

	var found map[string][]byte
	err = l.admit(ctx, s)
	if err == nil {
		found, err = s.client.Find(ctx, f)
		l.record(s, err)
	}
	var changed []string
	s.mu.Lock()
	delete(s.inflight, key)
	c.found, c.err = found, err
	if err == nil {
		h := sha256.Sum256(fieldsDigest(found))
		if !e.fetched.IsZero() && h != e.hash {
			changed = appendSubs(changed, e.subscribers, map[string]struct{}{req.Subscriber: {}})
		}
		e.found, e.fetched, e.hash = found, now, h
	}
	close(c.done)
	s.mu.Unlock()
	if len(changed) > 0 {
		l.opts.OnChange(changed)
	}
	return found, err
}

// Validate builds (or reuses) the store's client and validates it.
func (l *Layer) Validate(ctx context.Context, req Request) error {
	s, err := l.storeFor(ctx, req)
	if err != nil {
		return err
	}
	return s.client.Validate(ctx)
}

// Unsubscribe forgets a subscriber (its object was deleted).
func (l *Layer) Unsubscribe(subscriber string) {
	l.mu.Lock()
	stores := make([]*store, 0, len(l.stores))
	for _, s := range l.stores {
		stores = append(stores, s)
	}
	l.mu.Unlock()
	for _, s := range stores {
		s.mu.Lock()
		for r, e := range s.entries {
			delete(e.subscribers, subscriber)
			if len(e.subscribers) == 0 {
				delete(s.entries, r)
			}
		}
		for k, e := range s.finds {
			delete(e.subscribers, subscriber)
			if len(e.subscribers) == 0 {
				delete(s.finds, k)
			}
		}
		s.mu.Unlock()
	}
}

// Calls returns how many calls were made through the client the store
// named by kind, namespace and name uses (shared with identical stores when
// its provider is Shareable), for metrics and tests.
func (l *Layer) Calls(kind, namespace, name string) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := map[storeKey]bool{}
	var n int64
	for id, k := range l.identities {
		if id.kind == kind && id.namespace == namespace && id.name == name && !seen[k] {
			seen[k] = true
			if s, ok := l.stores[k]; ok {
				s.mu.Lock()
				n += s.calls
				s.mu.Unlock()
			}
		}
	}
	return n
}

// identity names a store object (and, for a ClusterSecretStore whose
// credentials resolve in the user's namespace, that namespace).
type identity struct {
	kind, namespace, name, scope string
}

// storeFor returns the client state for req. Stores whose provider is
// Shareable and whose configuration is identical share one state; others
// get one per store object (and namespace scope). A changed configuration
// gets a new client; the old one is closed once no store uses it.
func (l *Layer) storeFor(ctx context.Context, req Request) (*store, error) {
	name, err := provider.SelectedName(req.Store.Spec.Provider)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", provider.ErrInvalidConfig, err)
	}
	p, ok := l.opts.Registry.Get(name)
	if !ok {
		return nil, fmt.Errorf("%w: provider %q is not supported by keyferry", provider.ErrNotSupported, name)
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

	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.opts.Now()
	if prev, ok := l.identities[id]; ok && prev != key {
		l.identities[id] = key
		l.release(ctx, prev)
	}
	l.identities[id] = key
	if s, ok := l.stores[key]; ok {
		if now.Sub(s.created) < l.opts.ClientTTL {
			return s, nil
		}
		s.close(ctx) // rebuilt below, keeping its cache and subscribers
	}
	c, err := p.NewClient(ctx, popts)
	if err != nil {
		return nil, fmt.Errorf("building %s client for %s: %w", name, key, err)
	}
	wctx, cancel := context.WithCancel(l.ctx)
	s := &store{
		key: key, provider: name, created: now, client: c, cancel: cancel,
		limiter:  rate.NewLimiter(rate.Limit(l.opts.QPS), l.opts.Burst),
		entries:  map[provider.Ref]*entry{},
		finds:    map[string]*entry{},
		inflight: map[string]*call{},
	}
	if old, ok := l.stores[key]; ok {
		s.entries, s.finds, s.calls = old.entries, old.finds, old.calls
	}
	l.stores[key] = s
	if w, ok := c.(provider.Watcher); ok {
		go l.watch(wctx, s, w)
	}
	return s, nil
}

// release closes a store state no identity uses any more (under l.mu).
func (l *Layer) release(ctx context.Context, key storeKey) {
	for _, k := range l.identities {
		if k == key {
			return
		}
	}
	if s, ok := l.stores[key]; ok {
		s.close(ctx)
		delete(l.stores, key)
	}
}

func (l *Layer) watch(ctx context.Context, s *store, w provider.Watcher) {
	err := w.Watch(ctx, func(keys []string) {
		s.mu.Lock()
		var subs []string
		for r, e := range s.entries {
			if keys != nil && !containsKey(keys, r.Key) {
				continue
			}
			e.fetched = time.Time{} // stale: the next Get fetches
			subs = appendSubs(subs, e.subscribers, nil)
		}
		for _, e := range s.finds {
			e.fetched = time.Time{}
			subs = appendSubs(subs, e.subscribers, nil)
		}
		s.mu.Unlock()
		if len(subs) > 0 {
			l.opts.OnChange(subs)
		}
	})
	if err != nil && ctx.Err() == nil {
		l.opts.Log.Error(err, "watching store for changes stopped; falling back to refresh intervals", "store", s.key.String())
	}
}

func containsKey(keys []string, k string) bool {
	for _, x := range keys {
		if x == k {
			return true
		}
	}
	return false
}

func (s *store) close(ctx context.Context) {
	s.cancel()
	_ = s.client.Close(ctx)
}

func (l *Layer) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, s := range l.stores {
		s.close(context.Background())
		delete(l.stores, k)
	}
}
