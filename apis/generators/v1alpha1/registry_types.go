package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
)

// ACRServicePrincipalSecretRef holds a service principal's credentials in
// Secrets.
type ACRServicePrincipalSecretRef struct {
	// ClientID of the service principal.
	// +optional
	ClientID esv1.SecretKeySelector `json:"clientId,omitempty"`
	// ClientSecret of the service principal.
	// +optional
	ClientSecret esv1.SecretKeySelector `json:"clientSecret,omitempty"`
}

// ACRServicePrincipalAuth authenticates with a service principal.
type ACRServicePrincipalAuth struct {
	SecretRef ACRServicePrincipalSecretRef `json:"secretRef"`
}

// ACRManagedIdentityAuth authenticates with the pod's managed identity.
type ACRManagedIdentityAuth struct {
	// IdentityID of a user-assigned identity; empty uses the
	// system-assigned one.
	// +optional
	IdentityID string `json:"identityId,omitempty"`
}

// ACRWorkloadIdentityAuth authenticates with a ServiceAccount token
// (workload identity federation).
type ACRWorkloadIdentityAuth struct {
	// ServiceAccountRef names the ServiceAccount; empty uses the
	// operator's.
	// +optional
	ServiceAccountRef *esv1.ServiceAccountSelector `json:"serviceAccountRef,omitempty"`
}

// ACRAuth is how the ACRAccessToken generator authenticates to Entra ID.
type ACRAuth struct {
	// +optional
	ServicePrincipal *ACRServicePrincipalAuth `json:"servicePrincipal,omitempty"`
	// +optional
	ManagedIdentity *ACRManagedIdentityAuth `json:"managedIdentity,omitempty"`
	// +optional
	WorkloadIdentity *ACRWorkloadIdentityAuth `json:"workloadIdentity,omitempty"`
}

// ACRAccessTokenSpec controls the ACRAccessToken generator.
type ACRAccessTokenSpec struct {
	// Auth to Entra ID.
	Auth ACRAuth `json:"auth"`
	// TenantID of the Entra ID tenant.
	// +optional
	TenantID string `json:"tenantId,omitempty"`
	// Registry is the registry's host name, e.g. example.azurecr.io.
	Registry string `json:"registry"`
	// Scope of an access token; empty asks for a refresh token.
	// +optional
	Scope string `json:"scope,omitempty"`
	// EnvironmentType is the Azure cloud.
	// +kubebuilder:default=PublicCloud
	// +optional
	EnvironmentType esv1.AzureEnvironmentType `json:"environmentType,omitempty"`
}

// ACRAccessToken generates an Azure Container Registry token.
//
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories={external-secrets,external-secrets-generators}
type ACRAccessToken struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ACRAccessTokenSpec `json:"spec,omitempty"`
	Status GeneratorStatus    `json:"status,omitempty"`
}

// ACRAccessTokenList is a list of ACRAccessTokens.
//
// +kubebuilder:object:root=true
type ACRAccessTokenList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ACRAccessToken `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ACRAccessToken{}, &ACRAccessTokenList{})
}
