package externalsecret

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine"
)

// Kind is the kind of the objects this controller reconciles, as it appears
// in their engine.ObjectRef (the fetch-layer subscriber and the writer
// recorded on their Secrets).
const Kind = "ExternalSecret"

// Notify queues a reconcile of the ExternalSecret ref names because a value
// it reads changed in a store. The fetch layer reports such changes to the
// operator, which calls Notify of the controller for ref.Kind; a ref of
// another kind is ignored. Notify waits while the queue is full, until ctx is
// done. It may be called before SetupWithManager: notifications wait until
// the controller runs.
func (r *Reconciler) Notify(ctx context.Context, ref engine.ObjectRef) {
	if ref.Kind != Kind {
		return
	}
	r.notifications.Send(ctx, &esv1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ref.Namespace, Name: ref.Name}})
}
