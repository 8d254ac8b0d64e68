package kube

import (
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// SyncCheckInterval is how often a SyncPromptly cache checks whether it has
// synced.
const SyncCheckInterval = 5 * time.Millisecond

// SyncPromptly returns c with a WaitForCacheSync that notices within
// SyncCheckInterval that c's informers, and the handlers added to them
// through it, have synced.
//
// The manager waits for its caches with WaitForCacheSync before it starts
// the controllers, and each source of a controller waits again (the cache,
// then its own handler) before the workers start. client-go checks every
// 100 ms, so three waits in a row held every start back by up to 300 ms
// after the informers had synced.
func SyncPromptly(c cache.Cache) cache.Cache {
	return &syncPromptly{Cache: c}
}

type syncPromptly struct {
	cache.Cache

	mu       sync.Mutex
	handlers []toolscache.ResourceEventHandlerRegistration
}

func (c *syncPromptly) GetInformer(ctx context.Context, obj client.Object, opts ...cache.InformerGetOption) (cache.Informer, error) {
	i, err := c.Cache.GetInformer(ctx, obj, opts...)
	if err != nil {
		return nil, err
	}
	return promptInformer{Informer: i, cache: c}, nil
}

func (c *syncPromptly) GetInformerForKind(ctx context.Context, gvk schema.GroupVersionKind, opts ...cache.InformerGetOption) (cache.Informer, error) {
	i, err := c.Cache.GetInformerForKind(ctx, gvk, opts...)
	if err != nil {
		return nil, err
	}
	return promptInformer{Informer: i, cache: c}, nil
}

// WaitForCacheSync waits until every informer of the cache, and every
// handler added through it, has synced (a handler has once it has been
// told of its informer's initial list), or ctx is done.
func (c *syncPromptly) WaitForCacheSync(ctx context.Context) bool {
	t := time.NewTicker(SyncCheckInterval)
	defer t.Stop()
	for {
		if c.synced(ctx) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

// synced checks once. The wrapped cache's WaitForCacheSync checks at once
// and then every 100 ms until its context ends: given a context that ends
// within a millisecond, it is a single check.
func (c *syncPromptly) synced(ctx context.Context) bool {
	check, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	if !c.Cache.WaitForCacheSync(check) {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range c.handlers {
		if !h.HasSynced() {
			return false
		}
	}
	return true
}

// promptInformer records the handlers added to it with its cache.
type promptInformer struct {
	cache.Informer
	cache *syncPromptly
}

func (i promptInformer) AddEventHandler(h toolscache.ResourceEventHandler) (toolscache.ResourceEventHandlerRegistration, error) {
	return i.record(i.Informer.AddEventHandler(h))
}

func (i promptInformer) AddEventHandlerWithResyncPeriod(h toolscache.ResourceEventHandler, resync time.Duration) (toolscache.ResourceEventHandlerRegistration, error) {
	return i.record(i.Informer.AddEventHandlerWithResyncPeriod(h, resync))
}

func (i promptInformer) AddEventHandlerWithOptions(h toolscache.ResourceEventHandler, opts toolscache.HandlerOptions) (toolscache.ResourceEventHandlerRegistration, error) {
	return i.record(i.Informer.AddEventHandlerWithOptions(h, opts))
}

func (i promptInformer) RemoveEventHandler(reg toolscache.ResourceEventHandlerRegistration) error {
	i.cache.mu.Lock()
	for n, h := range i.cache.handlers {
		if h == reg {
			i.cache.handlers = append(i.cache.handlers[:n], i.cache.handlers[n+1:]...)
			break
		}
	}
	i.cache.mu.Unlock()
	return i.Informer.RemoveEventHandler(reg)
}

func (i promptInformer) record(reg toolscache.ResourceEventHandlerRegistration, err error) (toolscache.ResourceEventHandlerRegistration, error) {
	if err == nil {
		i.cache.mu.Lock()
		i.cache.handlers = append(i.cache.handlers, reg)
		i.cache.mu.Unlock()
	}
	return reg, err
}
