package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Provider is the name of a Secrets Store CSI driver provider, such as
// "azure".
type Provider string

// SecretObjectData defines the desired state of synced K8s secret object data
type SecretObjectData struct {
	// name of the object to sync
	// +optional
	ObjectName string `json:"objectName,omitempty"`
	// data field to populate
	// +optional
	Key string `json:"key,omitempty"`
}

// SecretObject defines the desired state of synced K8s secret objects
type SecretObject struct {
	// name of the K8s secret object
	// +optional
	SecretName string `json:"secretName,omitempty"`
	// type of K8s secret object
	// +optional
	Type string `json:"type,omitempty"`
	// labels of K8s secret object
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// annotations of k8s secret object
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
	// +optional
	Data []*SecretObjectData `json:"data,omitempty"`
}

// SecretProviderClassSpec defines the desired state of SecretProviderClass
type SecretProviderClassSpec struct {
	// Configuration for provider name
	// +optional
	Provider Provider `json:"provider,omitempty"`
	// Configuration for specific provider
	// +optional
	Parameters map[string]string `json:"parameters,omitempty"`
	// +optional
	SecretObjects []*SecretObject `json:"secretObjects,omitempty"`
}

// ByPodStatus defines the state of SecretProviderClass as seen by an individual controller
type ByPodStatus struct {
	// id of the pod that wrote the status
	// +optional
	ID string `json:"id,omitempty"`
	// namespace of the pod that wrote the status
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// SecretProviderClassStatus defines the observed state of SecretProviderClass
type SecretProviderClassStatus struct {
	// +optional
	ByPod []*ByPodStatus `json:"byPod,omitempty"`
}

// SecretProviderClass is the Schema for the secretproviderclasses API
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced
// +kubebuilder:deprecatedversion:warning="secrets-store.csi.x-k8s.io/v1alpha1 is deprecated. Use secrets-store.csi.x-k8s.io/v1 instead."
type SecretProviderClass struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   SecretProviderClassSpec   `json:"spec,omitempty"`
	Status SecretProviderClassStatus `json:"status,omitempty"`
}

// SecretProviderClassList contains a list of SecretProviderClass
//
// +kubebuilder:object:root=true
type SecretProviderClassList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []SecretProviderClass `json:"items"`
}

func init() {
	SchemeBuilder.Register(&SecretProviderClass{}, &SecretProviderClassList{})
}
