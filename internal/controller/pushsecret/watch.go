package pushsecret

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/keyferry/keyferry/internal/engine/fetch"
)

// fetchRequest holds a resolved store while deleteAll walks its entries.
type fetchRequest struct{ fetch.Request }

// watchSources starts (with the manager) a cache of the metadata of every
// Secret, reduced to identity and resourceVersion (the manager's cache
// holds only the Secrets keyferry writes), and returns the source that
// wakes the PushSecrets of a Secret that changed.
func (r *Reconciler) watchSources(mgr ctrl.Manager) (source.Source, error) {
	opts := cache.Options{
		HTTPClient:                  mgr.GetHTTPClient(),
		Scheme:                      mgr.GetScheme(),
		Mapper:                      mgr.GetRESTMapper(),
		DefaultTransform:            identityOnly,
		ReaderFailOnMissingInformer: true,
	}
	if r.Namespace != "" {
		opts.DefaultNamespaces = map[string]cache.Config{r.Namespace: {}}
	}
	c, err := cache.New(mgr.GetConfig(), opts)
	if err != nil {
		return nil, fmt.Errorf("creating the Secret metadata cache of PushSecrets: %w", err)
	}
	if err := mgr.Add(c); err != nil {
		return nil, fmt.Errorf("adding the Secret metadata cache of PushSecrets: %w", err)
	}
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	// An update wakes the PushSecrets of the Secret's old labels too: a
	// Secret that leaves a label selector is no longer pushed.
	enqueue := func(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request], objs ...client.Object) {
		for _, o := range objs {
			for _, req := range r.requestsFor(ctx, o) {
				q.Add(req)
			}
		}
	}
	h := handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, q, e.Object)
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, q, e.ObjectOld, e.ObjectNew)
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, q, e.Object)
		},
		GenericFunc: func(ctx context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, q, e.Object)
		},
	}
	return source.Kind[client.Object](c, m, h), nil
}

// identityOnly keeps, of a Secret's metadata, its identity,
// resourceVersion and labels (spec.selector.secret.selector selects by
// them).
func identityOnly(in any) (any, error) {
	m, ok := in.(*metav1.PartialObjectMetadata)
	if !ok {
		return in, nil
	}
	out := &metav1.PartialObjectMetadata{TypeMeta: m.TypeMeta}
	out.Namespace, out.Name, out.UID, out.ResourceVersion, out.Labels = m.Namespace, m.Name, m.UID, m.ResourceVersion, m.Labels
	return out, nil
}
