package v1beta1

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SecretStore is the deprecated, unserved v1beta1 SecretStore: an opaque spec and
// status whose fields are all preserved.
//
// +kubebuilder:object:root=true
// +kubebuilder:unservedversion
// +kubebuilder:deprecatedversion
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories={external-secrets},shortName=ss
type SecretStore struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +kubebuilder:validation:Type=object
	// +optional
	Spec *apiextensionsv1.JSON `json:"spec,omitempty"`
	// +kubebuilder:validation:Type=object
	// +optional
	Status *apiextensionsv1.JSON `json:"status,omitempty"`
}

// ClusterSecretStore is the deprecated, unserved v1beta1 ClusterSecretStore: an opaque spec and
// status whose fields are all preserved.
//
// +kubebuilder:object:root=true
// +kubebuilder:unservedversion
// +kubebuilder:deprecatedversion
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories={external-secrets},shortName=css
type ClusterSecretStore struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +kubebuilder:validation:Type=object
	// +optional
	Spec *apiextensionsv1.JSON `json:"spec,omitempty"`
	// +kubebuilder:validation:Type=object
	// +optional
	Status *apiextensionsv1.JSON `json:"status,omitempty"`
}

// ExternalSecret is the deprecated, unserved v1beta1 ExternalSecret: an opaque spec and
// status whose fields are all preserved.
//
// +kubebuilder:object:root=true
// +kubebuilder:unservedversion
// +kubebuilder:deprecatedversion
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories={external-secrets},shortName=es
type ExternalSecret struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +kubebuilder:validation:Type=object
	// +optional
	Spec *apiextensionsv1.JSON `json:"spec,omitempty"`
	// +kubebuilder:validation:Type=object
	// +optional
	Status *apiextensionsv1.JSON `json:"status,omitempty"`
}

// ClusterExternalSecret is the deprecated, unserved v1beta1 ClusterExternalSecret: an opaque spec and
// status whose fields are all preserved.
//
// +kubebuilder:object:root=true
// +kubebuilder:unservedversion
// +kubebuilder:deprecatedversion
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories={external-secrets},shortName=ces
type ClusterExternalSecret struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +kubebuilder:validation:Type=object
	// +optional
	Spec *apiextensionsv1.JSON `json:"spec,omitempty"`
	// +kubebuilder:validation:Type=object
	// +optional
	Status *apiextensionsv1.JSON `json:"status,omitempty"`
}
