package v1alpha1

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// GeneratorKind is the kind of generator a ClusterGenerator holds.
// +kubebuilder:validation:Enum=ACRAccessToken;BeyondtrustWorkloadCredentialsDynamicSecret;CloudsmithAccessToken;ECRAuthorizationToken;Fake;GCRAccessToken;GithubAccessToken;GitlabDeployToken;QuayAccessToken;Password;SSHKey;STSSessionToken;UUID;VaultDynamicSecret;Webhook;Grafana;MFA
type GeneratorKind string

// GeneratorSpec is the spec of the one generator a ClusterGenerator holds:
// exactly one field is set. Kinds keyferry keeps opaque are objects whose
// fields are all preserved.
// +kubebuilder:validation:MinProperties=1
// +kubebuilder:validation:MaxProperties=1
type GeneratorSpec struct {
	// +optional
	ACRAccessTokenSpec *ACRAccessTokenSpec `json:"acrAccessTokenSpec,omitempty"`
	// +kubebuilder:validation:Type=object
	// +kubebuilder:pruning:PreserveUnknownFields
	// +optional
	BeyondtrustWorkloadCredentialsDynamicSecretSpec *apiextensionsv1.JSON `json:"beyondtrustWorkloadCredentialsDynamicSecretSpec,omitempty"`
	// +kubebuilder:validation:Type=object
	// +kubebuilder:pruning:PreserveUnknownFields
	// +optional
	CloudsmithAccessTokenSpec *apiextensionsv1.JSON `json:"cloudsmithAccessTokenSpec,omitempty"`
	// +optional
	ECRAuthorizationTokenSpec *ECRAuthorizationTokenSpec `json:"ecrAuthorizationTokenSpec,omitempty"`
	// +optional
	FakeSpec *FakeSpec `json:"fakeSpec,omitempty"`
	// +kubebuilder:validation:Type=object
	// +kubebuilder:pruning:PreserveUnknownFields
	// +optional
	GCRAccessTokenSpec *apiextensionsv1.JSON `json:"gcrAccessTokenSpec,omitempty"`
	// +kubebuilder:validation:Type=object
	// +kubebuilder:pruning:PreserveUnknownFields
	// +optional
	GithubAccessTokenSpec *apiextensionsv1.JSON `json:"githubAccessTokenSpec,omitempty"`
	// +kubebuilder:validation:Type=object
	// +kubebuilder:pruning:PreserveUnknownFields
	// +optional
	GitlabDeployTokenSpec *apiextensionsv1.JSON `json:"gitlabDeployTokenSpec,omitempty"`
	// +kubebuilder:validation:Type=object
	// +kubebuilder:pruning:PreserveUnknownFields
	// +optional
	GrafanaSpec *apiextensionsv1.JSON `json:"grafanaSpec,omitempty"`
	// +optional
	MFASpec *MFASpec `json:"mfaSpec,omitempty"`
	// +optional
	PasswordSpec *PasswordSpec `json:"passwordSpec,omitempty"`
	// +kubebuilder:validation:Type=object
	// +kubebuilder:pruning:PreserveUnknownFields
	// +optional
	QuayAccessTokenSpec *apiextensionsv1.JSON `json:"quayAccessTokenSpec,omitempty"`
	// +optional
	SSHKeySpec *SSHKeySpec `json:"sshKeySpec,omitempty"`
	// +optional
	STSSessionTokenSpec *STSSessionTokenSpec `json:"stsSessionTokenSpec,omitempty"`
	// +optional
	UUIDSpec *UUIDSpec `json:"uuidSpec,omitempty"`
	// +kubebuilder:validation:Type=object
	// +kubebuilder:pruning:PreserveUnknownFields
	// +optional
	VaultDynamicSecretSpec *apiextensionsv1.JSON `json:"vaultDynamicSecretSpec,omitempty"`
	// +optional
	WebhookSpec *WebhookSpec `json:"webhookSpec,omitempty"`
}

// ClusterGeneratorSpec is the desired state of a ClusterGenerator.
type ClusterGeneratorSpec struct {
	// Kind of the generator.
	Kind GeneratorKind `json:"kind"`
	// Generator is the generator's spec.
	Generator GeneratorSpec `json:"generator"`
}

// ClusterGenerator is a generator that objects of every namespace may use.
//
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories={external-secrets,external-secrets-generators}
type ClusterGenerator struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ClusterGeneratorSpec `json:"spec,omitempty"`
	Status GeneratorStatus      `json:"status,omitempty"`
}

// ClusterGeneratorList is a list of ClusterGenerators.
//
// +kubebuilder:object:root=true
type ClusterGeneratorList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterGenerator `json:"items"`
}

// GeneratorStateSpec records what a generator made, so that it can be
// cleaned up.
type GeneratorStateSpec struct {
	// GarbageCollectionDeadline is when the state may be cleaned up.
	// +optional
	GarbageCollectionDeadline *metav1.Time `json:"garbageCollectionDeadline,omitempty"`
	// Resource is the generator the state belongs to.
	// +kubebuilder:pruning:PreserveUnknownFields
	Resource *apiextensionsv1.JSON `json:"resource"`
	// State is the generator's state.
	// +kubebuilder:pruning:PreserveUnknownFields
	State *apiextensionsv1.JSON `json:"state"`
}

// GeneratorStateStatus is the observed state of a GeneratorState.
type GeneratorStateStatus struct {
	// +optional
	Conditions []GeneratorStateCondition `json:"conditions,omitempty"`
}

// GeneratorState records what a generator made. An operator writes it;
// users do not.
//
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:resource:scope=Namespaced,categories={external-secrets,external-secrets-generators},shortName=gs
// +kubebuilder:printcolumn:name="GC Deadline",type="string",JSONPath=".spec.garbageCollectionDeadline"
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp"
type GeneratorState struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   GeneratorStateSpec   `json:"spec,omitempty"`
	Status GeneratorStateStatus `json:"status,omitempty"`
}

// GeneratorStateList is a list of GeneratorStates.
//
// +kubebuilder:object:root=true
type GeneratorStateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []GeneratorState `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ClusterGenerator{}, &ClusterGeneratorList{}, &GeneratorState{}, &GeneratorStateList{})
}
