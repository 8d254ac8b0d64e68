package engine

import (
	"strings"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	genv1alpha1 "github.com/keyferry/keyferry/apis/generators/v1alpha1"
	"github.com/keyferry/keyferry/internal/provider"
)

// acrGeneratorStore maps ESO's ACRAccessToken generator to an azurekv
// store with the same credentials, so the azurekv provider's identity code
// and provider.Admit's rules apply unchanged: auth.servicePrincipal is
// authType ServicePrincipal with authSecretRef clientId and clientSecret,
// auth.managedIdentity authType ManagedIdentity with identityId (the
// operator's own identity), auth.workloadIdentity authType
// WorkloadIdentity with serviceAccountRef (without one: the operator's own
// identity); tenantId and environmentType are kept. As in ESO, when more
// than one auth is set the first of servicePrincipal, managedIdentity,
// workloadIdentity is used and the others are ignored (ESO's example sets
// all three). The store has no vaultUrl: the provider's Generate does not
// use one.
func acrGeneratorStore(g *genv1alpha1.ACRAccessTokenSpec) (*GeneratorStore, error) {
	g = g.DeepCopy()
	if strings.TrimSpace(g.Registry) == "" {
		return nil, &GeneratorSpecError{Field: "spec.registry", Message: "is required"}
	}
	switch g.EnvironmentType {
	case "", esv1.AzureEnvironmentPublicCloud, esv1.AzureEnvironmentUSGovernmentCloud, esv1.AzureEnvironmentChinaCloud:
	case esv1.AzureEnvironmentGermanCloud:
		return nil, &GeneratorSpecError{Field: "spec.environmentType", Message: "GermanCloud: Microsoft Cloud Deutschland was closed in 2021; use PublicCloud"}
	default:
		return nil, &GeneratorSpecError{Field: "spec.environmentType", Message: "must be PublicCloud, USGovernmentCloud or ChinaCloud"}
	}
	kv := &esv1.AzureKVProvider{EnvironmentType: g.EnvironmentType}
	if t := strings.TrimSpace(g.TenantID); t != "" {
		kv.TenantID = &t
	}
	switch a := g.Auth; {
	case a.ServicePrincipal != nil:
		ref := a.ServicePrincipal.SecretRef
		kv.AuthType = ptr(esv1.AzureServicePrincipal)
		kv.AuthSecretRef = &esv1.AzureKVAuth{}
		if ref.ClientID.Name == "" || ref.ClientID.Key == "" {
			return nil, &GeneratorSpecError{Field: "spec.auth.servicePrincipal.secretRef.clientId", Message: "needs name and key"}
		}
		if ref.ClientSecret.Name == "" || ref.ClientSecret.Key == "" {
			return nil, &GeneratorSpecError{Field: "spec.auth.servicePrincipal.secretRef.clientSecret", Message: "needs name and key"}
		}
		if kv.TenantID == nil {
			return nil, &GeneratorSpecError{Field: "spec.tenantId", Message: "is required with auth.servicePrincipal"}
		}
		kv.AuthSecretRef.ClientID = &ref.ClientID
		kv.AuthSecretRef.ClientSecret = &ref.ClientSecret
	case a.ManagedIdentity != nil:
		kv.AuthType = ptr(esv1.AzureManagedIdentity)
		if id := strings.TrimSpace(a.ManagedIdentity.IdentityID); id != "" {
			kv.IdentityID = &id
		}
	case a.WorkloadIdentity != nil:
		kv.AuthType = ptr(esv1.AzureWorkloadIdentity)
		kv.ServiceAccountRef = a.WorkloadIdentity.ServiceAccountRef
	default:
		return nil, &GeneratorSpecError{Field: "spec.auth", Message: "names none of servicePrincipal, managedIdentity or workloadIdentity"}
	}
	return &GeneratorStore{
		Spec:    &esv1.SecretStoreSpec{Provider: &esv1.SecretStoreProvider{AzureKV: kv}},
		Request: provider.GenerateRequest{Kind: GeneratorACRAccessToken, Spec: g},
		Prefix:  "spec.provider.azurekv.",
		Words:   acrWords(),
	}, nil
}

// acrWords name the azurekv store's fields as ACRAccessToken does, in
// messages of the provider and of provider.Admit (old, new pairs).
func acrWords() []string {
	return []string{
		"spec.provider.azurekv.authType is ManagedIdentity", "spec.auth.managedIdentity is set",
		"spec.provider.azurekv.authType is WorkloadIdentity without serviceAccountRef", "spec.auth.workloadIdentity has no serviceAccountRef",
		"spec.provider.azurekv.authSecretRef.clientId", "spec.auth.servicePrincipal.secretRef.clientId",
		"spec.provider.azurekv.authSecretRef.clientSecret", "spec.auth.servicePrincipal.secretRef.clientSecret",
		"spec.provider.azurekv.serviceAccountRef", "spec.auth.workloadIdentity.serviceAccountRef",
		"authSecretRef.clientId", "spec.auth.servicePrincipal.secretRef.clientId",
		"authSecretRef.clientSecret", "spec.auth.servicePrincipal.secretRef.clientSecret",
		"or set serviceAccountRef", "or set spec.auth.workloadIdentity.serviceAccountRef",
	}
}

func ptrTo[T any](v T) *T { return &v }
