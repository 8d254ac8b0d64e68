package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
)

// PushSecretMetadata is the metadata of the PushSecrets a ClusterPushSecret
// creates.
type PushSecretMetadata struct {
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
}

// ClusterPushSecretSpec is the desired state of a ClusterPushSecret.
type ClusterPushSecretSpec struct {
	// PushSecretSpec is the spec of every PushSecret created.
	PushSecretSpec PushSecretSpec `json:"pushSecretSpec"`
	// RefreshInterval is how often the selected namespaces are checked
	// again (ESO's field name is refreshTime).
	// +optional
	RefreshInterval *esv1.Duration `json:"refreshTime,omitempty"`
	// PushSecretName names the PushSecrets; defaults to the
	// ClusterPushSecret's name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern:=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	PushSecretName string `json:"pushSecretName,omitempty"`
	// PushSecretMetadata is the metadata of the PushSecrets created.
	// +optional
	PushSecretMetadata PushSecretMetadata `json:"pushSecretMetadata,omitempty"`
	// NamespaceSelectors select namespaces; a namespace matching any one is
	// selected.
	// +optional
	NamespaceSelectors []*metav1.LabelSelector `json:"namespaceSelectors,omitempty"`
}

// ClusterPushSecretNamespaceFailure says why a PushSecret could not be
// created in one namespace.
type ClusterPushSecretNamespaceFailure struct {
	// Namespace that failed.
	Namespace string `json:"namespace"`
	// Reason it failed.
	// +optional
	Reason string `json:"reason,omitempty"`
}

// ClusterPushSecretStatus is the observed state of a ClusterPushSecret.
type ClusterPushSecretStatus struct {
	// PushSecretName is the name of the PushSecrets created.
	// +optional
	PushSecretName string `json:"pushSecretName,omitempty"`
	// FailedNamespaces lists the namespaces where no PushSecret could be
	// created.
	// +optional
	FailedNamespaces []ClusterPushSecretNamespaceFailure `json:"failedNamespaces,omitempty"`
	// ProvisionedNamespaces lists the namespaces that have a PushSecret.
	// +optional
	ProvisionedNamespaces []string `json:"provisionedNamespaces,omitempty"`
	// +optional
	Conditions []PushSecretStatusCondition `json:"conditions,omitempty"`
}

// ClusterPushSecret creates a PushSecret in every namespace its selectors
// match.
//
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories={external-secrets}
// +kubebuilder:printcolumn:name="AGE",type="date",JSONPath=".metadata.creationTimestamp"
// +kubebuilder:printcolumn:name="Status",type="string",JSONPath=".status.conditions[?(@.type==\"Ready\")].reason"
type ClusterPushSecret struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ClusterPushSecretSpec   `json:"spec,omitempty"`
	Status ClusterPushSecretStatus `json:"status,omitempty"`
}

// ClusterPushSecretList is a list of ClusterPushSecrets.
//
// +kubebuilder:object:root=true
type ClusterPushSecretList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterPushSecret `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ClusterPushSecret{}, &ClusterPushSecretList{})
}
