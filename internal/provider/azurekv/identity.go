package azurekv

import (
	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

// OperatorIdentities implements provider.IdentityUser: ManagedIdentity (for a
// SecretProviderClass, useVMManagedIdentity), and
// WorkloadIdentity without serviceAccountRef, authenticate as the operator's
// pod; WorkloadIdentity with customCloudConfig posts a federated
// ServiceAccount token to an authority host the store chose.
func (p *Provider) OperatorIdentities(store provider.Store) []provider.IdentityUse {
	if store.Class != nil {
		return classOperatorIdentities(store)
	}
	if store.Spec == nil || store.Spec.Provider == nil || store.Spec.Provider.AzureKV == nil {
		return nil
	}
	spec := store.Spec.Provider.AzureKV
	var uses []provider.IdentityUse
	switch authType(spec) {
	case esv1.AzureManagedIdentity:
		uses = append(uses, provider.IdentityUse{
			Identity: provider.IdentityAzure,
			Field:    "spec.provider.azurekv.authType",
			Why:      "is ManagedIdentity, so keyferry would authenticate as its own pod's managed identity",
		})
	case esv1.AzureWorkloadIdentity:
		if spec.ServiceAccountRef == nil {
			uses = append(uses, provider.IdentityUse{
				Identity: provider.IdentityAzure,
				Field:    "spec.provider.azurekv.authType",
				Why:      "is WorkloadIdentity without serviceAccountRef, so keyferry would authenticate as its own pod's workload identity",
			})
		}
		if spec.CustomCloudConfig != nil {
			uses = append(uses, provider.IdentityUse{
				Identity: provider.IdentityAzureAuthority,
				Field:    "spec.provider.azurekv.customCloudConfig",
				Why:      "sets the authority host, so keyferry would post a federated ServiceAccount token to a host the store chose",
			})
		}
	}
	return uses
}
