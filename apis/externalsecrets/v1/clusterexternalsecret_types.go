package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ExternalSecretMetadata is the metadata of the ExternalSecrets a
// ClusterExternalSecret creates.
type ExternalSecretMetadata struct {
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
}

// ClusterExternalSecretSpec is the desired state of a ClusterExternalSecret.
type ClusterExternalSecretSpec struct {
	// ExternalSecretSpec is the spec of every ExternalSecret created.
	ExternalSecretSpec ExternalSecretSpec `json:"externalSecretSpec"`
	// ExternalSecretName names the ExternalSecrets; defaults to the
	// ClusterExternalSecret's name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern:=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	ExternalSecretName string `json:"externalSecretName,omitempty"`
	// +optional
	ExternalSecretMetadata ExternalSecretMetadata `json:"externalSecretMetadata,omitempty"`
	// NamespaceSelector selects namespaces (deprecated in ESO in favour of
	// NamespaceSelectors).
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
	// NamespaceSelectors select namespaces; a namespace matching any one is
	// selected.
	// +optional
	NamespaceSelectors []*metav1.LabelSelector `json:"namespaceSelectors,omitempty"`
	// Namespaces lists namespaces by name.
	// +optional
	Namespaces []string `json:"namespaces,omitempty"`
	// RefreshTime is how often the namespace selection is re-evaluated.
	// keyferry watches namespaces, so this is only a fallback.
	// +optional
	RefreshInterval *Duration `json:"refreshTime,omitempty"`
}

// ClusterExternalSecretNamespaceFailure says why one namespace failed.
type ClusterExternalSecretNamespaceFailure struct {
	Namespace string `json:"namespace"`
	// +optional
	Reason string `json:"reason,omitempty"`
}

// ClusterExternalSecretConditionType is a ClusterExternalSecret condition type.
type ClusterExternalSecretConditionType string

// ClusterExternalSecretReady says whether every selected namespace got its
// ExternalSecret.
const ClusterExternalSecretReady ClusterExternalSecretConditionType = "Ready"

// ClusterExternalSecretStatusCondition is one condition.
type ClusterExternalSecretStatusCondition struct {
	Type   ClusterExternalSecretConditionType `json:"type"`
	Status metav1.ConditionStatus             `json:"status"`
	// +optional
	Message string `json:"message,omitempty"`
}

// ClusterExternalSecretStatus is the observed state.
type ClusterExternalSecretStatus struct {
	// +optional
	ExternalSecretName string `json:"externalSecretName,omitempty"`
	// +optional
	FailedNamespaces []ClusterExternalSecretNamespaceFailure `json:"failedNamespaces,omitempty"`
	// +optional
	ProvisionedNamespaces []string `json:"provisionedNamespaces,omitempty"`
	// +optional
	Conditions []ClusterExternalSecretStatusCondition `json:"conditions,omitempty"`
}

// ClusterExternalSecret fans one ExternalSecret out to many namespaces.
//
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories={external-secrets},shortName=ces
// +kubebuilder:printcolumn:name="Store",type=string,JSONPath=`.spec.externalSecretSpec.secretStoreRef.name`
// +kubebuilder:printcolumn:name="Refresh Interval",type=string,JSONPath=`.spec.refreshTime`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
type ClusterExternalSecret struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ClusterExternalSecretSpec   `json:"spec,omitempty"`
	Status ClusterExternalSecretStatus `json:"status,omitempty"`
}

// ClusterExternalSecretList is a list of ClusterExternalSecrets.
//
// +kubebuilder:object:root=true
type ClusterExternalSecretList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterExternalSecret `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ClusterExternalSecret{}, &ClusterExternalSecretList{})
}
