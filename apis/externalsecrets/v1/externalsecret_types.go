package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SecretStoreRef names the store an ExternalSecret reads from.
type SecretStoreRef struct {
	// Name of the store.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern:=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	Name string `json:"name,omitempty"`
	// Kind of the store: SecretStore (default) or ClusterSecretStore.
	// +kubebuilder:validation:Enum=SecretStore;ClusterSecretStore
	// +optional
	Kind string `json:"kind,omitempty"`
}

// Store kinds.
const (
	SecretStoreKind        = "SecretStore"
	ClusterSecretStoreKind = "ClusterSecretStore"
)

// CreationPolicy says how keyferry creates the target Secret.
// +kubebuilder:validation:Enum=Owner;Orphan;Merge;None;CreateOrMerge
type CreationPolicy string

const (
	// CreatePolicyOwner creates the Secret and owns it (ownerReference).
	CreatePolicyOwner CreationPolicy = "Owner"
	// CreatePolicyOrphan creates the Secret without an ownerReference.
	CreatePolicyOrphan CreationPolicy = "Orphan"
	// CreatePolicyMerge only merges into an existing Secret; never creates.
	CreatePolicyMerge CreationPolicy = "Merge"
	// CreatePolicyNone writes no Secret.
	CreatePolicyNone CreationPolicy = "None"
	// CreatePolicyCreateOrMerge merges into an existing Secret or creates one.
	CreatePolicyCreateOrMerge CreationPolicy = "CreateOrMerge"
)

// DeletionPolicy says what happens to the Secret when the remote data is gone.
// +kubebuilder:validation:Enum=Delete;Merge;Retain
type DeletionPolicy string

const (
	// DeletionPolicyDelete deletes the Secret when every source is gone.
	DeletionPolicyDelete DeletionPolicy = "Delete"
	// DeletionPolicyMerge removes the keys whose sources are gone.
	DeletionPolicyMerge DeletionPolicy = "Merge"
	// DeletionPolicyRetain keeps the Secret as it is.
	DeletionPolicyRetain DeletionPolicy = "Retain"
)

// TemplateEngineVersion is the template engine; only v2 exists.
// +kubebuilder:validation:Enum=v2
type TemplateEngineVersion string

// TemplateEngineV2 is Go text/template with sprig functions.
const TemplateEngineV2 TemplateEngineVersion = "v2"

// TemplateMergePolicy says how template output combines with fetched data.
// +kubebuilder:validation:Enum=Replace;Merge
type TemplateMergePolicy string

const (
	MergePolicyReplace TemplateMergePolicy = "Replace"
	MergePolicyMerge   TemplateMergePolicy = "Merge"
)

// ExternalSecretTemplateMetadata is the metadata the target Secret gets.
type ExternalSecretTemplateMetadata struct {
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// +optional
	Finalizers []string `json:"finalizers,omitempty"`
}

// TemplateScope says whether a template source renders values only or keys too.
// +kubebuilder:validation:Enum=Values;KeysAndValues
type TemplateScope string

const (
	TemplateScopeValues        TemplateScope = "Values"
	TemplateScopeKeysAndValues TemplateScope = "KeysAndValues"
)

// TemplateTarget says which part of the target a template source renders
// into: Data, Labels or Annotations, or, for a manifest target, a path in
// the object such as spec.database (docs/manifest-targets.md).
type TemplateTarget string

const (
	TemplateTargetData        TemplateTarget = "Data"
	TemplateTargetLabels      TemplateTarget = "Labels"
	TemplateTargetAnnotations TemplateTarget = "Annotations"
)

// TemplateRefItem names one key of a template source.
type TemplateRefItem struct {
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern:=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key"`
	// +kubebuilder:default=Values
	// +optional
	TemplateAs TemplateScope `json:"templateAs,omitempty"`
}

// TemplateRef names a ConfigMap or Secret in the ExternalSecret's namespace
// whose keys are templates.
type TemplateRef struct {
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern:=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name  string            `json:"name"`
	Items []TemplateRefItem `json:"items"`
}

// TemplateFrom is one extra source of templates.
type TemplateFrom struct {
	// +optional
	ConfigMap *TemplateRef `json:"configMap,omitempty"`
	// +optional
	Secret *TemplateRef `json:"secret,omitempty"`
	// +kubebuilder:default=Data
	// +optional
	Target TemplateTarget `json:"target,omitempty"`
	// +optional
	Literal *string `json:"literal,omitempty"`
	// +kubebuilder:validation:Enum=Auto;Base64;Base64URL;None
	// +optional
	ValuesDecodingStrategy ExternalSecretDecodingStrategy `json:"valuesDecodingStrategy,omitempty"`
}

