// Package v1alpha1 holds the deprecated secrets-store.csi.x-k8s.io/v1alpha1
// version of SecretProviderClass, served (not stored) as the Secrets Store
// CSI driver serves it, so that old manifests still apply. Objects are stored
// as v1; the schemas are identical apart from status.
//
// +kubebuilder:object:generate=true
// +groupName=secrets-store.csi.x-k8s.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of this API.
	GroupVersion = schema.GroupVersion{Group: "secrets-store.csi.x-k8s.io", Version: "v1alpha1"}

	// SchemeBuilder registers the types of this API with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types of this API to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
