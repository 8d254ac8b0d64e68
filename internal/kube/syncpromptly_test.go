package kube

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// slowCache syncs like the manager's cache: WaitForCacheSync checks at once
// and then waits for its context (client-go checks again only every
// 100 ms).
type slowCache struct {
	cache.Cache
	synced atomic.Bool
	checks atomic.Int32
}

func (c *slowCache) WaitForCacheSync(ctx context.Context) bool {
	c.checks.Add(1)
	if c.synced.Load() {
		return true
	}
	<-ctx.Done()
	return false
}

func (c *slowCache) GetInformer(context.Context, client.Object, ...cache.InformerGetOption) (cache.Informer, error) {
	return fakeInformer{}, nil
}

type fakeInformer struct{ cache.Informer }

func (fakeInformer) AddEventHandlerWithOptions(toolscache.ResourceEventHandler, toolscache.HandlerOptions) (toolscache.ResourceEventHandlerRegistration, error) {
	return &fakeRegistration{}, nil
}

type fakeRegistration struct {
	toolscache.ResourceEventHandlerRegistration
	synced atomic.Bool
}

func (r *fakeRegistration) HasSynced() bool { return r.synced.Load() }

func TestSyncPromptlyChecksAgainUntilTheCacheHasSynced(t *testing.T) {
	inner := &slowCache{}
	c := SyncPromptly(inner)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	go func() {
		// The cache syncs after a few checks.
		for inner.checks.Load() < 3 {
			time.Sleep(time.Millisecond)
		}
		inner.synced.Store(true)
	}()
	if !c.WaitForCacheSync(ctx) {
		t.Fatal("WaitForCacheSync gave up although the cache synced")
	}
	if ctx.Err() != nil {
		t.Fatal("WaitForCacheSync returned only when its context ended")
	}
}

func TestSyncPromptlyWaitsForTheHandlersAddedThroughIt(t *testing.T) {
	inner := &slowCache{}
	inner.synced.Store(true)
	c := SyncPromptly(inner)
	i, err := c.GetInformer(t.Context(), SecretMetadata())
	if err != nil {
		t.Fatal(err)
	}
	reg, err := i.AddEventHandlerWithOptions(toolscache.ResourceEventHandlerFuncs{}, toolscache.HandlerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if c.WaitForCacheSync(ctx) {
		t.Fatal("WaitForCacheSync returned true while a handler had not been told of the initial list")
	}
	reg.(*fakeRegistration).synced.Store(true)
	if !c.WaitForCacheSync(t.Context()) {
		t.Fatal("WaitForCacheSync returned false once the handler had synced")
	}
}
