package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SecretObjectData defines the desired state of synchronized data within a Kubernetes secret object.
type SecretObjectData struct {
	// sourcePath is the data source value of the secret defined in the Secret Provider Class.
	// This matches the path of a file in the MountResponse returned from the provider.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9.]([-A-Za-z0-9]+([-._a-zA-Z0-9]?[A-Za-z0-9])*)?(\/([0-9]+))*$`
	// +kubebuilder:validation:Required
	SourcePath string `json:"sourcePath"`

	// targetKey is the key in the Kubernetes secret's data field as described in the Kubernetes API reference:
	// https://kubernetes.io/docs/reference/kubernetes-api/config-and-storage-resources/secret-v1/
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9.]([-A-Za-z0-9]+([-._a-zA-Z0-9]?[A-Za-z0-9])*)?(\/([0-9]+))*$`
	// +kubebuilder:validation:Required
	TargetKey string `json:"targetKey"`
}

// SecretObject defines the desired state of synchronized Kubernetes secret objects.
type SecretObject struct {
	// type specifies the type of the Kubernetes secret object,
	// e.g. "Opaque";"kubernetes.io/basic-auth";"kubernetes.io/ssh-auth";"kubernetes.io/tls"
	// The controller must have permission to create secrets of the specified type.
	// +kubebuilder:default=Opaque
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Type string `json:"type,omitempty"`

	// data is a list of SecretObjectData containing secret data source from the Secret Provider Class and the
	// corresponding data field key used in the Kubernetes secret object.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:Required
	// +listType=map
	// +listMapKey=targetKey
	Data []SecretObjectData `json:"data"`

	// labels contains key-value pairs representing labels associated with the Kubernetes secret object.
	// The labels are used to identify the secret object created by the controller.
	// On secret creation, the following label is added: secrets-store.sync.x-k8s.io/secretsync=<secret-sync-name>.
	// The following label prefix is reserved: secrets-store.sync.x-k8s.io/.
	// Creation fails if the label is specified in the SecretSync object with a different value.
	// On secret update, if the validation admission policy is set, the controller will check if the label
	// secrets-store.sync.x-k8s.io/secretsync=<secret-sync-name> is present. If the label is not present,
	// controller fails to update the secret.
	// +kubebuilder:validation:XValidation:message="Label keys must not exceed 317 characters (254 for prefix+separator, 63 for name), label values must not exceed 63 characters.",rule="(self.all(x, x.size() <= 317 && self[x].size() <= 63) == true)"
	// +kubebuilder:validation:XValidation:message="Labels should not contain secrets-store.sync.x-k8s.io. This key is reserved for the controller.",rule="(self.all(x, x.startsWith('secrets-store.sync.x-k8s.io') == false))"
	// +optional
	Labels map[string]string `json:"labels,omitempty"`

	// annotations contains key-value pairs representing annotations associated with the Kubernetes secret object.
	// The following annotation prefix is reserved: secrets-store.sync.x-k8s.io/.
	// Creation fails if the annotation key is specified in the SecretSync object by the user.
	// +kubebuilder:validation:XValidation:message="Annotations keys must not exceed 317 characters (254 for prefix+separator, 63 for name), annotation values must not exceed 256 kB.",rule="(self.all(x, x.size() < 317 && self[x].size() <= 262144) == true)"
	// +kubebuilder:validation:XValidation:message="Annotations should not contain secrets-store.sync.x-k8s.io. This key is reserved for the controller.",rule="(self.all(x, x.startsWith('secrets-store.sync.x-k8s.io') == false))"
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// SecretSyncSpec defines the desired state for synchronizing secret.
type SecretSyncSpec struct {
	// secretSyncControllerName specifies the name of the secrets store sync controller used to synchronize
	// the secret.
	// +kubebuilder:default=""
	// +optional
	SecretSyncControllerName string `json:"secretSyncControllerName"`

	// secretProviderClassName specifies the name of the secret provider class used to pass information to
	// access the secret store.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +kubebuilder:validation:Required
	SecretProviderClassName string `json:"secretProviderClassName"`

	// serviceAccountName specifies the name of the service account used to access the secret store.
	// The audience field in the service account token must be passed as parameter in the controller configuration.
	// The audience is used when requesting a token from the API server for the service account; the supported
	// audiences are defined by each provider.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +kubebuilder:validation:Required
	ServiceAccountName string `json:"serviceAccountName"`

	// secretObject specifies the configuration for the synchronized Kubernetes secret object.
	// +kubebuilder:validation:Required
	SecretObject SecretObject `json:"secretObject"`

	// forceSynchronization can be used to force the secret synchronization. The secret synchronization is
	// triggered by changing the value in this field.
	// This field is not used to resolve synchronization conflicts.
	// It is not related with the force query parameter in the Apply operation.
	// https://kubernetes.io/docs/reference/using-api/server-side-apply/#conflicts
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9]([-A-Za-z0-9]+([-._a-zA-Z0-9]?[A-Za-z0-9])*)?$`
	// +optional
	ForceSynchronization string `json:"forceSynchronization,omitempty"`
}

// SecretSyncStatus defines the observed state of the secret synchronization process.
type SecretSyncStatus struct {
	// syncHash contains the hash of the secret object data, data from the SecretProviderClass (e.g. UID,
	// and metadata.generation), and similar data from the SecretSync. This hash is used to
	// determine if the secret changed.
	// The hash is calculated using the HMAC (Hash-based Message Authentication Code) algorithm, using bcrypt
	// hashing, with the SecretsSync's UID as the key.
	// The secret is updated if:
	// 		1. the hash is different
	// 		2. the lastSuccessfulSyncTime indicates a rotation is required
	// 			- the rotation poll interval is passed as a parameter in the controller configuration
	// 		3. the SecretUpdateStatus is 'Failed'
	// +optional
	SyncHash string `json:"syncHash,omitempty"`

	// lastSuccessfulSyncTime represents the last time the secret was retrieved from the Provider and updated.
	// +optional
	LastSuccessfulSyncTime *metav1.Time `json:"lastSuccessfulSyncTime,omitempty"`

	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`
}

// SecretSync represents the desired and observed state of the secret synchronization process.
// The SecretSync name is used as the name of the secret object created by the controller.
//
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced
type SecretSync struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   SecretSyncSpec   `json:"spec,omitempty"`
	Status SecretSyncStatus `json:"status,omitempty"`
}

// SecretSyncList contains a list of SecretSync resources.
//
// +kubebuilder:object:root=true
type SecretSyncList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []SecretSync `json:"items"`
}

func init() {
	SchemeBuilder.Register(&SecretSync{}, &SecretSyncList{})
}
