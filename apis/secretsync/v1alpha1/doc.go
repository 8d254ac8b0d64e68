// Package v1alpha1 holds the Go types of the secret-sync.x-k8s.io/v1alpha1
// API that keyferry serves: SecretSync, as the Secrets Store Sync Controller
// and the Azure Key Vault Secret Store extension define it, so that their
// manifests apply unchanged. A SecretSync names a SecretProviderClass
// (secrets-store.csi.x-k8s.io/v1) in its namespace and the ServiceAccount
// whose identity reads the store, and describes the Secret (named like the
// SecretSync) to keep in step.
//
// +kubebuilder:object:generate=true
// +groupName=secret-sync.x-k8s.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of this API.
	GroupVersion = schema.GroupVersion{Group: "secret-sync.x-k8s.io", Version: "v1alpha1"}

	// SchemeBuilder registers the types of this API with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types of this API to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
