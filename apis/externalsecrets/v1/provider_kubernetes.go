package v1

// KubernetesProvider reads Secrets from a namespace of this or another cluster.
type KubernetesProvider struct {
	// Server says how to reach the cluster; empty means this cluster.
	// +optional
	Server KubernetesServer `json:"server,omitempty"`
	// Auth configures how to authenticate to a remote cluster. Exactly one of
	// Auth and AuthRef may be set; neither means the operator's own identity
	// (this cluster only).
	// +optional
	Auth *KubernetesAuth `json:"auth,omitempty"`
	// AuthRef names a Secret holding a kubeconfig.
	// +optional
	AuthRef *SecretKeySelector `json:"authRef,omitempty"`
	// RemoteNamespace is the namespace the Secrets are read from.
	// +kubebuilder:default=default
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern:=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	RemoteNamespace string `json:"remoteNamespace,omitempty"`
}

// KubernetesServer is the address and CA of a cluster.
type KubernetesServer struct {
	// +kubebuilder:default=kubernetes.default
	// +optional
	URL string `json:"url,omitempty"`
	// +optional
	CABundle []byte `json:"caBundle,omitempty"`
	// +optional
	CAProvider *CAProvider `json:"caProvider,omitempty"`
}

// KubernetesAuth is one way of authenticating to a cluster.
type KubernetesAuth struct {
	// +optional
	Cert *CertAuth `json:"cert,omitempty"`
	// +optional
	Token *TokenAuth `json:"token,omitempty"`
	// +optional
	ServiceAccount *ServiceAccountSelector `json:"serviceAccount,omitempty"`
}

// CertAuth is a client certificate and key.
type CertAuth struct {
	ClientCert SecretKeySelector `json:"clientCert"`
	ClientKey  SecretKeySelector `json:"clientKey"`
}

// TokenAuth is a bearer token kept in a Secret.
type TokenAuth struct {
	BearerToken SecretKeySelector `json:"bearerToken"`
}
