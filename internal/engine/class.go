package engine

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
)

// Reasons of the store-scoping rules.
const (
	// ReasonStoreOfAnotherController: the store's spec.controller names
	// another controller class. It is never written to a status: an
	// ExternalSecret using such a store is left to that controller.
	ReasonStoreOfAnotherController = "StoreOfAnotherController"
	// ReasonClusterStoreDisabled: the ExternalSecret uses a
	// ClusterSecretStore and this keyferry runs with
	// --enable-cluster-store-reconciler=false.
	ReasonClusterStoreDisabled = "ClusterSecretStoreDisabled"
)

// ErrStoreOfAnotherController is wrapped by the error a sync returns when a
// store it uses belongs to another controller class; the front-end then
// leaves the object alone (no status, no Event).
var ErrStoreOfAnotherController = errors.New("store belongs to another controller class")

// HandlesStore is ESO's controller-class rule, the one place keyferry
// decides whether it serves a store: a store without spec.controller is
// served by every controller, whatever its class; a store with one is
// served only by the controller of that class. So a keyferry started with
// --controller-class=keyferry serves stores of class "keyferry" and stores
// without a class, and a keyferry without a class serves only stores
// without one.
func HandlesStore(class string, spec *esv1.SecretStoreSpec) bool {
	return spec == nil || spec.Controller == "" || spec.Controller == class
}

// ExternalSecretStores returns the stores an ExternalSecret references
// (spec.secretStoreRef and every sourceRef), without duplicates.
func ExternalSecretStores(es *esv1.ExternalSecret) []StoreRef {
	var out []StoreRef
	seen := map[StoreRef]bool{}
	add := func(r esv1.SecretStoreRef) {
		if r.Name == "" {
			return
		}
		ref := StoreRef{Kind: esv1.SecretStoreKind, Name: r.Name}
		if r.Kind == esv1.ClusterSecretStoreKind {
			ref.Kind = esv1.ClusterSecretStoreKind
		}
		if !seen[ref] {
			seen[ref] = true
			out = append(out, ref)
		}
	}
	add(es.Spec.SecretStoreRef)
	for _, d := range es.Spec.Data {
		if d.SourceRef != nil {
			add(d.SourceRef.SecretStoreRef)
		}
	}
	for _, d := range es.Spec.DataFrom {
		if d.SourceRef != nil {
			add(d.SourceRef.SecretStoreRef)
		}
	}
	return out
}

// StoreOfAnotherController returns the first of refs (resolved in
// namespace) whose store belongs to another controller class. As in ESO, an
// object that uses such a store is skipped entirely, even when its other
// stores are keyferry's: a store that does not exist yet does not decide
// (the sync then reports StoreNotFound), and ClusterSecretStores are not
// read when they are disabled (the sync reports ClusterSecretStoreDisabled).
func (e *Engine) StoreOfAnotherController(ctx context.Context, namespace string, refs []StoreRef) (StoreRef, bool, error) {
	for _, ref := range refs {
		var spec *esv1.SecretStoreSpec
		switch ref.Kind {
		case esv1.ClusterSecretStoreKind:
			if e.DisableClusterStores {
				continue
			}
			var css esv1.ClusterSecretStore
			if err := e.Client.Get(ctx, client.ObjectKey{Name: ref.Name}, &css); err != nil {
				if apierrors.IsNotFound(err) {
					continue
				}
				return ref, false, fmt.Errorf("reading ClusterSecretStore %q: %w", ref.Name, err)
			}
			spec = &css.Spec
		case esv1.SecretStoreKind, "":
			var ss esv1.SecretStore
			if err := e.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: ref.Name}, &ss); err != nil {
				if apierrors.IsNotFound(err) {
					continue
				}
				return ref, false, fmt.Errorf("reading SecretStore %q: %w", ref.Name, err)
			}
			spec = &ss.Spec
		default:
			continue // resolved by a StoreResolver; controller classes do not apply
		}
		if !HandlesStore(e.ControllerClass, spec) {
			return ref, true, nil
		}
	}
	return StoreRef{}, false, nil
}

// checkStoreClass is the sync-time guard: a store that changed class after
// the front-end's check is not used.
func (e *Engine) checkStoreClass(kind, name string, spec *esv1.SecretStoreSpec) error {
	if HandlesStore(e.ControllerClass, spec) {
		return nil
	}
	return &Error{Reason: ReasonStoreOfAnotherController, Err: fmt.Errorf("%w: %s %q has spec.controller %q and this keyferry's class is %q",
		ErrStoreOfAnotherController, kind, name, spec.Controller, e.ControllerClass)}
}

// clusterStoresDisabled explains why a ClusterSecretStore cannot be used.
func clusterStoresDisabled(name string) error {
	return fail(ReasonClusterStoreDisabled, "ClusterSecretStore %q cannot be used: this keyferry serves no ClusterSecretStores (--enable-cluster-store-reconciler=false, chart value processClusterStore: false); use a SecretStore in this namespace", name)
}
