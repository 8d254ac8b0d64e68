package v1

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SecretStoreSpec configures how keyferry reaches one secret manager.
type SecretStoreSpec struct {
	// Controller names the controller class that should handle this store;
	// empty means any.
	// +optional
	Controller string `json:"controller,omitempty"`

	// Provider configures the secret manager. Exactly one field must be set.
	Provider *SecretStoreProvider `json:"provider"`

	// RetrySettings configures how failing calls are retried.
	// +optional
	RetrySettings *SecretStoreRetrySettings `json:"retrySettings,omitempty"`

	// RefreshInterval is how often the store's configuration is re-validated:
	// an integer number of seconds (300) or a Go duration ("5m"), as in ESO
	// since v2.8. Empty or 0 validates only on change. Read it with
	// RefreshInterval.Duration().
	// +optional
	RefreshInterval *SecondsOrDuration `json:"refreshInterval,omitempty"`

	// Conditions restrict which namespaces may use a ClusterSecretStore. An
	// ExternalSecret may use the store when its namespace matches any one
	// condition; no conditions allow every namespace.
	// +optional
	Conditions []ClusterSecretStoreCondition `json:"conditions,omitempty"`
}

// ClusterSecretStoreCondition allows namespaces by label selector, by name
// or by regular expression on the name. A namespace matches the condition when
// it matches any of the three.
type ClusterSecretStoreCondition struct {
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
	// +optional
	Namespaces []string `json:"namespaces,omitempty"`
	// +optional
	NamespaceRegexes []string `json:"namespaceRegexes,omitempty"`
}

// SecretStoreRetrySettings bounds the retries of a failing call.
type SecretStoreRetrySettings struct {
	// +optional
	MaxRetries *int32 `json:"maxRetries,omitempty"`
	// +optional
	RetryInterval *string `json:"retryInterval,omitempty"`
}

