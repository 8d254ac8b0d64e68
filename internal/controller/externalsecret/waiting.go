package externalsecret

import (
	"context"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/kube"
)

// A refusal only a person can lift (engine.WaitsForChange: the Secret is
// not ours, Merge may not write into it, it is immutable or missing, it
// would be a credential) is not retried: the ExternalSecret waits for a
// change to itself (its watch) or to the Secret. The manager's cache holds
// only the Secrets keyferry manages, so a person's change to any other
// Secret (adding keyferry.io/adopt, deleting it, creating the Secret a Merge
// waits for) arrives through a second, metadata-only watch of every Secret
// whose cache keeps almost nothing of each object (a kube.SecretRef, see
// secretMetadataTransform). It costs one watch connection and, measured in
// TestSecretMetadataFootprint, about 330 bytes per Secret in the cluster
// (32 MiB for 100,000 Secrets), so it starts only when the first
// ExternalSecret waits (ESO keeps a metadata watch of every Secret all the
// time). The PushSecret controller shares the same cache (the operator's
// SecretMetadata), which is why it keeps labels. With Namespace set it
// covers that namespace only.

// waiting records which ExternalSecrets wait for a change to which Secret.
type waiting struct {
	mu sync.Mutex
	// bySecret maps a Secret to the names of the ExternalSecrets in its
	// namespace refused for it.
	bySecret map[types.NamespacedName]map[string]struct{}
	// byES maps an ExternalSecret to the Secret it waits for.
	byES map[types.NamespacedName]types.NamespacedName
}

func newWaiting() *waiting {
	return &waiting{bySecret: map[types.NamespacedName]map[string]struct{}{}, byES: map[types.NamespacedName]types.NamespacedName{}}
}

// wait records that es waits for a change to its target Secret.
func (w *waiting) wait(es *esv1.ExternalSecret) {
	key := client.ObjectKeyFromObject(es)
	secret := types.NamespacedName{Namespace: es.Namespace, Name: targetName(es)}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.forgetLocked(key)
	if w.bySecret[secret] == nil {
		w.bySecret[secret] = map[string]struct{}{}
	}
	w.bySecret[secret][es.Name] = struct{}{}
	w.byES[key] = secret
}

// done forgets that the ExternalSecret waits (it synced, or is gone).
func (w *waiting) done(key types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.forgetLocked(key)
}

func (w *waiting) forgetLocked(key types.NamespacedName) {
	secret, ok := w.byES[key]
	if !ok {
		return
	}
	delete(w.byES, key)
	delete(w.bySecret[secret], key.Name)
	if len(w.bySecret[secret]) == 0 {
		delete(w.bySecret, secret)
	}
}

// all lists the ExternalSecrets that wait.
func (w *waiting) all() []types.NamespacedName {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]types.NamespacedName, 0, len(w.byES))
	for key := range w.byES {
		out = append(out, key)
	}
	return out
}

// waitersOf maps a Secret to the ExternalSecrets that wait for a change to
// it, and to the one its adopt annotation names.
func (w *waiting) waitersOf(_ context.Context, o client.Object) []reconcile.Request {
	ns := o.GetNamespace()
	w.mu.Lock()
	names := w.bySecret[types.NamespacedName{Namespace: ns, Name: o.GetName()}]
	out := make([]reconcile.Request, 0, len(names)+1)
	for name := range names {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}})
	}
	w.mu.Unlock()
	if adopter, err := engine.ParseManagedBy(ns, o.GetAnnotations()[engine.AnnotationAdopt]); err == nil && adopter.Kind == Kind {
		if _, dup := names[adopter.Name]; !dup {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: adopter.Name}})
		}
	}
	return out
}

func targetName(es *esv1.ExternalSecret) string {
	if es.Spec.Target.Name != "" {
		return es.Spec.Target.Name
	}
	return es.Name
}

// secretMetadataTransform keeps, of each Secret's metadata, what the watch
// needs (kube.SecretMetadataTransform: identity, resourceVersion, labels,
// and here the adopt annotation).
func secretMetadataTransform(in any) (any, error) {
	return kube.SecretMetadataTransform(engine.AnnotationAdopt)(in)
}

// watchSecretMetadata returns the source that wakes the ExternalSecrets
// waiting for a change to a Secret, from the operator's shared Secret
// metadata cache (SecretMetadata), or from a cache of its own when none is
// given. The watch starts when the first ExternalSecret waits (Reconcile
// activates it): until then no Secret keyferry does not manage costs
// anything. Once it has synced, every waiting ExternalSecret is synced
// again, in case its Secret changed before the watch could tell.
func (r *Reconciler) watchSecretMetadata(mgr ctrl.Manager) (*kube.DeferredSource, error) {
	c := r.SecretMetadata
	if c == nil {
		var err error
		if c, err = kube.NewSecretMetadataCache(mgr, r.Namespace, engine.AnnotationAdopt); err != nil {
			return nil, err
		}
	}
	changes := source.Kind[client.Object](c, kube.SecretMetadata(), handler.EnqueueRequestsFromMapFunc(r.waiting.waitersOf))
	return kube.NewDeferredSource(changes, func(_ context.Context, q kube.Queue) {
		for _, key := range r.waiting.all() {
			q.Add(reconcile.Request{NamespacedName: key})
		}
	}), nil
}
