package engine

import (
	"context"

	"github.com/keyferry/keyferry/internal/engine/fetch"
	"github.com/keyferry/keyferry/internal/provider"
)

// PushRequest resolves a store reference of a PushSecret (owner) into the
// fetch request its pushes go through: the same resolvers and rules as a
// read (a SecretStore of the owner's namespace; a ClusterSecretStore only
// when cluster stores are enabled and its conditions allow the owner's
// namespace; only stores of this controller class; the provider's
// configuration checked), and then the same client, credential policy and
// rate limit in the fetch layer. A SecretProviderClass cannot be pushed to.
func (e *Engine) PushRequest(ctx context.Context, owner Owner, ref StoreRef) (fetch.Request, error) {
	if ref.Kind == provider.ClassKind {
		return fetch.Request{}, fail(ReasonInvalidSpec, "a %s cannot be pushed to", provider.ClassKind)
	}
	return e.request(ctx, Plan{Owner: owner}, ref)
}

// Classify returns err as an *Error with the reason that fits it: its own
// when it is one, else the reason of the provider failure it wraps.
func Classify(err error) *Error { return classify(err) }
