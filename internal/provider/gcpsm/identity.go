package gcpsm

import "github.com/keyferry/keyferry/internal/provider"

// OperatorIdentities implements provider.IdentityUser: auth without
// secretRef or workloadIdentity uses application default credentials, which
// find the operator pod's own GCP identity.
func (p *Provider) OperatorIdentities(store provider.Store) []provider.IdentityUse {
	if store.Class != nil {
		return classOperatorIdentities(store)
	}
	if store.Spec == nil || store.Spec.Provider == nil || store.Spec.Provider.GCPSM == nil {
		return nil
	}
	a := store.Spec.Provider.GCPSM.Auth
	// workloadIdentityFederation is refused by ValidateSpec (not
	// supported), never replaced by the operator's credentials.
	if a.SecretRef != nil || a.WorkloadIdentity != nil || a.WorkloadIdentityFederation != nil {
		return nil
	}
	return []provider.IdentityUse{{
		Identity: provider.IdentityGCP,
		Field:    "spec.provider.gcpsm.auth",
		Why:      "names neither secretRef nor workloadIdentity, so keyferry would use its own pod's GCP credentials (application default credentials)",
	}}
}
