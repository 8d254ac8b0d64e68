package pushsecret_test

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1alpha1 "github.com/keyferry/keyferry/apis/externalsecrets/v1alpha1"
	"github.com/keyferry/keyferry/internal/controller/pushsecret"
)

// A status patch computed from a copy older than the stored status
// conflicts instead of landing as a patch of only what differs from that
// copy: there, a Ready=True patch from a copy showing Ready=True would be
// empty and leave a newer Ready=False in place. From the current copy it
// lands.
func TestStatusPatchFromAStaleCopyConflicts(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	// A store of another controller class: the operator leaves this
	// PushSecret alone, so only the test writes its status.
	env.Apply(t, ns, `apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: other-class
spec:
  controller: other
  provider:
    fake:
      data: []
`)
	env.Apply(t, ns, pushSecretYAML("ps", "other-class", "Replace", "None", "src", [3]string{"k", "r", "p"}))
	key := client.ObjectKey{Namespace: ns, Name: "ps"}
	get := func() *esv1alpha1.PushSecret {
		var ps esv1alpha1.PushSecret
		if err := env.Client.Get(ctx, key, &ps); err != nil {
			t.Fatal(err)
		}
		return &ps
	}
	setReady := func(ps *esv1alpha1.PushSecret, status corev1.ConditionStatus, reason string) {
		ps.Status.Conditions = []esv1alpha1.PushSecretStatusCondition{{Type: esv1alpha1.PushSecretReady, Status: status, Reason: reason}}
	}
	ps := get()
	setReady(ps, corev1.ConditionTrue, "Synced")
	if err := env.Client.Status().Update(ctx, ps); err != nil {
		t.Fatal(err)
	}
	stale := get() // shows Ready=True
	failed := stale.DeepCopy()
	setReady(failed, corev1.ConditionFalse, "SourceKeyNotFound")
	if err := env.Client.Status().Update(ctx, failed); err != nil { // another reconcile's write
		t.Fatal(err)
	}

	r := &pushsecret.Reconciler{Client: env.Client}
	next := stale.DeepCopy()
	setReady(next, corev1.ConditionTrue, "Synced")
	if err := pushsecret.PatchStatus(ctx, r, stale, next); !apierrors.IsConflict(err) {
		t.Fatalf("patch from a stale copy = %v; want a conflict", err)
	}
	if c := get().Status.Conditions; len(c) != 1 || c[0].Status != corev1.ConditionFalse {
		t.Fatalf("conditions after the refused patch = %+v; want the newer Ready=False kept", c)
	}

	current := get()
	next = current.DeepCopy()
	setReady(next, corev1.ConditionTrue, "Synced")
	if err := pushsecret.PatchStatus(ctx, r, current, next); err != nil {
		t.Fatalf("patch from the current copy: %v", err)
	}
	if c := get().Status.Conditions; len(c) != 1 || c[0].Status != corev1.ConditionTrue {
		t.Fatalf("conditions after the patch = %+v; want Ready=True", c)
	}
}
