package externalsecret

import (
	"context"
	"errors"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/keyferry/keyferry/internal/engine"
)

// Drift of manifest targets of other kinds than ConfigMap (custom
// resources). ESO watches each target kind; so does keyferry, but only
// from the first sync that reached an object of the kind: the kind is then
// served and the operator may write it. The watch is metadata-only, in the
// ConfigMap metadata cache (same transform, same namespaces): an edit of a
// managed object wakes the ExternalSecret that writes it (its controller
// ownerReference or owner annotation, secretOwner) and an edit of another
// object of the kind wakes the ExternalSecrets refused for it (waiting).
// Listing and watching the kind need the list and watch verbs in the
// chart's genericTargets.resources; without them the watch retries and
// drift is corrected at the next refresh.

// targetKindWatches records the target kinds watched for drift.
type targetKindWatches struct {
	mu      sync.Mutex
	watched map[schema.GroupVersionKind]bool
	// controller is the ExternalSecret controller the watches feed; nil
	// before SetupWithManager.
	controller controller.Controller
}

// targetKindWatchesAfter says whether a sync that ended with err shows the
// kind is served and its objects reachable: it wrote, or it read an
// object it refused.
func targetKindWatchesAfter(err error) bool {
	if err == nil {
		return true
	}
	var ee *engine.Error
	return errors.As(err, &ee) && engine.WaitsForChange(ee.Reason)
}

// watchTargetKind starts the drift watch of the plan's target kind after
// a sync that reached an object of it, once per kind.
func (r *Reconciler) watchTargetKind(ctx context.Context, plan engine.Plan, err error) {
	m := plan.Target.Manifest
	if m == nil || m.IsConfigMap() || r.configMaps == nil || !targetKindWatchesAfter(err) {
		return
	}
	gvk, gerr := m.TargetGVK()
	if gerr != nil {
		return
	}
	w := &r.targetKinds
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.watched[gvk] || w.controller == nil {
		return
	}
	obj := &metav1.PartialObjectMetadata{}
	obj.SetGroupVersionKind(gvk)
	src := source.Kind[client.Object](r.configMaps, obj, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		return append(secretOwner(ctx, o), r.waiting.waitersOf(ctx, o)...)
	}))
	if werr := w.controller.Watch(src); werr != nil {
		log.FromContext(ctx).Error(werr, "watching manifest target kind for drift; drift is corrected at the next refresh", "kind", gvk.String())
		return
	}
	if w.watched == nil {
		w.watched = map[schema.GroupVersionKind]bool{}
	}
	w.watched[gvk] = true
	log.FromContext(ctx).Info("watching manifest target kind for drift", "kind", gvk.String())
}
