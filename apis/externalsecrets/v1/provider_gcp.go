package v1

// GCPSMProvider reads GCP Secret Manager.
type GCPSMProvider struct {
	// +optional
	Auth GCPSMAuth `json:"auth,omitempty"`
	// ProjectID of the secrets.
	// +optional
	ProjectID string `json:"projectID,omitempty"`
	// Location selects regional secrets; empty means global.
	// +optional
	Location string `json:"location,omitempty"`
	// SecretVersionSelectionPolicy is LatestOrFail or LatestOrFetch (ESO's
	// schema has no enum; the provider validates it).
	// +kubebuilder:default=LatestOrFail
	// +optional
	SecretVersionSelectionPolicy string `json:"secretVersionSelectionPolicy,omitempty"`
}

// GCPSMAuth is one way of authenticating to GCP.
type GCPSMAuth struct {
	// +optional
	SecretRef *GCPSMAuthSecretRef `json:"secretRef,omitempty"`
	// +optional
	WorkloadIdentity *GCPWorkloadIdentity `json:"workloadIdentity,omitempty"`
	// +optional
	WorkloadIdentityFederation *GCPWorkloadIdentityFederation `json:"workloadIdentityFederation,omitempty"`
}

// GCPSMAuthSecretRef holds a service account key.
type GCPSMAuthSecretRef struct {
	// +optional
	SecretAccessKey SecretKeySelector `json:"secretAccessKeySecretRef,omitempty"`
}

// GCPWorkloadIdentity exchanges a ServiceAccount token through STS.
type GCPWorkloadIdentity struct {
	ServiceAccountRef ServiceAccountSelector `json:"serviceAccountRef"`
	// +optional
	ClusterLocation string `json:"clusterLocation,omitempty"`
	// +optional
	ClusterName string `json:"clusterName,omitempty"`
	// +optional
	ClusterProjectID string `json:"clusterProjectID,omitempty"`
}

// GCPWorkloadIdentityFederation configures workload identity federation.
type GCPWorkloadIdentityFederation struct {
	// +optional
	CredConfig *ConfigMapReference `json:"credConfig,omitempty"`
	// +optional
	ServiceAccountRef *ServiceAccountSelector `json:"serviceAccountRef,omitempty"`
	// +optional
	AwsSecurityCredentials *AwsCredentialsConfig `json:"awsSecurityCredentials,omitempty"`
	// +optional
	Audience string `json:"audience,omitempty"`
	// +optional
	ExternalTokenEndpoint string `json:"externalTokenEndpoint,omitempty"`
	// +optional
	GCPServiceAccountEmail string `json:"gcpServiceAccountEmail,omitempty"`
}

// ConfigMapReference names a key of a ConfigMap.
type ConfigMapReference struct {
	Name string `json:"name"`
	// +optional
	Namespace string `json:"namespace,omitempty"`
	Key       string `json:"key"`
}

// AwsCredentialsConfig names AWS credentials for federation.
type AwsCredentialsConfig struct {
	Region                  string          `json:"region"`
	AwsCredentialsSecretRef SecretObjectRef `json:"awsCredentialsSecretRef"`
}

// SecretObjectRef names a Secret.
type SecretObjectRef struct {
	Name string `json:"name"`
	// +optional
	Namespace string `json:"namespace,omitempty"`
}
