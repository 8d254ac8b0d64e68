package v1

// SecretKeySelector names one key of a Secret. Namespace is honoured only for
// ClusterSecretStores; a namespaced store always reads from its own namespace.
type SecretKeySelector struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern:=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	Name string `json:"name,omitempty"`
	// Namespace of the Secret; only for ClusterSecretStores.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern:=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	Namespace *string `json:"namespace,omitempty"`
	// Key within the Secret's data.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern:=`^[-._a-zA-Z0-9]+$`
	// +optional
	Key string `json:"key,omitempty"`
}

// ServiceAccountSelector names a ServiceAccount whose token keyferry requests
// through the TokenRequest API.
type ServiceAccountSelector struct {
	// Name of the ServiceAccount.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Namespace of the ServiceAccount; only for ClusterSecretStores.
	// +optional
	Namespace *string `json:"namespace,omitempty"`
	// Audiences of the requested token.
	// +optional
	Audiences []string `json:"audiences,omitempty"`
}

// CAProviderType says where a CA bundle is kept.
// +kubebuilder:validation:Enum=Secret;ConfigMap
type CAProviderType string

const (
	CAProviderTypeSecret    CAProviderType = "Secret"
	CAProviderTypeConfigMap CAProviderType = "ConfigMap"
)

// CAProvider points at a CA bundle kept in a Secret or ConfigMap.
type CAProvider struct {
	// Type of the object holding the bundle.
	Type CAProviderType `json:"type"`
	// Name of the object.
	Name string `json:"name"`
	// Key within the object's data.
	// +optional
	Key string `json:"key,omitempty"`
	// Namespace of the object; only for ClusterSecretStores.
	// +optional
	Namespace *string `json:"namespace,omitempty"`
}
