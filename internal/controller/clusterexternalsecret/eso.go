package clusterexternalsecret

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
)

// Finalizers recent ESO versions add and keyferry does not use: one on the
// ClusterExternalSecret and one per ClusterExternalSecret on every namespace
// it provisioned. After a switch from ESO nobody would remove them, so a
// deleted ClusterExternalSecret or namespace would hang in Terminating;
// keyferry releases them.
const (
	ESOFinalizer                = "externalsecrets.external-secrets.io/clusterexternalsecret-cleanup"
	ESONamespaceFinalizerPrefix = "externalsecrets.external-secrets.io/ces-"
)

// ESONamespaceFinalizer is the finalizer ESO puts on namespaces for the
// ClusterExternalSecret named cesName.
func ESONamespaceFinalizer(cesName string) string { return ESONamespaceFinalizerPrefix + cesName }

// releaseNamespaces removes ESO's finalizer for ces from the namespaces that
// carry it. The patch is guarded by the resourceVersion: finalizers are a
// list, and a merge patch replaces it whole.
func (r *Reconciler) releaseNamespaces(ctx context.Context, ces *esv1.ClusterExternalSecret, namespaces []corev1.Namespace) error {
	fin := ESONamespaceFinalizer(ces.Name)
	for i := range namespaces {
		ns := &namespaces[i]
		if !controllerutil.ContainsFinalizer(ns, fin) {
			continue
		}
		next := ns.DeepCopy()
		controllerutil.RemoveFinalizer(next, fin)
		if err := r.Client.Patch(ctx, next, client.MergeFromWithOptions(ns, client.MergeFromWithOptimisticLock{})); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("removing ESO's finalizer %s from namespace %s: %w", fin, ns.Name, err)
		}
	}
	return nil
}

// release lets a deleted ClusterExternalSecret that ESO finalized go: it
// releases ESO's namespace finalizers, then its own. Its ExternalSecrets
// are removed by the garbage collector through their ownerReferences.
func (r *Reconciler) release(ctx context.Context, ces *esv1.ClusterExternalSecret) error {
	if !controllerutil.ContainsFinalizer(ces, ESOFinalizer) {
		return nil
	}
	var namespaces corev1.NamespaceList
	if err := r.Client.List(ctx, &namespaces); err != nil {
		return fmt.Errorf("listing namespaces: %w", err)
	}
	if err := r.releaseNamespaces(ctx, ces, namespaces.Items); err != nil {
		return err
	}
	next := ces.DeepCopy()
	controllerutil.RemoveFinalizer(next, ESOFinalizer)
	if err := r.Client.Patch(ctx, next, client.MergeFromWithOptions(ces, client.MergeFromWithOptimisticLock{})); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("removing ESO's finalizer from ClusterExternalSecret %s: %w", ces.Name, err)
	}
	return nil
}