// SecretStoreProvider holds the configuration of exactly one provider. The
// providers keyferry implements have typed fields; the others that External
// Secrets Operator knows are accepted as opaque objects so their manifests
// apply, and the store then reports Ready=False with reason
// UnsupportedProvider.
type SecretStoreProvider struct {
	// +optional
	Fake *FakeProvider `json:"fake,omitempty"`
	// +optional
	Kubernetes *KubernetesProvider `json:"kubernetes,omitempty"`
	// +optional
	Webhook *WebhookProvider `json:"webhook,omitempty"`
	// File reads secrets from files mounted into the operator's pod (a
	// keyferry extension).
	// +optional
	File *FileProvider `json:"file,omitempty"`
	// +optional
	AzureKV *AzureKVProvider `json:"azurekv,omitempty"`
	// +optional
	Vault *VaultProvider `json:"vault,omitempty"`
	// +optional
	AWS *AWSProvider `json:"aws,omitempty"`
	// +optional
	GCPSM *GCPSMProvider `json:"gcpsm,omitempty"`

	// Providers that External Secrets Operator serves and keyferry does not
	// implement (yet). Kept as opaque objects.

	// +optional
	// +kubebuilder:validation:Type=object
	Akeyless *apiextensionsv1.JSON `json:"akeyless,omitempty"`
	// +optional
	// +kubebuilder:validation:Type=object
	Barbican *apiextensionsv1.JSON `json:"barbican,omitempty"`
	// +optional
	// +kubebuilder:validation:Type=object
	BeyondTrust *apiextensionsv1.JSON `json:"beyondtrust,omitempty"`
	// +optional
	// +kubebuilder:validation:Type=object
	BeyondTrustWorkloadCredentials *apiextensionsv1.JSON `json:"beyondtrustworkloadcredentials,omitempty"`
	// +optional
	// +kubebuilder:validation:Type=object
	BitwardenSecretsManager *apiextensionsv1.JSON `json:"bitwardensecretsmanager,omitempty"`
	// +optional
	// +kubebuilder:validation:Type=object
	Chef *apiextensionsv1.JSON `json:"chef,omitempty"`
	// +optional
	// +kubebuilder:validation:Type=object
	CloudruSM *apiextensionsv1.JSON `json:"cloudrusm,omitempty"`
	// +optional
	// +kubebuilder:validation:Type=object
	Conjur *apiextensionsv1.JSON `json:"conjur,omitempty"`
	// +optional
	// +kubebuilder:validation:Type=object
	CRD *apiextensionsv1.JSON `json:"crd,omitempty"`
	// +optional
	// +kubebuilder:validation:Type=object
	Delinea *apiextensionsv1.JSON `json:"delinea,omitempty"`
	// +optional
	// +kubebuilder:validation:Type=object
	Doppler *apiextensionsv1.JSON `json:"doppler,omitempty"`
	// +optional
	// +kubebuilder:validation:Type=object
	DVLS *apiextensionsv1.JSON `json:"dvls,omitempty"`
	// +optional
	// +kubebuilder:validation:Type=object
	Fortanix *apiextensionsv1.JSON `json:"fortanix,omitempty"`
	// +optional
	// +kubebuilder:validation:Type=object
	Github *apiextensionsv1.JSON `json:"github,omitempty"`
	// +optional
	// +kubebuilder:validation:Type=object
	Gitlab *apiextensionsv1.JSON `json:"gitlab,omitempty"`
	// +optional
	// +kubebuilder:validation:Type=object
	IBM *apiextensionsv1.JSON `json:"ibm,omitempty"`
	// +optional
	// +kubebuilder:validation:Type=object
	Infisical *apiextensionsv1.JSON `json:"infisical,omitempty"`
	// +optional
	// +kubebuilder:validation:Type=object
	KeeperSecurity *apiextensionsv1.JSON `json:"keepersecurity,omitempty"`
	// +optional
	// +kubebuilder:validation:Type=object
	NebiusMysterybox *apiextensionsv1.JSON `json:"nebiusmysterybox,omitempty"`
	// +optional
	// +kubebuilder:validation:Type=object
	Ngrok *apiextensionsv1.JSON `json:"ngrok,omitempty"`
	// +optional
	// +kubebuilder:validation:Type=object
	Onboardbase *apiextensionsv1.JSON `json:"onboardbase,omitempty"`
	// +optional
	// +kubebuilder:validation:Type=object
	OnePassword *apiextensionsv1.JSON `json:"onepassword,omitempty"`
	// +optional
	// +kubebuilder:validation:Type=object
	OnePasswordSDK *apiextensionsv1.JSON `json:"onepasswordSDK,omitempty"`
	// +optional
	// +kubebuilder:validation:Type=object
	OpenBao *apiextensionsv1.JSON `json:"openBao,omitempty"`
	// +optional
	// +kubebuilder:validation:Type=object
	Oracle *apiextensionsv1.JSON `json:"oracle,omitempty"`
	// +optional
	// +kubebuilder:validation:Type=object
	OVH *apiextensionsv1.JSON `json:"ovh,omitempty"`
	// +optional
	// +kubebuilder:validation:Type=object
	Passbolt *apiextensionsv1.JSON `json:"passbolt,omitempty"`
	// +optional
	// +kubebuilder:validation:Type=object
	Passworddepot *apiextensionsv1.JSON `json:"passworddepot,omitempty"`
	// +optional
	// +kubebuilder:validation:Type=object
	Previder *apiextensionsv1.JSON `json:"previder,omitempty"`
	// +optional
	// +kubebuilder:validation:Type=object
	Pulumi *apiextensionsv1.JSON `json:"pulumi,omitempty"`
	// +optional
	// +kubebuilder:validation:Type=object
	Scaleway *apiextensionsv1.JSON `json:"scaleway,omitempty"`
	// +optional
	// +kubebuilder:validation:Type=object
	SecretServer *apiextensionsv1.JSON `json:"secretserver,omitempty"`
	// +optional
	// +kubebuilder:validation:Type=object
	Senhasegura *apiextensionsv1.JSON `json:"senhasegura,omitempty"`
	// +optional
	// +kubebuilder:validation:Type=object
	Volcengine *apiextensionsv1.JSON `json:"volcengine,omitempty"`
	// +optional
	// +kubebuilder:validation:Type=object
	YandexCertificateManager *apiextensionsv1.JSON `json:"yandexcertificatemanager,omitempty"`
	// +optional
	// +kubebuilder:validation:Type=object
	YandexLockbox *apiextensionsv1.JSON `json:"yandexlockbox,omitempty"`
}

