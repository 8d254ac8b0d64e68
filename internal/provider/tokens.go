package provider

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// TokenExpiry is the lifetime of every ServiceAccount token keyferry
// requests: the shortest the TokenRequest API grants (600 s). A token a
// store sends to its server is used once, to log in or exchange it, so a
// longer life only helps whoever might capture it.
const TokenExpiry = 10 * time.Minute

// LocalTokenUser is implemented by providers whose stores can send the
// ServiceAccount tokens keyferry mints to this cluster's own API server (the
// kubernetes provider reading its own cluster). TokensStayLocal must be pure
// and return true only when every token the store's client mints goes to
// this cluster's API server.
type LocalTokenUser interface {
	TokensStayLocal(store Store) bool
}

// APIAudiencer is implemented by token requesters that know the audiences
// this cluster's API server accepts: a token carrying one of them
// authenticates to the API server as its ServiceAccount. namespace and name
// name a ServiceAccount the requester may mint tokens for, should it need to
// learn the audiences.
type APIAudiencer interface {
	APIAudiences(ctx context.Context, namespace, name string) ([]string, error)
}

func tokensStayLocal(p Provider, store Store) bool {
	u, ok := p.(LocalTokenUser)
	return ok && u.TokensStayLocal(store)
}

// restrictedTokens applies the token rules to the tokens one store's client
// requests (Admit installs it):
//
//   - every token lives TokenExpiry (10 minutes), whatever the store asks;
//   - a namespaced store whose tokens go to a server outside this cluster
//     (Vault, an STS, an Azure authority, another cluster) must name an
//     audience, and none of its audiences may be one this cluster's API
//     server accepts: such a token would let that server act as the
//     ServiceAccount in this cluster. --allow-ambient-identity=api-token
//     (or NAMESPACE/api-token) lifts the rule.
type restrictedTokens struct {
	inner  TokenRequester
	store  Store
	policy Policy
	// local says the store's tokens go to this cluster's API server.
	local bool
}

func (t *restrictedTokens) ServiceAccountToken(ctx context.Context, namespace, name string, audiences []string, _ time.Duration) (string, time.Time, error) {
	if err := t.audiencesAllowed(ctx, namespace, name, audiences); err != nil {
		return "", time.Time{}, err
	}
	return t.inner.ServiceAccountToken(ctx, namespace, name, audiences, TokenExpiry)
}

// audiencesAllowed refuses, for a namespaced store whose tokens leave the
// cluster, a token the API server would accept.
func (t *restrictedTokens) audiencesAllowed(ctx context.Context, namespace, name string, audiences []string) error {
	if t.store.IsCluster() || t.local || t.policy.Grants(IdentityAPIToken, t.store.Namespace) {
		return nil
	}
	deny := func(what string) error {
		return fmt.Errorf("%s %s/%s: a token for service account %s/%s %s, which this cluster's API server accepts, and the store would send it outside the cluster; %w: set the serviceAccountRef's audiences to the audience the receiving server expects (such as vault, sts.amazonaws.com or api://AzureADTokenExchange), use a ClusterSecretStore, or ask the platform team to run keyferry with --allow-ambient-identity=%s/%s",
			t.store.Kind, t.store.Namespace, t.store.Name, namespace, name, what, ErrOperatorIdentity, t.store.Namespace, IdentityAPIToken)
	}
	if len(audiences) == 0 {
		return deny("with no audience would carry the API server's own audience")
	}
	a, ok := t.inner.(APIAudiencer)
	if !ok {
		return nil
	}
	api, err := a.APIAudiences(ctx, namespace, name)
	if err != nil {
		return fmt.Errorf("learning the API server's token audiences: %w", err)
	}
	for _, aud := range audiences {
		if slices.Contains(api, aud) {
			return deny(fmt.Sprintf("with audience %q", aud))
		}
	}
	return nil
}
