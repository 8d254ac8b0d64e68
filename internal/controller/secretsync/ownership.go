package secretsync

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ssv1 "github.com/keyferry/keyferry/apis/secretsync/v1alpha1"
)

// secretCheck examines the existing target Secret of a SecretSync and says
// why the SecretSync may not write it (nil: it may).
type secretCheck func(s *corev1.Secret, ss *ssv1.SecretSync) *Error

// ownershipChecks decide, in order, whether an existing Secret belongs to
// the SecretSync: as with the Secrets Store Sync Controller, a Secret is the
// SecretSync's only when it carries the controller's label and annotation and
// an ownerReference to the SecretSync. Any other Secret is never touched.
var ownershipChecks = []secretCheck{
	secretHasControllerLabel,
	secretHasControllerAnnotation,
	secretIsOwnedBySecretSync,
}

// checkOwnership runs ownershipChecks; the first failure wins.
func checkOwnership(s *corev1.Secret, ss *ssv1.SecretSync) *Error {
	for _, check := range ownershipChecks {
		if err := check(s, ss); err != nil {
			return err
		}
	}
	return nil
}

func secretHasControllerLabel(s *corev1.Secret, ss *ssv1.SecretSync) *Error {
	if _, ok := s.Labels[LabelController]; ok {
		return nil
	}
	return failf(kindLabel, "Secret %q exists without the label %s that marks the Secrets the controller writes; it was not created for this SecretSync and is never overwritten (delete it to let keyferry create it)", s.Name, LabelController)
}

func secretHasControllerAnnotation(s *corev1.Secret, ss *ssv1.SecretSync) *Error {
	if _, ok := s.Annotations[AnnotationController]; ok {
		return nil
	}
	return failf(kindAnnotation, "Secret %q exists without the annotation %s that marks the Secrets the controller writes; it is never overwritten (delete it to let keyferry create it)", s.Name, AnnotationController)
}

func secretIsOwnedBySecretSync(s *corev1.Secret, ss *ssv1.SecretSync) *Error {
	if secretSyncRef(s, ss.Name) >= 0 {
		return nil
	}
	return failf(kindLabel, "Secret %q carries the controller's label but no ownerReference to SecretSync %q; it is never overwritten (delete it to let keyferry create it)", s.Name, ss.Name)
}

// secretSyncRef returns the index of the ownerReference to the SecretSync
// named name, or -1. The UID is not compared: like the Secrets Store Sync
// Controller's admission policy, a SecretSync recreated under the same name
// keeps its Secret.
func secretSyncRef(s *corev1.Secret, name string) int {
	for i, ref := range s.OwnerReferences {
		if ref.Kind == "SecretSync" && ref.Name == name && strings.HasPrefix(ref.APIVersion, ssv1.GroupVersion.Group+"/") {
			return i
		}
	}
	return -1
}

// claimed says whether the Secret's ownerReference to the SecretSync is
// keyferry's: the controller reference, with the SecretSync's UID.
func claimed(s *corev1.Secret, ss *ssv1.SecretSync) bool {
	ref := metav1.GetControllerOf(s)
	return ref != nil && ref.UID == ss.UID && ref.Kind == "SecretSync"
}

// claim turns the Secret's ownerReference to the SecretSync into the
// controller reference to this SecretSync (same name, current UID), which
// the engine recognizes as ownership. Secrets written by the Secrets Store
// Sync Controller carry a plain ownerReference; claiming them once lets
// keyferry take over from it without rewriting anything else.
func claim(ctx context.Context, c client.Client, s *corev1.Secret, ss *ssv1.SecretSync) error {
	next := s.DeepCopy()
	refs := next.OwnerReferences[:0:0]
	for _, ref := range next.OwnerReferences {
		sameSync := ref.Kind == "SecretSync" && ref.Name == ss.Name && strings.HasPrefix(ref.APIVersion, ssv1.GroupVersion.Group+"/")
		isController := ref.Controller != nil && *ref.Controller
		if !sameSync && !isController {
			refs = append(refs, ref)
		}
	}
	next.OwnerReferences = append(refs, metav1.OwnerReference{
		APIVersion: ssv1.GroupVersion.String(), Kind: "SecretSync", Name: ss.Name, UID: ss.UID,
		Controller: ptr(true), BlockOwnerDeletion: ptr(true),
	})
	if err := c.Patch(ctx, next, client.MergeFromWithOptions(s, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("taking over Secret %q from the previous controller: %s", s.Name, apiReason(err))
	}
	return nil
}
