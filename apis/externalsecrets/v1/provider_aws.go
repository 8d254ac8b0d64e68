package v1

// AWSServiceType is the AWS service a store reads.
// +kubebuilder:validation:Enum=SecretsManager;ParameterStore;CertificateManager
type AWSServiceType string

const (
	AWSServiceSecretsManager     AWSServiceType = "SecretsManager"
	AWSServiceParameterStore     AWSServiceType = "ParameterStore"
	AWSServiceCertificateManager AWSServiceType = "CertificateManager"
)

// AWSProvider reads AWS Secrets Manager or Parameter Store.
type AWSProvider struct {
	Service AWSServiceType `json:"service"`
	// +optional
	Auth AWSAuth `json:"auth,omitempty"`
	// Role to assume.
	// +optional
	Role string `json:"role,omitempty"`
	// AdditionalRoles are assumed in order before Role.
	// +optional
	AdditionalRoles []string `json:"additionalRoles,omitempty"`
	// +optional
	ExternalID string `json:"externalID,omitempty"`
	// +kubebuilder:validation:Enum=None;Simple;Custom
	// +kubebuilder:default=None
	// +optional
	SessionTagsPolicy string `json:"sessionTagsPolicy,omitempty"`
	// +optional
	SessionTags []*AWSTag `json:"sessionTags,omitempty"`
	// +optional
	CustomSessionTags map[string]string `json:"customSessionTags,omitempty"`
	// +optional
	SecretsManager *AWSSecretsManager `json:"secretsManager,omitempty"`
	// +optional
	TransitiveTagKeys []string `json:"transitiveTagKeys,omitempty"`
	// Prefix is prepended to every key.
	// +optional
	Prefix string `json:"prefix,omitempty"`
	Region string `json:"region"`
}

// AWSAuth is one way of authenticating to AWS; neither means the default
// credential chain.
type AWSAuth struct {
	// +optional
	SecretRef *AWSAuthSecretRef `json:"secretRef,omitempty"`
	// +optional
	JWTAuth *AWSJWTAuth `json:"jwt,omitempty"`
}

// AWSAuthSecretRef holds static credentials in Secrets.
type AWSAuthSecretRef struct {
	// +optional
	AccessKeyID SecretKeySelector `json:"accessKeyIDSecretRef,omitempty"`
	// +optional
	SecretAccessKey SecretKeySelector `json:"secretAccessKeySecretRef,omitempty"`
	// +optional
	SessionToken *SecretKeySelector `json:"sessionTokenSecretRef,omitempty"`
}

// AWSJWTAuth uses a ServiceAccount token as a web identity.
type AWSJWTAuth struct {
	// +optional
	ServiceAccountRef *ServiceAccountSelector `json:"serviceAccountRef,omitempty"`
}

// AWSTag is a session tag.
type AWSTag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// AWSSecretsManager holds Secrets Manager options for writes.
type AWSSecretsManager struct {
	// +optional
	ForceDeleteWithoutRecovery bool `json:"forceDeleteWithoutRecovery,omitempty"`
	// +optional
	RecoveryWindowInDays int64 `json:"recoveryWindowInDays,omitempty"`
}
