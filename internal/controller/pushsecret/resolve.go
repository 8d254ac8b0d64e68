package pushsecret

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine"
)

// sources reads the source Secrets live: the one spec.selector.secret.name
// names (a NotFound error when it does not exist), or every Secret of the
// namespace selector.secret.selector selects, sorted by name (possibly
// none).
func (r *Reconciler) sources(ctx context.Context, ns string, spec Spec) ([]corev1.Secret, error) {
	if spec.Source != "" {
		var src corev1.Secret
		if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: ns, Name: spec.Source}, &src); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, err
			}
			return nil, fmt.Errorf("reading source Secret %q: %w", spec.Source, err)
		}
		return []corev1.Secret{src}, nil
	}
	var list corev1.SecretList
	if err := r.APIReader.List(ctx, &list, client.InNamespace(ns), client.MatchingLabelsSelector{Selector: spec.SourceSelector}); err != nil {
		return nil, fmt.Errorf("listing the Secrets spec.selector.secret.selector selects: %w", err)
	}
	slices.SortFunc(list.Items, func(a, b corev1.Secret) int { return strings.Compare(a.Name, b.Name) })
	return list.Items, nil
}

// targets resolves spec.secretStoreRefs into the stores to push to, with
// their labels: a named store as it is (whether it exists and may be used
// is PushRequest's to say; its class was checked by Reconcile), a
// labelSelector as every store of its kind whose labels match (the
// SecretStores of the namespace, or the ClusterSecretStores), leaving out
// those of another controller class as ESO does. A store is listed once.
// A labelSelector that selects no store at all is StoreNotFound.
func (r *Reconciler) targets(ctx context.Context, ns string, spec Spec) ([]Target, error) {
	var out []Target
	seen := map[engine.StoreRef]bool{}
	add := func(t Target) {
		if !seen[t.Store] {
			seen[t.Store] = true
			out = append(out, t)
		}
	}
	for i, sel := range spec.Stores {
		if sel.Selector == nil {
			add(Target{Store: sel.Ref, Labels: r.storeLabels(ctx, ns, sel.Ref)})
			continue
		}
		var found []Target
		switch sel.Ref.Kind {
		case esv1.ClusterSecretStoreKind:
			if r.Engine.DisableClusterStores {
				return nil, &engine.Error{Reason: engine.ReasonClusterStoreDisabled,
					Err: fmt.Errorf("spec.secretStoreRefs[%d] selects ClusterSecretStores, and cluster stores are disabled in this installation", i)}
			}
			var list esv1.ClusterSecretStoreList
			if err := r.Client.List(ctx, &list, client.MatchingLabelsSelector{Selector: sel.Selector}); err != nil {
				return nil, fmt.Errorf("listing the ClusterSecretStores spec.secretStoreRefs[%d] selects: %w", i, err)
			}
			for _, s := range list.Items {
				if engine.HandlesStore(r.Engine.ControllerClass, &s.Spec) {
					found = append(found, Target{Store: engine.StoreRef{Kind: esv1.ClusterSecretStoreKind, Name: s.Name}, Labels: s.Labels})
				}
			}
			if len(list.Items) == 0 {
				return nil, &engine.Error{Reason: engine.ReasonStoreNotFound,
					Err: fmt.Errorf("spec.secretStoreRefs[%d].labelSelector selects no ClusterSecretStore", i)}
			}
		default:
			var list esv1.SecretStoreList
			if err := r.Client.List(ctx, &list, client.InNamespace(ns), client.MatchingLabelsSelector{Selector: sel.Selector}); err != nil {
				return nil, fmt.Errorf("listing the SecretStores spec.secretStoreRefs[%d] selects: %w", i, err)
			}
			for _, s := range list.Items {
				if engine.HandlesStore(r.Engine.ControllerClass, &s.Spec) {
					found = append(found, Target{Store: engine.StoreRef{Kind: esv1.SecretStoreKind, Name: s.Name}, Labels: s.Labels})
				}
			}
			if len(list.Items) == 0 {
				return nil, &engine.Error{Reason: engine.ReasonStoreNotFound,
					Err: fmt.Errorf("spec.secretStoreRefs[%d].labelSelector selects no SecretStore of namespace %q", i, ns)}
			}
		}
		slices.SortFunc(found, func(a, b Target) int { return strings.Compare(a.Store.Name, b.Store.Name) })
		for _, t := range found {
			add(t)
		}
	}
	return out, nil
}

// storeLabels are the labels of a named store, which a dataTo
// labelSelector may select it by; nil when it cannot be read (the push
// then reports why).
func (r *Reconciler) storeLabels(ctx context.Context, ns string, ref engine.StoreRef) map[string]string {
	var obj client.Object
	key := client.ObjectKey{Name: ref.Name}
	switch ref.Kind {
	case esv1.ClusterSecretStoreKind:
		if r.Engine.DisableClusterStores {
			return nil
		}
		obj = &esv1.ClusterSecretStore{}
	default:
		obj, key.Namespace = &esv1.SecretStore{}, ns
	}
	if err := r.Client.Get(ctx, key, obj); err != nil {
		return nil
	}
	return obj.GetLabels()
}

// dataToSelectorsMatch: a dataTo entry that selects stores by label
// selects at least one store of spec.secretStoreRefs (ESO's rule: a
// selector that matches nothing would silently push nothing).
func dataToSelectorsMatch(spec Spec, targets []Target) error {
	for _, d := range spec.DataTo {
		if d.Selector == nil {
			continue
		}
		if !slices.ContainsFunc(targets, d.targets) {
			return invalidPush("spec.dataTo[%d].storeRef.labelSelector selects none of the %ss of spec.secretStoreRefs", d.Index, d.Store.Kind)
		}
	}
	return nil
}

// work is one push of one source Secret.
type work struct {
	src  *corev1.Secret
	push Push
}

// plan renders each source Secret's template and lists its pushes to
// every target. Two source Secrets that push to the same remote ref of a
// store are refused: each would overwrite the other at every push.
func (r *Reconciler) plan(ctx context.Context, ns string, spec Spec, sources []corev1.Secret, targets []Target) ([]work, error) {
	var out []work
	from := map[string]string{} // store key + remote ref -> source Secret
	for i := range sources {
		src := &sources[i]
		if spec.Template != nil {
			data, err := r.Engine.RenderPush(ctx, ns, spec.Template.Template, src.Data)
			if err != nil {
				return nil, wrapInvalid(err, "Secret %q", src.Name)
			}
			// As ESO: the pushes read the rendered data and the
			// template's type, in a copy; the Secret is never written.
			src.Data, src.Type = data, spec.Template.Type
		}
		for _, t := range targets {
			pushes, err := spec.pushesFor(t, src.Data, r.Engine.KeyRewriter)
			if err != nil {
				if len(sources) > 1 {
					return nil, wrapInvalid(err, "Secret %q", src.Name)
				}
				return nil, err
			}
			for _, p := range pushes {
				k := StoreKey(p.Store) + "\x00" + RemoteKey(p.Ref)
				if prev, dup := from[k]; dup && prev != src.Name {
					return nil, invalidPush("Secrets %q and %q both push to remote ref %q of %s %q: select Secrets whose pushes do not overlap", prev, src.Name, RemoteKey(p.Ref), p.Store.Kind, p.Store.Name)
				}
				from[k] = src.Name
				out = append(out, work{src: src, push: p})
			}
		}
	}
	return out, nil
}