// SecretStoreConditionType is the type of a store's status condition.
type SecretStoreConditionType string

// SecretStoreReady says whether the store's provider configuration is valid.
const SecretStoreReady SecretStoreConditionType = "Ready"

// Reasons of a store's Ready condition.
const (
	// ReasonStoreValid: the provider configuration was validated.
	ReasonStoreValid = "Valid"
	// ReasonInvalidProviderConfig: the provider configuration is wrong (a
	// missing field, a malformed URL, a credential Secret that is missing).
	ReasonInvalidProviderConfig = "InvalidProviderConfig"
	// ReasonInvalidStoreConfiguration: not exactly one provider is set.
	ReasonInvalidStoreConfiguration = "InvalidStoreConfiguration"
	// ReasonUnsupportedProvider: the provider is one keyferry does not implement.
	ReasonUnsupportedProvider = "UnsupportedProvider"
	// ReasonValidationFailed: the provider could not be reached or refused the
	// credentials while validating.
	ReasonValidationFailed = "ValidationFailed"
)

// SecretStoreStatusCondition is one condition of a store's status.
type SecretStoreStatusCondition struct {
	Type   SecretStoreConditionType `json:"type"`
	Status metav1.ConditionStatus   `json:"status"`
	// +optional
	Reason string `json:"reason,omitempty"`
	// +optional
	Message string `json:"message,omitempty"`
	// +optional
	LastTransitionTime Time `json:"lastTransitionTime,omitempty"`
}

// SecretStoreCapabilities says whether a store can be read, written or both.
type SecretStoreCapabilities string

const (
	SecretStoreReadOnly  SecretStoreCapabilities = "ReadOnly"
	SecretStoreWriteOnly SecretStoreCapabilities = "WriteOnly"
	SecretStoreReadWrite SecretStoreCapabilities = "ReadWrite"
)

// SecretStoreStatus is the observed state of a store.
type SecretStoreStatus struct {
	// +optional
	Conditions []SecretStoreStatusCondition `json:"conditions,omitempty"`
	// +optional
	Capabilities SecretStoreCapabilities `json:"capabilities,omitempty"`
}

// SecretStore configures access to a secret manager for ExternalSecrets in its
// own namespace.
//
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories={external-secrets},shortName=ss
// +kubebuilder:printcolumn:name="AGE",type="date",JSONPath=".metadata.creationTimestamp"
// +kubebuilder:printcolumn:name="Status",type="string",JSONPath=".status.conditions[?(@.type==\"Ready\")].reason"
// +kubebuilder:printcolumn:name="Capabilities",type="string",JSONPath=".status.capabilities"
// +kubebuilder:printcolumn:name="Ready",type="string",JSONPath=".status.conditions[?(@.type==\"Ready\")].status"
type SecretStore struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   SecretStoreSpec   `json:"spec,omitempty"`
	Status SecretStoreStatus `json:"status,omitempty"`
}

// SecretStoreList is a list of SecretStores.
//
// +kubebuilder:object:root=true
type SecretStoreList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []SecretStore `json:"items"`
}

// ClusterSecretStore configures access to a secret manager for ExternalSecrets
// in any namespace its conditions allow.
//
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories={external-secrets},shortName=css
// +kubebuilder:printcolumn:name="AGE",type="date",JSONPath=".metadata.creationTimestamp"
// +kubebuilder:printcolumn:name="Status",type="string",JSONPath=".status.conditions[?(@.type==\"Ready\")].reason"
// +kubebuilder:printcolumn:name="Capabilities",type="string",JSONPath=".status.capabilities"
// +kubebuilder:printcolumn:name="Ready",type="string",JSONPath=".status.conditions[?(@.type==\"Ready\")].status"
type ClusterSecretStore struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   SecretStoreSpec   `json:"spec,omitempty"`
	Status SecretStoreStatus `json:"status,omitempty"`
}

// ClusterSecretStoreList is a list of ClusterSecretStores.
//
// +kubebuilder:object:root=true
type ClusterSecretStoreList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterSecretStore `json:"items"`
}

func init() {
	SchemeBuilder.Register(&SecretStore{}, &SecretStoreList{}, &ClusterSecretStore{}, &ClusterSecretStoreList{})
}
