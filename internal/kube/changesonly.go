package kube

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// changesOnly is a cache whose informers tell their handlers of changes
// only, not of the objects of their initial list (nor of the objects an
// informer already holds when a handler is added to it).
//
// The Secret metadata cache uses it: its handlers map a Secret to the
// objects waiting for it to change, and at start-up each of those objects
// is reconciled anyway from its own informer. The initial list's events
// would only add work: a call of every handler (one per controller) for
// every Secret in the cluster, most of them unrelated, all while the cache
// fills, which is when the operator's memory peaks. A re-list after a
// broken watch is not an initial list: its additions are delivered.
type changesOnly struct{ cache.Cache }

func (c changesOnly) GetInformer(ctx context.Context, obj client.Object, opts ...cache.InformerGetOption) (cache.Informer, error) {
	i, err := c.Cache.GetInformer(ctx, obj, opts...)
	if err != nil {
		return nil, err
	}
	return changesOnlyInformer{i}, nil
}

func (c changesOnly) GetInformerForKind(ctx context.Context, gvk schema.GroupVersionKind, opts ...cache.InformerGetOption) (cache.Informer, error) {
	i, err := c.Cache.GetInformerForKind(ctx, gvk, opts...)
	if err != nil {
		return nil, err
	}
	return changesOnlyInformer{i}, nil
}

// changesOnlyInformer registers its handlers behind skipInitialList.
type changesOnlyInformer struct{ cache.Informer }

func (i changesOnlyInformer) AddEventHandler(h toolscache.ResourceEventHandler) (toolscache.ResourceEventHandlerRegistration, error) {
	return i.Informer.AddEventHandler(skipInitialList{h})
}

func (i changesOnlyInformer) AddEventHandlerWithResyncPeriod(h toolscache.ResourceEventHandler, resync time.Duration) (toolscache.ResourceEventHandlerRegistration, error) {
	return i.Informer.AddEventHandlerWithResyncPeriod(skipInitialList{h}, resync)
}

func (i changesOnlyInformer) AddEventHandlerWithOptions(h toolscache.ResourceEventHandler, opts toolscache.HandlerOptions) (toolscache.ResourceEventHandlerRegistration, error) {
	return i.Informer.AddEventHandlerWithOptions(skipInitialList{h}, opts)
}

// skipInitialList passes on every event but the additions of an initial
// list.
type skipInitialList struct {
	toolscache.ResourceEventHandler
}

func (h skipInitialList) OnAdd(obj any, isInInitialList bool) {
	if !isInInitialList {
		h.ResourceEventHandler.OnAdd(obj, false)
	}
}
