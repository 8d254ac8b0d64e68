package pushsecret

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	esv1alpha1 "github.com/keyferry/keyferry/apis/externalsecrets/v1alpha1"
	"github.com/keyferry/keyferry/internal/engine"
)

// Notify queues a reconcile of the PushSecret ref names: the fetch layer
// calls it (through the operator) when a store a failed push waits for
// answers again, so the push is retried at once.
func (r *Reconciler) Notify(ctx context.Context, ref engine.ObjectRef) {
	if ref.Kind != Kind {
		return
	}
	r.notifications.Send(ctx, &esv1alpha1.PushSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ref.Namespace, Name: ref.Name}})
}
