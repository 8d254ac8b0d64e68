package aws

import "github.com/keyferry/keyferry/internal/provider"

// OperatorIdentities implements provider.IdentityUser: auth without
// secretRef or jwt uses the default credential chain, which finds the
// operator pod's own AWS credentials.
func (p *Provider) OperatorIdentities(store provider.Store) []provider.IdentityUse {
	if store.Spec == nil || store.Spec.Provider == nil || store.Spec.Provider.AWS == nil {
		return nil
	}
	a := store.Spec.Provider.AWS.Auth
	if a.SecretRef != nil || a.JWTAuth != nil {
		return nil
	}
	return []provider.IdentityUse{{
		Identity: provider.IdentityAWS,
		Field:    "spec.provider.aws.auth",
		Why:      "names neither secretRef nor jwt, so keyferry would use its own pod's AWS credentials (the default credential chain)",
	}}
}
