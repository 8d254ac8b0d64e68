package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
)

// PushSecretStoreRef names the stores a PushSecret writes to: one store by
// name, or every store of the kind whose labels match.
type PushSecretStoreRef struct {
	// Name of the store.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern:=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	Name string `json:"name,omitempty"`
	// LabelSelector selects stores by label instead of by name.
	// +optional
	LabelSelector *metav1.LabelSelector `json:"labelSelector,omitempty"`
	// Kind of the store: SecretStore (default) or ClusterSecretStore.
	// +kubebuilder:default="SecretStore"
	// +kubebuilder:validation:Enum=SecretStore;ClusterSecretStore
	// +optional
	Kind string `json:"kind,omitempty"`
}

// PushSecretUpdatePolicy says whether an existing remote secret is
// overwritten.
// +kubebuilder:validation:Enum=Replace;IfNotExists
type PushSecretUpdatePolicy string

const (
	// PushSecretUpdatePolicyReplace overwrites the remote secret.
	PushSecretUpdatePolicyReplace PushSecretUpdatePolicy = "Replace"
	// PushSecretUpdatePolicyIfNotExists writes only a remote secret that
	// does not exist yet.
	PushSecretUpdatePolicyIfNotExists PushSecretUpdatePolicy = "IfNotExists"
)

// PushSecretDeletionPolicy says what happens to pushed remote secrets when
// the PushSecret (or one of its entries) goes away.
// +kubebuilder:validation:Enum=Delete;None
type PushSecretDeletionPolicy string

const (
	// PushSecretDeletionPolicyDelete deletes what was pushed.
	PushSecretDeletionPolicyDelete PushSecretDeletionPolicy = "Delete"
	// PushSecretDeletionPolicyNone leaves the remote secrets in place.
	PushSecretDeletionPolicyNone PushSecretDeletionPolicy = "None"
)

// PushSecretConversionStrategy converts a Secret key before it is pushed.
// +kubebuilder:validation:Enum=None;ReverseUnicode
type PushSecretConversionStrategy string

const (
	// PushSecretConversionNone pushes the key as it is.
	PushSecretConversionNone PushSecretConversionStrategy = "None"
	// PushSecretConversionReverseUnicode turns ESO's _UXXXX_ escapes back
	// into the characters they stand for.
	PushSecretConversionReverseUnicode PushSecretConversionStrategy = "ReverseUnicode"
)

// PushSecretSecret selects the Secret(s) to push: one by name, or every
// Secret of the namespace whose labels match.
type PushSecretSecret struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern:=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	Name string `json:"name,omitempty"`
	// Selector selects Secrets by label.
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
}

