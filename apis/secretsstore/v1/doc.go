// Package v1 holds the Go types of the secrets-store.csi.x-k8s.io/v1 API that
// keyferry serves: SecretProviderClass, as the Secrets Store CSI driver
// defines it, so that SecretProviderClasses written for the driver, the
// Secrets Store Sync Controller or the Azure Key Vault Secret Store extension
// apply unchanged. keyferry reads SecretProviderClasses only through the
// SecretSyncs that name them (see apis/secretsync/v1alpha1).
//
// +kubebuilder:object:generate=true
// +groupName=secrets-store.csi.x-k8s.io
package v1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of this API.
	GroupVersion = schema.GroupVersion{Group: "secrets-store.csi.x-k8s.io", Version: "v1"}

	// SchemeBuilder registers the types of this API with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types of this API to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
