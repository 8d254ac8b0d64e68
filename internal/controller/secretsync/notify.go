package secretsync

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ssv1 "github.com/keyferry/keyferry/apis/secretsync/v1alpha1"
	"github.com/keyferry/keyferry/internal/engine"
)

// Kind is the kind of the objects this controller reconciles, as it appears
// in their engine.ObjectRef (the fetch-layer subscriber and the writer
// recorded on their Secrets).
const Kind = "SecretSync"

// Notify queues a reconcile of the SecretSync ref names because a value it
// reads changed in the vault; that reconcile syncs at once (with the value the
// fetch layer just saw) instead of waiting for the rotation poll. The fetch layer reports such changes to the
// operator, which calls Notify of the controller for ref.Kind; a ref of
// another kind is ignored. Notify waits while the queue is full, until ctx is
// done. It may be called before SetupWithManager: notifications wait until
// the controller runs.
func (r *Reconciler) Notify(ctx context.Context, ref engine.ObjectRef) {
	if ref.Kind != Kind {
		return
	}
	r.notifications.Send(ctx, &ssv1.SecretSync{ObjectMeta: metav1.ObjectMeta{Namespace: ref.Namespace, Name: ref.Name}})
}
