package v1

import apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

// VaultKVStoreVersion is the KV secrets engine version.
// +kubebuilder:validation:Enum=v1;v2
type VaultKVStoreVersion string

const (
	VaultKVStoreV1 VaultKVStoreVersion = "v1"
	VaultKVStoreV2 VaultKVStoreVersion = "v2"
)

// VaultProvider reads HashiCorp Vault (or OpenBao) KV secrets engines.
type VaultProvider struct {
	// +optional
	Auth *VaultAuth `json:"auth,omitempty"`
	// Server is the Vault address, such as https://vault.example:8200.
	Server string `json:"server"`
	// Path is the mount path of the KV engine, such as secret.
	// +optional
	Path *string `json:"path,omitempty"`
	// +kubebuilder:default=v2
	// +optional
	Version VaultKVStoreVersion `json:"version,omitempty"`
	// Namespace is the Vault Enterprise namespace.
	// +optional
	Namespace *string `json:"namespace,omitempty"`
	// +optional
	CABundle []byte `json:"caBundle,omitempty"`
	// +optional
	TLS VaultClientTLS `json:"tls,omitempty"`
	// +optional
	CAProvider *CAProvider `json:"caProvider,omitempty"`
	// +optional
	ReadYourWrites bool `json:"readYourWrites,omitempty"`
	// +optional
	ForwardInconsistent bool `json:"forwardInconsistent,omitempty"`
	// +optional
	Headers map[string]string `json:"headers,omitempty"`
	// +optional
	CheckAndSet *VaultCheckAndSet `json:"checkAndSet,omitempty"`
}

// VaultCheckAndSet configures check-and-set writes.
type VaultCheckAndSet struct {
	// +optional
	Required bool `json:"required,omitempty"`
}

// VaultClientTLS is a client certificate for the TLS connection to Vault.
type VaultClientTLS struct {
	// +optional
	CertSecretRef *SecretKeySelector `json:"certSecretRef,omitempty"`
	// +optional
	KeySecretRef *SecretKeySelector `json:"keySecretRef,omitempty"`
}

// VaultAuth is one way of authenticating to Vault.
type VaultAuth struct {
	// Namespace to log in to, when it differs from the store's.
	// +optional
	Namespace *string `json:"namespace,omitempty"`
	// +optional
	TokenSecretRef *SecretKeySelector `json:"tokenSecretRef,omitempty"`
	// +optional
	AppRole *VaultAppRole `json:"appRole,omitempty"`
	// +optional
	Kubernetes *VaultKubernetesAuth `json:"kubernetes,omitempty"`
	// +optional
	Ldap *VaultLdapAuth `json:"ldap,omitempty"`
	// +optional
	UserPass *VaultUserPassAuth `json:"userPass,omitempty"`
	// +optional
	Jwt *VaultJwtAuth `json:"jwt,omitempty"`
	// +optional
	Cert *VaultCertAuth `json:"cert,omitempty"`
	// IAM and GCP auth are accepted and reported as unsupported.
	// +optional
	// +kubebuilder:validation:Type=object
	Iam *apiextensionsv1.JSON `json:"iam,omitempty"`
	// +optional
	// +kubebuilder:validation:Type=object
	GCP *apiextensionsv1.JSON `json:"gcp,omitempty"`
}

// VaultAppRole logs in with a role id and secret id.
type VaultAppRole struct {
	// +kubebuilder:default=approle
	Path string `json:"path"`
	// +optional
	RoleID string `json:"roleId,omitempty"`
	// +optional
	RoleRef   *SecretKeySelector `json:"roleRef,omitempty"`
	SecretRef SecretKeySelector  `json:"secretRef"`
}

// VaultKubernetesAuth logs in with a ServiceAccount token.
type VaultKubernetesAuth struct {
	// +kubebuilder:default=kubernetes
	Path string `json:"mountPath"`
	// +optional
	ServiceAccountRef *ServiceAccountSelector `json:"serviceAccountRef,omitempty"`
	// +optional
	SecretRef *SecretKeySelector `json:"secretRef,omitempty"`
	Role      string             `json:"role"`
}

// VaultLdapAuth logs in with LDAP credentials.
type VaultLdapAuth struct {
	// +kubebuilder:default=ldap
	Path     string `json:"path"`
	Username string `json:"username"`
	// +optional
	SecretRef SecretKeySelector `json:"secretRef,omitempty"`
}

// VaultUserPassAuth logs in with a username and password.
type VaultUserPassAuth struct {
	// +kubebuilder:default=userpass
	Path     string `json:"path"`
	Username string `json:"username"`
	// +optional
	SecretRef SecretKeySelector `json:"secretRef,omitempty"`
}

// VaultJwtAuth logs in with a JWT, from a Secret or a ServiceAccount token.
type VaultJwtAuth struct {
	// +kubebuilder:default=jwt
	Path string `json:"path"`
	// +optional
	Role string `json:"role,omitempty"`
	// +optional
	SecretRef *SecretKeySelector `json:"secretRef,omitempty"`
	// +optional
	KubernetesServiceAccountToken *VaultKubernetesServiceAccountTokenAuth `json:"kubernetesServiceAccountToken,omitempty"`
}

// VaultKubernetesServiceAccountTokenAuth requests a ServiceAccount token.
type VaultKubernetesServiceAccountTokenAuth struct {
	ServiceAccountRef ServiceAccountSelector `json:"serviceAccountRef"`
	// +optional
	Audiences *[]string `json:"audiences,omitempty"`
	// +optional
	ExpirationSeconds *int64 `json:"expirationSeconds,omitempty"`
}

// VaultCertAuth logs in with a TLS client certificate.
type VaultCertAuth struct {
	// +kubebuilder:default=cert
	// +optional
	Path string `json:"path,omitempty"`
	// +optional
	VaultRole string `json:"vaultRole,omitempty"`
	// +optional
	ClientCert SecretKeySelector `json:"clientCert,omitempty"`
	// +optional
	SecretRef SecretKeySelector `json:"secretRef,omitempty"`
}
