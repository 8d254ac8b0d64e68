package v1

// AzureAuthType is how keyferry authenticates to Azure.
// +kubebuilder:validation:Enum=ServicePrincipal;ManagedIdentity;WorkloadIdentity
type AzureAuthType string

const (
	AzureServicePrincipal AzureAuthType = "ServicePrincipal"
	AzureManagedIdentity  AzureAuthType = "ManagedIdentity"
	AzureWorkloadIdentity AzureAuthType = "WorkloadIdentity"
)

// AzureEnvironmentType is the Azure cloud.
// +kubebuilder:validation:Enum=PublicCloud;USGovernmentCloud;ChinaCloud;GermanCloud;AzureStackCloud
type AzureEnvironmentType string

const (
	AzureEnvironmentPublicCloud       AzureEnvironmentType = "PublicCloud"
	AzureEnvironmentUSGovernmentCloud AzureEnvironmentType = "USGovernmentCloud"
	AzureEnvironmentChinaCloud        AzureEnvironmentType = "ChinaCloud"
	AzureEnvironmentGermanCloud       AzureEnvironmentType = "GermanCloud"
	AzureEnvironmentAzureStackCloud   AzureEnvironmentType = "AzureStackCloud"
)

// AzureKVProvider reads secrets, certificates and keys from Azure Key Vault.
type AzureKVProvider struct {
	// +kubebuilder:default=ServicePrincipal
	// +optional
	AuthType *AzureAuthType `json:"authType,omitempty"`
	// VaultURL such as https://my-vault.vault.azure.net.
	VaultURL *string `json:"vaultUrl"`
	// TenantID of the service principal or workload identity.
	// +optional
	TenantID *string `json:"tenantId,omitempty"`
	// +kubebuilder:default=PublicCloud
	// +optional
	EnvironmentType AzureEnvironmentType `json:"environmentType,omitempty"`
	// AuthSecretRef holds the service principal's credentials.
	// +optional
	AuthSecretRef *AzureKVAuth `json:"authSecretRef,omitempty"`
	// ServiceAccountRef is the ServiceAccount used for WorkloadIdentity.
	// +optional
	ServiceAccountRef *ServiceAccountSelector `json:"serviceAccountRef,omitempty"`
	// IdentityID selects a user-assigned managed identity.
	// +optional
	IdentityID *string `json:"identityId,omitempty"`
	// UseAzureSDK is accepted for compatibility; keyferry always uses the SDK.
	// +kubebuilder:default=false
	// +optional
	UseAzureSDK *bool `json:"useAzureSDK,omitempty"`
	// CustomCloudConfig configures an AzureStackCloud environment.
	// +optional
	CustomCloudConfig *AzureCustomCloudConfig `json:"customCloudConfig,omitempty"`
}

// AzureKVAuth holds a service principal's credentials in Secrets.
type AzureKVAuth struct {
	// +optional
	ClientID *SecretKeySelector `json:"clientId,omitempty"`
	// +optional
	TenantID *SecretKeySelector `json:"tenantId,omitempty"`
	// +optional
	ClientSecret *SecretKeySelector `json:"clientSecret,omitempty"`
	// +optional
	ClientCertificate *SecretKeySelector `json:"clientCertificate,omitempty"`
}

// AzureCustomCloudConfig holds the endpoints of a custom cloud.
type AzureCustomCloudConfig struct {
	ActiveDirectoryEndpoint string `json:"activeDirectoryEndpoint"`
	// +optional
	KeyVaultEndpoint string `json:"keyVaultEndpoint,omitempty"`
	// +optional
	KeyVaultDNSSuffix string `json:"keyVaultDNSSuffix,omitempty"`
	// +optional
	ResourceManagerEndpoint string `json:"resourceManagerEndpoint,omitempty"`
}
