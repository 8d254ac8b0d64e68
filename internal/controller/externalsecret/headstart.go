package externalsecret

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
)

// DefaultHeadStart is how many ExternalSecrets the head start syncs.
const DefaultHeadStart = 100

// HeadStartLog is the line the head start logs once done.
const HeadStartLog = "head start done"

// headStartListTimeout bounds the head start's one request: reconciles
// wait for it.
const headStartListTimeout = 10 * time.Second

// headStart syncs the ExternalSecrets of one page read from the API server
// when the operator starts, while the cache of every ExternalSecret is
// still filling: with thousands of them, listing and decoding them all
// takes a second or more, and the first Secrets need not wait for it.
//
// A reconcile waits until the page is listed (at most the list's timeout).
// A reconcile of an object of the page that the head start has not synced
// yet does nothing and the object is queued again once the head start has
// synced it (holds, release), so that no object is synced by both at once
// and no worker waits for a slow sync of the head start; the reconcile of
// an object it synced finds it synced, as after any sync.
//
// The manager starts its runnables only once its caches have synced, so
// the operator starts the head start early (StartHeadStart) where it may
// write at once, without leader election; the manager starts it too (a
// second Start waits for the first), which is when it runs with leader
// election, once elected.
type headStart struct {
	r    *Reconciler
	size int
	log  logr.Logger
	once sync.Once

	// requeue queues a reconcile of an object released after a reconcile
	// of it was put off.
	requeue func(context.Context, types.NamespacedName)

	// listed is closed once the page is listed, or the listing failed.
	listed chan struct{}
	mu     sync.Mutex
	// held holds the objects of the page not yet synced; true once a
	// reconcile of the object was put off.
	held map[types.NamespacedName]bool
}

func newHeadStart(r *Reconciler, size int, logger logr.Logger, requeue func(context.Context, types.NamespacedName)) *headStart {
	return &headStart{r: r, size: size, log: logger, requeue: requeue, listed: make(chan struct{}), held: map[types.NamespacedName]bool{}}
}

// Start runs the head start once; a later call waits for the first.
func (h *headStart) Start(ctx context.Context) error {
	h.once.Do(func() { h.run(ctx) })
	return nil
}

// StartHeadStart runs the head start now, before the manager's caches have
// synced; the caller must be allowed to write (no leader election).
func (r *Reconciler) StartHeadStart(ctx context.Context) {
	if r.headStart != nil {
		_ = r.headStart.Start(ctx)
	}
}

// holds reports, once the page is listed (or ctx is done), whether key is
// an object of the page the head start has not synced yet; if so, the
// object is queued again when the head start releases it.
func (h *headStart) holds(ctx context.Context, key types.NamespacedName) (bool, error) {
	select {
	case <-h.listed:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, held := h.held[key]; !held {
		return false, nil
	}
	h.held[key] = true
	return true, nil
}

// release ends the hold on key, and queues it again if a reconcile of it
// was put off meanwhile.
func (h *headStart) release(ctx context.Context, key types.NamespacedName) {
	h.mu.Lock()
	putOff := h.held[key]
	delete(h.held, key)
	h.mu.Unlock()
	if putOff {
		h.requeue(ctx, key)
	}
}

// run lists the page and syncs it. A failure to list costs only the head
// start: the cache lists everything anyway.
func (h *headStart) run(ctx context.Context) {
	start := time.Now()
	items, err := h.list(ctx)
	for _, es := range items {
		h.held[client.ObjectKeyFromObject(es)] = false
	}
	close(h.listed)
	if err == nil {
		err = cacheStarted(ctx, h.r.Client, h.r.Namespace)
	}
	if err != nil {
		for _, es := range items {
			h.release(ctx, client.ObjectKeyFromObject(es))
		}
		if ctx.Err() == nil {
			h.log.Error(err, "head start: the first ExternalSecrets sync once the cache has them all")
		}
		return
	}
	next := make(chan *esv1.ExternalSecret)
	var wg sync.WaitGroup
	for range min(max(h.r.Concurrency, 1), len(items)) {
		wg.Go(func() {
			for es := range next {
				key := client.ObjectKeyFromObject(es)
				ctx := log.IntoContext(ctx, h.log.WithValues("ExternalSecret", key))
				if _, err := h.r.sync(ctx, es); err != nil && ctx.Err() == nil {
					log.FromContext(ctx).Error(err, "head start: sync failed; the controller retries it")
				}
				h.release(ctx, key)
			}
		})
	}
	for _, es := range items {
		if ctx.Err() != nil {
			h.release(ctx, client.ObjectKeyFromObject(es))
			continue
		}
		select {
		case next <- es:
		case <-ctx.Done():
			h.release(ctx, client.ObjectKeyFromObject(es))
		}
	}
	close(next)
	wg.Wait()
	h.log.Info(HeadStartLog, "externalSecrets", len(items), "duration", time.Since(start).Round(time.Millisecond).String())
}

// cacheStartPoll is how often the head start checks whether the manager
// has started its cache.
const cacheStartPoll = 5 * time.Millisecond

// cacheStarted returns once the manager's cache, which the syncs read
// stores and Secrets from, has started: the operator starts the head start
// beside the manager, and the cache refuses every read until then
// (cache.ErrCacheNotStarted) rather than waiting. A read of SecretStores,
// which the controller always watches, tells.
func cacheStarted(ctx context.Context, c client.Reader, ns string) error {
	t := time.NewTicker(cacheStartPoll)
	defer t.Stop()
	for {
		var notStarted *cache.ErrCacheNotStarted
		err := c.List(ctx, &esv1.SecretStoreList{}, client.InNamespace(ns))
		if !errors.As(err, &notStarted) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// list reads the page: the first ExternalSecrets the API server returns
// (of the served namespace, with one).
func (h *headStart) list(ctx context.Context) ([]*esv1.ExternalSecret, error) {
	ctx, cancel := context.WithTimeout(ctx, headStartListTimeout)
	defer cancel()
	var list esv1.ExternalSecretList
	opts := []client.ListOption{client.Limit(int64(h.size))}
	if h.r.Namespace != "" {
		opts = append(opts, client.InNamespace(h.r.Namespace))
	}
	if err := h.r.Engine.APIReader.List(ctx, &list, opts...); err != nil {
		return nil, err
	}
	items := make([]*esv1.ExternalSecret, len(list.Items))
	for i := range list.Items {
		items[i] = &list.Items[i]
	}
	return items, nil
}
