package pushsecret

import (
	"context"
	"fmt"

	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	esv1alpha1 "github.com/keyferry/keyferry/apis/externalsecrets/v1alpha1"
	"github.com/keyferry/keyferry/internal/engine/fetch"
	"github.com/keyferry/keyferry/internal/kube"
)

// fetchRequest holds a resolved store while deleteAll walks its entries.
type fetchRequest struct{ fetch.Request }

// watchSources returns the source that wakes the PushSecrets of a Secret
// that changed, from the operator's shared cache of every Secret's
// metadata (SecretMetadata, which keeps labels: a label selector selects
// by them), or from a cache of its own when none is given. The manager's
// cache holds only the Secrets keyferry writes. The watch starts with the
// first PushSecret reconciled: a cluster without PushSecrets does not
// watch its Secrets for them. Once it has synced, every PushSecret is
// reconciled again, in case a source changed before the watch could tell.
func (r *Reconciler) watchSources(mgr ctrl.Manager) (*kube.DeferredSource, error) {
	c := r.SecretMetadata
	if c == nil {
		var err error
		if c, err = kube.NewSecretMetadataCache(mgr, r.Namespace); err != nil {
			return nil, fmt.Errorf("the Secret metadata cache of PushSecrets: %w", err)
		}
	}
	m := kube.SecretMetadata()
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
	changes := source.Kind[client.Object](c, m, h)
	return kube.NewDeferredSource(changes, func(ctx context.Context, q kube.Queue) {
		var list esv1alpha1.PushSecretList
		if err := r.Client.List(ctx, &list); err != nil {
			log.FromContext(ctx).Error(err, "listing PushSecrets to sync them once the Secret watch has synced")
			return
		}
		for i := range list.Items {
			q.Add(reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
	}), nil
}
