package externalsecret

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/keyferry/keyferry/internal/engine"
)

// ConfigMap targets (spec.target.manifest, --unsafe-allow-generic-targets).
// ConfigMaps are never in the manager's cache (the engine reads its target
// from the API server). Drift is seen through a metadata-only watch of
// every ConfigMap, reduced by configMapMetadataTransform to identity,
// resourceVersion, the controller ownerReference and keyferry's owner and
// adopt annotations: an edit of a managed ConfigMap wakes the
// ExternalSecret that writes it (secretOwner), and an edit of any other
// ConfigMap wakes the ExternalSecrets refused for it (waiting). The watch
// runs only with AllowGenericTargets.

// ReasonResourceSynced is the Ready reason of an ExternalSecret whose
// manifest target was synced (ESO's).
const ReasonResourceSynced = "ResourceSynced"

// ReasonResourceDeleted is the Ready reason of an ExternalSecret whose
// manifest target was deleted because every remote value is gone and
// deletionPolicy is Delete (ESO's).
const ReasonResourceDeleted = "ResourceDeleted"

// configMapMetadata is the object the metadata-only watch lists.
func configMapMetadata() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("ConfigMap"))
	return m
}

// configMapMetadataTransform keeps, of each ConfigMap's metadata, what the
// watch and the refresh decision need.
func configMapMetadataTransform(in any) (any, error) {
	m, ok := in.(*metav1.PartialObjectMetadata)
	if !ok {
		return in, nil
	}
	out := &metav1.PartialObjectMetadata{TypeMeta: m.TypeMeta}
	out.Namespace, out.Name, out.UID, out.ResourceVersion = m.Namespace, m.Name, m.UID, m.ResourceVersion
	if ref := metav1.GetControllerOf(m); ref != nil {
		out.OwnerReferences = []metav1.OwnerReference{*ref}
	}
	for _, k := range []string{engine.AnnotationOwner, engine.AnnotationAdopt} {
		if v, ok := m.Annotations[k]; ok {
			if out.Annotations == nil {
				out.Annotations = map[string]string{}
			}
			out.Annotations[k] = v
		}
	}
	return out, nil
}

// watchConfigMapMetadata starts (with the manager) the ConfigMap metadata
// cache and returns the source that wakes the ExternalSecret writing a
// ConfigMap and those waiting for a change to one.
func (r *Reconciler) watchConfigMapMetadata(mgr ctrl.Manager) (source.Source, error) {
	opts := cache.Options{
		HTTPClient:                  mgr.GetHTTPClient(),
		Scheme:                      mgr.GetScheme(),
		Mapper:                      mgr.GetRESTMapper(),
		DefaultTransform:            configMapMetadataTransform,
		ReaderFailOnMissingInformer: true,
	}
	if r.Namespace != "" {
		opts.DefaultNamespaces = map[string]cache.Config{r.Namespace: {}}
	}
	c, err := cache.New(mgr.GetConfig(), opts)
	if err != nil {
		return nil, fmt.Errorf("creating the ConfigMap metadata cache: %w", err)
	}
	if err := mgr.Add(c); err != nil {
		return nil, fmt.Errorf("adding the ConfigMap metadata cache: %w", err)
	}
	r.configMaps = c
	return source.Kind[client.Object](c, configMapMetadata(), handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		return append(secretOwner(ctx, o), r.waiting.waitersOf(ctx, o)...)
	})), nil
}

// targetVersion reports whether the plan's target exists and its
// resourceVersion, from the cache of its kind.
func (r *Reconciler) targetVersion(ctx context.Context, ns string, plan engine.Plan) (bool, string) {
	key := client.ObjectKey{Namespace: ns, Name: plan.Target.Name}
	if m := plan.Target.Manifest; m != nil && !m.IsConfigMap() {
		// Other kinds are not cached: one metadata GET (a missing kind or
		// a refused read reads as "no target"; the sync reports why).
		gvk, err := m.TargetGVK()
		if err != nil {
			return false, ""
		}
		pm := &metav1.PartialObjectMetadata{}
		pm.SetGroupVersionKind(gvk)
		if err := r.Engine.APIReader.Get(ctx, key, pm); err != nil {
			return false, ""
		}
		return true, pm.ResourceVersion
	}
	if plan.Target.Manifest != nil {
		if r.configMaps == nil {
			return false, ""
		}
		m := configMapMetadata()
		if err := r.configMaps.Get(ctx, key, m); err != nil {
			return false, ""
		}
		return true, m.ResourceVersion
	}
	var s corev1.Secret
	if err := r.Client.Get(ctx, key, &s); err != nil {
		return false, ""
	}
	return true, s.ResourceVersion
}
