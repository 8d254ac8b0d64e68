package aws

import "github.com/keyferry/keyferry/internal/provider"

// ScopedToNamespace says whether a client depends on the namespace it is
// built for beyond its credential references: with sessionTagsPolicy Simple
// or Custom, the assumed role's session carries the requester's namespace as
// a tag (for a ClusterSecretStore, the namespace of the object using it), so
// an IAM policy conditioned on that tag must never see a session tagged for
// another tenant.
func (p *Provider) ScopedToNamespace(store provider.Store) bool {
	if store.Spec == nil || store.Spec.Provider == nil || store.Spec.Provider.AWS == nil {
		return true
	}
	switch store.Spec.Provider.AWS.SessionTagsPolicy {
	case sessionTagsSimple, sessionTagsCustom:
		return true
	}
	return false
}
