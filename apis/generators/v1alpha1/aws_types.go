package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
)

// ECRAuthorizationTokenSpec controls the ECRAuthorizationToken generator.
type ECRAuthorizationTokenSpec struct {
	// Region of the registry.
	Region string `json:"region"`
	// Auth are the AWS credentials, as in the aws provider; empty means
	// the operator's own identity.
	// +optional
	Auth esv1.AWSAuth `json:"auth,omitempty"`
	// Role to assume before asking for the token.
	// +optional
	Role string `json:"role,omitempty"`
	// Scope is "private" (default) or "public" (ECR Public).
	// +optional
	Scope string `json:"scope,omitempty"`
}

// ECRAuthorizationToken generates an AWS ECR authorization token.
//
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories={external-secrets,external-secrets-generators}
type ECRAuthorizationToken struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ECRAuthorizationTokenSpec `json:"spec,omitempty"`
	Status GeneratorStatus           `json:"status,omitempty"`
}

// ECRAuthorizationTokenList is a list of ECRAuthorizationTokens.
//
// +kubebuilder:object:root=true
type ECRAuthorizationTokenList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ECRAuthorizationToken `json:"items"`
}

// STSSessionTokenRequestParameters are the optional parameters of STS
// GetSessionToken.
type STSSessionTokenRequestParameters struct {
	// SessionDuration in seconds.
	// +optional
	SessionDuration *int32 `json:"sessionDuration,omitempty"`
	// SerialNumber of the MFA device.
	// +optional
	SerialNumber *string `json:"serialNumber,omitempty"`
	// TokenCode from the MFA device.
	// +optional
	TokenCode *string `json:"tokenCode,omitempty"`
}

// STSSessionTokenSpec controls the STSSessionToken generator.
type STSSessionTokenSpec struct {
	// Region of the STS endpoint.
	Region string `json:"region"`
	// Auth are the AWS credentials, as in the aws provider.
	// +optional
	Auth esv1.AWSAuth `json:"auth,omitempty"`
	// Role to assume before asking for the session token.
	// +optional
	Role string `json:"role,omitempty"`
	// RequestParameters of GetSessionToken.
	// +optional
	RequestParameters *STSSessionTokenRequestParameters `json:"requestParameters,omitempty"`
}

// STSSessionToken generates AWS STS session credentials.
//
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories={external-secrets,external-secrets-generators}
type STSSessionToken struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   STSSessionTokenSpec `json:"spec,omitempty"`
	Status GeneratorStatus     `json:"status,omitempty"`
}

// STSSessionTokenList is a list of STSSessionTokens.
//
// +kubebuilder:object:root=true
type STSSessionTokenList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []STSSessionToken `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ECRAuthorizationToken{}, &ECRAuthorizationTokenList{}, &STSSessionToken{}, &STSSessionTokenList{})
}
