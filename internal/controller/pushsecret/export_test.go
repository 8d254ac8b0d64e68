package pushsecret

import (
	"context"

	esv1alpha1 "github.com/keyferry/keyferry/apis/externalsecrets/v1alpha1"
)

// PatchStatus is patchStatus, for the external tests.
func PatchStatus(ctx context.Context, r *Reconciler, ps, next *esv1alpha1.PushSecret) error {
	return r.patchStatus(ctx, ps, next)
}