// GeneratorRef names the generator whose output a PushSecret pushes.
type GeneratorRef struct {
	// APIVersion of the generator.
	// +kubebuilder:default="generators.external-secrets.io/v1alpha1"
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`
	// Kind of the generator.
	// +kubebuilder:validation:Enum=ACRAccessToken;BeyondtrustWorkloadCredentialsDynamicSecret;ClusterGenerator;CloudsmithAccessToken;ECRAuthorizationToken;Fake;GCRAccessToken;GithubAccessToken;GitlabDeployToken;QuayAccessToken;Password;SSHKey;STSSessionToken;UUID;VaultDynamicSecret;Webhook;Grafana;MFA
	Kind string `json:"kind"`
	// Name of the generator.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern:=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// PushSecretSelector says where the pushed values come from: exactly one of
// a Secret or a generator.
// +kubebuilder:validation:MinProperties=1
// +kubebuilder:validation:MaxProperties=1
type PushSecretSelector struct {
	// Secret selects the Secret(s) whose keys are pushed.
	// +optional
	Secret *PushSecretSecret `json:"secret,omitempty"`
	// GeneratorRef names a generator whose output is pushed.
	// +optional
	GeneratorRef *GeneratorRef `json:"generatorRef,omitempty"`
}

// PushSecretRemoteRef is where one value goes in the provider.
type PushSecretRemoteRef struct {
	// RemoteKey is the name of the remote secret.
	RemoteKey string `json:"remoteKey"`
	// Property is the field of the remote secret to write, for providers
	// that keep a map per secret.
	// +optional
	Property string `json:"property,omitempty"`
}

// PushSecretMatch maps one Secret key to one remote secret.
type PushSecretMatch struct {
	// SecretKey is the key of the Secret to push; empty pushes the whole
	// Secret.
	// +optional
	SecretKey string `json:"secretKey,omitempty"`
	// RemoteRef is where the value goes.
	RemoteRef PushSecretRemoteRef `json:"remoteRef"`
}

// PushSecretData is one entry of spec.data.
type PushSecretData struct {
	// Match maps a Secret key to a remote secret.
	Match PushSecretMatch `json:"match"`
	// Metadata is provider-specific metadata of the remote secret.
	// +optional
	Metadata *apiextensionsv1.JSON `json:"metadata,omitempty"`
	// ConversionStrategy converts the Secret key before it is pushed.
	// +kubebuilder:default="None"
	// +optional
	ConversionStrategy PushSecretConversionStrategy `json:"conversionStrategy,omitempty"`
}

// PushSecretDataToMatch selects the Secret keys a dataTo entry pushes.
type PushSecretDataToMatch struct {
	// RegExp selects keys by regular expression; empty selects every key.
	// +optional
	RegExp string `json:"regexp,omitempty"`
}

// PushSecretRewrite renames keys before they are pushed: exactly one of
// regexp or transform.
// +kubebuilder:validation:XValidation:rule="(has(self.regexp) && !has(self.transform)) || (!has(self.regexp) && has(self.transform))",message="exactly one of regexp or transform must be set"
type PushSecretRewrite struct {
	// Regexp renames keys by regular expression.
	// +optional
	Regexp *esv1.ExternalSecretRewriteRegexp `json:"regexp,omitempty"`
	// Transform renames keys with a template.
	// +optional
	Transform *esv1.ExternalSecretRewriteTransform `json:"transform,omitempty"`
}

// PushSecretDataTo pushes many keys of the Secret to one store at once.
// +kubebuilder:validation:XValidation:rule="has(self.storeRef) && (has(self.storeRef.name) || has(self.storeRef.labelSelector))",message="storeRef must specify either name or labelSelector"
// +kubebuilder:validation:XValidation:rule="!has(self.remoteKey) || !has(self.rewrite) || size(self.rewrite) == 0",message="remoteKey and rewrite are mutually exclusive: rewrite is only supported in per-key mode (without remoteKey)"
type PushSecretDataTo struct {
	// StoreRef is the store this entry pushes to.
	// +optional
	StoreRef *PushSecretStoreRef `json:"storeRef,omitempty"`
	// RemoteKey, when set, pushes every matched key into this one remote
	// secret; otherwise each key becomes its own remote secret.
	// +optional
	RemoteKey string `json:"remoteKey,omitempty"`
	// Match selects the keys.
	// +optional
	Match *PushSecretDataToMatch `json:"match,omitempty"`
	// Rewrite renames the keys (per-key mode only).
	// +optional
	Rewrite []PushSecretRewrite `json:"rewrite,omitempty"`
	// Metadata is provider-specific metadata of the remote secrets.
	// +optional
	Metadata *apiextensionsv1.JSON `json:"metadata,omitempty"`
	// ConversionStrategy converts the keys before they are pushed.
	// +kubebuilder:default="None"
	// +optional
	ConversionStrategy PushSecretConversionStrategy `json:"conversionStrategy,omitempty"`
}

// PushSecretSpec is the desired state of a PushSecret.
type PushSecretSpec struct {
	// RefreshInterval is how often the values are pushed again.
	// +kubebuilder:default="1h0m0s"
	// +optional
	RefreshInterval *esv1.Duration `json:"refreshInterval,omitempty"`
	// SecretStoreRefs are the stores the values are pushed to.
	SecretStoreRefs []PushSecretStoreRef `json:"secretStoreRefs"`
	// UpdatePolicy says whether an existing remote secret is overwritten.
	// +kubebuilder:default="Replace"
	// +optional
	UpdatePolicy PushSecretUpdatePolicy `json:"updatePolicy,omitempty"`
	// DeletionPolicy says whether pushed remote secrets are deleted with
	// the PushSecret.
	// +kubebuilder:default="None"
	// +optional
	DeletionPolicy PushSecretDeletionPolicy `json:"deletionPolicy,omitempty"`
	// Selector says where the values come from.
	Selector PushSecretSelector `json:"selector"`
	// Data maps Secret keys to remote secrets.
	// +optional
	Data []PushSecretData `json:"data,omitempty"`
	// DataTo pushes many keys at once.
	// +optional
	DataTo []PushSecretDataTo `json:"dataTo,omitempty"`
	// Template renders the values before they are pushed.
	// +optional
	Template *esv1.ExternalSecretTemplate `json:"template,omitempty"`
}

// PushSecretConditionType is the type of a PushSecret condition.
type PushSecretConditionType string

// PushSecretReady is the condition type keyferry (like ESO) reports.
const PushSecretReady PushSecretConditionType = "Ready"

// PushSecretStatusCondition is one condition of a PushSecret.
type PushSecretStatusCondition struct {
	Type   PushSecretConditionType `json:"type"`
	Status corev1.ConditionStatus  `json:"status"`
	// +optional
	Reason string `json:"reason,omitempty"`
	// +optional
	Message string `json:"message,omitempty"`
	// +optional
	LastTransitionTime esv1.Time `json:"lastTransitionTime,omitempty"`
}

// SyncedPushSecretsMap records what was pushed: store name → remote key →
// the entry that pushed it.
type SyncedPushSecretsMap map[string]map[string]PushSecretData

// PushSecretStatus is the observed state of a PushSecret.
type PushSecretStatus struct {
	// RefreshTime is when the values were last pushed.
	// +nullable
	// +optional
	RefreshTime esv1.Time `json:"refreshTime,omitempty"`
	// SyncedResourceVersion is the generation-based version last pushed.
	// +optional
	SyncedResourceVersion string `json:"syncedResourceVersion,omitempty"`
	// SyncedPushSecrets records what was pushed where.
	// +optional
	SyncedPushSecrets SyncedPushSecretsMap `json:"syncedPushSecrets,omitempty"`
	// +optional
	Conditions []PushSecretStatusCondition `json:"conditions,omitempty"`
}

// PushSecret writes the keys of a Kubernetes Secret (or a generator's output)
// into one or more stores.
//
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories={external-secrets},shortName=ps
// +kubebuilder:printcolumn:name="AGE",type="date",JSONPath=".metadata.creationTimestamp"
// +kubebuilder:printcolumn:name="Status",type="string",JSONPath=".status.conditions[?(@.type==\"Ready\")].reason"
// +kubebuilder:printcolumn:name="Last Sync",type="date",JSONPath=".status.refreshTime"
type PushSecret struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   PushSecretSpec   `json:"spec,omitempty"`
	Status PushSecretStatus `json:"status,omitempty"`
}

// PushSecretList is a list of PushSecrets.
//
// +kubebuilder:object:root=true
type PushSecretList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PushSecret `json:"items"`
}

func init() {
	SchemeBuilder.Register(&PushSecret{}, &PushSecretList{})
}
