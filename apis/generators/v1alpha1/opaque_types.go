package v1alpha1

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The generator kinds below keep ESO's spec as an opaque object: every field
// a manifest sets is stored and returned as written, and nothing is
// validated. Give a kind its full schema (as Password's) when keyferry
// implements it.

// BeyondtrustWorkloadCredentialsDynamicSecret generates a BeyondTrust Workload Credentials dynamic secret (ESO's spec, kept opaque).
//
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories={external-secrets,external-secrets-generators}
type BeyondtrustWorkloadCredentialsDynamicSecret struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +kubebuilder:validation:Type=object
	// +kubebuilder:pruning:PreserveUnknownFields
	// +optional
	Spec *apiextensionsv1.JSON `json:"spec,omitempty"`
	// +optional
	Status GeneratorStatus `json:"status,omitempty"`
}

// BeyondtrustWorkloadCredentialsDynamicSecretList is a list of BeyondtrustWorkloadCredentialsDynamicSecrets.
//
// +kubebuilder:object:root=true
type BeyondtrustWorkloadCredentialsDynamicSecretList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BeyondtrustWorkloadCredentialsDynamicSecret `json:"items"`
}

// CloudsmithAccessToken generates a Cloudsmith access token (ESO's spec, kept opaque).
//
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories={external-secrets,external-secrets-generators}
type CloudsmithAccessToken struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +kubebuilder:validation:Type=object
	// +kubebuilder:pruning:PreserveUnknownFields
	// +optional
	Spec *apiextensionsv1.JSON `json:"spec,omitempty"`
	// +optional
	Status GeneratorStatus `json:"status,omitempty"`
}

// CloudsmithAccessTokenList is a list of CloudsmithAccessTokens.
//
// +kubebuilder:object:root=true
type CloudsmithAccessTokenList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []CloudsmithAccessToken `json:"items"`
}

// GithubAccessToken generates a GitHub App installation token (ESO's spec, kept opaque).
//
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories={external-secrets,external-secrets-generators}
type GithubAccessToken struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +kubebuilder:validation:Type=object
	// +kubebuilder:pruning:PreserveUnknownFields
	// +optional
	Spec *apiextensionsv1.JSON `json:"spec,omitempty"`
	// +optional
	Status GeneratorStatus `json:"status,omitempty"`
}

// GithubAccessTokenList is a list of GithubAccessTokens.
//
// +kubebuilder:object:root=true
type GithubAccessTokenList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []GithubAccessToken `json:"items"`
}

// GitlabDeployToken generates a GitLab deploy token (ESO's spec, kept opaque).
//
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories={external-secrets,external-secrets-generators}
type GitlabDeployToken struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +kubebuilder:validation:Type=object
	// +kubebuilder:pruning:PreserveUnknownFields
	// +optional
	Spec *apiextensionsv1.JSON `json:"spec,omitempty"`
	// +optional
	Status GeneratorStatus `json:"status,omitempty"`
}

// GitlabDeployTokenList is a list of GitlabDeployTokens.
//
// +kubebuilder:object:root=true
type GitlabDeployTokenList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []GitlabDeployToken `json:"items"`
}

// Grafana generates a Grafana service account token (ESO's spec, kept opaque).
//
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories={external-secrets,external-secrets-generators}
type Grafana struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +kubebuilder:validation:Type=object
	// +kubebuilder:pruning:PreserveUnknownFields
	// +optional
	Spec *apiextensionsv1.JSON `json:"spec,omitempty"`
	// +optional
	Status GeneratorStatus `json:"status,omitempty"`
}

// GrafanaList is a list of Grafanas.
//
// +kubebuilder:object:root=true
type GrafanaList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Grafana `json:"items"`
}

// QuayAccessToken generates a Quay robot account token (ESO's spec, kept opaque).
//
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories={external-secrets,external-secrets-generators}
type QuayAccessToken struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +kubebuilder:validation:Type=object
	// +kubebuilder:pruning:PreserveUnknownFields
	// +optional
	Spec *apiextensionsv1.JSON `json:"spec,omitempty"`
	// +optional
	Status GeneratorStatus `json:"status,omitempty"`
}

// QuayAccessTokenList is a list of QuayAccessTokens.
//
// +kubebuilder:object:root=true
type QuayAccessTokenList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []QuayAccessToken `json:"items"`
}

// VaultDynamicSecret generates a Vault dynamic secret (ESO's spec, kept opaque).
//
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories={external-secrets,external-secrets-generators}
type VaultDynamicSecret struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +kubebuilder:validation:Type=object
	// +kubebuilder:pruning:PreserveUnknownFields
	// +optional
	Spec *apiextensionsv1.JSON `json:"spec,omitempty"`
	// +optional
	Status GeneratorStatus `json:"status,omitempty"`
}

// VaultDynamicSecretList is a list of VaultDynamicSecrets.
//
// +kubebuilder:object:root=true
type VaultDynamicSecretList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []VaultDynamicSecret `json:"items"`
}

// GCRAccessToken generates a Google Container Registry access token (ESO's spec, kept opaque).
//
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories={external-secrets,external-secrets-generators}
type GCRAccessToken struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +kubebuilder:validation:Type=object
	// +kubebuilder:pruning:PreserveUnknownFields
	// +optional
	Spec *apiextensionsv1.JSON `json:"spec,omitempty"`
	// +optional
	Status GeneratorStatus `json:"status,omitempty"`
}

// GCRAccessTokenList is a list of GCRAccessTokens.
//
// +kubebuilder:object:root=true
type GCRAccessTokenList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []GCRAccessToken `json:"items"`
}

func init() {
	SchemeBuilder.Register(
		&GCRAccessToken{}, &GCRAccessTokenList{},
		&BeyondtrustWorkloadCredentialsDynamicSecret{}, &BeyondtrustWorkloadCredentialsDynamicSecretList{},
		&CloudsmithAccessToken{}, &CloudsmithAccessTokenList{},
		&GithubAccessToken{}, &GithubAccessTokenList{},
		&GitlabDeployToken{}, &GitlabDeployTokenList{},
		&Grafana{}, &GrafanaList{},
		&QuayAccessToken{}, &QuayAccessTokenList{},
		&VaultDynamicSecret{}, &VaultDynamicSecretList{},
	)
}
