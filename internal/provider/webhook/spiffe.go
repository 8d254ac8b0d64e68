package webhook

import "github.com/keyferry/keyferry/internal/provider"

// OperatorIdentities implements provider.IdentityUser: spiffe.files and
// spiffe.workloadAPISocket authenticate with the operator pod's own SPIFFE
// SVID, so a namespaced store using them would act as keyferry.
func (p *Provider) OperatorIdentities(store provider.Store) []provider.IdentityUse {
	if store.Spec == nil || store.Spec.Provider == nil || store.Spec.Provider.Webhook == nil {
		return nil
	}
	s := store.Spec.Provider.Webhook.SPIFFE
	if s == nil {
		return nil
	}
	field := "spec.provider.webhook.spiffe.workloadAPISocket"
	if s.Files != nil {
		field = "spec.provider.webhook.spiffe.files"
	}
	return []provider.IdentityUse{{
		Identity: provider.IdentitySPIFFE,
		Field:    field,
		Why:      "authenticates with the SPIFFE SVID of keyferry's own pod",
	}}
}