// ExternalSecretTemplate shapes the target Secret.
type ExternalSecretTemplate struct {
	// Type of the Secret.
	// +optional
	Type string `json:"type,omitempty"`
	// +kubebuilder:default=v2
	// +optional
	EngineVersion TemplateEngineVersion `json:"engineVersion,omitempty"`
	// +optional
	Metadata ExternalSecretTemplateMetadata `json:"metadata,omitempty"`
	// +kubebuilder:default=Replace
	// +optional
	MergePolicy TemplateMergePolicy `json:"mergePolicy,omitempty"`
	// Data maps Secret keys to templates.
	// +optional
	Data map[string]string `json:"data,omitempty"`
	// +optional
	TemplateFrom []TemplateFrom `json:"templateFrom,omitempty"`
}

// ManifestReference names a non-Secret kind as target: a v1 ConfigMap or
// any namespaced kind the API server serves, written when the operator runs
// with --unsafe-allow-generic-targets.
type ManifestReference struct {
	// +kubebuilder:validation:MinLength=1
	APIVersion string `json:"apiVersion"`
	// +kubebuilder:validation:MinLength=1
	Kind string `json:"kind"`
}

// ExternalSecretTarget describes the Secret keyferry writes.
type ExternalSecretTarget struct {
	// Name of the Secret; defaults to the ExternalSecret's name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern:=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	Name string `json:"name,omitempty"`
	// +kubebuilder:default=Owner
	// +optional
	CreationPolicy CreationPolicy `json:"creationPolicy,omitempty"`
	// +kubebuilder:default=Retain
	// +optional
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`
	// +optional
	Template *ExternalSecretTemplate `json:"template,omitempty"`
	// Manifest selects a non-Secret target kind (a ConfigMap or another
	// namespaced kind, with --unsafe-allow-generic-targets).
	// +optional
	Manifest *ManifestReference `json:"manifest,omitempty"`
	// Immutable makes the Secret immutable once written.
	// +optional
	Immutable bool `json:"immutable,omitempty"`
}

// ExternalSecretConversionStrategy converts keys to valid Secret keys.
// +kubebuilder:validation:Enum=Default;Unicode
type ExternalSecretConversionStrategy string

const (
	ConversionStrategyDefault ExternalSecretConversionStrategy = "Default"
	ConversionStrategyUnicode ExternalSecretConversionStrategy = "Unicode"
)

// ExternalSecretDecodingStrategy decodes fetched values.
// +kubebuilder:validation:Enum=Auto;Base64;Base64URL;None
type ExternalSecretDecodingStrategy string

const (
	DecodingStrategyAuto      ExternalSecretDecodingStrategy = "Auto"
	DecodingStrategyBase64    ExternalSecretDecodingStrategy = "Base64"
	DecodingStrategyBase64URL ExternalSecretDecodingStrategy = "Base64URL"
	DecodingStrategyNone      ExternalSecretDecodingStrategy = "None"
)

// ExternalSecretMetadataPolicy says whether to fetch the remote metadata.
// +kubebuilder:validation:Enum=None;Fetch
type ExternalSecretMetadataPolicy string

const (
	MetadataPolicyNone  ExternalSecretMetadataPolicy = "None"
	MetadataPolicyFetch ExternalSecretMetadataPolicy = "Fetch"
)

// ExternalSecretNullBytePolicy says what to do with values holding NUL bytes.
// +kubebuilder:validation:Enum=Ignore;Fail
type ExternalSecretNullBytePolicy string

const (
	NullBytePolicyIgnore ExternalSecretNullBytePolicy = "Ignore"
	NullBytePolicyFail   ExternalSecretNullBytePolicy = "Fail"
)

// ExternalSecretDataRemoteRef names one remote value.
type ExternalSecretDataRemoteRef struct {
	// Key of the remote secret.
	Key string `json:"key"`
	// +optional
	MetadataPolicy ExternalSecretMetadataPolicy `json:"metadataPolicy,omitempty"`
	// Property selects a field of a structured value (a gjson path).
	// +optional
	Property string `json:"property,omitempty"`
	// Version of the remote secret.
	// +optional
	Version string `json:"version,omitempty"`
	// +optional
	ConversionStrategy ExternalSecretConversionStrategy `json:"conversionStrategy,omitempty"`
	// +optional
	DecodingStrategy ExternalSecretDecodingStrategy `json:"decodingStrategy,omitempty"`
	// +optional
	NullBytePolicy ExternalSecretNullBytePolicy `json:"nullBytePolicy,omitempty"`
}

// GeneratorRef names a generator. keyferry runs Password, UUID and Fake
// generators, and ClusterGenerators of those kinds (docs/generators.md).
type GeneratorRef struct {
	// +kubebuilder:default="generators.external-secrets.io/v1alpha1"
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`
	// Kind of the generator.
	// +kubebuilder:validation:Enum=ACRAccessToken;BeyondtrustWorkloadCredentialsDynamicSecret;ClusterGenerator;CloudsmithAccessToken;ECRAuthorizationToken;Fake;GCRAccessToken;GithubAccessToken;GitlabDeployToken;QuayAccessToken;Password;SSHKey;STSSessionToken;UUID;VaultDynamicSecret;Webhook;Grafana;MFA
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// StoreSourceRef overrides the store for one entry, or names a generator.
type StoreSourceRef struct {
	// +optional
	SecretStoreRef SecretStoreRef `json:"storeRef,omitempty"`
	// +optional
	GeneratorRef *GeneratorRef `json:"generatorRef,omitempty"`
}

// ExternalSecretData maps one remote value to one Secret key.
type ExternalSecretData struct {
	// SecretKey is the key in the target Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern:=`^[-._a-zA-Z0-9]+$`
	SecretKey string                      `json:"secretKey"`
	RemoteRef ExternalSecretDataRemoteRef `json:"remoteRef"`
	// +optional
	SourceRef *StoreSourceRef `json:"sourceRef,omitempty"`
}

// FindName matches remote secret names.
type FindName struct {
	// RegExp is a regular expression on the remote name.
	// +optional
	RegExp string `json:"regexp,omitempty"`
}

// ExternalSecretFind selects many remote secrets.
type ExternalSecretFind struct {
	// Path is a prefix of the remote names.
	// +optional
	Path *string `json:"path,omitempty"`
	// +optional
	Name *FindName `json:"name,omitempty"`
	// Tags the remote secrets must carry.
	// +optional
	Tags map[string]string `json:"tags,omitempty"`
	// +optional
	ConversionStrategy ExternalSecretConversionStrategy `json:"conversionStrategy,omitempty"`
	// +optional
	DecodingStrategy ExternalSecretDecodingStrategy `json:"decodingStrategy,omitempty"`
	// +optional
	NullBytePolicy ExternalSecretNullBytePolicy `json:"nullBytePolicy,omitempty"`
}

// ExternalSecretRewriteRegexp renames keys by regular expression.
type ExternalSecretRewriteRegexp struct {
	Source string `json:"source"`
	Target string `json:"target"`
}

// ExternalSecretRewriteTransform renames keys with a template over .value.
type ExternalSecretRewriteTransform struct {
	Template string `json:"template"`
}

// ExternalSecretRewriteMerge merges JSON values (strategy Extract or JSON).
type ExternalSecretRewriteMerge struct {
	// +kubebuilder:default=""
	// +optional
	Into string `json:"into,omitempty"`
	// +optional
	Priority []string `json:"priority,omitempty"`
	// +kubebuilder:validation:Enum=IgnoreNotFound;Strict
	// +kubebuilder:default=Strict
	// +optional
	PriorityPolicy string `json:"priorityPolicy,omitempty"`
	// +kubebuilder:validation:Enum=Ignore;Error
	// +kubebuilder:default=Error
	// +optional
	ConflictPolicy string `json:"conflictPolicy,omitempty"`
	// +kubebuilder:validation:Enum=Extract;JSON
	// +kubebuilder:default=Extract
	// +optional
	Strategy string `json:"strategy,omitempty"`
}

// ExternalSecretRewrite is one rewrite step applied to dataFrom keys.
type ExternalSecretRewrite struct {
	// +optional
	Regexp *ExternalSecretRewriteRegexp `json:"regexp,omitempty"`
	// +optional
	Transform *ExternalSecretRewriteTransform `json:"transform,omitempty"`
	// +optional
	Merge *ExternalSecretRewriteMerge `json:"merge,omitempty"`
}

// ExternalSecretDataFromRemoteRef fetches many values at once.
type ExternalSecretDataFromRemoteRef struct {
	// Extract the keys of one structured remote value.
	// +optional
	Extract *ExternalSecretDataRemoteRef `json:"extract,omitempty"`
	// Find remote values by name, path or tags.
	// +optional
	Find *ExternalSecretFind `json:"find,omitempty"`
	// Rewrite the resulting keys.
	// +optional
	Rewrite []ExternalSecretRewrite `json:"rewrite,omitempty"`
	// +optional
	SourceRef *StoreSourceRef `json:"sourceRef,omitempty"`
}

// ExternalSecretRefreshPolicy says when an ExternalSecret refreshes.
// +kubebuilder:validation:Enum=CreatedOnce;Periodic;OnChange
type ExternalSecretRefreshPolicy string

const (
	RefreshPolicyCreatedOnce ExternalSecretRefreshPolicy = "CreatedOnce"
	RefreshPolicyPeriodic    ExternalSecretRefreshPolicy = "Periodic"
	RefreshPolicyOnChange    ExternalSecretRefreshPolicy = "OnChange"
)

// SyncWindows restricts when syncs may happen (not supported by keyferry yet).
type SyncWindows struct {
	// +kubebuilder:validation:Enum=allow;deny
	Kind    string       `json:"kind"`
	Windows []SyncWindow `json:"windows"`
}

// SyncWindow is one cron-scheduled window.
type SyncWindow struct {
	// +kubebuilder:validation:MinLength=1
	Schedule string `json:"schedule"`
	Duration string `json:"duration"`
}

// ExternalSecretSpec is the desired state of an ExternalSecret.
type ExternalSecretSpec struct {
	// +optional
	SecretStoreRef SecretStoreRef `json:"secretStoreRef,omitempty"`
	// +kubebuilder:default={creationPolicy:Owner,deletionPolicy:Retain}
	// +optional
	Target ExternalSecretTarget `json:"target,omitempty"`
	// +optional
	RefreshPolicy ExternalSecretRefreshPolicy `json:"refreshPolicy,omitempty"`
	// RefreshInterval is a duration such as 1h or 30s; 0 disables refresh.
	// +kubebuilder:default="1h0m0s"
	// +optional
	RefreshInterval *Duration `json:"refreshInterval,omitempty"`
	// +optional
	Data []ExternalSecretData `json:"data,omitempty"`
	// +optional
	DataFrom []ExternalSecretDataFromRemoteRef `json:"dataFrom,omitempty"`
	// +optional
	SyncWindows *SyncWindows `json:"syncWindows,omitempty"`
}

// ExternalSecretConditionType is the type of an ExternalSecret condition.
// +kubebuilder:validation:Enum=Ready;Deleted
type ExternalSecretConditionType string

const (
	ExternalSecretReady   ExternalSecretConditionType = "Ready"
	ExternalSecretDeleted ExternalSecretConditionType = "Deleted"
)

// ExternalSecretStatusCondition is one condition of an ExternalSecret.
type ExternalSecretStatusCondition struct {
	Type   ExternalSecretConditionType `json:"type"`
	Status metav1.ConditionStatus      `json:"status"`
	// +optional
	Reason string `json:"reason,omitempty"`
	// +optional
	Message string `json:"message,omitempty"`
	// +optional
	LastTransitionTime Time `json:"lastTransitionTime,omitempty"`
}

// ExternalSecretStatus is the observed state of an ExternalSecret.
type ExternalSecretStatus struct {
	// RefreshTime is when the Secret was last synced successfully.
	// +nullable
	// +optional
	RefreshTime Time `json:"refreshTime,omitempty"`
	// SyncedResourceVersion is the generation-based version last synced.
	// +optional
	SyncedResourceVersion string `json:"syncedResourceVersion,omitempty"`
	// +optional
	Conditions []ExternalSecretStatusCondition `json:"conditions,omitempty"`
	// Binding names the target Secret.
	// +optional
	Binding LocalObjectReference `json:"binding,omitempty"`
}

// LocalObjectReference names an object in the same namespace.
type LocalObjectReference struct {
	// +kubebuilder:default=""
	// +optional
	Name string `json:"name,omitempty"`
}

// ExternalSecret keeps one Secret in step with values from a store.
//
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories={external-secrets},shortName=es
// +kubebuilder:printcolumn:name="StoreType",type=string,JSONPath=`.spec.secretStoreRef.kind`
// +kubebuilder:printcolumn:name="Store",type=string,JSONPath=`.spec.secretStoreRef.name`
// +kubebuilder:printcolumn:name="Refresh Interval",type=string,JSONPath=`.spec.refreshInterval`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Last Sync",type=date,JSONPath=`.status.refreshTime`
type ExternalSecret struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ExternalSecretSpec   `json:"spec,omitempty"`
	Status ExternalSecretStatus `json:"status,omitempty"`
}

// ExternalSecretList is a list of ExternalSecrets.
//
// +kubebuilder:object:root=true
type ExternalSecretList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ExternalSecret `json:"items"`
}

// AnnotationForceSync, when its value changes, makes the ExternalSecret sync
// at once (ESO's annotation).
const AnnotationForceSync = "force-sync"

func init() {
	SchemeBuilder.Register(&ExternalSecret{}, &ExternalSecretList{})
}
