package kube

import (
	"context"
	"fmt"

	authorizationv1 "k8s.io/api/authorization/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// MayListWatch asks the API server (SelfSubjectAccessReview) whether the
// caller may list and watch group/resource in namespace ("" for every
// namespace). Controllers of optional kinds check it before they watch, so
// that RBAC written before keyferry served a kind (a hand-written Role for
// --namespace) skips that kind instead of stalling the operator on a watch
// that cannot start.
func MayListWatch(ctx context.Context, c client.Client, group, resource, namespace string) (bool, error) {
	for _, verb := range []string{"list", "watch"} {
		review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: namespace, Verb: verb, Group: group, Resource: resource},
		}}
		if err := c.Create(ctx, review); err != nil {
			return false, fmt.Errorf("asking whether the operator may %s %s: %w", verb, resource, err)
		}
		if !review.Status.Allowed {
			return false, nil
		}
	}
	return true, nil
}
